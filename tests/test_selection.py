"""Every selection keyword is honoured the same way by every API, or refused (issue 22).

For each plugin with a selection concept (TIFF ``series``/``page``/``level``,
HDF5 ``dataset``/``level``/``setup``, frames by ``index``), each API is given
the same keywords and must return what ``iio.imread`` returns for them (shape
and pixels).  Keywords a plugin has no concept for raise ``TypeError`` in
Python's wording; selections past the end raise an ``IndexError`` naming the
file, what was asked and what exists.
"""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import tifffile

import imgio
import imgio.v2 as v2
import imgio.v3 as iio
from imgio import cli
from imgio.errors import SelectionError


def _vol(shape, seed, dtype=np.uint16):
    return np.random.default_rng(seed).integers(0, 1000, shape).astype(dtype)


# -- the files --------------------------------------------------------------------------------
def _tiff_pyramid(path):
    """Two OME series, each a 3-level pyramid in SubIFDs (as bfconvert writes them)."""
    with tifffile.TiffWriter(path, ome=True) as tif:
        for seed in (1, 2):
            base = _vol((2, 64, 80), seed)
            tif.write(base, subifds=2, metadata={"axes": "ZYX", "PhysicalSizeX": 0.5,
                                                 "PhysicalSizeY": 0.5})
            tif.write(base[:, ::2, ::2], subfiletype=1)
            tif.write(base[:, ::4, ::4], subfiletype=1)


def _hdf5_two(path):
    with h5py.File(path, "w") as f:
        f["a"] = _vol((4, 16, 20), 3)
        f["grp/b"] = _vol((3, 8, 8), 4, np.uint8)


def _hdf5_bdv(path):
    with h5py.File(path, "w") as f:
        f["s00/resolutions"] = np.array([[1, 1, 1], [2, 2, 1]], np.float64)
        f["s01/resolutions"] = np.array([[1, 1, 1], [2, 2, 1]], np.float64)
        for s in (0, 1):
            for t in (0, 1):
                vol = _vol((4, 16, 24), 10 * s + t)
                f[f"t{t:05d}/s{s:02d}/0/cells"] = vol.view("<i2")
                f[f"t{t:05d}/s{s:02d}/1/cells"] = vol[:, ::2, ::2].view("<i2")


def _gif(path):
    frames = [np.full((10, 12), 40 * k, np.uint8) for k in range(3)]
    for k, f in enumerate(frames):
        f[k, :] = 255
    iio.imwrite(path, np.stack(frames), extension=".gif", loop=0)


def _npz(path):
    np.savez(path, _vol((5, 6), 5), _vol((5, 6), 6))


def _folder(path):
    path.mkdir()
    for k in range(3):
        tifffile.imwrite(path / f"z{k:02d}.tif", _vol((8, 9), 20 + k))


FILES = {"tiff": ("pyr.ome.tif", _tiff_pyramid), "hdf5": ("two.h5", _hdf5_two),
         "bdv": ("bdv.h5", _hdf5_bdv), "gif": ("anim.gif", _gif), "npz": ("arrays.npz", _npz),
         "folder": ("slices", _folder)}

