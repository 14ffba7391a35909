"""Fixtures for the prepare-stage tests: the real shared datasets and a local HTTP server."""

import email.utils
import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fashion_folder(shared_datasets):
    path = shared_datasets / "fashion-mnist"
    if not (path / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{path} has no Fashion-MNIST IDX files")
    return path


# --- a local HTTP server ---------------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves `directory`; the server's `behaviour` can cut a transfer half-way or ignore Range.
    It names each file's version by `server.validator`: "ETag" (its content's md5) or
    "Last-Modified" (its mtime), and honours If-Range with it."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        server.requests.append(
            {"path": self.path, "range": self.headers.get("Range"), "if_range": self.headers.get("If-Range")}
        )
        path = Path(self.directory) / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        version = {
            "ETag": f'"{hashlib.md5(data).hexdigest()}"',
            "Last-Modified": email.utils.formatdate(path.stat().st_mtime, usegmt=True),
        }.get(server.validator)
        start = _range_start(self.headers.get("Range")) if server.honour_range else None
        if self.headers.get("If-Range") not in (None, version):
            start = None  # the file changed since: the whole of it
        if start is not None and start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start:] if start is not None else data
        self.send_response(206 if start is not None else 200)
        if start is not None:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if version:
            self.send_header(server.validator, version)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cuts_left > 0:
            server.cuts_left -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


def _range_start(header):
    if header and header.startswith("bytes=") and header.endswith("-"):
        return int(header[len("bytes=") : -1])
    return None


@pytest.fixture
def http_server(tmp_path):
    """(base URL, served folder, server); server.cuts_left, .honour_range, .validator, .requests
    steer and record it."""
    served = tmp_path / "served"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(served)))
    server.requests, server.cuts_left, server.honour_range, server.validator = [], 0, True, "ETag"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served, server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def fast_retries(monkeypatch):
    """No waiting between download attempts."""
    monkeypatch.setattr("cnnlab.data.download.BACKOFF_SECONDS", 0)
