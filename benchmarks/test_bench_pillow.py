"""Per-call overhead of reading many small PNGs: imgio against Pillow and imageio.

Data: 256 x 256 RGB uint8 PNGs (a smooth pattern plus mild noise, about 90 kB
each, written by Pillow), in the page cache.  One benchmark call reads every
file; divide by ``extra_info["files"]`` for the time per file.

* ``test_pillow_...``: ``np.asarray(PIL.Image.open(path))``, the floor;
* ``test_imgio_...``: ``imgio.v3.imread(path)`` (the whole path: Request,
  plugin choice by content, the size guard, the Pillow plugin, a writeable array);
* ``test_imageio_...``: ``imageio.v3.imread(path)``.

Target (issue 8): imgio within 1.1x of Pillow + ``np.asarray`` and faster than
imageio.  Default size is 50 files so ``--benchmark-disable`` stays fast;
``IMGIO_BENCH_FULL=1`` reads 2,000.
"""
import os

import numpy as np
import pytest
from PIL import Image

import imgio.v3 as iio

FULL = os.environ.get("IMGIO_BENCH_FULL") == "1"
N_FILES = 2000 if FULL else 50
ROUNDS = 5 if FULL else 3
SHAPE = (256, 256, 3)
GROUP = f"png {SHAPE[0]}x{SHAPE[1]} rgb x{N_FILES}"


@pytest.fixture(scope="module")
def png_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    variants = []
    for v in range(16):
        base = np.stack([128 + 60 * np.sin((xx + 7 * c + v) / 17.0) * np.cos((yy - 3 * c) / 23.0)
                         for c in range(3)], axis=-1)
        variants.append(np.clip(base + rng.normal(0, 2, SHAPE), 0, 255).astype(np.uint8))
    paths = []
    for i in range(N_FILES):
        path = str(folder / f"{i:05d}.png")
        Image.fromarray(variants[i % len(variants)]).save(path)
        paths.append(path)
    for path in paths:  # warm the page cache
        with open(path, "rb") as fh:
            fh.read()
    return paths


def _run(benchmark, read, paths, record_peak):
    def read_all():
        last = None
        for p in paths:
            last = read(p)
        return last

    record_peak(read_all)  # one un-timed call: peak memory into extra_info
    benchmark.extra_info["files"] = len(paths)
    last = benchmark.pedantic(read_all, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert last.shape == SHAPE and last.dtype == np.uint8
    benchmark.extra_info["nbytes"] = int(last.nbytes) * len(paths)


@pytest.mark.benchmark(group=GROUP)
def test_imgio_imread_many_png(benchmark, png_files, record_peak):
    _run(benchmark, iio.imread, png_files, record_peak)


@pytest.mark.benchmark(group=GROUP)
def test_pillow_asarray_many_png(benchmark, png_files, record_peak):
    _run(benchmark, lambda p: np.asarray(Image.open(p)), png_files, record_peak)


@pytest.mark.benchmark(group=GROUP)
def test_imageio_imread_many_png(benchmark, png_files, record_peak):
    imageio_v3 = pytest.importorskip("imageio.v3")
    _run(benchmark, imageio_v3.imread, png_files, record_peak)
