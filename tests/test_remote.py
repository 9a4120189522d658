"""fsspec URLs: a real S3 endpoint (moto's server mode) and a range-capable HTTP server,
both on 127.0.0.1 and started here; memory:// in process.  Never the internet."""
import http.server
import os
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
from tests.servers import http_folder, moto_s3


@pytest.fixture(scope="session")
def s3():
    """``storage_options`` for a moto S3 server on a free loopback port, and a bucket."""
    with moto_s3("imgio-test") as (options, fs):
        yield options, fs


@pytest.fixture
def http_root(tmp_path):
    """``(base_url, folder, handler)`` of an HTTP server on 127.0.0.1 serving ``folder``."""
    with http_folder(tmp_path) as (base, handler):
        yield base, tmp_path, handler


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


# -- v2 with storage_options= ---------------------------------------------------------------
def test_v2_storage_options_read_and_write(s3, tmp_path):
    import imgio.v2 as imageio
    options, fs = s3
    vol = _vol((6, 40, 30))
    tif = _key("v2.tif")
    imageio.volwrite(tif, vol, storage_options=options)
    assert fs.exists(tif)
    np.testing.assert_array_equal(imageio.volread(tif, storage_options=options), vol)
    local = tmp_path / "v2.tif"
    imageio.volwrite(local, vol)  # the URL reads as the same file on disk does
    np.testing.assert_array_equal(imageio.imread(tif, storage_options=options),
                                  imageio.imread(local))
    frames = imageio.mimread(tif, storage_options=options)
    assert [f.shape for f in frames] == [f.shape for f in imageio.mimread(local)]
    with imageio.get_reader(tif, storage_options=options) as r, imageio.get_reader(local) as q:
        assert len(r) == len(q)
        np.testing.assert_array_equal(r.get_data(len(r) - 1), q.get_data(len(q) - 1))
    png = _key("v2.png")
    imageio.imwrite(png, vol[0].astype(np.uint8), storage_options=options)
    np.testing.assert_array_equal(imageio.imread(png, storage_options=options),
                                  vol[0].astype(np.uint8))
    ome = _key("v2.ome.zarr")
    with imageio.get_writer(ome, storage_options=options) as w:
        for frame in vol:
            w.append_data(frame)
    np.testing.assert_array_equal(imageio.volread(ome, storage_options=options), vol)


# -- lazy and to_dask on URLs: only what is indexed is fetched --------------------------------
class _CountS3:
    """Counts the objects s3fs fetches (zarr's chunk and metadata reads)."""

    def __init__(self, monkeypatch):
        import s3fs
        self.keys = []
        orig = s3fs.S3FileSystem._cat_file

        async def counted(fs, path, *args, **kwargs):
            self.keys.append(path)
            return await orig(fs, path, *args, **kwargs)
        monkeypatch.setattr(s3fs.S3FileSystem, "_cat_file", counted)


def test_lazy_and_to_dask_on_s3_read_only_the_chunks_indexed(s3, monkeypatch):
    import imgio
    options, _ = s3
    vol = _vol((32, 128, 128))
    url = _key("lazy.ome.zarr")
    iio.imwrite(url, vol, levels=1, chunks=(8, 32, 32), shards=False, storage_options=options)
    count = _CountS3(monkeypatch)
    arr = imgio.lazy(url, storage_options=options)
    assert arr.shape == vol.shape and arr.native_blocks == (8, 32, 32)
    opened = len(count.keys)
    count.keys.clear()
    np.testing.assert_array_equal(arr[3:5, 40:60, 0:20], vol[3:5, 40:60, 0:20])
    chunks = [k for k in count.keys if not k.endswith(".json")]
    assert len(chunks) == 1, count.keys  # one 8 x 32 x 32 chunk of 64
    assert opened <= 4, opened
    d = imgio.to_dask(url, chunks=(8, 32, 32), storage_options=options)
    count.keys.clear()
    np.testing.assert_array_equal(d[8:16, 32:64].compute(), vol[8:16, 32:64])
    chunks = [k for k in count.keys if not k.endswith(".json")]
    assert len(set(chunks)) == 4, chunks  # one chunk row of 4 chunks across X
    np.testing.assert_array_equal(d.mean(axis=0).compute(), vol.mean(axis=0))


