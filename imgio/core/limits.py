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
* default: three quarters of the memory actually available to the process
  (the smallest of the kernel's ``MemAvailable``, the cgroup's free memory and
  the address-space limit ``RLIMIT_AS``), re-read at most once a second, so a
  declaration of about the machine's size ends in
  :class:`~imgio.errors.ImageTooLargeError` naming the file, never in a bare
  ``MemoryError`` or the kernel's out-of-memory killer.  A larger eager read
  cannot succeed anyway: use ``mmap=True``, ``imiter`` or
  ``imgio.lazy``/``imgio.to_dask`` instead.

See ``docs/limits.md`` for what the guard checks in each plugin.
"""
from __future__ import annotations

import functools
import math
import os
import time

import numpy as np

from ..errors import ImageTooLargeError

__all__ = ["MAX_BYTES", "HEADROOM", "max_bytes", "check_nbytes", "available_memory"]

#: process-wide limit in bytes (``None``: environment variable, else available memory)
MAX_BYTES: int | None = None


@functools.lru_cache(maxsize=1)
def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def max_bytes(override=None) -> float:
    """The limit in force: ``override``, else ``MAX_BYTES``, ``$IMGIO_MAX_BYTES``, else
    :data:`HEADROOM` of :func:`available_memory`."""
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


#: share of the available memory an eager read may take by default
HEADROOM = 0.75

_AVAILABLE_CACHE = [-math.inf, math.inf]  # [time read, bytes]


def _read_int(path: str, key: str | None = None) -> int | None:
    try:
        with open(path, "rb") as fh:
            text = fh.read(8192).decode("ascii", "replace")
    except OSError:
        return None
    if key is None:
        word = text.split()[0] if text.split() else ""
        return int(word) if word.isdigit() else None
    for line in text.splitlines():
        if line.startswith(key):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * (1024 if line.rstrip().endswith("kB") else 1)
    return None


def available_memory() -> float:
    """Bytes an allocation can take now: ``MemAvailable``, cgroup and ``RLIMIT_AS`` bounds.

    Falls back to physical memory where ``/proc`` is missing; ``inf`` if nothing is known.
    """
    found = []
    avail = _read_int("/proc/meminfo", "MemAvailable:")
    if avail is None:
        avail = _physical_memory()
    if avail:
        found.append(avail)
    cg_max = _read_int("/sys/fs/cgroup/memory.max")  # cgroup v2 ("max": no limit)
    if cg_max:
        used = _read_int("/sys/fs/cgroup/memory.current") or 0
        found.append(max(cg_max - used, 0))
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY and soft > 0:
            vm = _read_int("/proc/self/statm")  # pages of address space in use
            used = vm * os.sysconf("SC_PAGE_SIZE") if vm else 0
            found.append(max(soft - used, 0))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not POSIX
        pass
    return float(min(found)) if found else math.inf


def _ram_limit() -> float:
    now = time.monotonic()
    if now - _AVAILABLE_CACHE[0] > 1.0:
        _AVAILABLE_CACHE[:] = [now, available_memory() * HEADROOM]
    return _AVAILABLE_CACHE[1]


try:  # how os.environ stores the variable's name (CPython: bytes on POSIX)
    _ENV_KEY = os.environ.encodekey("IMGIO_MAX_BYTES")
except Exception:  # pragma: no cover - other interpreters
    _ENV_KEY = None


def check_nbytes(shape, dtype, filename: str, limit=None, what: str = "an image") -> None:
    """Raise :class:`ImageTooLargeError` if ``shape`` x ``dtype`` exceeds the limit."""
    cap = max_bytes(limit)
    if cap == math.inf:
        return
    itemsize = dtype.itemsize if isinstance(dtype, np.dtype) else np.dtype(dtype).itemsize
    nbytes = math.prod(int(s) for s in shape) * itemsize
    if nbytes > cap:
        raise ImageTooLargeError(
            f"{filename} declares {what} of shape {tuple(shape)} and dtype "
            f"{np.dtype(dtype)} ({_size(nbytes)}), more than the limit of "
            f"{_size(cap)} ({_source(limit)}). If the file is genuine, read it lazily "
            f"(imgio.lazy, imiter, mmap=True) or raise the limit with max_bytes=."
        )


def _size(nbytes: float) -> str:
    if nbytes >= 2**30:
        return f"{nbytes / 2**30:.3g} GiB"
    if nbytes >= 2**20:
        return f"{nbytes / 2**20:.3g} MiB"
    return f"{int(nbytes):,} bytes"


def _source(override) -> str:
    if override is not None:
        return "max_bytes="
    if MAX_BYTES is not None:
        return "imgio.core.limits.MAX_BYTES"
    if os.environ.get("IMGIO_MAX_BYTES"):
        return "IMGIO_MAX_BYTES"
    return f"{HEADROOM:.0%} of the available memory"
