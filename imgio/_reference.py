"""Plain NumPy twins of the kernels in :mod:`imgio._kernels`.

These are the slow, obviously-correct versions the tests compare the Cython
kernels with, and the baselines the benchmarks measure them against.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

__all__ = ["stack_frames", "copy_frame", "to_uint"]


def copy_frame(dst: np.ndarray, src: Any) -> None:
    """Twin of :func:`imgio._kernels.copy_frame`."""
    dst[...] = src


def stack_frames(frames: Iterable[Any], out: np.ndarray | None = None) -> np.ndarray:
    """Twin of :func:`imgio._kernels.stack_frames`: a list and ``np.stack``."""
    arrays = [np.asarray(f) for f in frames]
    if out is not None:
        return np.stack(arrays, out=out[: len(arrays)]) if arrays else out[:0]
    return np.stack(arrays)


# -- pixel-buffer conversion -------------------------------------------------------
def to_uint(image: Any, bitdepth: int | None = 8, out: np.ndarray | None = None) -> np.ndarray:
    """Twin of :func:`imgio._kernels.to_uint` (same rules, whole-array NumPy, no warnings)."""
    bitdepth = bitdepth or 8
    out_dtype = np.dtype(np.uint8 if bitdepth == 8 else np.uint16)
    top = 2.0 ** bitdepth - 1
    im = np.asarray(image)
    was_bool = im.dtype.kind == "b"
    if was_bool:
        im = im.astype(np.uint8)
    im = im.astype(im.dtype.newbyteorder("="))
    if im.dtype == out_dtype and not was_bool:
        res = im.copy()
    elif im.dtype.kind == "u" and im.dtype.itemsize > out_dtype.itemsize:
        res = np.right_shift(im, 8 * im.dtype.itemsize - bitdepth).astype(out_dtype)
    elif im.size == 0:
        res = np.zeros(im.shape, out_dtype)
    else:
        work = im.astype(np.float32) if im.dtype == np.float16 else im
        finite = work[np.isfinite(work)] if work.dtype.kind == "f" else work
        x = im.astype(np.float64)
        if finite.size and work.dtype.kind == "f" and finite.size == work[~np.isnan(work)].size \
                and finite.min() >= 0 and finite.max() <= 1:
            x = x * top + 0.499999999
        elif finite.size and finite.min() != finite.max():
            lo, hi = im.dtype.type(finite.min()), im.dtype.type(finite.max())
            if im.dtype.kind == "f":
                with np.errstate(over="ignore"):
                    rng = float(hi - lo)
                if not np.isfinite(rng):
                    rng = float(hi) - float(lo)
            else:
                rng = float(int(hi) - int(lo))
            x = (x - float(lo)) / rng * top + 0.499999999
        x = np.nan_to_num(x, nan=0.0, posinf=top, neginf=0.0)
        res = np.trunc(np.clip(x, 0, top)).astype(out_dtype)
    if out is not None:
        out[...] = res
        return out
    return res
