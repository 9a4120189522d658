"""OME-Zarr writing, S3 box reads and TIFF page ranges over HTTP (issue 18).

Side by side in one process, on the same generated data:

* "tiff -> ome-zarr 3 levels": ``imgio.convert.convert(tif, out, levels=3)``
  (streams shard rows, mean pyramid of z, y, x) against ngff-zarr
  (``to_ngff_image`` + ``to_multiscales(scale_factors=[2, 4], method=DASK_BIN_SHRINK)``
  (a mean) + ``to_ngff_zarr``) and ome-zarr-py (``write_image`` with z, y and x
  halved per level, its default resize), all three writing the same chunks,
  shards and zstd level 3; the peers are given the array read by tifffile (they
  take arrays, not files; the read is timed with them).  Peak memory from one extra
  call (tracemalloc: NumPy's buffers, not those of C codecs);
* "s3 box read": one box of an OME-Zarr on a moto S3 server on 127.0.0.1, with
  imgio (``imopen(url).read_region(box)``, open included) against zarr-python
  (``zarr.open_array(FsspecStore)[box]``, open included);
* "http tiff page": one page of a multi-page TIFF served by a range-capable
  HTTP server on 127.0.0.1: ``imgio.v3.imread(url, page=k)`` against
  downloading the file and reading the page from the bytes; bytes sent by the
  server are recorded in ``extra_info["bytes_transferred"]``.

Small sizes by default; ``IMGIO_BENCH_FULL=1`` uses the issue's sizes (a 1 GiB
volume; a 4 GiB store with a 512 x 512 x 64 box).  Quick-size figures are noisy.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import tifffile
import zarr

import imgio.v3 as iio
from imgio.convert import convert

from tests.servers import http_folder, moto_s3

from .conftest import FULL

VOLUME = (512, 1024, 1024) if FULL else (64, 256, 256)          # 1 GiB / 8 MiB uint16
S3_VOLUME = (256, 4096, 2048) if FULL else (64, 512, 512)   # 4 GiB / 32 MiB
BOX = (64, 512, 512) if FULL else (32, 256, 256)
HTTP_PAGES = (256, 512, 512) if FULL else (64, 256, 256)

TGROUP = "tiff -> ome-zarr 3 levels {}x{}x{} u2".format(*VOLUME)
SGROUP = "s3 box read {}x{}x{}".format(*BOX)
HGROUP = "http tiff page of {}x{}x{} u2".format(*HTTP_PAGES)


def _frames(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z, y, x = shape
    base = (np.add.outer(np.arange(y), np.arange(x)) % 512).astype(np.uint16) * 8
    out = np.empty(shape, np.uint16)
    for i in range(z):
        out[i] = base + rng.integers(0, 64, (y, x), dtype=np.uint16)
    return out


@pytest.fixture(scope="module")
def tiff_src(tmp_path_factory):
    path = tmp_path_factory.mktemp("zb") / "stack.tif"
    tifffile.imwrite(path, _frames(VOLUME))
    return path


def _fresh(path):
    shutil.rmtree(path, ignore_errors=True)


# -- TIFF -> OME-Zarr -------------------------------------------------------------------------
# the layout every implementation writes (as benchmarks/bench_ngff.py)
CHUNKS = (64, 128, 128) if FULL else (32, 64, 64)
SHARDS = (64, 512, 512) if FULL else (32, 128, 128)


def _level_shape(out, k: int) -> tuple:
    """Shape of level ``k`` of an OME-Zarr, found through its multiscales metadata."""
    g = zarr.open_group(str(out), mode="r")
    ms = (g.attrs.get("ome") or g.attrs)["multiscales"][0]
    return tuple(g[ms["datasets"][k]["path"]].shape)


def _zstd():
    from zarr.codecs import ZstdCodec
    return [ZstdCodec(level=3)]


@pytest.mark.benchmark(group=TGROUP)
def test_imgio_tiff_to_omezarr(benchmark, record_peak, tiff_src, tmp_path):
    out = tmp_path / "i.ome.zarr"

    def run():
        convert(tiff_src, out, levels=3, chunks=CHUNKS, shards=SHARDS, compression="zstd")
    benchmark.pedantic(run, setup=lambda: _fresh(out), rounds=3)
    _fresh(out)
    record_peak(run)
    assert iio.improps(out, level=2).shape == tuple(-(-s // 4) for s in VOLUME)


@pytest.mark.benchmark(group=TGROUP)
def test_ngffzarr_tiff_to_omezarr(benchmark, record_peak, tiff_src, tmp_path):
    import ngff_zarr
    out = tmp_path / "n.ome.zarr"

    def run():
        data = tifffile.imread(tiff_src)
        image = ngff_zarr.to_ngff_image(data, dims=("z", "y", "x"))
        ms = ngff_zarr.to_multiscales(image, scale_factors=[2, 4], chunks=CHUNKS,
                                      method=ngff_zarr.Methods.DASK_BIN_SHRINK)
        ngff_zarr.to_ngff_zarr(str(out), ms, version="0.5", compressors=_zstd(),
                               chunks_per_shard=tuple(s // c for s, c in zip(SHARDS, CHUNKS)))
    benchmark.pedantic(run, setup=lambda: _fresh(out), rounds=3)
    _fresh(out)
    record_peak(run)
    assert _level_shape(out, 2) == tuple(-(-s // 4) for s in VOLUME)


@pytest.mark.benchmark(group=TGROUP)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_omezarrpy_tiff_to_omezarr(benchmark, record_peak, tiff_src, tmp_path):
    from ome_zarr.writer import write_image
    out = tmp_path / "o.ome.zarr"

    def run():
        data = tifffile.imread(tiff_src)
        root = zarr.open_group(str(out), mode="w", zarr_format=3)
        write_image(data, root, axes="zyx",
                    scale_factors=[{"z": 2, "y": 2, "x": 2}, {"z": 4, "y": 4, "x": 4}],
                    storage_options={"chunks": CHUNKS, "shards": SHARDS,
                                     "compressor": _zstd()})
    benchmark.pedantic(run, setup=lambda: _fresh(out), rounds=3)
    _fresh(out)
    record_peak(run)
    assert _level_shape(out, 2) == tuple(-(-s // 4) for s in VOLUME)


# -- S3 box read ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3_store():
    with moto_s3("bench") as (options, _fs):
        url = "s3://bench/big.ome.zarr"
        z, y, x = S3_VOLUME
        # streamed frame by frame (the full-size store is 4 GiB: never in memory)
        with iio.imopen(url, "w", storage_options=options) as f:
            for i in range(z):
                f.append(_plane(i, y, x), levels=1, chunks=CHUNKS, shards=SHARDS)
        yield url, options


def _plane(i, y, x) -> np.ndarray:
    """Plane ``i`` of the S3 volume, reproducible without storing the volume."""
    return ((np.add.outer(np.arange(y), np.arange(x) * 3) + 17 * i) % 4001).astype(np.uint16)


def _expected(box) -> np.ndarray:
    z, y, x = S3_VOLUME
    return np.stack([_plane(i, y, x)[box[1], box[2]] for i in range(box[0].start, box[0].stop)])


def _box():
    z, y, x = BOX
    return (slice(8, 8 + z), slice(100, 100 + y), slice(40, 40 + x))


@pytest.mark.benchmark(group=SGROUP)
def test_imgio_s3_box(benchmark, s3_store):
    url, options = s3_store
    box = _box()

    def run():
        with iio.imopen(url, "r", storage_options=options) as f:
            return f.read_region(box)
    got = benchmark.pedantic(run, warmup_rounds=2, rounds=9)  # warm: connections, moto
    np.testing.assert_array_equal(got, _expected(box))


@pytest.mark.benchmark(group=SGROUP)
def test_zarr_s3_box(benchmark, s3_store):
    from zarr.storage import FsspecStore
    url, options = s3_store
    box = _box()

    def run():
        store = FsspecStore.from_url(url, storage_options=options, read_only=True)
        return zarr.open_array(store=store, path="0", mode="r", zarr_format=3)[box]
    got = benchmark.pedantic(run, warmup_rounds=2, rounds=9)
    np.testing.assert_array_equal(got, _expected(box))


# -- TIFF page over HTTP --------------------------------------------------------------------
@pytest.fixture(scope="module")
def http_tiff(tmp_path_factory):
    folder = tmp_path_factory.mktemp("http")
    vol = _frames(HTTP_PAGES, seed=3)
    tifffile.imwrite(folder / "pages.tif", vol)
    with http_folder(folder) as (base, handler):
        yield f"{base}/pages.tif", vol, handler


@pytest.mark.benchmark(group=HGROUP)
def test_imgio_http_tiff_page(benchmark, http_tiff):
    url, vol, handler = http_tiff
    k = HTTP_PAGES[0] // 2
    got = benchmark(iio.imread, url, page=k)
    np.testing.assert_array_equal(got, vol[k])
    handler.sent = 0
    iio.imread(url, page=k)
    benchmark.extra_info["bytes_transferred"] = handler.sent


@pytest.mark.benchmark(group=HGROUP)
def test_download_http_tiff_page(benchmark, http_tiff):
    import urllib.request
    url, vol, handler = http_tiff
    k = HTTP_PAGES[0] // 2

    def run():
        with urllib.request.urlopen(url) as r:  # noqa: S310 - 127.0.0.1 only
            data = r.read()
        return _page(data, k)
    got = benchmark(run)
    np.testing.assert_array_equal(got, vol[k])
    handler.sent = 0
    run()
    benchmark.extra_info["bytes_transferred"] = handler.sent


def _page(data: bytes, k: int) -> np.ndarray:
    import io
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        return tif.pages[k].asarray()
