"""Plain NumPy twins of the kernels in :mod:`imgio._kernels`.

These are the slow, obviously-correct versions the tests compare the Cython
kernels with, and the baselines the benchmarks measure them against.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

__all__ = ["stack_frames", "copy_frame"]


def copy_frame(dst: np.ndarray, src: Any) -> None:
    """Twin of :func:`imgio._kernels.copy_frame`."""
    dst[...] = src


def stack_frames(frames: Iterable[Any], out: np.ndarray | None = None) -> np.ndarray:
    """Twin of :func:`imgio._kernels.stack_frames`: a list and ``np.stack``."""
    arrays = [np.asarray(f) for f in frames]
    if out is not None:
        return np.stack(arrays, out=out[: len(arrays)]) if arrays else out[:0]
    return np.stack(arrays)
