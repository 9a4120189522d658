"""TIFF through tifffile: one *series* is one ndimage.

tifffile groups a file's pages into series (an ImageJ hyperstack, an OME
image, a plain multi-page stack are each one series), so the shape of an
ndimage is what tifffile's series says: never a flattened or first-page shape.

Keywords
--------
read(index=None, page=None, out=None, **kw)
    ``index`` selects the series (``...`` stacks all series, which must have
    equal shapes); ``page=k`` reads one page: of series ``index`` when
    ``index`` is an int, of the whole file otherwise.  Other keywords go to
    ``TiffFile.asarray`` (``maxworkers``, ``out="memmap"`` ...).
write(ndimage, is_batch=None, **kw)
    One series per call, or one per element with ``is_batch=True`` or a list.
    ``compression``, ``resolution``, ``metadata`` ... go to ``TiffWriter.write``.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import tifffile

from .. import _kernels
from ..core.plugin import ImageProperties, PluginV3
from ..core.registry import _tiff
from ..errors import CorruptFileError, InitializationError, ShapeError

__all__ = ["TifffilePlugin"]

#: exceptions tifffile raises for damaged files
_DAMAGE = (tifffile.TiffFileError, ValueError, EOFError, OSError, KeyError, IndexError,
           __import__("struct").error)


def _resolution_spacing(page) -> tuple[tuple | None, tuple | None]:
    """(spacing, units) of the Y and X axes from a page's resolution tags."""
    tags = page.tags
    try:
        xres = tags["XResolution"].value
        yres = tags["YResolution"].value
    except KeyError:
        return None, None
    unit_tag = tags.get("ResolutionUnit")
    unit = int(unit_tag.value) if unit_tag is not None else 2
    names = {2: "inch", 3: "cm"}
    if unit not in names:  # RESUNIT.NONE: the numbers carry no physical size
        return None, None
    try:
        sx = xres[1] / xres[0]
        sy = yres[1] / yres[0]
    except (ZeroDivisionError, TypeError, IndexError):
        return None, None
    return (sy, sx), (names[unit], names[unit])


