"""Checksums written as "<algorithm>:<hex>" (data.checksum) and file digests."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import ConfigError, DataError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    hexdigest: str

    def __str__(self):
        return f"{self.algorithm}:{self.hexdigest}"

    @classmethod
    def parse(cls, text, key="data.checksum"):
        match = re.fullmatch(r"(sha256|md5):([0-9a-fA-F]+)", text.strip())
        if not match or len(match[2]) != hashlib.new(match[1]).digest_size * 2:
            raise ConfigError(f"{key}: {text!r} is not 'sha256:<64 hex digits>' or 'md5:<32 hex digits>'")
        return cls(match[1], match[2].lower())

    def of_file(self, path):
        """The same kind of checksum, computed for `path`."""
        return Checksum(self.algorithm, file_digest(path, self.algorithm))

    def as_record(self):
        """The form the dataset card stores: {"md5": "<hex>"}."""
        return {self.algorithm: self.hexdigest}


def file_digest(path, algorithm="sha256"):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path, expected, hint="the file is corrupt or data.checksum is wrong"):
    """Raise a DataError naming `path` unless its checksum is `expected`."""
    actual = expected.of_file(path)
    if actual != expected:
        raise DataError(f"{path}: checksum mismatch, expected {expected}, got {actual}; {hint}")
    return actual


def files_record(paths, algorithm="md5"):
    """Card entry for a dataset made of several files: {"md5": {file name: hex}}."""
    return {algorithm: {Path(path).name: file_digest(path, algorithm) for path in paths}}
