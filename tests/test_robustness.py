"""Bad input, faults and concurrency, across every plugin.

* mutated real and generated files never crash, hang or return silently: a
  read either succeeds or raises an imgio error (or IndexError/FileNotFoundError);
* opening thousands of readers leaks no file descriptors;
* one reader shared by threads returns correct data.
"""
from __future__ import annotations

import io
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imgio.v3 as iio
from imgio.core import registry
from imgio.errors import ImgioError

DATA = Path(__file__).parent / "data"


def _tiff_bytes() -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.arange(3 * 20 * 17, dtype=np.uint16).reshape(3, 20, 17),
                     photometric="minisblack", compression="zlib")
    return buf.getvalue()


def _npy_bytes() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(60, dtype="<f4").reshape(6, 10))
    return buf.getvalue()


def _npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, np.arange(50, dtype=np.int16).reshape(5, 10), np.ones((3, 3)))
    return buf.getvalue()


def _seeds() -> dict[str, bytes]:
    seeds = {
        "tiff-generated": _tiff_bytes(),
        "tiff-multipage": (DATA / "multipage.tif").read_bytes(),
        "tiff-rgb": (DATA / "multipage_rgb.tif").read_bytes(),
        "npy": _npy_bytes(),
        "npz": _npz_bytes(),
    }
    names = {s.name for s in registry.PLUGINS}
    if "pillow" in names:
        seeds["png"] = (DATA / "checkerboard.png").read_bytes()
        from PIL import Image
        frames = [Image.fromarray(np.full((12, 16, 3), 40 * i, np.uint8)) for i in range(3)]
        buf = io.BytesIO()
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
        seeds["gif"] = buf.getvalue()
        seeds["jpeg"] = (DATA / "chelsea.jpg").read_bytes()
    if "hdf5" in names:
        import h5py
        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            f.create_dataset("data", data=np.arange(4 * 8 * 8, dtype=np.uint16).reshape(4, 8, 8),
                             chunks=(1, 8, 8), compression="gzip")
        seeds["hdf5"] = buf.getvalue()
    return seeds


SEEDS = _seeds()
ALLOWED = (ImgioError, IndexError, FileNotFoundError)


def _read_all(data: bytes) -> None:
    """Everything a user might do with a file: must succeed or raise an allowed error."""
    with warnings.catch_warnings():
        # a mutated header may claim a huge size: Pillow warns (not an error) past
        # 89 Mpixel, and refuses past twice that (an imgio ImageTooLargeError)
        warnings.filterwarnings("ignore", message="Image size .* could be decompression bomb")
        _read_all_unguarded(data)


def _read_all_unguarded(data: bytes) -> None:
    try:
        with iio.imopen(data, "r") as f:
            f.properties()
            f.metadata()
            image = f.read()
            assert isinstance(image, np.ndarray)
            for frame in f.iter():
                assert isinstance(frame, np.ndarray)
    except ALLOWED:
        pass


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_files_read(name):
    with iio.imopen(SEEDS[name], "r") as f:
        assert f.read().size > 0


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_truncations_never_escape(name):
    data = SEEDS[name]
    for cut in sorted({0, 1, 4, 8, 16, 64, len(data) // 3, len(data) // 2, len(data) - 1}):
        if cut >= len(data):
            continue
        _read_all(data[:cut])


@pytest.mark.parametrize("name", sorted(SEEDS))
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_fuzz_mutations(name, data):
    """Flip, overwrite and splice bytes of a valid file (header-heavy: the first 512 bytes)."""
    raw = bytearray(SEEDS[name])
    n_mut = data.draw(st.integers(1, 8))
    for _ in range(n_mut):
        kind = data.draw(st.sampled_from(["flip", "set", "int32", "cut"]))
        limit = min(len(raw) - 1, data.draw(st.sampled_from([64, 512, len(raw) - 1])))
        if limit < 1:
            break
        pos = data.draw(st.integers(0, limit))
        if kind == "flip":
            raw[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set":
            raw[pos] = data.draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
        elif kind == "int32" and pos + 4 <= len(raw):
            value = data.draw(st.sampled_from([0, 1, 2**31 - 1, 2**32 - 1, len(raw), len(raw) + 8]))
            raw[pos:pos + 4] = value.to_bytes(4, "little")
        elif kind == "cut":
            del raw[pos:]
    _read_all(bytes(raw))


def test_random_bytes_are_refused():
    rng = np.random.default_rng(0)
    for size in (0, 1, 10, 1000):
        with pytest.raises(ImgioError):
            iio.imread(rng.integers(0, 256, size, dtype=np.uint8).tobytes())


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc (Linux)")
def test_ten_thousand_readers_leak_nothing(tmp_path):
    path = tmp_path / "small.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8))
    before = _open_fds()
    for _ in range(10_000):
        with iio.imopen(path, "r") as f:
            f.properties()
    for i in range(200):  # readers abandoned without close are released too
        iio.imread(path)
        next(iter(iio.imiter(path)))
    assert _open_fds() <= before + 2


@pytest.mark.parametrize("name", ["tiff-generated", "npz"] +
                         (["hdf5"] if "hdf5" in SEEDS else []))
def test_one_reader_shared_by_threads(name, tmp_path):
    path = tmp_path / "shared.bin"
    path.write_bytes(SEEDS[name])
    with iio.imopen(path, "r") as f:
        n = f.metadata()["n_images"] if name == "npz" else None
        expected = [f.read(index=i) for i in range(n)] if n else [f.read()]
        errors: list[BaseException] = []

        def work():
            try:
                for _ in range(30):
                    for i, exp in enumerate(expected):
                        got = f.read(index=i) if n else f.read()
                        np.testing.assert_array_equal(got, exp)
            except BaseException as exc:  # collected for the main thread
                errors.append(exc)
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors[0]
