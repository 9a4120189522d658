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
chunks are read by their file offsets (:mod:`imgio.io.raw`) and decoded with
imagecodecs (libdeflate) in a pool of two threads, the byte shuffle undone by
NumPy straight into the output.  Uncompressed whole-frame chunks are read with
one ``preadv`` into the output array.  Any other layout goes through h5py's
``read_direct`` into preallocated buffers, several frames (whole chunks) at a
time.  Both paths give exactly what h5py returns.  Chunks of 256 KiB and more
are decoded on the pool; smaller ones on the calling thread (a thread hand-off
costs more than inflating them).  The chunk code lives in
:mod:`imgio.plugins.hdf5.chunks`, the layouts in :mod:`~imgio.plugins.hdf5.layouts`.

Fast writes
-----------
gzip datasets (``compression="gzip"`` or a level number, with or without
shuffle, no other filter) are compressed by imgio: each chunk is shuffled by
NumPy and deflated by libdeflate (imagecodecs' ``deflate_encode``, a zlib
stream as HDF5's deflate filter writes it) on every core, then stored with
h5py's ``write_direct_chunk``; the dataset declares the same filter pipeline,
so h5py and HDF5 read it as usual.  Appended frames with whole-frame chunks
are stored as direct chunks too (gzip frames compressed on the pool while the
caller produces the next).  See :mod:`imgio.plugins.hdf5.writer`.

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

import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import h5py
import numpy as np

from ... import _kernels
from ...core.limits import check_nbytes
from ...core.plugin import ImageProperties, PluginV3
from ...errors import missing_selection, selection_error, unexpected_keyword
from ...errors import (CorruptFileError, DTypeError, ExternalReferenceError, FormatError,
                       ImgioError, InitializationError, ShapeError)
from ...io import raw
from . import sniff as _hdf5
from .chunks import WORKERS as _WORKERS
from .layouts import (_DatasetNode, _Node, _StackNode, _attrs, _image_like, _natural_key,
                      _physical, bdv_node, imaris_node, is_bdv, is_imaris)
from .writer import Stream, _WriteSink, check_dtype, cpu_workers, layout, set_attrs, write_dataset

__all__ = ["Hdf5Plugin"]

#: what h5py raises for damaged files (its file-object driver adds OverflowError)
_DAMAGE = (OSError, RuntimeError, OverflowError, KeyError, ValueError, SystemError)
#: h5py create_dataset options passed through by write()
_H5PY_OPTIONS = {"fletcher32", "scaleoffset", "fillvalue", "track_times", "track_order",
                 "dcpl", "external", "allow_unknown_filter"}


class Hdf5Plugin(PluginV3):
    """HDF5 files through h5py (see the module docstring)."""

    def __init__(self, request, *, dataset: str | None = None, level: int = 0, setup: int = 0,
                 mode: str | None = None, allow_external: bool = False, **kwargs) -> None:
        super().__init__(request)
        self._allow_external = bool(allow_external)
        kwargs.pop("allow_partial", None)  # HDF5 damage is never read partially
        self._h5 = None
        self._h5w = None
        self._fd: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._wexecutor: ThreadPoolExecutor | None = None
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
    def _write_pool(self) -> ThreadPoolExecutor:
        """Threads that compress chunks for writing (every core)."""
        if self._wexecutor is None:
            self._wexecutor = ThreadPoolExecutor(cpu_workers(), thread_name_prefix="imgio-h5w")
        return self._wexecutor

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(_WORKERS, thread_name_prefix="imgio-hdf5")
        return self._executor

    def _raw_sources(self) -> tuple[int | None, memoryview | None]:
        """(file descriptor, in-memory bytes) the fast path may read chunks from."""
        kind = self._request.kind
        if kind == "path" and hasattr(os, "preadv"):
            if self._fd is None:
                self._fd = raw.open_fd(self._request.path)
            return self._fd, None
        if kind == "bytes":
            return None, memoryview(self._request.firstbytes_all())
        return None, None

    def _close_backend(self) -> None:
        try:
            try:
                for stream in self._streams.values():  # frames still being compressed
                    stream.flush()
            finally:
                for attr in ("_executor", "_wexecutor"):
                    pool = getattr(self, attr)
                    if pool is not None:
                        pool.shutdown(wait=True, cancel_futures=True)
                        setattr(self, attr, None)
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
            if dataset.strip("/") == "" and is_imaris(self._h5):
                return imaris_node(self, level)
            if dataset.strip("/") == "" and is_bdv(self._h5):
                return bdv_node(self, level, setup)
            members = self._frame_group(obj, False)
            if members is None:
                raise FormatError(
                    f"{self._request.filename}: {obj.name} is a group, not a dataset or a group "
                    "of equally shaped image datasets; its datasets: "
                    + self._listing([(k, (v.shape, v.dtype)) for k, v in obj.items()
                                     if isinstance(v, h5py.Dataset)]))
            return _StackNode(obj.name, [self._dataset_node(m) for m in members])
        if is_imaris(self._h5):
            return imaris_node(self, level)
        if is_bdv(self._h5):
            return bdv_node(self, level, setup)
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
                self._sink = _WriteSink(req.open_local(buffering=0))
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
        check_dtype(arr, where)
        if dataset in f:
            del f[dataset]
        opts = layout(arr.shape, arr.dtype, chunks, compression, shuffle, False)
        if compression_opts is not None:
            opts["compression_opts"] = compression_opts
        opts.update(kwargs)
        if arr.ndim == 0:
            opts = {k: v for k, v in opts.items() if k in _H5PY_OPTIONS}
        ds = write_dataset(f, dataset, arr, opts, self._write_pool)
        self._written.add(dataset)
        set_attrs(ds, where, spacing, axes, units, metadata)
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
        stream = self._streams.get(name)
        if stream is None:
            check_dtype(arr, where)
            if name in f:
                del f[name]
            opts = layout((1,) + arr.shape, arr.dtype, chunks, compression, shuffle, True)
            if compression_opts is not None:
                opts["compression_opts"] = compression_opts
            ds = f.create_dataset(name, shape=(0,) + arr.shape, maxshape=(None,) + arr.shape,
                                  dtype=arr.dtype, **opts)
            stream = self._streams[name] = Stream(ds, self._write_pool)
            # spacing/axes/units given per frame get the series axis in front
            if spacing is not None and len(spacing) == arr.ndim:
                spacing = (None,) + tuple(spacing)
                if units is not None and not isinstance(units, str):
                    units = ("",) + tuple(units)
            if axes is not None and len(axes) == arr.ndim:
                axes = "T" + axes
            set_attrs(ds, where, spacing, axes, units, metadata, kwargs)
        else:
            ds = stream.ds
            if arr.shape != stream.frame_shape:
                raise ShapeError(f"{where}: frame has shape {arr.shape}, but the series holds "
                                 f"frames of shape {stream.frame_shape}")
            if arr.dtype != stream.dtype:
                raise DTypeError(f"{where}: frame has dtype {arr.dtype}, but the series is "
                                 f"{stream.dtype}")
            if metadata or kwargs:
                set_attrs(ds, where, None, None, None, metadata, kwargs)
        stream.append(arr)

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
