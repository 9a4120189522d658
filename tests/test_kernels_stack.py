"""Volume stacking (``stack_frames``, ``copy_frame`` on ``np.copyto``) against ``np.stack``.

The dtype x shape x layout space is covered pairwise, not as a grid, plus one
stack of frames large enough (> 16 MiB) to be a real volume.
"""
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


from imgio import _kernels, _reference
from imgio.errors import DTypeError, ShapeError


def _pairwise():
    # tests/ is not a package and pytest runs with --import-mode=importlib
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "imgio_tests_pairwise", Path(__file__).with_name("pairwise.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.pairwise


pairwise = _pairwise()

DTYPES = ["u1", "u2", "u4", "i1", "i2", "i4", "f4", "f8", ">u2", ">f8", "?", "c8"]
SHAPES = [(0, 3), (1, 1), (7,), (5, 9), (4, 6, 3), (2, 3, 4, 5)]


def _frames(dtype, shape, n=4, layout="C"):
    rng = np.random.default_rng(1)
    out = []
    for _ in range(n):
        a = (rng.random(shape) * 100).astype(dtype)
        if layout == "F":
            a = np.asfortranarray(a)
        elif layout == "strided" and a.ndim:
            big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
            big[tuple(slice(None, None, 2) for _ in a.shape)] = a
            a = big[tuple(slice(None, None, 2) for _ in a.shape)]
        elif layout == "reversed" and a.ndim:
            a = a[::-1].copy()[::-1]
        elif layout == "readonly":
            a.flags.writeable = False
        out.append(a)
    return out


@pytest.mark.parametrize("dtype,shape,layout", pairwise(
    DTYPES, SHAPES, ["C", "F", "strided", "reversed", "readonly"]))
def test_matches_twin(dtype, shape, layout):
    frames = _frames(dtype, shape, layout=layout)
    got = _kernels.stack_frames(frames)
    ref = _reference.stack_frames(frames)
    # a byte copy: the frames' dtype is kept exactly (np.stack makes it native-endian)
    assert got.dtype == frames[0].dtype and got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)
    got_iter = _kernels.stack_frames(iter(frames))
    np.testing.assert_array_equal(got_iter, ref)


def test_out_is_filled_in_place():
    frames = _frames("u2", (5, 6))
    out = np.full((6, 5, 6), 7, np.uint16)
    res = _kernels.stack_frames(frames, out=out)
    assert res.base is out or res is out
    np.testing.assert_array_equal(out[:4], np.stack(frames))
    assert (out[4:] == 7).all()


def test_generator_of_unknown_length_grows():
    def gen():
        for i in range(37):
            yield np.full((3, 2), i, np.int32)
    vol = _kernels.stack_frames(gen())
    assert vol.shape == (37, 3, 2)
    assert vol[:, 0, 0].tolist() == list(range(37))


def test_length_hint_overestimate_is_trimmed():
    class Hinted:
        def __init__(self):
            self.i = 0

        def __iter__(self):
            return self

        def __next__(self):
            if self.i == 3:
                raise StopIteration
            self.i += 1
            return np.zeros((2, 2))

        def __length_hint__(self):
            return 10
    assert _kernels.stack_frames(Hinted()).shape == (3, 2, 2)


def test_errors_are_readable():
    with pytest.raises(ShapeError, match=r"frame 1 has shape \(3, 3\)"):
        _kernels.stack_frames([np.zeros((2, 2)), np.zeros((3, 3))])
    with pytest.raises(DTypeError, match="frame 1 has dtype float32"):
        _kernels.stack_frames([np.zeros((2, 2)), np.zeros((2, 2), np.float32)])
    with pytest.raises(ShapeError, match="room for 1 frames"):
        _kernels.stack_frames([np.zeros(2)] * 2, out=np.zeros((1, 2)))
    with pytest.raises(DTypeError, match="out has dtype"):
        _kernels.stack_frames([np.zeros(2)], out=np.zeros((1, 2), np.int8))
    with pytest.raises(ShapeError, match="out has shape"):
        _kernels.stack_frames([np.zeros(2)], out=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="at least one frame"):
        _kernels.stack_frames([])
    ro = np.zeros((1, 2))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _kernels.stack_frames([np.zeros(2)], out=ro)


def test_threads_fill_different_slices():
    frames = _frames("f8", (64, 64), n=16)
    out = np.empty((16, 64, 64))

    def fill(i):
        _kernels.copy_frame(out[i], frames[i])
    threads = [threading.Thread(target=fill, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(out, np.stack(frames))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(dtype=st.sampled_from([np.uint8, np.int16, np.float32, np.dtype(">u4")]),
                  shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6)),
       st.integers(1, 4), st.data())
def test_property_any_slicing(arr, n, data):
    slices = tuple(slice(None, None, data.draw(st.sampled_from([1, 2, -1]))) for _ in arr.shape)
    frames = [arr[slices]] * n
    np.testing.assert_array_equal(_kernels.stack_frames(frames), _reference.stack_frames(frames))


def test_large_volume_from_strided_frames():
    rng = np.random.default_rng(2)
    base = rng.integers(0, 65535, (1024, 2048), dtype=np.uint16)
    frames = [base[:, i % 2::2] for i in range(10)]   # 10 x 2 MiB strided frames
    vol = _kernels.stack_frames(iter(frames))
    assert vol.nbytes > 16 << 20 and vol.shape == (10, 1024, 1024)
    np.testing.assert_array_equal(vol, np.stack(frames))


def test_copy_frame_refuses_read_only_and_mismatched_frames():
    dst = np.zeros((3, 4), np.uint16)
    ro = dst.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _kernels.copy_frame(ro, dst)  # the common call (same shape, dtype): np.copyto says it
    with pytest.raises(ShapeError, match=r"frame has shape \(1, 4\)"):
        _kernels.copy_frame(dst, np.ones((1, 4), np.uint16))  # np.copyto would broadcast
    with pytest.raises(DTypeError):
        _kernels.copy_frame(dst, np.ones((3, 4), np.int16))
    _kernels.copy_frame(dst, list(np.full((3, 4), 7, np.uint16)))  # a list: asarray, checked
    assert (dst == 7).all()
