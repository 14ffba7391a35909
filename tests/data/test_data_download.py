"""Downloads from a local HTTP server: checksums, broken transfers, resume, restart, no network."""

import hashlib
import os
import socket

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.checksums import Checksum
from cnnlab.data.download import cached_path, download, is_cached
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
    assert path == cached_path(url, tmp_path / "dl") and path.name == "data.bin" and path.read_bytes() == PAYLOAD
    assert list(path.parent.iterdir()) == [path] and path.parent.parent == tmp_path / "dl"
    download(url, tmp_path / "dl", GOOD)
    assert len(server.requests) == 1  # a verified copy is not fetched again


def test_broken_transfer_leaves_only_a_part_file_and_the_next_call_resumes(tmp_path, served_file, single_attempt):
    url, server = served_file
    server.cuts_left = 1
    with pytest.raises(DataError, match=rf"^cannot download {url} \(connection broken mid-transfer\)"):
        download(url, tmp_path / "dl", GOOD)
    target = cached_path(url, tmp_path / "dl")
    part = target.with_name("data.bin.part")
    assert not target.exists()
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
    part = cached_path(url, tmp_path / "dl").with_name("data.bin.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * (len(PAYLOAD) + 10))
    assert download(url, tmp_path / "dl", GOOD).read_bytes() == PAYLOAD


@pytest.mark.parametrize("validator", ["ETag", "Last-Modified"])
def test_a_part_file_of_a_file_changed_on_the_server_since_is_fetched_whole(
    tmp_path, served_file, single_attempt, validator
):
    url, server = served_file
    server.validator, server.cuts_left = validator, 1
    with pytest.raises(DataError):
        download(url, tmp_path / "dl", GOOD)
    sent = {"ETag": f'"{hashlib.md5(PAYLOAD).hexdigest()}"'}.get(validator)
    changed = os.urandom(len(PAYLOAD))  # the server's file is replaced before the next run
    served = tmp_path / "served" / "data.bin"
    served.write_bytes(changed)
    os.utime(served, (served.stat().st_mtime + 60,) * 2)

    path = download(url, tmp_path / "dl", Checksum("sha256", hashlib.sha256(changed).hexdigest()))

    assert server.requests[-1]["range"] is not None and server.requests[-1]["if_range"] is not None
    assert sent is None or server.requests[-1]["if_range"] == sent
    assert path.read_bytes() == changed and list(path.parent.iterdir()) == [path]


def test_an_unchanged_file_is_resumed_with_if_range(tmp_path, served_file, single_attempt):
    url, server = served_file
    server.cuts_left = 1
    with pytest.raises(DataError):
        download(url, tmp_path / "dl", GOOD)

    path = download(url, tmp_path / "dl", GOOD)

    assert server.requests[-1]["if_range"] == f'"{hashlib.md5(PAYLOAD).hexdigest()}"'
    assert server.requests[-1]["range"] is not None and path.read_bytes() == PAYLOAD


def test_a_complete_part_file_answered_416_is_kept_not_fetched_again(tmp_path, served_file, fast_retries):
    url, server = served_file
    part = cached_path(url, tmp_path / "dl").with_name("data.bin.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD)  # whole, but cut off before its rename

    path = download(url, tmp_path / "dl", GOOD)

    assert path.read_bytes() == PAYLOAD and not part.exists()
    assert [request["range"] for request in server.requests] == [f"bytes={len(PAYLOAD)}-"]


def test_a_cached_copy_that_fails_its_checksum_is_not_cached(tmp_path, served_file):
    url, _ = served_file
    copy = cached_path(url, tmp_path / "dl")
    copy.parent.mkdir(parents=True)
    copy.write_bytes(PAYLOAD[:-1] + b"x")
    legacy = tmp_path / "dl" / "data.bin"
    legacy.write_bytes(b"from another URL")

    assert not is_cached(url, tmp_path / "dl", GOOD)
    assert is_cached(url, tmp_path / "dl")  # without a checksum, any copy is the download

    copy.write_bytes(PAYLOAD)
    assert is_cached(url, tmp_path / "dl", GOOD)


def test_wrong_checksum_deletes_the_download(tmp_path, served_file):
    url, _ = served_file
    wrong = Checksum("md5", "0" * 32)
    actual = hashlib.md5(PAYLOAD).hexdigest()
    expected = rf"^{url}: checksum mismatch, expected md5:{wrong.hexdigest}, got md5:{actual}; the download was deleted"
    with pytest.raises(DataError, match=expected):
        download(url, tmp_path / "dl", wrong)
    assert list(cached_path(url, tmp_path / "dl").parent.iterdir()) == []


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
    assert cached_path(f"{url}/shapes.tar.gz", tmp_path / "dl").read_bytes() == archive.read_bytes()


# --- the cache is keyed by URL ---------------------------------------------------------------


def serve_classes(served, folder, counts):
    """served/<folder>/data.tar.gz: an image-folder archive with `counts` noise images per class
    (about 12 kB each, so that a transfer cut half-way has written part of it)."""
    (served / folder).mkdir(parents=True, exist_ok=True)
    images = served.parent / "made" / folder / "data"
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        (images / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(images / name / f"{i}.png")
    return make_tar(images, served / folder / "data.tar.gz")


def test_two_urls_with_the_same_file_name_are_two_downloads(tmp_path, http_server):
    url, served, server = http_server
    serve_classes(served, "a", {"cats": 10, "dogs": 10})
    serve_classes(served, "b", {"cars": 10, "bikes": 10, "boats": 10})

    first = prepare(data_params(dataset="folder", source=f"{url}/a/data.tar.gz"), tmp_path / "out", tmp_path / "dl")
    second = prepare(data_params(dataset="folder", source=f"{url}/b/data.tar.gz"), tmp_path / "out", tmp_path / "dl")

    assert first["classes"] == ["cats", "dogs"] and second["classes"] == ["bikes", "boats", "cars"]
    assert second["source"] == f"{url}/b/data.tar.gz"
    assert [r["path"] for r in server.requests] == ["/a/data.tar.gz", "/b/data.tar.gz"]
    prepare(data_params(dataset="folder", source=f"{url}/a/data.tar.gz"), tmp_path / "out", tmp_path / "dl")
    assert len(server.requests) == 2  # each URL's copy is reused


def test_a_truncated_download_is_deleted_and_fetched_again_once_the_server_is_fixed(tmp_path, http_server):
    url, served, server = http_server
    archive = serve_classes(served, "a", {"cats": 10, "dogs": 10})
    good = archive.read_bytes()
    archive.write_bytes(good[: len(good) // 2])  # the server's copy is cut short
    params = data_params(dataset="folder", source=f"{url}/a/data.tar.gz")

    with pytest.raises(DataError) as error:
        prepare(params, tmp_path / "out", tmp_path / "dl")
    assert str(error.value).startswith(
        f"{url}/a/data.tar.gz: the download is a truncated or corrupt archive ("
    ) and str(error.value).endswith(
        "); it was deleted, so the next run downloads it again; "
        "if the server's copy is damaged, point data.source at a good one"
    )
    assert not cached_path(f"{url}/a/data.tar.gz", tmp_path / "dl").exists()
    assert_nothing_written(tmp_path / "out")

    archive.write_bytes(good)  # fixed on the server
    card = prepare(params, tmp_path / "out", tmp_path / "dl")
    assert card["classes"] == ["cats", "dogs"] and sum(card["counts"].values()) == 20
    assert len(server.requests) == 2


def test_a_local_truncated_archive_is_never_deleted(tmp_path):
    archive = make_tar(write_class_folders(tmp_path / "shapes", {"a": 10, "b": 10}), tmp_path / "shapes.tar.gz")
    archive.write_bytes(archive.read_bytes()[:-2000])
    with pytest.raises(DataError, match=rf"^{archive}: truncated or corrupt archive"):
        prepare(data_params(dataset="folder", source=str(archive)), tmp_path / "out", tmp_path / "dl")
    assert archive.is_file()


def test_a_part_file_left_by_a_cut_connection_is_resumed_by_the_next_run(tmp_path, http_server, single_attempt):
    url, served, server = http_server
    archive = serve_classes(served, "a", {"cats": 10, "dogs": 10})
    params = data_params(dataset="folder", source=f"{url}/a/data.tar.gz")
    server.cuts_left = 1
    with pytest.raises(DataError, match=r"connection broken mid-transfer"):
        prepare(params, tmp_path / "out", tmp_path / "dl")
    part = cached_path(f"{url}/a/data.tar.gz", tmp_path / "dl").with_name("data.tar.gz.part")
    received = part.stat().st_size
    assert 0 < received < archive.stat().st_size

    card = prepare(params, tmp_path / "out", tmp_path / "dl")
    assert server.requests[-1]["range"] == f"bytes={received}-"
    assert not part.exists() and sum(card["counts"].values()) == 20


def test_a_copy_kept_under_its_file_name_alone_is_reused_only_when_a_checksum_vouches_for_it(tmp_path, served_file):
    url, server = served_file
    legacy = tmp_path / "dl" / "data.bin"  # where older versions kept every download
    legacy.parent.mkdir()
    legacy.write_bytes(PAYLOAD)

    assert download(url, tmp_path / "dl", GOOD).read_bytes() == PAYLOAD
    assert server.requests == [] and not legacy.exists()  # moved into the URL's folder

    legacy.write_bytes(b"from another URL")
    other = url.replace("data.bin", "x/data.bin")
    with pytest.raises(DataError, match="HTTP 404"):
        download(other, tmp_path / "dl")  # no checksum: fetched, never taken from the old name
    assert legacy.read_bytes() == b"from another URL"
