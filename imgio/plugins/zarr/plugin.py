"""The zarr plugin class: opening a store, choosing the array (OME-Zarr level,
bioformats2raw series, plain array or ``dataset=``), reading and region reads,
properties and metadata, and the write session (temporary folder renamed into
place locally; the root written last remotely).  See :mod:`imgio.plugins.zarr`.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from typing import Any, Iterator

import numpy as np
import zarr

from ...core.plugin import ImageProperties, PluginV3
from ...errors import (CorruptFileError, DTypeError, FormatError, InitializationError,
                       ShapeError)
from .ngff import _check_axes, _multiscales, _physical, _version
from .write import (LevelWriter, _clear_store, _compressors, _substore, create_ngff,
                    discard_store)

__all__ = ["ZarrPlugin"]

_WRITE_KEYS = {"axes", "spacing", "units", "levels", "downsample", "chunks", "shards",
               "compression", "compression_level", "name", "ome", "metadata"}


def _open_store(request, mode: str):
    """The zarr store of a request: local folder or fsspec URL."""
    read_only = mode == "r"
    if request.url is not None:
        from zarr.storage import FsspecStore
        return FsspecStore.from_url(request.url.rstrip("/"),
                                    storage_options=dict(request.storage_options or {}),
                                    read_only=read_only)
    from zarr.storage import LocalStore
    return LocalStore(request.path, read_only=read_only)


def _open_root(store):
    """The group or array at the root of a store, or None.  The format is tried
    explicitly (v3, then v2): zarr's own detection costs several round trips more
    on object storage."""
    from zarr.errors import (ArrayNotFoundError, ContainsArrayError, ContainsGroupError,
                             GroupNotFoundError, NodeTypeValidationError)
    missing = (GroupNotFoundError, ArrayNotFoundError, NodeTypeValidationError,
               ContainsArrayError, ContainsGroupError, FileNotFoundError, KeyError)
    for fmt in (3, 2):
        try:
            return zarr.open_group(store, mode="r", zarr_format=fmt, use_consolidated=False)
        except missing:
            pass
        try:
            return zarr.open_array(store=store, mode="r", zarr_format=fmt)
        except missing:
            pass
    return None


def _codec_name(arr) -> str | None:
    """The (first) compressor of an array, by name: ``"zstd"``, ``"blosc"``, ``"gzip"``..."""
    try:
        codecs = arr.compressors
    except Exception:  # pragma: no cover - metadata zarr cannot describe
        return None
    if not codecs:
        return None
    codec = codecs[0]
    name = getattr(codec, "codec_id", None) or type(codec).__name__
    return str(name).lower().replace("codec", "") or None


class ZarrPlugin(PluginV3):
    """Zarr arrays and OME-Zarr images (NGFF 0.4, 0.5), local or through fsspec."""

    def __init__(self, request, *, dataset: str | None = None, **kwargs) -> None:
        super().__init__(request)
        if kwargs:
            raise TypeError(f"the zarr plugin takes only dataset= when opened, got {sorted(kwargs)}")
        self._dataset = dataset
        self._writer_levels: LevelWriter | None = None
        self._tmp_dir: str | None = None
        self._root = None
        self._where = request.filename
        if request.io_mode == "r":
            if request.kind not in ("dir", "urldir"):
                raise InitializationError("not a folder or a remote Zarr store")
            try:
                self._root = _open_root(_open_store(request, "r"))
            except ValueError as exc:  # unparsable zarr.json / .zarray (JSON or fields)
                raise CorruptFileError(f"{request.filename}: its Zarr metadata cannot be "
                                       f"parsed ({exc})") from exc
            if self._root is None:
                if request.kind == "urldir":  # nothing else reads remote folders
                    from ...errors import file_not_found
                    raise file_not_found(request.filename)
                raise InitializationError("no Zarr metadata (zarr.json, .zgroup, .zarray)")
        else:
            if request.kind not in ("path", "urldir"):
                raise InitializationError(f"{request.filename} is not a folder path or a URL")
            if request.kind == "path" and not (request.path or "").lower().rstrip("/").endswith(
                    ".zarr"):
                raise InitializationError("not a .zarr target")
            self._store = None

    # -- reading -------------------------------------------------------------------------
    def _node(self, dataset: str | None = None, level: int | None = None):
        """``(array, info)``: the array selected and its NGFF description (or None)."""
        self._check_open()
        root = self._root
        path = self._dataset if dataset is None else dataset
        node = root
        if path not in (None, "", "/"):
            try:
                node = root[str(path).strip("/")]
            except KeyError:
                raise FormatError(f"{self._where} has no array or group {path!r}; it holds "
                                  + self._listing()) from None
        if isinstance(node, zarr.Array):
            if level not in (None, 0):
                raise FormatError(f"{self._where}: {path or 'the array'} is a plain Zarr "
                                  f"array with one resolution, not level {level}")
            return node, None
        ms = self._multiscales(node)
        if ms is None:
            if path in (None, "", "/"):
                for key in ("0",):  # bioformats2raw: series 0
                    if "bioformats2raw.layout" in node.attrs and key in node:
                        return self._node(key, level)
                arrays = [k for k, _ in node.arrays()]
                groups = [g for k, g in node.groups() if self._multiscales(g) is not None]
                if len(arrays) == 1 and not groups:
                    return self._node(arrays[0], level)
                if len(groups) == 1 and not arrays:
                    return self._node(groups[0].path[len(node.path):].strip("/"), level)
            raise FormatError(f"{self._where}: pick an array with dataset=; it holds "
                              + self._listing())
        datasets = ms["datasets"]
        lv = 0 if level is None else int(level)
        if not -len(datasets) <= lv < len(datasets):
            raise IndexError(f"{self._where}: level {level} is out of range (the image has "
                             f"{len(datasets)} level{'s' if len(datasets) != 1 else ''})")
        lv %= len(datasets)
        try:
            arr = node[datasets[lv]["path"]]
        except KeyError:
            raise CorruptFileError(f"{self._where}: the multiscales metadata names level "
                                   f"{datasets[lv]['path']!r}, which is missing") from None
        return arr, {"multiscale": ms, "level": lv, "n_levels": len(datasets),
                     "version": self._version(node, ms)}

    _multiscales = staticmethod(_multiscales)
    _version = staticmethod(_version)

    def _listing(self) -> str:
        items = []

        def walk(group, prefix):
            for key, arr in group.arrays():
                items.append(f"{prefix}{key} {arr.shape} {arr.dtype}")
            for key, sub in group.groups():
                if self._multiscales(sub) is not None:
                    items.append(f"{prefix}{key} (OME-Zarr image)")
                elif len(items) < 50:
                    walk(sub, f"{prefix}{key}/")
        if isinstance(self._root, zarr.Group):
            walk(self._root, "")
        return ", ".join(items) or "nothing"

    _physical = staticmethod(_physical)

    def _frame_index(self, index, n: int):
        index = self._volume_index(index)
        if index is None or index is Ellipsis:
            return None
        return self._normalize_index(index, n, "frame")

    def read(self, *, index: Any = None, dataset: str | None = None, level: int | None = None,
             out: np.ndarray | None = None, **kwargs) -> np.ndarray:
        if kwargs:
            raise TypeError(f"unexpected read keywords for the zarr plugin: {sorted(kwargs)}")
        arr, _ = self._node(dataset, level)
        i = self._frame_index(index, arr.shape[0] if arr.ndim else 1)
        box = tuple(slice(0, n) for n in (arr.shape if i is None else arr.shape[1:]))
        return self.read_region(box, index=i, out=out, dataset=dataset, level=level)

    def read_region(self, box, *, index: Any = None, out: np.ndarray | None = None,
                    dataset: str | None = None, level: int | None = None, **kwargs) -> np.ndarray:
        """``read(index=index, ...)[box]``, reading only the chunks the box touches."""
        if kwargs:
            raise TypeError(f"unexpected keywords for the zarr plugin: {sorted(kwargs)}")
        self._check_open()
        arr, _ = self._node(dataset, level)
        i = self._frame_index(index, arr.shape[0] if arr.ndim else 1)
        shape = arr.shape if i is None else arr.shape[1:]
        box = tuple(box)
        if len(box) != len(shape) or any(
                not isinstance(b, slice) or b.step not in (None, 1) or b.start is None
                or b.stop is None or not 0 <= b.start <= b.stop <= n for b, n in zip(box, shape)):
            raise ValueError(f"{self._where}: box {box} does not fit the shape {shape}")
        sel = box if i is None else (i,) + box
        bshape = tuple(b.stop - b.start for b in box)
        if out is not None:
            if out.shape != bshape or out.dtype != arr.dtype or not out.flags.c_contiguous:
                raise ValueError(f"out must be a C-contiguous {arr.dtype} array of shape "
                                 f"{bshape}, not {out.dtype} {out.shape}")
        else:
            from ...core.limits import check_nbytes
            check_nbytes(bshape, arr.dtype, self._where, None)
        try:
            if out is not None and math.prod(bshape):
                from zarr.core.buffer.cpu import NDBuffer
                arr.get_basic_selection(sel, out=NDBuffer.from_numpy_array(out))
                return out
            data = np.asarray(arr[sel])
        except (ValueError, TypeError, IndexError, MemoryError):
            raise
        except Exception as exc:  # zarr's codec errors on damaged chunks
            if type(exc).__module__.split(".")[0] in ("numcodecs", "zarr") or isinstance(
                    exc, (RuntimeError, OSError)) and not isinstance(exc, FileNotFoundError):
                raise CorruptFileError(f"{self._where}: a chunk of {arr.path or 'the array'} "
                                       f"cannot be decoded ({exc})") from exc
            raise
        if out is not None:
            out[...] = data
            return out
        return data

    def chunks(self, *, index: Any = None, dataset: str | None = None,
               level: int | None = None, **kwargs) -> tuple[int, ...] | None:
        """Chunk shape (the inner chunks of shards) of the ndimage ``read`` returns."""
        arr, _ = self._node(dataset, level)
        i = self._frame_index(index, arr.shape[0] if arr.ndim else 1)
        ch = tuple(int(c) for c in arr.chunks)
        return ch if i is None else ch[1:]

    def iter(self, *, dataset: str | None = None, level: int | None = None,
             **kwargs) -> Iterator[np.ndarray]:
        arr, _ = self._node(dataset, level)
        if arr.ndim < 3:
            yield self.read(dataset=dataset, level=level)
            return
        for i in range(arr.shape[0]):
            with self._lock:
                frame = self.read(index=i, dataset=dataset, level=level)
            yield frame

    def properties(self, *, index: Any = None, dataset: str | None = None,
                   level: int | None = None, **kwargs) -> ImageProperties:
        arr, info = self._node(dataset, level)
        axes, spacing, units = self._physical(arr, info)
        i = self._frame_index(index, arr.shape[0] if arr.ndim else 1)
        shape = tuple(arr.shape)
        if i is not None:
            return ImageProperties(shape[1:], arr.dtype, axes=None if axes is None else axes[1:],
                                   spacing=None if spacing is None else spacing[1:],
                                   units=None if units is None else units[1:])
        return ImageProperties(shape, arr.dtype, n_images=shape[0] if shape else 1,
                               is_batch=index is Ellipsis, axes=axes, spacing=spacing,
                               units=units)

    def metadata(self, *, index: Any = None, exclude_applied: bool = True,
                 dataset: str | None = None, level: int | None = None, **kwargs) -> dict:
        arr, info = self._node(dataset, level)
        meta = dict(self._root.attrs) if isinstance(self._root, zarr.Group) else {}
        meta.update({"zarr_format": arr.metadata.zarr_format, "path": arr.path,
                     "shape": tuple(arr.shape), "dtype": str(arr.dtype),
                     "chunks": tuple(arr.chunks),
                     "shards": None if arr.shards is None else tuple(arr.shards),
                     "compression": _codec_name(arr)})
        if info is not None:
            meta.update({"ngff_version": info["version"], "level": info["level"],
                         "n_levels": info["n_levels"],
                         "levels": [d["path"] for d in info["multiscale"]["datasets"]]})
            if not exclude_applied:
                meta["multiscales"] = info["multiscale"]
        axes, spacing, units = self._physical(arr, info)
        meta.update({"axes": axes, "spacing": spacing, "units": units})
        return meta

    # -- writing -------------------------------------------------------------------------
    def _write_store(self):
        request = self._request
        if request.kind == "urldir":
            return _open_store(request, "w")
        from zarr.storage import LocalStore
        directory, name = os.path.split(request.path.rstrip("/"))
        self._tmp_dir = tempfile.mkdtemp(prefix=f".{name}.", suffix=".imgio-partial",
                                         dir=directory)
        return LocalStore(self._tmp_dir, read_only=False)

    def _start(self, shape, dtype, kw: dict, grow: bool) -> None:
        unknown = set(kw) - _WRITE_KEYS
        if unknown:
            raise TypeError(f"unexpected write keywords for the zarr plugin: {sorted(unknown)}")
        dtype = np.dtype(dtype)
        if dtype.kind not in "biufc" or dtype.fields is not None:
            raise DTypeError(f"{self._where}: Zarr images hold numbers, not {dtype}")
        where = self._where
        store = self._write_store()
        method = kw.get("downsample", "mean")
        if method not in ("mean", "stride"):
            raise ValueError(f"downsample must be 'mean' or 'stride', not {method!r}")
        if kw.get("ome", True) is False:
            chunks = kw.get("chunks") or tuple(max(1, min(s or 64, 256)) for s in shape)
            spec = dict(shape=shape, dtype=dtype, chunks=chunks, shards=kw.get("shards") or None,
                        compressors=_compressors(kw.get("compression", "zstd"),
                                                 kw.get("compression_level")))
            attrs = dict(kw.get("metadata") or {})
            if self._tmp_dir is None:  # remote: the root group last, as for OME-Zarr
                _clear_store(store)
                arr = zarr.create_array(store=_substore(store, "data"), **spec)
                self._write_root = lambda: zarr.create_group(
                    store=store, zarr_format=3, attributes=attrs, overwrite=False)
                self._remote_store = store
            else:
                root = zarr.open_group(store, mode="w", zarr_format=3)
                arr = root.create_array("data", **spec)
                if attrs:
                    root.attrs.update(attrs)
            arrays, factors, levels = [arr], (1,) * len(shape), 1
        else:
            axes = _check_axes(kw.get("axes"), len(shape), where, shape)
            made = create_ngff(
                store, shape, dtype, axes=axes, spacing=kw.get("spacing"), units=kw.get("units"),
                levels=kw.get("levels"), chunks=kw.get("chunks"), shards=kw.get("shards"),
                compression=kw.get("compression", "zstd"),
                compression_level=kw.get("compression_level"), name=kw.get("name"),
                metadata=kw.get("metadata"), method=method, where=where,
                root_last=self._tmp_dir is None)
            arrays, factors = made[:2]
            self._write_root = made[2] if len(made) > 2 else None
            self._remote_store = store if self._tmp_dir is None else None
        nxt = None
        for arr in reversed(arrays):
            nxt = LevelWriter(arr, factors, method, nxt, grow)
        self._writer_levels = nxt

    def write(self, ndimage, *, is_batch: bool | None = None, **kwargs) -> None:
        self._check_open()
        self._request.check_writable()
        if self._writer_levels is not None:
            raise FormatError(f"{self._where}: the zarr plugin writes one image per store")
        if isinstance(ndimage, (list, tuple)):
            ndimage = np.stack([np.asarray(a) for a in ndimage])
        data = np.asarray(ndimage)
        if data.ndim < 2:
            raise ShapeError(f"{self._where}: Zarr images need at least 2 axes, got {data.shape}")
        self._start(data.shape, data.dtype, kwargs, grow=False)
        self._writer_levels.push(data)
        self._writer_levels.finish()

    def append(self, frame, *, axes=None, spacing=None, units=None, **kwargs) -> None:
        """Add one frame (a new first-axis row); the first call's keywords shape the store
        (``axes``/``spacing``/``units`` describe the growing array, frame axes included)."""
        self._check_open()
        self._request.check_writable()
        frame = np.asarray(frame)
        if self._writer_levels is None:
            if frame.ndim < 1:
                raise ShapeError(f"{self._where}: frames need at least 1 axis")
            kw = dict(kwargs, axes=axes, spacing=spacing, units=units)
            self._frame_shape = frame.shape
            self._start((0,) + frame.shape, frame.dtype, kw, grow=True)
            self._appending = True
        elif not getattr(self, "_appending", False):
            raise FormatError(f"{self._where}: append after write")
        if frame.shape != self._frame_shape:
            raise ShapeError(f"{self._where}: frame of shape {frame.shape}, the first was "
                             f"{self._frame_shape}")
        self._writer_levels.push(frame[None])

    def _close_backend(self) -> None:
        if getattr(self, "_appending", False) and self._writer_levels is not None:
            self._appending = False
            self._writer_levels.finish()

    def _close_locked(self, success: bool):
        if self._closed:
            return self._request._result
        try:
            result = super()._close_locked(success)
        except BaseException:
            self._discard()
            raise
        if self._tmp_dir is None and getattr(self, "_remote_store", None) is not None:
            store, self._remote_store = self._remote_store, None
            if success and self._writer_levels is not None:
                try:
                    self._write_root()  # last: now the store is an image
                except BaseException:
                    discard_store(store)
                    raise
            else:
                discard_store(store)
        if self._tmp_dir is not None:
            if success and self._writer_levels is not None:
                target = self._request.path.rstrip("/")
                old = None
                if os.path.exists(target):
                    old = target + ".imgio-old"
                    os.replace(target, old)
                os.replace(self._tmp_dir, target)
                self._tmp_dir = None
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
            else:
                self._discard()
        return result

    def _discard(self) -> None:
        if getattr(self, "_remote_store", None) is not None:
            store, self._remote_store = self._remote_store, None
            discard_store(store)
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None
