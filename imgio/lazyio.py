"""Larger than memory: lazy arrays and dask arrays over image files.

Three entry points:

* :func:`lazy` returns a :class:`LazyArray`: a picklable, NumPy-like view of
  one ndimage on disk.  Indexing it reads only the pages, chunks or bytes the
  index touches; ``np.asarray(lazy_array)`` reads everything.  No dask needed.
* :func:`to_dask` (and ``imopen(uri, "r").to_dask()``, which calls
  :func:`plugin_to_dask`) returns a ``dask.array.Array`` whose chunks follow
  the file's own layout (TIFF pages, HDF5 chunks, rows of an ``.npy`` file).
* :func:`write_dask` writes a dask array without materialising it: one block
  row (first-axis block) at a time, streamed into the plugin's ``append()``.

The graph of a dask array made here holds a :class:`LazyArray`, which holds
only paths, selections (series index, dataset name), shape and dtype: never
an open file.  It pickles, and each task reopens what it reads through a small
per-process LRU cache of file handles (:data:`HANDLE_CACHE_SIZE` handles,
keyed by path, modification time and size, safe with threads, reset after a
fork).  So the same graph runs on the threaded scheduler and on a
``dask.distributed`` cluster, as long as the workers see the same paths.

Chunks
------
``"native"`` (default)
    The file's own blocks (TIFF pages, HDF5 chunks, planes of an ``.npy`` or
    contiguous HDF5 dataset), merged innermost axis first into chunks of at
    most :data:`NATIVE_CHUNK_BYTES` (64 MiB; less if dask's
    ``array.chunk-size`` is smaller).  For a stack of pages this groups whole
    pages along the first axis.  A folder of slices gets one chunk per file.
``"auto"``
    dask's automatic chunking, aligned to the native blocks.
tuple or int
    As for ``dask.array.from_array`` (``-1`` and ``"auto"`` entries allowed).
dict
    By axis letter of ``improps(...).axes`` (``{"Z": 8}``) or axis number;
    axes left out keep their ``"native"`` chunks.  ``Z``, ``T`` or ``I`` also
    name the one axis of unknown meaning (tifffile's ``Q``) of a plain stack.
"""
from __future__ import annotations

import atexit
import collections
import contextlib
import copy
import math
import os
import threading
from typing import Any

import numpy as np

from .errors import BackendMissingError, CorruptFileError, FormatError, ShapeError

__all__ = ["LazyArray", "lazy", "to_dask", "plugin_to_dask", "write_dask",
           "clear_handle_cache", "NATIVE_CHUNK_BYTES", "HANDLE_CACHE_SIZE"]

#: upper size of a merged "native" chunk
NATIVE_CHUNK_BYTES = 64 * 2**20
#: how many open files each process keeps for lazy reads
HANDLE_CACHE_SIZE = 16


# -- dask, imported only when asked for ---------------------------------------------
def _import_dask_array():
    """``dask.array``, or :class:`BackendMissingError` with the pip command."""
    try:
        import dask.array as da
    except ImportError as exc:
        err = BackendMissingError("dask", "dask", "dask")
        err.args = ("imgio's dask support (to_dask, write_dask, writing dask arrays) "
                    "needs the `dask` package, which is not installed. Install it with "
                    "`pip install imgio[dask]`.",)
        raise err from exc
    return da


# -- the per-process handle cache ------------------------------------------------------
def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


class _Entry:
    __slots__ = ("handle", "closer", "users", "evicted", "lock")

    def __init__(self, handle, closer):
        self.handle = handle
        self.closer = closer
        self.users = 0
        self.evicted = False
        self.lock = threading.RLock()

    def close(self) -> None:
        try:
            self.closer(self.handle)
        except Exception:  # a handle that fails to close must not break a read
            pass


class _HandleCache:
    """LRU of open files, keyed by ``(kind, path, mtime_ns, size)``.

    A handle evicted while another thread still reads from it is closed when
    that thread is done.  After a fork the child forgets (never closes) the
    parent's handles.
    """

    def __init__(self, size: int):
        self.size = size
        self._lock = threading.Lock()
        self._entries: collections.OrderedDict = collections.OrderedDict()
        self._pid = os.getpid()

    def _check_pid(self) -> None:
        if self._pid != os.getpid():
            self._entries = collections.OrderedDict()
            self._pid = os.getpid()

    @contextlib.contextmanager
    def use(self, reader: "_Reader"):
        key = (reader.kind, reader.path) + _stamp(reader.path)
        with self._lock:
            self._check_pid()
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                entry.users += 1
        if entry is None:
            fresh = _Entry(reader.open(), reader.close)  # slow: outside the lock
            doomed = []
            with self._lock:
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._entries[key] = fresh
                    fresh = None
                    while len(self._entries) > max(1, self.size):
                        _, old = self._entries.popitem(last=False)
                        old.evicted = True
                        if old.users == 0:
                            doomed.append(old)
                entry.users += 1
            if fresh is not None:  # another thread opened the same file first
                doomed.append(fresh)
            for old in doomed:
                old.close()
        try:
            if reader.needs_lock:
                with entry.lock:
                    yield entry.handle
            else:
                yield entry.handle
        finally:
            with self._lock:
                entry.users -= 1
                done = entry.evicted and entry.users == 0
            if done:
                entry.close()

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's handles and its (maybe held) lock."""
        self._lock = threading.Lock()
        self._entries = collections.OrderedDict()
        self._pid = os.getpid()

    def clear(self) -> None:
        with self._lock:
            self._check_pid()
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            entry.evicted = True
            if entry.users == 0:
                entry.close()

    def __len__(self) -> int:
        return len(self._entries)


