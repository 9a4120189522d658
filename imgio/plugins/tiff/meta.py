"""Physical metadata of TIFF files: :class:`MetaMixin` and the spacing sources.

``properties()`` reports ``axes`` (tifffile's letters, e.g. ``"TZCYX"``),
``spacing`` (the physical size of one step along each axis, ``None`` where
unknown) and ``units`` (``"um"``, ``"nm"``, ``"s"`` ...; ``None`` where
unknown).  Sources, first match wins: OME ``PhysicalSizeX/Y/Z`` and
``TimeIncrement``; ImageJ ``spacing``/``finterval`` plus the resolution tags in
the ImageJ ``unit``; the JSON description imgio writes for plain stacks; LSM
voxel sizes; MetaMorph calibration; FEI and Zeiss SEM pixel sizes; the
resolution tags with a metric unit.  ``metadata()`` gives imageio's keys.

The mixin needs the plugin's ``_request``, ``_tif``, ``_series``, ``_guard``,
``_aliases``, ``_series_index``, ``_level`` and ``_level_index``.
"""
from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import tifffile

from ...errors import unexpected_keyword
from ..physical import METERS, normalize_unit, positive

__all__ = ["MetaMixin"]

#: imageio's RuntimeWarning for a resolution tag with a 0 denominator (immeta and improps)
_ZERO_DENOMINATOR = ("Ignoring resolution metadata because at least one direction has a 0 "
                     "denominator.")

# -- units and physical sizes -------------------------------------------------------------
# the unit vocabulary is shared by every plugin (imgio.plugins.physical)
_positive = positive  # one rule for "a usable physical size", in physical.py


def _rational(value: Any) -> float | None:
    """A resolution tag value ``(num, den)`` as ``num/den`` (pixels per unit)."""
    try:
        if isinstance(value, (tuple, list)):
            return _positive(value[0] / value[1])
        return _positive(value)
    except (ZeroDivisionError, TypeError, IndexError):
        return None


def _resolution_yx(page) -> tuple[float | None, float | None]:
    """(pixel height, pixel width) in resolution-tag units (``1 / resolution``)."""
    tags = page.tags
    out = []
    for name in ("YResolution", "XResolution"):
        tag = tags.get(name)
        res = _rational(tag.value) if tag is not None else None
        # rationals are approximations: 10 significant digits undo 1/0.325 -> 0.32499999...
        out.append(float(f"{1.0 / res:.10g}") if res else None)
    return out[0], out[1]


def _resolution_spacing(page) -> tuple[tuple | None, tuple | None]:
    """(spacing, units) of the Y and X axes from a page's resolution tags."""
    # Only a metric unit makes the tags a pixel size: inches (the default, and the
    # 72/96 dpi screens, scanners and MetaMorph write) and RESUNIT.NONE are
    # display or print settings; the raw tags stay in the metadata.
    unit_tag = page.tags.get("ResolutionUnit")
    try:
        unit = int(unit_tag.value) if unit_tag is not None else 2
    except (TypeError, ValueError):  # a damaged tag: no physical size
        return None, None
    if unit != 3:
        return None, None
    sy, sx = _resolution_yx(page)
    if sy is None or sx is None:
        return None, None
    return (sy, sx), ("cm", "cm")


def _meters_to(value: float, unit: str) -> float:
    """A length in meters expressed in ``unit``, rounded to 10 significant digits."""
    return float(f"{value / METERS[unit]:.10g}")


def _sem_unit(meters: float) -> str:
    """The unit an electron microscope shows a pixel size in: nm below 1 um, else um."""
    return "nm" if meters < 1e-6 else "um"


def _ome_images(xml: str) -> list[ET.Element]:
    """The ``Image`` elements of an OME-XML document (namespace-agnostic)."""
    root = ET.fromstring(xml)
    return [el for el in root if el.tag.rsplit("}", 1)[-1] == "Image"]


