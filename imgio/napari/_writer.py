"""The npe2 writer: an image layer to TIFF, OME-TIFF, HDF5 or OME-Zarr, its scale kept as
spacing."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

import imgio.v3 as iio

__all__ = ["write_image", "axes_for"]

#: the axis letters imgio's writers know, in the order napari's default labels get them
_DEFAULT_AXES = "TCZYX"
_LETTERS = set("TCZYXSQI")


def axes_for(ndim: int, labels=None, rgb: bool = False) -> str:
    """Axis letters for ``ndim`` layer axes (without an RGB axis): the layer's axis
    labels when each is one known letter (``"z"``, ``"Y"`` ...), else the last
    ``ndim`` of ``TCZYX`` (``ZYX`` for three axes)."""
    letters = None
    if labels is not None and len(labels) == ndim:
        cand = "".join(str(x).upper() for x in labels)
        if (len(cand) == ndim and all(c in _LETTERS for c in cand)
                and len(set(cand)) == ndim and cand.endswith("YX")):
            letters = cand
    if letters is None:
        if ndim > len(_DEFAULT_AXES):
            letters = "Q" * (ndim - len(_DEFAULT_AXES)) + _DEFAULT_AXES
        elif ndim == 3:
            letters = "ZYX"
        elif ndim == 4:
            letters = "TZYX"
        else:
            letters = _DEFAULT_AXES[-ndim:]
    return letters + ("S" if rgb else "")


def _unit_text(unit: Any) -> str | None:
    """A napari (pint) unit as imgio spells it; None for pixels."""
    if unit is None:
        return None
    text = str(unit)
    if text in ("pixel", "pixels", "dimensionless", ""):
        return None
    abbreviations = {"micrometer": "um", "nanometer": "nm", "millimeter": "mm",
                     "centimeter": "cm", "meter": "m", "second": "s", "millisecond": "ms",
                     "microsecond": "us", "nanosecond": "ns", "minute": "min", "hour": "h",
                     "angstrom": "angstrom"}
    return abbreviations.get(text, text)


def _is_zarr(path: str) -> bool:
    return os.fspath(path).rstrip("/\\").lower().endswith(".zarr")


def _channels_first(data, axes: str, spacing, units):
    """An RGB(A) layer for NGFF, which stores channels first: the samples axis ``S`` (last)
    becomes a ``C`` axis after ``T`` (or first), the NGFF order ``T, C, Z, Y, X``."""
    at = 1 if axes.startswith("T") else 0
    letters = axes[:-1]
    axes = letters[:at] + "C" + letters[at:]
    if hasattr(data, "compute"):
        import dask.array as da
        data = da.moveaxis(data, -1, at)
    else:
        data = np.moveaxis(np.asarray(data), -1, at)
    if spacing is not None:
        spacing = spacing[:at] + (None,) + spacing[at:-1]
    if units is not None:
        units = units[:at] + (None,) + units[at:-1]
    return data, axes, spacing, units


def write_image(path: str, data: Any, attributes: dict) -> list[str]:
    """npe2 single-layer writer: ``data`` (NumPy, dask, or a multiscale list) to ``path``.

    The file type follows the name (``.tif``/``.tiff``, ``.ome.tif`` for OME-TIFF,
    ``.h5``/``.hdf5``, ``.ome.zarr``/``.zarr`` for OME-Zarr).  The layer's ``scale``
    becomes the file's spacing, its ``units`` the spacing's units and its
    ``axis_labels`` (when they are axis letters) the axes.  Of a multiscale layer the
    full resolution is written; to OME-Zarr with a pyramid of as many levels as the
    layer has (the zarr plugin's ``levels=``, halving the spatial axes per level).
    An RGB(A) layer goes to OME-Zarr with its samples as a channel axis (first, or
    after ``T``), as NGFF stores channels first.
    """
    n_levels = 1
    if attributes.get("multiscale") or isinstance(data, (list, tuple)):  # multiscale: level 0
        n_levels = len(data)
        data = data[0]
    rgb = bool(attributes.get("rgb", False))
    ndim = data.ndim - int(rgb)
    axes = axes_for(ndim, attributes.get("axis_labels"), rgb)
    scale = attributes.get("scale")
    spacing = None
    if scale is not None and len(scale) == ndim:
        spacing = tuple(float(s) for s in scale) + ((None,) if rgb else ())
    units = attributes.get("units")
    unit_texts = None
    if units is not None and len(units) == ndim:
        unit_texts = tuple(_unit_text(u) for u in units) + ((None,) if rgb else ())
        if all(u is None for u in unit_texts):
            unit_texts = None
    if not hasattr(data, "compute"):
        data = np.asarray(data)
    kwargs: dict[str, Any] = {}
    if _is_zarr(path):
        if rgb:
            data, axes, spacing, unit_texts = _channels_first(data, axes, spacing, unit_texts)
        if n_levels > 1:
            kwargs["levels"] = n_levels
    kwargs["axes"] = axes
    if spacing is not None:
        kwargs["spacing"] = spacing
    if unit_texts:
        kwargs["units"] = unit_texts
    iio.imwrite(os.fspath(path), data, **kwargs)
    return [os.fspath(path)]
