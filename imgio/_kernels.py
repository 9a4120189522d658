"""Image-data helpers of the write and stacking paths, and the wrapper of ``_ext/convert``.

The Cython kernels take typed memoryviews, check their sizes and release the
GIL.  The functions here check dtypes and shapes, allocate outputs, and raise
readable errors.  Only ``to_uint`` has a kernel: it beats the best plain-NumPy
way (``benchmarks/test_bench_kernels.py``).  Copies go through ``np.copyto``,
which releases the GIL and beat the former byte-copy kernel on strided frames.
``to_uint`` and ``stack_frames`` have NumPy twins in :mod:`imgio._reference`.
"""
from __future__ import annotations

import operator
import os
from typing import Any, Callable, Iterable

import numpy as np

from ._ext import convert as _convert
from .errors import DTypeError, ShapeError

__all__ = [
    "stack_frames", "copy_frame",
    "is_batch", "is_volume", "check_image", "to_uint",
]


# -- shape validation (imageio 2.38 v2 semantics) ----------------------------------
# Pure Python on purpose: these are O(1) on a shape tuple.  A Cython version was
# benchmarked and did not earn its place (see benchmarks/test_bench_kernels.py).

def _ndim_shape(x: Any) -> tuple[int, tuple[int, ...]]:
    if isinstance(x, np.ndarray):
        return x.ndim, x.shape
    a = np.asarray(x)
    return a.ndim, a.shape


def is_batch(x: Any) -> bool:
    """Whether ``x`` is a batch of images in imageio v2's sense.

    A list or tuple always is; an array is unless it is 2-D or 3-D with fewer
    than 5 channels (the last axis), i.e. a single gray/RGB(A) image.
    """
    if isinstance(x, (list, tuple)):
        return True
    ndim, shape = _ndim_shape(x)
    if ndim <= 2:
        return False
    if ndim == 3 and shape[2] < 5:
        return False
    return True


def is_volume(x: Any) -> bool:
    """Whether ``x`` is a volume in imageio v2's sense.

    A 3-D array whose last axis has 5 or more elements, or a 4-D array whose
    last axis (the voxel's channels) has fewer than 5.  Lists are not volumes.
    """
    if isinstance(x, (list, tuple)):
        return False  # imageio: np.asarray of a list of images, judged below
    ndim, shape = _ndim_shape(x)
    if ndim == 3:
        return shape[2] >= 5
    if ndim == 4:
        return shape[3] < 5
    return False


_KINDS = ("image", "images", "volume", "volumes")


def _got(arr: np.ndarray) -> str:
    return f" Got an array of shape {arr.shape} and dtype {arr.dtype}."


def _as_array(im: Any) -> np.ndarray:
    try:
        return np.asarray(im)
    except ValueError as exc:  # ragged nested sequences
        raise ShapeError(f"Image data is not a regular array: {exc}") from None


def _squeeze_trailing(arr: np.ndarray, min_ndim: int) -> np.ndarray:
    while arr.ndim > min_ndim and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


def _check_numeric(original: Any, arr: np.ndarray, where: str = "") -> None:
    if not np.issubdtype(arr.dtype, np.number):
        raise DTypeError(
            f"Image{where} is not numeric, but {type(original).__name__}.{_got(arr)}")


def _check_one(original: Any, *, kind: str, squeeze: bool, where: str = "") -> np.ndarray:
    arr = _as_array(original)
    _check_numeric(original, arr, where)
    if kind == "image":
        if squeeze:
            arr = _squeeze_trailing(arr, 2)
        if arr.ndim < 2 or is_batch(arr):
            raise ShapeError(f"Image{where} must be 2D (grayscale, RGB, or RGBA).{_got(arr)}")
    else:  # volume
        if squeeze:
            arr = _squeeze_trailing(arr, 3)
        if not is_volume(arr):
            raise ShapeError(
                f"Image{where} must be 3D, or 4D if each voxel is a tuple.{_got(arr)}")
    return arr