def _ome_physical(image: ET.Element) -> dict[str, tuple[float, str]]:
    """Axis letter -> (spacing, unit) from an OME ``Image``'s ``Pixels``."""
    pixels = next((el for el in image if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return {}
    found = {}
    for ax in "XYZ":
        v = _positive(pixels.get(f"PhysicalSize{ax}"))
        if v is not None:
            found[ax] = (v, normalize_unit(pixels.get(f"PhysicalSize{ax}Unit", "µm")))
    v = _positive(pixels.get("TimeIncrement"))
    if v is not None:
        found["T"] = (v, normalize_unit(pixels.get("TimeIncrementUnit", "s")))
    return found


def _per_axis(axes: str, found: dict[str, tuple[float, str | None]]):
    """Spacing and units tuples along ``axes`` (``None`` everywhere -> ``(None, None)``)."""
    if not found or not axes:
        return None, None
    spacing = tuple(found.get(a, (None, None))[0] for a in axes)
    units = tuple(found.get(a, (None, None))[1] for a in axes)
    if all(s is None for s in spacing):
        return None, None
    return spacing, units


class MetaMixin:
    """Spacing sources, ``metadata()`` and the per-page tag dictionaries."""

    def _zero_denominator(self, index: Any, page: Any) -> bool:
        """Whether the page that :meth:`properties` describes first has a resolution (with
        its unit) whose denominator is 0: imageio's ``improps`` warns about it."""
        if page is not None:
            pages = (self._tif.pages if index is None or index is Ellipsis
                     else self._series[self._series_index(index)].pages)
            p = pages[0 if page is Ellipsis else self._normalize_index(page, len(pages), "page")]
            p = p.keyframe if getattr(p, "keyframe", None) is not None else p
        else:
            p = self._series[0 if index is None or index is Ellipsis
                             else self._series_index(index)].keyframe
        tags = getattr(p, "tags", None)
        if tags is None or tags.get(296) is None:
            return False
        x, y = tags.get(282), tags.get(283)
        return x is not None and y is not None and (x.value[1] == 0 or y.value[1] == 0)

    def _spacing(self, s: int) -> tuple[tuple | None, tuple | None]:
        """Per-axis spacing and units of series ``s`` (None where unknown)."""
        spacing, units, _ = self._spacing_source(s)
        return spacing, units

    def _spacing_source(self, s: int) -> tuple[tuple | None, tuple | None, str | None]:
        """(spacing, units, source) of series ``s``; see :mod:`imgio.plugins.physical`.

        Instrument calibrations first (OME, ImageJ, imgio's JSON, LSM, STK, FEI,
        Zeiss SEM), then resolution tags in centimeters; never inches.
        """
        ser = self._series[s]
        for name, source in (("ome", self._ome_found), ("imagej", self._imagej_found),
                             ("imgio", self._shaped_found), ("lsm", self._lsm_found),
                             ("stk", self._stk_found), ("fei", self._fei_found),
                             ("zeiss_sem", self._sem_found)):
            try:
                found = source(s, ser)
            except Exception:  # odd vendor metadata must never break reading
                found = None
            if found:
                spacing, units = _per_axis(ser.axes, found)
                if spacing is not None:
                    return spacing, units, name
        yx, units = _resolution_spacing(ser.keyframe)
        if yx is None:
            return None, None, None
        spacing, units = _per_axis(ser.axes, {"Y": (yx[0], units[0]), "X": (yx[1], units[1])})
        return spacing, units, None if spacing is None else "resolution"

    def _fei_found(self, s: int, ser) -> dict | None:
        """FEI/Thermo SEM and FIB: ``[Scan] PixelWidth/PixelHeight`` in meters."""
        fei = self._tif.fei_metadata if self._tif.is_fei else None
        if not fei or s != 0:
            return None
        scan = fei.get("Scan") or fei.get("EScan") or {}
        found = {}
        for ax, key in (("X", "PixelWidth"), ("Y", "PixelHeight")):
            v = _positive(scan.get(key))
            if v is not None:
                unit = _sem_unit(v)
                found[ax] = (_meters_to(v, unit), unit)
        if "X" in found and "Y" not in found:
            found["Y"] = found["X"]
        return found

    def _sem_found(self, s: int, ser) -> dict | None:
        """Zeiss SEM (CZ_SEM tag): ``ap_pixel_size`` = ("Pixel Size", value, unit)."""
        sem = self._tif.sem_metadata if self._tif.is_sem else None
        if not sem or s != 0:
            return None
        entry = sem.get("ap_pixel_size")
        if not isinstance(entry, (tuple, list)) or len(entry) < 2:
            return None
        v = _positive(entry[1])
        unit = normalize_unit(entry[2]) if len(entry) > 2 else None
        if v is None or unit is None:
            return None
        if unit in METERS and unit not in ("nm", "um"):
            meters = v * METERS[unit]
            unit = _sem_unit(meters)
            v = _meters_to(meters, unit)
        return {"X": (v, unit), "Y": (v, unit)}

    def _ome_found(self, s: int, ser) -> dict | None:
        if not self._tif.is_ome:
            return None
        images = _ome_images(self._tif.ome_metadata)
        name = getattr(ser, "name", None)
        names = [im.get("Name") for im in images]
        if name and names.count(name) == 1 and len(set(names)) == len(names):
            image = images[names.index(name)]
        elif s < len(images):
            image = images[s]
        else:
            return None
        return _ome_physical(image)

    def _imagej_found(self, s: int, ser) -> dict | None:
        ij = self._tif.imagej_metadata if self._tif.is_imagej else None
        if not ij or s != 0:
            return None
        found = {}
        unit = normalize_unit(ij.get("unit"))
        if unit is not None:
            sy, sx = _resolution_yx(ser.keyframe)
            if sx is not None:
                found["X"] = (sx, unit)
            if sy is not None:
                found["Y"] = (sy, normalize_unit(ij.get("yunit")) or unit)
            dz = _positive(ij.get("spacing"))
            if dz is not None:
                found["Z"] = (dz, normalize_unit(ij.get("zunit")) or unit)
        dt = _positive(ij.get("finterval"))
        if dt is not None:
            found["T"] = (dt, normalize_unit(ij.get("tunit")) or "s")
        return found

    def _shaped_found(self, s: int, ser) -> dict | None:
        meta = self._tif.shaped_metadata if self._tif.is_shaped else None
        if not meta or len(meta) != len(self._series) or ser.kind != "shaped":
            return None
        d = meta[s]
        spacing, units = d.get("spacing"), d.get("units")
        axes = d.get("axes", ser.axes)
        if not spacing or len(spacing) != len(axes) or axes != ser.axes:
            return None
        units = units if units and len(units) == len(axes) else [None] * len(axes)
        return {a: (_positive(v), normalize_unit(u)) for a, v, u in zip(axes, spacing, units)
                if _positive(v) is not None}

    def _lsm_found(self, s: int, ser) -> dict | None:
        lsm = self._tif.lsm_metadata if self._tif.is_lsm else None
        if not lsm or s != 0:
            return None
        found = {}
        for ax in "XYZ":
            v = _positive(lsm.get(f"VoxelSize{ax}"))
            if v is not None:
                found[ax] = (_meters_to(v, "um"), "um")  # LSM stores meters
        dt = _positive(lsm.get("TimeIntervall"))
        if dt is not None:
            found["T"] = (dt, "s")
        return found

    def _stk_found(self, s: int, ser) -> dict | None:
        stk = self._tif.stk_metadata if self._tif.is_stk else None
        if not stk or s != 0:
            return None
        unit = normalize_unit(stk.get("CalibrationUnits"))
        if unit is None:
            return None
        found = {}
        for ax, key in (("X", "XCalibration"), ("Y", "YCalibration"), ("Z", "ZDistance")):
            v = stk.get(key)
            v = _positive(v[0] if isinstance(v, (list, tuple, np.ndarray)) and len(v) else v)
            if v is not None:
                found[ax] = (v, unit)
        return found

    def metadata(self, *, index: Any = None, page: int | None = None, level: int | None = None,
                 exclude_applied: bool = True, **kwargs) -> dict:
        """File-level metadata for ``index=None`` (or ``...``), else the tags of a series.

        The keys and types are imageio's, plus imgio's own.  File level:
        ``byteorder``, ``is_<flavor>`` flags and the flavour metadata merged into
        the top level (``spacing``, ``finterval``, ``shape``, ``XCalibration`` ...),
        as imageio does; imgio also keeps each flavour nested under
        ``<flavor>_metadata`` (OME-XML as a dict) and adds ``n_series``,
        ``n_pages``, ``is_bigtiff``.  Per series (or ``page=k``): the first
        page's tags by name with tifffile's values (enums are tifffile's int
        enums, ``meta["compression"] == 8``), imageio's ``planar_configuration,
        compression, predictor, orientation, description1, description,
        software, resolution_unit, resolution, datetime``, plus imgio's
        ``photometric`` and, for a series, ``shape``, ``axes``, ``dtype``,
        ``series_kind``, ``spacing`` and ``units``.  A resolution with a zero
        denominator is left out with imageio's ``RuntimeWarning``.
        """
        self._check_open()
        self._set_partial(kwargs)
        index, page = self._aliases(index, page, kwargs)
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.metadata", kwargs)
        self._meta_warnings: list[str] = []
        meta = self._guard(self._metadata, index, page)
        for message in self._meta_warnings:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        if page is None:
            s = 0 if index is None or index is Ellipsis else self._series_index(index)
            meta["spacing_source"] = self._guard(self._spacing_source, s)[2]
        if level is not None:
            s = 0 if index is None or index is Ellipsis else self._series_index(index)
            lev = self._level(s, level)
            meta["level"] = self._level_index(s, level)
            if "shape" in meta or index is not None:
                meta["shape"] = tuple(lev.shape)
        return meta

    #: flags whose ``<flag>_metadata`` carries nothing of its own
    _PLAIN_FLAGS = ("multipage", "uniform", "subifd", "volumetric")

    def _file_meta(self) -> dict:
        # tifffile's answers to some flags (``is_uniform``) depend on what was asked
        # before (series parsed, flavour metadata read); imageio asks a fresh
        # TiffFile, flag by flag, so imgio asks one the same way (only headers are read)
        fresh = None
        if self._request.kind == "path":
            try:
                fresh = tifffile.TiffFile(self._request.path)
            except Exception:  # only for the flags' values: the open handle answers instead
                fresh = None
        try:
            return self._file_meta_of(fresh if fresh is not None else self._tif)
        finally:
            if fresh is not None:
                fresh.close()

    def _file_meta_of(self, tif) -> dict:
        meta: dict[str, Any] = {"byteorder": tif.byteorder}
        nested: dict[str, Any] = {}
        for flag in tifffile.TIFF.FILE_FLAGS:  # imageio's order: tifffile's
            value = getattr(tif, f"is_{flag}", False)
            meta[f"is_{flag}"] = value
            if not value or flag in self._PLAIN_FLAGS or not hasattr(tif, f"{flag}_metadata"):
                continue
            try:
                flavour = getattr(tif, f"{flag}_metadata", None)
            except Exception as exc:  # a vendor's odd metadata must never break reading
                nested[f"{flag}_metadata"] = {"error": f"could not parse {flag} metadata: {exc}"}
                continue
            if flavour is None:
                continue
            if flag == "ome" and isinstance(flavour, str):
                try:
                    nested["ome_metadata"] = tifffile.xml2dict(flavour)
                except Exception as exc:
                    nested["ome_metadata"] = {"error": f"could not parse OME-XML: {exc}"}
                continue  # imageio crashes merging the XML string (its issue #953)
            nested[f"{flag}_metadata"] = flavour
            # imageio's merge: a tuple (shaped files) contributes its first entry
            merged = flavour[0] if isinstance(flavour, tuple) and flavour else flavour
            if isinstance(merged, dict):
                meta.update(merged)
        for key, value in (("n_series", len(self._series)), ("n_pages", len(self._tif.pages)),
                           ("is_bigtiff", bool(tif.is_bigtiff))):
            meta.setdefault(key, value)
        for key, value in nested.items():
            meta.setdefault(key, value)
        return meta

    def _metadata(self, index: Any, page: int | None) -> dict:
        tif = self._tif
        if page is None and (index is None or index is Ellipsis):
            return self._file_meta()
        if page is not None:
            if index is None or index is Ellipsis:
                p = tif.pages[self._normalize_index(page, len(tif.pages), "page")]
            else:
                ser = self._series[self._series_index(index)]
                p = ser.pages[self._normalize_index(page, len(ser.pages), "page")]
            p = p.keyframe if getattr(p, "keyframe", None) is not None else p
            return self._page_meta(p)
        s = self._series_index(index)
        ser = self._series[s]
        meta = self._page_meta(ser.keyframe)
        spacing, units = self._spacing(s)
        meta.update(shape=tuple(ser.shape), axes=ser.axes, dtype=str(ser.dtype),
                    series_kind=ser.kind, spacing=spacing, units=units)
        return meta

    def _page_meta(self, page) -> dict:
        """imageio's page dict (tags by name, then its summary keys) plus ``photometric``."""
        meta: dict[str, Any] = {tag.name: tag.value for tag in page.tags}
        meta.update(planar_configuration=page.planarconfig, compression=page.compression,
                    predictor=page.predictor, orientation=None,
                    description1=page.description1, description=page.description,
                    software=page.software)
        tags = page.tags
        unit = tags.get(296)
        if unit is not None:
            meta["resolution_unit"] = int(unit.value)
            x, y = tags.get(282), tags.get(283)
            if x is not None and y is not None:
                (xn, xd), (yn, yd) = x.value, y.value
                if xd == 0 or yd == 0:
                    pending = getattr(self, "_meta_warnings", None)
                    message = _ZERO_DENOMINATOR
                    if pending is None:
                        warnings.warn(message, RuntimeWarning, stacklevel=3)
                    else:
                        pending.append(message)
                else:
                    meta["resolution"] = (xn / xd, yn / yd)
        meta["datetime"] = page.datetime
        meta["photometric"] = page.photometric
        return meta
