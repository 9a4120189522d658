"""fsspec URLs: a real S3 endpoint (moto's server mode) and a range-capable HTTP server,
both on 127.0.0.1 and started here; memory:// in process.  Never the internet."""
import http.server
import os
import socket
import sys
import threading
import uuid

import h5py
import numpy as np
import pytest
import tifffile
from PIL import Image

import imgio.v3 as iio
from imgio.errors import BackendMissingError, CorruptFileError, ImageTooLargeError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3():
    """``storage_options`` for a moto S3 server on a free loopback port, and a bucket."""
    from moto.server import ThreadedMotoServer
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {"key": "testing", "secret": "testing",
               "endpoint_url": f"http://127.0.0.1:{port}",
               "client_kwargs": {"region_name": "us-west-2"}}
    import s3fs
    fs = s3fs.S3FileSystem(**options)
    fs.mkdir("imgio-test")
    try:
        yield options, fs
    finally:
        server.stop()


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder with single-range support; counts the bytes it sends."""

    sent = 0

    def log_message(self, *args):
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        rng = self.headers.get("Range")
        if os.path.isdir(path) or not rng or not os.path.isfile(path):
            return super().send_head()
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
        return _Limited(fh, end - start + 1)

    def copyfile(self, source, outputfile):
        data = source.read()
        type(self).sent += len(data)
        outputfile.write(data)
        source.close()


class _Limited:
    def __init__(self, fh, n):
        self.fh, self.n = fh, n

    def read(self, *args):
        return self.fh.read(self.n)

    def close(self):
        self.fh.close()


@pytest.fixture
def http_root(tmp_path):
    """``(base_url, folder, handler)`` of an HTTP server on 127.0.0.1 serving ``folder``."""
    handler = type("Handler", (_RangeHandler,), {"sent": 0})

    def make(*args, **kw):
        return handler(*args, directory=str(tmp_path), **kw)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path, handler
    finally:
        server.shutdown()
        server.server_close()


def _vol(shape=(24, 120, 100)):
    return (np.arange(np.prod(shape)) % 3001).astype(np.uint16).reshape(shape)


def _key(name):
    return f"s3://imgio-test/{uuid.uuid4().hex}/{name}"


# -- S3 -------------------------------------------------------------------------------------
def test_s3_ome_zarr_roundtrip(s3):
    options, fs = s3
    vol = _vol()
    url = _key("x.ome.zarr")
    iio.imwrite(url, vol, levels=2, spacing=(2.0, 0.5, 0.5), units=("um",) * 3,
                storage_options=options)
    assert fs.exists(url + "/zarr.json") and fs.exists(url + "/1/zarr.json")
    np.testing.assert_array_equal(iio.imread(url, storage_options=options), vol)
    props = iio.improps(url, level=1, storage_options=options)
    assert props.shape == (12, 60, 50) and props.spacing == (4.0, 1.0, 1.0)
    assert props.units == ("um",) * 3
    with iio.imopen(url, "r", storage_options=options) as f:
        box = (slice(5, 9), slice(10, 70), slice(0, 33))
        np.testing.assert_array_equal(f.read_region(box), vol[box])


def test_s3_tiff_write_and_page_read(s3):
    options, fs = s3
    vol = _vol()
    url = _key("stack.tif")
    iio.imwrite(url, vol, storage_options=options)
    assert fs.size(url) > vol.nbytes
    np.testing.assert_array_equal(iio.imread(url, storage_options=options), vol)
    np.testing.assert_array_equal(iio.imread(url, page=7, storage_options=options), vol[7])
    assert iio.improps(url, storage_options=options).shape == vol.shape


def test_s3_hdf5_read(s3, tmp_path):
    options, fs = s3
    vol = _vol((6, 40, 30))
    local = tmp_path / "d.h5"
    with h5py.File(local, "w") as h:
        h.create_dataset("a/img", data=vol, chunks=(1, 40, 30), compression="gzip")
    url = _key("d.h5")
    fs.put_file(str(local), url)
    np.testing.assert_array_equal(iio.imread(url, storage_options=options), vol)
    np.testing.assert_array_equal(iio.imread(url, index=2, storage_options=options), vol[2])


def test_s3_missing_object(s3):
    options, _ = s3
    with pytest.raises(FileNotFoundError):
        iio.imread(_key("nothing.tif"), storage_options=options)
    with pytest.raises(FileNotFoundError):
        iio.imread(_key("nothing.zarr"), storage_options=options)


def test_s3_convert_tiff_to_ome_zarr(s3, tmp_path):
    from imgio.convert import convert
    options, _ = s3
    vol = _vol((20, 64, 48))
    tifffile.imwrite(tmp_path / "s.tif", vol)
    url = _key("c.ome.zarr")
    convert(tmp_path / "s.tif", url, levels=2, storage_options=options)
    np.testing.assert_array_equal(iio.imread(url, storage_options=options), vol)
    np.testing.assert_array_equal(iio.imread(url, level=1, storage_options=options),
                                  iio.imread(_write_local(tmp_path, vol), level=1))


def _write_local(tmp_path, vol):
    p = tmp_path / "eager.ome.zarr"
    iio.imwrite(p, vol, levels=2)
    return p


# -- memory:// ------------------------------------------------------------------------------
def test_memory_zarr_and_tiff():
    vol = _vol((8, 50, 40))
    base = f"memory://imgio-{uuid.uuid4().hex}"
    iio.imwrite(base + "/m.ome.zarr", vol, levels=2)
    np.testing.assert_array_equal(iio.imread(base + "/m.ome.zarr"), vol)
    iio.imwrite(base + "/t.tif", vol)
    np.testing.assert_array_equal(iio.imread(base + "/t.tif"), vol)
    png = base + "/p.png"
    iio.imwrite(png, vol[0].astype(np.uint8))
    np.testing.assert_array_equal(iio.imread(png), vol[0].astype(np.uint8))


# -- HTTP -----------------------------------------------------------------------------------
def test_http_tiff_reads_only_the_pages_needed(http_root):
    base, folder, handler = http_root
    vol = np.random.default_rng(1).integers(0, 60000, (64, 256, 256)).astype(np.uint16)
    tifffile.imwrite(folder / "big.tif", vol)  # 8 MiB, one strip set per page
    size = os.path.getsize(folder / "big.tif")
    np.testing.assert_array_equal(iio.imread(f"{base}/big.tif", page=40), vol[40])
    assert handler.sent < size / 4, (handler.sent, size)
    handler.sent = 0
    np.testing.assert_array_equal(iio.imread(f"{base}/big.tif"), vol)
    assert handler.sent >= vol.nbytes


def test_http_png_jpeg_and_size_guard(http_root):
    base, folder, _ = http_root
    rgb = np.random.default_rng(2).integers(0, 255, (60, 80, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(folder / "a.png")
    Image.fromarray(rgb).save(folder / "a.jpg", quality=95)
    np.testing.assert_array_equal(iio.imread(f"{base}/a.png"), rgb)
    assert iio.imread(f"{base}/a.jpg").shape == rgb.shape
    with pytest.raises(ImageTooLargeError, match="a.png"):
        iio.imread(f"{base}/a.png", max_bytes=1000)


def test_http_ome_zarr(http_root):
    base, folder, _ = http_root
    vol = _vol((10, 70, 60))
    iio.imwrite(folder / "h.ome.zarr", vol, levels=2, spacing=(3.0, 1.0, 1.0))
    url = f"{base}/h.ome.zarr"
    np.testing.assert_array_equal(iio.imread(url), vol)
    assert iio.improps(url, level=1).spacing == (6.0, 2.0, 2.0)


def test_http_not_found(http_root):
    base, _, _ = http_root
    with pytest.raises(FileNotFoundError):
        iio.imread(f"{base}/missing.tif")


# -- http(s) without fsspec: imageio's urllib download, with the size guard ------------------
def test_http_without_fsspec_downloads_with_urllib(http_root, monkeypatch):
    base, folder, handler = http_root
    rgb = np.random.default_rng(3).integers(0, 255, (50, 70, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(folder / "u.png")
    vol = _vol((6, 40, 30))
    tifffile.imwrite(folder / "u.tif", vol)
    monkeypatch.setitem(sys.modules, "fsspec", None)  # as if only the core were installed
    import imgio.v2 as v2
    np.testing.assert_array_equal(iio.imread(f"{base}/u.png"), rgb)
    np.testing.assert_array_equal(v2.imread(f"{base}/u.png"), rgb)
    np.testing.assert_array_equal(iio.imread(f"{base}/u.tif?x=1"), vol)  # the path's extension
    assert iio.improps(f"{base}/u.tif").shape == vol.shape
    handler.sent = 0
    np.testing.assert_array_equal(iio.imread(f"{base}/u.tif", page=2), vol[2])
    assert handler.sent == os.path.getsize(folder / "u.tif")  # one whole download, no ranges
    with pytest.raises(FileNotFoundError, match="missing.png"):
        iio.imread(f"{base}/missing.png")
    with pytest.raises(BackendMissingError, match="fsspec"):  # writes still need fsspec
        iio.imwrite(f"{base}/w.png", rgb)


def test_http_without_fsspec_refuses_declared_size(http_root, monkeypatch):
    base, folder, handler = http_root
    data = np.random.default_rng(4).integers(0, 255, (300, 300), dtype=np.uint8)
    Image.fromarray(data).save(folder / "big.png")  # incompressible: ~90 kB
    monkeypatch.setitem(sys.modules, "fsspec", None)
    from imgio.core import limits
    monkeypatch.setattr(limits, "MAX_BYTES", 10_000)
    # refused from the header, before the body is read
    with pytest.raises(ImageTooLargeError, match=r"big\.png: the server declares .*Content-Length"):
        iio.imread(f"{base}/big.png")
    monkeypatch.setattr(limits, "MAX_BYTES", 10**6)
    np.testing.assert_array_equal(iio.imread(f"{base}/big.png"), data)


class _EndlessHandler(http.server.BaseHTTPRequestHandler):
    """Sends ~2 MiB of body (no Content-Length), then stalls until the test ends."""

    release: threading.Event

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        try:
            for _ in range(32):
                self.wfile.write(b"\x89PNG" + bytes(65531))
            self.wfile.flush()
        except OSError:  # the client hung up: what the guard should do
            return
        self.release.wait(30)


def test_http_without_fsspec_stops_once_the_limit_has_arrived(monkeypatch):
    handler = type("Handler", (_EndlessHandler,), {"release": threading.Event()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setitem(sys.modules, "fsspec", None)
    from imgio.core import limits
    monkeypatch.setattr(limits, "MAX_BYTES", 1 << 20)
    url = f"http://127.0.0.1:{server.server_address[1]}/stream.png"
    try:
        # a client waiting for the end of the body would time out instead
        with pytest.raises(ImageTooLargeError, match=r"stream\.png.*arrived"):
            iio.imread(url)
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


class _ShortHandler(http.server.BaseHTTPRequestHandler):
    """Declares 100000 bytes, sends 3000 of a real PNG's bytes and hangs up."""

    body = b""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(self.body[:3000])
        self.close_connection = True


