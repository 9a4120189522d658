"""NumPy's own files: ``.npy`` (one ndimage) and ``.npz`` (several).

``.npz`` members are ordered by the number in their name (``arr_0, arr_1, ...,
arr_10``), not as strings as imageio does.  Shapes and dtypes come from the
member headers, so ``improps`` never decompresses pixel data.
"""
from __future__ import annotations

import re
import struct
import tokenize
import zipfile
import zlib
from typing import Any, Iterator

import numpy as np
from numpy.lib import format as npformat

from .. import _kernels
from ..core.plugin import ImageProperties, PluginV3
from ..core.registry import _npy, _zip
from ..errors import CorruptFileError, InitializationError, ShapeError

__all__ = ["NpyPlugin", "NpzPlugin"]

#: what NumPy, zipfile and zlib raise for damaged files (header parsing goes
#: through the tokenizer and ``ast.literal_eval``)
_DAMAGE = (ValueError, EOFError, OSError, zipfile.BadZipFile, KeyError, zlib.error,
           SyntaxError, tokenize.TokenError, struct.error, RecursionError,
           NotImplementedError, RuntimeError)  # zipfile: encrypted member


def _header(fh) -> tuple[tuple[int, ...], np.dtype, bool]:
    """(shape, dtype, fortran_order) from an open ``.npy`` stream."""
    version = npformat.read_magic(fh)
    reader = (npformat.read_array_header_1_0 if version == (1, 0)
              else npformat.read_array_header_2_0)
    shape, fortran_order, dtype = reader(fh)
    return shape, dtype, fortran_order


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


class NpyPlugin(PluginV3):
    """A ``.npy`` file holds exactly one ndimage."""

    name = "npy"
    description = "NumPy .npy array file"
    extensions = (".npy",)

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

    def read(self, *, index: Any = None, mmap: bool = False, **kwargs) -> np.ndarray:
        """Read the array; ``mmap=True`` memory-maps a file on disk instead."""
        self._check_open()
        if kwargs:
            raise TypeError(f"unexpected keywords for the npy plugin: {sorted(kwargs)}")
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
        if index not in (None, 0, -1, Ellipsis):
            raise self._index_error(index, 1)
        if index is Ellipsis:
            return ImageProperties((1,) + tuple(self._shape), self._dtype, n_images=1, is_batch=True)
        return ImageProperties(self._shape, self._dtype)

    def metadata(self, *, index: Any = None, exclude_applied: bool = True, **kwargs) -> dict:
        self._check_open()
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


class NpzPlugin(PluginV3):
    """A ``.npz`` archive: each member array is one ndimage, in natural name order."""

    name = "npz"
    description = "NumPy .npz archive of arrays"
    extensions = (".npz",)

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

    def _load(self, i: int) -> np.ndarray:
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

    def read(self, *, index: Any = None, **kwargs) -> np.ndarray:
        self._check_open()
        if kwargs:  # Python's own wording, which callers such as scikit-image test for
            raise TypeError(f"{type(self).__name__}.read() got an unexpected keyword "
                            f"argument '{next(iter(kwargs))}'")
        n = len(self._names)
        if index is Ellipsis:
            self._check_equal()
            return _kernels.stack_frames(self._load(i) for i in range(n))
        return self._load(self._normalize_index(0 if index is None else index, n, "array"))

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
        for i in range(len(self._names)):
            yield self._load(i)

    def properties(self, *, index: Any = None, **kwargs) -> ImageProperties:
        self._check_open()
        n = len(self._names)
        if index is Ellipsis:
            self._check_equal()
            shape, dtype, _ = self._header(0)
            return ImageProperties((n,) + tuple(shape), dtype, n_images=n, is_batch=True)
        shape, dtype, _ = self._header(self._normalize_index(0 if index is None else index, n, "array"))
        return ImageProperties(shape, dtype)

    def metadata(self, *, index: Any = None, exclude_applied: bool = True, **kwargs) -> dict:
        self._check_open()
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
