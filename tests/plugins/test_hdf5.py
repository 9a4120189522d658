"""HDF5 plugin: conformance suite, layouts (frame groups, BigDataViewer, Imaris),
the fast chunk path against h5py, streaming and atomic writes."""
import io
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

import imgio.v3 as iio
from imgio.errors import CorruptFileError, FormatError, SelectionError, ShapeError
from imgio.plugins.hdf5.plugin import Hdf5Plugin
from imgio.testing import PluginConformance


class TestHdf5Conformance(PluginConformance):
    plugin = "hdf5"
    extension = ".h5"

    def make_image(self, seed=0):
        return np.random.default_rng(seed).integers(-900, 900, size=(4, 20, 30), dtype=np.int16)


class TestHdf5GzipConformance(PluginConformance):
    """The same contract for gzip + shuffle data (read by the fast chunk path)."""

    plugin = "hdf5"
    extension = ".hdf5"

    def make_image(self, seed=0):
        return np.random.default_rng(seed).normal(size=(3, 16, 12)).astype("<f4")

    def write_file(self, path, image=None):
        image = self.make_image() if image is None else image
        iio.imwrite(path, image, compression="gzip")
        return image


# -- helpers -------------------------------------------------------------------------------
def _random(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        # low-entropy values so that compression has something to do
        return rng.integers(max(info.min, -300), min(info.max, 300), shape).astype(dtype)
    if dtype.kind == "c":
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)
    return rng.normal(100, 5, shape).astype(dtype)


DTYPES = ["u1", "i1", "<u2", ">u2", "<i2", "<u4", ">i4", "<u8", "<i8", "<f2", "<f4", ">f4",
          "<f8", ">f8", "<c8", "<c16", "?"]


# -- round trips ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("compression", [None, "gzip", "lzf"])
def test_roundtrip_dtypes_and_compression(tmp_path, dtype, compression):
    path = tmp_path / "x.h5"
    image = _random((5, 9, 7), dtype)
    iio.imwrite(path, image, compression=compression)
    got = iio.imread(path)
    assert got.dtype == image.dtype
    np.testing.assert_array_equal(got, image)
    np.testing.assert_array_equal(iio.imread(path, index=3), image[3])
    frames = list(iio.imiter(path))
    assert len(frames) == 5
    np.testing.assert_array_equal(np.stack(frames), image)
    with h5py.File(path) as f:
        ds = f["data"]
        assert ds.chunks == (1, 9, 7)  # one frame per chunk by default
        assert ds.compression == compression
        assert ds.dtype == image.dtype


def test_write_options_reach_h5py(tmp_path):
    path = tmp_path / "x.h5"
    image = _random((6, 8, 8), "<u2")
    iio.imwrite(path, image, dataset="grp/img", compression="gzip", compression_opts=9,
                chunks=(2, 4, 8), shuffle=False, fletcher32=True)
    with h5py.File(path) as f:
        ds = f["grp/img"]
        assert (ds.chunks, ds.compression, ds.compression_opts) == ((2, 4, 8), "gzip", 9)
        assert not ds.shuffle and ds.fletcher32
    np.testing.assert_array_equal(iio.imread(path), image)


def test_list_is_stacked_and_2d_is_one_image(tmp_path):
    path = tmp_path / "x.h5"
    images = [_random((5, 6), "u1", s) for s in range(3)]
    iio.imwrite(path, images)
    np.testing.assert_array_equal(iio.imread(path), np.stack(images))
    flat = tmp_path / "flat.h5"
    iio.imwrite(flat, images[0])
    # a 2-D dataset is a single image, not a series of rows
    np.testing.assert_array_equal(iio.imread(flat, index=0), images[0])
    assert iio.imread(flat, index=...).shape == (1, 5, 6)
    assert iio.improps(flat).n_images == 1 and iio.improps(flat, index=...).shape == (1, 5, 6)
    assert [f.shape for f in iio.imiter(flat)] == [(5, 6)]
    with pytest.raises(IndexError):
        iio.imread(flat, index=1)


def test_non_numeric_dtype_is_refused(tmp_path):
    with pytest.raises(TypeError, match="numeric"):
        iio.imwrite(tmp_path / "x.h5", np.array([["a", "b"]]))
    assert os.listdir(tmp_path) == []


