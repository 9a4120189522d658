"""NPY/NPZ plugins: conformance suite plus ordering and header-only properties."""
import io
from pathlib import Path

import numpy as np
import pytest

import imgio.v3 as iio
from imgio.testing import PluginConformance

DATA = Path(__file__).parent.parent / "data"


class TestNpyConformance(PluginConformance):
    plugin = "npy"
    extension = ".npy"
    batch = False

    def make_image(self, seed=0):
        return np.random.default_rng(seed).normal(size=(6, 7, 2)).astype(">f4")


class TestNpzConformance(PluginConformance):
    plugin = "npz"
    extension = ".npz"

    def make_image(self, seed=0):
        return np.random.default_rng(seed).integers(-500, 500, size=(4, 9, 11), dtype=np.int16)


def test_npz_natural_order(tmp_path):
    path = tmp_path / "many.npz"
    arrays = [np.full((2, 2), i, np.uint8) for i in range(12)]
    iio.imwrite(path, arrays)
    got = [int(a[0, 0]) for a in iio.imiter(path)]
    assert got == list(range(12))  # imageio gives 0, 1, 10, 11, 2, ...
    assert int(iio.imread(path, index=10)[0, 0]) == 10


def test_real_stent_npz():
    path = DATA / "stent.npz"
    vol = iio.imread(path)
    assert vol.shape == (256, 128, 128) and vol.dtype == np.int16
    with np.load(path) as ref:
        np.testing.assert_array_equal(vol, ref["arr_0"])
    assert iio.improps(path).shape == vol.shape


def test_real_npy_and_mmap():
    path = DATA / "chelsea.npy"
    image = iio.imread(path)
    np.testing.assert_array_equal(image, np.load(path))
    mapped = iio.imread(path, mmap=True)
    np.testing.assert_array_equal(mapped, image)


def test_npy_properties_read_only_the_header(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.zeros((3, 4, 5), "<u2"))
    with open(path, "r+b") as fh:  # damage the pixel data; the header stays valid
        fh.seek(-10, 2)
        fh.truncate()
    props = iio.improps(path)
    assert props.shape == (3, 4, 5) and props.dtype == np.uint16


def test_npz_stores_uncompressed_on_request():
    data = iio.imwrite("<bytes>", [np.zeros((64, 64))], extension=".npz", compress=False)
    assert len(data) > 64 * 64 * 8
    with np.load(io.BytesIO(data)) as npz:
        assert list(npz.keys()) == ["arr_0"]


def test_npz_rejects_unknown_keyword(tmp_path):
    with pytest.raises(TypeError, match="unexpected keyword"):
        iio.imwrite(tmp_path / "x.npz", np.zeros((2, 2)), quality=3)
