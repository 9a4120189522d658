"""HDF5 through h5py: datasets as ndimages, fast iteration, streaming writes.

An HDF5 *dataset* reads like an animated image: ``read()`` returns the whole
dataset, ``read(index=i)`` frame ``i`` along axis 0 (a 2-D dataset is a single
image, so ``index=0`` is the image itself), ``iter()`` yields the frames one
at a time.  A group of equally shaped frame datasets (``frames/0``,
``frames/1``, ... in natural order), BigDataViewer files (``t00000/s00/0/cells``)
and Imaris ``.ims`` files read as series too.

Which dataset
-------------
``dataset="/path"`` (an open keyword, or a keyword of read/iter/properties/
metadata) picks a dataset or a frame group.  Without it the only image-like
dataset (ndim >= 2, numeric) is used; BigDataViewer and Imaris layouts are
recognised first.  Several candidates raise :class:`~imgio.errors.FormatError`
listing each path with its shape and dtype.

Fast reads
----------
Datasets whose chunks hold whole frames and whose filters are only
deflate/gzip and shuffle are read outside HDF5's filter pipeline: the raw
chunks are read by their file offsets (``pread``) and decoded with
imagecodecs (libdeflate) in a pool of two threads, the byte shuffle undone by
NumPy straight into the output.  Uncompressed whole-frame chunks are read with
one ``preadv`` into the output array.  Any other layout goes through h5py's
``read_direct`` into preallocated buffers, several frames (whole chunks) at a
time.  Both paths give exactly what h5py returns.

Keywords
--------
read/iter/properties/metadata(dataset=None, level=0, setup=0)
    ``level`` picks a resolution level of BigDataViewer and Imaris files,
    ``setup`` a BigDataViewer view setup.
write(ndimage, dataset="data", compression=None, compression_opts=None,
      chunks=None, shuffle=None, spacing=None, axes=None, units=None,
      metadata=None, mode="w", **h5py_options)
    One frame per chunk by default; ``shuffle`` defaults to True when
    compressing.  ``mode="a"`` adds (or replaces) one dataset and keeps the
    rest of an existing file.  ``metadata`` becomes attributes.
append(frame, dataset="data", ...)
    Streams frames into a resizable dataset ``(None, *frame.shape)``; unknown
    keywords of the first call become attributes (the v2 writer's metadata).
"""
from __future__ import annotations

import collections
import errno
import io
import json
import os
import re
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import h5py
import numpy as np

from ... import _kernels
from ...core.limits import check_nbytes
from ...core.plugin import ImageProperties, PluginV3
from . import sniff as _hdf5
from ..physical import normalize_unit
from ...errors import missing_selection, selection_error, unexpected_keyword
from ...errors import (CorruptFileError, DTypeError, ExternalReferenceError, FormatError,
                      ImgioError, InitializationError, ShapeError)

__all__ = ["Hdf5Plugin"]

