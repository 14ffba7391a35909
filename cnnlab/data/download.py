"""HTTP(S) downloads: progress bar, retries with backoff, resume of `<name>.part`, checksum before rename.

The cache is keyed by URL: each download lives in a folder of its own for the URL it came from
(the host, and a hash of the URL up to its file name), so two URLs that end in the same file
name never share a copy, and the files of one folder on a server share one here (MNIST's four).
pooch keys its cache the same way, but streams every attempt into a new temporary file that a
failure deletes, so a cut transfer of the 170 MB CIFAR-10 archive would start over; hence this.
"""

import hashlib
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests
from tqdm import tqdm

from cnnlab.errors import DataError

ATTEMPTS = 4
BACKOFF_SECONDS = 1.0  # doubled after every failed attempt
TIMEOUT_SECONDS = 30
_CHUNK = 1 << 16


class _Interrupted(Exception):
    """The transfer stopped early or the server failed; worth another attempt."""


_RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError, _Interrupted)


def is_url(text):
    return str(text).startswith(("http://", "https://"))


def unreachable(url, timeout=10):
    """Why `url` cannot be downloaded from here (one line), or None when it answers."""
    try:
        response = requests.head(url, timeout=timeout, allow_redirects=True)
    except requests.RequestException as error:
        return f"cannot reach {url} ({_short_reason(error)})"
    if response.status_code >= 400:
        return f"{url} answered HTTP {response.status_code}"
    return None


def cached_path(url, download_dir):
    """Where the download of `url` is kept in `download_dir` (whether it is there yet or not)."""
    parts = urlsplit(url)
    folder = f"{parts.scheme}://{parts.netloc}{parts.path.rpartition('/')[0]}/?{parts.query}"
    key = hashlib.sha256(folder.encode()).hexdigest()[:12]
    return Path(download_dir) / f"{parts.hostname or 'host'}-{key}" / file_name(url)


def _legacy_path(url, download_dir):
    """Where downloads were kept before the cache was keyed by URL: under their file name alone."""
    return Path(download_dir) / file_name(url)


def is_cached(url, download_dir, expected=None):
    """Whether a download of `url` is already complete in `download_dir` (or, with a checksum to
    check it by, left there by an older version of cnnlab under its file name alone); with a
    checksum, only a copy that matches it counts (`download` would fetch the file again)."""
    copies = [cached_path(url, download_dir)] + ([_legacy_path(url, download_dir)] if expected is not None else [])
    return any(path.is_file() and (expected is None or expected.of_file(path) == expected) for path in copies)


def file_name(url):
    name = Path(unquote(urlsplit(url).path)).name
    if not name:
        raise DataError(f"{url}: the URL does not end in a file name; point data.source at the file itself")
    return name


def download(url, download_dir, expected=None):
    """Return the local copy of `url` in `download_dir` (cached_path), fetching it only when
    missing or stale.

    The file grows as `<name>.part` (resumed with an HTTP Range request when it exists, sent
    with If-Range and the ETag or Last-Modified the server gave for it, kept in
    `<name>.part.validator`, so that a file changed on the server since is fetched whole) and
    gets its real name only once `expected` (a Checksum, or None) matches.
    """
    target = cached_path(url, download_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    _adopt_legacy_copy(url, download_dir, expected, target)
    if target.exists():
        if expected is None or expected.of_file(target) == expected:
            return target
        target.unlink()
    part = target.with_name(target.name + ".part")
    _fetch_with_retries(url, part)
    _validator_path(part).unlink(missing_ok=True)
    if expected is not None:
        actual = expected.of_file(part)
        if actual != expected:
            part.unlink()
            raise DataError(
                f"{url}: checksum mismatch, expected {expected}, got {actual}; "
                f"the download was deleted: run again, or fix data.checksum"
            )
    os.replace(part, target)
    return target


def _adopt_legacy_copy(url, download_dir, expected, target):
    """Move a copy an older cnnlab kept under the file name alone to `target`, when `expected`
    vouches for it (without a checksum, a file name says nothing about which URL it came from)."""
    legacy = _legacy_path(url, download_dir)
    if expected is not None and not target.exists() and legacy.is_file() and expected.of_file(legacy) == expected:
        os.replace(legacy, target)


def _fetch_with_retries(url, part):
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _fetch(url, part)
            return
        except _RETRYABLE as error:
            if attempt == ATTEMPTS:
                raise DataError(_failure_message(url, _short_reason(error))) from None
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))


