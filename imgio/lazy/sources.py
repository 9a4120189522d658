"""Where lazy reads come from: picklable recipes that reopen a resource.

A :class:`PluginSource` names one ndimage of one resource (uri, plugin name,
``index`` and selection keywords) with the shape, dtype and native chunks the
plugin reported.  It never holds an open file: each process reopens the
resource through :func:`imgio.core.imopen.imopen` and keeps the plugin in a
small LRU cache (:data:`HANDLE_CACHE_SIZE` plugins, keyed by uri, plugin and
the file's modification time and size; safe with threads, one more plugin of
a resource opened when every cached one is busy, reset after a fork).  Reads go through the plugin contract only: ``read_region(box)``.

:class:`StackSource` stacks sources of one shape along a new first axis
(``index=...`` of formats whose batch the plugin reads only whole, e.g. the
frames of an animation).
"""
from __future__ import annotations

import atexit
import collections
import contextlib
import os
import threading
from typing import Any

import numpy as np

from ..core.imopen import imopen
from ..core.limits import check_nbytes
from ..errors import CorruptFileError, ShapeError

__all__ = ["PluginSource", "StackSource", "clear_handle_cache", "HANDLE_CACHE_SIZE"]

#: how many open plugins each process keeps for lazy reads
HANDLE_CACHE_SIZE = 16