class TifffilePlugin(PluginV3):
    """TIFF, BigTIFF, ImageJ hyperstacks, OME-TIFF, STK and LSM via tifffile."""

    name = "tifffile"
    description = "TIFF, BigTIFF, ImageJ, OME-TIFF, STK and LSM via tifffile"
    extensions = (".tif", ".tiff", ".stk", ".lsm", ".btf", ".tf8", ".tf2")
    modes = "iIvV"

    def __init__(self, request, **kwargs) -> None:
        super().__init__(request)
        self._tif = None
        self._writer = None
        self._writer_kwargs = kwargs
        if request.io_mode == "r":
            head = request.firstbytes
            if not _tiff(head):
                raise InitializationError(f"not a TIFF file (first bytes {head[:4]!r})")
            source = request.path if request.kind == "path" else request.get_file()
            try:
                self._tif = tifffile.TiffFile(source, **kwargs)
                self._series = self._tif.series
            except _DAMAGE as exc:
                if self._tif is not None:
                    self._tif.close()
                raise CorruptFileError(
                    f"{request.filename} looks like a TIFF file but cannot be parsed: {exc}"
                ) from exc
            if not self._series:
                self._tif.close()
                raise CorruptFileError(f"{request.filename} is a TIFF file with no images.")

    # -- reading -------------------------------------------------------------------
    def _series_index(self, index: Any) -> int:
        return self._normalize_index(0 if index is None else index, len(self._series), "series")

    def _damaged(self, exc: Exception) -> CorruptFileError:
        return CorruptFileError(
            f"{self._request.filename}: the TIFF data cannot be decoded: {exc}")

    def read(self, *, index: Any = None, page: int | None = None, out=None, **kwargs) -> np.ndarray:
        self._check_open()
        if "key" in kwargs:
            if page is not None:
                raise ValueError("Can't use `page` and `key` at the same time.")
            page = kwargs.pop("key")
        if "series" in kwargs:
            if index is not None:
                raise ValueError("Can't use `series` and `index` at the same time.")
            index = kwargs.pop("series")
        try:
            if page is not None:
                if index is None or index is Ellipsis:
                    n = len(self._tif.pages)
                    return self._tif.asarray(key=self._normalize_index(page, n, "page"),
                                             series=None, out=out, **kwargs)
                s = self._series_index(index)
                n = len(self._series[s].pages)
                return self._tif.asarray(key=self._normalize_index(page, n, "page"),
                                         series=s, out=out, **kwargs)
            if index is Ellipsis:
                self._check_equal_shapes()
                return _kernels.stack_frames(
                    (s.asarray(**kwargs) for s in self._series), out=out)
            return self._series[self._series_index(index)].asarray(out=out, **kwargs)
        except (IndexError, TypeError, ShapeError):
            raise
        except _DAMAGE as exc:
            raise self._damaged(exc) from exc

    def _check_equal_shapes(self) -> None:
        shapes = {(s.shape, s.dtype) for s in self._series}
        if len(shapes) > 1:
            raise ShapeError(
                f"{self._request.filename}: index=... stacks all series, but they differ: "
                + ", ".join(f"{s.shape} {s.dtype}" for s in self._series)
                + "; read them one by one with index=i or imiter().")

    def iter(self, **kwargs) -> Iterator[np.ndarray]:
        """Yield each series as one ndimage."""
        self._check_open()
        for i in range(len(self._series)):
            yield self.read(index=i, **kwargs)

    def iter_pages(self, index: Any = None, **kwargs) -> Iterator[np.ndarray]:
        """Yield single pages: of series ``index``, or of the whole file (``None``)."""
        self._check_open()
        pages = self._tif.pages if index is None else self._series[self._series_index(index)].pages
        for p in pages:
            try:
                yield p.asarray(**kwargs)
            except _DAMAGE as exc:
                raise self._damaged(exc) from exc

    def properties(self, *, index: Any = None, page: int | None = None, **kwargs) -> ImageProperties:
        self._check_open()
        if page is not None:
            if index is None or index is Ellipsis:
                p = self._tif.pages[self._normalize_index(page, len(self._tif.pages), "page")]
            else:
                ser = self._series[self._series_index(index)]
                p = ser.pages[self._normalize_index(page, len(ser.pages), "page")]
            p = p.keyframe if hasattr(p, "keyframe") and p.keyframe is not None else p
            spacing, units = _resolution_spacing(p)
            return ImageProperties(shape=p.shape, dtype=p.dtype, spacing=spacing,
                                   axes=p.axes, units=units)
        if index is Ellipsis:
            self._check_equal_shapes()
            first = self._series[0]
            sp, un = self._spacing(first)
            return ImageProperties(
                shape=(len(self._series),) + tuple(first.shape), dtype=first.dtype,
                n_images=len(self._series), is_batch=True,
                spacing=None if sp is None else (None,) + sp,
                axes=None if first.axes is None else "I" + first.axes,
                units=None if un is None else ("",) + un)
        ser = self._series[self._series_index(index)]
        spacing, units = self._spacing(ser)
        return ImageProperties(shape=ser.shape, dtype=ser.dtype, spacing=spacing,
                               axes=ser.axes, units=units)

    def _spacing(self, ser) -> tuple[tuple | None, tuple | None]:
        """Per-axis spacing and units of a series (None where unknown)."""
        yx, units = _resolution_spacing(ser.keyframe)
        axes = ser.axes
        if yx is None or not axes.endswith(("YX", "YXS")):
            return None, None
        spacing = [None] * len(axes)
        unit = [""] * len(axes)
        iy = axes.rindex("Y")
        spacing[iy], spacing[iy + 1] = yx
        unit[iy], unit[iy + 1] = units
        return tuple(spacing), tuple(unit)

    def metadata(self, *, index: Any = None, page: int | None = None,
                 exclude_applied: bool = True, **kwargs) -> dict:
        """File-level metadata for ``index=None`` (or ``...``), else the tags of a series.

        The file-level dict holds ``byteorder``, ``is_<flavor>`` flags, and the
        parsed flavour metadata (``imagej_metadata``, ``ome_metadata`` as a dict,
        ``shaped_metadata`` ...).  Per-series dicts hold the first page's tags by
        name plus ``shape``, ``axes`` and ``compression``.
        """
        self._check_open()
        tif = self._tif
        if page is None and (index is None or index is Ellipsis):
            meta: dict[str, Any] = {"byteorder": tif.byteorder,
                                    "n_series": len(self._series), "n_pages": len(tif.pages)}
            for flag in sorted(tifffile.TIFF.FILE_FLAGS):
                value = bool(getattr(tif, f"is_{flag}", False))
                meta[f"is_{flag}"] = value
                if not value or flag in ("multipage", "uniform", "subifd", "volumetric"):
                    continue
                try:
                    flavour = getattr(tif, f"{flag}_metadata", None)
                    if flag == "ome" and isinstance(flavour, str):
                        flavour = tifffile.xml2dict(flavour)
                except Exception as exc:  # a vendor's odd metadata must never break reading
                    flavour = {"error": f"could not parse {flag} metadata: {exc}"}
                if flavour is not None:
                    meta[f"{flag}_metadata"] = flavour
            return meta
        if page is not None:
            if index is None or index is Ellipsis:
                p = tif.pages[self._normalize_index(page, len(tif.pages), "page")]
            else:
                ser = self._series[self._series_index(index)]
                p = ser.pages[self._normalize_index(page, len(ser.pages), "page")]
            p = p.keyframe if getattr(p, "keyframe", None) is not None else p
            return self._page_meta(p)
        ser = self._series[self._series_index(index)]
        meta = self._page_meta(ser.keyframe)
        meta.update(shape=tuple(ser.shape), axes=ser.axes, dtype=str(ser.dtype),
                    series_kind=ser.kind)
        return meta

    @staticmethod
    def _page_meta(page) -> dict:
        meta: dict[str, Any] = {}
        for tag in page.tags:
            value = tag.value
            if hasattr(value, "name") and not isinstance(value, (bytes, str)):
                value = value.name  # enums such as COMPRESSION.ADOBE_DEFLATE
            meta[tag.name] = value
        for key, value in (("compression", page.compression),
                           ("photometric", page.photometric),
                           ("planar_configuration", page.planarconfig),
                           ("predictor", page.predictor)):
            meta[key] = getattr(value, "name", value)
        meta["description"] = page.description
        return meta

    # -- writing -------------------------------------------------------------------
    def write(self, ndimage, *, is_batch: bool | None = None, **kwargs) -> bytes | None:
        self._check_open()
        self._request.check_writable()
        if self._writer is None:
            self._writer = tifffile.TiffWriter(self._request.get_file(), **self._writer_kwargs)
        if isinstance(ndimage, (list, tuple)):
            is_batch = True if is_batch is None else is_batch
        images = ndimage if is_batch else [ndimage]
        for image in images:
            image = np.asarray(image)
            if image.ndim < 2:
                raise ShapeError(f"Cannot write a {image.ndim}-D array of shape {image.shape} "
                                 f"to {self._request.filename}: TIFF images need at least 2 axes.")
            options = dict(kwargs)
            if "photometric" not in options:
                rgb = image.ndim >= 3 and image.shape[-1] in (3, 4) and image.dtype != bool
                options["photometric"] = "rgb" if rgb else "minisblack"
            self._writer.write(image, **options)
        if self._request.kind == "return_bytes":
            return self._close(success=True)
        return None

    def _close_backend(self) -> None:
        if self._tif is not None:
            self._tif.close()
        if self._writer is not None:
            self._writer.close()
