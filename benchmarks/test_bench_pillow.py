"""Per-call overhead of reading many small PNGs: imgio against Pillow and imageio.

Data: 256 x 256 RGB uint8 PNGs (a smooth pattern plus mild noise, about 90 kB
each, written by Pillow), in the page cache.  One benchmark call reads every
file; divide by ``extra_info["files"]`` for the time per file.

* ``test_pillow_...``: Pillow at its best, ``np.asarray`` of
  ``PIL.Image.open(path, formats=("PNG",))`` in a ``with`` block (``formats``
  skips Pillow's trial of its other readers; ``im.tobytes`` and a bare
  ``Image.open`` measured within noise of it);
* ``test_imagecodecs_...``: the file's bytes through ``imagecodecs.png_decode``
  (libpng), the decoder imgio's fast path uses: the floor of any PNG reader
  built on it (no metadata, no checks);
* ``test_imgio_...``: ``imgio.v3.imread(path)`` (the whole path: Request,
  plugin choice by content, the size guard, the Pillow plugin, a writeable array);
* ``test_imageio_...``: ``imageio.v3.imread(path)``.

Targets: imgio at most 0.9x of Pillow (issue 21; 1.1x in issue 8) and faster
than imageio.  Default size is 50 files read 9 times (a median of 9 is stable on
a loaded 2-core machine, 3 was not) so ``--benchmark-disable`` stays fast;
``IMGIO_BENCH_FULL=1`` reads 2,000.
"""
import os

import imagecodecs
import numpy as np
import pytest
from PIL import Image

import imgio.v3 as iio

FULL = os.environ.get("IMGIO_BENCH_FULL") == "1"
N_FILES = 2000 if FULL else 50
ROUNDS = 5 if FULL else 9
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

    read(paths[0])  # first call imports the decoder: not part of the per-file peak
    record_peak(read_all)  # one un-timed call: peak memory into extra_info
    benchmark.extra_info["files"] = len(paths)
    last = benchmark.pedantic(read_all, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert last.shape == SHAPE and last.dtype == np.uint8
    benchmark.extra_info["nbytes"] = int(last.nbytes) * len(paths)


@pytest.mark.benchmark(group=GROUP)
def test_imgio_imread_many_png(benchmark, png_files, record_peak):
    _run(benchmark, iio.imread, png_files, record_peak)


def _pillow_read(path):
    with Image.open(path, formats=("PNG",)) as im:
        return np.asarray(im)


@pytest.mark.benchmark(group=GROUP)
def test_pillow_asarray_many_png(benchmark, png_files, record_peak):
    _run(benchmark, _pillow_read, png_files, record_peak)


def _imagecodecs_read(path):
    with open(path, "rb") as fh:
        return imagecodecs.png_decode(fh.read())


@pytest.mark.benchmark(group=GROUP)
def test_imagecodecs_png_decode_many_png(benchmark, png_files, record_peak):
    _run(benchmark, _imagecodecs_read, png_files, record_peak)


@pytest.mark.benchmark(group=GROUP)
def test_imageio_imread_many_png(benchmark, png_files, record_peak):
    import imageio.v3 as imageio_v3
    _run(benchmark, imageio_v3.imread, png_files, record_peak)
