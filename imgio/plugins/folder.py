"""A folder or a glob of slice files, read as one volume.

``iio.imread("stack/")`` and ``iio.imread("stack/*.tif")`` return the slices
stacked along a new first axis, in natural order (``z2`` before ``z10``).
Every slice must have the shape and dtype of the first; a mismatch names the
file.  The volume is allocated once and filled by a small thread pool, each
thread reading its slices straight into their place.  Each slice is opened
with :func:`~imgio.core.imopen.imopen` and read through its own plugin's
contract (``properties``, ``read_region(out=)``): the folder knows no format.
Region reads (``imgio.lazy``, ``imgio.to_dask``) open only the slices a box
touches and ask each for its part of the box.

``index``
    ``None`` or ``...``: the volume.  An int ``i``: slice ``i``, except that
    ``index=0`` in the v2 volume modes (``"rv"``/``"rV"``, what ``volread``
    opens with) is the volume, as the folder then holds one volume.
A folder's files are those with an extension imgio knows; a glob's files are
whatever it matches.
"""
from __future__ import annotations

import functools
import inspect
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import numpy as np

from .. import _kernels
from ..core import registry
from ..core.imopen import imopen
from ..core.limits import check_nbytes
from ..core.plugin import ImageProperties, PluginV3
from ..errors import (DTypeError, ExternalReferenceError, InitializationError, ShapeError,
                      unexpected_keyword)

#: keywords that select an image inside a file: a folder of slices has none of them
_SELECTIONS = ("series", "level", "page", "key", "dataset", "setup", "channel")

#: raw slices at least this large are read on every CPU (see _default_workers)
_THREADED_SLICE = 1 << 20
#: spellings of micrometres in ImageJ's ``unit``
_MICRONS = {"um", "µm", "μm", "micron", "microns", "micrometer", "micrometre"}

__all__ = ["FolderPlugin", "natural_key"]