def test_http_without_fsspec_truncated_body_is_corrupt(monkeypatch):
    rgb = np.random.default_rng(5).integers(0, 255, (100, 100, 3)).astype(np.uint8)
    body = iio.imwrite("<bytes>", rgb, extension=".png")
    handler = type("Handler", (_ShortHandler,), {"body": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setitem(sys.modules, "fsspec", None)
    try:
        with pytest.raises(CorruptFileError, match=r"short\.png.*3,000 of the 100,000 bytes"):
            iio.imread(f"http://127.0.0.1:{server.server_address[1]}/short.png")
    finally:
        server.shutdown()
        server.server_close()


# -- missing backends -------------------------------------------------------------------------
def test_fsspec_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec", None)
    with pytest.raises(BackendMissingError, match=r"imgio\[zarr\]"):
        iio.imread("s3://bucket/x.tif")


def test_s3fs_missing_gives_install_hint(monkeypatch):
    import fsspec  # noqa: F401
    table = sys.modules["fsspec.registry"]._registry
    monkeypatch.setitem(sys.modules, "s3fs", None)
    for protocol in ("s3", "s3a"):  # forget the class fsspec may have imported already
        monkeypatch.delitem(table, protocol, raising=False)
    with pytest.raises(BackendMissingError, match=r"s3fs.*imgio\[zarr\]"):
        iio.imread("s3://bucket/x.tif")


def test_local_file_url_stays_local(tmp_path):
    vol = _vol((5, 10, 12))
    tifffile.imwrite(tmp_path / "l.tif", vol)
    np.testing.assert_array_equal(iio.imread(f"file://{tmp_path}/l.tif"), vol)
