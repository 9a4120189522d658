"""NumPy's own files: ``.npy`` (one ndimage) and ``.npz`` (several).

``.npz`` members are ordered by the number in their name (``arr_0, arr_1, ...,
arr_10``), not as strings as imageio does.  Shapes and dtypes come from the
member headers, so ``improps`` never decompresses pixel data.
"""
from __future__ import annotations

import math
import re
import struct
import threading
import tokenize
import zipfile
import zlib
from typing import Any, Iterator

import numpy as np
from numpy.lib import format as npformat

from .. import _kernels
from ..core.limits import check_nbytes
from ..core.plugin import ImageProperties, PluginV3
from ..io import raw
from ..errors import unexpected_keyword
from ..errors import CorruptFileError, InitializationError, ShapeError
from .npy_sniff import sniff as _npy, sniff_npz as _zip

__all__ = ["NpyPlugin", "NpzPlugin"]

#: what NumPy, zipfile and zlib raise for damaged files (header parsing goes
#: through the tokenizer and ``ast.literal_eval``)
_DAMAGE = (ValueError, EOFError, OSError, zipfile.BadZipFile, KeyError, zlib.error,
           SyntaxError, tokenize.TokenError, struct.error, RecursionError,
           NotImplementedError, RuntimeError)  # zipfile: encrypted member


#: NumPy parses the header with ``ast.literal_eval``; CPython 3.11 before 3.11.8 can
#: raise ``SystemError: AST constructor recursion depth mismatch`` when two threads
#: build ASTs at once (cpython gh-106905), as dask's threads reading blocks of .npy
#: files do.  One lock around the few microseconds of header parsing avoids it.
_HEADER_LOCK = threading.Lock()


def _header(fh) -> tuple[tuple[int, ...], np.dtype, bool]:
    """(shape, dtype, fortran_order) from an open ``.npy`` stream."""
    version = npformat.read_magic(fh)
    reader = (npformat.read_array_header_1_0 if version == (1, 0)
              else npformat.read_array_header_2_0)
    with _HEADER_LOCK:
        shape, fortran_order, dtype = reader(fh)
    return shape, dtype, fortran_order


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


