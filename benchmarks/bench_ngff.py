"""Issue 18's benchmarks, side by side, with time AND peak memory.

Usage::

    python benchmarks/bench_ngff.py            # CI sizes (a couple of minutes)
    python benchmarks/bench_ngff.py --full     # the issue's sizes (1 GiB TIFF, 4 GiB store)
    python benchmarks/bench_ngff.py --only a,c --rounds 5

(a) uint16 TIFF -> OME-Zarr with a 3-level pyramid (z, y, x halved per level,
    inner chunks 64 x 128 x 128, shards 64 x 512 x 512, zstd level 3): imgio
    (``imgio.convert.convert``, streamed) against ngff-zarr (``tifffile.imread`` +
    ``to_ngff_image`` + ``to_multiscales(method=DASK_BIN_SHRINK)`` (a mean, as imgio's) +
    ``to_ngff_zarr``) and ome-zarr-py (``tifffile.imread`` + ``write_image``, its default
    resize method).  Every run is a fresh child process; its time excludes interpreter
    start and imports, its peak memory is the rise of the child's resident set (VmHWM,
    reset after the imports through /proc/self/clear_refs) over its resident set before
    the work (and, sampled every 2 ms, the rise of its anonymous memory alone: the
    heap, without the page cache that a memory-mapped source read maps in).  Target: imgio faster than both, imgio's peak under 2 chunk rows of the
    volume (one chunk row = 64 planes of the whole Y x X of level 0).
(b) one 64 x 512 x 512 box (z, y, x) of an OME-Zarr of 4 GiB (``--full``) on a moto S3
    server (server mode, 127.0.0.1, started here): imgio (``imopen(url).read_region``,
    open included) against zarr-python (``zarr.open_array(FsspecStore)[box]``, open
    included), interleaved, median of the rounds.  Target: within 1.1x.  The volume is
    smooth (compressible) so that the store is created quickly.
(c) a range of pages (8) of a multi-page TIFF on a range-capable HTTP server on
    127.0.0.1 (started here): imgio (``imgio.lazy(url)[k:k + 8]``, byte ranges) against
    downloading the file and reading the pages from the bytes; time and bytes sent by
    the server.

Figures come from one machine at one time: measure on a quiet machine (the numbers
printed on a busy one say little about absolute speed, a little about ratios).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

# the loopback servers the tests use too (tests/servers.py), when run as a script
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.servers import http_folder, moto_s3  # noqa: E402

CHUNKS = (64, 128, 128)
SHARDS = (64, 512, 512)
ZSTD_LEVEL = 3


def sizes(full: bool) -> dict:
    if full:
        return {"tiff": (512, 1024, 1024), "s3": (256, 4096, 2048), "box": (64, 512, 512),
                "http": (256, 512, 512)}
    return {"tiff": (128, 512, 512), "s3": (80, 1024, 1024), "box": (64, 512, 512),
            "http": (64, 256, 256)}


def mib(n: float) -> str:
    return f"{n / 2**20:8.1f} MiB"


# -- (a) TIFF -> OME-Zarr, one child process per run --------------------------------------------
def make_tiff(path: str, shape) -> None:
    import tifffile
    z, y, x = shape
    base = (np.add.outer(np.arange(y), np.arange(x)) % 512).astype(np.uint16) * 8
    rng = np.random.default_rng(0)
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for i in range(z):  # plane by plane: the full volume is never in memory
            tw.write(base + rng.integers(0, 64, (y, x), dtype=np.uint16), contiguous=True)


def _status(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def child(impl: str, src: str, out: str) -> None:
    """Run one conversion in this (fresh) process and print {seconds, peak_bytes}."""
    import tifffile  # noqa: F401 - every import before the baseline
    import zarr
    from zarr.codecs import ZstdCodec
    if impl == "imgio":
        import imgio.v3  # noqa: F401
        from imgio.convert import convert

        def run():
            convert(src, out, levels=3, chunks=CHUNKS, shards=SHARDS, compression="zstd")
    elif impl == "ngff-zarr":
        import ngff_zarr

        def run():
            data = tifffile.imread(src)
            image = ngff_zarr.to_ngff_image(data, dims=("z", "y", "x"))
            ms = ngff_zarr.to_multiscales(image, scale_factors=[2, 4], chunks=CHUNKS,
                                          method=ngff_zarr.Methods.DASK_BIN_SHRINK)
            ngff_zarr.to_ngff_zarr(out, ms, version="0.5",
                                   chunks_per_shard=tuple(s // c for s, c in zip(SHARDS, CHUNKS)),
                                   compressors=[ZstdCodec(level=ZSTD_LEVEL)])
    elif impl == "ome-zarr-py":
        import warnings
        from ome_zarr.writer import write_image

        def run():
            data = tifffile.imread(src)
            root = zarr.open_group(out, mode="w", zarr_format=3)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                write_image(data, root, axes="zyx",
                            scale_factors=[{"z": 2, "y": 2, "x": 2}, {"z": 4, "y": 4, "x": 4}],
                            storage_options={"chunks": CHUNKS, "shards": SHARDS,
                                             "compressor": [ZstdCodec(level=ZSTD_LEVEL)]})
    else:
        raise SystemExit(f"unknown implementation {impl}")
    reset = True
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current resident set
    except OSError:
        reset = False
    base = _status("VmRSS")
    base_anon = _status("RssAnon")
    anon = [base_anon]
    done = threading.Event()

    def sample():  # anonymous memory (heap), without the page cache a memmap maps in
        while not done.wait(0.002):
            anon[0] = max(anon[0], _status("RssAnon"))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    run()
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    hwm = _status("VmHWM")
    print(json.dumps({"seconds": seconds, "peak_bytes": hwm - base, "hwm": hwm,
                      "peak_anon": max(anon[0], _status("RssAnon")) - base_anon,
                      "baseline": base, "hwm_reset": reset}))


def run_child(impl: str, src: str, out: str, nice: bool) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", impl, src, out]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{impl} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)
    return result


def check_same_pyramid(src: str, folder: str, impls) -> None:
    """The three outputs hold the same level shapes (sanity, not timed)."""
    import zarr
    for impl in impls:
        out = os.path.join(folder, f"check-{impl}.ome.zarr")
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([sys.executable, os.path.abspath(__file__), "--child", impl, src, out],
                       check=True, capture_output=True)
        g = zarr.open_group(out, mode="r")
        ms = (g.attrs.get("ome") or g.attrs)["multiscales"][0]
        shapes = [tuple(g[d["path"]].shape) for d in ms["datasets"]]
        chunks = tuple(g[ms["datasets"][0]["path"]].chunks)
        print(f"    {impl:12s} levels {shapes} chunks {chunks}")
        shutil.rmtree(out, ignore_errors=True)


def bench_a(sz: dict, rounds: int, folder: str,
            impls=("imgio", "ngff-zarr", "ome-zarr-py")) -> dict:
    shape = sz["tiff"]
    src = os.path.join(folder, "stack.tif")
    make_tiff(src, shape)
    nbytes = int(np.prod(shape)) * 2
    chunk_row = CHUNKS[0] * shape[1] * shape[2] * 2
    print(f"\n(a) TIFF {shape} uint16 ({mib(nbytes).strip()}) -> OME-Zarr, 3 levels; "
          f"one chunk row = {mib(chunk_row).strip()}")
    check_same_pyramid(src, folder, impls)
    runs: dict[str, list[dict]] = {i: [] for i in impls}
    for r in range(rounds):  # interleaved: each round runs every implementation once
        for impl in impls:
            runs[impl].append(run_child(impl, src, os.path.join(folder, f"{impl}.ome.zarr"),
                                        False))
    print(f"    {'implementation':14s} {'median s':>9s} {'min s':>8s} {'peak RSS':>13s} "
          f"{'/ chunk row':>11s} {'peak anon':>13s} {'/ chunk row':>11s}")
    res = {}
    for impl in impls:
        t = [x["seconds"] for x in runs[impl]]
        peak = max(x["peak_bytes"] for x in runs[impl])
        anon = max(x["peak_anon"] for x in runs[impl])
        res[impl] = {"median": statistics.median(t), "min": min(t), "peak": peak,
                     "peak_anon": anon}
        print(f"    {impl:14s} {statistics.median(t):9.2f} {min(t):8.2f} {mib(peak):>13s} "
              f"{peak / chunk_row:11.2f} {mib(anon):>13s} {anon / chunk_row:11.2f}")
    mine = res[impls[0]]
    for peer in impls[1:]:
        ratio = mine["median"] / res[peer]["median"]
        print(f"    imgio / {peer}: {ratio:.2f}  (target < 1: "
              f"{'met' if ratio < 1 else 'MISSED'})")
    rows = mine["peak"] / chunk_row
    print(f"    imgio peak RSS = {rows:.2f} chunk rows  (target < 2: "
          f"{'met' if rows < 2 else 'MISSED'}); anonymous (heap) only: "
          f"{mine['peak_anon'] / chunk_row:.2f}")
    os.remove(src)
    return res


# -- (b) S3 box read -------------------------------------------------------------------------
def s3_plane(i: int, y: int, x: int) -> np.ndarray:
    """Plane ``i`` of the S3 volume: smooth, so the store compresses well and fills fast."""
    return ((np.add.outer(np.arange(y) // 4, np.arange(x) // 4) + i) % 4096).astype(np.uint16)


def bench_b(sz: dict, rounds: int) -> dict:
    import imgio.v3 as iio
    import zarr
    from zarr.storage import FsspecStore
    servers = contextlib.ExitStack()
    options, _fs = servers.enter_context(moto_s3("bench"))
    try:
        z, y, x = sz["s3"]
        url = "s3://bench/big.ome.zarr"
        t0 = time.perf_counter()
        with iio.imopen(url, "w", storage_options=options) as f:
            for i in range(z):
                f.append(s3_plane(i, y, x), levels=1, chunks=CHUNKS, shards=SHARDS)
        made = time.perf_counter() - t0
        bz, by, bx = sz["box"]
        box = (slice(8, 8 + bz), slice(100, 100 + by), slice(40, 40 + bx))
        print(f"\n(b) box {sz['box']} of an OME-Zarr {sz['s3']} uint16 "
              f"({mib(z * y * x * 2).strip()}) on moto S3 (made in {made:.1f} s)")
        expected = np.stack([s3_plane(i, y, x)[box[1], box[2]]
                             for i in range(box[0].start, box[0].stop)])

        def imgio_read():
            with iio.imopen(url, "r", storage_options=options) as f:
                return f.read_region(box)

        def zarr_read():
            store = FsspecStore.from_url(url, storage_options=options, read_only=True)
            return zarr.open_array(store=store, path="0", mode="r", zarr_format=3)[box]
        for fn in (imgio_read, zarr_read):
            np.testing.assert_array_equal(fn(), expected)
        times = {"imgio": [], "zarr-python": []}
        for _ in range(rounds):
            for name, fn in (("imgio", imgio_read), ("zarr-python", zarr_read)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        res = {k: statistics.median(v) for k, v in times.items()}
        for k, v in times.items():
            print(f"    {k:14s} median {statistics.median(v) * 1e3:8.1f} ms  "
                  f"min {min(v) * 1e3:8.1f} ms")
        ratio = res["imgio"] / res["zarr-python"]
        print(f"    imgio / zarr-python: {ratio:.2f}  (target <= 1.1: "
              f"{'met' if ratio <= 1.1 else 'MISSED'})")
        return res
    finally:
        servers.close()


# -- (c) TIFF pages over HTTP ----------------------------------------------------------------
def bench_c(sz: dict, rounds: int, folder: str) -> dict:
    import tifffile
    import imgio
    import urllib.request
    shape = sz["http"]
    path = os.path.join(folder, "pages.tif")
    make_tiff(path, shape)
    servers = contextlib.ExitStack()
    base, handler = servers.enter_context(http_folder(folder))
    url = f"{base}/pages.tif"
    k, n = shape[0] // 2, 8
    expected = tifffile.imread(path, key=range(k, k + n))
    try:
        def imgio_pages():
            return np.asarray(imgio.lazy(url)[k:k + n])

        def download_pages():
            with urllib.request.urlopen(url) as r:  # noqa: S310 - 127.0.0.1 only
                data = r.read()
            return tifffile.imread(io.BytesIO(data), key=range(k, k + n))
        res = {}
        for name, fn in (("imgio", imgio_pages), ("download", download_pages)):
            handler.sent = handler.requests = 0
            np.testing.assert_array_equal(fn(), expected)
            res[name] = {"bytes": handler.sent, "requests": handler.requests, "times": []}
        for _ in range(rounds):
            for name, fn in (("imgio", imgio_pages), ("download", download_pages)):
                t0 = time.perf_counter()
                fn()
                res[name]["times"].append(time.perf_counter() - t0)
        size = os.path.getsize(path)
        print(f"\n(c) pages {k}:{k + n} of a TIFF {shape} uint16 ({mib(size).strip()}) over "
              f"HTTP; the pages hold {mib(expected.nbytes).strip()}")
        for name, r in res.items():
            print(f"    {name:10s} median {statistics.median(r['times']) * 1e3:8.1f} ms  "
                  f"{mib(r['bytes'])} sent in {r['requests']} requests")
        ratio = statistics.median(res["imgio"]["times"]) / statistics.median(
            res["download"]["times"])
        print(f"    imgio / download: time {ratio:.2f}, bytes "
              f"{res['imgio']['bytes'] / res['download']['bytes']:.3f}")
        return res
    finally:
        servers.close()
        os.remove(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes")
    parser.add_argument("--only", default="a,b,c", help="which benchmarks (a, b, c)")
    parser.add_argument("--impls", default="imgio,ngff-zarr,ome-zarr-py",
                        help="(a): which implementations, imgio first")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--child", nargs=3, metavar=("IMPL", "SRC", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    sz = sizes(args.full)
    which = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-ngff-") as folder:
        if "a" in which:
            bench_a(sz, args.rounds or 3, folder, tuple(args.impls.split(",")))
        if "b" in which:
            bench_b(sz, args.rounds or 9)
        if "c" in which:
            bench_c(sz, args.rounds or 7, folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
