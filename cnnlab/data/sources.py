"""Where a dataset's files come from: data.source (local path or URL) and data.checksum."""

from pathlib import Path

from cnnlab.data.checksums import Checksum, verify_file
from cnnlab.data.download import download, is_url
from cnnlab.errors import ConfigError, DataError


def expected_checksum(data_params):
    text = data_params.get("checksum")
    if text is None:
        return None
    if data_params.get("source") is None:
        raise ConfigError(
            "data.checksum: it checks the file at data.source, which is null; set data.source or remove data.checksum"
        )
    return Checksum.parse(text)


def fetch_source(source, download_dir, expected=None):
    """Local path of `source` (downloaded first when it is a URL), checked against `expected`."""
    if is_url(source):
        return download(source, download_dir, expected)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"data.source: {source} does not exist; give an existing file, folder or http(s) URL")
    if expected is not None:
        if path.is_dir():
            raise ConfigError(
                f"data.checksum: data.source {source} is a folder, and only a single file "
                f"can be checked; remove data.checksum or point data.source at an archive"
            )
        verify_file(path, expected)
    return path
