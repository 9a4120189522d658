"""One vocabulary and one rule for physical metadata, shared by every plugin.

Units
-----
:func:`normalize_unit` maps the spellings instruments and libraries write
("micron", "µm", "\\u00b5m", "Micrometer", "nanometre", "sec" ...) onto one short
vocabulary: ``"pm" "angstrom" "nm" "um" "mm" "cm" "m" "inch"`` for lengths and
``"ns" "us" "ms" "s" "min" "h"`` for time.  Unknown is ``None``, never ``""``.

Precedence
----------
Instrument calibrations win (OME, ImageJ, LSM ``VoxelSize``, MetaMorph STK
calibration, FEI/Zeiss SEM pixel size, HDF5 ``element_size_um``,
BigDataViewer/Imaris); then TIFF resolution tags in a metric unit
(``ResolutionUnit`` centimeter).  A resolution in inches (72 or 96 dpi are
screen and scanner settings) or without a unit is not a physical pixel size:
spacing is unknown and the raw tags stay in ``immeta``.  Plugins report where
the spacing came from as ``spacing_source`` in their metadata (one of
:data:`SOURCES`, or ``None``).
"""
from __future__ import annotations

import math
from typing import Any

__all__ = ["normalize_unit", "normalize_units", "positive", "SOURCES", "METERS"]

#: spelling (lower case) -> canonical unit
_UNITS = {
    "um": "um", "µm": "um", "μm": "um", "micron": "um", "microns": "um", "micrometer": "um",
    "micrometers": "um", "micrometre": "um", "micrometres": "um", "\\u00b5m": "um",
    "nm": "nm", "nanometer": "nm", "nanometers": "nm", "nanometre": "nm", "nanometres": "nm",
    "mm": "mm", "millimeter": "mm", "millimeters": "mm", "millimetre": "mm",
    "millimetres": "mm",
    "cm": "cm", "centimeter": "cm", "centimeters": "cm", "centimetre": "cm",
    "centimetres": "cm",
    "m": "m", "meter": "m", "meters": "m", "metre": "m", "metres": "m",
    "inch": "inch", "in": "inch", "inches": "inch", '"': "inch",
    "a": "angstrom", "å": "angstrom", "Å": "angstrom", "angstrom": "angstrom",
    "angstroms": "angstrom", "pm": "pm", "picometer": "pm",
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "ms": "ms", "msec": "ms", "millisecond": "ms", "milliseconds": "ms",
    "µs": "us", "μs": "us", "us": "us", "microsecond": "us", "microseconds": "us",
    "ns": "ns", "nanosecond": "ns", "nanoseconds": "ns",
    "min": "min", "minute": "min", "minutes": "min",
    "h": "h", "hr": "h", "hour": "h", "hours": "h",
}

#: length units in meters (to convert calibrations stored in meters)
METERS = {"pm": 1e-12, "angstrom": 1e-10, "nm": 1e-9, "um": 1e-6, "mm": 1e-3, "cm": 1e-2,
          "m": 1.0, "inch": 0.0254}

#: the values ``spacing_source`` takes
SOURCES = ("ome", "imagej", "imgio", "lsm", "stk", "fei", "zeiss_sem", "resolution",
           "element_size_um", "spacing_attribute", "bigdataviewer", "imaris", "folder")


def normalize_unit(unit: Any) -> str | None:
    """``"micron"``, ``"µm"``, ``"um"`` -> ``"um"``; ``None`` for pixel, empty or no unit.

    A unit outside the vocabulary is returned stripped, as written.
    """
    if unit is None:
        return None
    if isinstance(unit, bytes):
        unit = unit.decode("utf-8", "replace")
    text = str(unit).strip().rstrip("\x00").strip()
    if not text or text.lower() in ("pixel", "pixels", "px", "none", "null", "unknown"):
        return None
    return _UNITS.get(text, _UNITS.get(text.lower(), text))


def normalize_units(units: Any, n: int | None = None) -> tuple | None:
    """A units tuple in the vocabulary (``None`` for each unknown); ``None`` if none known."""
    if units is None:
        return None
    if isinstance(units, (str, bytes)):
        units = (units,) * (n or 1)
    out = tuple(normalize_unit(u) for u in units)
    return out


def positive(value: Any) -> float | None:
    """``value`` as a finite positive float, else ``None``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v > 0 and math.isfinite(v) else None