#: HDF5 filter ids the fast path decodes itself
_DEFLATE, _SHUFFLE = 1, 2
_LITTLE = sys.byteorder == "little"
#: threads that decode compressed chunks
_WORKERS = 2
#: what h5py raises for damaged files (its file-object driver adds OverflowError)
_DAMAGE = (OSError, RuntimeError, OverflowError, KeyError, ValueError, SystemError)
#: bytes per batch on the read_direct path
_BATCH_BYTES = 16 << 20
#: micrometre spellings (for ``element_size_um``)
_MICRONS = {"um", "µm", "μm", "micron", "microns", "micrometer", "micrometre"}
#: h5py create_dataset options passed through by write()
_H5PY_OPTIONS = {"fletcher32", "scaleoffset", "fillvalue", "track_times", "track_order",
                 "dcpl", "external", "allow_unknown_filter"}


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _to_python(value: Any) -> Any:
    """An attribute value with bytes decoded and NumPy scalars made Python."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return _to_python(value.item())
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S":
            if value.dtype.itemsize == 1 and value.ndim == 1:  # Imaris byte-char arrays
                return b"".join(value.tolist()).decode("utf-8", "replace")
            return [_to_python(v) for v in value.ravel().tolist()]
        if value.dtype.kind in "OU":
            return [_to_python(v) for v in value.ravel().tolist()]
        if value.ndim == 0:
            return _to_python(value[()])
        return value
    if isinstance(value, h5py.Empty):
        return None
    if isinstance(value, (h5py.Reference, h5py.RegionReference)):
        return repr(value)
    return value


def _attrs(obj) -> dict:
    out = {}
    for key in obj.attrs:
        try:
            out[key] = _to_python(obj.attrs[key])
        except Exception as exc:  # an attribute h5py cannot decode must not break reading
            out[key] = f"<unreadable attribute: {exc}>"
    return out


def _text(value: Any) -> str | None:
    value = _to_python(value)
    if isinstance(value, list):
        value = "".join(str(v) for v in value)
    return value if isinstance(value, str) else None


def _image_like(ds) -> bool:
    return isinstance(ds, h5py.Dataset) and ds.ndim >= 2 and ds.dtype.kind in "biufc"


# -- fast chunk decoding -------------------------------------------------------------
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

    def _raw(self, j: int, out: np.ndarray | None = None):
        """The stored bytes of chunk ``j`` (into ``out`` when given and possible)."""
        off, size = int(self.offsets[j]), int(self.sizes[j])
        if self.source == "pread":
            if out is not None and size == out.size:
                got = os.preadv(self.fd, [out], off)
                data = out
            else:
                data = os.pread(self.fd, size, off)
                got = len(data)
            if got != size:
                raise CorruptFileError(
                    f"{self.where}: chunk {j} of {self.ds.name} is cut short: "
                    f"read {got} of {size} bytes")
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

        def run(job):
            j, dest, part = job
            if dest is not None:
                self.decode(j, dest)
            else:
                chunk = self.new_chunk(j)
                lo, hi = part
                out[lo - a: hi - a] = chunk[lo - j * k: hi - j * k]

        if pool is None or not self.compressed or len(jobs) == 1:
            for job in jobs:
                run(job)
        else:
            for fut in [pool.submit(run, job) for job in jobs]:
                fut.result()

    def iter_frames(self, pool) -> Iterator[np.ndarray]:
        k = self.k
        if pool is None or not self.compressed:
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


# -- what an ndimage is made of -------------------------------------------------------
class _Node:
    """One ndimage: a dataset (maybe cropped) or a stack of equally shaped nodes."""

    shape: tuple
    dtype: np.dtype
    name: str
    spacing: tuple | None = None
    axes: str | None = None
    units: tuple | None = None
    #: where the spacing came from (see imgio.plugins.physical.SOURCES)
    source: str | None = None
    attrs: dict

    def read_all(self) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        self.read_into(out)
        return out

    def read_into(self, out: np.ndarray) -> None:
        self.read_frames(0, self.shape[0], out)

    def read_frames(self, a: int, b: int, out: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    def iter_frames(self) -> Iterator[np.ndarray]:  # pragma: no cover
        raise NotImplementedError


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


class _DatasetNode(_Node):
    def __init__(self, plugin: "Hdf5Plugin", ds, crop: tuple | None = None,
                 view: np.dtype | None = None):
        plugin._check_local(ds)
        self.plugin = plugin
        self.ds = ds
        self.name = ds.name
        self.crop = crop  # stop per axis (Imaris padding), or None
        self.shape = tuple(int(s) for s in (crop if crop is not None else ds.shape))
        self.view = view  # reinterpret the stored dtype (BigDataViewer int16 -> uint16)
        self.dtype = np.dtype(view) if view is not None else ds.dtype
        self.attrs = _attrs(ds)
        self._fast: Any = False  # not yet decided

    def _sel(self, a: int, b: int) -> tuple:
        sel = (slice(a, b),)
        if self.crop is not None:
            sel += tuple(slice(0, s) for s in self.crop[1:])
        return sel

    def fast(self) -> "_FastChunks | None":
        if self._fast is False:
            self._fast = None
            if self.crop is None or tuple(self.crop) == tuple(self.ds.shape):
                fd, memory = self.plugin._raw_sources()
                self._fast = _FastChunks.build(self.ds, fd, memory,
                                               self.plugin._request.filename)
        return self._fast

    def _out(self, out: np.ndarray) -> np.ndarray:
        return out.view(self.ds.dtype) if self.view is not None else out

    def read_frames(self, a: int, b: int, out: np.ndarray) -> None:
        out = self._out(out)
        if b <= a:
            return
        fast = self.fast() if out.flags.c_contiguous else None
        if fast is not None:
            fast.read_frames(a, b, out, self.plugin._pool())
        elif self.ds.ndim == 0:
            out[...] = self.ds[()]
        else:
            self.ds.read_direct(out, self._sel(a, b))

    def read_into(self, out: np.ndarray) -> None:
        if self.ds.ndim == 0:
            self._out(out)[...] = self.ds[()]
        else:
            self.read_frames(0, self.shape[0], out)

    def iter_frames(self) -> Iterator[np.ndarray]:
        fast = self.fast()
        if fast is not None:
            for frame in fast.iter_frames(self.plugin._pool()):
                yield frame.view(self.dtype) if self.view is not None else frame
            return
        n = self.shape[0]
        frame_bytes = max(1, int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize)
        step = max(1, _BATCH_BYTES // frame_bytes)
        chunk0 = int(self.ds.chunks[0]) if self.ds.chunks else 1
        if step >= chunk0:  # whole chunks per batch: HDF5 decodes each chunk once
            step -= step % chunk0
        else:
            step = chunk0
        for a in range(0, n, step):
            b = min(n, a + step)
            batch = np.empty((b - a,) + self.shape[1:], self.dtype)
            self.read_frames(a, b, batch)
            yield from batch


class _StackNode(_Node):
    def __init__(self, name: str, members: list, axis: str = "I"):
        first = members[0]
        for m in members[1:]:
            if m.shape != first.shape or m.dtype != first.dtype:
                raise FormatError(
                    f"{name}: the frames differ: {m.name} is {m.shape} {m.dtype}, "
                    f"{first.name} is {first.shape} {first.dtype}")
        self.name = name
        self.members = members
        self.shape = (len(members),) + tuple(first.shape)
        self.dtype = first.dtype
        self.attrs = dict(first.attrs)
        if first.axes is not None:
            self.axes = axis + first.axes
        if first.spacing is not None:
            self.spacing = (None,) + tuple(first.spacing)
            self.units = (None,) + tuple(first.units or (None,) * len(first.spacing))
            self.source = first.source

    def read_frames(self, a: int, b: int, out: np.ndarray) -> None:
        for i in range(a, b):
            self.members[i].read_into(out[i - a])

    def iter_frames(self) -> Iterator[np.ndarray]:
        for m in self.members:
            yield m.read_all()


def _floats(value) -> list[float]:
    """An attribute's numbers as floats; float32 values rounded to what was written."""
    arr = np.atleast_1d(np.asarray(value))
    if arr.dtype == np.float32:
        return [float(f"{v:.7g}") for v in arr.tolist()]
    return [float(v) for v in arr.astype(np.float64).tolist()]


