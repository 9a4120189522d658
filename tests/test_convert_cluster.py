"""imgio.convert to OME-Zarr: streamed in process, and on a dask LocalCluster of two
worker processes, compared with the eager write of the same array."""
import os

import h5py
import numpy as np
import pytest
import tifffile

import imgio.v3 as iio
from imgio.cli import main
from imgio.convert import convert, ngff_axes


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster
    with LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                      dashboard_address=None, host="127.0.0.1") as lc, Client(lc) as client:
        yield lc, client


def _vol(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 5000, shape).astype(np.uint16)


def _imagej(path, vol):
    tifffile.imwrite(path, vol, imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"spacing": 2.0, "unit": "um", "axes": "ZYX"})


def _assert_levels_equal(a, b, n):
    for k in range(n):
        np.testing.assert_array_equal(iio.imread(a, level=k), iio.imread(b, level=k))
        pa, pb = iio.improps(a, level=k), iio.improps(b, level=k)
        assert (pa.shape, pa.axes, pa.spacing, pa.units) == (pb.shape, pb.axes, pb.spacing,
                                                             pb.units)


def test_cluster_matches_eager(tmp_path, cluster):
    _, client = cluster
    vol = _vol((70, 130, 120))
    _imagej(tmp_path / "s.tif", vol)
    eager = tmp_path / "eager.ome.zarr"
    iio.imwrite(eager, vol, levels=3, chunks=(16, 64, 64), spacing=(2.0, 0.5, 0.5),
                units=("um",) * 3)
    seen = []
    out = convert(tmp_path / "s.tif", tmp_path / "k.ome.zarr", levels=3, chunks=(16, 64, 64),
                  scheduler=client, progress=lambda done, total: seen.append((done, total)))
    assert out["levels"] == [(70, 130, 120), (35, 65, 60), (18, 33, 30)]
    assert seen and seen[-1][0] == seen[-1][1] == out["tasks"]
    _assert_levels_equal(tmp_path / "k.ome.zarr", eager, 3)
    assert iio.improps(tmp_path / "k.ome.zarr").units == ("um",) * 3
    # the same in process (no scheduler)
    convert(tmp_path / "s.tif", tmp_path / "l.ome.zarr", levels=3, chunks=(16, 64, 64))
    _assert_levels_equal(tmp_path / "l.ome.zarr", eager, 3)
    assert not [n for n in os.listdir(tmp_path) if "partial" in n]


def test_cli_scheduler_address(tmp_path, cluster, capsys):
    lc, _ = cluster
    vol = _vol((33, 64, 50), seed=3)
    tifffile.imwrite(tmp_path / "s.tif", vol)
    rc = main(["convert", str(tmp_path / "s.tif"), str(tmp_path / "c.ome.zarr"),
               "--scheduler", lc.scheduler_address, "-q"])
    assert rc == 0
    np.testing.assert_array_equal(iio.imread(tmp_path / "c.ome.zarr"), vol)
    iio.imwrite(tmp_path / "e.ome.zarr", vol)
    _assert_levels_equal(tmp_path / "c.ome.zarr", tmp_path / "e.ome.zarr", 1)


def test_cli_convert_to_ome_zarr_locally(tmp_path, capsys):
    vol = _vol((20, 600, 40), seed=4)  # 600 rows: the default pyramid has 2 levels
    _imagej(tmp_path / "s.tif", vol)
    assert main(["convert", str(tmp_path / "s.tif"), str(tmp_path / "o.ome.zarr")]) == 0
    assert "o.ome.zarr" in capsys.readouterr().out
    props = iio.improps(tmp_path / "o.ome.zarr")
    assert props.spacing == (2.0, 0.5, 0.5) and props.units == ("um",) * 3
    assert iio.improps(tmp_path / "o.ome.zarr", level=1).shape == (10, 300, 20)


def test_convert_folder_and_hdf5(tmp_path, cluster):
    _, client = cluster
    vol = _vol((12, 40, 30), seed=5)
    (tmp_path / "slices").mkdir()
    for i, plane in enumerate(vol):
        tifffile.imwrite(tmp_path / "slices" / f"z{i}.tif", plane)
    convert(tmp_path / "slices", tmp_path / "f.ome.zarr", scheduler=client, levels=2)
    np.testing.assert_array_equal(iio.imread(tmp_path / "f.ome.zarr"), vol)
    with h5py.File(tmp_path / "d.h5", "w") as h:
        h.create_dataset("a/img", data=vol, chunks=(1, 40, 30))
        h.create_dataset("b/other", data=vol[:2])
    convert(tmp_path / "d.h5", tmp_path / "h.ome.zarr", dataset="a/img", scheduler=client,
            levels=2)
    np.testing.assert_array_equal(iio.imread(tmp_path / "h.ome.zarr"), vol)
    np.testing.assert_array_equal(iio.imread(tmp_path / "h.ome.zarr", level=1),
                                  iio.imread(tmp_path / "f.ome.zarr", level=1))


