"""Plugin choice: content decides on read, extension on write; lazy backends."""
import subprocess
import sys

import numpy as np
import pytest
import tifffile

import imgio
import imgio.v3 as iio
from imgio.core import registry
from imgio.core.plugin import PluginV3
from imgio.errors import BackendMissingError, FormatError, NoPluginError


def test_tiff_bytes_named_png_read_as_tiff(tmp_path):
    path = tmp_path / "x.png"
    tifffile.imwrite(path, np.zeros((2, 15, 10), np.uint8))
    assert iio.imread(path).shape == (2, 15, 10)  # imageio: Pillow, (15, 10)
    with iio.imopen(path, "r") as f:
        assert f.name == "tifffile"


def test_write_by_extension_and_unknown_extension(tmp_path):
    iio.imwrite(tmp_path / "a.npy", np.zeros(3))
    assert (tmp_path / "a.npy").read_bytes()[:6] == b"\x93NUMPY"
    with pytest.raises(NoPluginError, match=r"\.xyz"):
        iio.imwrite(tmp_path / "a.xyz", np.zeros((2, 2)))  # imageio writes a TIFF
    assert not (tmp_path / "a.xyz").exists()
    with pytest.raises(NoPluginError, match="no extension"):
        iio.imwrite("<bytes>", np.zeros((2, 2)))


def test_compound_extension_for_writing(tmp_path):
    iio.imwrite(tmp_path / "a.ome.tif", np.zeros((2, 2), np.uint8))
    assert iio.imread(tmp_path / "a.ome.tif").shape == (2, 2)


def test_explicit_plugin_by_any_case_and_class(tmp_path):
    path = tmp_path / "a.tif"
    iio.imwrite(path, np.ones((3, 3), np.uint8), plugin="TIFFFILE")
    from imgio.plugins.tiff.plugin import TifffilePlugin
    assert iio.imread(path, plugin=TifffilePlugin).sum() == 9
    with pytest.raises(ValueError, match="not a registered plugin"):
        iio.imread(path, plugin="nope")


def test_explicit_plugin_that_refuses(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(FormatError, match="tifffile.*cannot read.*a.npy"):
        iio.imread(path, plugin="tifffile")


def test_unknown_content_message(tmp_path):
    path = tmp_path / "a.dat"
    path.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(NoPluginError, match="matches no format") as info:
        iio.imread(path)
    assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)


def test_empty_bytes():
    with pytest.raises(NoPluginError, match="empty"):
        iio.imread(b"")


def test_missing_backend_gives_install_hint(monkeypatch):
    spec = registry.PluginSpec(
        name="fake", module="imgio.plugins.npy", class_name="NpyPlugin",
        extensions=(".fake",), modes="i", description="x",
        backend="imgio_no_such_backend", extra="fake", sniff=lambda h: h[:4] == b"FAKE")
    monkeypatch.setattr(registry, "PLUGINS", [spec] + registry.PLUGINS)
    with pytest.raises(BackendMissingError, match=r"pip install imgio\[fake\]"):
        spec.load()
    with pytest.raises(NoPluginError, match=r"pip install imgio\[fake\]"):
        iio.imread(b"FAKE" + b"\x00" * 20)


def test_custom_plugin_class_is_used():
    class Echo(PluginV3):
        name = "echo"

        def read(self, *, index=None, **kw):
            return np.frombuffer(self.request.firstbytes, np.uint8)

    assert iio.imread(b"\x01\x02", plugin=Echo).tolist() == [1, 2]


def test_import_is_light():
    code = ("import sys, imgio, imgio.v3; "
            "bad = [m for m in ('tifffile', 'h5py', 'PIL', 'dask', 'imageio') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_top_level_namespace():
    assert imgio.imopen is iio.imopen and imgio.imiter is iio.imiter
    with pytest.raises(AttributeError):
        imgio.no_such_thing