def test_unknown_keyword(tmp_path):
    with pytest.raises(TypeError, match="unexpected"):
        iio.imwrite(tmp_path / "x.h5", np.zeros((2, 2)), quality=3)


def test_bytes_and_file_objects(tmp_path):
    image = _random((3, 10, 11), "<u2")
    data = iio.imwrite("<bytes>", image, extension=".h5", compression="gzip")
    np.testing.assert_array_equal(iio.imread(data), image)
    buf = io.BytesIO()
    iio.imwrite(buf, image, extension=".h5", compression="gzip")
    assert buf.getvalue() == data or len(buf.getvalue()) > 0
    buf.seek(0)
    np.testing.assert_array_equal(iio.imread(buf, index=2), image[2])
    buf.seek(0)
    np.testing.assert_array_equal(np.stack(list(iio.imiter(buf))), image)


def test_import_imgio_does_not_import_h5py():
    code = ("import sys, imgio, imgio.v3, imgio.core.registry; "
            "assert 'h5py' not in sys.modules, 'h5py imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- physical metadata ---------------------------------------------------------------------
def test_spacing_axes_units_roundtrip(tmp_path):
    path = tmp_path / "x.h5"
    image = _random((4, 6, 8), "<u2")
    iio.imwrite(path, image, spacing=(2.0, 0.25, 0.25), axes="ZYX", units="um")
    props = iio.improps(path)
    assert props.spacing == (2.0, 0.25, 0.25) and props.axes == "ZYX"
    assert props.units == ("um", "um", "um")
    frame = iio.improps(path, index=1)
    assert frame.shape == (6, 8) and frame.spacing == (0.25, 0.25) and frame.axes == "YX"
    with h5py.File(path) as f:  # what Fiji and ilastik read
        ds = f["data"]
        np.testing.assert_array_equal(ds.attrs["element_size_um"], [2.0, 0.25, 0.25])
        assert [d.label for d in ds.dims] == ["z", "y", "x"]


def test_non_micron_units_skip_element_size_um(tmp_path):
    path = tmp_path / "x.h5"
    iio.imwrite(path, _random((3, 4, 5), "u1"), spacing=(1.5, 1e-3, 1e-3), units=("s", "mm", "mm"))
    with h5py.File(path) as f:
        assert "element_size_um" not in f["data"].attrs
    props = iio.improps(path)
    assert props.spacing == (1.5, 1e-3, 1e-3) and props.units == ("s", "mm", "mm")


def test_fiji_and_ilastik_conventions(tmp_path):
    path = tmp_path / "fiji.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("t0/channel0", data=_random((3, 4, 5), "u1"))
        ds.attrs["element_size_um"] = np.array([3.0, 0.5, 0.4], np.float32)
    props = iio.improps(path)
    assert props.spacing == pytest.approx((3.0, 0.5, 0.4)) and props.units == ("um",) * 3
    path = tmp_path / "ilastik.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("exported_data", data=_random((3, 4, 5, 2), "u1"))
        ds.attrs["axistags"] = ('{"axes": [{"key": "z"}, {"key": "y"}, {"key": "x"}, '
                                '{"key": "c"}]}')
        ds.attrs["element_size_um"] = [2.0, 1.0, 1.0]
    props = iio.improps(path)
    assert props.axes == "ZYXC"
    assert props.spacing == (2.0, 1.0, 1.0, None)
    path = tmp_path / "labels.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("img", data=_random((3, 4, 5), "u1"))
        for i, label in enumerate(["time", "y", "x"]):
            ds.dims[i].label = label
        ds.attrs["unit"] = "nm"
        ds.attrs["spacing"] = [1.0, 2.0, 2.0]
    props = iio.improps(path)
    assert props.axes == "TYX" and props.units == ("nm",) * 3 and props.spacing == (1, 2, 2)


def test_metadata_decoding(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.attrs["title"] = b"experiment 7"
        f.attrs["count"] = np.int64(3)
        ds = f.create_dataset("img", data=_random((2, 3, 4), "u1"))
        ds.attrs["exposure"] = np.float32(0.5)
        ds.attrs["names"] = np.array([b"a", b"bc"])
        ds.attrs["vlen"] = "text"
        ds.attrs["chars"] = np.array([b"5", b"1", b"2"], dtype="S1")
        ds.attrs["table"] = np.arange(3)
    meta = iio.immeta(path)
    assert meta["title"] == "experiment 7" and type(meta["count"]) is int
    assert type(meta["exposure"]) is float and meta["exposure"] == 0.5
    assert meta["names"] == ["a", "bc"] and meta["vlen"] == "text" and meta["chars"] == "512"
    np.testing.assert_array_equal(meta["table"], [0, 1, 2])
    assert meta["dataset"] == "/img" and meta["shape"] == (2, 3, 4)
    assert iio.immeta(path, index=1)["index"] == 1


def test_metadata_keyword_becomes_attributes(tmp_path):
    path = tmp_path / "x.h5"
    iio.imwrite(path, _random((2, 3, 4), "u1"),
                metadata={"fps": 25.0, "camera": "cam-1", "nested": {"a": 1}, "skip": None})
    meta = iio.immeta(path)
    assert meta["fps"] == 25.0 and meta["camera"] == "cam-1"
    assert meta["nested"] == '{"a": 1}' and "skip" not in meta


# -- choosing the dataset ------------------------------------------------------------------
def _two_datasets(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("raw", data=_random((3, 8, 9), "<u2"))
        f.create_dataset("seg/labels", data=_random((3, 8, 9), "u1", 1))
        f.create_dataset("table", data=np.arange(10))  # 1-D: not image-like
        f.create_dataset("name", data="not an image")


def test_several_candidates_listed(tmp_path):
    path = tmp_path / "two.h5"
    _two_datasets(path)
    with pytest.raises(FormatError) as info:
        iio.imread(path)
    msg = str(info.value)
    assert str(path) in msg and "/raw (3, 8, 9) uint16" in msg and "/seg/labels (3, 8, 9) uint8" in msg
    assert "/table" not in msg
    with pytest.raises(FormatError):
        iio.improps(path)
    assert "datasets" in iio.immeta(path)  # metadata still works without a choice
    assert iio.imread(path, dataset="/seg/labels").dtype == np.uint8
    assert iio.improps(path, dataset="raw").dtype == np.uint16
    assert len(list(iio.imiter(path, dataset="raw"))) == 3
    assert iio.immeta(path, dataset="raw")["dataset"] == "/raw"
    with iio.imopen(path, "r", dataset="seg/labels") as f:
        assert f.read().dtype == np.uint8
        assert f.read(dataset="raw").dtype == np.uint16
        assert set(f.datasets) == {"/raw", "/seg/labels", "/table", "/name"}


def test_missing_dataset_and_no_images(tmp_path):
    path = tmp_path / "two.h5"
    _two_datasets(path)
    with pytest.raises(SelectionError, match=r"two\.h5: dataset 'nope' requested; the file "
                                             r"has datasets: .*/raw \(3, 8, 9\) uint16; "
                                             r"/seg/labels"):
        iio.imread(path, dataset="nope")
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.create_dataset("v", data=np.arange(4))
    with pytest.raises(FormatError, match="no image-like dataset.*/v"):
        iio.imread(empty)
    np.testing.assert_array_equal(iio.imread(empty, dataset="v"), np.arange(4))


# -- frame-group series ---------------------------------------------------------------------
def test_frame_group_series(tmp_path):
    path = tmp_path / "frames.h5"
    frames = [_random((6, 7), "<u2", i) for i in range(12)]
    with h5py.File(path, "w") as f:
        for i, fr in enumerate(frames):
            f.create_dataset(f"frames/{i}", data=fr)
        f["frames/3"].attrs["element_size_um"] = [0.5, 0.5]
    expected = np.stack(frames)
    np.testing.assert_array_equal(iio.imread(path), expected)  # natural order: 0..11
    np.testing.assert_array_equal(iio.imread(path, index=10), frames[10])
    props = iio.improps(path)
    assert props.shape == (12, 6, 7) and props.n_images == 12 and props.is_batch
    got = list(iio.imiter(path))
    assert len(got) == 12 and all((g == e).all() for g, e in zip(got, frames))
    np.testing.assert_array_equal(iio.imread(path, dataset="frames"), expected)


def test_frame_group_with_different_shapes(tmp_path):
    path = tmp_path / "frames.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames/0", data=np.zeros((4, 4)))
        f.create_dataset("frames/1", data=np.zeros((4, 5)))
    with pytest.raises(FormatError, match="several"):
        iio.imread(path)
    with pytest.raises(FormatError, match="group"):
        iio.imread(path, dataset="frames")


# -- BigDataViewer ---------------------------------------------------------------------------
BDV_XML = """<?xml version="1.0" encoding="UTF-8"?>
<SpimData version="0.2">
  <BasePath type="relative">.</BasePath>
  <SequenceDescription>
    <ImageLoader format="bdv.hdf5"><hdf5 type="relative">{name}</hdf5></ImageLoader>
    <ViewSetups>
      <ViewSetup><id>0</id><name>0</name><size>40 30 10</size>
        <voxelSize><unit>µm</unit><size>0.25 0.3 2.0</size></voxelSize>
      </ViewSetup>
    </ViewSetups>
    <Timepoints type="range"><first>0</first><last>1</last></Timepoints>
  </SequenceDescription>
</SpimData>
"""


def _make_bdv(path, n_t=2, xml=True):
    """BigDataViewer's layout: s00/resolutions (x, y, z factors), t<5>/s<2>/<level>/cells
    as (z, y, x) int16 holding unsigned 16-bit values."""
    full = [_random((10, 30, 40), "<u2", t) + np.uint16(40000) for t in range(n_t)]
    with h5py.File(path, "w") as f:
        f["s00/resolutions"] = np.array([[1, 1, 1], [2, 2, 1]], np.float64)
        f["s00/subdivisions"] = np.array([[16, 16, 8], [16, 16, 8]], np.int32)
        for t, vol in enumerate(full):
            f.create_dataset(f"t{t:05d}/s00/0/cells", data=vol.view("<i2"), chunks=(8, 16, 16),
                             compression="gzip")
            f.create_dataset(f"t{t:05d}/s00/1/cells", data=vol[:, ::2, ::2].view("<i2"),
                             chunks=(8, 8, 8))
    if xml:
        path.with_suffix(".xml").write_text(BDV_XML.format(name=path.name), encoding="utf-8")
    return full


@pytest.mark.parametrize("xml", [True, False])
def test_bigdataviewer(tmp_path, xml):
    path = tmp_path / "dataset.h5"
    full = _make_bdv(path, xml=xml)
    vol = iio.imread(path)
    assert vol.shape == (2, 10, 30, 40) and vol.dtype == np.uint16
    np.testing.assert_array_equal(vol, np.stack(full))
    np.testing.assert_array_equal(iio.imread(path, index=1), full[1])
    props = iio.improps(path)
    assert props.shape == vol.shape and props.axes == "TZYX"
    low = iio.imread(path, level=1)
    np.testing.assert_array_equal(low, np.stack([v[:, ::2, ::2] for v in full]))
    if xml:
        assert props.spacing == (None, 2.0, 0.3, 0.25)
        assert iio.improps(path, level=1, index=0).spacing == (2.0, 0.6, 0.5)
        assert iio.improps(path, index=0).units == ("um",) * 3
    else:
        assert props.spacing is None
    with pytest.raises(IndexError, match="level 5"):
        iio.imread(path, level=5)


def test_bigdataviewer_single_timepoint(tmp_path):
    path = tmp_path / "one.h5"
    full = _make_bdv(path, n_t=1)
    np.testing.assert_array_equal(iio.imread(path), full[0])
    assert iio.improps(path).axes == "ZYX"


# -- Imaris ------------------------------------------------------------------------------------
def _chars_of(text):
    """Imaris stores attribute values as arrays of one-byte strings."""
    return np.frombuffer(str(text).encode(), dtype="S1")


def _make_ims(path, n_c=1, n_t=1):
    """The Imaris 5.5 layout: DataSet/ResolutionLevel L/TimePoint T/Channel C/Data
    (z, y, x) padded to whole chunks; sizes and extents in DataSetInfo/Image."""
    z, y, x = 5, 30, 45
    vols = {}
    with h5py.File(path, "w") as f:
        f.attrs["ImarisDataSet"] = _chars_of("ImarisDataSet")
        f.attrs["ImarisVersion"] = _chars_of("5.5.0")
        info = f.create_group("DataSetInfo/Image")
        for key, val in dict(X=x, Y=y, Z=z, ExtMin0=0, ExtMin1=0, ExtMin2=-5,
                             ExtMax0=x * 0.2, ExtMax1=y * 0.2, ExtMax2=-5 + z * 1.5,
                             Unit="um").items():
            info.attrs[key] = _chars_of(val)
        for level, step in ((0, 1), (1, 2)):
            lz, ly, lx = -(-z // step), -(-y // step), -(-x // step)
            for t in range(n_t):
                for c in range(n_c):
                    vol = _random((z, y, x), "<u2", 10 * t + c)
                    vols[level, t, c] = vol[::step, ::step, ::step]
                    padded = np.zeros((8, 32, 64), np.uint16)
                    padded[:lz, :ly, :lx] = vols[level, t, c]
                    g = f.create_group(f"DataSet/ResolutionLevel {level}/TimePoint {t}/Channel {c}")
                    g.create_dataset("Data", data=padded, chunks=(8, 32, 64), compression="gzip")
                    for a, v in (("X", lx), ("Y", ly), ("Z", lz)):
                        g.attrs[f"ImageSize{a}"] = _chars_of(v)
                    g.attrs["HistogramMin"] = _chars_of("0.000")
                    g.create_dataset("Histogram", data=np.zeros(256, np.uint64))
        for c in range(n_c):
            f.create_group(f"DataSetInfo/Channel {c}").attrs["Name"] = _chars_of(f"ch{c}")
    return vols


def test_imaris(tmp_path):
    path = tmp_path / "cells.ims"
    vols = _make_ims(path)
    vol = iio.imread(path)
    assert vol.shape == (5, 30, 45)  # padding cropped to the real size
    np.testing.assert_array_equal(vol, vols[0, 0, 0])
    props = iio.improps(path)
    assert props.shape == vol.shape and props.axes == "ZYX"
    assert props.spacing == pytest.approx((1.5, 0.2, 0.2)) and props.units == ("um",) * 3
    np.testing.assert_array_equal(iio.imread(path, index=2), vols[0, 0, 0][2])
    assert len(list(iio.imiter(path))) == 5
    low = iio.imread(path, level=1)
    np.testing.assert_array_equal(low, vols[1, 0, 0])
    # lower levels: the extent over that level's real size (3, 15, 23)
    assert iio.improps(path, level=1).spacing == pytest.approx((7.5 / 3, 6.0 / 15, 9.0 / 23))
    meta = iio.immeta(path)
    assert meta["ImarisVersion"] == "5.5.0" and meta["ImageSizeX"] == "45"
    assert iio.imread(path, dataset="DataSet/ResolutionLevel 0/TimePoint 0/Channel 0/Data"
                      ).shape == (8, 32, 64)  # an explicit dataset is read as stored


def test_imaris_channels_and_timepoints(tmp_path):
    path = tmp_path / "multi.ims"
    vols = _make_ims(path, n_c=2, n_t=3)
    vol = iio.imread(path)
    assert vol.shape == (3, 2, 5, 30, 45)
    for t in range(3):
        for c in range(2):
            np.testing.assert_array_equal(vol[t, c], vols[0, t, c])
    props = iio.improps(path)
    assert props.axes == "TCZYX" and props.shape == vol.shape
    assert props.spacing[2:] == pytest.approx((1.5, 0.2, 0.2))
    frames = list(iio.imiter(path))
    assert len(frames) == 3 and frames[1].shape == (2, 5, 30, 45)
    np.testing.assert_array_equal(iio.imread(path, index=2), vol[2])


# -- the fast chunk path agrees with h5py ----------------------------------------------------------
FAST_CASES = [
    # (chunks, compression, shuffle, fast path expected)
    ((1, 12, 10), None, False, True),
    ((1, 12, 10), "gzip", True, True),
    ((1, 12, 10), "gzip", False, True),
    ((1, 12, 10), None, True, True),  # shuffle alone
    ((3, 12, 10), "gzip", True, True),  # several frames per chunk, partial last chunk
    ((4, 12, 10), None, False, True),
    ((1, 6, 10), "gzip", True, False),  # tiles: h5py path
    ((1, 12, 10), "lzf", True, False),  # a filter the fast path leaves to h5py
]


@pytest.mark.parametrize("dtype", ["u1", "<u2", ">u2", "<i4", ">i8", "<f2", ">f4", "<f8", "<c8"])
@pytest.mark.parametrize("chunks,compression,shuffle,fast", FAST_CASES)
@pytest.mark.parametrize("source", ["path", "bytes", "fileobj"])
def test_fast_path_equals_h5py(tmp_path, dtype, chunks, compression, shuffle, fast, source):
    path = tmp_path / "x.h5"
    image = _random((10, 12, 10), dtype)
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=image, chunks=chunks, compression=compression, shuffle=shuffle)
    with h5py.File(path) as f:
        ref_all = f["x"][()]
        ref_frames = [f["x"][i] for i in range(10)]
    uri = {"path": path, "bytes": path.read_bytes(), "fileobj": io.BytesIO(path.read_bytes())}[source]
    with iio.imopen(uri, "r") as plugin:
        node = plugin._node()
        got = plugin.read()
        assert got.dtype == ref_all.dtype
        np.testing.assert_array_equal(got, ref_all)
        for i in (0, 4, 9, -1):
            np.testing.assert_array_equal(plugin.read(index=i), ref_frames[i])
        frames = list(plugin.iter())
        assert len(frames) == 10
        for g, e in zip(frames, ref_frames):
            assert g.dtype == e.dtype
            np.testing.assert_array_equal(g, e)
        # frames are independent arrays: changing one changes no other
        frames[0][...] = 0
        np.testing.assert_array_equal(frames[1], ref_frames[1])
        assert (node.fast() is not None) == fast
        if fast:
            expected_source = {"path": "pread", "bytes": "memory", "fileobj": "h5py"}[source]
            assert node.fast().source == expected_source


def test_fast_path_missing_chunks_and_filter_mask(tmp_path):
    path = tmp_path / "x.h5"
    frame = _random((16, 16), "<u2")
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("x", shape=(6, 16, 16), dtype="<u2", chunks=(1, 16, 16),
                              compression="gzip", shuffle=True, fillvalue=7)
        ds[0] = frame
        ds[2] = frame + 1
        # a chunk whose filters were skipped (as HDF5 does for optional filters
        # that fail): mask bit i set = filter i not applied; stored raw here
        ds.id.write_direct_chunk((4, 0, 0), (frame + 2).tobytes(), filter_mask=0b11)
        ref = ds[()]
    assert (ref[1] == 7).all() and (ref[4] == frame + 2).all()
    with iio.imopen(path, "r") as plugin:
        assert plugin._node().fast() is not None
        np.testing.assert_array_equal(plugin.read(), ref)
        np.testing.assert_array_equal(np.stack(list(plugin.iter())), ref)
        np.testing.assert_array_equal(plugin.read(index=4), ref[4])


def test_fast_path_reads_wide_frames_in_parallel(tmp_path):
    path = tmp_path / "x.h5"
    image = _random((9, 64, 64), "<u2")
    iio.imwrite(path, image, compression="gzip")
    with iio.imopen(path, "r") as plugin:
        np.testing.assert_array_equal(plugin.read(), image)
        assert plugin._executor is not None  # the decoding pool was used
    # stopping an iteration early releases everything
    it = iio.imiter(path)
    np.testing.assert_array_equal(next(it), image[0])
    it.close()


def test_tiled_chunks_batch_path(tmp_path):
    path = tmp_path / "x.h5"
    image = _random((50, 40, 30), "<i2")
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=image, chunks=(8, 16, 16), compression="gzip")
    np.testing.assert_array_equal(np.stack(list(iio.imiter(path))), image)
    contiguous = tmp_path / "c.h5"
    with h5py.File(contiguous, "w") as f:
        f.create_dataset("x", data=image)
    np.testing.assert_array_equal(np.stack(list(iio.imiter(contiguous))), image)
    np.testing.assert_array_equal(iio.imread(contiguous, index=-1), image[-1])


# -- streaming writes -------------------------------------------------------------------------------
def test_append_streams_into_resizable_dataset(tmp_path):
    path = tmp_path / "stream.h5"
    frames = [_random((12, 14), "<u2", i) for i in range(7)]
    with iio.imopen(path, "w") as f:
        for i, fr in enumerate(frames):
            f.append(fr, compression="gzip", spacing=(0.5, 0.5), axes="YX",
                     metadata={"fps": 10.0} if i == 0 else None)
            assert f._h5w["data"].shape[0] == i + 1  # grows on disk, frame by frame
    with h5py.File(path) as h:
        ds = h["data"]
        assert ds.shape == (7, 12, 14) and ds.maxshape == (None, 12, 14)
        assert ds.chunks == (1, 12, 14) and ds.compression == "gzip"
    np.testing.assert_array_equal(iio.imread(path), np.stack(frames))
    props = iio.improps(path)
    assert props.axes == "TYX" and props.spacing == (None, 0.5, 0.5)
    assert iio.immeta(path)["fps"] == 10.0


def test_append_v2_meta_keywords_become_attributes(tmp_path):
    path = tmp_path / "stream.h5"
    with iio.imopen(path, "w") as f:
        f.append(np.zeros((3, 4), np.uint8), description="from set_meta_data", gain=2)
        f.append(np.ones((3, 4), np.uint8))
    meta = iio.immeta(path)
    assert meta["description"] == "from set_meta_data" and meta["gain"] == 2
    assert iio.imread(path).shape == (2, 3, 4)


def test_append_checks_shape_and_dtype(tmp_path):
    path = tmp_path / "stream.h5"
    with pytest.raises(ShapeError, match="shape"):
        with iio.imopen(path, "w") as f:
            f.append(np.zeros((3, 4), np.uint8))
            f.append(np.zeros((3, 5), np.uint8))
    assert not path.exists()  # the failed stream left nothing behind
    with pytest.raises(TypeError, match="dtype"):
        with iio.imopen(path, "w") as f:
            f.append(np.zeros((3, 4), np.uint8))
            f.append(np.zeros((3, 4), np.float32))
    assert os.listdir(tmp_path) == []


def test_append_to_bytes_target():
    with iio.imopen("<bytes>", "w", extension=".h5") as f:
        for i in range(3):
            f.append(np.full((2, 2), i, np.uint8))
    data = f.request.finish()
    np.testing.assert_array_equal(iio.imread(data)[:, 0, 0], [0, 1, 2])


def test_several_writes_get_separate_datasets(tmp_path):
    path = tmp_path / "x.h5"
    with iio.imopen(path, "w") as f:
        f.write(np.zeros((2, 3, 3), np.uint8))
        f.write(np.ones((2, 3, 3), np.uint8))
        f.write(np.full((2, 3, 3), 2, np.uint8), dataset="named")
    with h5py.File(path) as h:
        assert sorted(h.keys()) == ["data", "data_1", "named"]
    assert iio.imread(path, dataset="data_1").max() == 1


# -- mode="a" and atomic writes ------------------------------------------------------------------------
def test_mode_a_adds_and_replaces(tmp_path):
    path = tmp_path / "x.h5"
    raw = _random((3, 8, 8), "<u2")
    iio.imwrite(path, raw, dataset="raw")
    labels = _random((3, 8, 8), "u1", 1)
    iio.imwrite(path, labels, dataset="labels", mode="a")
    np.testing.assert_array_equal(iio.imread(path, dataset="raw"), raw)
    np.testing.assert_array_equal(iio.imread(path, dataset="labels"), labels)
    iio.imwrite(path, labels + 1, dataset="labels", mode="a")  # replace one
    np.testing.assert_array_equal(iio.imread(path, dataset="labels"), labels + 1)
    np.testing.assert_array_equal(iio.imread(path, dataset="raw"), raw)
    iio.imwrite(path, raw, dataset="only")  # default mode "w": replaces the file
    with h5py.File(path) as h:
        assert list(h.keys()) == ["only"]
    assert sorted(os.listdir(tmp_path)) == ["x.h5"]
    new = tmp_path / "new.h5"  # mode="a" on a missing file creates it
    iio.imwrite(new, raw, mode="a")
    np.testing.assert_array_equal(iio.imread(new), raw)


@pytest.mark.parametrize("mode", ["w", "a"])
def test_failed_write_mid_stream_keeps_old_file(tmp_path, mode):
    path = tmp_path / "x.h5"
    old = _random((3, 8, 8), "<u2")
    iio.imwrite(path, old, dataset="raw")
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="camera"):
        with iio.imopen(path, "w", mode=mode) as f:
            f.append(np.zeros((8, 8), np.uint16), dataset="raw")
            f.append(np.zeros((8, 8), np.uint16), dataset="raw")
            raise RuntimeError("camera went away")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["x.h5"]
    np.testing.assert_array_equal(iio.imread(path, dataset="raw"), old)
    with pytest.raises(ShapeError):  # an error inside write() itself
        iio.imwrite(path, np.zeros((2, 3, 3)), axes="YX", mode=mode)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["x.h5"]