def test_convert_bigdataviewer_keeps_time_and_spacing(tmp_path):
    full = [_vol((6, 30, 40), seed=t) for t in range(2)]
    with h5py.File(tmp_path / "bdv.h5", "w") as f:
        f["s00/resolutions"] = np.array([[1, 1, 1]], np.float64)
        f["s00/subdivisions"] = np.array([[16, 16, 8]], np.int32)
        for t, v in enumerate(full):
            f.create_dataset(f"t{t:05d}/s00/0/cells", data=v.view("<i2"), chunks=(6, 16, 16))
    src_props = iio.improps(tmp_path / "bdv.h5")
    assert src_props.axes == "TZYX"
    convert(tmp_path / "bdv.h5", tmp_path / "b.ome.zarr", levels=2)
    props = iio.improps(tmp_path / "b.ome.zarr")
    assert props.axes == "TZYX" and props.shape == (2, 6, 30, 40)
    np.testing.assert_array_equal(iio.imread(tmp_path / "b.ome.zarr"), np.stack(full))
    assert iio.improps(tmp_path / "b.ome.zarr", level=1).shape == (2, 3, 15, 20)


def test_convert_imaris(tmp_path):
    vol = _vol((5, 30, 45), seed=9)

    def chars(text):
        return np.frombuffer(str(text).encode(), dtype="S1")
    with h5py.File(tmp_path / "c.ims", "w") as f:
        f.attrs["ImarisDataSet"] = chars("ImarisDataSet")
        f.attrs["ImarisVersion"] = chars("5.5.0")
        info = f.create_group("DataSetInfo/Image")
        for key, val in dict(X=45, Y=30, Z=5, ExtMin0=0, ExtMin1=0, ExtMin2=0, ExtMax0=9.0,
                             ExtMax1=6.0, ExtMax2=7.5, Unit="um").items():
            info.attrs[key] = chars(val)
        g = f.create_group("DataSet/ResolutionLevel 0/TimePoint 0/Channel 0")
        padded = np.zeros((8, 32, 64), np.uint16)
        padded[:5, :30, :45] = vol
        g.create_dataset("Data", data=padded, chunks=(8, 32, 64))
        for a, v in (("X", 45), ("Y", 30), ("Z", 5)):
            g.attrs[f"ImageSize{a}"] = chars(v)
    src = iio.improps(tmp_path / "c.ims")
    convert(tmp_path / "c.ims", tmp_path / "i.ome.zarr", levels=1)
    np.testing.assert_array_equal(iio.imread(tmp_path / "i.ome.zarr"), vol)
    props = iio.improps(tmp_path / "i.ome.zarr")
    assert props.spacing == pytest.approx(src.spacing)


def test_ngff_axes_mapping():
    assert ngff_axes("ZYX", (2, 3, 4)) == ("ZYX", (0, 1, 2))
    assert ngff_axes("YXS", (5, 6, 3)) == ("CYX", (2, 0, 1))
    assert ngff_axes("QYX", (5, 6, 3)) == ("ZYX", (0, 1, 2))
    assert ngff_axes("TZCYX", (1, 2, 3, 4, 5)) == ("TCZYX", (0, 2, 1, 3, 4))
    assert ngff_axes(None, (2, 3)) == ("YX", (0, 1))


def test_convert_rgb_tiff_moves_channels_first(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (50, 60, 3)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    convert(tmp_path / "rgb.tif", tmp_path / "rgb.ome.zarr", levels=1)
    props = iio.improps(tmp_path / "rgb.ome.zarr")
    assert props.axes == "CYX"
    np.testing.assert_array_equal(iio.imread(tmp_path / "rgb.ome.zarr"), np.moveaxis(rgb, 2, 0))


@pytest.mark.parametrize("chunks, shards", [((16, 32, 32), (16, 64, 64)),   # tiles of a row
                                            ((15, 33, 33), False)])         # odd: whole rows
def test_in_process_tiles_match_eager(tmp_path, chunks, shards):
    vol = _vol((37, 131, 97), seed=11)
    tifffile.imwrite(tmp_path / "s.tif", vol)
    convert(tmp_path / "s.tif", tmp_path / "t.ome.zarr", levels=3, chunks=chunks, shards=shards)
    iio.imwrite(tmp_path / "e.ome.zarr", vol, levels=3, chunks=chunks, shards=shards)
    _assert_levels_equal(tmp_path / "t.ome.zarr", tmp_path / "e.ome.zarr", 3)
    meta = iio.immeta(tmp_path / "t.ome.zarr")
    assert meta["chunks"] == chunks and meta["shards"] == (None if shards is False else shards)


def test_in_process_convert_never_holds_a_level0_row(tmp_path):
    """convert reads and writes level 0 one shard tile at a time: its peak (NumPy's
    allocations) stays well under two shard rows of level 0."""
    import tracemalloc
    vol = _vol((64, 512, 512), seed=3)  # 32 MiB; a shard row (16 planes) is 8 MiB
    tifffile.imwrite(tmp_path / "big.tif", vol)
    del vol
    row = 16 * 512 * 512 * 2
    tracemalloc.start()
    try:
        convert(tmp_path / "big.tif", tmp_path / "b.ome.zarr", levels=3,
                chunks=(16, 128, 128), shards=(16, 256, 256))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 1.2 rows measured (tiles, the coarser levels' row buffers, zarr's encoding, the
    # source's parsed IFDs); a whole level-0 row read at once adds a row on top
    assert peak < 1.5 * row, (peak, row)
    np.testing.assert_array_equal(iio.imread(tmp_path / "b.ome.zarr", level=0)[5],
                                  tifffile.imread(tmp_path / "big.tif", key=5))
