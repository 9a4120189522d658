"""Real servers on 127.0.0.1 for the remote-I/O tests and benchmarks (never the internet).

* :func:`moto_s3` -- moto's S3 server mode on a free loopback port, with one bucket;
  yields the fsspec ``storage_options`` and an ``s3fs`` filesystem.
* :func:`http_folder` -- a threaded HTTP server for a folder, with single-range
  support (what fsspec's HTTP filesystem asks for); its handler class counts the
  requests and the body bytes it sends.

Used by tests/test_remote.py, benchmarks/test_bench_zarr.py and benchmarks/bench_ngff.py.
"""
from __future__ import annotations

import contextlib
import http.server
import os
import socket
import threading
from typing import Iterator


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_s3(bucket: str) -> Iterator[tuple[dict, object]]:
    """``(storage_options, s3fs filesystem)`` of a moto S3 server holding ``bucket``."""
    import logging

    import s3fs
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no log line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        options = {"key": "testing", "secret": "testing",
                   "endpoint_url": f"http://127.0.0.1:{port}",
                   "client_kwargs": {"region_name": "us-west-2"}}
        fs = s3fs.S3FileSystem(**options)
        fs.mkdir(bucket)
        yield options, fs
    finally:
        server.stop()


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, answering a single ``Range: bytes=...`` with 206; counts the
    requests (``requests``) and the body bytes sent (``sent``) on its class."""

    sent = 0
    requests = 0

    def log_message(self, *args):
        pass

    def send_head(self):
        type(self).requests += 1
        path = self.translate_path(self.path)
        rng = self.headers.get("Range")
        if not rng or not os.path.isfile(path):
            return super().send_head()  # (a HEAD sends no body: bytes count in copyfile)
        size = os.path.getsize(path)
        first, _, last = rng.replace("bytes=", "").partition("-")
        if first:  # "start-end" or "start-"
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        else:  # "-suffix"
            start, end = max(0, size - int(last)), size - 1
        fh = open(path, "rb")
        fh.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return _Slice(fh, end - start + 1)

    def copyfile(self, source, outputfile):
        try:
            while True:
                data = source.read(1 << 20)
                if not data:
                    break
                type(self).sent += len(data)
                outputfile.write(data)
        finally:
            source.close()


class _Slice:
    """The next ``n`` bytes of an open file, read in pieces."""

    def __init__(self, fh, n: int) -> None:
        self.fh, self.left = fh, n

    def read(self, size: int = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.fh.read(size) if size else b""
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.fh.close()


@contextlib.contextmanager
def http_folder(folder) -> Iterator[tuple[str, type]]:
    """``(base_url, handler class)`` of an HTTP server on 127.0.0.1 serving ``folder``;
    the class's ``sent``/``requests`` count what this server did (they start at 0)."""
    handler = type("Handler", (RangeHandler,), {"sent": 0, "requests": 0})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(folder), **k))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