def check_image(im: Any, *, kind: str, squeeze: bool = False) -> Any:
    """Validate image data the way imageio v2's writers do, with better messages.

    Parameters
    ----------
    im : array_like or sequence of array_like
        One image or volume (``kind="image"``/``"volume"``), or a batch of them
        (``kind="images"``/``"volumes"``: a list/tuple or an array whose first
        axis indexes the images).
    kind : {"image", "images", "volume", "volumes"}
        What ``im`` must be (the rules of ``imwrite``, ``mimwrite``, ``volwrite``
        and ``mvolwrite``).
    squeeze : bool
        Drop trailing singleton axes first, so ``(H, W, 1)`` is a gray image.
        Axes are only dropped down to 2-D for an image and 3-D for a volume
        (each element of a batch is squeezed on its own).

    Returns
    -------
    numpy.ndarray or list of numpy.ndarray
        The validated array; for a batch, the list of validated arrays, or the
        array itself when given an array batch.

    Raises
    ------
    DTypeError
        The data are not numeric (bool, object and str are not).
    ShapeError
        The shape does not fit ``kind``.
    """
    if kind in ("image", "volume"):
        return _check_one(im, kind=kind, squeeze=squeeze)
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, not {kind!r}")
    if isinstance(im, np.ndarray):
        if kind == "images" and not is_batch(im):
            raise ShapeError(f"Image data must be a sequence of ndimages.{_got(im)}")
        if im.ndim == 0:
            raise ShapeError(
                f"Image data must be a sequence of volumes.{_got(im)}")
        _check_numeric(im, im)
        if kind == "images":
            return _squeeze_trailing(im, 3) if squeeze else im
        elem = im[:0].reshape(im.shape[1:]) if im.shape[0] == 0 else im[0]
        _check_one(elem, kind="volume", squeeze=squeeze, where=" 0")
        return _squeeze_trailing(im, 4) if squeeze else im
    if kind == "images" and not is_batch(im):
        arr = _as_array(im)
        raise ShapeError(f"Image data must be a sequence of ndimages.{_got(arr)}")
    try:
        items = list(im)
    except TypeError:
        what = "ndimages" if kind == "images" else "volumes"
        raise ShapeError(
            f"Image data must be a sequence of {what}, not {type(im).__name__}.") from None
    out = []
    for i, item in enumerate(items):
        where = f" {i} of the sequence"
        if kind == "images":
            arr = _as_array(item)
            _check_numeric(item, arr, where)
            if squeeze:
                arr = _squeeze_trailing(arr, 2)
            if arr.ndim < 2:
                raise ShapeError(f"Image data must be a sequence of ndimages, but image "
                                 f"{i} has fewer than 2 dimensions.{_got(arr)}")
        else:
            arr = _check_one(item, kind="volume", squeeze=squeeze, where=where)
        out.append(arr)
    return out


# -- volume stacking ---------------------------------------------------------------
def copy_frame(dst: np.ndarray, src: Any) -> None:
    """Copy ``src`` into ``dst`` (same shape and dtype) with ``np.copyto``.

    NumPy releases the GIL for the copy, so threads may call this at once on
    different slices of one volume.

    Raises
    ------
    ShapeError, DTypeError
        When ``src`` does not match ``dst``.
    """
    if type(src) is np.ndarray and src.shape == dst.shape and src.dtype == dst.dtype:
        # the common call: np.copyto itself refuses a read-only ``dst``
        np.copyto(dst, src, casting="no")
        return
    src = np.asarray(src)
    if src.shape != dst.shape:
        raise ShapeError(f"frame has shape {src.shape}, expected {dst.shape}")
    if src.dtype != dst.dtype:
        raise DTypeError(f"frame has dtype {src.dtype}, expected {dst.dtype}")
    if not dst.flags.writeable:
        raise ValueError("the output array is read-only")
    _copy_checked(dst, src)


def _copy_checked(dst: np.ndarray, src: np.ndarray) -> None:
    """The copy of :func:`copy_frame`, for callers that already checked the pair."""
    np.copyto(dst, src, casting="no")


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
        _copy_checked(out[count], frame)  # shape, dtype and writeability checked above
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