_HANDLES = _HandleCache(HANDLE_CACHE_SIZE)
atexit.register(_HANDLES.clear)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_HANDLES._after_fork)


def clear_handle_cache() -> None:
    """Close every file this process keeps open for lazy reads."""
    _HANDLES.clear()


# -- reading a box from C-contiguous bytes ------------------------------------------------
def _read_contiguous(path: str, offset: int, shape: tuple, file_dtype: np.dtype,
                     box: tuple, fortran: bool = False) -> np.ndarray:
    """The ``box`` (``((start, stop), ...)``) of an array stored raw at ``offset``.

    A box that is one contiguous run of bytes is read straight into the result
    (no memory map, so a worker's resident memory only grows by the result);
    any other box is copied out of a short-lived memory map.
    """
    if fortran:
        out = _read_contiguous(path, offset, shape[::-1], file_dtype, box[::-1])
        return out.transpose()
    out_shape = tuple(b - a for a, b in box)
    # contiguous: single indices, then one partial axis, then full axes
    k = len(shape)
    while k > 0 and box[k - 1] == (0, shape[k - 1]):
        k -= 1
    contiguous = all(b - a == 1 for a, b in box[:max(k - 1, 0)])
    if contiguous:
        start = int(np.ravel_multi_index([a for a, _ in box], shape)) if shape else 0
        out = np.empty(out_shape, file_dtype)
        nbytes = out.nbytes
        with open(path, "rb") as fh:
            fh.seek(offset + start * file_dtype.itemsize)
            got = fh.readinto(memoryview(out.reshape(-1)).cast("B")) if nbytes else 0
        if got != nbytes:
            raise CorruptFileError(f"{path}: the file is truncated (read {got} of "
                                   f"{nbytes} bytes at offset {offset + start * file_dtype.itemsize}).")
        return out
    mm = np.memmap(path, dtype=file_dtype, mode="r", offset=offset, shape=shape)
    try:
        return np.array(mm[tuple(slice(a, b) for a, b in box)])
    finally:
        del mm


