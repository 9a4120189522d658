"""The zarr plugin: OME-Zarr (NGFF 0.4 / 0.5) and plain Zarr, read and written."""
import os
import tracemalloc

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import imgio
import imgio.v2 as iio2
import imgio.v3 as iio
from imgio.errors import FormatError, ShapeError
from imgio.plugins.zarr.write import downsample


def _vol(shape, dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4000, size=shape).astype(dtype)


def _mean_ref(a, factors):
    """Reference mean downsampling: loops over output pixels (edge pixels repeated)."""
    out_shape = tuple(-(-n // f) for n, f in zip(a.shape, factors))
    out = np.empty(out_shape, a.dtype)
    for idx in np.ndindex(*out_shape):
        sl = []
        for i, f, n in zip(idx, factors, a.shape):
            lo = i * f
            sl.append([min(lo + k, n - 1) for k in range(f)])
        block = a[np.ix_(*sl)].astype(np.float64)
        v = block.mean()
        out[idx] = np.rint(v) if a.dtype.kind in "iu" else v
    return out


@pytest.fixture
def vol():
    return _vol((40, 150, 130))


def test_roundtrip_pyramid_properties(tmp_path, vol):
    p = tmp_path / "x.ome.zarr"
    iio.imwrite(p, vol, spacing=(2.0, 0.5, 0.25), units=("um", "um", "um"), levels=3)
    np.testing.assert_array_equal(iio.imread(p), vol)
    shapes = [(40, 150, 130), (20, 75, 65), (10, 38, 33)]
    for k, shape in enumerate(shapes):
        props = iio.improps(p, level=k)
        assert props.shape == shape and props.dtype == np.uint16
        assert props.axes == "ZYX"
        assert props.units == ("um", "um", "um")
        assert props.spacing == pytest.approx((2.0 * 2**k, 0.5 * 2**k, 0.25 * 2**k))
        assert iio.imread(p, level=k).shape == shape
    assert iio.improps(p, level=-1).shape == shapes[-1]
    meta = iio.immeta(p)
    assert meta["ngff_version"] == "0.5" and meta["n_levels"] == 3
    assert meta["zarr_format"] == 3 and meta["compression"] == "zstd"


def test_mean_and_stride_levels(tmp_path):
    vol = _vol((9, 13, 11))
    iio.imwrite(tmp_path / "m.ome.zarr", vol, levels=3, chunks=(4, 8, 8))
    iio.imwrite(tmp_path / "s.ome.zarr", vol, levels=3, downsample="stride", chunks=(4, 8, 8))
    ref = vol
    for k in range(1, 3):
        ref = _mean_ref(ref, (2, 2, 2))
        np.testing.assert_array_equal(iio.imread(tmp_path / "m.ome.zarr", level=k), ref)
    np.testing.assert_array_equal(iio.imread(tmp_path / "s.ome.zarr", level=2), vol[::4, ::4, ::4])


def test_channels_not_downsampled(tmp_path):
    vol = _vol((3, 8, 40, 36))
    iio.imwrite(tmp_path / "c.ome.zarr", vol, axes="CZYX", levels=2)
    props = iio.improps(tmp_path / "c.ome.zarr", level=1)
    assert props.shape == (3, 4, 20, 18) and props.axes == "CZYX"
    np.testing.assert_array_equal(iio.imread(tmp_path / "c.ome.zarr", level=1)[2],
                                  _mean_ref(vol[2], (2, 2, 2)))


def test_validates_against_ngff_schema(tmp_path, vol):
    from ome_zarr_models.v05 import Image
    p = tmp_path / "x.ome.zarr"
    iio.imwrite(p, vol, spacing=(2.0, 0.5, 0.5), units=("um",) * 3, levels=3,
                compression="blosc")
    assert iio.immeta(p)["compression"] == "blosc"
    image = Image.from_zarr(zarr.open_group(p, mode="r"))
    datasets = image.attributes.ome.multiscales[0].datasets
    assert [d.path for d in datasets] == ["0", "1", "2"]
    assert [a.unit for a in image.attributes.ome.multiscales[0].axes] == ["micrometer"] * 3


def test_ome_zarr_py_reads_what_we_write(tmp_path, vol):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader
    p = tmp_path / "x.ome.zarr"
    iio.imwrite(p, vol, spacing=(2.0, 0.5, 0.5), units=("um",) * 3, levels=3)
    node = list(Reader(parse_url(str(p)))())[0]
    assert [tuple(d.shape) for d in node.data] == [iio.improps(p, level=k).shape
                                                   for k in range(3)]
    assert [a["name"] for a in node.metadata["axes"]] == ["z", "y", "x"]
    for k, ct in enumerate(node.metadata["coordinateTransformations"]):
        assert ct[0]["scale"] == pytest.approx(list(iio.improps(p, level=k).spacing))
    np.testing.assert_array_equal(np.asarray(node.data[1]), iio.imread(p, level=1))


def _write_ngff04(path, levels):
    """An NGFF 0.4 image on a Zarr v2 store, written with zarr directly."""
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    datasets = []
    for k, data in enumerate(levels):
        root.create_array(f"s{k}", data=data, chunks=(1, 2, 16, 16))
        datasets.append({"path": f"s{k}", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 3.0, 0.2 * 2**k, 0.2 * 2**k]}]})
    root.attrs["multiscales"] = [{
        "version": "0.4", "name": "img",
        "axes": [{"name": "t", "type": "time", "unit": "second"},
                 {"name": "z", "type": "space", "unit": "micrometer"},
                 {"name": "y", "type": "space", "unit": "micrometer"},
                 {"name": "x", "type": "space", "unit": "micrometer"}],
        "datasets": datasets,
        "coordinateTransformations": [{"type": "scale", "scale": [0.5, 1.0, 1.0, 1.0]}]}]


