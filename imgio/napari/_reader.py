"""The npe2 reader: any path imgio reads becomes napari image layers.

Per path the reader returns image layer data with

* ``scale`` from ``improps(...).spacing`` (1 where unknown),
* ``axis_labels`` from ``improps(...).axes`` (lower-case letters, ``"z"``, ``"y"`` ...),
* ``units`` from ``improps(...).units`` (``"pixel"`` where unknown),
* ``channel_axis`` at the ``C`` axis (one layer per channel), ``rgb=True`` for
  an ``S`` (samples) last axis,
* a list of arrays (napari's multiscale) when the image has resolution levels
  (``improps(..., level=k)`` answers for ``k = 1, 2 ...``),
* lazy ``dask`` arrays (:func:`imgio.to_dask`) for levels larger than
  :data:`imgio.napari.LAZY_BYTES`, NumPy arrays below it.
"""
from __future__ import annotations

import glob
import os
from typing import Any

import numpy as np

import imgio
import imgio.v3 as iio
from imgio.errors import ImgioError

from ._settings import LAZY_BYTES

__all__ = ["get_reader", "read", "pyramid_levels", "image_indices", "layer_data",
           "MAX_LEVELS", "MAX_IMAGES"]

#: most resolution levels asked for (a plugin that ignores ``level=`` stops the probe earlier)
MAX_LEVELS = 32


def _lazy_bytes() -> int:
    env = os.environ.get("IMGIO_NAPARI_LAZY_BYTES")
    if env:
        return int(env)
    return LAZY_BYTES


def _is_glob(path: str) -> bool:
    return glob.has_magic(path)


