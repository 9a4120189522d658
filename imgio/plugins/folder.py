"""A folder or a glob of slice files, read as one volume.

``iio.imread("stack/")`` and ``iio.imread("stack/*.tif")`` return the slices
stacked along a new first axis, in natural order (``z2`` before ``z10``).
Every slice must have the shape and dtype of the first; a mismatch names the
file.  The volume is allocated once and filled by a small thread pool, each
thread reading its slices straight into their place: TIFF slices through
:mod:`imgio._fasttiff` (when it takes the file) or tifffile, other formats
through :func:`imgio.v3.imread`.

``index``
    ``None`` or ``...``: the volume.  An int ``i``: slice ``i``, except that
    ``index=0`` in the v2 volume modes (``"rv"``/``"rV"``, what ``volread``
    opens with) is the volume, as the folder then holds one volume.
A folder's files are those with an extension imgio knows; a glob's files are
whatever it matches.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import numpy as np

from .. import _fasttiff, _kernels
from ..core import registry
from ..core.plugin import ImageProperties, PluginV3
from ..errors import (CorruptFileError, DTypeError, ExternalReferenceError, ImageTooLargeError,
                      InitializationError,
                      ShapeError)
from . import tifffile as _tp

#: raw slices at least this large are read on every CPU (see _default_workers)
_THREADED_SLICE = 1 << 20
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)

__all__ = ["FolderPlugin", "natural_key"]


def natural_key(path: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``z2`` before ``z10``."""
    parts = re.split(r"(\d+)", path)
    return tuple(int(t) if i % 2 else t.casefold() for i, t in enumerate(parts))


def _image_extensions() -> set[str]:
    return {ext for ext in registry.known_extensions()}


def _is_tiff_file(path: str) -> bool:
    with open(path, "rb") as fh:
        return registry._tiff(fh.read(4))


