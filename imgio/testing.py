"""The plugin conformance suite.

Every plugin's tests subclass :class:`PluginConformance` and fill in a few
class attributes; the suite then checks the contract of
:class:`imgio.core.plugin.PluginV3` that users rely on: round trips through
every kind of resource, ``improps`` agreeing with ``imread``, ``index``
semantics, clear errors for empty, truncated and garbage files, and atomic
writes.  Third-party plugins can use it the same way.

:class:`ReadOnlyConformance` is the same contract for plugins that only read
(the folder plugin, a format without a writer): the subclass makes the
resource itself.

Requires pytest (``pip install imgio[test]``).
"""
from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import pytest

import imgio.v3 as iio
from imgio.errors import ImgioError, NoPluginError

__all__ = ["PluginConformance", "ReadOnlyConformance", "roundtrip"]


class PluginConformance:
    """Base class of every plugin's test class.

    Subclasses set:

    ``plugin``
        registry name of the plugin under test;
    ``extension``
        extension to write with (``".tif"``);
    ``lossless``
        whether pixels survive a round trip exactly;
    ``batch``
        whether a list of images writes as several ndimages that read back with
        ``index=i`` and ``imiter``;

    and implement :meth:`make_image` returning an array the format can hold.
    """

    plugin: str = ""
    extension: str = ""
    lossless: bool = True
    batch: bool = True
    #: keyword that write needs to make a file with several ndimages
    batch_write_kwargs: dict = {}

    def make_image(self, seed: int = 0) -> np.ndarray:  # pragma: no cover - abstract
        """An image the format can hold (implement in the subclass).

        Parameters
        ----------
        seed : int
            Seed for the pixel values (different seeds give different images).
        """
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------
    def check_equal(self, got: np.ndarray, expected: np.ndarray) -> None:
        """Assert that ``got`` is ``expected`` (exactly, or closely for lossy formats).

        Parameters
        ----------
        got : numpy.ndarray
            What imgio read.
        expected : numpy.ndarray
            What was written (for lossy formats, a mean difference below 8 passes).
        """
        assert got.shape == expected.shape
        if self.lossless:
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)
        else:
            diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
            assert diff.mean() < 8, f"mean abs difference {diff.mean():.2f} too large"

    def write_file(self, path, image=None) -> np.ndarray:
        """Write ``image`` to ``path`` with :func:`imgio.v3.imwrite` and return it.

        Parameters
        ----------
        path : pathlib.Path
            Where to write.
        image : numpy.ndarray, optional
            What to write; default :meth:`make_image`.
        """
        image = self.make_image() if image is None else image
        iio.imwrite(path, image)
        return image

    # -- round trips through every resource kind --------------------------------------
    def test_roundtrip_path(self, tmp_path):
        path = tmp_path / f"image{self.extension}"
        image = self.write_file(path)
        self.check_equal(iio.imread(path), image)
        self.check_equal(iio.imread(str(path)), image)

    def test_roundtrip_file_uri_and_home(self, tmp_path, monkeypatch):
        path = tmp_path / f"image{self.extension}"
        image = self.write_file(path)
        self.check_equal(iio.imread("file://" + str(path)), image)
        monkeypatch.setenv("HOME", str(tmp_path))
        self.check_equal(iio.imread(f"~/image{self.extension}"), image)

    def test_roundtrip_bytes(self):
        image = self.make_image()
        data = iio.imwrite("<bytes>", image, extension=self.extension)
        assert isinstance(data, bytes) and data
        self.check_equal(iio.imread(data), image)
        self.check_equal(iio.imread(memoryview(data)), image)

    def test_roundtrip_file_objects(self):
        image = self.make_image()
        buf = io.BytesIO()
        iio.imwrite(buf, image, extension=self.extension)
        assert not buf.closed, "imgio must not close the caller's file object"
        buf.seek(0)
        self.check_equal(iio.imread(buf), image)
        assert not buf.closed

    def test_explicit_plugin(self, tmp_path):
        path = tmp_path / f"image{self.extension}"
        image = self.write_file(path)
        self.check_equal(iio.imread(path, plugin=self.plugin), image)

    # -- reading by content, not by name ---------------------------------------------
    def test_wrong_extension_reads_by_content(self, tmp_path):
        path = tmp_path / f"image{self.extension}"
        image = self.write_file(path)
        wrong = tmp_path / "image.wrongext"
        wrong.write_bytes(path.read_bytes())
        self.check_equal(iio.imread(wrong), image)
        other = ".png" if self.extension != ".png" else ".tif"
        misnamed = tmp_path / f"image{other}"
        misnamed.write_bytes(path.read_bytes())
        self.check_equal(iio.imread(misnamed), image)

    # -- properties agree with reads ----------------------------------------------------
    @pytest.mark.parametrize("index", [None, 0, -1])
    def test_improps_matches_imread(self, tmp_path, index):
        path = tmp_path / f"image{self.extension}"
        self.write_file(path)
        props = iio.improps(path, index=index)
        image = iio.imread(path, index=index)
        assert props.shape == image.shape
        assert props.dtype == image.dtype
        if props.axes is not None:
            assert len(props.axes) == image.ndim
        if props.spacing is not None:
            assert len(props.spacing) == image.ndim

    def test_batch_index_semantics(self, tmp_path):
        if not self.batch:
            # one ndimage per file: ``...`` adds a batch axis of one
            path = tmp_path / f"single{self.extension}"
            image = self.write_file(path)
            self.check_equal(iio.imread(path, index=...), image[None])
            assert iio.improps(path, index=...).shape == (1,) + image.shape
            assert len(list(iio.imiter(path))) == 1
            return
        path = tmp_path / f"batch{self.extension}"
        images = [self.make_image(seed) for seed in range(3)]
        iio.imwrite(path, images, **self.batch_write_kwargs)
        for i, expected in enumerate(images):
            self.check_equal(iio.imread(path, index=i), expected)
        self.check_equal(iio.imread(path, index=-1), images[-1])
        stacked = iio.imread(path, index=...)
        self.check_equal(stacked, np.stack(images))
        props = iio.improps(path, index=...)
        assert props.shape == stacked.shape and props.is_batch and props.n_images == 3
        got = list(iio.imiter(path))
        assert len(got) == 3
        for g, e in zip(got, images):
            self.check_equal(g, e)

    def test_index_out_of_range(self, tmp_path):
        path = tmp_path / f"image{self.extension}"
        self.write_file(path)
        with pytest.raises(IndexError, match="out of range"):
            iio.imread(path, index=1000)
        with pytest.raises(IndexError):
            iio.improps(path, index=1000)

    def test_immeta_is_dict(self, tmp_path):
        path = tmp_path / f"image{self.extension}"
        self.write_file(path)
        assert isinstance(iio.immeta(path), dict)
        assert isinstance(iio.immeta(path, index=0), dict)

    def test_imopen_contract(self, tmp_path):
        path = tmp_path / f"image{self.extension}"
        image = self.write_file(path)
        with iio.imopen(path, "r") as f:
            assert f.name == self.plugin
            got = f.read()
            self.check_equal(got, image)
            assert isinstance(f.metadata(), dict)
            # the contract: properties describe what read returns (for formats
            # whose natural ndimage is a stack, that has a batch axis)
            assert f.properties().shape == got.shape
            assert len(list(f.iter())) >= 1
        assert f.closed
        f.close()  # twice is harmless

    # -- bad input --------------------------------------------------------------------
    def test_empty_file(self, tmp_path):
        path = tmp_path / f"empty{self.extension}"
        path.write_bytes(b"")
        with pytest.raises(NoPluginError, match="empty") as info:
            iio.imread(path)
        assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)
        assert str(path) in str(info.value)

    def test_truncated_file(self, tmp_path):
        path = tmp_path / f"image{self.extension}"
        self.write_file(path)
        data = path.read_bytes()
        cut = tmp_path / f"cut{self.extension}"
        cut.write_bytes(data[: max(16, len(data) // 2)])
        with pytest.raises(OSError) as info:
            iio.imread(cut)
        assert isinstance(info.value, ImgioError), f"not an imgio error: {info.value!r}"
        assert str(cut) in str(info.value)

    def test_garbage_with_extension(self, tmp_path):
        path = tmp_path / f"garbage{self.extension}"
        path.write_bytes(bytes(range(7, 250)) * 4)
        with pytest.raises(NoPluginError) as info:
            iio.imread(path)
        assert str(path) in str(info.value)

    def test_missing_file(self, tmp_path):
        path = tmp_path / f"missing{self.extension}"
        with pytest.raises(FileNotFoundError) as info:
            iio.imread(path)
        assert info.value.filename == str(path)

    # -- writes are atomic ----------------------------------------------------------
    def test_failed_write_keeps_old_file(self, tmp_path):
        path = tmp_path / f"image{self.extension}"
        image = self.write_file(path)
        before = path.read_bytes()

        class Boom(Exception):
            pass

        with pytest.raises(Boom):
            with iio.imopen(path, "w") as f:
                f.write(self.make_image(seed=5))
                raise Boom
        assert path.read_bytes() == before
        assert sorted(os.listdir(tmp_path)) == [path.name], "partial file left behind"
        self.check_equal(iio.imread(path), image)

    def test_write_into_missing_directory(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            iio.imwrite(tmp_path / "nope" / f"x{self.extension}", self.make_image())


class ReadOnlyConformance:
    """Base class of the tests of a plugin that reads but does not write.

    Subclasses set ``plugin`` (the registry name) and implement
    :meth:`make_resource`; the suite checks reads through paths and strings,
    ``plugin=``, ``improps`` agreeing with ``imread``, ``index`` semantics,
    ``iter``, ``metadata``, the region-read contract (``chunks`` and
    ``read_region(box, out=)`` agreeing with ``read()[box]``), and clear errors
    for a missing resource and an index out of range.
    """

    plugin: str = ""
    #: whether ``index=i`` reads the i-th image of a stack (False: one image only)
    batch: bool = True

    def make_resource(self, tmp_path, seed: int = 0) -> tuple[Any, np.ndarray]:  # pragma: no cover
        """Create a resource under ``tmp_path``; return ``(uri, what imread(uri) returns)``.

        Parameters
        ----------
        tmp_path : pathlib.Path
            A fresh folder to create files in.
        seed : int
            Seed for the pixel values.

        Returns
        -------
        tuple
            ``(uri, expected)``.
        """
        raise NotImplementedError

    def missing_resource(self, tmp_path) -> Any:
        """A uri of this kind that does not exist (default: a missing folder).

        Parameters
        ----------
        tmp_path : pathlib.Path
            A fresh folder.

        Returns
        -------
        Any
        """
        return tmp_path / "missing"

    # -- reads -------------------------------------------------------------------------
    def test_read(self, tmp_path):
        uri, expected = self.make_resource(tmp_path)
        for form in (uri, str(uri)):
            got = iio.imread(form)
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(iio.imread(uri, plugin=self.plugin), expected)

    @pytest.mark.parametrize("index", [None, 0, -1, ...])
    def test_improps_matches_imread(self, tmp_path, index):
        uri, _ = self.make_resource(tmp_path)
        props = iio.improps(uri, index=index)
        image = iio.imread(uri, index=index)
        assert props.shape == image.shape and props.dtype == image.dtype
        if props.axes is not None:
            assert len(props.axes) == image.ndim
        if props.spacing is not None:
            assert len(props.spacing) == image.ndim

    def test_index_semantics(self, tmp_path):
        uri, expected = self.make_resource(tmp_path, seed=1)
        with iio.imopen(uri, "r") as f:
            n = f.properties(index=...).n_images
        if self.batch:
            assert n == len(expected)
            for i in (0, n - 1, -1):
                np.testing.assert_array_equal(iio.imread(uri, index=i), expected[i])
            got = list(iio.imiter(uri))
            assert len(got) == n
            np.testing.assert_array_equal(np.stack(got), expected)
        with pytest.raises(IndexError, match="out of range"):
            iio.imread(uri, index=10_000)
        with pytest.raises(IndexError):
            iio.improps(uri, index=10_000)

    def test_imopen_contract(self, tmp_path):
        uri, expected = self.make_resource(tmp_path)
        with iio.imopen(uri, "r") as f:
            assert f.name == self.plugin
            got = f.read()
            np.testing.assert_array_equal(got, expected)
            assert f.properties().shape == got.shape
            assert isinstance(f.metadata(), dict)
            assert isinstance(f.metadata(index=0), dict)
            assert len(list(f.iter())) >= 1
        assert f.closed
        f.close()  # twice is harmless

    def test_region_reads_match_read(self, tmp_path):
        uri, expected = self.make_resource(tmp_path, seed=2)
        shape = expected.shape
        with iio.imopen(uri, "r") as f:
            chunks = f.chunks()
            if chunks is not None:
                assert len(chunks) == len(shape)
                assert all(1 <= c <= max(n, 1) for c, n in zip(chunks, shape)), chunks
            boxes = [tuple(slice(0, n) for n in shape),
                     tuple(slice(n // 3, max(n // 3, (2 * n) // 3 + 1) if n else 0)
                           for n in shape),
                     tuple(slice(n - 1, n) if n else slice(0, 0) for n in shape),
                     tuple(slice(0, 0) for _ in shape)]
            for box in boxes:
                np.testing.assert_array_equal(f.read_region(box), expected[box])
                out = np.empty(expected[box].shape, expected.dtype)
                assert f.read_region(box, out=out) is out
                np.testing.assert_array_equal(out, expected[box])
            with pytest.raises(ValueError):
                f.read_region(tuple(slice(0, n + 1) for n in shape))

    def test_missing_resource(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            iio.imread(self.missing_resource(tmp_path))


def roundtrip(image: np.ndarray, extension: str, **kwargs: Any) -> np.ndarray:
    """Encode ``image`` to bytes with ``extension`` and decode it again.

    Parameters
    ----------
    image : numpy.ndarray
        The ndimage to write.
    extension : str
        The format to write, by extension (``".png"``).
    **kwargs
        Passed to :func:`imgio.v3.imwrite`.

    Returns
    -------
    numpy.ndarray
        What :func:`imgio.v3.imread` reads back.
    """
    return iio.imread(iio.imwrite("<bytes>", image, extension=extension, **kwargs))