def test_lazy_tiff_on_s3_and_memory(s3):
    import imgio
    options, fs = s3
    vol = _vol((20, 64, 48))
    url = _key("lazy.tif")
    iio.imwrite(url, vol, storage_options=options)
    arr = imgio.lazy(url, storage_options=options)
    np.testing.assert_array_equal(arr[7:9, 10:20], vol[7:9, 10:20])
    np.testing.assert_array_equal(imgio.to_dask(url, storage_options=options).compute(), vol)
    base = f"memory://imgio-{uuid.uuid4().hex}"
    for name in ("m.tif", "m.ome.zarr"):
        iio.imwrite(f"{base}/{name}", vol)
        arr = imgio.lazy(f"{base}/{name}")
        np.testing.assert_array_equal(arr[3], vol[3])
        np.testing.assert_array_equal(imgio.to_dask(f"{base}/{name}")[::5].compute(), vol[::5])


def test_lazy_http_tiff_fetches_only_the_pages_indexed(http_root):
    import imgio
    base, folder, handler = http_root
    vol = np.random.default_rng(5).integers(0, 60000, (64, 256, 256)).astype(np.uint16)
    tifffile.imwrite(folder / "lazy.tif", vol)  # 8 MiB of noise: nothing compresses
    size = os.path.getsize(folder / "lazy.tif")
    handler.sent = 0
    arr = imgio.lazy(f"{base}/lazy.tif")
    assert arr.shape == vol.shape
    np.testing.assert_array_equal(arr[30:34], vol[30:34])
    assert handler.sent < size / 4, (handler.sent, size)  # 4 pages of 64 are 1/16
    handler.sent = 0  # dask reads whole chunks: one page each here
    d = imgio.to_dask(f"{base}/lazy.tif", chunks=(1, 256, 256))
    np.testing.assert_array_equal(d[50].compute(), vol[50])
    assert handler.sent < size / 4, (handler.sent, size)


def test_lazy_http_ome_zarr_fetches_only_the_chunks_indexed(http_root):
    import imgio
    base, folder, handler = http_root
    vol = np.random.default_rng(6).integers(0, 60000, (32, 128, 128)).astype(np.uint16)
    iio.imwrite(folder / "l.ome.zarr", vol, levels=1, chunks=(8, 64, 64), shards=False,
                compression=None)
    handler.sent = 0
    arr = imgio.lazy(f"{base}/l.ome.zarr")
    np.testing.assert_array_equal(arr[0:8, 0:64, 0:64], vol[0:8, 0:64, 0:64])
    assert handler.sent < 8 * 64 * 64 * 2 + 20000, handler.sent  # one chunk and metadata


# -- remote writes: a failed write leaves no readable image -----------------------------------
class _Boom(Exception):
    pass


def test_s3_failed_zarr_write_leaves_no_image(s3):
    options, fs = s3
    vol = _vol((16, 64, 64))
    url = _key("fail.ome.zarr")
    with pytest.raises(_Boom):
        with iio.imopen(url, "w", storage_options=options) as f:
            for i, frame in enumerate(vol):
                f.append(frame, chunks=(4, 32, 32), levels=2)
                if i == 9:  # two shard rows are on S3 already
                    raise _Boom()
    assert not fs.exists(url + "/zarr.json")
    assert not fs.find(url), fs.find(url)  # what it wrote was removed
    with pytest.raises(FileNotFoundError):
        iio.imread(url, storage_options=options)


def test_s3_interrupted_zarr_write_is_no_image(s3, monkeypatch):
    """A writer that dies without cleaning up (here: cleanup disabled) leaves level arrays
    but no root zarr.json: no Zarr group, no image, for imgio or zarr-python."""
    import zarr
    from zarr.storage import FsspecStore
    from imgio.plugins.zarr import plugin as zplugin
    options, fs = s3
    monkeypatch.setattr(zplugin, "discard_store", lambda store: None)
    url = _key("died.ome.zarr")
    with pytest.raises(_Boom):
        with iio.imopen(url, "w", storage_options=options) as f:
            for i, frame in enumerate(_vol((16, 64, 64))):
                f.append(frame, chunks=(4, 32, 32), levels=2)
                if i == 9:
                    raise _Boom()
    assert fs.exists(url + "/0/zarr.json") and not fs.exists(url + "/zarr.json")
    with pytest.raises(FileNotFoundError):
        iio.imread(url, storage_options=options)
    store = FsspecStore.from_url(url, storage_options=options, read_only=True)
    with pytest.raises(Exception, match="(?i)not found|no group"):
        zarr.open_group(store, mode="r", zarr_format=3)


