"""Bad input, faults and concurrency, across every plugin.

* a truncated file either raises an imgio error or reads exactly as the intact
  file does (never fewer pages, frames or other pixels);
* mutated real and generated files never crash or hang: a read either
  succeeds or raises an imgio error (or IndexError/FileNotFoundError);
* reads run under a 256 MiB size limit (``tests/conftest.py``), and what
  happens past the guard runs in a child process under ``RLIMIT_AS``;
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
        # a resolution denominator mutated to 0: imageio's warning in properties()
        warnings.filterwarnings("ignore", message="Ignoring resolution metadata",
                                category=RuntimeWarning)
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


def _everything(data: bytes):
    """What a user reads from a file: properties, the image, every frame."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Image size .* could be decompression bomb")
        with iio.imopen(data, "r") as f:
            props = f.properties()
            image = f.read()
            frames = list(f.iter())
    return (tuple(props.shape), props.dtype), image, frames


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_truncations_raise_or_read_as_the_intact_file(name):
    data = SEEDS[name]
    (props, image, frames) = _everything(data)
    for cut in sorted({0, 1, 4, 8, 16, 64, len(data) // 3, len(data) // 2,
                       len(data) * 9 // 10, len(data) - 1}):
        if cut >= len(data):
            continue
        try:
            got_props, got_image, got_frames = _everything(data[:cut])
        except ALLOWED:
            continue
        assert got_props == props, f"{name} cut at {cut}: properties {got_props} != {props}"
        np.testing.assert_array_equal(got_image, image, err_msg=f"{name} cut at {cut}")
        assert len(got_frames) == len(frames), f"{name} cut at {cut}: frames lost"
        for a, b in zip(got_frames, frames):
            np.testing.assert_array_equal(a, b, err_msg=f"{name} cut at {cut}")


def test_reads_past_the_guard_end_in_an_error_in_a_bounded_child(tmp_path):
    """A header declaring 9 GB, read with the default limit in a child limited to
    1.5 GB of address space: ImageTooLargeError naming the file, no MemoryError."""
    import subprocess
    import sys
    buf = io.BytesIO()
    np.save(buf, np.zeros((4, 4), np.uint8))
    path = tmp_path / "bomb.npy"
    path.write_bytes(buf.getvalue().replace(b"(4, 4)", b"(9000, 1000000)"))
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))\n"
        "import imgio.v2 as v2, imgio.v3 as iio\n"
        "from imgio.errors import ImageTooLargeError\n"
        "for call in (iio.imread, v2.imread, lambda p: list(iio.imiter(p))):\n"
        "    try:\n"
        "        call(sys.argv[1])\n"
        "    except ImageTooLargeError as exc:\n"
        "        assert sys.argv[1] in str(exc), exc\n"
        "    else:\n"
        "        raise SystemExit('read past the guard')\n"
        "print('guarded')\n")
    env = {k: v for k, v in os.environ.items() if k != "IMGIO_MAX_BYTES"}
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "guarded" in proc.stdout, proc.stderr[-2000:]


def test_fuzz_runs_under_a_small_size_limit():
    from imgio.core import limits
    assert limits.max_bytes() <= 256 << 20


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