def get_reader(path):
    """npe2 ``get_reader``: the reader function when imgio can read ``path``, else None.

    ``path`` is a file, a folder of slices, a glob, or a list of files (napari's
    ``stack=True``), which is read as one stack along a new first axis.
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths:
        return None
    try:
        for p in paths:
            iio.improps(os.fspath(p))
    except (ImgioError, OSError, ValueError, TypeError, IndexError):
        return None
    return read


def read(path) -> list[tuple]:
    """Layer data tuples ``(data, kwargs, "image")`` for ``path`` (see :func:`get_reader`)."""
    if isinstance(path, (str, os.PathLike)):
        return layer_data(os.fspath(path))
    paths = [os.fspath(p) for p in path]
    if len(paths) == 1:
        return layer_data(paths[0])
    return _stack_of(paths)


def pyramid_levels(uri, **kwargs) -> list:
    """``improps`` of every resolution level of an image, full resolution first.

    Asks ``improps(uri, level=k)`` for ``k = 1, 2, ...`` until the plugin says
    there is no such level (``IndexError``), refuses ``level=`` (an imgio error,
    ``TypeError``), or answers with a shape that is not smaller than the level
    before (a plugin that ignores the keyword).  Works for every plugin with
    levels: TIFF pyramids (OME-TIFF sub-resolutions, SubIFDs), BigDataViewer
    and Imaris HDF5, OME-Zarr.
    """
    levels = [iio.improps(uri, **kwargs)]
    for k in range(1, MAX_LEVELS):
        try:
            props = iio.improps(uri, level=k, **kwargs)
        except (IndexError, TypeError, ImgioError):
            break
        prev = levels[-1]
        if (len(props.shape) != len(prev.shape) or props.shape == prev.shape
                or any(a > b for a, b in zip(props.shape, prev.shape))):
            break
        levels.append(props)
    return levels


def _array(uri: str, props, level: int | None, threshold: int, index: int | None = None):
    """The data of one level: NumPy below ``threshold`` bytes, else a lazy dask array."""
    kw: dict[str, Any] = {} if not level else {"level": level}
    if index is not None:
        kw["index"] = index
    nbytes = int(np.prod(props.shape, dtype=np.int64)) * props.dtype.itemsize
    if nbytes > threshold:
        # napari shows planes: one chunk per plane (the file's own blocks within it), so
        # showing a plane never reads its neighbours
        rgb = len(props.shape) >= 3 and props.shape[-1] in (3, 4) and (
            props.axes is None or props.axes.endswith("S"))
        lead = len(props.shape) - 2 - int(rgb)
        return imgio.to_dask(uri, chunks={i: 1 for i in range(max(lead, 0))}, **kw)
    return iio.imread(uri, **kw)


#: most separate images (TIFF series, .npz arrays) opened from one file
MAX_IMAGES = 64


def image_indices(uri) -> list:
    """The ``index`` of each separate image in ``uri``: ``[None]`` for one image.

    ``index=k`` names separate images (TIFF series, ``.npz`` arrays) when
    ``index=0`` is the natural image itself; where it names a frame or a slice of
    the natural image (HDF5 datasets, folders, animations) the file is one image.
    """
    natural = iio.improps(uri)
    try:
        first = iio.improps(uri, index=0)
    except (IndexError, TypeError, ImgioError):
        return [None]
    if first.shape != natural.shape or first.dtype != natural.dtype:
        return [None]
    indices: list = [0]
    for k in range(1, MAX_IMAGES):
        try:
            iio.improps(uri, index=k)
        except (IndexError, TypeError, ImgioError):
            break
        indices.append(k)
    return [None] if len(indices) == 1 else indices


def _is_letter_axes(axes, ndim: int) -> bool:
    return isinstance(axes, str) and len(axes) == ndim


def _valid_unit(unit: str) -> bool:
    try:
        import pint
        pint.get_application_registry().Unit(unit)
    except Exception:  # pint refuses the spelling: napari would too
        return False
    return True


def _physical_kwargs(props, ndim: int) -> tuple[dict, int | None, bool]:
    """napari kwargs (scale, axis_labels, units), the channel axis and the rgb flag."""
    axes = props.axes if _is_letter_axes(props.axes, ndim) else None
    spacing = props.spacing if props.spacing is not None and len(props.spacing) == ndim else None
    units = props.units if props.units is not None and len(props.units) == ndim else None
    if axes:
        rgb = axes.endswith("S") and props.shape[-1] in (3, 4)
    else:  # no axes recorded (Pillow formats): a colour image is (y, x, 3 or 4)
        rgb = ndim == 3 and props.shape[-1] in (3, 4) and min(props.shape[:2]) > 4
    keep = list(range(ndim - 1 if rgb else ndim))
    channel_axis = None
    if axes and "C" in axes[:len(keep)] and len(keep) - 1 >= 2:
        channel_axis = axes.index("C")
    spatial = [i for i in keep if i != channel_axis]
    kw: dict[str, Any] = {}
    if spacing is not None:
        kw["scale"] = tuple(float(spacing[i]) if spacing[i] else 1.0 for i in spatial)
    if axes:
        kw["axis_labels"] = tuple(axes[i].lower() for i in spatial)
    if units is not None and any(units[i] for i in spatial):
        u = tuple(str(units[i]) if units[i] else "pixel" for i in spatial)
        if all(_valid_unit(x) for x in u):
            kw["units"] = u
    if rgb:
        kw["rgb"] = True
    return kw, channel_axis, rgb


def _name(uri: str) -> str:
    base = os.path.basename(os.path.normpath(uri)) if not _is_glob(uri) else uri
    return base or uri


def layer_data(uri: str) -> list[tuple]:
    """Image layer data for one file, folder or glob: a layer per image (and channel)."""
    indices = image_indices(uri)
    out = []
    for index in indices:
        suffix = "" if index is None else f" [{index}]"
        out.extend(_image_layers(uri, index, suffix))
    return out


def _image_layers(uri: str, index: int | None, suffix: str) -> list[tuple]:
    threshold = _lazy_bytes()
    sel = {} if index is None else {"index": index}
    levels = pyramid_levels(uri, **sel)
    full = levels[0]
    arrays = [_array(uri, props, k, threshold, index) for k, props in enumerate(levels)]
    ndim = len(full.shape)
    kw, channel_axis, _ = _physical_kwargs(full, ndim)
    data: Any = arrays if len(arrays) > 1 else arrays[0]
    kw["name"] = _name(uri) + suffix
    kw["metadata"] = {"imgio": {"path": uri, "index": index, "axes": full.axes,
                                "spacing": full.spacing, "units": full.units,
                                "levels": [p.shape for p in levels]}}
    if len(arrays) > 1:
        kw["multiscale"] = True
    if channel_axis is not None:
        n = full.shape[channel_axis]
        kw["channel_axis"] = channel_axis
        kw["name"] = [f"{kw['name']} [C{i}]" for i in range(n)]
        # per-channel lists, so napari never mistakes a per-axis tuple for per-channel values
        for key in ("scale", "axis_labels", "units", "metadata"):
            if key in kw:
                kw[key] = [kw[key]] * n
    return [(data, kw, "image")]


def _stack_of(paths: list[str]) -> list[tuple]:
    """Several files of one shape as one stack along a new first axis (napari's ``stack=True``)."""
    threshold = _lazy_bytes()
    props = [iio.improps(p) for p in paths]
    first = props[0]
    for p, pr in zip(paths[1:], props[1:]):
        if pr.shape != first.shape or pr.dtype != first.dtype:
            raise ValueError(f"Cannot stack {p} ({pr.shape} {pr.dtype}) with {paths[0]} "
                             f"({first.shape} {first.dtype}): they differ.")
    total = len(paths) * int(np.prod(first.shape, dtype=np.int64)) * first.dtype.itemsize
    if total > threshold:
        import dask.array as da
        data = da.stack([imgio.to_dask(p) for p in paths])
    else:
        data = np.stack([iio.imread(p) for p in paths])
    stacked = iio.ImageProperties(
        shape=data.shape, dtype=data.dtype,
        spacing=None if first.spacing is None else (None,) + tuple(first.spacing),
        axes=None if first.axes is None else "I" + first.axes,
        units=None if first.units is None else (None,) + tuple(first.units))
    kw, channel_axis, _ = _physical_kwargs(stacked, data.ndim)
    kw["name"] = _name(os.path.dirname(paths[0]) or paths[0])
    if channel_axis is not None:
        n = data.shape[channel_axis]
        kw["channel_axis"] = channel_axis
        kw["name"] = [f"{kw['name']} [C{i}]" for i in range(n)]
        for key in ("scale", "axis_labels", "units"):
            if key in kw:
                kw[key] = [kw[key]] * n
    return [(data, kw, "image")]
