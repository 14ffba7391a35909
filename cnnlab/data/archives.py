"""File trees to read images from: a folder, or a .tar.gz/.tgz/.tar/.zip archive read in place.

Archives are never extracted: 60,000 small files cost more to write and delete than to
decode. Their members are still checked as an extraction would check them, so an archive
with a member escaping its root (`../`, an absolute path, a link pointing out) is rejected.
"""

import contextlib
import gzip
import io
import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

from cnnlab.errors import DataError

TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_VIRTUAL_ROOT = "/archive-root"  # where members would land; only used to check their paths
_IGNORED = "__MACOSX"

_CORRUPT = (
    tarfile.ReadError,
    tarfile.CompressionError,
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    lzma.LZMAError,
)

_FILTER_REASONS = {
    tarfile.AbsolutePathError: "has an absolute path",
    tarfile.OutsideDestinationError: "would be written outside the archive's folder",
    tarfile.AbsoluteLinkError: "is a link to an absolute path",
    tarfile.LinkOutsideDestinationError: "is a link pointing outside the archive's folder",
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


class CorruptArchive(DataError):
    """An archive that cannot be read to its end; `reason` says what failed."""

    def __init__(self, archive, reason):
        super().__init__(
            f"{archive}: truncated or corrupt archive ({reason}); download it again or point data.source at a good copy"
        )
        self.reason = reason


@contextlib.contextmanager
def archive_errors(archive):
    """Turn the many ways a damaged archive fails into one CorruptArchive naming it."""
    try:
        yield
    except _CORRUPT as error:
        raise CorruptArchive(archive, str(error).splitlines()[0].rstrip(":") or type(error).__name__) from None


def open_tree(path):
    """A FolderTree, ZipTree or TarTree for `path`."""
    path = Path(path)
    if path.is_dir():
        return FolderTree(path)
    kind = archive_kind(path)
    if kind is None:
        raise DataError(
            f"{path}: neither a folder nor a .tar.gz/.tgz/.tar/.zip archive; point data.source at one of those"
        )
    return ZipTree(path) if kind == "zip" else TarTree(path)


def is_hidden(relative_path):
    return any(part.startswith(".") or part == _IGNORED for part in relative_path.split("/"))


class FolderTree:
    """files: {relative posix path: size in bytes}; dirs: relative folder paths (hidden ones left out)."""

    def __init__(self, root):
        self.root, self.files, self.dirs = Path(root), {}, set()
        for folder, subfolders, names in os.walk(self.root):
            relative = Path(folder).relative_to(self.root).as_posix()
            prefix = "" if relative == "." else relative + "/"
            subfolders[:] = [name for name in subfolders if not is_hidden(name)]
            self.dirs.update(prefix + name for name in subfolders)
            for name in names:
                if not is_hidden(name):
                    self.files[prefix + name] = (Path(folder) / name).stat().st_size

    def read(self, names):
        """(name, path or open file) for each of `names`; archives may yield them in another order."""
        for name in names:
            yield name, self.root / name


class _ArchiveTree:
    """files and dirs as FolderTree has them, for an archive's members."""

    def _add_folder(self, folder):
        """Record `folder` and those above it: archives need not list folders as members."""
        while folder and folder not in self.dirs:
            self.dirs.add(folder)
            folder = folder.rpartition("/")[0]


class ZipTree(_ArchiveTree):
    def __init__(self, archive):
        self.archive, self.files, self.dirs, self._members = archive, {}, set(), {}
        with archive_errors(archive), zipfile.ZipFile(archive) as zip_file:
            for info in zip_file.infolist():
                name = _checked_zip_name(archive, info)
                if is_hidden(name):
                    continue
                if info.is_dir():
                    self._add_folder(name)
                    continue
                self.files[name] = info.file_size
                self._members[name] = info
                self._add_folder(name.rpartition("/")[0])

    def read(self, names):
        with archive_errors(self.archive), zipfile.ZipFile(self.archive) as zip_file:
            for name in names:
                yield name, io.BytesIO(zip_file.read(self._members[name]))


def _checked_zip_name(archive, info):
    name = info.filename
    if _is_absolute(name):
        raise _unsafe(archive, name, "has an absolute path")
    normalized = _normalized(name)
    if _escapes(normalized):
        raise _unsafe(archive, name, "would be written outside the archive's folder")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise _unsafe(archive, name, "is a symbolic link (not supported in zip archives)")
    return normalized


class TarTree(_ArchiveTree):
    def __init__(self, archive):
        self.archive, self.files, self.dirs, self._members = archive, {}, set(), {}
        with archive_errors(archive), tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = _checked_tar_name(archive, member)
                if is_hidden(name):
                    continue
                if member.isdir():
                    self._add_folder(name)
                    continue
                # a link (kept inside the archive by the check above) reads as an empty, skipped file
                self.files[name] = member.size if member.isfile() else 0
                self._members[name] = member
                self._add_folder(name.rpartition("/")[0])

    def read(self, names):
        # in archive order: a compressed tar only reads fast front to back
        members = sorted((self._members[name] for name in names), key=lambda member: member.offset_data)
        with archive_errors(self.archive), tarfile.open(self.archive, "r:*") as tar:
            for member in members:
                yield _normalized(member.name), io.BytesIO(tar.extractfile(member).read())


def _checked_tar_name(archive, member):
    if _is_absolute(member.name):
        raise _unsafe(archive, member.name, "has an absolute path")
    name = _normalized(member.name)
    if (member.isreg() or member.isdir()) and not _escapes(name):
        return name  # the common case, settled without data_filter's costly path resolution
    try:
        tarfile.data_filter(member, _VIRTUAL_ROOT)
    except tarfile.FilterError as error:
        raise _unsafe(archive, member.name, _FILTER_REASONS.get(type(error), str(error))) from None
    return name


def _escapes(normalized_name):
    return normalized_name == ".." or normalized_name.startswith("../")


def _normalized(name):
    return os.path.normpath(name).replace(os.sep, "/")


def _is_absolute(name):
    """'/x', '\\x' or a Windows drive ('C:x'), any of which an extraction would write outside its folder."""
    return name.startswith(("/", "\\")) or name[1:2] == ":"


def _unsafe(archive, member, reason):
    return DataError(
        f"{archive}: member {member!r} {reason}; refusing to use the archive "
        f"(repack it with relative paths that stay inside it)"
    )