def test_s3_failed_overwrite_removes_the_old_image_first(s3):
    options, fs = s3
    url = _key("over.ome.zarr")
    iio.imwrite(url, _vol((8, 32, 32)), storage_options=options)
    with pytest.raises(_Boom):
        with iio.imopen(url, "w", storage_options=options) as f:
            f.append(_vol((1, 32, 32))[0])
            raise _Boom()
    with pytest.raises(FileNotFoundError):  # neither the old image nor a mix of both
        iio.imread(url, storage_options=options)


def test_memory_failed_zarr_write_leaves_no_image():
    url = f"memory://imgio-{uuid.uuid4().hex}/f.ome.zarr"
    with pytest.raises(_Boom):
        with iio.imopen(url, "w") as f:
            f.append(_vol((1, 32, 32))[0], chunks=(1, 16, 16))
            f.append(_vol((1, 32, 32))[0])
            raise _Boom()
    with pytest.raises(FileNotFoundError):
        iio.imread(url)
    iio.imwrite(url, _vol((4, 32, 32)))  # and the target is free for a new write
    np.testing.assert_array_equal(iio.imread(url), _vol((4, 32, 32)))


def test_s3_failed_tiff_write_uploads_nothing(s3, monkeypatch):
    options, fs = s3
    url = _key("fail.tif")
    with pytest.raises(_Boom):
        with iio.imopen(url, "w", storage_options=options) as f:
            f.write(_vol((4, 32, 32)))
            raise _Boom()
    assert not fs.exists(url)
    import fsspec
    writer_fs = fsspec.core.url_to_fs(url, **options)[0]  # the (cached) instance imgio uses

    def broken_put(*args, **kwargs):
        raise ConnectionError("upload cut")
    monkeypatch.setattr(writer_fs, "put_file", broken_put)
    from imgio.errors import WriteError
    with pytest.raises(WriteError, match="fail.tif: upload cut"):
        iio.imwrite(url, _vol((4, 32, 32)), storage_options=options)
    assert not fs.exists(url)


def test_s3_failed_convert_leaves_no_image(s3, tmp_path, monkeypatch):
    from imgio import convert as conv
    options, fs = s3
    vol = _vol((40, 64, 48))
    tifffile.imwrite(tmp_path / "s.tif", vol)
    url = _key("cfail.ome.zarr")
    calls = []
    real = conv._tile_reader

    def failing(source, perm, a, b):
        read = real(source, perm, a, b)

        def tile(box):
            calls.append(a)
            if a > 0:
                raise _Boom()
            return read(box)
        return tile
    monkeypatch.setattr(conv, "_tile_reader", failing)
    with pytest.raises(_Boom):
        conv.convert(tmp_path / "s.tif", url, levels=2, chunks=(8, 32, 32),
                     storage_options=options)
    assert calls and not fs.find(url)
    with pytest.raises(FileNotFoundError):
        iio.imread(url, storage_options=options)


def test_memory_plain_zarr_write_root_last():
    url = f"memory://imgio-{uuid.uuid4().hex}/p.zarr"
    vol = _vol((4, 32, 32))
    iio.imwrite(url, vol, ome=False, metadata={"note": "x"})
    np.testing.assert_array_equal(iio.imread(url, dataset="data"), vol)
    assert iio.immeta(url, dataset="data")["note"] == "x"
    bad = url.replace("p.zarr", "q.zarr")
    with pytest.raises(_Boom):
        with iio.imopen(bad, "w") as f:
            f.write(vol, ome=False)
            raise _Boom()
    with pytest.raises(FileNotFoundError):
        iio.imread(bad)