# -- readers: picklable recipes, never open files -------------------------------------------
class _Reader:
    """How to read any box of one ndimage: a path and a selection, no handle.

    Subclasses implement :meth:`open`, :meth:`close` and :meth:`read`
    (``read(handle, box) -> ndarray`` of the box's shape and ``self.dtype``).
    """

    kind = ""
    #: whether reads through one handle must be serialised
    needs_lock = False

    def __init__(self, path: str, shape, dtype, axes: str | None = None,
                 native: tuple | None = None):
        self.path = os.fspath(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.axes = axes
        #: the file's own block shape (a TIFF page, an HDF5 chunk ...)
        self.native = tuple(native) if native is not None else self.shape
        self.stamp = _stamp(self.path)

    # what identifies the data (for dask's names)
    def token(self) -> tuple:
        return (self.kind, self.path, self.stamp, self.shape, self.dtype.str) + self.params()

    def params(self) -> tuple:
        return ()

    def describe(self) -> str:
        return f"{self.kind}:{self.path}"

    def open(self):
        return None

    def close(self, handle) -> None:
        pass

    def read(self, handle, box: tuple) -> np.ndarray:
        raise NotImplementedError

    def read_box(self, box: tuple) -> np.ndarray:
        with _HANDLES.use(self) as handle:
            out = self.read(handle, box)
        out = np.asarray(out)
        shape = tuple(b - a for a, b in box)
        if out.shape != shape:
            raise ShapeError(f"{self.path}: expected a block of shape {shape}, the file "
                             f"gave {out.shape}; did the file change since it was opened?")
        if out.dtype != self.dtype:
            out = out.astype(self.dtype)
        return out

    def with_path(self, path: str) -> "_Reader":
        """The same recipe for another file of the same layout (folders)."""
        new = copy.copy(self)
        new.path = os.fspath(path)
        new.stamp = _stamp(new.path)
        return new

    def _changed(self, found: str) -> CorruptFileError:
        return CorruptFileError(
            f"{self.path}: expected {self.shape} {self.dtype}, found {found}; a file read "
            "lazily must not change, and every slice of a folder must match the first.")


class _NpyReader(_Reader):
    """A ``.npy`` file: raw bytes after the header, read or memory-mapped per block."""

    kind = "npy"

    def __init__(self, path: str):
        offset, shape, dtype, fortran = self._header(path)
        native = (shape[:-1] + (1,)) if fortran else ((1,) + shape[1:] if shape else ())
        super().__init__(path, shape, dtype, native=native if shape else ())
        self.offset, self.fortran = offset, fortran

    @staticmethod
    def _header(path):
        from numpy.lib import format as npformat
        with open(path, "rb") as fh:
            version = npformat.read_magic(fh)
            reader = (npformat.read_array_header_1_0 if version == (1, 0)
                      else npformat.read_array_header_2_0)
            shape, fortran, dtype = reader(fh)
            if dtype.hasobject:
                raise FormatError(f"{path}: an object array cannot be read lazily.")
            return fh.tell(), tuple(shape), dtype, fortran

    def params(self):
        return (self.offset, self.fortran)

    def open(self):
        offset, shape, dtype, fortran = self._header(self.path)
        if shape != self.shape or dtype != self.dtype:
            raise self._changed(f"{shape} {dtype}")
        return offset

    def read(self, offset, box):
        return _read_contiguous(self.path, offset, self.shape, self.dtype, box, self.fortran)


def _tifffile_damage() -> tuple:
    """The exceptions tifffile and imagecodecs raise for damaged data."""
    import struct
    import tifffile
    return (tifffile.TiffFileError, ValueError, EOFError, OSError, KeyError, IndexError,
            RuntimeError, struct.error)


class _TiffHandle:
    def __init__(self, tif):
        self.tif = tif
        self.layouts: dict[int, tuple] = {}


class _TiffReader(_Reader):
    """One series of a TIFF file: contiguous bytes, page groups, or the whole series."""

    kind = "tifffile"

    def __init__(self, path: str, series: int = 0, tif=None):
        import tifffile
        own = tif is None
        if own:
            tif = tifffile.TiffFile(path)
        try:
            ser = tif.series[series]
            layout = self._layout(tif, ser)
            kf = ser.keyframe
            shape, pn = tuple(ser.shape), kf.ndim
            if layout[0] == "pages" or (layout[0] == "contiguous" and len(shape) > pn
                                        and shape[len(shape) - pn:] == tuple(kf.shape)):
                native = (1,) * (len(shape) - pn) + tuple(kf.shape)
            elif layout[0] == "contiguous" and len(shape) > 2:
                native = (1,) + shape[1:]
            else:
                native = shape
            super().__init__(path, ser.shape, ser.dtype, axes=ser.axes, native=native)
        finally:
            if own:
                tif.close()
        self.series = series

    def params(self):
        return (self.series,)

    def describe(self):
        return f"tifffile:{self.path} series {self.series}"

    @staticmethod
    def _layout(tif, ser) -> tuple:
        """``("contiguous", offset, file_dtype, paged)``, ``("pages", page_ndim, True)``
        or ``("whole", False)``."""
        kf = ser.keyframe
        pn = kf.ndim
        shape = tuple(ser.shape)
        paged = (len(shape) >= pn and shape[len(shape) - pn:] == tuple(kf.shape)
                 and math.prod(shape[:len(shape) - pn]) == len(ser.pages))
        try:
            offset = ser.dataoffset
        except Exception:
            offset = None
        if offset is not None and ser.dtype.kind in "uifc" and ser.dtype != np.bool_:
            return ("contiguous", int(offset), np.dtype(tif.byteorder + ser.dtype.char), paged)
        if paged:
            return ("pages", pn, True)
        return ("whole", False)

    def open(self):
        import tifffile
        tif = tifffile.TiffFile(self.path)
        tif.filehandle.set_lock(True)
        return _TiffHandle(tif)

    def close(self, handle):
        handle.tif.close()

    def read(self, handle, box):
        tif = handle.tif
        lock = tif.filehandle.lock
        with lock:
            layout = handle.layouts.get(self.series)
            if layout is None:
                if self.series >= len(tif.series):
                    raise self._changed(f"{len(tif.series)} series")
                ser = tif.series[self.series]
                if tuple(ser.shape) != self.shape or ser.dtype != self.dtype:
                    raise self._changed(f"{ser.shape} {ser.dtype}")
                layout = handle.layouts[self.series] = self._layout(tif, ser)
            ser = tif.series[self.series]
        slices = tuple(slice(a, b) for a, b in box)
        if layout[0] == "contiguous":
            return _read_contiguous(self.path, layout[1], self.shape, layout[2], box)
        if layout[0] == "whole":  # tifffile loads pages as it goes: one reader at a time
            with lock:
                return ser.asarray(maxworkers=1)[slices]
        pn = layout[1]
        lead = self.shape[:len(self.shape) - pn]
        numbers = np.arange(math.prod(lead), dtype=np.intp).reshape(lead)[slices[:len(lead)]]
        page_slices = slices[len(lead):]
        page_box = tuple(b - a for a, b in box[len(lead):])
        out = np.empty((numbers.size,) + page_box, self.dtype)
        try:
            with lock:  # tifffile loads pages from the shared file position
                pages = [ser.pages[int(k)] for k in numbers.ravel()]
            for i, page in enumerate(pages):
                if page is None:  # a missing page in an OME series reads as zeros
                    out[i] = 0
                    continue
                out[i] = page.asarray(lock=lock, maxworkers=1)[page_slices]
        except (ShapeError, CorruptFileError):
            raise
        except (_tifffile_damage()) as exc:  # tifffile's and imagecodecs' decode errors
            raise CorruptFileError(
                f"{self.path}: series {self.series}, pages {numbers.ravel()[0]}.."
                f"{numbers.ravel()[-1]} cannot be decoded: {exc}") from exc
        return out.reshape(numbers.shape + page_box)


class _Hdf5Reader(_Reader):
    """One HDF5 dataset, read with h5py; native blocks are the dataset's chunks.

    ``crop`` reads only the leading corner of the dataset (Imaris pads its
    blocks), ``view`` reinterprets the stored dtype (BigDataViewer's int16
    holds uint16 pixels).
    """

    kind = "hdf5"
    needs_lock = False  # h5py serialises calls itself

    def __init__(self, path: str, dataset: str, dset=None, crop=None, view=None, axes=None):
        import h5py
        own = dset is None
        fh = h5py.File(path, "r") if own else None
        try:
            if own:
                dset = fh[dataset]
            shape = tuple(crop) if crop is not None else tuple(dset.shape)
            dtype = np.dtype(view) if view is not None else dset.dtype
            if dset.chunks is not None:
                native = dset.chunks
            else:
                native = (1,) + tuple(shape[1:]) if len(shape) > 2 else tuple(shape)
            self.file_shape, self.file_dtype = tuple(dset.shape), dset.dtype
        finally:
            if own:
                fh.close()
        super().__init__(path, shape, dtype, axes=axes, native=native)
        self.dataset, self.view = dataset, None if view is None else np.dtype(view)

    def params(self):
        return (self.dataset, None if self.view is None else self.view.str)

    def describe(self):
        return f"hdf5:{self.path}:{self.dataset}"

    def open(self):
        import h5py
        return h5py.File(self.path, "r")

    def close(self, handle):
        handle.close()

    def read(self, handle, box):
        dset = handle.get(self.dataset)
        if dset is None or dset.shape != self.file_shape or dset.dtype != self.file_dtype:
            raise self._changed("no such dataset" if dset is None else f"{dset.shape} {dset.dtype}")
        out = np.empty(tuple(b - a for a, b in box), self.file_dtype)
        if out.size:
            if dset.ndim == 0:
                out[...] = dset[()]
            else:
                dset.read_direct(out, source_sel=tuple(slice(a, b) for a, b in box))
        return out.view(self.view) if self.view is not None else out


class _PluginReader(_Reader):
    """Any other format: each block reads the whole ndimage through its plugin."""

    kind = "plugin"

    def __init__(self, path: str, shape, dtype, axes=None, *, plugin: str | None = None,
                 index: Any = None, kwargs: dict | None = None):
        super().__init__(path, shape, dtype, axes=axes)
        self.plugin, self.index, self.kwargs = plugin, index, dict(kwargs or {})

    def params(self):
        return (self.plugin, repr(self.index), tuple(sorted((k, repr(v)) for k, v in self.kwargs.items())))

    def describe(self):
        return f"{self.plugin or 'auto'}:{self.path}" + ("" if self.index is None else f" index {self.index!r}")

    def read(self, handle, box):
        from .v3 import imread
        data = imread(self.path, index=self.index, plugin=self.plugin, **self.kwargs)
        if data.shape != self.shape:
            raise self._changed(f"{data.shape} {data.dtype}")
        return data[tuple(slice(a, b) for a, b in box)]


class _StackReader(_Reader):
    """Several ndimages of one shape stacked along a new first axis (folders, index=...)."""

    kind = "stack"

    def __init__(self, children: list, axes: str | None = None, shape=None, dtype=None):
        if not children:
            raise ShapeError("Nothing to stack: no images.")
        first = children[0]
        for c in children[1:]:
            if c.shape != first.shape or c.dtype != first.dtype:
                raise ShapeError(f"Cannot stack {first.describe()} ({first.shape} {first.dtype}) "
                                 f"with {c.describe()} ({c.shape} {c.dtype}): they differ.")
        self.children = list(children)
        self.path = first.path
        self.shape = (len(children),) + first.shape if shape is None else tuple(shape)
        self.dtype = first.dtype if dtype is None else np.dtype(dtype)
        if math.prod(self.shape) != len(children) * math.prod(first.shape):
            raise ShapeError(f"Cannot stack {len(children)} images of shape {first.shape} "
                             f"as {self.shape}.")
        self.axes = axes
        self.native = (1,) + first.shape
        self.stamp = None

    def token(self):
        return ("stack",) + tuple(c.token() for c in self.children)

    def describe(self):
        n = len(self.children)
        return f"stack of {n} image{'s' * (n != 1)} from {self.children[0].describe()}"

    def read_box(self, box):
        (a, b), rest = box[0], box[1:]
        out = np.empty((b - a,) + tuple(e - s for s, e in rest), self.dtype)
        for i in range(a, b):
            out[i - a] = self.children[i].read_box(rest)
        return out


class _FrameReader(_Reader):
    """Image ``i`` along the first axis of another reader (``index=i`` of a series)."""

    kind = "frame"

    def __init__(self, child: _Reader, i: int):
        self.child, self.i = child, int(i)
        self.path, self.dtype = child.path, child.dtype
        self.shape, self.native = child.shape[1:], tuple(child.native[1:])
        self.axes = child.axes[1:] if child.axes else None
        self.stamp = None

    def token(self):
        return ("frame", self.i, self.child.token())

    def describe(self):
        return f"{self.child.describe()} image {self.i}"

    def read_box(self, box):
        return self.child.read_box(((self.i, self.i + 1),) + tuple(box))[0]


# -- LazyArray ------------------------------------------------------------------------------
def _normalize_key(key: Any, shape: tuple) -> tuple[tuple, tuple]:
    """``(box, post, out_shape)``: read ``box`` then index it with ``post``."""
    if not isinstance(key, tuple):
        key = (key,)
    n_ell = sum(k is Ellipsis for k in key)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    n_real = sum(k is not None and k is not Ellipsis for k in key)
    if n_real > len(shape):
        raise IndexError(f"too many indices for array: array is {len(shape)}-dimensional, "
                         f"but {n_real} were indexed")
    expanded = []
    for k in key:
        if k is Ellipsis:
            expanded.extend([slice(None)] * (len(shape) - n_real))
        else:
            expanded.append(k)
    expanded.extend([slice(None)] * (len(shape) - sum(k is not None for k in expanded)))
    box, post = [], []
    n_arrays = 0
    axis = 0
    for k in expanded:
        if k is None:
            post.append(None)
            continue
        n = shape[axis]
        if isinstance(k, (slice,)):
            start, stop, step = k.indices(n)
            length = len(range(start, stop, step))
            if length == 0:
                box.append((0, 0))
                post.append(slice(None))
            elif step > 0:
                box.append((start, start + (length - 1) * step + 1))
                post.append(slice(None, None, step) if step != 1 else slice(None))
            else:
                lo = start + (length - 1) * step
                box.append((lo, start + 1))
                post.append(slice(None, None, step))
        elif isinstance(k, (bool, np.bool_)):
            raise IndexError("a boolean scalar is not a valid LazyArray index")
        elif isinstance(k, (int, np.integer)) or (isinstance(k, np.ndarray) and k.ndim == 0
                                                  and k.dtype.kind in "iu"):
            i = int(k)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}")
            i %= n
            box.append((i, i + 1))
            post.append(0)
        else:
            arr = np.asarray(k)
            if arr.dtype == bool:
                if arr.shape != (n,):
                    raise IndexError(f"boolean index of shape {arr.shape} does not match "
                                     f"axis {axis} of size {n}")
                arr = np.flatnonzero(arr)
            if arr.ndim != 1 or arr.dtype.kind not in "iu":
                raise IndexError("LazyArray supports integers, slices, `...`, None and "
                                 f"1-D integer or boolean arrays as indices, not {k!r}")
            n_arrays += 1
            if n_arrays > 1:
                raise IndexError("LazyArray supports one array index at a time; index the "
                                 "result again for more")
            if arr.size and (arr.min() < -n or arr.max() >= n):
                raise IndexError(f"index out of bounds for axis {axis} with size {n}")
            arr = arr % n if arr.size else arr.astype(np.intp)
            if arr.size:
                lo, hi = int(arr.min()), int(arr.max()) + 1
                box.append((lo, hi))
                post.append(arr - lo)
            else:
                box.append((0, 0))
                post.append(arr)
        axis += 1
    return tuple(box), tuple(post)


