"""TIFF through tifffile: one *series* is one ndimage.

tifffile groups a file's pages into series (an ImageJ hyperstack, an OME
image, a plain multi-page stack are each one series), so the shape of an
ndimage is what tifffile's series says: never a flattened or first-page shape.

The package
-----------
This module is the reader core (opening, ``read``, ``iter``, ``properties``);
:class:`TifffilePlugin` also inherits :class:`~.damage.DamageMixin` (damage
detection), :class:`~.meta.MetaMixin` (physical metadata, ``metadata()``),
:class:`~.region.RegionMixin` (``chunks``, ``read_region``) and
:class:`~.writer.WriterMixin` (``write``, ``append``).  ``properties()``
reports ``axes``, ``spacing`` and ``units``; their sources are listed in
:mod:`imgio.plugins.tiff.meta`.

Keywords
--------
read(index=None, page=None, out=None, mmap=False, fast=True, maxworkers=None, **kw)
    ``index`` selects the series (``...`` stacks all series, which must have
    equal shapes); ``page=k`` reads one page: of series ``index`` when
    ``index`` is an int, of the whole file otherwise.  ``mmap=True`` returns a
    read-only memory map of uncompressed contiguous data (opens instantly).
    ``maxworkers`` threads decode compressed pages or read uncompressed data
    (default: every core).  ``fast=False`` bypasses :mod:`imgio.plugins.tiff.fastpath`.
    Other keywords go to ``TiffFile.asarray``.
write(...), append(...)
    See :mod:`imgio.plugins.tiff.writer`.
"""
from __future__ import annotations

import functools
import os
import warnings
from typing import Any, Iterator

import numpy as np
import tifffile

from ... import _kernels
from ...core.plugin import ImageProperties, PluginV3, counting
from ...errors import (CorruptFileError, DTypeError, FormatError, ImageTooLargeError,
                       InitializationError, ShapeError, selection_error, unexpected_keyword)
from ...io import raw
from ..physical import normalize_unit
from . import sniff as _tiff
from .damage import DamageMixin, _is_damage, _watch
from .meta import _ZERO_DENOMINATOR, MetaMixin, _resolution_spacing
from .region import RegionMixin
from .writer import WRITES_PHYSICAL, WriterMixin

__all__ = ["TifffilePlugin", "WRITES_PHYSICAL", "MAX_BYTES", "normalize_unit"]

#: largest decoded size the plugin itself lets a read allocate, in bytes
#: (``None``: the machine's RAM).  :func:`imgio.v3.imread` applies the
#: configurable limit of :mod:`imgio.core.limits` first.  Reads into ``out=``
#: or with ``mmap=True`` are not limited.
MAX_BYTES: int | None = None

_NATIVE = "<" if np.little_endian else ">"

#: read keywords passed on to tifffile's ``asarray`` (anything else is refused)
_ASARRAY_KEYS = frozenset({"level", "squeeze", "buffersize"})


_SMALL_FILE = 512 << 10  # below this, decoding threads cost more than they save


@functools.lru_cache(maxsize=1)
def _cpu_count() -> int:
    return os.cpu_count() or 1


# -- the seam for the fast Cython parser ------------------------------------------------
def _try_fast(path, out=None, max_bytes=None, fd=None, head=None, size=None):
    """Read ``path`` with :func:`imgio.plugins.tiff.fastpath.read_simple`, or ``None`` if it declines.

    The fast parser decides from the parsed tags; a file it recognises as
    damaged raises :class:`~imgio.errors.CorruptFileError` (tifffile would
    sometimes read such a file partially, with only a log message).
    """
    from . import fastpath as _fasttiff
    return _fasttiff.read_simple(os.fspath(path), out=out, max_bytes=max_bytes, fd=fd,
                                 head=head, size=size)