class FolderPlugin(PluginV3):
    """Slice files in a folder or matching a glob, read as one volume."""

    name = "folder"
    description = "A folder or glob of slice files read as one volume"
    extensions = ()
    modes = "iIvV"

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
        if _is_tiff_file(path):
            import tifffile
            try:
                with tifffile.TiffFile(path) as tif:
                    ser = tif.series[0]
                    return tuple(ser.shape), ser.dtype
            except _tp._DAMAGE as exc:
                raise CorruptFileError(f"{path}: cannot parse this TIFF slice: {exc}") from exc
        from .. import v3
        props = v3.improps(path)
        return props.shape, props.dtype

    def _is_volume(self, index: Any) -> bool:
        """Whether ``index`` means the whole stack (``None``, ``...``, or v2's volread 0)."""
        index = self._volume_index(index)
        return index is None or index is Ellipsis

    # -- reading ------------------------------------------------------------------------
    def read(self, *, index: Any = None, out: np.ndarray | None = None,
             maxworkers: int | None = None, fast: bool = True, progress=None,
             **kwargs) -> np.ndarray:
        """The volume (``index=None``/``...``) or slice ``index``.

        Entries that are symlinks out of the folder are refused unless
        ``allow_external=True``; the volume is checked against the size guard
        (``max_bytes=``, :mod:`imgio.core.limits`) before it is allocated.
        """
        self._check_open()
        self._max_bytes = self._take_guard_options(kwargs)
        self._check_links()
        if kwargs:
            raise TypeError(f"the folder plugin's read() got unexpected keywords {sorted(kwargs)}")
        if not self._is_volume(index):
            i = self._normalize_index(index, len(self._files), "slice")
            path = self._files[i]
            if out is None:
                shape, dtype = self._slice_info(path)
                out = np.empty(shape, dtype)
            self._read_into(path, out, fast, what=f"slice {i}")
            return out
        return self._read_volume(out, maxworkers, fast, progress)

    def _read_volume(self, out, maxworkers, fast, progress=None) -> np.ndarray:
        """Fill the volume; ``progress`` (``True`` or ``callback(done, total)``)
        is told as slices finish."""
        from ..progress import make_progress
        with make_progress(progress, len(self._files), "slices", unit="slice") as prog:
            return self._fill_volume(out, maxworkers, fast, prog)

    def _fill_volume(self, out, maxworkers, fast, prog) -> np.ndarray:
        shape, dtype = self._first()
        n = len(self._files)
        full = (n,) + tuple(shape)
        if out is None:
            nbytes = float(np.prod(full, dtype=np.float64)) * dtype.itemsize
            if nbytes > _tp._memory_limit(getattr(self, "_max_bytes", None)):
                raise ImageTooLargeError(
                    f"{self._request.filename}: {n} slices of {shape} {dtype} make "
                    f"{nbytes / 2**30:.1f} GiB, more than imgio may allocate "
                    f"({_tp._memory_limit(getattr(self, '_max_bytes', None)) / 2**30:.3g} "
                    "GiB, max_bytes= / IMGIO_MAX_BYTES); read slices with index=i or imiter().")
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
            self._read_into(self._files[i], out[i], fast, what=f"slice {i}")

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

    def _mismatch(self, path: str, what: str, shape, dtype, dst: np.ndarray) -> ShapeError:
        cls = ShapeError if tuple(shape) != dst.shape else DTypeError
        return cls(f"{path}: {what} has shape {tuple(shape)} and dtype {dtype}, but "
                   f"{self._files[0]} has {dst.shape} {dst.dtype}; every slice of "
                   f"{self._request.filename} must have the same shape and dtype.")

    def _read_into(self, path: str, dst: np.ndarray, fast: bool, what: str) -> None:
        """Read one slice file into ``dst`` (checking its shape and dtype)."""
        if fast and dst.flags.c_contiguous:
            # one open per slice: the head read here both identifies TIFF and
            # serves the fast parser, which reads the pixels from the same descriptor
            fd = os.open(path, _READ_FLAGS)
            try:
                size = os.fstat(fd).st_size
                head = os.pread(fd, _fasttiff._HEAD, 0)  # all the parser reads first
                if not registry._tiff(head[:4]):
                    tiff = False
                else:
                    tiff = True
                    try:
                        got = _tp._try_fast(path, out=dst, fd=fd, head=head, size=size)
                    except (ShapeError, DTypeError) as exc:
                        msg = str(exc) if path in str(exc) else f"{path}: {what}: {exc}"
                        raise type(exc)(msg) from exc
                    if got is not None:
                        if got is not dst:
                            if got.shape != dst.shape or got.dtype != dst.dtype:
                                raise self._mismatch(path, what, got.shape, got.dtype, dst)
                            _kernels.copy_frame(dst, got)
                        return
            finally:
                os.close(fd)
        else:
            tiff = _is_tiff_file(path)
        if tiff:
            self._read_tiff_into(path, dst, what)
            return
        from .. import v3
        image = v3.imread(path)
        if image.shape != dst.shape or image.dtype != dst.dtype:
            raise self._mismatch(path, what, image.shape, image.dtype, dst)
        _kernels.copy_frame(dst, image)

    def _read_tiff_into(self, path: str, dst: np.ndarray, what: str) -> None:
        import tifffile
        try:
            with tifffile.TiffFile(path) as tif:
                ser = tif.series[0]
                if tuple(ser.shape) != dst.shape or ser.dtype != dst.dtype:
                    raise self._mismatch(path, what, ser.shape, ser.dtype, dst)
                offset = ser.dataoffset if ser.keyframe.compression == 1 else None
                if offset is not None and dst.flags.c_contiguous and ser.dtype.kind in "biufc":
                    size = os.path.getsize(path)
                    if offset + dst.nbytes > size:
                        raise CorruptFileError(
                            f"{path}: {what} declares {dst.nbytes} bytes of pixels at offset "
                            f"{offset}, but the file holds only {size} bytes.")
                    _tp._pread_into(path, offset, dst, 1)
                    if tif.byteorder != _tp._NATIVE and dst.dtype.itemsize > 1:
                        dst.byteswap(inplace=True)
                else:
                    ser.asarray(out=dst, maxworkers=1)
        except (ShapeError, DTypeError, CorruptFileError):
            raise
        except _tp._DAMAGE as exc:
            raise CorruptFileError(f"{path}: {what} cannot be read: {exc}") from exc

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
        from .. import v3
        if not self._is_volume(index):
            i = self._normalize_index(index, len(self._files), "slice")
            return v3.improps(self._files[i], **kwargs)
        props = v3.improps(self._files[0])
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
        path = self._files[0]
        if not _is_tiff_file(path):
            return None
        import tifffile
        try:
            with tifffile.TiffFile(path) as tif:
                ij = tif.imagej_metadata if tif.is_imagej else None
        except Exception:
            return None
        if not ij:
            return None
        dz = _tp._positive(ij.get("spacing"))
        unit = _tp.normalize_unit(ij.get("unit"))
        return (dz, unit) if dz is not None and unit is not None else None

    def metadata(self, *, index: Any = None, exclude_applied: bool = True, **kwargs) -> dict:
        """``index=None``: the file list plus the first slice's metadata; ``i``: slice ``i``'s."""
        self._check_open()
        from .. import v3
        if not self._is_volume(index):
            i = self._normalize_index(index, len(self._files), "slice")
            return v3.immeta(self._files[i], exclude_applied=exclude_applied, **kwargs)
        return {"files": list(self._files), "n_files": len(self._files),
                "first_slice": v3.immeta(self._files[0], exclude_applied=exclude_applied)}
