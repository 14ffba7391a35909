"""Where a dataset's files come from, resolved once: data.source (a local path or a URL, downloaded
into the cache) and data.checksum -> a Source (the path to read, how to name it, its checksum).

Each dataset kind's `locate(data_params, fetcher)` resolves it through a Fetcher, which downloads
and verifies; a dry-run Fetcher does neither and only lists the downloads still to make
(`prepare --check`), so both walk the same resolution.
"""

import contextlib
from dataclasses import dataclass
from pathlib import Path

from cnnlab.data.archives import CorruptArchive
from cnnlab.data.checksums import Checksum, file_digest, verify_file
from cnnlab.data.download import cached_path, download, is_cached, is_url
from cnnlab.errors import ConfigError, DataError


@dataclass(frozen=True)
class Source:
    path: Path | None  # the local file or folder to read (a download's copy in the cache); None: bundled
    label: str  # how the dataset card and messages name it: data.source as written, or the URL
    checksum: Checksum | None = None  # what `path` (one file) was verified against; None: not checked
    url: str | None = None  # the URL `path` was downloaded from

    def record(self, algorithm="sha256"):
        """The dataset card's checksum entry: the verified checksum, else one computed now ({} for a folder)."""
        if self.checksum is not None:
            return self.checksum.as_record()
        if self.path.is_dir():
            return {}
        return {algorithm: file_digest(self.path, algorithm)}

    @contextlib.contextmanager
    def discarded_if_corrupt(self):
        """Reading a downloaded archive that turns out truncated or corrupt deletes the download,
        so that the next run fetches it again instead of failing on the same copy forever."""
        try:
            yield
        except CorruptArchive as error:
            if self.url is None or not self.path.is_file():
                raise
            self.path.unlink()
            raise DataError(
                f"{self.url}: the download is a truncated or corrupt archive ({error.reason}); it was deleted, "
                f"so the next run downloads it again; if the server's copy is damaged, point data.source at a good one"
            ) from None


def expected_checksum(data_params):
    text = data_params.get("checksum")
    if text is None:
        return None
    if data_params.get("source") is None:
        raise ConfigError(
            "data.checksum: it checks the file at data.source, which is null; set data.source or remove data.checksum"
        )
    return Checksum.parse(text)


class Fetcher:
    """Brings sources here: downloads URLs into `download_dir` and checks files against checksums.

    With `dry_run` nothing is downloaded, and only a download already here is hashed (against
    its checksum, when there is one); `pending` collects the URLs a real run would download."""

    def __init__(self, download_dir, dry_run=False):
        self.download_dir, self.dry_run, self.pending = Path(download_dir), dry_run, []

    def url(self, url, expected=None):
        """The local copy of `url` (downloaded when missing), checked against `expected`."""
        if self.dry_run:
            if not is_cached(url, self.download_dir, expected):
                self.pending.append(url)
            return cached_path(url, self.download_dir)
        return download(url, self.download_dir, expected)

    def source(self, data_params):
        """The Source of data.source (required) and data.checksum."""
        source, expected = data_params["source"], expected_checksum(data_params)
        if is_url(source):
            return Source(self.url(source, expected), source, expected, url=source)
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"data.source: {source} does not exist; give an existing file, folder or http(s) URL")
        if expected is not None:
            if path.is_dir():
                raise ConfigError(
                    f"data.checksum: data.source {source} is a folder, and only a single file "
                    f"can be checked; remove data.checksum or point data.source at an archive"
                )
            if not self.dry_run:
                verify_file(path, expected)
        return Source(path, source, expected)