class LazyArray:
    """A NumPy-like ndimage on disk, read only where indexed.

    Made by :func:`lazy`.  It holds a path and a selection, never an open
    file, so it pickles (and ships to dask workers) cheaply.

    Attributes
    ----------
    shape, dtype, ndim, size, nbytes
        As for the array ``imread`` returns with the same arguments.
    axes : str or None
        One letter per axis when the format records it.
    chunks : tuple of int
        The merged native block shape (what ``to_dask(chunks="native")`` uses).

    Examples
    --------
    >>> import numpy as np, imgio, imgio.v3 as iio
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "s.tif")
    >>> iio.imwrite(path, np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    >>> arr = imgio.lazy(path)
    >>> arr.shape, arr[1, 2].tolist()
    ((2, 3, 4), [20, 21, 22, 23])
    """

    __array_priority__ = 10

    def __init__(self, reader: _Reader, axes: str | None = None):
        self._reader = reader
        self.axes = axes if axes is not None else reader.axes
        if self.axes is not None and len(self.axes) != len(reader.shape):
            self.axes = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self._reader.shape

    @property
    def dtype(self) -> np.dtype:
        return self._reader.dtype

    @property
    def ndim(self) -> int:
        return len(self._reader.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def path(self) -> str:
        return self._reader.path

    @property
    def native_blocks(self) -> tuple[int, ...]:
        """The file's own block shape (one TIFF page, one HDF5 chunk ...)."""
        return tuple(min(max(b, 1), s) if s else 1 for b, s in zip(self._reader.native, self.shape))

    @property
    def chunks(self) -> tuple[int, ...]:
        return _merge_native(self.shape, self.native_blocks, self.dtype.itemsize,
                             _native_target(), folder=isinstance(self._reader, _StackReader))

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, key) -> np.ndarray:
        box, post = _normalize_key(key, self.shape)
        if any(b <= a for a, b in box):
            data = np.empty(tuple(b - a for a, b in box), self.dtype)
        else:
            data = self._reader.read_box(box)
        if any(not (isinstance(p, slice) and p == slice(None)) for p in post):
            data = data[post]
            if not isinstance(data, np.ndarray):  # a 0-d result comes back as a scalar
                data = np.asarray(data)
        return data

    def __array__(self, dtype=None, copy=None):
        data = self[...]
        if dtype is not None and np.dtype(dtype) != data.dtype:
            data = data.astype(dtype)
        return data

    def read(self) -> np.ndarray:
        """Every pixel, as a NumPy array."""
        return self[...]

    def to_dask(self, chunks: Any = "native"):
        """This array as a ``dask.array.Array`` (see the module docstring for ``chunks``)."""
        return _dask_from_lazy(self, chunks)

    def __dask_tokenize__(self):
        return ("imgio.LazyArray", self._reader.token())

    def __repr__(self) -> str:
        axes = f", axes={self.axes!r}" if self.axes else ""
        return (f"<imgio.LazyArray shape={self.shape}, dtype={self.dtype}{axes}, "
                f"{_human(self.nbytes)}, chunks={self.chunks} from {self._reader.describe()}>")


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# -- chunk plans ------------------------------------------------------------------------
def _native_target() -> int:
    target = NATIVE_CHUNK_BYTES
    try:
        import dask
        from dask.utils import parse_bytes
        configured = dask.config.get("array.chunk-size", None)
        if configured is not None:
            target = min(target, parse_bytes(configured))
    except ImportError:
        pass
    return target