class NpyPlugin(PluginV3):
    """A ``.npy`` file holds exactly one ndimage."""

    # name, extensions, modes, description: from its registry entry (PluginSpec)

    def __init__(self, request, **kwargs) -> None:
        super().__init__(request)
        if kwargs:
            raise TypeError(f"the npy plugin takes no open() keywords, got {sorted(kwargs)}")
        if request.io_mode == "r":
            head = request.firstbytes
            if not _npy(head):
                raise InitializationError(f"not a .npy file (first bytes {head[:6]!r})")
            try:
                fh = request.get_file()
                fh.seek(0)
                self._shape, self._dtype, _ = _header(fh)
            except _DAMAGE as exc:
                raise CorruptFileError(
                    f"{request.filename}: damaged .npy header: {exc}") from exc

    def read(self, *, index: Any = None, mmap: bool = False, max_bytes=None,
             **kwargs) -> np.ndarray:
        """Read the array; ``mmap=True`` memory-maps a file on disk instead.

        The header's shape is checked against the size guard
        (:mod:`imgio.core.limits`, ``max_bytes=``) before anything is allocated.
        """
        self._check_open()
        kwargs.pop("allow_partial", None)  # a damaged .npy is never read partially
        if not (mmap and self._request.kind == "path"):
            check_nbytes(self._shape, self._dtype, self._request.filename, max_bytes)
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.read", kwargs)
        if index not in (None, 0, -1, Ellipsis):
            raise self._index_error(index, 1)
        try:
            if mmap and self._request.kind == "path":
                data = np.load(self._request.path, mmap_mode="r", allow_pickle=False)
            else:
                fh = self._request.get_file()
                fh.seek(0)
                data = np.load(fh, allow_pickle=False)
        except _DAMAGE as exc:
            raise CorruptFileError(f"{self._request.filename}: cannot read the array: {exc}") from exc
        return data[None] if index is Ellipsis else data

    def iter(self, **kwargs) -> Iterator[np.ndarray]:
        yield self.read(**kwargs)

    def properties(self, *, index: Any = None, **kwargs) -> ImageProperties:
        self._check_open()
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.properties", kwargs)
        if index not in (None, 0, -1, Ellipsis):
            raise self._index_error(index, 1)
        if index is Ellipsis:
            return ImageProperties((1,) + tuple(self._shape), self._dtype, n_images=1, is_batch=True)
        return ImageProperties(self._shape, self._dtype)

    def metadata(self, *, index: Any = None, exclude_applied: bool = True, **kwargs) -> dict:
        self._check_open()
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.metadata", kwargs)
        if index not in (None, 0, -1, Ellipsis):
            raise self._index_error(index, 1)
        return {"shape": tuple(self._shape), "dtype": str(self._dtype)}

    def write(self, ndimage, *, is_batch: bool | None = None, **kwargs) -> bytes | None:
        self._check_open()
        self._request.check_writable()
        if kwargs:
            raise TypeError(f"unexpected keywords for the npy plugin: {sorted(kwargs)}")
        if isinstance(ndimage, (list, tuple)):
            ndimage = _kernels.stack_frames(ndimage)
        np.save(self._request.get_file(), np.asarray(ndimage), allow_pickle=False)
        if self._request.kind == "return_bytes":
            return self._close(success=True)
        return None


    # -- region reads (imgio.lazy, imgio.to_dask) -----------------------------------------
    def _layout(self) -> tuple[int, bool]:
        """(offset of the raw array bytes, Fortran order) from the header."""
        try:
            fh = self._request.get_file()
            fh.seek(0)
            _, _, fortran = _header(fh)
            return fh.tell(), bool(fortran)
        except _DAMAGE as exc:
            raise CorruptFileError(f"{self._request.filename}: damaged .npy header: {exc}") from exc

    def chunks(self, *, index: Any = None, **selection) -> tuple[int, ...] | None:
        """Rows along the first axis (the last for a Fortran-order array)."""
        props = self.properties(index=index, **selection)
        if selection:
            raise TypeError(f"chunks() got an unexpected keyword argument {next(iter(selection))!r}")
        shape = tuple(self._shape)
        if len(shape) < 2:
            native = shape
        elif self._layout()[1]:
            native = shape[:-1] + (1,)
        else:
            native = (1,) + shape[1:]
        native = tuple(max(1, n) for n in native)
        return ((1,) + native) if len(props.shape) > len(shape) else native

    def read_region(self, box, *, index: Any = None, out=None, **selection) -> np.ndarray:
        """``read(...)[box]`` from the array's bytes: positioned reads of each
        contiguous run the box covers (a file on disk with many runs: a memory map)."""
        self._check_open()
        for key in selection:
            raise TypeError(f"read_region() got an unexpected keyword argument {key!r}")
        props = self.properties(index=index)
        box = self._check_box(box, props.shape)
        if self._dtype.hasobject:
            return super().read_region(box, index=index, out=out)
        out = self._region_out(box, self._dtype, out)
        if out.size == 0:
            return out
        if len(props.shape) > len(self._shape):  # index=...: a batch of one
            box, view = box[1:], out[0]
        else:
            view = out
        offset, fortran = self._layout()
        _region_from_bytes(self._request, offset, tuple(self._shape), self._dtype, fortran,
                           box, view, self._request.filename)
        return out


def _region_from_bytes(request, offset: int, shape: tuple, dtype: np.dtype, fortran: bool,
                       box: tuple, out: np.ndarray, what: str) -> None:
    """Fill ``out`` with ``array[box]`` of a raw array stored at ``offset`` of the resource."""
    size = request.size()
    nbytes = math.prod(shape) * dtype.itemsize
    if size is not None and offset + nbytes > size:
        raise CorruptFileError(
            f"{what}: the header declares {shape} {dtype} ({nbytes} bytes after offset "
            f"{offset}), but the file holds {size} bytes.")
    if fortran:  # the transposed C-order array
        shape, box = shape[::-1], box[::-1]
        tmp = np.empty(tuple(b.stop - b.start for b in box), dtype)
        _read_runs(request, offset, shape, dtype, box, tmp, what)
        out[...] = tmp.T
    else:
        _read_runs(request, offset, shape, dtype, box, out, what)


