"""Chunk decoding outside HDF5's filter pipeline: deflate (libdeflate) and shuffle.

:class:`_FastChunks` reads the stored bytes of whole-frame chunks by their file
offsets (:mod:`imgio.io.raw`), from in-memory bytes, or through h5py's
``read_direct_chunk``, and decodes them with imagecodecs straight into the
output; :func:`_unshuffle` undoes HDF5's byte shuffle.
"""
from __future__ import annotations

import collections
import sys
import threading
from typing import Iterator

import numpy as np

from ...errors import CorruptFileError
from ...io.raw import Truncated, pread_into, pread_ranges

__all__ = ["_FastChunks", "_unshuffle", "DEFLATE", "SHUFFLE", "WORKERS"]

#: HDF5 filter ids the fast path decodes itself
DEFLATE, SHUFFLE = _DEFLATE, _SHUFFLE = 1, 2
_LITTLE = sys.byteorder == "little"
#: threads that decode compressed chunks
WORKERS = _WORKERS = 2
#: smaller (decoded) chunks are decoded on the calling thread
THREAD_CHUNK_BYTES = 256 << 10


def _unshuffle(src: np.ndarray, dst: np.ndarray, itemsize: int) -> None:
    """Undo HDF5's byte shuffle: ``src`` holds byte plane after byte plane."""
    nbytes = dst.size
    n = nbytes // itemsize
    if itemsize == 2 and _LITTLE and nbytes % 2 == 0:
        # the two byte planes become one native uint16: low | high << 8 (vectorised)
        words = dst.view(np.uint16)
        np.left_shift(src[n:2 * n], 8, out=words, dtype=np.uint16)
        np.bitwise_or(words, src[:n], out=words)
        return
    view = dst[: n * itemsize].reshape(n, itemsize)
    for b in range(itemsize):  # strided NumPy copies release the GIL
        view[:, b] = src[b * n:(b + 1) * n]
    if n * itemsize < nbytes:
        dst[n * itemsize:] = src[n * itemsize:nbytes]


