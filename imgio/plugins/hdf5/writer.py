"""Writing HDF5: the crash-safe file sink, dataset layout and attributes, gzip chunks
compressed with libdeflate on all cores, streams of appended frames."""
from __future__ import annotations

import collections
import errno
import io
import itertools
import json
import os
from typing import Any, Iterator

import h5py
import numpy as np

from ...errors import DTypeError, ShapeError
from .chunks import DEFLATE as _DEFLATE_ID, SHUFFLE as _SHUFFLE_ID

#: micrometre spellings (for ``element_size_um``)
_MICRONS = {"um", "µm", "μm", "micron", "microns", "micrometer", "micrometre"}


class _WriteSink(io.RawIOBase):
    """The file HDF5 writes through (h5py's ``fileobj`` driver), safe on a full disk.

    With HDF5's own POSIX driver a failed write (``ENOSPC``, ``EFBIG``) leaves
    dirty metadata that HDF5 retries to flush when its objects are freed, and
    the process dies with SIGSEGV.  Here the first failure is recorded and
    every later write is accepted and dropped, so HDF5 closes cleanly; the
    plugin then raises :class:`~imgio.errors.WriteError` naming the target and
    the temporary file is removed.
    """

    def __init__(self, raw) -> None:
        super().__init__()
        self.raw = raw
        self.failed: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.raw.seek(pos, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def readinto(self, buf) -> int:
        return self.raw.readinto(buf)

    def write(self, buf) -> int:
        n = memoryview(buf).nbytes
        if self.failed is None:
            try:
                done = 0
                view = memoryview(buf).cast("B")
                while done < n:
                    got = self.raw.write(view[done:])
                    if not got:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    done += got
                return n
            except OSError as exc:
                self.failed = exc
        return n

    def truncate(self, size: int | None = None) -> int:
        if self.failed is None:
            try:
                return self.raw.truncate(size)
            except OSError as exc:
                self.failed = exc
        return self.raw.tell() if size is None else size

    def flush(self) -> None:
        if self.failed is None and not self.raw.closed:
            try:
                self.raw.flush()
            except OSError as exc:
                self.failed = exc

    def close(self) -> None:
        if not self.raw.closed:
            try:
                self.raw.close()
            except OSError as exc:
                self.failed = self.failed or exc
        super().close()

def check_dtype(arr: np.ndarray, where: str) -> None:
    """Refuse what HDF5 images cannot hold (non-numeric arrays)."""
    if arr.dtype.kind not in "biufc":
        raise DTypeError(f"Cannot write an array of dtype {arr.dtype} to {where}: "
                         "HDF5 images must be numeric or bool.")

def layout(shape: tuple, dtype: np.dtype, chunks, compression, shuffle, frames: bool) -> dict:
    """h5py ``create_dataset`` options: one frame per chunk unless ``chunks`` is given."""
    opts: dict = {}
    if compression is not None:
        opts["compression"] = compression
        opts["shuffle"] = True if shuffle is None else bool(shuffle)
    elif shuffle:
        opts["shuffle"] = True
    if chunks is None:
        if len(shape) >= 3 or frames:
            frame = tuple(max(1, s) for s in shape[1:])
            chunk = (1,) + frame
        else:
            chunk = tuple(max(1, s) for s in shape)
        if int(np.prod(chunk, dtype=np.int64)) * dtype.itemsize < (1 << 32) - 1:
            opts["chunks"] = chunk
        else:
            opts["chunks"] = True
    else:
        opts["chunks"] = chunks
    return opts

def set_attrs(ds, where: str, spacing, axes, units, metadata, extra: dict | None = None) -> None:
    """Write ``metadata``/``extra`` and the physical description as attributes of ``ds``."""
    items = dict(metadata or {})
    items.update(extra or {})
    for key, value in items.items():
        try:
            if value is None:
                continue
            if isinstance(value, dict):
                value = json.dumps(value, default=str)
            ds.attrs[str(key)] = value
        except (TypeError, ValueError):
            ds.attrs[str(key)] = str(value)
    ndim = ds.ndim
    if axes is not None:
        if len(axes) != ndim:
            raise ShapeError(f"{where}: axes {axes!r} has {len(axes)} letters for "
                             f"{ndim} axes")
        ds.attrs["axes"] = str(axes)
        for i, letter in enumerate(axes):
            ds.dims[i].label = letter.lower()
    if spacing is not None:
        spacing = tuple(spacing)
        if len(spacing) != ndim:
            raise ShapeError(f"{where}: spacing {spacing} has {len(spacing)} values for "
                             f"{ndim} axes")
        values = np.array([np.nan if s is None else float(s) for s in spacing], np.float64)
        ds.attrs["spacing"] = values
        if units is None:
            units = ("um",) * ndim
        if isinstance(units, str):
            units = (units,) * ndim
        units = tuple("" if u is None else str(u) for u in units)
        if len(units) != ndim:
            raise ShapeError(f"{where}: units {units} has {len(units)} entries for "
                             f"{ndim} axes")
        ds.attrs["units"] = np.array(units, dtype=h5py.string_dtype())
        known = [u for s, u in zip(spacing, units) if s is not None]
        if known and all(u.lower() in _MICRONS or u in _MICRONS for u in known):
            ds.attrs["element_size_um"] = np.where(np.isnan(values), 1.0, values)
    elif units is not None:
        ds.attrs["units"] = np.array((units,) * ndim if isinstance(units, str)
                                     else tuple(units), dtype=h5py.string_dtype())



# -- gzip writes outside HDF5's filter pipeline ----------------------------------------
#: h5py's gzip level when ``compression_opts`` is not given
_DEFAULT_LEVEL = 4
#: below this many bytes a write compresses on the calling thread only
_THREAD_BYTES = 4 << 20
#: create_dataset options the direct path understands (anything else: HDF5 writes)
_DIRECT_OPTIONS = {"compression", "compression_opts", "shuffle", "chunks", "fillvalue",
                   "track_times", "track_order", "maxshape"}


def cpu_workers() -> int:
    """Threads for compressing: every core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class DirectChunks:
    """Compress chunks with libdeflate and hand them to HDF5 already filtered.

    Built only for a chunked dataset whose filter pipeline is exactly
    ``[shuffle,] deflate`` (what ``compression="gzip"`` declares); each chunk
    is byte-shuffled by NumPy, compressed by imagecodecs' ``deflate_encode``
    (libdeflate, which emits the zlib stream HDF5's deflate filter reads) on a
    pool of threads and stored with ``write_direct_chunk``.  The file is an
    ordinary gzip dataset: h5py and HDF5 read it through their own filters.
    """

    def __init__(self, ds, level: int, shuffle: int | None, encode) -> None:
        self.ds = ds
        self.level = level
        self.shuffle = shuffle  # element size of the shuffle filter, or None
        self.encode = encode
        self.chunks = tuple(int(c) for c in ds.chunks)
        self.dtype = ds.dtype

    @classmethod
    def build(cls, ds) -> "DirectChunks | None":
        """The direct writer for ``ds``, or None where HDF5 must filter itself."""
        if ds.chunks is None or ds.dtype.kind not in "biufc" or ds.dtype.fields is not None \
                or ds.dtype.subdtype is not None:
            return None
        if not hasattr(ds.id, "write_direct_chunk"):  # pragma: no cover - old h5py
            return None
        plist = ds.id.get_create_plist()
        filters = [plist.get_filter(i)[::2] for i in range(plist.get_nfilters())]
        shuffle = None
        if len(filters) == 2 and filters[0][0] == _SHUFFLE_ID:
            cd = tuple(filters[0][1])
            shuffle = int(cd[0]) if cd else ds.dtype.itemsize
            filters = filters[1:]
        if len(filters) != 1 or filters[0][0] != _DEFLATE_ID:
            return None
        cd = tuple(filters[0][1])
        level = int(cd[0]) if cd else _DEFAULT_LEVEL
        try:
            import imagecodecs
            encode = imagecodecs.deflate_encode
        except (ImportError, AttributeError):  # without imagecodecs HDF5 compresses
            return None
        return cls(ds, level, shuffle, encode)

    def prepare(self, block: np.ndarray, copy: bool = False) -> np.ndarray:
        """The bytes of one chunk before deflate: ``block`` padded and shuffled.

        ``copy=True`` guarantees the result shares no memory with ``block``
        (a frame the caller may reuse once ``append`` returns).
        """
        if block.shape != self.chunks:
            full = np.zeros(self.chunks, self.dtype)
            full[tuple(slice(0, s) for s in block.shape)] = block
            block, copy = full, False
        data = np.ascontiguousarray(block).reshape(-1).view(np.uint8)
        size = self.shuffle
        if size is not None and size > 1 and data.size >= size:
            n = data.size // size
            shuffled = np.empty_like(data)
            shuffled[: n * size].reshape(size, n)[...] = data[: n * size].reshape(n, size).T
            shuffled[n * size:] = data[n * size:]
            return shuffled
        return data.copy() if copy and np.shares_memory(data, block) else data

    def deflate(self, data: np.ndarray) -> bytes:
        return self.encode(data, level=self.level)

    def _filtered(self, block: np.ndarray) -> bytes:
        """The stored bytes of one chunk: ``block`` padded, shuffled, deflated."""
        return self.deflate(self.prepare(block))

    def blocks(self, arr: np.ndarray, origin: int = 0) -> Iterator[tuple[tuple, np.ndarray]]:
        """``(chunk offset, block)`` over ``arr`` in chunk order (``origin`` along axis 0)."""
        grid = [range(0, s, c) for s, c in zip(arr.shape, self.chunks)]
        for corner in itertools.product(*grid):
            sel = tuple(slice(a, a + c) for a, c in zip(corner, self.chunks))
            yield (corner[0] + origin,) + corner[1:], arr[sel]

    def write(self, arr: np.ndarray, pool=None, origin: int = 0) -> None:
        """Store ``arr`` (the dataset from ``origin`` along axis 0, whole chunks)."""
        dsid = self.ds.id
        if pool is None or arr.nbytes < _THREAD_BYTES:
            for corner, block in self.blocks(arr, origin):
                dsid.write_direct_chunk(corner, self._filtered(block))
            return
        ahead = 2 * pool._max_workers
        pending: collections.deque = collections.deque()
        try:
            for corner, block in self.blocks(arr, origin):
                pending.append((corner, pool.submit(self._filtered, block)))
                if len(pending) >= ahead:
                    corner, fut = pending.popleft()
                    dsid.write_direct_chunk(corner, fut.result())
            while pending:
                corner, fut = pending.popleft()
                dsid.write_direct_chunk(corner, fut.result())
        finally:
            for _, fut in pending:
                fut.cancel()


def write_dataset(f, name: str, arr: np.ndarray, opts: dict, pool_factory) -> Any:
    """Create dataset ``name`` in ``f`` holding ``arr`` with h5py options ``opts``.

    gzip datasets are compressed here (:class:`DirectChunks`, on the threads of
    ``pool_factory()``); everything else is written by HDF5.
    """
    compression = opts.get("compression")
    gzip = compression == "gzip" or (isinstance(compression, int)
                                     and not isinstance(compression, bool))
    if arr.ndim == 0 or arr.size == 0 or not gzip or not set(opts) <= _DIRECT_OPTIONS:
        return f.create_dataset(name, data=arr, **opts)
    ds = f.create_dataset(name, shape=arr.shape, dtype=arr.dtype, **opts)
    direct = DirectChunks.build(ds)
    if direct is None:
        ds.write_direct(np.ascontiguousarray(arr))
        return ds
    direct.write(arr, pool_factory() if arr.nbytes >= _THREAD_BYTES else None)
    return ds


class Stream:
    """Frames appended one at a time to a resizable dataset ``(None, *frame)``.

    Whole-frame chunks (the default layout) are stored with
    ``write_direct_chunk``: uncompressed frames as they are, gzip frames
    compressed on a pool of threads while the caller produces the next ones
    (written in order, at the latest by :meth:`flush`).  Other layouts go
    through h5py's ``write_direct``.
    """

    def __init__(self, ds, pool_factory) -> None:
        self.ds = ds
        self.frame_shape = tuple(ds.shape[1:])
        self.dtype = ds.dtype
        self.n = int(ds.shape[0])
        whole = ds.chunks is not None and tuple(ds.chunks) == (1,) + self.frame_shape
        self.direct = DirectChunks.build(ds) if whole else None
        self.plain = whole and ds.id.get_create_plist().get_nfilters() == 0
        self.zeros = (0,) * len(self.frame_shape)
        self.pool = pool_factory() if self.direct is not None else None
        self.ahead = 2 * cpu_workers()
        self.pending: collections.deque = collections.deque()

    def append(self, arr: np.ndarray) -> None:
        n = self.n
        self.n += 1
        self.ds.id.set_extent((self.n,) + self.frame_shape)  # ds.resize, without its lookups
        if not arr.size:
            return
        if self.direct is not None:
            data = self.direct.prepare(arr[None], copy=True)  # the caller may reuse arr
            self.pending.append((n, self.pool.submit(self.direct.deflate, data)))
            while len(self.pending) >= self.ahead or (self.pending and self.pending[0][1].done()):
                self._store_first()
        elif self.plain:
            data = np.ascontiguousarray(arr)
            self.ds.id.write_direct_chunk((n,) + self.zeros, data.reshape(-1).view(np.uint8))
        else:
            self.ds.write_direct(np.ascontiguousarray(arr), dest_sel=np.s_[n])

    def _store_first(self) -> None:
        n, fut = self.pending.popleft()
        self.ds.id.write_direct_chunk((n,) + self.zeros, fut.result())

    def flush(self) -> None:
        """Store every frame still being compressed."""
        try:
            while self.pending:
                self._store_first()
        finally:
            for _, fut in self.pending:
                fut.cancel()
            self.pending.clear()