def _read_runs(request, offset: int, shape: tuple, dtype: np.dtype, box: tuple,
               out: np.ndarray, what: str) -> None:
    """Fill C-contiguous ``out`` with ``array[box]`` of a C-order array at ``offset``."""
    k = len(shape)  # axes k.. are read whole
    while k > 0 and box[k - 1].start == 0 and box[k - 1].stop == shape[k - 1]:
        k -= 1
    lead = box[:max(k - 1, 0)]  # one run per index of these axes
    runs = math.prod(b.stop - b.start for b in lead)
    if runs > 64 and request.kind == "path":
        mm = np.memmap(request.path, dtype=dtype, mode="r", offset=offset, shape=shape)
        try:
            np.copyto(out, mm[box])
        finally:
            del mm
        return
    itemsize = dtype.itemsize
    strides = [itemsize * math.prod(shape[i + 1:]) for i in range(len(shape))]
    flat = out.reshape(runs, -1) if runs else out
    run_bytes = flat.shape[-1] * itemsize if runs else 0
    base = offset + sum(box[i].start * strides[i] for i in range(len(lead), len(shape)))
    positions = [base + sum((lead[i].start + v) * strides[i] for i, v in enumerate(idx))
                 for idx in np.ndindex(*(b.stop - b.start for b in lead))]
    views = [memoryview(flat[j]).cast("B") for j in range(len(positions))]
    if request.kind == "path":  # a local file: positioned reads (imgio.io.raw)
        try:
            raw.pread_ranges(request.fileno(), views, positions)
        except raw.Truncated as exc:
            raise CorruptFileError(f"{what}: the array is truncated (read {exc.got} of "
                                   f"{exc.wanted} bytes at offset {exc.offset}).") from None
        return
    fh = request.get_file()  # a file object (remote, bytes, ...): seek + readinto
    for pos, view in zip(positions, views):
        fh.seek(pos)
        got = fh.readinto(view)
        if got != run_bytes:
            raise CorruptFileError(f"{what}: the array is truncated "
                                   f"(read {got} of {run_bytes} bytes at offset {pos}).")


