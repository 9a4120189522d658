"""The folder plugin under the read-only conformance suite (imgio.testing):
folders and globs of TIFF, PNG and NPY slices."""
import numpy as np

import imgio.v3 as iio
from imgio.testing import ReadOnlyConformance


def _slices(tmp_path, seed, ext, shape=(5, 13, 9), dtype=np.uint16):
    folder = tmp_path / "slices"
    folder.mkdir()
    vol = np.random.default_rng(seed).integers(0, 250, shape).astype(dtype)
    for i, plane in enumerate(vol):
        iio.imwrite(folder / f"z{i}{ext}", plane)
    return folder, vol


class TestTiffFolder(ReadOnlyConformance):
    plugin = "folder"

    def make_resource(self, tmp_path, seed=0):
        return _slices(tmp_path, seed, ".tif")


class TestPngGlob(ReadOnlyConformance):
    plugin = "folder"

    def make_resource(self, tmp_path, seed=0):
        folder, vol = _slices(tmp_path, seed, ".png", shape=(11, 7, 6), dtype=np.uint8)
        return str(folder / "z*.png"), vol

    def missing_resource(self, tmp_path):
        return str(tmp_path / "missing" / "z*.png")


class TestNpyFolder(ReadOnlyConformance):
    plugin = "folder"

    def make_resource(self, tmp_path, seed=0):
        return _slices(tmp_path, seed, ".npy", shape=(3, 4, 17), dtype=np.float32)