def _fetch(url, part):
    offset = part.stat().st_size if part.exists() else 0
    # identity: the bytes on disk must be the file's own, for the checksum and for resuming
    headers = {"Accept-Encoding": "identity", **(_resume_headers(part, offset) if offset else {})}
    print(f"downloading {url}" + (f" (resuming at {offset:,} bytes)" if offset else ""), file=sys.stderr)
    with requests.get(url, headers=headers, stream=True, timeout=TIMEOUT_SECONDS) as response:
        if response.status_code == 416 and _complete_length(response) == offset:
            return  # the .part holds the whole file already (cut off before it was renamed)
        _check_status(url, response, part)
        if response.status_code != 206:
            offset = 0  # the server sent the whole file (changed since, or no ranges): start over
            _keep_validator(part, response)
        elif not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            _discard(part)
            raise _Interrupted("the server resumed at another offset")
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        with open(part, "ab" if offset else "wb") as file, _progress_bar(part, total, offset) as bar:
            for chunk in response.iter_content(_CHUNK):
                file.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Interrupted(f"connection closed after {size:,} of {total:,} bytes")


def _resume_headers(part, offset):
    """Range from `offset`, and If-Range with the validator the server gave for the .part: the
    server sends the rest only if its file is still that one, else the whole file."""
    validator = _validator_path(part)
    return {"Range": f"bytes={offset}-", **({"If-Range": validator.read_text()} if validator.is_file() else {})}


def _validator_path(part):
    return part.with_name(part.name + ".validator")


def _keep_validator(part, response):
    """Keep the response's strong ETag, or else its Last-Modified, for the If-Range of a resume."""
    etag = response.headers.get("ETag", "")
    validator = etag if etag and not etag.startswith("W/") else response.headers.get("Last-Modified")
    path = _validator_path(part)
    if validator:
        path.write_text(validator)
    else:
        path.unlink(missing_ok=True)


def _discard(part):
    part.unlink()
    _validator_path(part).unlink(missing_ok=True)


def _complete_length(response):
    """N of a 416 answer's `Content-Range: bytes */N` (the file's length), else None."""
    match = re.fullmatch(r"bytes \*/(\d+)", response.headers.get("Content-Range", "").strip())
    return int(match[1]) if match else None


def _check_status(url, response, part):
    if response.status_code == 416:  # the .part is no prefix of the file: start over
        _discard(part)
        raise _Interrupted("HTTP 416 Range Not Satisfiable")
    if response.status_code >= 500:
        raise _Interrupted(f"HTTP {response.status_code} {response.reason}")
    if response.status_code >= 400:
        raise DataError(_failure_message(url, f"HTTP {response.status_code} {response.reason}"))


def _progress_bar(part, total, offset):
    name = part.name.removesuffix(".part")
    return tqdm(
        total=total,
        initial=offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        file=sys.stderr,
        leave=False,
        disable=None,
    )


def _short_reason(error):
    """'Connection refused' rather than urllib3's nested repr."""
    text = str(error)
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if match:
        return match[1].strip()
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "connection broken mid-transfer"
    return text.splitlines()[0] if text else type(error).__name__


def _failure_message(url, reason):
    return (
        f"cannot download {url} ({reason}); to work offline, copy the file to this machine and "
        f"set data.source to its local path, or use data.dataset: digits, which needs no download"
    )
