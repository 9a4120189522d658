"""The size guard refuses absurd declared sizes before allocating."""
import numpy as np
import pytest
import tifffile

import imgio.v3 as iio
from imgio.core import limits
from imgio.errors import CorruptFileError, ImageTooLargeError


def _huge_tiff(path):
    """A tiny classic TIFF whose single strip claims 10**6 x 10**6 pixels."""
    import struct
    entries = [(256, 4, 1, 10**6), (257, 4, 1, 10**6), (258, 3, 1, 8), (259, 3, 1, 1),
               (262, 3, 1, 1), (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, 10**6),
               (279, 4, 1, 10**12 % 2**32)]
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        fmt = "<HHI" + ("I" if typ == 4 else "HH")
        ifd += struct.pack(fmt, tag, typ, count, *((value,) if typ == 4 else (value, 0)))
    ifd += struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 16) + b"\x00" * 8 + ifd)


def test_huge_declared_size_is_refused_before_allocation(tmp_path):
    path = tmp_path / "bomb.tif"
    _huge_tiff(path)
    assert path.stat().st_size < 200
    assert iio.improps(path).shape == (10**6, 10**6)
    with pytest.raises(ImageTooLargeError, match="bomb.tif") as info:
        iio.imread(path, fast=False)
    assert isinstance(info.value, OSError) and isinstance(info.value, MemoryError)
    # the fast parser sees first that the strip runs past the end of the file
    with pytest.raises(CorruptFileError, match="bomb.tif"):
        iio.imread(path)


def test_limit_per_call_and_per_process(tmp_path, monkeypatch):
    path = tmp_path / "small.tif"
    tifffile.imwrite(path, np.zeros((100, 100), np.uint16))  # 20,000 bytes
    with pytest.raises(ImageTooLargeError, match="limit"):
        iio.imread(path, max_bytes=10_000)
    assert iio.imread(path, max_bytes=20_000).shape == (100, 100)
    monkeypatch.setattr(limits, "MAX_BYTES", 1000)
    with pytest.raises(ImageTooLargeError):
        iio.imread(path)
    assert iio.imread(path, max_bytes=False).shape == (100, 100)
    monkeypatch.setattr(limits, "MAX_BYTES", None)
    monkeypatch.setenv("IMGIO_MAX_BYTES", "1000")
    with pytest.raises(ImageTooLargeError):
        iio.imread(path)
    monkeypatch.setenv("IMGIO_MAX_BYTES", "0")
    assert iio.imread(path).shape == (100, 100)


def test_default_is_physical_memory():
    assert limits.max_bytes() > 2**28
