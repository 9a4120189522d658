"""The guard against files that declare more pixels than can be read.

A 100-byte file may claim 10**12 pixels.  Before an eager read allocates,
:func:`check_nbytes` compares the declared size with a limit and raises
:class:`~imgio.errors.ImageTooLargeError` (an ``OSError`` and a
``MemoryError``) naming the file.  Like Pillow's decompression-bomb guard the
limit is configurable:

* per call: ``imgio.v3.imread(uri, max_bytes=...)`` (``None``: the default,
  ``False`` or ``0``: no limit);
* per process: ``imgio.core.limits.MAX_BYTES = ...`` or the environment
  variable ``IMGIO_MAX_BYTES`` (bytes; 0 for no limit);
* default: the machine's physical memory (a larger eager read cannot succeed;
  use ``mmap=True``, ``imiter`` or ``imgio.lazy``/``imgio.to_dask`` instead).
"""
from __future__ import annotations

import functools
import math
import os

import numpy as np

from ..errors import ImageTooLargeError

__all__ = ["MAX_BYTES", "max_bytes", "check_nbytes"]

#: process-wide limit in bytes (``None``: environment variable, else physical memory)
MAX_BYTES: int | None = None


@functools.lru_cache(maxsize=1)
def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def max_bytes(override=None) -> float:
    """The limit in force: ``override``, else ``MAX_BYTES``, ``$IMGIO_MAX_BYTES``, RAM."""
    if override is not None:
        return float(override) if override else math.inf
    if MAX_BYTES is not None:
        return float(MAX_BYTES) if MAX_BYTES else math.inf
    data = getattr(os.environ, "_data", None)
    if _ENV_KEY is not None and type(data) is dict and _ENV_KEY not in data:
        return _ram_limit()  # the variable is unset: skip os.environ.get's KeyError
    env = os.environ.get("IMGIO_MAX_BYTES")
    if env:
        try:
            value = float(env)
        except ValueError:
            raise ValueError(f"IMGIO_MAX_BYTES must be a number of bytes, not {env!r}") from None
        return value if value > 0 else math.inf
    return _ram_limit()


def _ram_limit() -> float:
    ram = _physical_memory()
    return float(ram) if ram else math.inf


try:  # how os.environ stores the variable's name (CPython: bytes on POSIX)
    _ENV_KEY = os.environ.encodekey("IMGIO_MAX_BYTES")
except Exception:  # pragma: no cover - other interpreters
    _ENV_KEY = None


def check_nbytes(shape, dtype, filename: str, limit=None) -> None:
    """Raise :class:`ImageTooLargeError` if ``shape`` x ``dtype`` exceeds the limit."""
    cap = max_bytes(limit)
    if cap == math.inf:
        return
    itemsize = dtype.itemsize if isinstance(dtype, np.dtype) else np.dtype(dtype).itemsize
    nbytes = math.prod(shape) * itemsize
    if nbytes > cap:
        raise ImageTooLargeError(
            f"{filename} declares an image of shape {tuple(shape)} and dtype "
            f"{np.dtype(dtype)} ({nbytes / 2**30:.3g} GiB), more than the limit of "
            f"{cap / 2**30:.3g} GiB. If the file is genuine, read it lazily "
            f"(imgio.lazy, imiter, mmap=True) or raise the limit with max_bytes=."
        )