def test_read_ngff04_zarr_v2(tmp_path):
    a = _vol((2, 5, 40, 30))
    b = a[:, :, ::2, ::2].copy()
    p = tmp_path / "v04.zarr"
    _write_ngff04(p, [a, b])
    props = iio.improps(p)
    assert props.axes == "TZYX" and props.shape == a.shape
    assert props.units == ("s", "um", "um", "um")
    assert props.spacing == pytest.approx((0.5, 3.0, 0.2, 0.2))
    assert iio.improps(p, level=1).spacing == pytest.approx((0.5, 3.0, 0.4, 0.4))
    np.testing.assert_array_equal(iio.imread(p, level=1), b)
    assert iio.immeta(p)["ngff_version"] == "0.4"
    # index: one frame along the first axis; imiter yields them
    np.testing.assert_array_equal(iio.imread(p, index=1), a[1])
    assert len(list(iio.imiter(p))) == 2


# ome-zarr-py's own write_image uses its deprecated Scaler internally
@pytest.mark.filterwarnings("ignore:Call to deprecated class Scaler:DeprecationWarning")
def test_ome_zarr_py_written_v04(tmp_path):
    from ome_zarr.format import FormatV04
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_image
    vol = _vol((6, 64, 48))
    p = tmp_path / "o.ome.zarr"
    store = parse_url(str(p), mode="w", fmt=FormatV04()).store
    root = zarr.group(store=store, zarr_format=2)
    write_image(vol, root, axes="zyx", fmt=FormatV04(), scale_factors=(2,))
    assert iio.improps(p).axes == "ZYX"
    np.testing.assert_array_equal(iio.imread(p), vol)
    assert iio.improps(p, level=1).shape == (6, 32, 24)


def test_plain_arrays_and_groups(tmp_path):
    a = _vol((4, 20, 30))
    zarr.save_array(str(tmp_path / "v2.zarr"), a, zarr_format=2)
    zarr.save_array(str(tmp_path / "v3.zarr"), a, zarr_format=3)
    for name in ("v2.zarr", "v3.zarr"):
        np.testing.assert_array_equal(iio.imread(tmp_path / name), a)
        assert iio.improps(tmp_path / name).shape == a.shape
    g = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    g.create_array("raw/a", data=a)
    g.create_array("raw/b", data=a[:2])
    np.testing.assert_array_equal(iio.imread(tmp_path / "g.zarr", dataset="raw/b"), a[:2])
    with pytest.raises(FormatError, match="raw/a"):
        iio.imread(tmp_path / "g.zarr")
    with pytest.raises(FormatError, match="no array or group"):
        iio.imread(tmp_path / "g.zarr", dataset="nope")
    # plain write
    iio.imwrite(tmp_path / "p.zarr", a, ome=False)
    np.testing.assert_array_equal(iio.imread(tmp_path / "p.zarr"), a)


