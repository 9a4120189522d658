"""Validating wrappers around the Cython kernels in ``_ext/``.

The kernels take typed memoryviews, release the GIL, and neither allocate nor
raise.  The functions here check dtypes and shapes, allocate outputs, and
raise readable errors, then hand plain buffers to the kernels.  Each has a
plain NumPy twin in :mod:`imgio._reference` that the tests compare against.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Iterable

import numpy as np

from ._ext import stack as _stack
from .errors import DTypeError, ShapeError

__all__ = ["stack_frames", "copy_frame"]


# -- volume stacking ---------------------------------------------------------------
def _byte_view3(arr: np.ndarray, writeable: bool) -> np.ndarray | None:
    """``arr``'s bytes as a 3-D ``(rows, cols, itemsize)`` uint8 view, if one exists.

    Needs the array's axes to collapse into at most two strided groups (true
    for contiguous arrays, 2-D arrays of any stride, and slices of volumes);
    returns ``None`` otherwise.
    """
    if arr.ndim == 0:
        arr = arr.reshape(1)
    groups: list[list[int]] = []  # [size, stride] from the innermost axis out
    for size, stride in zip(reversed(arr.shape), reversed(arr.strides)):
        if size == 1:
            continue
        if groups and groups[-1][1] * groups[-1][0] == stride:
            groups[-1][0] *= size
        else:
            groups.append([size, stride])
    if len(groups) > 2:
        return None
    while len(groups) < 2:
        groups.append([1, 0])
    (cols, cstride), (rows, rstride) = groups
    item = arr.itemsize
    raw = arr[..., None].view(np.uint8)  # last axis: the ``itemsize`` bytes of an item
    return np.lib.stride_tricks.as_strided(
        raw, shape=(rows, cols, item), strides=(rstride, cstride, 1),
        writeable=writeable)


def copy_frame(dst: np.ndarray, src: Any) -> None:
    """Copy ``src`` into ``dst`` (same shape and dtype) without holding the GIL.

    Threads may call this at once on different slices of one volume.

    Raises
    ------
    ShapeError, DTypeError
        When ``src`` does not match ``dst``.
    """
    src = np.asarray(src)
    if src.shape != dst.shape:
        raise ShapeError(f"frame has shape {src.shape}, expected {dst.shape}")
    if src.dtype != dst.dtype:
        raise DTypeError(f"frame has dtype {src.dtype}, expected {dst.dtype}")
    if not dst.flags.writeable:
        raise ValueError("the output array is read-only")
    if src.size == 0:
        return
    s3 = _byte_view3(src, writeable=False)
    d3 = _byte_view3(dst, writeable=True)
    if s3 is None or d3 is None or s3.shape != d3.shape:
        # layouts that do not collapse to two strided axes: let NumPy do it
        np.copyto(dst, src, casting="no")
        return
    _stack.copy_bytes3(s3, d3)


def _frame_count(frames: Any) -> int:
    """The number of frames if it can be known without consuming them, else -1."""
    try:
        return len(frames)
    except TypeError:
        hint = operator.length_hint(frames, -1)
        return hint if hint > 0 else -1


def stack_frames(frames: Iterable[Any], out: np.ndarray | None = None, *,
                 progress: Callable[[int, int], Any] | None = None) -> np.ndarray:
    """Stack equally shaped frames along a new first axis, allocating once.

    Unlike ``np.stack(list(frames))`` the frames are never held in a list: each
    is copied into its slice of the output as it arrives (with the GIL
    released), so peak memory is one volume plus one frame.

    Parameters
    ----------
    frames : iterable of array_like
        A sequence or an iterator of frames.  When the count is known (``len``
        or ``operator.length_hint``) the volume is allocated once; otherwise it
        grows by doubling with ``ndarray.resize`` (in place for large arrays,
        so two full copies never coexist) and is trimmed at the end.
    out : numpy.ndarray, optional
        Preallocated output of shape ``(n, *frame.shape)`` and the frames' dtype.
        Fewer frames than ``n`` returns ``out[:count]``.
    progress : callable, optional
        Called as ``progress(done, total)`` after each frame (``total`` is -1
        when unknown).

    Returns
    -------
    numpy.ndarray
        The volume (``out`` itself, or a slice of it, when given).

    Raises
    ------
    ShapeError
        A frame's shape differs from the first one, or ``out`` is too small.
    DTypeError
        A frame's dtype differs from the first one (or from ``out``).
    ValueError
        No frames and no ``out``.
    """
    total = _frame_count(frames)
    it = iter(frames)
    try:
        first = np.asarray(next(it))
    except StopIteration:
        if out is not None:
            return out[:0]
        raise ValueError("stack_frames needs at least one frame (got none)") from None

    owned = out is None
    if owned:
        capacity = total if total > 0 else 8
        out = np.empty((capacity,) + first.shape, dtype=first.dtype)
    else:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy array, not {type(out).__name__}")
        if out.shape[1:] != first.shape or out.ndim != first.ndim + 1:
            raise ShapeError(
                f"out has shape {out.shape}, but frames of shape {first.shape} need "
                f"(n, {', '.join(map(str, first.shape))})")
        if out.dtype != first.dtype:
            raise DTypeError(f"out has dtype {out.dtype}, but the frames are {first.dtype}")
        if not out.flags.writeable:
            raise ValueError("out is read-only")

    count = 0
    frame = first
    while True:
        if count >= out.shape[0]:
            if not owned:
                raise ShapeError(
                    f"out has room for {out.shape[0]} frames, but more frames arrived")
            out.resize((max(8, 2 * out.shape[0]),) + first.shape, refcheck=False)
        if frame.shape != first.shape:
            raise ShapeError(f"frame {count} has shape {frame.shape}, but frame 0 has "
                             f"{first.shape}; all frames must have the same shape")
        if frame.dtype != first.dtype:
            raise DTypeError(f"frame {count} has dtype {frame.dtype}, but frame 0 has "
                             f"{first.dtype}; all frames must have the same dtype")
        copy_frame(out[count], frame)
        count += 1
        if progress is not None:
            progress(count, total)
        try:
            frame = np.asarray(next(it))
        except StopIteration:
            break

    if count < out.shape[0]:
        if owned:
            out.resize((count,) + first.shape, refcheck=False)
        else:
            return out[:count]
    return out