# -- damaged files ---------------------------------------------------------------------------------------
def test_truncated_file_is_corrupt_file_error(tmp_path):
    path = tmp_path / "x.h5"
    iio.imwrite(path, _random((4, 64, 64), "<u2"), compression="gzip")
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 100, 600):
        bad = tmp_path / f"cut{cut}.h5"
        bad.write_bytes(data[:cut])
        with pytest.raises(CorruptFileError) as info:
            iio.imread(bad)
        assert isinstance(info.value, OSError) and str(bad) in str(info.value)


def test_damaged_chunk_is_corrupt_file_error(tmp_path):
    path = tmp_path / "x.h5"
    iio.imwrite(path, _random((4, 64, 64), "<u2"), compression="gzip")
    with h5py.File(path) as f:
        info = f["data"].id.get_chunk_info(2)
    data = bytearray(path.read_bytes())
    data[info.byte_offset + 10: info.byte_offset + 60] = b"\xff" * 50
    path.write_bytes(bytes(data))
    np.testing.assert_array_equal(iio.imread(path, index=0).shape, (64, 64))
    with pytest.raises(CorruptFileError, match=str(path).replace("\\", "\\\\")):
        iio.imread(path)
    with pytest.raises(CorruptFileError):
        list(iio.imiter(path))