#: (file, selection keywords) pairs every API must honour alike
CASES = [
    ("tiff", {}), ("tiff", {"index": 1}), ("tiff", {"series": 1}), ("tiff", {"level": 1}),
    ("tiff", {"level": 2, "index": 1}), ("tiff", {"series": 1, "level": 1}),
    ("tiff", {"page": 1}), ("tiff", {"index": 1, "page": 0}), ("tiff", {"level": -1}),
    ("hdf5", {"dataset": "/a"}), ("hdf5", {"dataset": "/grp/b"}),
    ("hdf5", {"dataset": "/a", "index": 2}),
    ("bdv", {}), ("bdv", {"level": 1}), ("bdv", {"setup": 1}),
    ("bdv", {"setup": 1, "level": 1, "index": 1}),
    ("gif", {}), ("gif", {"index": 2}), ("gif", {"mode": "RGB"}),
    ("npz", {"index": 1}), ("folder", {}), ("folder", {"index": 2}),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("selection")
    out = {}
    for key, (name, build) in FILES.items():
        build(root / name)
        out[key] = root / name
    return out


def _ids(case):
    return f"{case[0]}-" + ",".join(f"{k}={v}" for k, v in case[1].items())


# -- every API agrees with imread ----------------------------------------------------------------
APIS = ["improps", "immeta", "imopen.read", "imopen.properties", "imiter", "lazy", "to_dask",
        "v2.get_reader", "v2.volread", "cli.info"]


def _result(api, path, sel):
    """(shape, pixels or None) that ``api`` gives for the selection ``sel``."""
    if api == "improps":
        return iio.improps(path, **sel).shape, None
    if api == "immeta":
        meta = iio.immeta(path, **sel)  # must accept the keywords
        assert isinstance(meta, dict)
        return None, None
    if api == "imopen.read":
        with iio.imopen(path, "r") as f:
            a = f.read(**sel)
        return a.shape, a
    if api == "imopen.properties":
        with iio.imopen(path, "r") as f:
            return f.properties(**sel).shape, None
    if api == "lazy":
        a = np.asarray(imgio.lazy(path, **sel)[...])
        return a.shape, a
    if api == "to_dask":
        a = imgio.to_dask(path, **sel).compute()
        return a.shape, a
    if api == "cli.info":
        if set(sel) - {"dataset", "series", "level"}:
            return None, None  # the CLI has no --index/--page/--setup/--mode
        return tuple(cli.info(path, **sel)["shape"]), None
    raise AssertionError(api)


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_api_agrees_with_imread(files, case, api):
    key, sel = case
    path = files[key]
    expected = iio.imread(path, **sel)
    if api == "imiter":
        rest = {k: v for k, v in sel.items() if k != "index"}
        items = list(iio.imiter(path, **rest))
        if "series" in sel:  # imiter(series=k) yields that series alone
            assert len(items) == 1
            np.testing.assert_array_equal(items[0], iio.imread(path, **rest))
            return
        for i, item in enumerate(items):
            np.testing.assert_array_equal(item, iio.imread(path, index=i, **rest))
        return
    if api == "immeta" and "mode" in sel:
        return  # a conversion, not a selection: metadata does not depend on it
    if api == "v2.get_reader":
        # v2's image index is the series; v2 spells Pillow's mode `pilmode`
        rest = {k: v for k, v in sel.items() if k not in ("index", "series")}
        i = sel.get("index", sel.get("series", 0))
        v2_rest = {("pilmode" if k == "mode" else k): v for k, v in rest.items()}
        with v2.get_reader(path, **v2_rest) as reader:
            if "pilmode" in v2_rest:  # deprecated, with imageio's own warning
                with pytest.warns(DeprecationWarning, match="pilmode"):
                    got = reader.get_data(i)
            else:
                got = reader.get_data(i)
            np.testing.assert_array_equal(got, iio.imread(path, index=i, **rest))
            assert reader.get_length() == len(list(iio.imiter(path, **rest)))
        return
    if api == "v2.volread":
        if "index" in sel or key in ("gif", "npz"):
            return  # volread reads image 0 of a volume format and takes no index
        got = v2.volread(path, **sel)
        np.testing.assert_array_equal(got, expected)
        return
    shape, pixels = _result(api, path, sel)
    if shape is not None:
        assert shape == expected.shape
    if pixels is not None:
        np.testing.assert_array_equal(pixels, expected)


def test_levels_really_differ(files):
    """The cases above would pass if level= were ignored everywhere: it is not."""
    path = files["tiff"]
    assert iio.imread(path).shape == (2, 64, 80)
    assert iio.imread(path, level=1).shape == (2, 32, 40)
    assert iio.improps(path, level=2).shape == (2, 16, 20)
    assert iio.improps(path, level=1).spacing == (None, 1.0, 1.0)  # twice the pixel size
    assert iio.immeta(path, index=0, level=1)["shape"] == (2, 32, 40)
    np.testing.assert_array_equal(iio.imread(path, series=1, level=2),
                                  _vol((2, 64, 80), 2)[:, ::4, ::4])
    assert iio.improps(files["bdv"], level=1).shape == (2, 4, 8, 12)
    np.testing.assert_array_equal(iio.imread(files["bdv"], setup=1, index=0),
                                  _vol((4, 16, 24), 10))


def test_cli_options_select(files, capsys):
    path = files["tiff"]
    assert cli.main(["info", "--json", "--level", "1", "--series", "1", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)[0]
    assert tuple(report["shape"]) == iio.improps(path, series=1, level=1).shape
    assert cli.main(["info", "--json", "--dataset", "/grp/b", str(files["hdf5"])]) == 0
    report = json.loads(capsys.readouterr().out)[0]
    assert tuple(report["shape"]) == (3, 8, 8) and report["dtype"] == "uint8"


# -- keywords a plugin does not have are refused ---------------------------------------------------
REFUSED = [("gif", "level"), ("gif", "dataset"), ("npz", "series"), ("npz", "level"),
           ("folder", "level"), ("folder", "dataset"), ("tiff", "dataset"), ("tiff", "setup"),
           ("bdv", "series"), ("bdv", "page"), ("tiff", "bogus"), ("bdv", "bogus"),
           ("gif", "bogus")]


def _calls(path, kw):
    return {
        "imread": lambda: iio.imread(path, **kw),
        "imiter": lambda: list(iio.imiter(path, **kw)),
        "improps": lambda: iio.improps(path, **kw),
        "immeta": lambda: iio.immeta(path, **kw),
        "imopen.read": lambda: iio.imopen(path, "r").read(**kw),
        "imopen.properties": lambda: iio.imopen(path, "r").properties(**kw),
        "v2.get_reader": lambda: v2.get_reader(path, **kw).get_data(0),
        "lazy": lambda: imgio.lazy(path, **kw),
        "to_dask": lambda: imgio.to_dask(path, **kw),
    }


@pytest.mark.parametrize("key, name", REFUSED)
def test_unknown_keyword_is_refused(files, key, name):
    value = "/a" if name == "dataset" else 1
    for api, call in _calls(files[key], {name: value}).items():
        with pytest.raises(TypeError, match=f"got an unexpected keyword argument '{name}'"):
            call()


# -- out of range ------------------------------------------------------------------------------
OUT_OF_RANGE = [
    ("tiff", {"level": 3}, "level 3 requested; the file has levels 0-2"),
    ("tiff", {"series": 2}, "series 2 requested; the file has series 0-1"),
    ("tiff", {"page": 9}, "page 9 requested; the file has pages 0-3"),
    ("tiff", {"index": 1, "page": 2}, "page 2 requested; the file has pages 0-1"),
    ("bdv", {"level": 2}, "level 2 requested; the file has levels 0-1"),
    ("bdv", {"setup": 5}, "setup 5 requested"),
    ("hdf5", {"dataset": "/a", "level": 1}, "level 1 requested; the file has only level 0"),
    ("hdf5", {"dataset": "/a", "index": 4}, "frame 4 requested; the file has frames 0-3"),
    ("hdf5", {"dataset": "/nope"}, r"dataset '/nope' requested; the file has datasets: "
                                   r"/a \(4, 16, 20\) uint16; /grp/b \(3, 8, 8\) uint8\."),
    ("gif", {"index": 3}, "frame 3 requested; the file has frames 0-2"),
    ("npz", {"index": 2}, "array 2 requested; the file has arrays 0-1"),
    ("folder", {"index": 3}, "slice 3 requested; the file has slices 0-2"),
]


@pytest.mark.parametrize("key, sel, message", OUT_OF_RANGE)
def test_out_of_range_names_file_request_and_range(files, key, sel, message):
    path = files[key]
    calls = _calls(path, sel)
    if "index" not in sel:
        del calls["v2.get_reader"]
    for api in ("imread", "improps", "imopen.read", "imopen.properties", "lazy", "to_dask"):
        with pytest.raises(IndexError, match=message) as info:
            calls[api]()
        assert isinstance(info.value, SelectionError), api
        assert path.name in str(info.value)
        assert "CorruptFileError" not in type(info.value).__name__


def test_missing_dataset_in_every_api_and_the_cli(files, capsys):
    # a name that is not in the file is a selection out of range too, wherever it is given
    path = files["hdf5"]
    message = r"two\.h5: dataset '/nope' requested; the file has datasets: /a .*; /grp/b "
    calls = _calls(path, {"dataset": "/nope"})
    calls.update({
        "imopen(dataset=)": lambda: iio.imopen(path, "r", dataset="/nope").read(),
        "v2.imread": lambda: v2.imread(path, dataset="/nope"),
        "v2.volread": lambda: v2.volread(path, dataset="/nope"),
        "v2.mimread": lambda: v2.mimread(path, dataset="/nope"),
        "cli.info": lambda: cli.info(path, dataset="/nope")})
    for api, call in calls.items():
        with pytest.raises(SelectionError, match=message):
            call()
    assert cli.main(["info", "--dataset", "/nope", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SelectionError" in err and "'/nope' requested" in err
    assert "/grp/b (3, 8, 8) uint8" in err
