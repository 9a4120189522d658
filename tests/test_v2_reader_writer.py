"""v2 Reader and Writer objects (``get_reader``/``get_writer``), compared with imageio 2.38."""
from __future__ import annotations

import gc
import io
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import imgio.v2 as iio
import imgio.v3 as iio3
from imgio.v2.array import Array
from imgio.v2.legacy import Format, Reader, Writer
from imgio.core.plugin import ImageProperties, PluginV3

DATA = Path(__file__).parent / "data"
TIF = DATA / "multipage.tif"
NPZ = DATA / "stent.npz"
NPY = DATA / "chelsea.npy"


def imageio_reader(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import imageio.v2 as imageio
        return imageio.get_reader(path)


def close_ref(reader):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader.close()
        gc.collect()


@pytest.fixture
def series_tif(tmp_path):
    """A TIFF with three series of different shapes."""
    path = tmp_path / "series.tif"
    images = [np.full((5, 6), 1, np.uint8), np.full((3, 4, 7), 2, np.uint16),
              np.full((8, 9, 3), 3, np.uint8)]
    iio3.imwrite(path, images)
    return path, images


@pytest.fixture
def many_npz(tmp_path):
    """12 arrays: imageio orders them arr_0, arr_1, arr_10, arr_11, arr_2 ..."""
    path = tmp_path / "many.npz"
    images = [np.full((4, 5), i, np.int32) for i in range(12)]
    np.savez(path, *images)
    return path, images


# -- Reader: length and data ------------------------------------------------------------------
def test_reader_basics(series_tif):
    path, images = series_tif
    with iio.get_reader(path) as r:
        assert isinstance(r, Reader)
        assert r.get_length() == len(r) == 3  # series of different shapes are counted too
        for i, expected in enumerate(images):
            got = r.get_data(i)
            assert type(got) is Array
            np.testing.assert_array_equal(got, expected)
            assert got.meta["shape"] == expected.shape
        np.testing.assert_array_equal(r.get_data(len(images) - 1), images[-1])
        with pytest.raises(IndexError):
            r.get_data(-1)  # as imageio's readers: no negative index
    assert r.closed


@pytest.mark.parametrize("path,n", [(TIF, 1), (NPZ, 1), (NPY, 1)], ids=lambda v: str(v)[-12:])
def test_length_matches_imageio(path, n):
    with iio.get_reader(path) as r:
        assert r.get_length() == n
    if path.suffix != ".npy":
        theirs = imageio_reader(path)
        assert theirs.get_length() == n
        np.testing.assert_array_equal(iio.get_reader(path).get_data(0), theirs.get_data(0))
        close_ref(theirs)


def test_length_of_npz_matches_imageio(many_npz):
    path, images = many_npz
    theirs = imageio_reader(path)
    with iio.get_reader(path) as r:
        assert r.get_length() == theirs.get_length() == 12
        # imgio orders members by number; imageio sorts them as strings ([bug])
        assert [int(r.get_data(i)[0, 0]) for i in range(12)] == list(range(12))
        assert int(theirs.get_data(2)[0, 0]) == 10
    close_ref(theirs)


def test_get_data_out_of_range_and_bad_index(series_tif):
    path, _ = series_tif
    with iio.get_reader(path) as r:
        for index in (3, 100, -4):
            with pytest.raises(IndexError, match="out of range") as info:
                r.get_data(index)
            assert str(path) in str(info.value)
        for index in (1.5, "1", None, True):
            with pytest.raises(TypeError):
                r.get_data(index)
        assert r.get_data(np.int64(1)).shape == (3, 4, 7)


def test_get_data_kwargs(tmp_path):
    with iio.get_reader(TIF) as r:
        page = r.get_data(0, page=1)
        assert page.shape == (15, 10)
        np.testing.assert_array_equal(page, iio3.imread(TIF, page=1))
    with iio.get_reader(TIF, page=0) as r:  # get_reader keywords go to every read
        assert r.get_data(0).shape == (15, 10)
        assert [im.shape for im in r] == [(15, 10)]


def test_get_next_data_starts_at_zero(series_tif):
    path, images = series_tif
    with iio.get_reader(path) as r:
        for expected in images:
            np.testing.assert_array_equal(r.get_next_data(), expected)
        with pytest.raises(IndexError):
            r.get_next_data()
    theirs = imageio_reader(path)  # imageio skips image 0 ([bug])
    np.testing.assert_array_equal(theirs.get_next_data(), images[1])
    close_ref(theirs)


def test_get_next_data_follows_get_data_and_set_image_index(series_tif):
    path, images = series_tif
    with iio.get_reader(path) as r:
        r.get_data(1)
        np.testing.assert_array_equal(r.get_next_data(), images[2])
        r.set_image_index(0)
        np.testing.assert_array_equal(r.get_next_data(), images[0])
        r.set_image_index(2)
        np.testing.assert_array_equal(r.get_next_data(), images[2])
        r.set_image_index(-5)  # clamped
        np.testing.assert_array_equal(r.get_next_data(), images[0])
        r.get_data(len(images) - 1)
        with pytest.raises(IndexError):
            r.get_next_data()


def test_iter_data(series_tif):
    path, images = series_tif
    with iio.get_reader(path) as r:
        got = list(r.iter_data())
        assert len(got) == 3
        for g, e in zip(got, images):
            assert type(g) is Array and g.meta["shape"] == e.shape
            np.testing.assert_array_equal(g, e)
        assert [g.shape for g in r] == [e.shape for e in images]  # __iter__, again


def test_iter_matches_imageio_on_npz():
    theirs = imageio_reader(NPZ)
    with iio.get_reader(NPZ) as r:
        for ours, ref in zip(r, theirs):
            np.testing.assert_array_equal(ours, ref)
    close_ref(theirs)


# -- Reader: metadata ---------------------------------------------------------------------------
def test_get_meta_data_on_tiff():
    with iio.get_reader(TIF) as r:
        meta = r.get_meta_data()  # imageio: TypeError ([bug])
        assert meta["byteorder"] in "<>" and meta["n_series"] == 1
        assert meta == iio3.immeta(TIF)
        assert r.get_meta_data(0)["ImageWidth"] == 10
        assert r.get_meta_data(r.get_length() - 1) == r.get_meta_data(0)
        with pytest.raises(IndexError):
            r.get_meta_data(5)
    theirs = imageio_reader(TIF)
    with pytest.raises(TypeError):
        theirs.get_meta_data()
    close_ref(theirs)


@pytest.mark.parametrize("path,key", [(NPZ, "keys"), (NPY, "shape")])
def test_get_meta_data_other_formats(path, key):
    with iio.get_reader(path) as r:
        assert key in r.get_meta_data()
        assert isinstance(r.get_meta_data(0), dict)


# -- Reader: attributes, closing -------------------------------------------------------------------
def test_reader_format_and_request():
    with iio.get_reader(TIF, mode="I") as r:
        fmt = r.format  # imageio: TypeError for v3 plugins ([bug])
        assert isinstance(fmt, Format)
        assert fmt.name == "TIFF" and ".tif" in fmt.extensions and fmt.modes == "iIvV"
        assert "TIFF" in fmt.description
        assert r.request.filename == str(TIF)
        assert r.request.extension == ".tif"
        assert r.request.mode == "rI"
        assert r.plugin.name == "tifffile"
        assert "TIFF" in repr(r) and "open" in repr(r)
    assert "closed" in repr(r)
    with iio.get_reader(NPZ) as r:
        assert r.format.name == "NPZ" and r.request.mode == "r?"


@pytest.mark.parametrize("mode", list("iIvV?"))
def test_reader_mode_letters(mode):
    with iio.get_reader(NPZ, mode=mode) as r:
        assert r.request.mode == "r" + mode
        assert r.get_data(0).shape == (256, 128, 128)


@pytest.mark.parametrize("mode", ["x", "", "ii", "r", None, 1])
def test_invalid_mode_letter(mode):
    with pytest.raises(ValueError, match="Invalid mode"):
        iio.get_reader(TIF, mode=mode)
    with pytest.raises(ValueError, match="Invalid mode"):
        iio.get_writer("<bytes>", format="tif", mode=mode)


@pytest.mark.parametrize("call", [
    lambda r: r.get_data(0), lambda r: r.get_next_data(), lambda r: r.get_length(),
    lambda r: r.get_meta_data(), lambda r: list(r.iter_data()), lambda r: r.set_image_index(0),
    lambda r: r.__enter__(), lambda r: len(r),
])
def test_use_after_close(call):
    r = iio.get_reader(TIF)
    r.close()
    r.close()  # twice is harmless
    assert r.closed and r.plugin.closed
    with pytest.raises(RuntimeError, match="I/O operation on closed Reader") as info:
        call(r)
    assert str(TIF) in str(info.value)


def test_reader_context_manager_closes_on_error():
    with pytest.raises(KeyError):
        with iio.get_reader(TIF) as r:
            raise KeyError
    assert r.closed


def test_reader_from_bytes_and_file_object():
    with iio.get_reader(TIF.read_bytes()) as r:
        assert r.get_data(0).shape == (2, 15, 10)
        assert r.request.filename == "<bytes>"
    with open(TIF, "rb") as fh:
        with iio.get_reader(fh, format="tif") as r:
            assert r.get_length() == 1
        assert not fh.closed


def test_reader_format_argument():
    with iio.get_reader(NPZ, format="NPZ") as r:
        assert r.format.name == "NPZ"
    with pytest.raises(ValueError, match="'nope'"):
        iio.get_reader(NPZ, format="nope")


def test_metadata_only_file_has_length_zero(tmp_path):
    path = tmp_path / "empty.npz"
    np.savez(path)
    with iio.get_reader(path) as r:
        assert r.get_length() == len(r) == 0
        assert list(r) == []
        with pytest.raises(IndexError):
            r.get_data(0)
        assert r.get_meta_data() == {"keys": [], "n_images": 0}


class _Stream(PluginV3):
    """A stream of unknown length: 5 frames, then IndexError."""

    name = "test-stream"
    description = "a stream for the tests"
    extensions = (".stream",)
    modes = "I"
    frames = 5

    def __init__(self, request, **kwargs):
        super().__init__(request)

    def read(self, *, index=None, **kwargs):
        i = 0 if index is None else index
        if not 0 <= i < self.frames:
            raise IndexError(f"no frame {i}")
        return np.full((2, 3), i, np.uint8)

    def iter(self, **kwargs):
        i = 0
        while True:
            yield self.read(index=i)  # ends with IndexError, as a camera would
            i += 1

    def properties(self, *, index=None, **kwargs):
        return ImageProperties((2, 3), np.uint8, n_images=None if index is ... else None)

    def metadata(self, *, index=None, exclude_applied=True, **kwargs):
        return {"frame": index}


def test_unknown_length_stream(tmp_path):
    path = tmp_path / "x.stream"
    path.write_bytes(b"anything")
    with iio.get_reader(path, format=_Stream, mode="I") as r:
        assert r.get_length() == float("inf")
        with pytest.raises(TypeError, match="unknown length"):
            len(r)  # imageio: sys.maxsize, so list(reader) fails with MemoryError
        assert r.get_data(3)[0, 0] == 3
        assert r.get_next_data()[0, 0] == 4
        with pytest.raises(IndexError):
            r.get_data(7)
        frames = list(r)
        assert [int(f[0, 0]) for f in frames] == [0, 1, 2, 3, 4]
        assert frames[2].meta == {"frame": 2}
        assert r.format.name == "test-stream" and r.format.modes == "I"
    with pytest.raises(ValueError, match="cannot read a single volume"):
        iio.get_reader(path, format=_Stream, mode="v")


# -- Writer ---------------------------------------------------------------------------------------
def _frames(n=4, shape=(6, 7)):
    return [np.full(shape, i, np.uint16) for i in range(n)]


@pytest.mark.parametrize("ext", [".tif", ".npz"])
def test_writer_append_data(tmp_path, ext):
    path = tmp_path / f"w{ext}"
    frames = _frames()
    with iio.get_writer(path) as w:
        assert isinstance(w, Writer)
        for f in frames:
            w.append_data(f)
        assert not path.exists()  # committed on close
    assert w.closed and path.exists()
    got = iio.mimread(path)  # one growing series or one ndimage per frame: 4 frames either way
    assert len(got) == 4
    for g, e in zip(got, frames):
        np.testing.assert_array_equal(g, e)


def test_writer_close_twice_and_use_after_close(tmp_path):
    w = iio.get_writer(tmp_path / "w.npz")
    w.append_data(np.zeros((3, 4)))
    assert w.close() is None
    assert w.close() is None
    for call in (lambda: w.append_data(np.zeros((3, 4))), lambda: w.set_meta_data({}),
                 lambda: w.__enter__()):
        with pytest.raises(RuntimeError, match="I/O operation on closed Writer") as info:
            call()
        assert "w.npz" in str(info.value)


@pytest.mark.parametrize("fmt", ["npz", "tif", "npy"])
def test_writer_to_bytes(fmt):
    w = iio.get_writer("<bytes>", format=fmt)
    frames = _frames(3)
    for f in frames:
        w.append_data(f)
    data = w.close()
    assert isinstance(data, bytes) and w.close() == data
    got = iio.mimread(data)
    assert len(got) == 3
    np.testing.assert_array_equal(got[2], frames[2])


def test_writer_to_bytes_single_frame_and_meta():
    with iio.get_writer("<bytes>", format="npy") as w:
        w.append_data(np.ones((3, 4)))
    assert iio.imread(w.close()).shape == (3, 4)
    w = iio.get_writer("<bytes>", format="tif")
    w.append_data(np.zeros((4, 4), np.uint8), meta={"description": "a"})
    w.append_data(np.zeros((4, 4), np.uint8), meta={"description": "b"})
    with pytest.warns(UserWarning, match="per-frame metadata"):
        data = w.close()
    assert len(iio.mimread(data)) == 2
    w = iio.get_writer("<bytes>", format="tif")
    w.append_data(np.zeros((4, 4), np.uint8))
    with pytest.raises(ZeroDivisionError):
        with w:
            1 / 0
    assert w.close() is None


def test_writer_exception_discards_partial_output(tmp_path):
    path = tmp_path / "keep.tif"
    iio.imwrite(path, np.ones((4, 4), np.uint8))
    before = path.read_bytes()
    with pytest.raises(ZeroDivisionError):
        with iio.get_writer(path) as w:
            w.append_data(np.zeros((4, 4), np.uint8))
            1 / 0
    assert w.closed
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.tif"]
    with pytest.raises(ZeroDivisionError):
        with iio.get_writer(tmp_path / "new.tif") as w:
            w.append_data(np.zeros((4, 4), np.uint8))
            1 / 0
    assert os.listdir(tmp_path) == ["keep.tif"]


def test_writer_attributes(tmp_path):
    with iio.get_writer(tmp_path / "x.tif", mode="I") as w:
        assert w.format.name == "TIFF"  # imageio: TypeError ([bug])
        assert w.request.mode == "wI"
        assert w.request.filename == str(tmp_path / "x.tif")
        assert "Writer" in repr(w)
        w.append_data(np.zeros((3, 3), np.uint8))


@pytest.mark.parametrize("mode", list("iIvV?"))
def test_writer_mode_letters(tmp_path, mode):
    with iio.get_writer(tmp_path / "x.npz", mode=mode) as w:
        assert w.request.mode == "w" + mode
        w.append_data(np.zeros((3, 3)))


def test_writer_kwargs_go_to_every_append(tmp_path):
    path = tmp_path / "z.tif"
    with iio.get_writer(path, compression="zlib") as w:
        w.append_data(np.zeros((8, 8), np.uint8))
        w.append_data(np.ones((8, 8), np.uint8))
    with iio.get_reader(path) as r:
        assert all(im.meta["compression"] == 8 for im in r)


def test_writer_meta_goes_to_tiff(tmp_path):
    path = tmp_path / "m.tif"
    with iio.get_writer(path) as w:
        w.set_meta_data({"software": "imgio-tests"})
        w.append_data(np.zeros((4, 4), np.uint8), meta={"description": "first"})
        w.append_data(Array(np.ones((4, 4), np.uint8), {"description": "from .meta"}))
    with iio.get_reader(path) as r:
        metas = [im.meta for im in r]
    if len(metas) == 2:  # one series per append
        assert metas[0]["description"] == "first"
        assert metas[1]["description"] == "from .meta"
    assert metas[0]["Software"] == "imgio-tests"


def test_writer_copies_a_read_file(tmp_path):
    """Arrays read from a TIFF carry tags; writing them again must not break the file."""
    path = tmp_path / "copy.tif"
    with iio.get_reader(TIF) as r, iio.get_writer(path) as w:
        for im in r:
            w.append_data(im)
    np.testing.assert_array_equal(iio.imread(path), iio.imread(TIF))


def test_writer_meta_the_format_cannot_store(tmp_path):
    with iio.get_writer(tmp_path / "x.npz") as w:
        with pytest.warns(UserWarning, match="cannot store the metadata key"):
            w.append_data(np.zeros((3, 3)), meta={"fps": 10})
        w.append_data(Array(np.zeros((3, 3)), {"fps": 10}))  # an image's own .meta: silent
        with pytest.warns(UserWarning, match="fps"):
            w.set_meta_data({"fps": 10})
        w.append_data(np.zeros((3, 3)))  # the warning is given once, by set_meta_data
    assert len(iio.mimread(tmp_path / "x.npz")) == 3


def test_writer_meta_must_be_dict(tmp_path):
    with iio.get_writer(tmp_path / "x.npz") as w:
        with pytest.raises(ValueError, match="dict"):
            w.append_data(np.zeros((3, 3)), meta="nope")
        with pytest.raises(ValueError, match="dict"):
            w.set_meta_data(["nope"])
        w.append_data(np.zeros((3, 3)))


def test_writer_to_file_object():
    buf = io.BytesIO()
    with iio.get_writer(buf, format="npz") as w:
        w.append_data(np.arange(6).reshape(2, 3))
    assert not buf.closed
    np.testing.assert_array_equal(iio.imread(buf.getvalue()), np.arange(6).reshape(2, 3))


def test_writer_then_imageio_reads_it(tmp_path):
    path = tmp_path / "x.tif"
    frames = _frames(3)
    with iio.get_writer(path) as w:
        for f in frames:
            w.append_data(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import imageio.v2 as imageio
        got = imageio.mimread(path)
        gc.collect()
    assert sum(g.shape[0] if g.ndim == 3 else 1 for g in got) == 3


def test_hdf5_writer_stores_meta_as_attributes(tmp_path):
    path = tmp_path / "series.h5"
    with iio.get_writer(path) as w:
        with pytest.warns(UserWarning, match="objective"):
            w.set_meta_data({"exposure_ms": 12.5, "sample": "HeLa", "objective": object()})
        for i in range(3):
            w.append_data(np.full((4, 5), i, np.uint16))
    import imgio.v3 as iio3
    meta = iio3.immeta(path)
    assert meta["exposure_ms"] == 12.5 and meta["sample"] == "HeLa"
    assert iio.volread(path).shape == (3, 4, 5)
