"""imgio's napari plugin: the npe2 manifest, and files opened through napari's ViewerModel.

napari and npe2 are imported inside the tests (their pydantic models warn at
import, which the module-wide filter below allows: only that warning class).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

import imgio
import imgio.v3 as iio

pytestmark = pytest.mark.filterwarnings(
    "ignore::pydantic.warnings.PydanticDeprecatedSince20")

MANIFEST = Path(imgio.__file__).parent / "napari" / "napari.yaml"


@pytest.fixture
def viewer():
    import npe2
    npe2.PluginManager.instance().discover()  # finds imgio's napari.manifest entry point
    from napari.components import ViewerModel
    v = ViewerModel()
    yield v
    v.layers.clear()


def _scale(layer):
    return tuple(float(s) for s in layer.scale)


def _units(layer):
    return tuple(str(u) for u in layer.units)


# -- the manifest ---------------------------------------------------------------------------------
def test_manifest_validates_and_is_registered():
    proc = subprocess.run([sys.executable, "-m", "npe2", "validate", str(MANIFEST)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid" in proc.stdout
    from importlib.metadata import entry_points
    eps = {ep.name: ep.value for ep in entry_points(group="napari.manifest")}
    assert eps.get("imgio") == "imgio.napari:napari.yaml"
    import npe2
    pm = npe2.PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("imgio")
    patterns = manifest.contributions.readers[0].filename_patterns
    for ext in (".tif", ".ome.tif", ".lsm", ".stk", ".h5", ".ims", ".npy", ".npz", ".png",
                ".zarr"):
        assert f"*{ext}" in patterns
    writer_exts = manifest.contributions.writers[0].filename_extensions
    assert {".tif", ".ome.tif", ".h5", ".ome.zarr", ".zarr"} <= set(writer_exts)


def test_importing_the_package_imports_no_napari():
    code = ("import sys, imgio.napari; "
            "print(any(m == 'napari' or m.startswith(('napari.', 'npe2')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "False", out.stderr


# -- reading ---------------------------------------------------------------------------------------
def test_zyx_tiff_scale_labels_units(viewer, tmp_path):
    path = tmp_path / "zyx.tif"
    data = np.arange(5 * 24 * 32, dtype=np.uint16).reshape(5, 24, 32)
    iio.imwrite(path, data, spacing=(2.0, 0.5, 0.25), axes="ZYX", units=("um",) * 3)
    (layer,) = viewer.open(path, plugin="imgio")
    assert isinstance(layer.data, np.ndarray)  # small: read at once
    np.testing.assert_array_equal(layer.data, data)
    assert _scale(layer) == (2.0, 0.5, 0.25)
    assert layer.axis_labels == ("z", "y", "x")
    assert _units(layer) == ("micrometer",) * 3
    assert layer.name == "zyx.tif"


def test_channel_axis_splits_layers(viewer, tmp_path):
    path = tmp_path / "czyx.ome.tif"
    rng = np.random.default_rng(1)
    data = rng.integers(0, 4000, (3, 4, 20, 30), dtype=np.uint16)
    iio.imwrite(path, data, spacing=(None, 1.5, 0.2, 0.2), axes="CZYX", units=(None,) + ("um",) * 3)
    assert iio.improps(path).axes == "CZYX"
    layers = viewer.open(path, plugin="imgio")
    assert len(layers) == 3
    for c, layer in enumerate(layers):
        assert layer.data.shape == (4, 20, 30)
        np.testing.assert_array_equal(np.asarray(layer.data), data[c])
        assert _scale(layer) == pytest.approx((1.5, 0.2, 0.2))
        assert layer.axis_labels == ("z", "y", "x")
        assert layer.name == f"czyx.ome.tif [C{c}]"


def test_imagej_hyperstack_time_and_channels(viewer, tmp_path):
    path = tmp_path / "tzcyx.tif"
    data = np.random.default_rng(2).integers(0, 255, (2, 3, 2, 16, 16), dtype=np.uint8)
    iio.imwrite(path, data, spacing=(0.5, 2.0, None, 0.1, 0.1), axes="TZCYX",
                units=("s", "um", None, "um", "um"))
    layers = viewer.open(path, plugin="imgio")
    assert len(layers) == 2
    layer = layers[1]
    assert layer.data.shape == (2, 3, 16, 16)
    np.testing.assert_array_equal(np.asarray(layer.data), data[:, :, 1])
    assert layer.axis_labels == ("t", "z", "y", "x")
    assert _scale(layer) == pytest.approx((0.5, 2.0, 0.1, 0.1))
    assert _units(layer) == ("second", "micrometer", "micrometer", "micrometer")


def _ome_pyramid(path, data, n_levels=3):
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(data, subifds=n_levels - 1,
                 metadata={"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
        for k in range(1, n_levels):
            tw.write(data[::2**k, ::2**k], subfiletype=1)


def test_tiff_pyramid_is_multiscale(viewer, tmp_path):
    path = tmp_path / "pyramid.ome.tif"
    data = np.random.default_rng(3).integers(0, 60000, (256, 320), dtype=np.uint16)
    _ome_pyramid(path, data)
    from imgio.napari import pyramid_levels
    assert [p.shape for p in pyramid_levels(path)] == [(256, 320), (128, 160), (64, 80)]
    (layer,) = viewer.open(path, plugin="imgio")
    assert layer.multiscale
    assert [d.shape for d in layer.data] == [(256, 320), (128, 160), (64, 80)]
    np.testing.assert_array_equal(np.asarray(layer.data[0]), data)
    np.testing.assert_array_equal(np.asarray(layer.data[2]), data[::4, ::4])
    assert _scale(layer) == (0.5, 0.5)  # the full-resolution pixel size
    assert iio.improps(path, level=2).spacing == (2.0, 2.0)


def test_bigdataviewer_levels(viewer, tmp_path):
    path = tmp_path / "bdv.h5"
    vols = [np.random.default_rng(t).integers(0, 60000, (6, 32, 40), dtype=np.uint16)
            for t in range(2)]
    with h5py.File(path, "w") as f:
        f["s00/resolutions"] = np.array([[1, 1, 1], [2, 2, 1]], np.float64)
        f["s00/subdivisions"] = np.array([[16, 16, 4], [16, 16, 4]], np.int32)
        for t, vol in enumerate(vols):
            f.create_dataset(f"t{t:05d}/s00/0/cells", data=vol.view("<i2"), chunks=(4, 16, 16))
            f.create_dataset(f"t{t:05d}/s00/1/cells", data=vol[:, ::2, ::2].view("<i2"))
    (layer,) = viewer.open(path, plugin="imgio")
    assert layer.multiscale
    assert [d.shape for d in layer.data] == [(2, 6, 32, 40), (2, 6, 16, 20)]
    assert layer.axis_labels == ("t", "z", "y", "x")
    np.testing.assert_array_equal(np.asarray(layer.data[1]),
                                  np.stack([v[:, ::2, ::2] for v in vols]))
    assert layer.data[0].dtype == np.uint16


def _chars(text):
    return np.frombuffer(str(text).encode(), dtype="S1")


def test_imaris_levels_channels_and_spacing(viewer, tmp_path):
    path = tmp_path / "cells.ims"
    z, y, x = 4, 32, 48
    vols = {}
    with h5py.File(path, "w") as f:
        f.attrs["ImarisVersion"] = _chars("5.5.0")
        info = f.create_group("DataSetInfo/Image")
        for key, val in dict(X=x, Y=y, Z=z, ExtMin0=0, ExtMin1=0, ExtMin2=0, ExtMax0=x * 0.25,
                             ExtMax1=y * 0.25, ExtMax2=z * 2.0, Unit="um").items():
            info.attrs[key] = _chars(val)
        for level, step in ((0, 1), (1, 2)):
            for c in range(2):
                vol = np.random.default_rng(c).integers(0, 4000, (z, y, x), dtype=np.uint16)
                vols[level, c] = vol[::step, ::step, ::step]
                g = f.create_group(f"DataSet/ResolutionLevel {level}/TimePoint 0/Channel {c}")
                g.create_dataset("Data", data=vols[level, c])
                for a, n in zip("ZYX", vols[level, c].shape):
                    g.attrs[f"ImageSize{a}"] = _chars(n)
    assert iio.improps(path).axes == "CZYX"
    layers = viewer.open(path, plugin="imgio")
    assert len(layers) == 2
    for c, layer in enumerate(layers):
        assert layer.multiscale
        assert [d.shape for d in layer.data] == [(4, 32, 48), (2, 16, 24)]
        np.testing.assert_array_equal(np.asarray(layer.data[1]), vols[1, c])
        assert _scale(layer) == pytest.approx((2.0, 0.25, 0.25))
        assert _units(layer) == ("micrometer",) * 3


def test_ome_zarr_levels_are_one_multiscale_layer(viewer, tmp_path):
    path = tmp_path / "cells.ome.zarr"
    data = np.random.default_rng(7).integers(0, 60000, (16, 64, 80), dtype=np.uint16)
    iio.imwrite(path, data, axes="ZYX", spacing=(2.0, 0.5, 0.25), units=("um", "um", "um"),
                levels=3)
    layers = viewer.open(path, plugin="imgio")
    assert len(layers) == 1
    (layer,) = layers
    assert layer.multiscale
    assert [d.shape for d in layer.data] == [(16, 64, 80), (8, 32, 40), (4, 16, 20)]
    for k in range(3):
        np.testing.assert_array_equal(np.asarray(layer.data[k]), iio.imread(path, level=k))
    np.testing.assert_array_equal(np.asarray(layer.data[0]), data)
    assert _scale(layer) == (2.0, 0.5, 0.25)  # the full-resolution spacing
    assert layer.axis_labels == ("z", "y", "x")
    assert _units(layer) == ("micrometer",) * 3
    assert layer.name == "cells.ome.zarr"
    assert layer.metadata["imgio"]["levels"] == [(16, 64, 80), (8, 32, 40), (4, 16, 20)]


def test_zarr_folder_path_is_accepted(viewer, tmp_path):
    import npe2
    import zarr
    folder = tmp_path / "raw.zarr"
    data = np.arange(4 * 5 * 6, dtype=np.uint8).reshape(4, 5, 6)
    zarr.create_array(store=str(folder), data=data)  # a plain Zarr array, no NGFF
    assert folder.is_dir()
    readers = npe2.PluginManager.instance().iter_compatible_readers([str(folder)])
    assert "imgio.get_reader" in [r.command for r in readers]
    from imgio.napari import get_reader
    for p in (str(folder), str(folder) + os.sep):
        assert get_reader(p) is not None
    (layer,) = viewer.open(folder, plugin="imgio")
    np.testing.assert_array_equal(np.asarray(layer.data), data)
    assert layer.name == "raw.zarr"
    viewer.layers.clear()
    (again,) = viewer.open(str(folder) + os.sep, plugin="imgio")
    assert again.name == "raw.zarr"


def test_folder_glob_and_stack(viewer, tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    slices = [np.full((12, 14), i, np.uint16) for i in range(5)]
    for i, s in enumerate(slices):
        iio.imwrite(folder / f"z{i}.tif", s)
    (layer,) = viewer.open(folder, plugin="imgio")
    assert layer.data.shape == (5, 12, 14)
    np.testing.assert_array_equal(np.asarray(layer.data), np.stack(slices))
    # napari refuses a glob before any reader sees it; the reader itself takes one
    from imgio.napari import get_reader
    reader = get_reader(str(folder / "z[1-3].tif"))
    (data, kwargs, kind), = reader(str(folder / "z[1-3].tif"))
    assert kind == "image" and data.shape == (3, 12, 14)
    np.testing.assert_array_equal(np.asarray(data), np.stack(slices[1:4]))
    files = [folder / f"z{i}.tif" for i in (4, 0)]
    (stacked,) = viewer.open(files, stack=True, plugin="imgio")
    np.testing.assert_array_equal(np.asarray(stacked.data), np.stack([slices[4], slices[0]]))


def test_npy_npz_png(viewer, tmp_path):
    arr = np.random.default_rng(4).random((3, 10, 11)).astype(np.float32)
    np.save(tmp_path / "a.npy", arr)
    np.savez(tmp_path / "b.npz", arr)
    rgb = np.random.default_rng(5).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "c.png", rgb)
    (a,) = viewer.open(tmp_path / "a.npy", plugin="imgio")
    np.testing.assert_array_equal(a.data, arr)
    (b,) = viewer.open(tmp_path / "b.npz", plugin="imgio")
    np.testing.assert_array_equal(b.data, arr)
    (c,) = viewer.open(tmp_path / "c.png", plugin="imgio")
    assert c.rgb and c.data.shape == (20, 30, 3)
    np.testing.assert_array_equal(c.data, rgb)


def test_not_an_image_is_declined(tmp_path):
    from imgio.napari import get_reader
    bogus = tmp_path / "x.tif"
    bogus.write_bytes(b"not a tiff at all")
    assert get_reader(str(bogus)) is None


# -- laziness ---------------------------------------------------------------------------------------
def _bytes_read() -> int:
    """Bytes this process read through read() syscalls (threads included)."""
    with open("/proc/self/io") as fh:
        return int(next(line for line in fh if line.startswith("rchar:")).split()[1])


class _Tasks:
    """Counts dask tasks run by any scheduler in this process."""

    def __init__(self):
        from dask.callbacks import Callback
        self.n = 0

        def pretask(key, dsk, state):
            self.n += 1

        self.cb = Callback(pretask=pretask)

    def __enter__(self):
        self.cb.__enter__()
        return self

    def __exit__(self, *exc):
        self.cb.__exit__(*exc)


def _sparse_file(path, shape, dtype, plane_values):
    """A large .npy or uncompressed TIFF file whose pixels are mostly holes: only the
    given planes are written."""
    if path.suffix == ".npy":
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    else:
        mm = tifffile.memmap(path, shape=shape, dtype=dtype)
    for k, v in plane_values.items():
        mm[k] = v
    mm.flush()
    del mm


@pytest.mark.slow
@pytest.mark.parametrize("name", ["big.npy", "big.tif"])
def test_two_gib_file_opens_lazily(viewer, tmp_path, monkeypatch, name):
    monkeypatch.delenv("IMGIO_NAPARI_LAZY_BYTES", raising=False)
    path = tmp_path / name
    shape = (128, 2048, 4096)  # uint16: 2 GiB, one plane 16 MiB
    _sparse_file(path, shape, np.uint16, {0: 1, 64: 7, 127: 9})
    assert os.path.getsize(path) >= 2 * 2**30
    import dask.array as da
    from imgio.napari import get_reader
    before = _bytes_read()
    with _Tasks() as tasks:
        layer_data = get_reader(str(path))(str(path))
    assert _bytes_read() - before < 2**20  # headers only
    assert tasks.n == 0  # no pixel computed
    (data, kwargs, _), = layer_data
    assert isinstance(data, da.Array) and data.shape == shape

    # the viewer reads the planes it shows (and napari samples three for contrast limits)
    before = _bytes_read()
    (layer,) = viewer.open(path, plugin="imgio")
    viewer.dims.set_point(0, 64)
    assert isinstance(layer.data, da.Array)
    read = _bytes_read() - before
    assert read < 5 * 16 * 2**20, f"read {read} bytes to show one plane of a 2 GiB file"
    assert np.asarray(layer._slice.image.raw).max() == 7  # plane 64 is on screen


def test_ome_zarr_above_threshold_opens_lazily(viewer, tmp_path, monkeypatch):
    import dask.array as da
    path = tmp_path / "big.ome.zarr"
    vol = np.random.default_rng(8).integers(0, 60000, (16, 256, 256), dtype=np.uint16)
    iio.imwrite(path, vol, axes="ZYX", spacing=(1.0, 0.5, 0.5), units=("um",) * 3, levels=2,
                chunks=(1, 128, 128))  # one plane deep: a plane reads 1/16 of the volume
    on_disk = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert on_disk > 2**20  # random pixels: the chunks barely compress
    monkeypatch.setenv("IMGIO_NAPARI_LAZY_BYTES", str(2**16))  # both levels above it
    from imgio.napari import get_reader
    # a first open and plane read of another store imports what they need (module files
    # are reads too), so the counts below are reads of this store
    warm = tmp_path / "warm.ome.zarr"
    iio.imwrite(warm, vol[:4, :128, :128], axes="ZYX", levels=2, chunks=(1, 64, 64))
    (warm_data, _, _), = get_reader(str(warm))(str(warm))
    warm_data[0][1].compute()
    before = _bytes_read()
    with _Tasks() as tasks:
        layer_data = get_reader(str(path))(str(path))
    assert tasks.n == 0  # no chunk computed
    assert _bytes_read() - before < on_disk // 16  # metadata only
    (data, kwargs, _), = layer_data
    assert kwargs["multiscale"] and all(isinstance(d, da.Array) for d in data)
    assert [d.shape for d in data] == [(16, 256, 256), (8, 128, 128)]
    before = _bytes_read()
    with _Tasks() as tasks:
        plane = data[0][5].compute()
    assert tasks.n > 0
    np.testing.assert_array_equal(plane, vol[5])
    assert _bytes_read() - before < on_disk // 4  # the plane's chunks, not the volume
    (layer,) = viewer.open(path, plugin="imgio")
    assert layer.multiscale and isinstance(layer.data[0], da.Array)


# -- writing ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["out.tif", "out.ome.tif", "out.h5", "out.ome.zarr",
                                  "out.zarr"])
def test_writer_keeps_scale(viewer, tmp_path, name):
    data = np.random.default_rng(6).integers(0, 1000, (4, 16, 18), dtype=np.uint16)
    layer = viewer.add_image(data, scale=(3.0, 0.5, 0.25), units=("um", "um", "um"),
                             axis_labels=("z", "y", "x"))
    viewer.layers.selection = {layer}
    path = tmp_path / name
    written = viewer.layers.save(str(path), selected=True, plugin="imgio")
    assert written == [str(path)]
    np.testing.assert_array_equal(iio.imread(path), data)
    props = iio.improps(path)
    assert props.spacing == pytest.approx((3.0, 0.5, 0.25))
    assert props.axes == "ZYX" and props.units == ("um", "um", "um")
    # and it opens again with the same scale
    (again,) = viewer.open(path, plugin="imgio")
    assert _scale(again) == pytest.approx((3.0, 0.5, 0.25))


def test_writer_lazy_and_multiscale_layers(viewer, tmp_path):
    import dask.array as da
    data = np.arange(6 * 8 * 10, dtype=np.float32).reshape(6, 8, 10)
    lazy = viewer.add_image(da.from_array(data, chunks=(2, 8, 10)), scale=(2.0, 1.0, 1.0))
    viewer.layers.selection = {lazy}
    viewer.layers.save(str(tmp_path / "lazy.tif"), selected=True, plugin="imgio")
    np.testing.assert_array_equal(iio.imread(tmp_path / "lazy.tif"), data)
    assert iio.improps(tmp_path / "lazy.tif").spacing[0] == 2.0
    multi = viewer.add_image([data, data[:, ::2, ::2]], multiscale=True, scale=(1.0, 0.5, 0.5))
    viewer.layers.selection = {multi}
    viewer.layers.save(str(tmp_path / "multi.h5"), selected=True, plugin="imgio")
    np.testing.assert_array_equal(iio.imread(tmp_path / "multi.h5"), data)
    assert iio.improps(tmp_path / "multi.h5").spacing == pytest.approx((1.0, 0.5, 0.5))


def test_writer_ome_zarr_pyramid_and_rgb(viewer, tmp_path):
    import dask.array as da
    data = np.random.default_rng(9).integers(0, 1000, (8, 64, 80), dtype=np.uint16)
    multi = viewer.add_image([da.from_array(data, chunks=(2, 64, 80)), data[::2, ::2, ::2],
                              data[::4, ::4, ::4]], multiscale=True, scale=(2.0, 0.5, 0.5),
                             units=("um", "um", "um"))
    viewer.layers.selection = {multi}
    path = tmp_path / "multi.ome.zarr"
    assert viewer.layers.save(str(path), selected=True, plugin="imgio") == [str(path)]
    assert iio.immeta(path)["levels"] == ["0", "1", "2"]  # the layer's 3 levels, rebuilt
    np.testing.assert_array_equal(iio.imread(path), data)
    assert [iio.improps(path, level=k).shape for k in range(3)] == [
        (8, 64, 80), (4, 32, 40), (2, 16, 20)]
    props = iio.improps(path)
    assert props.axes == "ZYX" and props.spacing == pytest.approx((2.0, 0.5, 0.5))
    assert props.units == ("um", "um", "um")
    (again,) = viewer.open(path, plugin="imgio")
    assert again.multiscale and len(again.data) == 3
    assert _scale(again) == pytest.approx((2.0, 0.5, 0.5))
    # an RGB layer: NGFF stores channels first, so the samples become a leading C axis
    rgb = np.random.default_rng(10).integers(0, 255, (32, 40, 3), dtype=np.uint8)
    layer = viewer.add_image(rgb, rgb=True, scale=(0.5, 0.25))
    viewer.layers.selection = {layer}
    viewer.layers.save(str(tmp_path / "rgb.zarr"), selected=True, plugin="imgio")
    props = iio.improps(tmp_path / "rgb.zarr")
    assert props.axes == "CYX" and props.spacing == pytest.approx((1.0, 0.5, 0.25))
    np.testing.assert_array_equal(iio.imread(tmp_path / "rgb.zarr"), np.moveaxis(rgb, -1, 0))


def test_tiff_level_out_of_range_is_index_error(tmp_path):
    path = tmp_path / "pyramid.ome.tif"
    _ome_pyramid(path, np.zeros((64, 64), np.uint16), n_levels=2)
    with pytest.raises(IndexError, match="level 2 requested; the file has levels 0-1"):
        iio.improps(path, level=2)
    with pytest.raises(IndexError, match="level 2 requested; the file has levels 0-1"):
        iio.imread(path, level=2)


# -- a real napari.Viewer, rendered off screen -------------------------------------------------------
_SCREENSHOT = r"""
import sys, warnings
warnings.simplefilter("ignore")  # napari's start-up deprecation chatter, in this child only
import numpy as np, napari, imgio.v3 as iio
viewer = napari.Viewer(show=False)
layers = viewer.open(sys.argv[1], plugin="imgio")
canvas = viewer.window._qt_viewer.canvas._scene_canvas
viewer.reset_view()
# viewer.screenshot() grabs the QOpenGLWidget's framebuffer, which Qt's offscreen platform
# leaves black; napari's vispy canvas renders the same scene into its own framebuffer
shot = canvas.render()
iio.imwrite(sys.argv[2], shot[..., :3])
print(len(layers), shot.shape)
viewer.close()
"""


@pytest.fixture
def x_display():
    """An Xvfb server: Qt's offscreen platform renders OpenGL through its GLX."""
    import shutil
    if shutil.which("Xvfb") is None:
        pytest.skip("the Xvfb binary (apt package xvfb) is not installed: Qt's offscreen "
                    "platform has no OpenGL without an X server")
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1024x768x24",
                             "-nolisten", "tcp"], pass_fds=(w,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as fh:
        display = fh.readline().strip()
    try:
        yield f":{display}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_viewer_screenshot_is_not_blank(tmp_path, x_display):
    path = tmp_path / "cells.ome.tif"
    yy, xx = np.mgrid[0:128, 0:160]
    blobs = np.stack([(1000 * (np.sin(xx / (6 + c)) * np.cos(yy / 9) + 1)).astype(np.uint16)
                      for c in range(2)])
    iio.imwrite(path, blobs, spacing=(None, 0.2, 0.2), axes="CYX", units=(None, "um", "um"))
    out = tmp_path / "shot.png"
    env = dict(os.environ, DISPLAY=x_display, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", _SCREENSHOT, str(path), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.split()[0] == "2"  # two channel layers
    shot = iio.imread(out)
    assert shot.ndim == 3 and shot.shape[2] == 3
    # not blank: both channel colours (magenta and green, additive) show, with structure
    assert shot.std() > 20
    assert (shot[..., 1] > 100).mean() > 0.05 and (shot[..., 0] > 100).mean() > 0.05
    if os.environ.get("IMGIO_NAPARI_SCREENSHOT"):  # regenerate docs/_static/napari-screenshot.png
        import shutil
        shutil.copyfile(out, os.environ["IMGIO_NAPARI_SCREENSHOT"])


def test_separate_images_become_separate_layers(viewer, tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    b = np.ones((5, 6), np.uint16)
    np.savez(tmp_path / "two.npz", a, b)
    iio.imwrite(tmp_path / "two.tif", [a, b], is_batch=True)
    for name in ("two.npz", "two.tif"):
        layers = viewer.open(tmp_path / name, plugin="imgio")
        assert [layer.name for layer in layers] == [f"{name} [0]", f"{name} [1]"]
        np.testing.assert_array_equal(layers[0].data, a)
        np.testing.assert_array_equal(layers[1].data, b)
    # a stack of frames (HDF5) and of slices (folder) stays one image
    with h5py.File(tmp_path / "frames.h5", "w") as f:
        f["data"] = np.zeros((4, 5, 6), np.uint8)
    assert len(viewer.open(tmp_path / "frames.h5", plugin="imgio")) == 1