class NpzPlugin(PluginV3):
    """A ``.npz`` archive: each member array is one ndimage, in natural name order."""

    # name, extensions, modes, description: from its registry entry (PluginSpec)

    def __init__(self, request, **kwargs) -> None:
        super().__init__(request)
        if kwargs:
            raise TypeError(f"the npz plugin takes no open() keywords, got {sorted(kwargs)}")
        self._zip = None
        self._pending: list[np.ndarray] = []
        if request.io_mode == "r":
            head = request.firstbytes
            if not _zip(head):
                raise InitializationError(f"not a .npz archive (first bytes {head[:4]!r})")
            try:
                self._zip = zipfile.ZipFile(request.get_file())
                names = [n for n in self._zip.namelist() if n.endswith(".npy")]
            except _DAMAGE as exc:
                raise CorruptFileError(f"{request.filename}: damaged .npz archive: {exc}") from exc
            if not names and self._zip.namelist():
                self._zip.close()
                raise InitializationError("a zip archive without .npy members")
            self._names = sorted(names, key=_natural_key)

    @property
    def keys(self) -> list[str]:
        """Member names (without ``.npy``) in the order imgio reads them."""
        return [n[:-4] for n in self._names]

    def _load(self, i: int, max_bytes=None) -> np.ndarray:
        shape, dtype, _ = self._header(i)
        check_nbytes(shape, dtype, self._request.filename, max_bytes,
                     what=f"member {self._names[i]}")
        try:
            with self._zip.open(self._names[i]) as fh:
                return npformat.read_array(fh, allow_pickle=False)
        except _DAMAGE as exc:
            raise CorruptFileError(
                f"{self._request.filename}: member {self._names[i]} is damaged: {exc}") from exc

    def _header(self, i: int):
        try:
            with self._zip.open(self._names[i]) as fh:
                return _header(fh)
        except _DAMAGE as exc:
            raise CorruptFileError(
                f"{self._request.filename}: member {self._names[i]} is damaged: {exc}") from exc

    def read(self, *, index: Any = None, max_bytes=None, **kwargs) -> np.ndarray:
        self._check_open()
        kwargs.pop("allow_partial", None)
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.read", kwargs)
        n = len(self._names)
        if index is Ellipsis:
            self._check_equal()
            shape, dtype, _ = self._header(0)
            check_nbytes((n,) + tuple(shape), dtype, self._request.filename, max_bytes)
            return _kernels.stack_frames(self._load(i, max_bytes) for i in range(n))
        i = self._normalize_index(0 if index is None else index, n, "array")
        return self._load(i) if max_bytes is None else self._load(i, max_bytes)

    def _check_equal(self) -> None:
        if not self._names:
            raise ShapeError(f"{self._request.filename}: the archive holds no arrays.")
        heads = [self._header(i)[:2] for i in range(len(self._names))]
        if len({(tuple(s), np.dtype(d)) for s, d in heads}) > 1:
            raise ShapeError(
                f"{self._request.filename}: index=... stacks all arrays, but they differ: "
                + ", ".join(f"{k} {tuple(s)} {d}" for k, (s, d) in zip(self.keys, heads)))

    def iter(self, **kwargs) -> Iterator[np.ndarray]:
        self._check_open()
        limit = kwargs.pop("max_bytes", None)
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.iter", kwargs)
        for i in range(len(self._names)):
            yield self._load(i) if limit is None else self._load(i, limit)

    def properties(self, *, index: Any = None, **kwargs) -> ImageProperties:
        self._check_open()
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.properties", kwargs)
        n = len(self._names)
        if index is Ellipsis:
            self._check_equal()
            shape, dtype, _ = self._header(0)
            return ImageProperties((n,) + tuple(shape), dtype, n_images=n, is_batch=True)
        shape, dtype, _ = self._header(self._normalize_index(0 if index is None else index, n, "array"))
        return ImageProperties(shape, dtype)

    def metadata(self, *, index: Any = None, exclude_applied: bool = True, **kwargs) -> dict:
        self._check_open()
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.metadata", kwargs)
        if index is None or index is Ellipsis:
            return {"keys": self.keys, "n_images": len(self._names)}
        i = self._normalize_index(index, len(self._names), "array")
        shape, dtype, fortran = self._header(i)
        return {"key": self.keys[i], "shape": tuple(shape), "dtype": str(dtype)}

    def write(self, ndimage, *, is_batch: bool | None = None, compress: bool = True,
              **kwargs) -> bytes | None:
        """Queue arrays; the archive is written on close (``compress=False`` stores them)."""
        self._check_open()
        self._request.check_writable()
        if kwargs:
            raise TypeError(f"unexpected keywords for the npz plugin: {sorted(kwargs)}")
        if isinstance(ndimage, (list, tuple)) and is_batch is None:
            is_batch = True
        if is_batch:
            self._pending.extend(np.asarray(a) for a in ndimage)
        else:
            self._pending.append(np.asarray(ndimage))
        self._compress = compress
        if self._request.kind == "return_bytes":
            return self._close(success=True)
        return None

    def _close_backend(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._request.io_mode == "w" and self._pending:
            save = np.savez_compressed if getattr(self, "_compress", True) else np.savez
            save(self._request.get_file(), *self._pending)
            self._pending = []

    # -- region reads: stored (uncompressed) members from their bytes, others whole
    def _stored(self, i: int) -> tuple[int, tuple, np.dtype, bool] | None:
        """(offset of the raw array, shape, dtype, fortran) of a stored member, else None."""
        info = self._zip.getinfo(self._names[i])
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            return None
        try:
            fh = self._request.get_file()
            fh.seek(info.header_offset)
            local = fh.read(30)
            if len(local) != 30 or local[:4] != b"PK\x03\x04":
                raise ValueError("bad local file header")
            n, m = struct.unpack("<HH", local[26:30])
            fh.seek(info.header_offset + 30 + n + m)
            shape, dtype, fortran = _header(fh)
            offset = fh.tell()
        except _DAMAGE as exc:
            raise CorruptFileError(
                f"{self._request.filename}: member {self._names[i]} is damaged: {exc}") from exc
        if dtype.hasobject:
            return None
        return offset, tuple(shape), dtype, bool(fortran)

    def chunks(self, *, index: Any = None, **selection) -> tuple[int, ...] | None:
        """Rows of a stored member (as for ``.npy``); None for compressed members."""
        if selection:
            raise TypeError(f"chunks() got an unexpected keyword argument "
                            f"{next(iter(selection))!r}")
        self._check_open()
        self.properties(index=index)
        n = len(self._names)
        members = range(n) if index is Ellipsis else [
            self._normalize_index(0 if index is None else index, n, "array")]
        stored = [self._stored(i) for i in members]
        if not stored or any(s is None for s in stored):
            return None
        _, shape, _, fortran = stored[0]
        if len(shape) < 2:
            native = shape
        else:
            native = shape[:-1] + (1,) if fortran else (1,) + shape[1:]
        native = tuple(max(1, v) for v in native)
        return ((1,) + native) if index is Ellipsis else native

    def read_region(self, box, *, index: Any = None, out=None, **selection) -> np.ndarray:
        """``read(...)[box]``: stored members from their bytes, compressed ones whole."""
        self._check_open()
        for key in selection:
            raise TypeError(f"read_region() got an unexpected keyword argument {key!r}")
        props = self.properties(index=index)
        box = self._check_box(box, props.shape)
        n = len(self._names)
        if index is Ellipsis:
            members = list(range(box[0].start, box[0].stop))
            inner = box[1:]
        else:
            members = [self._normalize_index(0 if index is None else index, n, "array")]
            inner = box
        stored = [self._stored(i) for i in members]
        if any(s is None for s in stored):
            return super().read_region(box, index=index, out=out)
        out = self._region_out(box, props.dtype, out)
        if out.size == 0:
            return out
        views = list(out) if index is Ellipsis else [out]
        for i, (offset, shape, dtype, fortran), view in zip(members, stored, views):
            _region_from_bytes(self._request, offset, shape, dtype, fortran, inner, view,
                               f"{self._request.filename} (member {self._names[i]})")
        return out
