"""Shape validation: imageio 2.38 v2 semantics, with readable messages."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgio import _kernels
from imgio.errors import DTypeError, ShapeError

import imageio.v2 as iio_v2  # noqa: E402

SHAPES = [(), (0,), (5,), (0, 0), (1, 1), (4, 5), (4, 5, 1), (4, 5, 2), (4, 5, 3),
          (4, 5, 4), (4, 5, 5), (4, 5, 9), (3, 4, 5, 1), (3, 4, 5, 3), (3, 4, 5, 4),
          (3, 4, 5, 5), (2, 3, 4, 5, 3), (0, 4, 5, 3), (1, 1, 1, 1)]


@pytest.mark.parametrize("shape", SHAPES)
def test_is_batch_is_volume_match_imageio(shape):
    a = np.zeros(shape, np.uint8)
    assert _kernels.is_batch(a) == iio_v2.is_batch(a)
    assert _kernels.is_volume(a) == iio_v2.is_volume(a)
    # array-likes that are not ndarrays
    assert _kernels.is_batch(np.ones(shape).tolist() if a.ndim == 0 else a) == iio_v2.is_batch(a)


def test_lists_and_tuples():
    assert _kernels.is_batch([np.zeros((2, 2))]) and _kernels.is_batch(())
    assert not _kernels.is_volume([np.zeros((2, 2, 5))])
    assert not _kernels.is_volume((np.zeros((2, 2, 5)),))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 7), min_size=0, max_size=6))
def test_property_consistent_with_imageio(shape):
    shape = tuple(shape)
    a = np.empty(shape, np.uint8)
    assert _kernels.is_batch(a) == iio_v2.is_batch(a)
    assert _kernels.is_volume(a) == iio_v2.is_volume(a)


# -- check_image -------------------------------------------------------------------
def _imageio_error(kind, im):
    """The message imageio v2 raises for ``im`` (None when it accepts it)."""
    if kind == "image":
        imt = type(im)
        im = np.asarray(im)
        if not np.issubdtype(im.dtype, np.number):
            return "Image is not numeric, but {}.".format(imt.__name__)
        if iio_v2.is_batch(im) or im.ndim < 2:
            return "Image must be 2D (grayscale, RGB, or RGBA)."
    elif kind == "images":
        if not iio_v2.is_batch(im):
            return "Image data must be a sequence of ndimages."
    elif kind == "volume":
        if not iio_v2.is_volume(np.asarray(im)):
            return "Image must be 3D, or 4D if each voxel is a tuple."
    return None


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["image", "images", "volume"])
def test_check_image_same_verdict_as_imageio(kind, shape):
    a = np.zeros(shape, np.uint8)
    expected = _imageio_error(kind, a)
    if expected is None:
        res = _kernels.check_image(a, kind=kind)
        assert res is a or (isinstance(res, np.ndarray) and res.shape == a.shape)
    else:
        with pytest.raises(ShapeError) as info:
            _kernels.check_image(a, kind=kind)
        msg = str(info.value)
        assert msg.startswith(expected)
        assert f"Got an array of shape {a.shape} and dtype uint8." in msg
        assert isinstance(info.value, ValueError)  # what imageio raises


def test_check_image_message_example():
    with pytest.raises(ShapeError, match=r"^Image must be 2D \(grayscale, RGB, or RGBA\)\. "
                       r"Got an array of shape \(3, 4, 5, 3\) and dtype uint8\.$"):
        _kernels.check_image(np.zeros((3, 4, 5, 3), np.uint8), kind="image")


@pytest.mark.parametrize("value,tname", [
    (np.zeros((3, 3), bool), "ndarray"), ([[True, False], [False, True]], "list"),
    (np.array([["a", "b"], ["c", "d"]]), "ndarray"),
    (np.empty((2, 2), object), "ndarray"),
])
def test_non_numeric_is_dtype_error(value, tname):
    for kind in ("image", "volume"):
        with pytest.raises(DTypeError, match=rf"^Image is not numeric, but {tname}\. Got"):
            _kernels.check_image(value, kind=kind)
    with pytest.raises(DTypeError, match="not numeric"):
        _kernels.check_image([value], kind="images")
    with pytest.raises(DTypeError, match="not numeric"):
        _kernels.check_image([value], kind="volumes")


def test_complex_is_numeric_like_imageio():
    a = np.zeros((3, 3), np.complex64)
    assert _kernels.check_image(a, kind="image") is a


def test_check_image_converts_array_likes():
    out = _kernels.check_image([[1, 2], [3, 4]], kind="image")
    assert isinstance(out, np.ndarray) and out.shape == (2, 2)
    with pytest.raises(ShapeError, match="not a regular array"):
        _kernels.check_image([[1, 2], [3]], kind="image")


def test_squeeze_drops_trailing_singletons():
    a = np.zeros((4, 5, 1, 1))
    with pytest.raises(ShapeError):
        _kernels.check_image(a, kind="image")
    assert _kernels.check_image(a, kind="image", squeeze=True).shape == (4, 5)
    # never below 2-D for an image / 3-D for a volume
    assert _kernels.check_image(np.zeros((4, 1)), kind="image", squeeze=True).shape == (4, 1)
    v = np.zeros((6, 7, 8, 1, 1))
    assert _kernels.check_image(v, kind="volume", squeeze=True).shape == (6, 7, 8)
    with pytest.raises(ShapeError, match="must be 3D"):
        _kernels.check_image(v, kind="volume")
    imgs = _kernels.check_image([np.zeros((4, 5, 1))], kind="images", squeeze=True)
    assert imgs[0].shape == (4, 5)
    batch = _kernels.check_image(np.zeros((2, 4, 5, 1)), kind="images", squeeze=True)
    assert batch.shape == (2, 4, 5)


def test_images_returns_list_or_array():
    frames = [np.zeros((3, 3), np.uint8), np.ones((4, 4, 3), np.uint16)]
    out = _kernels.check_image(frames, kind="images")
    assert isinstance(out, list) and [f.shape for f in out] == [(3, 3), (4, 4, 3)]
    out = _kernels.check_image(tuple(f.tolist() for f in frames[:1]), kind="images")
    assert isinstance(out, list) and out[0].shape == (3, 3)
    batch = np.zeros((5, 3, 3, 5), np.float32)
    assert _kernels.check_image(batch, kind="images") is batch
    with pytest.raises(ShapeError, match=r"image 1 has fewer than 2 dimensions.*shape \(3,\)"):
        _kernels.check_image([np.zeros((2, 2)), np.zeros(3)], kind="images")
    with pytest.raises(ShapeError, match=r"^Image data must be a sequence of ndimages\. Got"):
        _kernels.check_image(np.zeros((3, 3, 3)), kind="images")


def test_volumes():
    vols = [np.zeros((3, 4, 5)), np.zeros((2, 4, 5, 3))]
    out = _kernels.check_image(vols, kind="volumes")
    assert [v.shape for v in out] == [(3, 4, 5), (2, 4, 5, 3)]
    batch = np.zeros((2, 3, 4, 5), np.uint8)
    assert _kernels.check_image(batch, kind="volumes") is batch
    with pytest.raises(ShapeError, match=r"^Image 1 of the sequence must be 3D, or 4D if each "
                       r"voxel is a tuple\. Got an array of shape \(4, 5\)"):
        _kernels.check_image([np.zeros((3, 4, 5)), np.zeros((4, 5))], kind="volumes")
    with pytest.raises(ShapeError, match="must be 3D"):
        _kernels.check_image(np.zeros((3, 4, 5)), kind="volumes")  # elements are 2-D
    with pytest.raises(ShapeError, match="sequence of volumes"):
        _kernels.check_image(np.array(3.0), kind="volumes")
    with pytest.raises(ShapeError, match="sequence of volumes, not int"):
        _kernels.check_image(3, kind="volumes")


def test_bad_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        _kernels.check_image(np.zeros((2, 2)), kind="picture")