def natural_key(path: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``z2`` before ``z10``."""
    parts = re.split(r"(\d+)", path)
    return tuple(int(t) if i % 2 else t.casefold() for i, t in enumerate(parts))


@functools.lru_cache(maxsize=None)
def _takes_out(cls: type) -> bool:
    """Whether a plugin class's ``read`` takes ``out=`` (an array to fill)."""
    try:
        return "out" in inspect.signature(cls.read).parameters
    except (TypeError, ValueError):
        return False


def _image_extensions() -> set[str]:
    return {ext for ext in registry.known_extensions()}


class FolderPlugin(PluginV3):
    """Slice files in a folder or matching a glob, read as one volume."""

    def __init__(self, request, **kwargs) -> None:
        super().__init__(request)
        if request.io_mode != "r" or request.kind not in ("dir", "glob"):
            raise InitializationError("not a folder or glob of slice files")
        if kwargs:
            raise TypeError(f"the folder plugin takes no open() keywords, got {sorted(kwargs)}")
        files = request.paths()
        if request.kind == "dir":
            known = _image_extensions()
            files = [p for p in files if any(p.lower().endswith(e) for e in known)]
        if not files:
            raise InitializationError(
                f"{request.filename} holds no image files (looked for the extensions "
                + " ".join(sorted(_image_extensions())) + ")")
        self._files = sorted(files, key=natural_key)
        self._slice: tuple | None = None  # (shape, dtype) of the first slice

    # -- the guards ---------------------------------------------------------------------
    _allow_external = False

    def _take_guard_options(self, kwargs: dict):
        """Pop ``allow_external``/``allow_partial`` (kept) and ``max_bytes`` (returned)."""
        if "allow_external" in kwargs:
            self._allow_external = bool(kwargs.pop("allow_external"))
        kwargs.pop("allow_partial", None)
        return kwargs.pop("max_bytes", None)

    def _check_links(self) -> None:
        """Refuse folder entries that are symlinks pointing out of the folder."""
        if self._allow_external or self._request.kind != "dir":
            return
        root = os.path.realpath(self._request.path)
        for path in self._files:
            if not os.path.islink(path):
                continue
            real = os.path.realpath(path)
            if os.path.commonpath([root, real]) != root:
                raise ExternalReferenceError(
                    f"{self._request.filename}: the entry {os.path.basename(path)} is a "
                    f"symlink to {real}, outside the folder; imgio reads only what you "
                    "named. Pass allow_external=True to follow it.")

    # -- what the folder holds ---------------------------------------------------------
    @property
    def files(self) -> list[str]:
        """The slice files, in reading order."""
        return list(self._files)

    def _first(self) -> tuple[tuple, np.dtype]:
        if self._slice is None:
            shape, dtype = self._slice_info(self._files[0])
            self._slice = (shape, dtype)
        return self._slice

    @staticmethod
    def _slice_info(path: str) -> tuple[tuple, np.dtype]:
        with imopen(path, "r") as f:
            props = f.properties()
        return tuple(props.shape), props.dtype

    def _is_volume(self, index: Any) -> bool:
        """Whether ``index`` means the whole stack (``None``, ``...``, or v2's volread 0)."""
        index = self._volume_index(index)
        return index is None or index is Ellipsis

    # -- reading ------------------------------------------------------------------------
    def read(self, *, index: Any = None, out: np.ndarray | None = None,
             maxworkers: int | None = None, progress=None, **kwargs) -> np.ndarray:
        """The volume (``index=None``/``...``) or slice ``index``.

        Other keywords (e.g. ``fast=False``) go to each slice's own plugin, which
        honours or refuses them.  Selection keywords are refused: a folder
        selects a slice by ``index`` alone.  Entries that are symlinks out of the
        folder are refused unless ``allow_external=True``; the volume is checked
        against the size guard (``max_bytes=``, :mod:`imgio.core.limits`) before
        it is allocated.
        """
        self._check_open()
        self._max_bytes = self._take_guard_options(kwargs)
        self._check_links()
        picked = [k for k in kwargs if k in _SELECTIONS]
        if picked:
            raise unexpected_keyword(f"{type(self).__name__}.read", picked)
        if not self._is_volume(index):
            i = self._normalize_index(index, len(self._files), "slice")
            path = self._files[i]
            if out is None:
                shape, dtype = self._slice_info(path)
                check_nbytes(shape, dtype, path)
                out = np.empty(shape, dtype)
            self._read_into(path, out, kwargs, what=f"slice {i}")
            return out
        return self._read_volume(out, maxworkers, kwargs, progress)

    def _read_volume(self, out, maxworkers, kwargs, progress=None) -> np.ndarray:
        """Fill the volume; ``progress`` (``True`` or ``callback(done, total)``)
        is told as slices finish."""
        from ..progress import make_progress
        with make_progress(progress, len(self._files), "slices", unit="slice") as prog:
            return self._fill_volume(out, maxworkers, kwargs, prog)

    def _fill_volume(self, out, maxworkers, kwargs, prog) -> np.ndarray:
        shape, dtype = self._first()
        n = len(self._files)
        full = (n,) + tuple(shape)
        if out is None:
            check_nbytes(full, dtype, self._request.filename, getattr(self, "_max_bytes", None),
                         what=f"a volume of {n} slices")
            out = np.empty(full, dtype)
        elif not isinstance(out, np.ndarray) or out.shape != full:
            raise ShapeError(f"out has shape {getattr(out, 'shape', None)}, but the "
                             f"{n} slices of {self._request.filename} make {full}")
        elif out.dtype != dtype:
            raise DTypeError(f"out has dtype {out.dtype}, but the slices are {dtype}")
        if maxworkers is None:
            workers = self._default_workers(shape, dtype)
        else:
            workers = max(1, int(maxworkers))
        workers = min(workers, n)

        def job(i: int) -> None:
            self._read_into(self._files[i], out[i], kwargs, what=f"slice {i}")

        if workers == 1:
            for i in range(n):
                job(i)
                prog.advance()
            return out
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(job, i) for i in range(n)]
            try:
                for f in futures:
                    f.result()
                    prog.advance()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return out

    def _default_workers(self, shape, dtype) -> int:
        """Threads for a volume read: one for small raw slices, else one per CPU.

        Each slice read holds the GIL for its ~20 us of Python; when the read
        itself is a short copy, two threads mostly trade the GIL.  Measured
        (2 cores, uint16 slices, imread of the folder): 128 KiB raw slices
        10.1 ms on one thread vs 21.8 ms on two, 512 KiB even, 2 MiB 0.90x on
        two; zlib slices gain at every size (128 KiB: 0.70x), since inflating
        releases the GIL.  So: one thread when the first slice is stored raw
        (file about as large as its pixels) and under ``_THREADED_SLICE``.
        """
        cpus = os.cpu_count() or 1
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if cpus == 1 or nbytes >= _THREADED_SLICE:
            return cpus
        try:
            stored = os.path.getsize(self._files[0])
        except OSError:
            return cpus
        return 1 if stored >= nbytes else cpus

    def _mismatch(self, path: str, what: str, shape, dtype, want_shape, want_dtype) -> ShapeError:
        cls = ShapeError if tuple(shape) != tuple(want_shape) else DTypeError
        return cls(f"{path}: {what} has shape {tuple(shape)} and dtype {dtype}, but "
                   f"{self._files[0]} has {tuple(want_shape)} {want_dtype}; every slice of "
                   f"{self._request.filename} must have the same shape and dtype.")

    def _read_into(self, path: str, dst: np.ndarray, kwargs: dict, what: str,
                   box: tuple | None = None) -> None:
        """Read one slice file (or the ``box`` of it) into ``dst``, checking its shape and dtype.

        A whole slice goes to its plugin's ``read(out=dst)`` when that ``read``
        takes ``out`` (the plugin checks the shape; the TIFF fast path then
        never parses the file twice), else ``read()`` and a copy.
        """
        with imopen(path, "r") as f:
            if box is None and not kwargs and dst.flags.c_contiguous and _takes_out(type(f)):
                try:
                    got = f.read(out=dst)
                except (ShapeError, DTypeError) as exc:
                    msg = str(exc) if path in str(exc) else f"{path}: {what}: {exc}"
                    raise type(exc)(msg) from exc
                if got is not dst:
                    if got.shape != dst.shape or got.dtype != dst.dtype:
                        raise self._mismatch(path, what, got.shape, got.dtype, dst.shape,
                                             dst.dtype)
                    _kernels.copy_frame(dst, got)
                return
            props = f.properties()
            shape, dtype = tuple(props.shape), props.dtype
            expected = dst.shape if box is None else self._first()[0]
            if shape != tuple(expected) or dtype != dst.dtype:
                raise self._mismatch(path, what, shape, dtype, expected, dst.dtype)
            if kwargs:  # keywords for the slice's plugin: its read() takes them
                image = f.read(**kwargs)
                _kernels.copy_frame(dst, image if box is None else image[box])
            elif dst.flags.c_contiguous:
                f.read_region(box or tuple(slice(0, n) for n in shape), out=dst)
            else:
                np.copyto(dst, f.read_region(box or tuple(slice(0, n) for n in shape)))

    def iter(self, **kwargs) -> Iterator[np.ndarray]:
        """Yield the slices one by one, in natural order."""
        self._check_open()
        self._take_guard_options(kwargs)
        self._check_links()
        for i in range(len(self._files)):
            yield self.read(index=i, **kwargs)

    # -- what it looks like ---------------------------------------------------------------
    def properties(self, *, index: Any = None, **kwargs) -> ImageProperties:
        """Shape ``(n, *slice)`` and the slices' spacing, reading one slice's header only."""
        self._check_open()
        self._take_guard_options(kwargs)
        self._check_links()
        if not self._is_volume(index):
            i = self._normalize_index(index, len(self._files), "slice")
            with imopen(self._files[i], "r") as f:
                return f.properties(**kwargs)
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.properties", kwargs)
        with imopen(self._files[0], "r") as f:
            props = f.properties()
        if self._slice is None:
            self._slice = (tuple(props.shape), props.dtype)
        n = len(self._files)
        axes = None if props.axes is None else "Z" + props.axes
        spacing = units = None
        dz = self._z_spacing()
        if props.spacing is not None or dz is not None:
            rest = props.spacing or (None,) * len(props.shape)
            rest_u = props.units or (None,) * len(props.shape)
            spacing = (dz[0] if dz else None,) + tuple(rest)
            units = (dz[1] if dz else None,) + tuple(rest_u)
        batch = index is Ellipsis
        return ImageProperties(shape=(n,) + tuple(props.shape), dtype=props.dtype,
                               n_images=n if batch else None, is_batch=batch,
                               spacing=spacing, axes=axes, units=units)

    def _z_spacing(self) -> tuple[float, str | None] | None:
        """The slice spacing an ImageJ slice records (``spacing`` and ``unit``), if any."""
        try:
            with imopen(self._files[0], "r") as f:
                ij = f.metadata().get("imagej_metadata")
        except Exception:
            return None
        if not isinstance(ij, dict):
            return None
        try:
            dz = float(ij.get("spacing"))
        except (TypeError, ValueError):
            return None
        unit = ij.get("unit")
        if isinstance(unit, str) and unit.strip().lower() in _MICRONS:
            unit = "um"
        if not (dz > 0 and dz == dz and dz != float("inf")) or not isinstance(unit, str):
            return None
        return dz, unit

    def metadata(self, *, index: Any = None, exclude_applied: bool = True, **kwargs) -> dict:
        """``index=None``: the file list plus the first slice's metadata; ``i``: slice ``i``'s."""
        self._check_open()
        self._take_guard_options(kwargs)
        self._check_links()
        if not self._is_volume(index):
            i = self._normalize_index(index, len(self._files), "slice")
            with imopen(self._files[i], "r") as f:
                return f.metadata(exclude_applied=exclude_applied, **kwargs)
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.metadata", kwargs)
        with imopen(self._files[0], "r") as f:
            first = f.metadata(exclude_applied=exclude_applied)
        return {"files": list(self._files), "n_files": len(self._files),
                "first_slice": first}

    # -- region reads (imgio.lazy, imgio.to_dask) -----------------------------------------
    def chunks(self, *, index: Any = None, **selection) -> tuple[int, ...] | None:
        """One slice along the first axis, and each slice's own chunks."""
        self._check_open()
        self._take_guard_options(selection)
        self._check_links()
        if selection:
            raise unexpected_keyword(f"{type(self).__name__}.chunks", selection)
        if not self._is_volume(index):
            i = self._normalize_index(index, len(self._files), "slice")
            with imopen(self._files[i], "r") as f:
                return f.chunks()
        with imopen(self._files[0], "r") as f:
            inner = f.chunks()
            if inner is None:
                inner = tuple(f.properties().shape)
        return (1,) + tuple(inner)

    def read_region(self, box, *, index: Any = None, out=None, **selection) -> np.ndarray:
        """``read(...)[box]``: each slice the box touches, opened and asked for its part."""
        self._check_open()
        self._take_guard_options(selection)
        self._check_links()
        if selection:
            raise unexpected_keyword(f"{type(self).__name__}.read_region", selection)
        if not self._is_volume(index):
            i = self._normalize_index(index, len(self._files), "slice")
            with imopen(self._files[i], "r") as f:
                return f.read_region(box, out=out)
        shape, dtype = self._first()
        box = self._check_box(box, (len(self._files),) + tuple(shape))
        out = self._region_out(box, dtype, out)
        if out.size:
            a = box[0].start
            for i in range(a, box[0].stop):
                self._read_into(self._files[i], out[i - a], {}, f"slice {i}", box=box[1:])
        return out