def test_v2_api(tmp_path, vol):
    p = tmp_path / "x.ome.zarr"
    iio2.volwrite(p, vol)
    np.testing.assert_array_equal(iio2.volread(p), vol)
    reader = iio2.get_reader(p)
    assert len(reader) == vol.shape[0]
    np.testing.assert_array_equal(reader.get_data(7), vol[7])
    reader.close()


def test_streaming_append_matches_write_and_stays_small(tmp_path):
    shape = (96, 256, 256)  # 12 MiB volume, written frame by frame
    vol = _vol(shape)
    iio.imwrite(tmp_path / "e.ome.zarr", vol, levels=3, chunks=(8, 128, 128))
    tracemalloc.start()
    try:
        w = iio2.get_writer(tmp_path / "a.ome.zarr", levels=3, chunks=(8, 128, 128),
                            spacing=(1.0, 0.5, 0.5))
        for i in range(shape[0]):
            w.append_data(vol[i])
        w.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < vol.nbytes / 3, peak  # a few shard rows, never the volume
    for k in range(3):
        np.testing.assert_array_equal(iio.imread(tmp_path / "a.ome.zarr", level=k),
                                      iio.imread(tmp_path / "e.ome.zarr", level=k))
    assert iio.improps(tmp_path / "a.ome.zarr").spacing == (1.0, 0.5, 0.5)


def test_dask_write_and_lazy_read(tmp_path, vol):
    import dask.array as da
    p = tmp_path / "d.ome.zarr"
    iio.imwrite(p, da.from_array(vol, chunks=(7, 150, 130)), levels=2, chunks=(8, 64, 64))
    np.testing.assert_array_equal(iio.imread(p), vol)
    lz = imgio.lazy(p)
    np.testing.assert_array_equal(np.asarray(lz[3:11, 20:90, 5:70]), vol[3:11, 20:90, 5:70])
    np.testing.assert_array_equal(imgio.to_dask(p, level=1).compute(), iio.imread(p, level=1))


def test_dask_chunks_follow_store(tmp_path, vol):
    """Needs the format-agnostic imgio.lazy (the plugin's chunks()/read_region())."""
    import dask
    p = tmp_path / "d.ome.zarr"
    iio.imwrite(p, vol, levels=2, chunks=(8, 64, 64))
    with dask.config.set({"array.chunk-size": "64KiB"}):  # one store chunk per dask chunk
        d = imgio.to_dask(p, level=1)
    assert d.chunks == ((8, 8, 4), (64, 11), (64, 1))
    np.testing.assert_array_equal(d.compute(), iio.imread(p, level=1))
    d = imgio.to_dask(p)  # merged blocks: whole store chunks each
    assert all(c % 8 == 0 for c in d.chunks[0][:-1])


def test_contract_chunks_and_read_region(tmp_path, vol):
    p = tmp_path / "x.ome.zarr"
    iio.imwrite(p, vol, levels=2, chunks=(8, 64, 64), shards=(8, 128, 128))
    with iio.imopen(p, "r") as f:
        assert f.chunks() == (8, 64, 64)
        assert f.chunks(index=0) == (64, 64)
        assert f.chunks(level=1) == (8, 64, 64)
        box = (slice(3, 17), slice(60, 130), slice(0, 5))
        np.testing.assert_array_equal(f.read_region(box), vol[box])
        out = np.empty((14, 70, 5), np.uint16)
        assert f.read_region(box, out=out) is out
        np.testing.assert_array_equal(out, vol[box])
        np.testing.assert_array_equal(f.read_region(box[1:], index=4), vol[4][box[1:]])
        with pytest.raises(ValueError):
            f.read_region((slice(0, 41), slice(0, 1), slice(0, 1)))
    meta = iio.immeta(p)
    assert meta["shards"] == (8, 128, 128) and meta["chunks"] == (8, 64, 64)