def _physical(ds) -> tuple[tuple | None, str | None, tuple | None, str | None]:
    """(spacing, axes, units, source) of a dataset from the common attribute conventions.

    ``spacing`` + ``units`` attributes (imgio's own, and h5py users') win; then
    ``element_size_um`` (Fiji, ilastik, CellProfiler), which counts from the
    last axis: 3 values are Z, Y, X.  Units are in the vocabulary of
    :mod:`imgio.plugins.physical` (``None`` where unknown).
    """
    ndim = ds.ndim
    attrs = ds.attrs
    axes = None
    if "axes" in attrs:
        text = _to_python(attrs["axes"])
        if isinstance(text, list):
            text = "".join(str(t)[:1] for t in text)
        if isinstance(text, str) and len(text) == ndim:
            axes = text.upper()
    if axes is None:
        try:
            labels = [ds.dims[i].label for i in range(ndim)]
        except Exception:
            labels = []
        if labels and all(labels):
            axes = "".join(label[:1] for label in labels).upper()
    if axes is None and "axistags" in attrs:  # ilastik
        try:
            tags = json.loads(_text(attrs["axistags"]) or "")
            keys = "".join(a["key"][:1] for a in tags["axes"]).upper()
            if len(keys) == ndim:
                axes = keys
        except (ValueError, KeyError, TypeError):
            pass

    spacing = units = source = None
    unit_attr = None
    for key in ("units", "unit"):
        if key in attrs:
            u = _to_python(attrs[key])
            unit_attr = tuple(str(x) for x in u) if isinstance(u, list) else str(u)
            break
    if "spacing" in attrs:
        try:
            sp = _floats(attrs["spacing"])
        except (TypeError, ValueError):
            sp = []
        if len(sp) == ndim:
            spacing = tuple(None if not np.isfinite(s) else s for s in sp)
            source = "spacing_attribute"
    if spacing is None and "element_size_um" in attrs:
        try:
            esu = _floats(attrs["element_size_um"])
        except (TypeError, ValueError):
            esu = []
        if 0 < len(esu) <= min(ndim, 3):
            sp_list: list = [None] * ndim
            letters = "ZYX"[-len(esu):]
            if axes is not None and all(c in axes for c in letters):
                for letter, value in zip(letters, esu):
                    sp_list[axes.index(letter)] = value
            else:
                sp_list[ndim - len(esu):] = esu
                if axes is None and len(esu) == ndim:
                    axes = letters  # element_size_um is Z, Y, X
            spacing = tuple(sp_list)
            source = "element_size_um"
            if unit_attr is None:
                unit_attr = tuple("um" if s is not None else None for s in spacing)
    if spacing is not None:
        if isinstance(unit_attr, tuple) and len(unit_attr) == ndim:
            units = tuple(normalize_unit(u) for u in unit_attr)
        elif isinstance(unit_attr, str):
            units = tuple(normalize_unit(unit_attr) if s is not None else None
                          for s in spacing)
        else:
            units = (None,) * ndim
    return spacing, axes, units, source