def test_plugin_class_attributes():
    assert Hdf5Plugin.name == "hdf5"
    from imgio.core.registry import get_spec
    for alias in ("hdf5", "HDF5", "h5py"):
        assert get_spec(alias).name == "hdf5"
    assert ".ims" in get_spec("hdf5").extensions


def test_v2_get_writer_streams_frames(tmp_path):
    import imgio.v2 as imageio
    path = tmp_path / "v2.h5"
    frames = [np.full((5, 6), i, np.uint16) for i in range(4)]
    with imageio.get_writer(path) as writer:
        for fr in frames:
            writer.append_data(fr)
    with h5py.File(path) as h:
        assert h["data"].maxshape == (None, 5, 6)
    np.testing.assert_array_equal(iio.imread(path), np.stack(frames))
    got = imageio.mimread(path)  # v2 reads the frames of the series
    assert len(got) == 4
    np.testing.assert_array_equal(got[3], frames[3])


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_chunk_cut_short_names_file_and_chunk(tmp_path, compression):
    """A chunk the file ends inside (file cut after it was opened): the raw read
    (imgio.io.raw) raises CorruptFileError naming the file and the chunk."""
    path = tmp_path / "x.h5"
    iio.imwrite(path, _random((4, 64, 64), "<u2"), compression=compression)
    with h5py.File(path) as f:
        info = f["data"].id.get_chunk_info(3)
    with iio.imopen(path, "r", plugin="hdf5") as plugin:
        first = plugin.read(index=0)  # opens the file and builds the chunk table
        os.truncate(path, info.byte_offset + info.size // 2)
        with pytest.raises(CorruptFileError, match=r"chunk 3 of /data is cut short") as err:
            plugin.read(index=3)
        assert str(path) in str(err.value)
    assert first.shape == (64, 64)


def test_whole_volume_cut_short_names_file_and_chunk(tmp_path):
    """The same through the batched raw read of a whole uncompressed volume."""
    path = tmp_path / "v.h5"
    iio.imwrite(path, _random((5, 40, 48), "<u2"))
    with h5py.File(path) as f:
        info = f["data"].id.get_chunk_info(4)
    with iio.imopen(path, "r", plugin="hdf5") as plugin:
        plugin.read(index=0)
        os.truncate(path, info.byte_offset + 100)
        with pytest.raises(CorruptFileError, match=r"chunk 4 of /data is cut short") as err:
            plugin.read()
        assert str(path) in str(err.value)


def test_large_uncompressed_volume_read_in_ranges(tmp_path):
    """Above imgio.io.raw's threading threshold: frames land where h5py puts them."""
    from imgio.io import raw
    arr = _random((9, 1024, 1024), "<u2")  # 18 MiB: two threads
    assert arr.nbytes >= 2 * raw._THREAD_BYTES
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=arr, chunks=(1, 1024, 1024))
    np.testing.assert_array_equal(iio.imread(path), arr)
    np.testing.assert_array_equal(iio.imread(path, index=8), arr[8])