def _stamp(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:  # a glob pattern
        return None
    return st.st_mtime_ns, st.st_size


class _Entry:
    __slots__ = ("plugin", "users", "evicted")

    def __init__(self, plugin):
        self.plugin = plugin
        self.users = 0
        self.evicted = False

    def close(self) -> None:
        try:
            self.plugin.close()
        except Exception:  # a plugin that fails to close must not break a read
            pass


class _HandleCache:
    """LRU of open plugins, several per resource so threads read in parallel.

    A plugin serializes its own calls, so a thread that finds every cached
    plugin of its resource busy opens another one (up to one per CPU).  One
    evicted while another thread reads from it is closed when that thread is
    done; a forked child forgets the parent's.
    """

    def __init__(self, size: int):
        self.size = size
        self.per_key = max(1, os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._entries: collections.OrderedDict = collections.OrderedDict()
        self._pid = os.getpid()

    def _check_pid(self) -> None:
        if self._pid != os.getpid():
            self._after_fork()

    def _take(self, key) -> "_Entry | None":
        """An idle cached plugin of ``key`` (or a busy one when no more may open)."""
        group = self._entries.get(key)
        if not group:
            return None
        self._entries.move_to_end(key)
        idle = [e for e in group if e.users == 0]
        if idle:
            entry = idle[0]
        elif len(group) >= self.per_key:
            entry = min(group, key=lambda e: e.users)
        else:
            return None
        entry.users += 1
        return entry

    @contextlib.contextmanager
    def use(self, source: "PluginSource"):
        key = source.handle_key()
        with self._lock:
            self._check_pid()
            entry = self._take(key)
        if entry is None:
            entry = _Entry(source.open())  # slow: outside the lock
            doomed = []
            with self._lock:
                self._entries.setdefault(key, []).append(entry)
                self._entries.move_to_end(key)
                entry.users += 1
                while len(self) > max(1, self.size) and len(self._entries) > 1:
                    old_key = next(iter(self._entries))
                    for old in self._entries.pop(old_key):
                        old.evicted = True
                        if old.users == 0:
                            doomed.append(old)
            for old in doomed:
                old.close()
        try:
            yield entry.plugin
        finally:
            with self._lock:
                entry.users -= 1
                done = entry.evicted and entry.users == 0
            if done:
                entry.close()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._entries = collections.OrderedDict()
        self._pid = os.getpid()

    def clear(self) -> None:
        with self._lock:
            self._check_pid()
            entries = [e for group in self._entries.values() for e in group]
            self._entries.clear()
        for entry in entries:
            entry.evicted = True
            if entry.users == 0:
                entry.close()

    def __len__(self) -> int:
        return sum(len(group) for group in self._entries.values())


_HANDLES = _HandleCache(HANDLE_CACHE_SIZE)
atexit.register(_HANDLES.clear)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_HANDLES._after_fork)


def clear_handle_cache() -> None:
    """Close every resource this process keeps open for lazy reads."""
    _HANDLES.clear()


def _boxed(box) -> tuple[slice, ...]:
    return tuple(slice(int(a), int(b)) for a, b in box)


class PluginSource:
    """One ndimage of a resource, read by region through its plugin.

    Parameters
    ----------
    uri : str
        A file, folder or glob on disk.
    plugin : str
        The plugin's registry name (what :func:`imopen` chose).
    index, selection
        What ``read(index=index, **selection)`` returns.
    shape, dtype, axes
        From ``plugin.properties``.
    native : tuple of int or None
        ``plugin.chunks``; None: the plugin reads the ndimage only whole.
    """

    def __init__(self, uri: str, plugin: str, index: Any, selection: dict, shape, dtype,
                 axes: str | None = None, native: tuple | None = None,
                 storage_options: dict | None = None):
        self.path = os.fspath(uri)
        self.storage_options = storage_options  # for an fsspec URL
        self.plugin = plugin
        self.index = index
        self.selection = dict(selection)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.axes = axes
        self.whole = native is None
        self.native = self.shape if native is None else tuple(int(n) for n in native)
        self.stamp = _stamp(self.path)

    def handle_key(self) -> tuple:
        return (self.plugin, self.path, _stamp(self.path), repr(self.storage_options))

    def token(self) -> tuple:
        return ("plugin", self.plugin, self.path, self.stamp, repr(self.storage_options),
                repr(self.index),
                tuple(sorted((k, repr(v)) for k, v in self.selection.items())),
                self.shape, self.dtype.str)

    def describe(self) -> str:
        text = f"{self.plugin}:{self.path}"
        if self.index is not None:
            text += f" index {self.index!r}"
        if self.selection:
            text += " " + " ".join(f"{k}={v!r}" for k, v in sorted(self.selection.items()))
        return text

    def open(self):
        remote = {"storage_options": self.storage_options} if self.storage_options else {}
        plugin = imopen(self.path, "r", plugin=self.plugin, **remote)
        try:
            props = plugin.properties(index=self.index, **self.selection)
        except NotImplementedError:  # nothing to compare: read_box checks each region
            return plugin
        except BaseException:
            plugin.close()
            raise
        if tuple(props.shape) != self.shape or np.dtype(props.dtype) != self.dtype:
            plugin.close()
            raise CorruptFileError(
                f"{self.path}: expected {self.shape} {self.dtype}, found {tuple(props.shape)} "
                f"{props.dtype}; a resource read lazily must not change.")
        return plugin

    def read_box(self, box, out: np.ndarray | None = None) -> np.ndarray:
        """``read(...)[box]`` for ``box`` = ``((start, stop), ...)``."""
        with _HANDLES.use(self) as plugin:
            data = plugin.read_region(_boxed(box), index=self.index, out=out, **self.selection)
        shape = tuple(b - a for a, b in box)
        if data.shape != shape or data.dtype != self.dtype:
            raise ShapeError(f"{self.path}: expected a region of shape {shape} {self.dtype}, "
                             f"the {self.plugin} plugin gave {data.shape} {data.dtype}.")
        return data


class StackSource:
    """Sources of one shape and dtype stacked along a new first axis."""

    def __init__(self, children: list, axes: str | None = None):
        if not children:
            raise ShapeError("Nothing to stack: no images.")
        first = children[0]
        for c in children[1:]:
            if c.shape != first.shape or c.dtype != first.dtype:
                raise ShapeError(f"Cannot stack {first.describe()} ({first.shape} {first.dtype}) "
                                 f"with {c.describe()} ({c.shape} {c.dtype}): they differ.")
        self.children = list(children)
        self.path = first.path
        self.shape = (len(children),) + first.shape
        self.dtype = first.dtype
        self.axes = axes
        self.whole = False
        self.native = (1,) + tuple(first.native)

    def token(self) -> tuple:
        return ("stack",) + tuple(c.token() for c in self.children)

    def describe(self) -> str:
        n = len(self.children)
        return f"stack of {n} image{'s' * (n != 1)} from {self.children[0].describe()}"

    def read_box(self, box, out: np.ndarray | None = None) -> np.ndarray:
        (a, b), rest = box[0], tuple(box[1:])
        shape = (b - a,) + tuple(e - s for s, e in rest)
        if out is None:
            check_nbytes(shape, self.dtype, self.path)
            out = np.empty(shape, self.dtype)
        for i in range(a, b):
            self.children[i].read_box(rest, out=out[i - a])
        return out
