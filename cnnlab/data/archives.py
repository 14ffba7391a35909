"""Archives (.tar.gz/.tgz/.tar/.zip): safe extraction and errors that name the archive."""
import contextlib
import gzip
import lzma
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath

from cnnlab.errors import DataError

TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")

_CORRUPT = (tarfile.ReadError, tarfile.CompressionError, zipfile.BadZipFile, EOFError,
            zlib.error, gzip.BadGzipFile, lzma.LZMAError)

_FILTER_REASONS = {
    tarfile.AbsolutePathError: "has an absolute path",
    tarfile.OutsideDestinationError: "would be written outside the extraction folder",
    tarfile.AbsoluteLinkError: "is a link to an absolute path",
    tarfile.LinkOutsideDestinationError: "is a link pointing outside the extraction folder",
    tarfile.SpecialFileError: "is a device or other special file",
}


def archive_kind(path):
    """'zip', 'tar' or None, from the file name or else from the content."""
    name = Path(path).name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(TAR_SUFFIXES):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    return None


@contextlib.contextmanager
def archive_errors(archive):
    """Turn the many ways a damaged archive fails into one DataError naming it."""
    try:
        yield
    except _CORRUPT as error:
        reason = str(error).splitlines()[0].rstrip(":") or type(error).__name__
        raise DataError(f"{archive}: truncated or corrupt archive ({reason}); "
                        f"download it again or point data.source at a good copy") from None


def extract(archive, target):
    """Extract `archive` into the folder `target`; members that would escape it are a DataError."""
    kind = archive_kind(archive)
    if kind is None:
        raise DataError(f"{archive}: not a folder nor a .tar.gz/.tgz/.tar/.zip archive; "
                        f"point data.source at one of those")
    with archive_errors(archive):
        if kind == "zip":
            _extract_zip(archive, target)
        else:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(target, filter=_tar_filter(archive))


def _tar_filter(archive):
    def check(member, destination):
        if _is_absolute(member.name):
            raise _unsafe(archive, member.name, "has an absolute path")
        try:
            return tarfile.data_filter(member, destination)
        except tarfile.FilterError as error:
            raise _unsafe(archive, member.name, _FILTER_REASONS.get(type(error), str(error))) from None

    return check


def _extract_zip(archive, target):
    target = Path(target).resolve()
    with zipfile.ZipFile(archive) as zip_file:
        for info in zip_file.infolist():
            if _is_absolute(info.filename):
                raise _unsafe(archive, info.filename, "has an absolute path")
            if not (target / info.filename).resolve().is_relative_to(target):
                raise _unsafe(archive, info.filename, "would be written outside the extraction folder")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _unsafe(archive, info.filename, "is a symbolic link (not supported in zip archives)")
        zip_file.extractall(target)


def _is_absolute(name):
    return PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or name.startswith("\\")


def _unsafe(archive, member, reason):
    return DataError(f"{archive}: member {member!r} {reason}; refusing to extract it "
                     f"(repack the archive with relative paths that stay inside it)")