class Hdf5Plugin(PluginV3):
    """HDF5 files through h5py (see the module docstring)."""

    name = "hdf5"
    description = "HDF5 datasets (incl. BigDataViewer, Imaris .ims) via h5py"
    extensions = (".h5", ".hdf5", ".he5", ".nwb", ".ims")
    modes = "iIvV"

    def __init__(self, request, *, dataset: str | None = None, level: int = 0, setup: int = 0,
                 mode: str | None = None, allow_external: bool = False, **kwargs) -> None:
        super().__init__(request)
        self._allow_external = bool(allow_external)
        kwargs.pop("allow_partial", None)  # HDF5 damage is never read partially
        self._h5 = None
        self._h5w = None
        self._fd: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._dataset, self._level, self._setup = dataset, level, setup
        self._mode = mode
        self._streams: dict[str, Any] = {}
        self._written: set[str] = set()
        self._nodes: dict = {}
        if request.io_mode == "r":
            if kwargs:
                raise TypeError(f"unexpected keywords for reading with the hdf5 plugin: "
                                f"{sorted(kwargs)}")
            head = request.firstbytes
            if not _hdf5(head):
                raise InitializationError(f"not an HDF5 file (first bytes {head[:8]!r})")
            source = request.path if request.kind == "path" else request.get_file()
            try:
                if request.kind != "path":
                    source.seek(0)
                self._h5 = h5py.File(source, "r")
            except _DAMAGE as exc:
                raise CorruptFileError(
                    f"{request.filename} looks like an HDF5 file but cannot be opened "
                    f"(damaged or truncated?): {exc}") from exc
        else:
            self._write_defaults = kwargs
            if mode not in (None, "w", "a"):
                raise ValueError(f"mode must be 'w' or 'a', not {mode!r}")

    # -- resources -------------------------------------------------------------------
    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(_WORKERS, thread_name_prefix="imgio-hdf5")
        return self._executor

    def _raw_sources(self) -> tuple[int | None, memoryview | None]:
        """(file descriptor, in-memory bytes) the fast path may read chunks from."""
        kind = self._request.kind
        if kind == "path" and hasattr(os, "preadv"):
            if self._fd is None:
                self._fd = os.open(self._request.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            return self._fd, None
        if kind == "bytes":
            return None, memoryview(self._request.firstbytes_all())
        return None, None

    def _close_backend(self) -> None:
        try:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
        finally:
            try:
                for f in (self._h5, self._h5w):
                    if f is not None:
                        f.close()
            finally:
                self._h5 = self._h5w = None
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
                sink, self._sink = getattr(self, "_sink", None), None
                if sink is not None:
                    sink.close()
                    if sink.failed is not None:
                        raise self._request.write_error(sink.failed) from sink.failed

    def _damaged(self, exc: Exception) -> CorruptFileError:
        return CorruptFileError(f"{self._request.filename}: the HDF5 data cannot be read "
                                f"(damaged or truncated?): {exc}")

    # -- the guards: nothing outside the file, nothing larger than the limit -------------
    def _take_options(self, kwargs: dict):
        """Pop the guard keywords of a read call; returns its ``max_bytes``."""
        kwargs.pop("allow_partial", None)
        if "allow_external" in kwargs:
            self._allow_external = bool(kwargs.pop("allow_external"))
            self._nodes.clear()  # nodes were checked under the other setting
        return kwargs.pop("max_bytes", None)

    def _check_local(self, ds) -> None:
        """Refuse a dataset whose pixels live outside this file (unless allowed).

        External raw storage (``H5Pset_external``: the dataset's bytes are read
        from another file, e.g. ``/etc/passwd``), virtual datasets (mapped from
        other files) and datasets reached through an external link would make
        the read return what another file holds.
        """
        if self._allow_external:
            return
        where = f"{self._request.filename}: dataset {ds.name}"
        hint = ("; imgio reads only the file you named. Pass allow_external=True "
                "if you trust the file and want the referenced data.")
        try:
            external = ds.external
        except Exception:  # pragma: no cover - h5py without the property list query
            external = None
        if external:
            names = ", ".join(sorted({os.fsdecode(e[0]) for e in external}))
            raise ExternalReferenceError(f"{where} stores its data in other file(s): {names}"
                                         + hint)
        if getattr(ds, "is_virtual", False):
            try:
                names = ", ".join(sorted({m.file_name for m in ds.virtual_sources()}))
            except Exception:
                names = "?"
            raise ExternalReferenceError(f"{where} is a virtual dataset mapped from {names}"
                                         + hint)
        try:
            same = ds.file.id == self._h5.id
        except (ValueError, RuntimeError):  # h5py's errors for an id it cannot compare
            same = True
        if not same:
            raise ExternalReferenceError(
                f"{where} is an external link to {ds.file.filename}" + hint)

    def _check_size(self, shape, dtype, limit) -> None:
        check_nbytes(shape, dtype, self._request.filename, limit)

    # -- which ndimage ------------------------------------------------------------------
    @property
    def datasets(self) -> dict[str, tuple[tuple, np.dtype]]:
        """Every dataset in the file: ``path -> (shape, dtype)``."""
        self._check_open()
        found: dict = {}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                found["/" + name] = (tuple(obj.shape), obj.dtype)

        self._h5.visititems(visit)
        return found

    def _frame_group(self, group, require_numbers: bool) -> list | None:
        """The members of ``group`` in natural order if it is a frame series."""
        names = list(group.keys())
        if not names or (require_numbers and len(names) < 2):
            return None
        members = []
        for name in names:
            obj = group.get(name)
            if not _image_like(obj):
                return None
            members.append(obj)
        if len({(m.shape, m.dtype) for m in members}) != 1:
            return None
        if require_numbers:
            parts = [re.fullmatch(r"(\D*)(\d+)", n) for n in names]
            if not all(parts) or len({p.group(1) for p in parts}) != 1:
                return None
        order = sorted(range(len(names)), key=lambda i: _natural_key(names[i]))
        return [members[i] for i in order]

    def _candidates(self) -> list:
        """Image-like datasets and frame groups (members of a frame group excluded)."""
        out: list = []
        groups: list = []

        def visit(name, obj):
            if isinstance(obj, h5py.Group) and self._frame_group(obj, True):
                groups.append(obj.name + "/")
            elif _image_like(obj):
                out.append(obj)

        self._h5.visititems(visit)
        if self._frame_group(self._h5, True):
            return [self._h5]
        out = [o for o in out if not any(o.name.startswith(g) for g in groups)]
        out += [self._h5[g.rstrip("/")] for g in groups]
        return out

    def _node(self, dataset: str | None = None, level: int | None = None,
              setup: int | None = None) -> _Node:
        self._check_open()
        if self._h5 is None:
            raise FormatError(f"{self._request.filename} was opened for writing, not reading.")
        dataset = self._dataset if dataset is None else dataset
        level = self._level if level is None else level
        setup = self._setup if setup is None else setup
        key = (dataset, level, setup)
        if key not in self._nodes:
            try:
                self._nodes[key] = self._make_node(dataset, level, setup)
            except _DAMAGE as exc:
                if isinstance(exc, ImgioError):
                    raise
                raise self._damaged(exc) from exc
        return self._nodes[key]

    def _make_node(self, dataset, level, setup) -> _Node:
        f = self._h5
        if dataset is not None:
            obj = f.get(dataset)
            if obj is None:  # a missing selection: an IndexError listing what exists
                raise missing_selection(
                    self._request.filename, "dataset", dataset,
                    [f"{p} {tuple(s)} {np.dtype(d)}" for p, (s, d) in self.datasets.items()])
            if isinstance(obj, h5py.Dataset):
                if level:
                    raise selection_error(f"{self._request.filename} ({obj.name}, not a "
                                          "pyramid)", "level", level, 1)
                return self._dataset_node(obj)
            if dataset.strip("/") == "" and self._is_imaris():
                return self._imaris_node(level)
            if dataset.strip("/") == "" and self._is_bdv():
                return self._bdv_node(level, setup)
            members = self._frame_group(obj, False)
            if members is None:
                raise FormatError(
                    f"{self._request.filename}: {obj.name} is a group, not a dataset or a group "
                    "of equally shaped image datasets; its datasets: "
                    + self._listing([(k, (v.shape, v.dtype)) for k, v in obj.items()
                                     if isinstance(v, h5py.Dataset)]))
            return _StackNode(obj.name, [self._dataset_node(m) for m in members])
        if self._is_imaris():
            return self._imaris_node(level)
        if self._is_bdv():
            return self._bdv_node(level, setup)
        if level:
            raise selection_error(f"{self._request.filename} (no BigDataViewer or Imaris "
                                  "pyramid)", "level", level, 1)
        if setup:
            raise selection_error(f"{self._request.filename} (not a BigDataViewer file)",
                                  "setup", setup, 1)
        cands = self._candidates()
        if not cands:
            raise FormatError(
                f"{self._request.filename} holds no image-like dataset (numeric, 2 or more "
                "axes); its datasets: " + self._listing(list(self.datasets.items())))
        if len(cands) > 1:
            rows = []
            for c in cands:
                if isinstance(c, h5py.Group):
                    m = self._frame_group(c, True)
                    rows.append((c.name, ((len(m),) + m[0].shape, m[0].dtype)))
                else:
                    rows.append((c.name, (c.shape, c.dtype)))
            raise FormatError(
                f"{self._request.filename} holds several image datasets; choose one with "
                "dataset=...: " + self._listing(rows))
        obj = cands[0]
        if isinstance(obj, h5py.Group):
            return _StackNode(obj.name, [self._dataset_node(m)
                                         for m in self._frame_group(obj, True)])
        return self._dataset_node(obj)

    @staticmethod
    def _listing(rows) -> str:
        if not rows:
            return "(none)"
        return "; ".join(f"{p} {tuple(s)} {np.dtype(d)}" for p, (s, d) in rows)

    def _dataset_node(self, ds) -> _DatasetNode:
        node = _DatasetNode(self, ds)
        node.spacing, node.axes, node.units, node.source = _physical(ds)
        return node

    # -- BigDataViewer ---------------------------------------------------------------
    def _is_bdv(self) -> bool:
        f = self._h5
        return isinstance(f.get("s00/resolutions"), h5py.Dataset) and any(
            re.fullmatch(r"t\d{5}", k) for k in f.keys())

    def _bdv_voxel(self) -> tuple[tuple | None, str | None]:
        """(x, y, z) voxel size and unit of the setup from the BDV xml beside the file."""
        path = self._request.path
        if not path:
            return None, None
        xml = os.path.splitext(path)[0] + ".xml"
        if not os.path.isfile(xml):
            return None, None
        import xml.etree.ElementTree as ET
        try:
            root = ET.parse(xml).getroot()
            for vs in root.iter("ViewSetup"):
                if int(vs.findtext("id", "-1")) == self._setup_id:
                    size = vs.find("voxelSize")
                    if size is None:
                        return None, None
                    values = tuple(float(v) for v in size.findtext("size", "").split())
                    return (values if len(values) == 3 else None), size.findtext("unit")
        except (ET.ParseError, ValueError, OSError):
            return None, None
        return None, None

    def _bdv_node(self, level: int, setup: int) -> _Node:
        f = self._h5
        sname = f"s{setup:02d}"
        if f"{sname}/resolutions" not in f:
            setups = sorted(k for k in f.keys() if re.fullmatch(r"s\d{2}", k))
            raise selection_error(f"{self._request.filename} (BigDataViewer setups "
                                  f"{', '.join(setups)})", "setup", setup, len(setups))
        resolutions = np.asarray(f[f"{sname}/resolutions"], np.float64).reshape(-1, 3)
        if not 0 <= level < len(resolutions):
            raise selection_error(self._request.filename, "level", level, len(resolutions))
        times = sorted((k for k in f.keys() if re.fullmatch(r"t\d{5}", k)
                        and f"{k}/{sname}/{level}/cells" in f), key=_natural_key)
        if not times:
            raise FormatError(f"{self._request.filename}: no BigDataViewer cells for setup "
                              f"{setup} level {level}")
        self._setup_id = setup
        voxel, unit = self._bdv_voxel()
        nodes = []
        for t in times:
            ds = f[f"{t}/{sname}/{level}/cells"]
            # BigDataViewer stores 16-bit data as int16 and reads it as unsigned
            node = _DatasetNode(self, ds, view=np.dtype(ds.dtype.byteorder + "u2")
                                if ds.dtype.kind == "i" and ds.dtype.itemsize == 2 else None)
            node.axes = "ZYX"[-ds.ndim:]
            if voxel is not None and ds.ndim == 3:
                zyx = np.asarray(voxel[::-1]) * resolutions[level][::-1]
                node.spacing = tuple(float(f"{v:.10g}") for v in zyx)
                node.units = (normalize_unit(unit),) * 3
                node.source = "bigdataviewer"
            nodes.append(node)
        if len(nodes) == 1:
            return nodes[0]
        return _StackNode(f"{sname} level {level}", nodes, axis="T")

    # -- Imaris ------------------------------------------------------------------------
    def _is_imaris(self) -> bool:
        return isinstance(self._h5.get("DataSet/ResolutionLevel 0"), h5py.Group)

    def _imaris_node(self, level: int) -> _Node:
        f = self._h5
        lname = f"DataSet/ResolutionLevel {level}"
        if lname not in f:
            n = sum(1 for k in f["DataSet"].keys() if k.startswith("ResolutionLevel "))
            raise selection_error(self._request.filename, "level", level, n)
        lgroup = f[lname]
        times = sorted((k for k in lgroup.keys() if k.startswith("TimePoint ")), key=_natural_key)
        if not times:
            raise FormatError(f"{self._request.filename}: Imaris level {level} has no time points")
        chans = sorted((k for k in lgroup[times[0]].keys() if k.startswith("Channel ")),
                       key=_natural_key)
        info = f.get("DataSetInfo/Image")
        iattrs = info.attrs if info is not None else {}

        def number(attrs, key):
            text = _text(attrs[key]) if key in attrs else None
            try:
                return float(text) if text is not None else None
            except ValueError:
                return None

        full = [number(iattrs, k) for k in ("Z", "Y", "X")]
        ext = [(number(iattrs, f"ExtMin{i}"), number(iattrs, f"ExtMax{i}")) for i in (2, 1, 0)]
        unit = _text(iattrs["Unit"]) if "Unit" in iattrs else "um"

        def size_of(chan_group, ds) -> tuple:
            sizes = [number(chan_group.attrs, f"ImageSize{a}") for a in "ZYX"]
            if None in sizes:
                if level == 0 and None not in full:
                    sizes = full
                elif None not in full:  # lower levels: scale the real size like the data
                    base = f[f"DataSet/ResolutionLevel 0/{times[0]}/{chans[0]}/Data"].shape
                    sizes = [-(-int(fs) * s // b) for fs, s, b in zip(full, ds.shape, base)]
                else:
                    sizes = ds.shape
            return tuple(min(int(s), d) for s, d in zip(sizes, ds.shape))

        spacing = None
        def frames(t):
            nodes = []
            for c in chans:
                cg = lgroup[f"{t}/{c}"]
                ds = cg["Data"]
                node = _DatasetNode(self, ds, crop=size_of(cg, ds))
                node.attrs = {**_attrs(cg), **node.attrs}
                nodes.append(node)
            return nodes

        per_t = [frames(t) for t in times]
        shape = per_t[0][0].shape
        if all(None not in e for e in ext) and len(shape) == 3:
            spacing = tuple(float(f"{(hi - lo) / s:.10g}") for (lo, hi), s in zip(ext, shape))
        for nodes in per_t:
            for node in nodes:
                node.axes = "ZYX"
                if spacing is not None:
                    node.spacing, node.units = spacing, (normalize_unit(unit),) * 3
                    node.source = "imaris"
        tnodes = [n[0] if len(n) == 1 else _StackNode(f"{lname}/{t}", n, axis="C")
                  for t, n in zip(times, per_t)]
        if len(tnodes) == 1:
            return tnodes[0]
        return _StackNode(lname, tnodes, axis="T")

    # -- reading -------------------------------------------------------------------------
    def read(self, *, index: Any = None, dataset: str | None = None, level: int | None = None,
             setup: int | None = None, **kwargs) -> np.ndarray:
        """The dataset (``index=None`` or ``...``) or frame ``index`` along axis 0.

        The size guard (:mod:`imgio.core.limits`, ``max_bytes=``) is checked
        before anything is allocated; data stored outside the file are refused
        unless ``allow_external=True``.
        """
        limit = self._take_options(kwargs)
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.read", kwargs)
        index = self._volume_index(index)
        node = self._node(dataset, level, setup)
        whole = len(node.shape) <= 2 or index is None or index is Ellipsis
        self._check_size(node.shape if whole else node.shape[1:], node.dtype, limit)
        try:
            if len(node.shape) <= 2:  # a single image
                if index is None:
                    return node.read_all()
                if index is Ellipsis:
                    return node.read_all()[None]
                self._normalize_index(index, 1)
                return node.read_all()
            if index is None or index is Ellipsis:
                return node.read_all()
            i = self._normalize_index(index, node.shape[0], "frame")
            out = np.empty((1,) + node.shape[1:], node.dtype)
            node.read_frames(i, i + 1, out)
            return out[0]
        except _DAMAGE as exc:
            if isinstance(exc, ImgioError):
                raise
            raise self._damaged(exc) from exc

    def iter(self, *, dataset: str | None = None, level: int | None = None,
             setup: int | None = None, **kwargs) -> Iterator[np.ndarray]:
        """Yield the frames (axis 0) one at a time; a 2-D dataset yields itself once."""
        limit = self._take_options(kwargs)
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.iter", kwargs)
        node = self._node(dataset, level, setup)
        self._check_size(node.shape if len(node.shape) <= 2 else node.shape[1:], node.dtype,
                         limit)
        try:
            if len(node.shape) <= 2:
                yield node.read_all()
                return
            yield from node.iter_frames()
        except _DAMAGE as exc:
            if isinstance(exc, ImgioError):
                raise
            raise self._damaged(exc) from exc

    def properties(self, *, index: Any = None, dataset: str | None = None,
                   level: int | None = None, setup: int | None = None,
                   **kwargs) -> ImageProperties:
        self._take_options(kwargs)
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.properties", kwargs)
        index = self._volume_index(index)
        node = self._node(dataset, level, setup)
        shape, sp, ax, un = node.shape, node.spacing, node.axes, node.units
        if len(shape) <= 2:
            if index is Ellipsis:
                return ImageProperties(
                    (1,) + shape, node.dtype, n_images=1, is_batch=True,
                    spacing=None if sp is None else (None,) + tuple(sp),
                    axes=None if ax is None else "I" + ax,
                    units=None if un is None else (None,) + tuple(un))
            if index is not None:
                self._normalize_index(index, 1)
            return ImageProperties(shape, node.dtype, n_images=1, is_batch=False,
                                   spacing=sp, axes=ax, units=un)
        if index is None or index is Ellipsis:
            return ImageProperties(shape, node.dtype, n_images=shape[0], is_batch=True,
                                   spacing=sp, axes=ax, units=un)
        self._normalize_index(index, shape[0], "frame")
        return ImageProperties(shape[1:], node.dtype, spacing=None if sp is None else sp[1:],
                               axes=None if ax is None else ax[1:],
                               units=None if un is None else un[1:])

    def metadata(self, *, index: Any = None, exclude_applied: bool = True,
                 dataset: str | None = None, level: int | None = None,
                 setup: int | None = None, **kwargs) -> dict:
        """File attributes, then those of the chosen dataset, plus ``dataset``/``datasets``.

        Without ``dataset=`` in a file with several image datasets, the dict
        holds the file attributes and the listing only.
        """
        self._take_options(kwargs)
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.metadata", kwargs)
        self._check_open()
        try:
            return self._metadata(index, dataset, level, setup)
        except _DAMAGE as exc:
            if isinstance(exc, ImgioError):
                raise
            raise self._damaged(exc) from exc

    def _metadata(self, index, dataset, level, setup) -> dict:
        meta = _attrs(self._h5)
        try:
            node = self._node(dataset, level, setup)
        except FormatError as exc:
            if dataset is not None or self._dataset is not None \
                    or isinstance(exc, CorruptFileError):
                raise
            node = None
        if node is not None:
            meta.update(node.attrs)
            meta["dataset"] = node.name
            meta["spacing_source"] = node.source
            meta["shape"], meta["dtype"] = tuple(node.shape), str(node.dtype)
            if index is not None and index is not Ellipsis:
                n = node.shape[0] if len(node.shape) > 2 else 1
                meta["index"] = self._normalize_index(index, n, "frame")
        meta["datasets"] = {p: (s, str(d)) for p, (s, d) in self.datasets.items()}
        meta["dataset_details"] = self._dataset_details()
        return meta

    def _dataset_details(self) -> dict:
        """``path -> {shape, dtype, chunks, compression}`` of every dataset (``imgio info``)."""
        found: dict = {}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                found["/" + name] = {
                    "shape": list(obj.shape), "dtype": str(obj.dtype),
                    "chunks": None if obj.chunks is None else list(obj.chunks),
                    "compression": obj.compression or "none"}

        self._h5.visititems(visit)
        return found

    # -- writing -------------------------------------------------------------------------
    def _writer(self, mode: str | None):
        self._check_open()
        self._request.check_writable()
        if self._h5w is None:
            mode = mode or self._mode or "w"
            if mode not in ("w", "a"):
                raise ValueError(f"mode must be 'w' or 'a', not {mode!r}")
            local = self._request.get_local_filename()
            req = self._request
            if mode == "a" and req.kind == "path" and os.path.isfile(req.path):
                shutil.copyfile(req.path, local)
                self._sink = _WriteSink(open(local, "r+b", buffering=0))
                try:
                    self._h5w = h5py.File(self._sink, "a")
                except (OSError, ValueError) as exc:
                    self._sink.close()
                    raise CorruptFileError(
                        f"{req.filename}: cannot append to it, the existing HDF5 file cannot "
                        f"be opened: {exc}") from exc
            else:
                self._sink = _WriteSink(open(local, "w+b", buffering=0))
                self._h5w = h5py.File(self._sink, "w")
        return self._h5w

    def _target_name(self, dataset: str | None) -> str:
        if dataset is not None:
            return dataset
        name, i = "data", 0
        while name in self._written or name in self._streams:
            i += 1
            name = f"data_{i}"
        return name

    @staticmethod
    def _check_dtype(arr: np.ndarray, where: str) -> None:
        if arr.dtype.kind not in "biufc":
            raise DTypeError(f"Cannot write an array of dtype {arr.dtype} to {where}: "
                             "HDF5 images must be numeric or bool.")

    def _layout(self, shape: tuple, dtype: np.dtype, chunks, compression, shuffle,
                frames: bool) -> dict:
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

    def _set_attrs(self, ds, spacing, axes, units, metadata, extra: dict | None = None) -> None:
        where = f"{self._request.filename}:{ds.name}"
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

    def write(self, ndimage, *, is_batch: bool | None = None, dataset: str | None = None,
              compression: Any = None, compression_opts: Any = None, chunks: Any = None,
              shuffle: bool | None = None, spacing=None, axes: str | None = None, units=None,
              metadata: dict | None = None, mode: str | None = None,
              **kwargs) -> bytes | None:
        """Write ``ndimage`` (a list is stacked along a new first axis) as one dataset."""
        unknown = set(kwargs) - _H5PY_OPTIONS
        if unknown:
            raise TypeError(f"unexpected keywords for the hdf5 plugin: {sorted(unknown)}")
        f = self._writer(mode)
        dataset = self._target_name(dataset or self._dataset)
        if isinstance(ndimage, (list, tuple)):
            arr = _kernels.stack_frames([np.asarray(a) for a in ndimage])
        else:
            arr = np.asarray(ndimage)
        where = f"{self._request.filename}:{dataset}"
        self._check_dtype(arr, where)
        if dataset in f:
            del f[dataset]
        opts = self._layout(arr.shape, arr.dtype, chunks, compression, shuffle, False)
        if compression_opts is not None:
            opts["compression_opts"] = compression_opts
        opts.update(kwargs)
        if arr.ndim == 0:
            opts = {k: v for k, v in opts.items() if k in _H5PY_OPTIONS}
        ds = f.create_dataset(dataset, data=arr, **opts)
        self._written.add(dataset)
        self._set_attrs(ds, spacing, axes, units, metadata)
        if self._request.kind == "return_bytes":
            return self._close(success=True)
        return None

    def append(self, frame, *, dataset: str | None = None, compression: Any = None,
               compression_opts: Any = None, chunks: Any = None, shuffle: bool | None = None,
               spacing=None, axes: str | None = None, units=None,
               metadata: dict | None = None, mode: str | None = None, **kwargs) -> None:
        """Add one frame to a resizable dataset (created by the first call).

        Layout keywords apply to the first call; ``metadata`` (and, for the v2
        writer's meta data, any other keyword) becomes attributes.
        """
        f = self._writer(mode)
        name = dataset or self._dataset or "data"
        arr = np.asarray(frame)
        where = f"{self._request.filename}:{name}"
        ds = self._streams.get(name)
        if ds is None:
            self._check_dtype(arr, where)
            if name in f:
                del f[name]
            opts = self._layout((1,) + arr.shape, arr.dtype, chunks, compression, shuffle, True)
            if compression_opts is not None:
                opts["compression_opts"] = compression_opts
            ds = f.create_dataset(name, shape=(0,) + arr.shape, maxshape=(None,) + arr.shape,
                                  dtype=arr.dtype, **opts)
            self._streams[name] = ds
            # spacing/axes/units given per frame get the series axis in front
            if spacing is not None and len(spacing) == arr.ndim:
                spacing = (None,) + tuple(spacing)
                if units is not None and not isinstance(units, str):
                    units = ("",) + tuple(units)
            if axes is not None and len(axes) == arr.ndim:
                axes = "T" + axes
            self._set_attrs(ds, spacing, axes, units, metadata, kwargs)
        else:
            if arr.shape != ds.shape[1:]:
                raise ShapeError(f"{where}: frame has shape {arr.shape}, but the series holds "
                                 f"frames of shape {ds.shape[1:]}")
            if arr.dtype != ds.dtype:
                raise DTypeError(f"{where}: frame has dtype {arr.dtype}, but the series is "
                                 f"{ds.dtype}")
            if metadata or kwargs:
                self._set_attrs(ds, None, None, None, metadata, kwargs)
        n = ds.shape[0]
        ds.resize(n + 1, axis=0)
        if arr.size:
            ds.write_direct(np.ascontiguousarray(arr), dest_sel=np.s_[n])

    # -- region reads (imgio.lazy, imgio.to_dask) -----------------------------------------
    def _region_node(self, index: Any, dataset, level, setup, selection) -> tuple:
        """``(node, frame or None, single)`` for ``read(index=index, ...)``.

        ``frame``: the frame ``index`` picks along axis 0; ``single``: a 2-D
        image stacked as a batch of one (``index=...``).
        """
        self._take_options(selection)
        if selection:
            raise unexpected_keyword(f"{type(self).__name__}.read_region", selection)
        index = self._volume_index(index)
        node = self._node(dataset, level, setup)
        if len(node.shape) <= 2:
            if index is Ellipsis:
                return node, None, True
            if index is not None:
                self._normalize_index(index, 1)
            return node, None, False
        if index is None or index is Ellipsis:
            return node, None, False
        return node, self._normalize_index(index, node.shape[0], "frame"), False

    @staticmethod
    def _node_chunks(node) -> tuple:
        members = getattr(node, "members", None)
        if members is not None:
            return (1,) + Hdf5Plugin._node_chunks(members[0])
        ds = node.ds
        if ds.chunks is not None:
            native = tuple(ds.chunks)
        elif len(node.shape) > 2:
            native = (1,) + tuple(node.shape[1:])
        else:
            native = tuple(node.shape)
        return tuple(max(1, min(c, n)) for c, n in zip(native, node.shape))

    def chunks(self, *, index: Any = None, dataset: str | None = None, level: int | None = None,
               setup: int | None = None, **selection) -> tuple[int, ...] | None:
        """The dataset's HDF5 chunks (a contiguous dataset: one frame along axis 0)."""
        node, frame, single = self._region_node(index, dataset, level, setup, selection)
        native = self._node_chunks(node)
        if single:
            return (1,) + native
        return native[1:] if frame is not None else native

    def read_region(self, box, *, index: Any = None, out=None, dataset: str | None = None,
                    level: int | None = None, setup: int | None = None,
                    **selection) -> np.ndarray:
        """``read(...)[box]`` through h5py's ``read_direct``: HDF5 decodes only the
        chunks the box touches."""
        node, frame, single = self._region_node(index, dataset, level, setup, selection)
        if single:
            shape = (1,) + tuple(node.shape)
        elif frame is not None:
            shape = tuple(node.shape[1:])
        else:
            shape = tuple(node.shape)
        box = self._check_box(box, shape)
        out = self._region_out(box, node.dtype, out)
        if out.size == 0:
            return out
        if single:
            box, view = box[1:], out[0]
        elif frame is not None:
            box, view = (slice(frame, frame + 1),) + box, out[None]
        else:
            view = out
        try:
            self._node_region(node, box, view)
        except _DAMAGE as exc:
            if isinstance(exc, ImgioError):
                raise
            raise self._damaged(exc) from exc
        return out

    def _node_region(self, node, box, out) -> None:
        members = getattr(node, "members", None)
        if members is not None:
            a = box[0].start
            for i in range(a, box[0].stop):
                self._node_region(members[i], box[1:], out[i - a])
            return
        ds = node.ds
        if node.view is not None:
            out = out.view(ds.dtype)
        if ds.ndim == 0:
            out[...] = ds[()]
        else:
            ds.read_direct(out, source_sel=box)