def test_overwrite_and_failed_write_keeps_old(tmp_path, vol):
    p = tmp_path / "x.ome.zarr"
    iio.imwrite(p, vol, levels=1)
    iio.imwrite(p, vol[:4], levels=1)
    assert iio.improps(p).shape == (4, 150, 130)
    with pytest.raises(ValueError, match="unit"):
        iio.imwrite(p, vol, units=("parsecs?", "um", "um"))
    assert iio.improps(p).shape == (4, 150, 130)
    assert sorted(os.listdir(tmp_path)) == ["x.ome.zarr"]  # no temp folder left behind


def test_errors(tmp_path, vol):
    p = tmp_path / "x.ome.zarr"
    with pytest.raises(ShapeError, match="order"):
        iio.imwrite(p, vol, axes="YXZ")
    with pytest.raises(ShapeError):
        iio.imwrite(p, np.zeros(5, np.uint8))
    iio.imwrite(p, vol, levels=2)
    with pytest.raises(IndexError, match="level 2"):
        iio.imread(p, level=2)
    with pytest.raises(IndexError):
        iio.imread(p, index=40)


def test_missing_backend_hint(monkeypatch):
    import sys

    from imgio.core import registry
    from imgio.errors import BackendMissingError
    spec = registry.get_spec("zarr")
    monkeypatch.setitem(sys.modules, "zarr", None)
    monkeypatch.setattr(registry, "_LOADED", {})
    with pytest.raises(BackendMissingError, match=r"imgio\[zarr\]"):
        spec.load()


@settings(max_examples=12, deadline=None)
@given(shape=st.tuples(st.integers(1, 9), st.integers(2, 21), st.integers(2, 21)),
       dtype=st.sampled_from([np.uint8, np.uint16, np.int32, np.float32]),
       levels=st.integers(1, 3))
def test_roundtrip_property(tmp_path_factory, shape, dtype, levels):
    vol = _vol(shape, dtype, seed=sum(shape))
    p = tmp_path_factory.mktemp("h") / "h.ome.zarr"
    # axes given: a (Z, Y, 3) volume would otherwise be refused as a channels-last RGB image
    iio.imwrite(p, vol, levels=levels, chunks=(4, 8, 8), axes="ZYX")
    np.testing.assert_array_equal(iio.imread(p), vol)
    ref = vol
    for k in range(1, levels):
        ref = _mean_ref(ref, tuple(2 if n > 1 else 1 for n in ref.shape))
        got = iio.imread(p, level=k)
        if np.dtype(dtype).kind == "f":
            np.testing.assert_allclose(got, ref, rtol=1e-5)
        else:
            np.testing.assert_array_equal(got, ref)


def test_downsample_large_block_in_parts():
    # larger than the float temporary step: the piecewise mean must equal one pass
    a = _vol((6, 700, 700), np.uint16)
    got = downsample(a, (2, 2, 2))
    ref = np.rint(a.reshape(3, 2, 350, 2, 350, 2).astype(np.float64).mean(axis=(1, 3, 5)))
    np.testing.assert_array_equal(got, ref.astype(np.uint16))


def test_damaged_chunk_and_metadata(tmp_path):
    import glob

    from imgio.errors import CorruptFileError
    p = tmp_path / "c.ome.zarr"
    iio.imwrite(p, _vol((8, 64, 64)), levels=1, shards=False, chunks=(8, 32, 32))
    chunk = sorted(f for f in glob.glob(f"{p}/0/c/**/*", recursive=True) if os.path.isfile(f))[0]
    with open(chunk, "r+b") as fh:
        fh.seek(4)
        fh.write(b"\xff" * 20)
    with pytest.raises(CorruptFileError, match="c.ome.zarr"):
        iio.imread(p)
    (p / "zarr.json").write_text("{ not json")
    with pytest.raises(CorruptFileError, match="c.ome.zarr"):
        iio.improps(p)