def _memory_limit(override=None) -> float:
    """Largest eager read in bytes, a last-resort guard behind :mod:`imgio.core.limits`.

    ``override`` (a read's ``max_bytes=``) goes through ``limits.max_bytes``;
    otherwise ``MAX_BYTES`` here, else :func:`imgio.core.limits.max_bytes`
    (``IMGIO_MAX_BYTES``, else a share of the available memory), so v2 reads,
    ``imiter`` and readers are guarded as :func:`imgio.v3.imread` is.
    """
    if override is not None:
        try:
            from ...core import limits
            return limits.max_bytes(override)
        except ImportError:  # pragma: no cover - older trees without the limits module
            return float(override) if override else float("inf")
    if MAX_BYTES is not None:
        return float(MAX_BYTES)
    from ...core import limits
    return limits.max_bytes(None)


class TifffilePlugin(DamageMixin, MetaMixin, RegionMixin, WriterMixin, PluginV3):
    """TIFF, BigTIFF, ImageJ hyperstacks, OME-TIFF, STK and LSM via tifffile."""

    name = "tifffile"
    description = "TIFF, BigTIFF, ImageJ, OME-TIFF, STK and LSM via tifffile"
    extensions = (".tif", ".tiff", ".stk", ".lsm", ".btf", ".tf8", ".tf2")
    modes = "iIvV"

    def __init__(self, request, **kwargs) -> None:
        super().__init__(request)
        self._init_writer(kwargs)
        self._tif_obj = None
        self._series_obj = None
        self._deferred_limit: tuple | None = None
        self._set_partial(kwargs)
        self._open_kwargs = kwargs
        if request.io_mode == "r":
            head = request.firstbytes
            if not _tiff(head):
                raise InitializationError(f"not a TIFF file (first bytes {head[:4]!r})")
            if request.kind != "path" or kwargs:
                self._open_tiff()
            # else: tifffile parses the file only when something needs it, so a
            # simple file read by the fast path never pays for tifffile's parsing

    def _open_tiff(self) -> None:
        request, kwargs = self._request, self._open_kwargs
        source = request.path if request.kind == "path" else request.get_file()
        tif = None
        try:
            with _watch() as log:
                tif = tifffile.TiffFile(source, **kwargs)
                series = tif.series
                # walks the whole page chain (one small read per page): a chain
                # that ends at an offset past the end of the file is logged here
                n_pages = len(tif.pages)
        except TypeError as exc:
            if tif is not None:
                tif.close()
            if "unexpected keyword" in str(exc) or not _is_damage(exc):
                raise
            raise CorruptFileError(
                f"{request.filename} looks like a TIFF file but cannot be parsed: {exc}"
            ) from exc
        except Exception as exc:  # tifffile asserts, TypeErrors ... on damaged headers
            if tif is not None:
                tif.close()
            if not _is_damage(exc):
                raise  # imgio's own bug: never relabelled as file damage
            raise CorruptFileError(
                f"{request.filename} looks like a TIFF file but cannot be parsed: {exc}"
            ) from exc
        if not series:
            tif.close()
            raise CorruptFileError(f"{request.filename} is a TIFF file with no images.")
        self._tif_obj, self._series_obj = tif, series
        try:
            self._check_ome_references(tif)
        except BaseException:
            self._tif_obj = self._series_obj = None
            tif.close()
            raise
        if log.messages:
            # kept: every later call on this reader raises too (or warns once)
            self._open_damage = (list(log.messages), n_pages)
            self._partial(log.messages, n_pages)

    @property
    def _tif(self):
        """The ``tifffile.TiffFile``, opened on first use."""
        if self._tif_obj is None and self._request.io_mode == "r":
            self._open_tiff()
        elif self._open_damage is not None:
            self._partial(*self._open_damage)
        return self._tif_obj

    @property
    def _series(self):
        if self._series_obj is None:
            self._tif  # noqa: B018 - opens the file
        return self._series_obj

    def _fast_eligible(self, index, page, mmap, fast, kwargs) -> bool:
        return (fast and index in (None, 0) and page is None and not mmap and not kwargs
                and self._request.kind == "path" and not self._open_kwargs
                and not self._allow_partial)

    def check_read_size(self, *, index: Any = None, limit=None, **selection) -> None:
        """The size guard; for a read the fast path may serve, it is deferred to it.

        The fast parser checks the size from the header it parses anyway; if it
        declines the file, :meth:`read` runs the ordinary check before tifffile.
        """
        if self._fast_eligible(index, selection.get("page"), False, True,
                               {k: v for k, v in selection.items() if k != "page"}):
            self._deferred_limit = (limit,)
            return
        super().check_read_size(index=index, limit=limit, **selection)

    # -- reading -------------------------------------------------------------------
    def _series_index(self, index: Any) -> int:
        return self._normalize_index(0 if index is None else index, len(self._series), "series")

    def _n_pages(self, index: Any, level: int | None = None) -> tuple[int | None, int]:
        """(series or None, page count) that ``page=`` counts in."""
        if level is not None:
            s = 0 if index is None or index is Ellipsis else self._series_index(index)
            return s, self._guard(len, self._level(s, level).pages)
        if index is None or index is Ellipsis:
            return None, self._guard(len, self._tif.pages)
        s = self._series_index(index)
        return s, self._guard(len, self._series[s].pages)

    # -- selection keywords -------------------------------------------------------------
    @staticmethod
    def _aliases(index: Any, page: Any, kwargs: dict) -> tuple[Any, Any]:
        """``key=`` is ``page=`` and ``series=`` is ``index=`` (tifffile's names)."""
        if "key" in kwargs:
            key = kwargs.pop("key")
            if page is not None and key is not None:
                raise ValueError("Can't use `page` and `key` at the same time.")
            page = key if page is None else page
        if "series" in kwargs:
            series = kwargs.pop("series")
            if index is not None and series is not None:
                raise ValueError("Can't use `series` and `index` at the same time.")
            index = series if index is None else index
        return index, page

    def _level_index(self, s: int, level: Any) -> int:
        """``level`` as an index into series ``s``' pyramid levels, or a SelectionError."""
        n = self._guard(len, self._series[s].levels)
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
            raise TypeError(f"level must be an int, not {type(level).__name__}")
        if not -n <= level < n:
            where = f" (series {s})" if len(self._series) > 1 else ""
            raise selection_error(f"{self._request.filename}{where}", "level", level, n)
        return int(level) % n

    def _level(self, s: int, level: Any):
        """Series ``s`` at pyramid ``level`` (``None``: the series itself)."""
        ser = self._series[s]
        if level is None:
            return ser
        return ser.levels[self._level_index(s, level)]

    def read(self, *, index: Any = None, page: int | None = None, out=None, mmap: bool = False,
             fast: bool = True, maxworkers: int | None = None, **kwargs) -> np.ndarray:
        self._check_open()
        self._set_partial(kwargs)
        if kwargs.get("series") is not None:
            index = self._volume_index(index)  # v2's volread(series=k) reads series k
        index, page = self._aliases(index, page, kwargs)
        self._max_bytes = kwargs.pop("max_bytes", None)
        unknown = set(kwargs) - _ASARRAY_KEYS
        if unknown:
            # imageio hands read keywords to tifffile, whose wording users see: match it
            raise unexpected_keyword("TiffFile.asarray", unknown)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if kwargs.get("level") is not None:
            if mmap:
                raise ValueError("`mmap=True` maps level 0 of a series; drop `level=`.")
            for i in (range(len(self._series)) if index is Ellipsis
                      else [None if index is None else self._series_index(index)]):
                kwargs["level"] = self._level_index(0 if i is None else i, kwargs["level"])
        if page is not None:
            if mmap:
                raise ValueError("`mmap=True` maps a whole series; drop `page=`.")
            s, n = self._n_pages(index, kwargs.get("level"))
            key = self._normalize_index(page, n, "page")
            if kwargs.get("level") is not None and s is None:
                s = 0
            pages = self._tif.pages if s is None else self._level(s, kwargs.get("level")).pages
            self._guard(self._check_segments, [pages[key]])
            return self._guard(self._tif.asarray, key=key, series=s, out=out, **kwargs)
        if index is Ellipsis:
            if mmap:
                raise ValueError("`mmap=True` maps one series; pass index=i, not `...`.")
            self._check_equal_shapes(kwargs.get("level"))
            if out is None:
                self._check_allocation(self._level(0, kwargs.get("level")), len(self._series))
            workers = self._workers(maxworkers)
            for ser in self._series:
                self._guard(self._check_segments, ser.pages)
            return self._guard(_kernels.stack_frames, (
                s.asarray(maxworkers=workers, **kwargs) for s in self._series), out=out)
        deferred, self._deferred_limit = self._deferred_limit, None
        if self._fast_eligible(index, page, mmap, fast, kwargs) and (
                out is None or isinstance(out, np.ndarray)):
            limit = deferred[0] if deferred else self._max_bytes
            image = _try_fast(self._request.path, out=out, max_bytes=limit,
                              fd=self._request.fileno(),
                              head=self._request.firstbytes, size=self._request.size())
            if image is not None:
                return image
        if deferred:
            super().check_read_size(index=index, limit=deferred[0])
        s = self._series_index(index)
        if mmap:
            return self._guard(self._memmap, s)
        return self._guard(self._read_series, s, out, self._workers(maxworkers), kwargs)

    def _workers(self, maxworkers: int | None) -> int:
        """Decoder threads: the caller's choice, else one for a small file.

        Starting a thread pool costs more than it saves below about half a MiB of
        stored data (8 zlib pages of 128 x 128 u2, 221 KiB: 2.3 ms on one thread,
        3.1 ms on two; 879 KiB: 4.8 ms vs 4.1 ms), so files under
        ``_SMALL_FILE`` bytes decode on the calling thread.
        """
        if maxworkers is not None:
            return max(1, int(maxworkers))
        size = self._request.size()
        if size is not None and size < _SMALL_FILE:
            return 1
        return _cpu_count()

    def _read_limit(self) -> float:
        """The largest allocation this read may make (its ``max_bytes=``, else the default)."""
        return _memory_limit(getattr(self, "_max_bytes", None))

    def _check_allocation(self, ser, count: int = 1) -> None:
        nbytes = int(np.prod(ser.shape, dtype=np.float64) * ser.dtype.itemsize) * count
        limit = self._read_limit()
        if nbytes > limit:
            raise ImageTooLargeError(
                f"{self._request.filename} declares an image of shape {tuple(ser.shape)} "
                f"{ser.dtype} ({nbytes / 2**30:.1f} GiB), more than the "
                f"{limit / 2**30:.3g} GiB imgio may allocate (imgio.core.limits, max_bytes=). "
                "Read parts with `page=`, map it with `mmap=True`, or pass `out=`.")

    def _contiguous_offset(self, ser) -> int | None:
        """File offset of the series' raw bytes when they are stored as-is, else None."""
        try:
            offset = ser.dataoffset
        except Exception:  # pragma: no cover - tifffile internals on odd files
            return None
        if offset is None or ser.keyframe.compression != 1:
            return None
        nbytes = int(np.prod(ser.shape, dtype=np.int64)) * ser.dtype.itemsize
        if self._request.kind == "path":
            size = os.path.getsize(self._request.path)
            if offset + nbytes > size:
                raise CorruptFileError(
                    f"{self._request.filename} declares {nbytes} bytes of pixel data "
                    f"(shape {tuple(ser.shape)} {ser.dtype}) at offset {offset}, but the "
                    f"file holds only {size} bytes: it is truncated or its header is wrong.")
        return offset

    def _read_series(self, s: int, out, workers: int, kwargs: dict) -> np.ndarray:
        ser = self._series[s]
        if kwargs.get("level"):  # a sub-resolution level: tifffile reads it
            kwargs = dict(kwargs)
            level = self._level(s, kwargs.pop("level"))
            if out is None:
                self._check_allocation(level)
            return level.asarray(out=out, maxworkers=workers, **kwargs)
        kwargs = {k: v for k, v in kwargs.items() if k != "level"}
        offset = self._contiguous_offset(ser)
        direct = (offset is not None and self._request.kind == "path" and not kwargs
                  and ser.dtype.kind in "biufc")
        if out is not None and direct:
            if not isinstance(out, np.ndarray):
                direct = False
            else:
                if out.shape != tuple(ser.shape):
                    raise ShapeError(f"out has shape {out.shape}, but series {s} of "
                                     f"{self._request.filename} has shape {tuple(ser.shape)}")
                if out.dtype != ser.dtype:
                    raise DTypeError(f"out has dtype {out.dtype}, but series {s} of "
                                     f"{self._request.filename} is {ser.dtype}")
                direct = out.flags.c_contiguous and out.flags.writeable
        if direct:
            if out is None:
                self._check_allocation(ser)
                out = np.empty(ser.shape, ser.dtype)
            try:
                raw.pread_ranges(self._request.fileno(),
                                 [memoryview(out.reshape(-1).view(np.uint8))], [offset],
                                 workers=workers)
            except raw.Truncated as exc:
                raise CorruptFileError(
                    f"{self._request.filename} is truncated: the pixel data of series {s} "
                    f"({tuple(ser.shape)} {ser.dtype}) end past the end of the file: {exc}"
                ) from exc
            if self._tif.byteorder != _NATIVE and out.dtype.itemsize > 1:
                out.byteswap(inplace=True)
            return out
        if out is None:
            self._check_allocation(ser)
        self._check_segments(ser.pages)
        return ser.asarray(out=out, maxworkers=workers, **kwargs)

    def _memmap(self, s: int) -> np.ndarray:
        ser = self._series[s]
        if self._request.kind != "path":
            raise FormatError(f"{self._request.filename}: `mmap=True` needs a file on disk.")
        offset = self._contiguous_offset(ser)
        if offset is None:
            raise FormatError(
                f"{self._request.filename}: series {s} cannot be memory-mapped: its data "
                f"are compressed, tiled or not stored contiguously "
                f"(compression {ser.keyframe.compression.name}); read it without `mmap=True`.")
        dtype = ser.dtype.newbyteorder(self._tif.byteorder)
        return np.memmap(self._request.path, dtype=dtype, mode="r", offset=offset,
                         shape=tuple(ser.shape))

    def _check_equal_shapes(self, level: int | None = None) -> None:
        shapes = {(self._level(i, level).shape, s.dtype) for i, s in enumerate(self._series)}
        if len(shapes) > 1:
            raise ShapeError(
                f"{self._request.filename}: index=... stacks all series, but they differ: "
                + ", ".join(f"{s.shape} {s.dtype}" for s in self._series)
                + "; read them one by one with index=i or imiter().")

    def iter(self, **kwargs) -> Iterator[np.ndarray]:
        """Yield each series as one ndimage (only series ``series=`` when given)."""
        self._check_open()
        series = kwargs.pop("series", None)
        if series is not None:
            yield self.read(index=series, **kwargs)
            return
        for i in range(len(self._series)):
            yield self.read(index=i, **kwargs)

    def iter_pages(self, index: Any = None, **kwargs) -> Iterator[np.ndarray]:
        """Yield single pages: of series ``index``, or of the whole file (``None``)."""
        self._check_open()
        pages = self._tif.pages if index is None else self._series[self._series_index(index)].pages
        for i in range(self._guard(len, pages)):
            yield self._guard(lambda: pages[i].asarray(**kwargs))

    def properties(self, *, index: Any = None, page: int | None = None, level: int | None = None,
                   squeeze: bool | None = None, **kwargs) -> ImageProperties:
        """Shape, dtype, axes, spacing and units of a series (or of a page).

        Takes the selection keywords of :meth:`read` (``index``/``series``,
        ``page``/``key``, ``level``, ``squeeze``) and means the same by them.
        Like imageio's, warns (``RuntimeWarning``) when the page described has a
        resolution tag with a 0 denominator.
        """
        self._check_open()
        self._set_partial(kwargs)
        index, page = self._aliases(index, page, kwargs)
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.properties", kwargs)
        if level is not None:
            return self._guard(self._level_properties, index, page, level, squeeze)
        props = self._guard(self._properties, index, page)
        # imageio's improps warns about a resolution with a 0 denominator (the user's
        # calls, not the counting and sizing that imgio's own layers do)
        if not counting.get() and self._guard(self._zero_denominator, index, page):
            warnings.warn(_ZERO_DENOMINATOR, RuntimeWarning, stacklevel=2)
        if squeeze is False and page is None and index is not Ellipsis:
            ser = self._series[self._series_index(index)]
            shape, axes = tuple(ser.get_shape(False)), ser.get_axes(False)
            if shape != props.shape:
                return ImageProperties(shape=shape, dtype=props.dtype, axes=axes)
        return props

    def _level_properties(self, index, page, level, squeeze) -> ImageProperties:
        """Properties of pyramid ``level`` (spacing scaled by the level's subsampling)."""
        if index is Ellipsis:
            self._check_equal_shapes(level)
            one = self._level_properties(0, page, level, squeeze)
            n = len(self._series)
            return ImageProperties(
                shape=(n,) + one.shape, dtype=one.dtype, n_images=n, is_batch=True,
                spacing=None if one.spacing is None else (None,) + one.spacing,
                axes=None if one.axes is None else "I" + one.axes,
                units=None if one.units is None else (None,) + one.units)
        s = 0 if index is None else self._series_index(index)
        ser, lev = self._series[s], self._level(s, level)
        if page is not None:
            p = lev.pages[self._normalize_index(page, len(lev.pages), "page")]
            p = p.keyframe if getattr(p, "keyframe", None) is not None else p
            return ImageProperties(shape=p.shape, dtype=p.dtype, axes=p.axes)
        spacing, units = self._spacing(s)
        shape = tuple(lev.get_shape(squeeze)) if squeeze is not None else tuple(lev.shape)
        axes = lev.get_axes(squeeze) if squeeze is not None else lev.axes
        if spacing is not None and len(ser.shape) == len(lev.shape) == len(shape):
            spacing = tuple(None if sp is None else float(f"{sp * full / part:.10g}")
                            for sp, full, part in zip(spacing, ser.shape, lev.shape))
        else:
            spacing = units = None
        return ImageProperties(shape=shape, dtype=lev.dtype, spacing=spacing, axes=axes,
                               units=units)

    def _properties(self, index: Any, page: int | None) -> ImageProperties:
        if page is not None:
            if index is None or index is Ellipsis:
                p = self._tif.pages[self._normalize_index(page, len(self._tif.pages), "page")]
            else:
                ser = self._series[self._series_index(index)]
                p = ser.pages[self._normalize_index(page, len(ser.pages), "page")]
            p = p.keyframe if hasattr(p, "keyframe") and p.keyframe is not None else p
            spacing, units = _resolution_spacing(p)
            if spacing is not None and not p.axes.endswith(("YX", "YXS")):
                spacing = units = None
            elif spacing is not None:
                pad = len(p.axes) - 2 - p.axes.endswith("S")
                tail = (None,) if p.axes.endswith("S") else ()
                spacing = (None,) * pad + spacing + tail
                units = (None,) * pad + units + tail
            return ImageProperties(shape=p.shape, dtype=p.dtype, spacing=spacing,
                                   axes=p.axes, units=units)
        if index is Ellipsis:
            self._check_equal_shapes()
            first = self._series[0]
            sp, un = self._spacing(0)
            return ImageProperties(
                shape=(len(self._series),) + tuple(first.shape), dtype=first.dtype,
                n_images=len(self._series), is_batch=True,
                spacing=None if sp is None else (None,) + sp,
                axes=None if first.axes is None else "I" + first.axes,
                units=None if un is None else (None,) + un)
        s = self._series_index(index)
        ser = self._series[s]
        spacing, units = self._spacing(s)
        return ImageProperties(shape=ser.shape, dtype=ser.dtype, spacing=spacing,
                               axes=ser.axes, units=units)

    def _close_backend(self) -> None:
        if self._tif_obj is not None:
            self._tif_obj.close()
        self._close_writer()