class _FastChunks:
    """Decode whole-frame chunks of one dataset outside HDF5's filter pipeline.

    Only built when every chunk spans whole frames (``chunks[1:] == shape[1:]``)
    and the filters are deflate and/or shuffle.  Raw chunk bytes come from
    ``pread`` on the file, slices of the in-memory bytes, or h5py's
    ``read_direct_chunk``; the first chunk is checked against h5py's raw read
    before the direct sources are trusted.
    """

    def __init__(self, ds, filters, fd: int | None, memory: memoryview | None, where: str):
        self.ds = ds
        self.where = where
        self.k = int(ds.chunks[0])
        self.n = int(ds.shape[0])
        self.frame_shape = tuple(ds.shape[1:])
        self.dtype = ds.dtype
        self.chunk_nbytes = self.k * int(np.prod(self.frame_shape, dtype=np.int64)) \
            * self.dtype.itemsize
        self.filters = filters  # [(filter_id, cd_values)] in pipeline order
        self.nchunks = -(-self.n // self.k)
        self.offsets = np.full(self.nchunks, -1, np.int64)
        self.sizes = np.zeros(self.nchunks, np.int64)
        self.masks = np.zeros(self.nchunks, np.uint32)
        self._local = threading.local()
        self._fill_table()
        self.fd, self.memory = fd, memory
        self.source = "h5py"
        present = np.flatnonzero(self.offsets >= 0)
        if len(present) and (fd is not None or memory is not None):
            j = int(present[0])
            _, expected = ds.id.read_direct_chunk(self._coord(j))
            for source in ("pread", "memory"):
                if (source == "pread" and fd is None) or (source == "memory" and memory is None):
                    continue
                self.source = source
                try:
                    if bytes(self._raw(j)) == bytes(expected):
                        break
                except OSError:
                    pass
                self.source = "h5py"

    @classmethod
    def build(cls, ds, fd, memory, where: str) -> "_FastChunks | None":
        if ds.chunks is None or ds.ndim < 1 or ds.dtype.kind not in "uifc" \
                or ds.dtype.fields is not None or ds.dtype.subdtype is not None:
            return None
        if tuple(ds.chunks[1:]) != tuple(ds.shape[1:]) or ds.size == 0:
            return None
        plist = ds.id.get_create_plist()
        filters = []
        for i in range(plist.get_nfilters()):
            fid, _flags, cd, _name = plist.get_filter(i)
            if fid not in (_DEFLATE, _SHUFFLE):
                return None
            filters.append((fid, tuple(cd)))
        if any(fid == _DEFLATE for fid, _ in filters):
            try:
                import imagecodecs  # noqa: F401  (optional: without it h5py decodes)
            except ImportError:
                return None
        try:
            return cls(ds, filters, fd, memory, where)
        except (AttributeError, NotImplementedError):  # HDF5 too old for chunk queries
            return None

    def _coord(self, j: int) -> tuple:
        return (j * self.k,) + (0,) * len(self.frame_shape)

    def _fill_table(self) -> None:
        k = self.k

        def visit(info):
            j = info.chunk_offset[0] // k
            self.offsets[j] = info.byte_offset
            self.sizes[j] = info.size
            self.masks[j] = info.filter_mask

        dsid = self.ds.id
        if hasattr(dsid, "chunk_iter"):
            try:
                dsid.chunk_iter(visit)
                return
            except (NotImplementedError, RuntimeError, AttributeError):
                pass
        for i in range(dsid.get_num_chunks()):
            visit(dsid.get_chunk_info(i))

    @property
    def compressed(self) -> bool:
        return bool(self.filters)

    @property
    def threaded(self) -> bool:
        """Whether chunks are decoded on the pool: compressed and large enough that a
        thread hand-off (tens of microseconds) costs less than the decoding it moves."""
        return self.compressed and self.chunk_nbytes >= THREAD_CHUNK_BYTES

    def _raw(self, j: int, out: np.ndarray | None = None):
        """The stored bytes of chunk ``j`` (into ``out`` when given and possible)."""
        off, size = int(self.offsets[j]), int(self.sizes[j])
        if self.source == "pread":
            if out is not None and size == out.size:
                data = out
            else:  # a per-thread buffer for the stored (compressed) bytes
                buf = getattr(self._local, "stored", None)
                if buf is None or buf.size < size:
                    buf = self._local.stored = np.empty(max(size, int(self.sizes.max())),
                                                        np.uint8)
                data = buf[:size]
            try:
                pread_into(self.fd, memoryview(data).cast("B"), off)
            except Truncated as exc:
                raise CorruptFileError(
                    f"{self.where}: chunk {j} of {self.ds.name} is cut short: "
                    f"read {exc.got} of {size} bytes") from None
            return data
        if self.source == "memory":
            if off + size > len(self.memory):
                raise CorruptFileError(f"{self.where}: chunk {j} of {self.ds.name} lies "
                                       "beyond the end of the data")
            return self.memory[off:off + size]
        if out is not None and size == out.size:
            self.ds.id.read_direct_chunk(self._coord(j), out=out)
            return out
        return self.ds.id.read_direct_chunk(self._coord(j))[1]

    def _scratch(self) -> np.ndarray:
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = np.empty(self.chunk_nbytes, np.uint8)
        return buf

    def decode(self, j: int, dest: np.ndarray) -> None:
        """Fill ``dest`` (C-contiguous, ``k`` frames or fewer for the last chunk) with chunk j."""
        valid = min(self.k, self.n - j * self.k)
        if self.offsets[j] < 0:  # never written: h5py supplies the fill value
            self.ds.read_direct(dest[:valid], np.s_[j * self.k: j * self.k + valid])
            return
        out = dest.reshape(-1).view(np.uint8)
        whole = out.size == self.chunk_nbytes
        mask = int(self.masks[j])
        active = [(fid, cd) for i, (fid, cd) in enumerate(self.filters) if not mask >> i & 1]
        if not active:
            raw = self._raw(j, out if whole else None)
            if raw is not out:
                raw = np.frombuffer(raw, np.uint8)
                if raw.size < out.size:
                    raise CorruptFileError(f"{self.where}: chunk {j} of {self.ds.name} holds "
                                           f"{raw.size} bytes, expected {self.chunk_nbytes}")
                out[:] = raw[: out.size]
            return
        data = self._raw(j)
        for step, (fid, cd) in enumerate(reversed(active)):
            last = step == len(active) - 1
            target = out if (last and whole) else (self._scratch() if step % 2 == 0
                                                    else np.empty(self.chunk_nbytes, np.uint8))
            if fid == _DEFLATE:
                import imagecodecs
                try:
                    got = imagecodecs.deflate_decode(data, out=target)
                except Exception as exc:
                    raise CorruptFileError(
                        f"{self.where}: chunk {j} of {self.ds.name} cannot be inflated: "
                        f"{exc}") from exc
                if len(got) != self.chunk_nbytes:
                    raise CorruptFileError(
                        f"{self.where}: chunk {j} of {self.ds.name} inflates to {len(got)} bytes, "
                        f"expected {self.chunk_nbytes}")
            else:  # shuffle
                src = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
                if src.size != self.chunk_nbytes:
                    raise CorruptFileError(
                        f"{self.where}: chunk {j} of {self.ds.name} holds {src.size} bytes, "
                        f"expected {self.chunk_nbytes}")
                itemsize = int(cd[0]) if cd else self.dtype.itemsize
                if target is data:
                    target = np.empty(self.chunk_nbytes, np.uint8)
                _unshuffle(src, target, itemsize)
            data = target
        if not whole:
            out[:] = data[: out.size]

    def new_chunk(self, j: int) -> np.ndarray:
        arr = np.empty((self.k,) + self.frame_shape, self.dtype)
        self.decode(j, arr)
        return arr

    def read_frames(self, a: int, b: int, out: np.ndarray, pool) -> None:
        """Frames ``a:b`` into ``out`` (C-contiguous, shape ``(b - a, *frame)``)."""
        k = self.k
        jobs = []
        for j in range(a // k, (b - 1) // k + 1):
            lo, hi = j * k, min(j * k + k, self.n)
            if lo >= a and hi <= b:
                jobs.append((j, out[lo - a: hi - a], None))
            else:
                jobs.append((j, None, (max(lo, a), min(hi, b))))

        if not self.compressed and self.source == "pread":
            jobs = self._pread_plain(jobs)

        def run(job):
            j, dest, part = job
            if dest is not None:
                self.decode(j, dest)
            else:
                chunk = self.new_chunk(j)
                lo, hi = part
                out[lo - a: hi - a] = chunk[lo - j * k: hi - j * k]

        if pool is None or not self.threaded or len(jobs) == 1:
            for job in jobs:
                run(job)
        else:
            for fut in [pool.submit(run, job) for job in jobs]:
                fut.result()

    def _pread_plain(self, jobs: list) -> list:
        """Read the stored uncompressed chunks of ``jobs`` straight into their
        destinations (:func:`imgio.io.raw.pread_ranges`, threaded when large);
        returns the jobs left (partial chunks, chunks never written)."""
        direct, rest = [], []
        for job in jobs:
            j, dest, _ = job
            if dest is not None and self.offsets[j] >= 0 and dest.nbytes <= self.sizes[j]:
                direct.append(job)
            else:
                rest.append(job)
        if not direct:
            return rest
        views = [memoryview(dest.reshape(-1).view(np.uint8)) for _, dest, _ in direct]
        offsets = [int(self.offsets[j]) for j, _, _ in direct]
        try:
            pread_ranges(self.fd, views, offsets, workers=WORKERS)
        except Truncated as exc:
            j = next((j for j, _, _ in direct if self.offsets[j] <= exc.offset
                      < self.offsets[j] + self.sizes[j]), direct[0][0])
            raise CorruptFileError(
                f"{self.where}: chunk {j} of {self.ds.name} is cut short: the file ends "
                f"{exc.wanted - exc.got} bytes before the chunk does") from None
        return rest

    def iter_frames(self, pool) -> Iterator[np.ndarray]:
        k = self.k
        if pool is None or not self.threaded:
            for j in range(self.nchunks):
                chunk = self.new_chunk(j)
                for i in range(min(k, self.n - j * k)):
                    yield chunk[i]
            return
        pending: collections.deque = collections.deque()
        ahead = 2 * _WORKERS
        nxt = 0
        try:
            while nxt < self.nchunks or pending:
                while nxt < self.nchunks and len(pending) < ahead:
                    pending.append((nxt, pool.submit(self.new_chunk, nxt)))
                    nxt += 1
                j, fut = pending.popleft()
                chunk = fut.result()
                for i in range(min(k, self.n - j * k)):
                    yield chunk[i]
        finally:
            for _, fut in pending:
                fut.cancel()
            for _, fut in pending:
                if not fut.cancelled():
                    try:
                        fut.result()
                    except Exception:
                        pass