# -- pixel-buffer conversion -------------------------------------------------------
_MODE_UNIT, _MODE_RANGE, _MODE_SHIFT, _MODE_CLIP = 0, 1, 2, 3
#: dtypes the numeric kernels read directly (native order, or swapped on load)
_KERNEL_KINDS = {np.dtype(t) for t in
                 ("u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "f4", "f8")}
_CHUNK_BYTES = 1 << 22  # float16/longdouble are converted 4 MiB at a time


def _native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype


def _is_swapped(dtype: np.dtype) -> bool:
    return not dtype.isnative


def _blocks2(*arrays: np.ndarray) -> Iterable[tuple[np.ndarray, ...]]:
    """Equally shaped arrays as matching 2-D views, the fewest possible.

    Axes are ordered by the first array's strides (largest first), size-1 axes
    dropped, and neighbours merged where every array allows it.  Up to two
    groups come back as one block each; more are iterated in Python over the
    outer axes (only for layouts such as a transposed slice of a volume).
    """
    first = arrays[0]
    if first.size == 0:
        return
    order = sorted((ax for ax in range(first.ndim) if first.shape[ax] != 1),
                   key=lambda ax: -abs(first.strides[ax]))
    shape = [first.shape[ax] for ax in order]
    strides = [[a.strides[ax] for ax in order] for a in arrays]
    i = len(shape) - 1
    while i > 0:  # merge axis i into axis i - 1 where all arrays allow it
        if all(st[i - 1] == st[i] * shape[i] for st in strides):
            shape[i - 1] *= shape[i]
            del shape[i]
            for st in strides:
                st[i - 1] = st[i]  # the merged axis steps like the inner one
                del st[i]
        i -= 1
    while len(shape) < 2:
        shape.insert(0, 1)
        for st in strides:
            st.insert(0, 0)
    views = [np.lib.stride_tricks.as_strided(a, shape=shape, strides=st,
                                             writeable=a.flags.writeable)
             for a, st in zip(arrays, strides)]
    if len(shape) == 2:
        yield tuple(views)
        return
    for idx in np.ndindex(*shape[:-2]):
        yield tuple(v[idx] for v in views)


def _row_chunks(arr: np.ndarray, out: np.ndarray) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """``arr`` and ``out`` cut along their largest axis into ~4 MiB pieces."""
    if arr.ndim == 0:
        yield arr.reshape(1), out.reshape(1)
        return
    ax = int(np.argmax(arr.shape))
    per = max(1, arr.size // max(1, arr.shape[ax]))
    step = max(1, _CHUNK_BYTES // max(1, per * arr.itemsize))
    for start in range(0, arr.shape[ax], step):
        sl = (slice(None),) * ax + (slice(start, start + step),)
        yield arr[sl], out[sl]


def _kernel_view(arr: np.ndarray) -> tuple[np.ndarray, bool]:
    """A native-order view of ``arr`` (no copy) and whether its bytes are swapped."""
    if _is_swapped(arr.dtype):
        return arr.view(_native(arr.dtype)), True
    return arr, False


def _check_out(out: Any, shape: tuple[int, ...], dtype: Any, name: str) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, not {type(out).__name__}")
    if out.shape != shape:
        raise ShapeError(f"out has shape {out.shape}, but {name} needs {shape}")
    if out.dtype != np.dtype(dtype):
        raise DTypeError(f"out has dtype {out.dtype}, but {name} needs {np.dtype(dtype)}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out


def _seed(dtype: np.dtype) -> np.ndarray:
    """``(largest, smallest)`` of ``dtype``: the identity of a (min, max) fold."""
    info = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype)
    big = np.inf if dtype.kind == "f" else info.max
    return np.array([big, -big if dtype.kind == "f" else info.min], dtype)


# Floats: the kernel's one-pass min/max (AVX-512/AVX2/SSE2 intrinsics picked at
# run time, NaN found in the same pass) beats NumPy's min() + max() at every size
# on contiguous data (f8, same run, loaded 2-core machine: 4 MiB 42 us vs 71 us,
# 16 MiB 259 us vs 601 us, in cache; 512 MiB 13.5 ms on 2 threads vs 30.8 ms).
# Strided floats and integers (no NaN or inf; NumPy's integer reductions are
# SIMD too, and faster than the kernel's integer loop: u2 64 MiB 9.1 ms vs
# 9.7 ms) go to NumPy, whose answer is checked for NaN/inf below.
#: above this many items the min/max pass runs in one band per core (16 MiB of
#: f8: below it the data sit in cache and a thread hand-off costs more than it saves)
_PARALLEL_MINMAX_ITEMS = 1 << 21


def _minmax(arr: np.ndarray) -> tuple[Any, Any, bool, bool, bool, bool]:
    """(finite min, finite max, any finite, any NaN, any +inf, any -inf)."""
    if arr.dtype.isnative and (arr.dtype.kind in "iub" or not (
            arr.flags.c_contiguous or arr.flags.f_contiguous)):
        lo, hi = arr.min(), arr.max()
        if arr.dtype.kind != "f" or (np.isfinite(lo) and np.isfinite(hi)):
            return lo, hi, True, False, False, False
        # NaN or inf somewhere: the kernels below skip them and say which
    view, swap = _kernel_view(arr)
    lohi = _seed(view.dtype)
    flags = np.zeros(4, np.int64)
    for (block,) in _blocks2(view):
        bands = _split_rows(block, min_items=_PARALLEL_MINMAX_ITEMS)
        parts = [(_seed(view.dtype), np.zeros(4, np.int64)) for _ in bands]
        _run(lambda b, part: _convert.minmax2(b, swap, part[0], part[1]),
             [(band[0], part) for band, part in zip(bands, parts)])
        for plohi, pflags in parts:
            lohi[0] = min(lohi[0], plohi[0])
            lohi[1] = max(lohi[1], plohi[1])
            flags |= pflags
    if view.dtype.kind == "f" and (np.isinf(lohi[0]) or np.isinf(lohi[1])):
        lohi = _seed(view.dtype)  # infinities present: the slow pass skips them
        for (block,) in _blocks2(view):
            _convert.minmax_finite2(block, swap, lohi, flags)
    finite = bool(lohi[0] <= lohi[1])
    return (view.dtype.type(lohi[0]), view.dtype.type(lohi[1]), finite,
            bool(flags[1]), bool(flags[2]), bool(flags[3]))


# Blocks this large are split over threads (GIL released).  A pass over 256 Ki
# float64 items takes ~0.3 ms on one core; handing half to a pooled thread costs
# ~30 us, so splitting pays from here on (to_uint of 8x256x256 f8: 1.79 ms on one
# thread, 1.13 ms split in two).
_PARALLEL_ITEMS = 1 << 18
_POOL: Any = None
_WORKERS = min(os.cpu_count() or 1, 8)  # os.cpu_count() reads /sys on every call


def _split_rows(*blocks: np.ndarray,
                min_items: int = _PARALLEL_ITEMS) -> list[tuple[np.ndarray, ...]]:
    """2-D blocks cut into row bands, one per CPU, when they have ``min_items``."""
    rows, cols = blocks[0].shape
    workers = _WORKERS
    if blocks[0].size < min_items or workers < 2:
        return [blocks]
    if rows >= workers:
        step = -(-rows // workers)
        return [tuple(b[i:i + step] for b in blocks) for i in range(0, rows, step)]
    step = -(-cols // workers)  # a contiguous volume collapses into one long row
    return [tuple(b[:, i:i + step] for b in blocks) for i in range(0, cols, step)]


def _run(kernel: Callable[..., Any], bands: list[tuple[np.ndarray, ...]],
         *args: Any) -> None:
    """``kernel(*band, *args)`` for each band, on a thread pool if more than one."""
    global _POOL
    if len(bands) == 1:
        kernel(*bands[0], *args)
        return
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor
        _POOL = ThreadPoolExecutor(_WORKERS,
                                   thread_name_prefix="imgio-kernel")
    for f in [_POOL.submit(kernel, *band, *args) for band in bands]:
        f.result()


def _scale(arr: np.ndarray, out: np.ndarray, mode: int, offset: float = 0.0,
           rng: float = 1.0, scale: float = 0.0, shift: int = 0) -> None:
    view, swap = _kernel_view(arr)
    for src, dst in _blocks2(view, out):
        bands = _split_rows(src, dst)
        _run(lambda s, d: _convert.scale2(s, swap, d, mode, offset, rng, scale, shift),
             bands)


def _lossy(src: np.dtype, dst: np.dtype, extra: str) -> None:
    import warnings
    warnings.warn(f"Lossy conversion from {src.name} to {dst.name}. {extra} Convert image "
                  f"to {dst.name} prior to saving to suppress this warning.",
                  UserWarning, stacklevel=3)


def to_uint(image: Any, bitdepth: int | None = 8, out: np.ndarray | None = None) -> np.ndarray:
    """Scale an image to ``uint8`` or ``uint16`` the way imageio does before writing.

    The rules of ``imageio.core.util.image_as_uint``:

    - already ``uint8`` (``bitdepth=8``) or ``uint16`` (16): returned as is;
    - floats whose non-NaN values all lie in [0, 1]: ``x * (2**bitdepth - 1)``,
      rounded half up (imageio adds 0.499999999 and truncates);
    - ``uint16`` to 8 bits, ``uint32`` and ``uint64``: the top bits are kept
      (right shift);
    - everything else (signed ints, ``uint8`` to 16 bits, bool, floats outside
      [0, 1]): ``(x - min) / (max - min)`` scaled to the full range; a constant
      image is cast as is (saturated to the output range).

    Every lossy case issues a ``UserWarning`` ("Lossy conversion from X to Y").
    NaN becomes 0 and is ignored for min/max; +inf becomes the top value, -inf
    0, and both are ignored for min/max (imageio raises on them).  Non-native
    byte order is read as the value it holds.  The work runs in two passes with
    the GIL released and no temporaries beyond ``out``.  See the "Pixel
    conversion (to_uint)" section of ``docs/migration.md`` for the differences
    from imageio.

    Parameters
    ----------
    image : array_like
        Real numeric or bool data, any shape, byte order and strides.
    bitdepth : {8, 16}
        Output ``uint8`` or ``uint16`` (``None``/0 means 8, as in imageio).
    out : numpy.ndarray, optional
        Output of the same shape and the target dtype (native order).  Given
        ``out``, the result is always written into it, even for passthrough.

    Raises
    ------
    DTypeError
        Complex, string, object or structured data.
    ShapeError, ValueError
        ``out`` of the wrong shape or dtype, a bitdepth other than 8 or 16.
    """
    if not bitdepth:
        bitdepth = 8
    if bitdepth not in (8, 16):
        raise ValueError(f"Bitdepth must be either 8 or 16, not {bitdepth!r}")
    out_dtype = np.dtype(np.uint8 if bitdepth == 8 else np.uint16)
    arr = np.asarray(image)
    dt = arr.dtype
    if dt.kind not in "biuf" or dt.fields is not None or dt.subdtype is not None:
        raise DTypeError(f"to_uint needs real numbers or bool, not {dt} (image of shape "
                         f"{arr.shape}); convert complex data with np.abs or .real first")
    native = _native(dt)
    if out is None:
        if native == out_dtype and not _is_swapped(dt):
            return arr  # passthrough, like imageio
        out = np.empty_like(arr, dtype=out_dtype)
    else:
        out = _check_out(out, arr.shape, out_dtype, f"to_uint(bitdepth={bitdepth})")
    if arr.size == 0:
        return out
    top = float(2 ** bitdepth - 1)

    if native == out_dtype:  # same type, maybe byte-swapped: a copy
        _scale(arr, out, _MODE_CLIP)
        return out
    if dt.kind == "b":
        arr = arr.view(np.uint8)
        native = arr.dtype
    if native.kind == "u" and native.itemsize > out_dtype.itemsize:
        bits = 8 * native.itemsize - bitdepth
        _lossy(native, out_dtype, f"Losing {bits} bits of resolution.")
        if native in _KERNEL_KINDS:
            _scale(arr, out, _MODE_SHIFT, shift=bits)
        else:  # pragma: no cover - no such unsigned type today
            np.right_shift(arr, bits, out=out, casting="unsafe")
        return out

    if native not in _KERNEL_KINDS or not _kernel_layout(arr):
        # float16, longdouble, unaligned or odd strides: converted a chunk at a time
        return _to_uint_chunked(arr, out, bitdepth)

    lo, hi, finite, has_nan, pinf, ninf = _minmax(arr)
    _to_uint_apply(arr, out, dt, native, out_dtype, top, lo, hi, finite, has_nan, pinf, ninf)
    return out


def _to_uint_apply(arr: np.ndarray, out: np.ndarray, dt: np.dtype, native: np.dtype,
                   out_dtype: np.dtype, top: float, lo: Any, hi: Any, finite: bool,
                   has_nan: bool, pinf: bool, ninf: bool,
                   chunks: Iterable[tuple[np.ndarray, np.ndarray]] | None = None) -> None:
    """Pick the rule from the min/max pass and run the scaling pass."""
    notes = []
    if has_nan:
        notes.append("NaN written as 0.")
    if pinf or ninf:
        notes.append("+-inf saturated.")
    note = (" " + " ".join(notes)) if notes else ""
    src_name = dt if dt.kind == "b" else native
    if dt.kind == "f" and finite and not (pinf or ninf) and float(lo) >= 0 and float(hi) <= 1:
        _lossy(src_name, out_dtype, "Range [0, 1]." + note)
        args: tuple = (_MODE_UNIT, 0.0, 1.0, top)
    elif not finite or lo == hi:
        # constant (or no finite values): cast as is, saturated
        if finite and not (0 <= float(lo) <= top):
            _lossy(src_name, out_dtype, f"Value {lo} clipped to [0, {top:.0f}]." + note)
        elif notes:
            _lossy(src_name, out_dtype, note.strip())
        args = (_MODE_CLIP, 0.0, 1.0, 1.0)
    else:
        if native.kind == "f":
            with np.errstate(over="ignore"):
                rng = float(hi - lo)  # in the input's precision, exactly as imageio
            if not np.isfinite(rng):  # float32 range overflow: imageio gives all 0
                rng = float(hi) - float(lo)
        else:
            rng = float(int(hi) - int(lo))  # exact (imageio's can overflow)
        _lossy(src_name, out_dtype, f"Range [{lo}, {hi}]." + note)
        args = (_MODE_RANGE, float(lo), rng, top)
    if chunks is None:
        _scale(arr, out, *args)
    else:
        for src, dst in chunks:
            _scale(src, dst, *args)


def _kernel_layout(arr: np.ndarray) -> bool:
    """Whether the numeric kernels can walk ``arr`` in place (aligned items)."""
    return arr.flags.aligned and all(st % arr.itemsize == 0 for st in arr.strides)


def _to_uint_chunked(arr: np.ndarray, out: np.ndarray, bitdepth: int) -> np.ndarray:
    """``to_uint`` on 4 MiB aligned copies: float16 and longdouble (as float32/64),
    and arrays whose items are not aligned."""
    native = _native(arr.dtype)
    if native in _KERNEL_KINDS:
        work = native
    else:
        work = np.dtype(np.float32 if arr.dtype.itemsize <= 4 else np.float64)
    lo = hi = None
    finite = has_nan = pinf = ninf = False
    for src, _ in _row_chunks(arr, out):
        c = _minmax(src.astype(work))
        if c[2]:
            lo = c[0] if lo is None else min(lo, c[0])
            hi = c[1] if hi is None else max(hi, c[1])
        finite |= c[2]
        has_nan |= c[3]
        pinf |= c[4]
        ninf |= c[5]
    if finite:  # min/max in the input's own type, for imageio's range arithmetic
        lo, hi = native.type(lo), native.type(hi)
    chunks = ((src.astype(work), dst) for src, dst in _row_chunks(arr, out))
    _to_uint_apply(arr, out, arr.dtype, native, out.dtype, float(2 ** bitdepth - 1),
                   lo, hi, finite, has_nan, pinf, ninf, chunks=chunks)
    return out
