"""Downloads from a local HTTP server: checksums, broken transfers, resume, restart, no network."""

import hashlib
import os
import socket

import pytest

from cnnlab.data.checksums import Checksum
from cnnlab.data.download import download
from cnnlab.data.preparation import prepare
from cnnlab.errors import DataError
from data_helpers import assert_nothing_written, data_params, make_tar, write_class_folders

PAYLOAD = os.urandom(300_000)
GOOD = Checksum("sha256", hashlib.sha256(PAYLOAD).hexdigest())


@pytest.fixture
def served_file(http_server):
    url, served, server = http_server
    (served / "data.bin").write_bytes(PAYLOAD)
    return f"{url}/data.bin", server


@pytest.fixture
def single_attempt(monkeypatch):
    monkeypatch.setattr("cnnlab.data.download.ATTEMPTS", 1)


def test_download_with_checksum(tmp_path, served_file):
    url, server = served_file
    path = download(url, tmp_path / "dl", GOOD)
    assert path == tmp_path / "dl" / "data.bin" and path.read_bytes() == PAYLOAD
    assert list((tmp_path / "dl").iterdir()) == [path]
    download(url, tmp_path / "dl", GOOD)
    assert len(server.requests) == 1  # a verified copy is not fetched again


def test_broken_transfer_leaves_only_a_part_file_and_the_next_call_resumes(tmp_path, served_file, single_attempt):
    url, server = served_file
    server.cuts_left = 1
    with pytest.raises(DataError, match=rf"^cannot download {url} \(connection broken mid-transfer\)"):
        download(url, tmp_path / "dl", GOOD)
    part = tmp_path / "dl" / "data.bin.part"
    assert not (tmp_path / "dl" / "data.bin").exists()
    received = part.stat().st_size
    assert 0 < received <= len(PAYLOAD) // 2

    path = download(url, tmp_path / "dl", GOOD)
    assert server.requests[-1]["range"] == f"bytes={received}-"
    assert path.read_bytes() == PAYLOAD and not part.exists()


def test_a_server_that_ignores_range_makes_the_download_restart(tmp_path, served_file, single_attempt):
    url, server = served_file
    server.cuts_left, server.honour_range = 1, False
    with pytest.raises(DataError):
        download(url, tmp_path / "dl", GOOD)
    path = download(url, tmp_path / "dl", GOOD)
    assert server.requests[-1]["range"] is not None  # asked to resume, got the whole file
    assert path.read_bytes() == PAYLOAD


def test_retries_resume_within_one_call(tmp_path, served_file, fast_retries):
    url, server = served_file
    server.cuts_left = 2
    path = download(url, tmp_path / "dl", GOOD)
    assert path.read_bytes() == PAYLOAD
    assert [r["range"] is not None for r in server.requests] == [False, True, True]


def test_a_part_file_longer_than_the_file_starts_over(tmp_path, served_file, fast_retries):
    url, _ = served_file
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "data.bin.part").write_bytes(b"x" * (len(PAYLOAD) + 10))
    assert download(url, tmp_path / "dl", GOOD).read_bytes() == PAYLOAD


def test_wrong_checksum_deletes_the_download(tmp_path, served_file):
    url, _ = served_file
    wrong = Checksum("md5", "0" * 32)
    actual = hashlib.md5(PAYLOAD).hexdigest()
    expected = rf"^{url}: checksum mismatch, expected md5:{wrong.hexdigest}, got md5:{actual}; the download was deleted"
    with pytest.raises(DataError, match=expected):
        download(url, tmp_path / "dl", wrong)
    assert list((tmp_path / "dl").iterdir()) == []


def test_http_error_is_reported_at_once(tmp_path, http_server, fast_retries):
    url, _, server = http_server
    with pytest.raises(DataError, match=rf"^cannot download {url}/missing\.tar\.gz \(HTTP 404 Not Found\)"):
        download(f"{url}/missing.tar.gz", tmp_path / "dl")
    assert len(server.requests) == 1


def unused_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_no_network_is_one_line_naming_the_url_and_the_ways_out(tmp_path, fast_retries):
    url = f"http://127.0.0.1:{unused_port()}/flowers.tar.gz"
    with pytest.raises(DataError) as error:
        prepare(data_params(dataset="folder", source=url), tmp_path / "out", tmp_path / "dl")
    message = str(error.value)
    assert message == (
        f"cannot download {url} (Connection refused); to work offline, copy the file to this "
        f"machine and set data.source to its local path, or use data.dataset: digits, "
        f"which needs no download"
    )
    assert_nothing_written(tmp_path / "out")


def test_folder_dataset_from_a_url(tmp_path, http_server):
    url, served, _ = http_server
    archive = make_tar(write_class_folders(tmp_path / "shapes", {"a": 10, "b": 10}), served / "shapes.tar.gz")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    card = prepare(
        data_params(dataset="folder", source=f"{url}/shapes.tar.gz", checksum=f"sha256:{digest}"),
        tmp_path / "out",
        tmp_path / "dl",
    )
    assert card["name"] == "shapes" and card["source"] == f"{url}/shapes.tar.gz"
    assert card["checksum"] == {"sha256": digest} and sum(card["counts"].values()) == 20
    assert (tmp_path / "dl" / "shapes.tar.gz").read_bytes() == archive.read_bytes()