def test_exception_inside_writer_keeps_old_store(tmp_path, vol):
    p = tmp_path / "x.ome.zarr"
    iio.imwrite(p, vol[:3], levels=1)

    class Boom(Exception):
        pass
    with pytest.raises(Boom):
        with iio.imopen(p, "w") as f:
            f.write(vol, levels=2)
            raise Boom
    assert iio.improps(p).shape == (3, 150, 130)
    assert sorted(os.listdir(tmp_path)) == ["x.ome.zarr"]


def test_missing_store(tmp_path):
    with pytest.raises(FileNotFoundError):
        iio.imread(tmp_path / "missing.ome.zarr")


def test_convert_refuses_other_destinations(tmp_path):
    from imgio.convert import convert
    with pytest.raises(ValueError, match="OME-Zarr"):
        convert(tmp_path / "a.tif", tmp_path / "b.tif")


def test_rgb_needs_channels_first(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(ShapeError, match="moveaxis"):
        iio.imwrite(tmp_path / "rgb.ome.zarr", rgb)
    iio.imwrite(tmp_path / "rgb.ome.zarr", np.moveaxis(rgb, -1, 0), axes="CYX")
    assert iio.improps(tmp_path / "rgb.ome.zarr").axes == "CYX"
    iio.imwrite(tmp_path / "v.ome.zarr", rgb, axes="ZYX")  # a volume, said so
    assert iio.improps(tmp_path / "v.ome.zarr").shape == (20, 30, 3)


def test_one_unit_string_is_the_spatial_axes_unit(tmp_path):
    # as for TIFF: units="um" names the unit of Z, Y and X, not one letter per axis
    p = tmp_path / "u.ome.zarr"
    vol = np.zeros((2, 3, 8, 8), np.uint8)
    iio.imwrite(p, vol, axes="CZYX", spacing=(1, 2.0, 0.5, 0.5), units="um")
    props = iio.improps(p)
    assert props.axes == "CZYX"
    assert props.units == (None, "um", "um", "um")


@settings(max_examples=10, deadline=None)
@given(shape=st.tuples(st.integers(1, 19), st.integers(2, 40), st.integers(2, 40)),
       chunks=st.tuples(st.integers(1, 5), st.integers(2, 9), st.integers(2, 9)),
       tiles=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       block=st.integers(1, 7), levels=st.integers(2, 3))
def test_streamed_pyramid_matches_reference(tmp_path_factory, shape, chunks, tiles, block,
                                            levels):
    """Append and dask writes (rows in blocks of any size, shards several tiles across,
    odd and even lengths) give the mean pyramid of the whole array."""
    import dask.array as da
    vol = _vol(shape, seed=sum(shape) + block)
    shards = (chunks[0],) + tuple(c * t for c, t in zip(chunks[1:], tiles))
    p = tmp_path_factory.mktemp("s") / "s.ome.zarr"
    iio.imwrite(p, da.from_array(vol, chunks=(block,) + shape[1:]), levels=levels,
                chunks=chunks, shards=shards, axes="ZYX")
    q = p.with_name("a.ome.zarr")
    with iio.imopen(q, "w") as f:
        for frame in vol:
            f.append(frame, levels=levels, chunks=chunks, shards=shards, axes="ZYX")
    ref = vol
    for k in range(levels):
        if k:
            ref = _mean_ref(ref, tuple(2 if n > 1 else 1 for n in ref.shape))
        np.testing.assert_array_equal(iio.imread(p, level=k), ref)
        np.testing.assert_array_equal(iio.imread(q, level=k), ref)


def test_level_writer_holds_one_shard_row_per_level(tmp_path):
    """Appending frames: the peak is about one shard row of each level plus one shard
    being encoded, not a list of rows and their concatenation."""
    shape = (64, 512, 512)  # 32 MiB; one shard row of level 0 is 16 x 512 x 512 = 8 MiB
    frame = _vol((1,) + shape[1:])[0]
    row = 16 * 512 * 512 * 2
    tracemalloc.start()
    try:
        with iio.imopen(tmp_path / "m.ome.zarr", "w") as f:
            for i in range(shape[0]):
                f.append(frame, levels=3, chunks=(16, 128, 128), shards=(16, 256, 256))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * row, (peak, row)  # 1.8 rows measured; rows in a list + their concatenation: more
    assert iio.improps(tmp_path / "m.ome.zarr", level=2).shape == (16, 128, 128)
