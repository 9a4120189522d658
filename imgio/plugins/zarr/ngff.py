"""NGFF (OME-Zarr) metadata: axis letters and types, units, the checks on the axes a
write is given, and the parsing of a group's ``multiscales`` (levels, axes, scale
transformations, units).  No zarr import: :mod:`imgio.convert` uses these tables too.
"""
from __future__ import annotations

from ...errors import ShapeError

#: NGFF unit names by imgio's short spelling (and back)
_TO_NGFF = {
    "um": "micrometer", "µm": "micrometer", "μm": "micrometer", "micron": "micrometer",
    "microns": "micrometer", "micrometre": "micrometer", "nm": "nanometer",
    "nanometre": "nanometer", "mm": "millimeter", "millimetre": "millimeter",
    "cm": "centimeter", "m": "meter", "metre": "meter", "pm": "picometer",
    "A": "angstrom", "Å": "angstrom", "s": "second", "sec": "second", "ms": "millisecond",
    "us": "microsecond", "µs": "microsecond", "ns": "nanosecond", "min": "minute",
    "h": "hour",
}
_FROM_NGFF = {"micrometer": "um", "nanometer": "nm", "millimeter": "mm", "centimeter": "cm",
              "meter": "m", "picometer": "pm", "angstrom": "A", "second": "s",
              "millisecond": "ms", "microsecond": "us", "nanosecond": "ns", "minute": "min",
              "hour": "h"}
#: every unit NGFF allows (UDUNITS-2 names)
_NGFF_UNITS = {
    "angstrom", "attometer", "centimeter", "decimeter", "exameter", "femtometer", "foot",
    "gigameter", "hectometer", "inch", "kilometer", "megameter", "meter", "micrometer", "mile",
    "millimeter", "nanometer", "parsec", "petameter", "picometer", "terameter", "yard",
    "yoctometer", "yottameter", "zeptometer", "zettameter",
    "attosecond", "centisecond", "day", "decisecond", "exasecond", "femtosecond",
    "gigasecond", "hectosecond", "hour", "kilosecond", "megasecond", "microsecond",
    "millisecond", "minute", "nanosecond", "petasecond", "picosecond", "second",
    "terasecond", "yoctosecond", "yottasecond", "zeptosecond", "zettasecond",
}
_AXIS_TYPES = {"T": "time", "C": "channel", "S": "channel", "Z": "space", "Y": "space",
               "X": "space"}
_DEFAULT_AXES = {2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX"}


def _ngff_unit(unit: str | None, where: str) -> str | None:
    if unit is None:
        return None
    if unit in _NGFF_UNITS:
        return unit
    found = _TO_NGFF.get(unit) or _TO_NGFF.get(str(unit).lower())
    if found is None:
        raise ValueError(f"{where}: unit {unit!r} has no NGFF name; use one of "
                         f"{', '.join(sorted(_TO_NGFF))} or an NGFF (UDUNITS-2) name.")
    return found


def _check_axes(axes: str | None, ndim: int, where: str, shape=()) -> str:
    if axes is None and len(shape) == 3 and shape[-1] in (3, 4) and shape[0] > 4:
        raise ShapeError(f"{where}: an array of shape {tuple(shape)} looks like an RGB(A) "
                         "image, which NGFF stores channels first: write "
                         "np.moveaxis(image, -1, 0) with axes='CYX', or pass axes='ZYX' if "
                         "it is a volume.")
    if axes is None:
        axes = _DEFAULT_AXES.get(ndim)
        if axes is None:
            raise ShapeError(f"{where}: NGFF holds 2 to 5 axes, the array has {ndim}; pass "
                             "axes= (e.g. 'TCZYX') or ome=False for a plain Zarr array.")
        return axes
    axes = str(axes).upper().replace("S", "C")
    if len(axes) != ndim or len(set(axes)) != ndim or any(a not in _AXIS_TYPES for a in axes):
        raise ShapeError(f"{where}: axes {axes!r} do not fit an array of {ndim} axes "
                         "(letters T, C, Z, Y, X, each once)")
    order = "TCZYX"
    if [order.index(a) for a in axes] != sorted(order.index(a) for a in axes) \
            or sum(_AXIS_TYPES[a] == "space" for a in axes) < 2:
        raise ShapeError(f"{where}: NGFF needs the axes in the order T, C, Z, Y, X with at "
                         f"least Y and X, got {axes!r}; transpose the array first "
                         "(e.g. np.moveaxis for an RGB image) or pass ome=False.")
    return axes


def _multiscales(node):
    """The (first) multiscales entry of a group: NGFF 0.5 ``attrs["ome"]``, else 0.4's
    ``attrs["multiscales"]``; None when the group is no OME-Zarr image."""
    attrs = node.attrs
    ome = attrs.get("ome")
    if isinstance(ome, dict) and ome.get("multiscales"):
        return ome["multiscales"][0]
    ms = attrs.get("multiscales")
    if isinstance(ms, list) and ms:
        return ms[0]
    return None


def _version(node, ms) -> str | None:
    """The NGFF version of an image group, or None when its metadata gives none."""
    ome = node.attrs.get("ome")
    if isinstance(ome, dict) and "version" in ome:
        return str(ome["version"])
    return str(ms.get("version")) if ms.get("version") is not None else None


def _physical(arr, info):
    """(axes, spacing, units) of an array, from NGFF or its dimension names."""
    if info is None:
        names = getattr(arr.metadata, "dimension_names", None)
        if names and all(isinstance(n, str) and len(n) == 1 for n in names):
            return "".join(names).upper(), None, None
        return None, None, None
    ms = info["multiscale"]
    ax = ms.get("axes")
    ndim = arr.ndim
    if ax and isinstance(ax[0], str):  # NGFF 0.3
        ax = [{"name": a} for a in ax]
    letters = None
    units = None
    if ax and len(ax) == ndim:
        names = [str(a.get("name", "")) for a in ax]
        if all(len(n) == 1 for n in names):
            letters = "".join(names).upper()
        found = [_FROM_NGFF.get(a.get("unit"), a.get("unit")) for a in ax]
        units = tuple(found) if any(u is not None for u in found) else None
    scale = [1.0] * ndim
    for transforms in (info["multiscale"]["datasets"][info["level"]].get(
            "coordinateTransformations", []), ms.get("coordinateTransformations", [])):
        for t in transforms or []:
            if t.get("type") == "scale" and len(t.get("scale", ())) == ndim:
                scale = [a * float(b) for a, b in zip(scale, t["scale"])]
    return letters, tuple(scale), units