def _merge_native(shape, block, itemsize, target, folder=False) -> tuple[int, ...]:
    """Merge native blocks, innermost axis first, up to ``target`` bytes."""
    block = [min(max(int(b), 1), int(s)) if s else 1 for b, s in zip(block, shape)]
    if folder:  # one chunk per file of a folder
        return tuple(block)
    nbytes = math.prod(block) * itemsize
    for ax in range(len(shape) - 1, -1, -1):
        if block[ax] >= shape[ax]:
            continue
        per = nbytes // block[ax]
        if per * shape[ax] <= target:
            block[ax] = shape[ax]
            nbytes = per * shape[ax]
            continue
        k = max(1, target // max(per * block[ax], 1))
        block[ax] = min(shape[ax], k * block[ax])
        break
    return tuple(block)


#: tifffile's letters for an axis of unknown meaning (a plain stack's first axis)
_GENERIC_AXES = "QI"


def _plan_chunks(larr: LazyArray, chunks: Any) -> tuple:
    da = _import_dask_array()
    normalize = da.core.normalize_chunks
    shape, dtype = larr.shape, larr.dtype
    native = larr.native_blocks
    merged = larr.chunks
    if chunks is None or (isinstance(chunks, str) and chunks == "native"):
        return normalize(merged, shape, dtype=dtype)
    if isinstance(chunks, str):
        if chunks != "auto":
            raise ValueError(f"chunks must be 'native', 'auto', a tuple or a dict, not {chunks!r}")
        return normalize("auto", shape, dtype=dtype, previous_chunks=native)
    if isinstance(chunks, dict):
        by_axis: dict[int, Any] = {}
        for key, value in chunks.items():
            if isinstance(key, str):
                axes = larr.axes or ""
                pos = axes.find(key) if len(key) == 1 else -1
                if pos < 0:
                    pos = axes.upper().find(key.upper()) if len(key) == 1 else -1
                generic = [i for i, a in enumerate(axes) if a in _GENERIC_AXES]
                if pos < 0 and len(key) == 1 and key.upper() in "ZTI" and len(generic) == 1:
                    pos = generic[0]  # a plain stack: its one unnamed axis
                if pos < 0:
                    raise ValueError(
                        f"chunks names axis {key!r}, but the axes of {larr.path} are "
                        + (repr(larr.axes) if larr.axes else "unknown; use axis numbers") + ".")
                by_axis[pos] = value
            else:
                ax = int(key)
                if not -len(shape) <= ax < len(shape):
                    raise ValueError(f"chunks names axis {key}, but the array has {len(shape)} axes.")
                by_axis[ax % len(shape)] = value
        chunks = tuple(by_axis.get(i, merged[i]) for i in range(len(shape)))
    return normalize(chunks, shape, dtype=dtype, previous_chunks=native)


def _dask_from_lazy(larr: LazyArray, chunks: Any):
    da = _import_dask_array()
    from dask.base import tokenize
    plan = _plan_chunks(larr, chunks)
    name = "imgio-read-" + tokenize(larr, plan)
    return da.from_array(larr, chunks=plan, name=name, lock=False, asarray=False,
                         fancy=False, meta=np.empty((0,) * larr.ndim, larr.dtype))


# -- from a plugin to a reader -----------------------------------------------------------------
def _need_path(plugin) -> str:
    request = plugin.request
    if request.kind not in ("path", "dir", "glob") or not request.path:
        raise FormatError(
            f"Cannot read {request.filename} lazily: lazy reading and to_dask reopen the "
            "file in each task, so they need a file on disk, not bytes or a file object. "
            "Use imread(), or save the data to a file first.")
    return request.path


def _props(plugin, index, kwargs):
    try:
        return plugin.properties(index=index, **kwargs)
    except NotImplementedError:
        return None


def _generic(plugin, index, kwargs) -> _Reader:
    path = _need_path(plugin)
    props = _props(plugin, index, kwargs)
    if props is None:
        data = plugin.read(index=index, **kwargs)
        shape, dtype, axes = data.shape, data.dtype, None
    else:
        shape, dtype, axes = props.shape, props.dtype, props.axes
    return _PluginReader(path, shape, dtype, axes, plugin=plugin.name, index=index, kwargs=kwargs)


def _tiff_reader(plugin, index, kwargs) -> _Reader:
    path = _need_path(plugin)
    if kwargs:  # page=, level= ...: read through the plugin
        return _generic(plugin, index, kwargs)
    tif = getattr(plugin, "_tif", None)
    n = len(tif.series) if tif is not None else None
    if tif is None:
        import tifffile
        with tifffile.TiffFile(path) as t:
            n = len(t.series)
    if index is Ellipsis:
        plugin.properties(index=...)  # raises the plugin's error when series differ
        children = [_TiffReader(path, i, tif=tif) for i in range(n)]
        return _StackReader(children)
    series = plugin._normalize_index(0 if index is None else index, n, "series")
    return _TiffReader(path, series, tif=tif)


def _npy_reader(plugin, index, kwargs) -> _Reader:
    path = _need_path(plugin)
    if kwargs:
        return _generic(plugin, index, kwargs)
    if index not in (None, 0, -1, Ellipsis):
        raise plugin._index_error(index, 1)
    reader = _NpyReader(path)
    return _StackReader([reader]) if index is Ellipsis else reader


def _h5_node_reader(path: str, node) -> _Reader | None:
    members = getattr(node, "members", None)
    if members is not None:  # a group of frame datasets
        children = [_h5_node_reader(path, m) for m in members]
        if any(c is None for c in children):
            return None
        return _StackReader(children, axes=getattr(node, "axes", None))
    ds = getattr(node, "ds", None)
    if ds is None:
        return None
    return _Hdf5Reader(path, ds.name, dset=ds, crop=getattr(node, "crop", None),
                       view=getattr(node, "view", None), axes=getattr(node, "axes", None))


def _hdf5_reader(plugin, index, kwargs) -> _Reader:
    path = _need_path(plugin)
    selection = {k: kwargs.pop(k) for k in ("dataset", "level", "setup") if k in kwargs}
    node_of = getattr(plugin, "_node", None)
    if kwargs or node_of is None:
        return _generic(plugin, index, dict(kwargs, **selection))
    node = node_of(selection.get("dataset"), selection.get("level"), selection.get("setup"))
    reader = _h5_node_reader(path, node)
    if reader is None:
        return _generic(plugin, index, selection)
    if len(reader.shape) <= 2:  # a single image: index 0 (or None) is the image
        if index is Ellipsis:
            return _StackReader([reader])
        if index is not None:
            plugin._normalize_index(index, 1)
        return reader
    if index is None or index is Ellipsis:
        return reader
    return _FrameReader(reader, plugin._normalize_index(index, reader.shape[0], "frame"))


def _folder_reader(plugin, index, kwargs) -> _Reader:
    _need_path(plugin)
    files = list(getattr(plugin, "files", None) or [])
    if kwargs or not files:
        return _generic(plugin, index, kwargs)
    is_volume = getattr(plugin, "_is_volume", None)
    volume = is_volume(index) if is_volume is not None else index in (None, Ellipsis)
    if not volume:  # one slice: read it as its own file
        i = plugin._normalize_index(index, len(files), "slice")
        return _reader_for_file(files[i])
    first = _reader_for_file(files[0])
    children = [first] + [first.with_path(p) for p in files[1:]]
    return _StackReader(children)


def _reader_for_file(path: str) -> _Reader:
    """A reader of the natural ndimage of one file (slices of a folder)."""
    from .core.imopen import imopen
    with imopen(path, "r") as f:
        adapter = _ADAPTERS.get(f.name)
        if adapter is not None and adapter is not _folder_reader:
            return adapter(f, None, {})
        return _generic(f, None, {})


_ADAPTERS = {
    "tifffile": _tiff_reader,
    "npy": _npy_reader,
    "hdf5": _hdf5_reader,
    "folder": _folder_reader,
}


def _reader_for(plugin, index, kwargs) -> tuple[_Reader, str | None]:
    adapter = _ADAPTERS.get(plugin.name, _generic)
    reader = adapter(plugin, index, dict(kwargs))
    axes = None
    try:
        props = plugin.properties(index=index, **kwargs)
        axes = props.axes
        if tuple(props.shape) != reader.shape:
            raise ShapeError(f"{plugin.request.filename}: the lazy reader sees shape "
                             f"{reader.shape} but imread gives {tuple(props.shape)}.")
    except NotImplementedError:
        pass
    return reader, axes


def _lazy_from_plugin(plugin, index=None, **kwargs) -> LazyArray:
    plugin._check_open()
    reader, axes = _reader_for(plugin, index, kwargs)
    return LazyArray(reader, axes=axes)


# -- public API ------------------------------------------------------------------------------
def lazy(uri, *, index: Any = None, plugin=None, extension=None, **kwargs) -> LazyArray:
    """Open an ndimage lazily: a :class:`LazyArray` that reads only what is indexed.

    Parameters
    ----------
    uri : str or pathlib.Path
        A file, folder or glob on disk (bytes and file objects cannot be reopened).
    index : int, ``...`` or None
        As for :func:`imgio.v3.imread`.
    plugin, extension
        Choose the plugin, as for :func:`imgio.v3.imopen`.
    **kwargs
        Selection keywords of the plugin (e.g. ``dataset=`` for HDF5).

    Returns
    -------
    LazyArray
        ``np.asarray(lazy(uri, **kw))`` equals ``imread(uri, **kw)``.
    """
    from .core.imopen import imopen
    with imopen(uri, "r", plugin=plugin, extension=extension) as f:
        return _lazy_from_plugin(f, index, **kwargs)


def plugin_to_dask(plugin, *, index: Any = None, chunks: Any = "native", **kwargs):
    """The ndimage of an open plugin as a ``dask.array.Array`` (``PluginV3.to_dask``)."""
    _import_dask_array()
    return _lazy_from_plugin(plugin, index, **kwargs).to_dask(chunks)


def to_dask(uri, *, index: Any = None, chunks: Any = "native", plugin=None, extension=None,
            **kwargs):
    """Open an ndimage as a lazy ``dask.array.Array``.

    Parameters
    ----------
    uri : str or pathlib.Path
        A file, folder or glob on disk.
    index : int, ``...`` or None
        As for :func:`imgio.v3.imread`.
    chunks : "native", "auto", tuple, int or dict
        See the module docstring; ``{"Z": 8}`` chunks by axis letter.
    plugin, extension
        Choose the plugin, as for :func:`imgio.v3.imopen`.
    **kwargs
        Selection keywords of the plugin (e.g. ``dataset=`` for HDF5).

    Raises
    ------
    imgio.errors.BackendMissingError
        dask is not installed (``pip install imgio[dask]``).
    """
    _import_dask_array()
    return lazy(uri, index=index, plugin=plugin, extension=extension, **kwargs).to_dask(chunks)


# -- writing ---------------------------------------------------------------------------------
class _NpyTarget:
    """A picklable ``da.store`` target: writes each block into an ``.npy`` file's bytes."""

    def __init__(self, path, offset, shape, dtype, fortran):
        self.path, self.offset, self.shape = path, offset, tuple(shape)
        self.dtype, self.fortran = np.dtype(dtype), fortran

    @property
    def ndim(self):
        return len(self.shape)

    def __setitem__(self, key, value):
        mm = np.memmap(self.path, dtype=self.dtype, mode="r+", offset=self.offset,
                       shape=self.shape, order="F" if self.fortran else "C")
        try:
            mm[key] = value
            mm.flush()
        finally:
            del mm


def _write_npy(f, darr, da) -> None:
    from numpy.lib import format as npformat
    tmp = f.request.get_local_filename()
    mm = npformat.open_memmap(tmp, mode="w+", dtype=darr.dtype, shape=darr.shape)
    offset = mm.offset
    del mm
    da.store(darr, _NpyTarget(tmp, offset, darr.shape, darr.dtype, False), lock=False)


def write_dask(uri, darr, *, plugin=None, extension=None, format_hint=None, **kwargs):
    """Write a dask array without holding it in memory.

    The array is computed one block row (one block along the first axis) at a
    time, on whatever scheduler is active (a ``distributed.Client`` too); the
    frames of each row go to the plugin's ``append()``, which grows one TIFF
    series or one HDF5 dataset, while the next row is being computed.
    ``.npy`` files are stored block by block into the file's bytes with
    ``da.store``.  Peak memory is about two block rows; rechunk along the
    first axis to lower it.

    Parameters
    ----------
    uri : str, pathlib.Path or "<bytes>"
        Where to write; the plugin is chosen as for :func:`imgio.v3.imwrite`.
    darr : dask.array.Array
        The data.  Arrays of one or two axes, and arrays for plugins that
        cannot grow one ndimage on disk (no ``append()`` of their own), are
        computed and written at once.
    plugin, extension, format_hint
        Choose the plugin (see :func:`imgio.v3.imopen`).
    **kwargs
        Passed to the plugin's ``append()`` (e.g. ``compression=`` for TIFF).

    Returns
    -------
    bytes or None
        The encoded bytes when ``uri`` is ``"<bytes>"``.
    """
    da = _import_dask_array()
    from .core.imopen import imopen
    from .core.plugin import PluginV3
    if not isinstance(darr, da.Array):
        darr = da.asarray(darr)
    if any(math.isnan(s) for s in darr.shape):
        raise ShapeError("Cannot write a dask array of unknown shape "
                         f"{darr.shape}; call `.compute_chunk_sizes()` on it first.")
    with imopen(uri, "w", plugin=plugin, extension=extension, format_hint=format_hint) as f:
        streams = type(f).append is not PluginV3.append  # grows one ndimage on disk
        if f.name == "npy" and f.request.kind == "path" and not kwargs:
            _write_npy(f, darr, da)
        elif darr.ndim <= 2 or darr.shape[0] == 0 or not streams:
            # nothing to stream frame by frame into: the format takes the whole array
            f.write(darr.compute(), **kwargs)
        else:
            _stream_rows(f, darr, kwargs)
    return f.request.finish()


def _stream_rows(f, darr, kwargs) -> None:
    """Append the frames of ``darr``, computing block row ``i + 1`` while ``i`` is written."""
    from concurrent.futures import ThreadPoolExecutor
    bounds = np.cumsum((0,) + tuple(darr.chunks[0]))
    rows = [darr[int(a):int(b)] for a, b in zip(bounds[:-1], bounds[1:])]

    def compute(i):
        return np.asarray(rows[i].compute())

    with ThreadPoolExecutor(1, thread_name_prefix="imgio-write-dask") as pool:
        pending = pool.submit(compute, 0)
        try:
            for i in range(len(rows)):
                block = pending.result()
                pending = pool.submit(compute, i + 1) if i + 1 < len(rows) else None
                for frame in block:
                    f.append(frame, **kwargs)
                del block
        finally:
            if pending is not None:
                pending.cancel()
