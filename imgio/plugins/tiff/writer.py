"""Writing TIFF through tifffile: :class:`WriterMixin`, which the tifffile plugin inherits.

Keywords
--------
write(ndimage, is_batch=None, spacing=None, axes=None, units=None, ome=None, **kw)
    One series per call, or one per element with ``is_batch=True`` or a list.
    With ``spacing``/``axes``/``units`` the file is an ImageJ hyperstack (Fiji
    shows the voxel size) when ImageJ can hold the data, else OME-TIFF;
    ``ome=True`` or a ``.ome.tif`` name writes OME-TIFF.  BigTIFF is chosen
    when the data pass ~4 GB.  ``compression`` (``"zlib"``, ``"zstd"``,
    ``"lzw"`` ...), ``maxworkers``, ``resolution``, ``metadata`` ... go to
    ``TiffWriter.write``.
append(frame, **kw)
    Streams frames into one growing series on disk (a v2 Writer's
    ``append_data``); reading back gives ``(n, *frame.shape)``.

The mixin keeps its state in ``_writer*``/``_append*``/``_flavour`` attributes
set by :meth:`WriterMixin._init_writer`; it needs the plugin's ``_request``,
``_check_open`` and ``_close`` (:class:`imgio.core.plugin.PluginV3`).
"""
from __future__ import annotations

import functools
import json
import math
import os
from typing import Any

import numpy as np
import tifffile

from ...errors import DTypeError, FormatError, ShapeError
from ..physical import normalize_unit
from . import encode

__all__ = ["WriterMixin", "WRITES_PHYSICAL"]

#: the plugin writes ``spacing``/``axes``/``units`` (checked by :mod:`imgio.demo`)
WRITES_PHYSICAL = True

#: classic TIFF holds 4 GB; leave room for the metadata
_BIGTIFF_ABOVE = 2**32 - 2**25
#: how imgio writes a unit into ImageJ and OME metadata
_IMAGEJ_UNIT = {"um": "micron"}
_OME_UNIT = {"um": "µm", "us": "µs", "angstrom": "Å", "inch": "in"}
_IN_CM = {"nm": 1e-7, "um": 1e-4, "mm": 0.1, "cm": 1.0, "m": 100.0, "inch": 2.54}


class WriterMixin:
    """``write`` and ``append`` of the tifffile plugin (one TiffWriter per plugin)."""

    #: a v2 ``Writer.append_data`` adds one image (one series) per call, like
    #: ``mimwrite`` and like imageio; ``append`` (one growing series) stays available
    v2_append_writes_images = True

    #: TiffWriter constructor keywords that ``write`` accepts on its first call
    _WRITER_KEYS = ("bigtiff", "byteorder", "imagej", "ome", "shaped", "durable")

    def _init_writer(self, kwargs: dict) -> None:
        """Writer state; ``kwargs`` are the open() keywords (TiffWriter's on the first write)."""
        self._writer = None
        self._writer_kwargs = kwargs
        self._flavour: str | None = None
        self._append_like: tuple | None = None
        self._append_count = 0
        self._append_contiguous = True
        self._append_res: dict = {}

    def _target_name(self) -> str:
        name = self._request.path or getattr(self._request.raw_uri, "name", None) or ""
        return name.lower() if isinstance(name, str) else ""

    def _open_writer(self, flavour: str, bigtiff: bool, options: dict) -> None:
        wk = dict(self._writer_kwargs)
        for key in self._WRITER_KEYS:
            if key in options:
                wk[key] = options.pop(key)
        wk.pop("imagej", None)
        wk.pop("ome", None)
        wk.setdefault("bigtiff", bigtiff)
        durable = wk.pop("durable", None)
        if durable is not None:  # fsync before the rename (issue 21)
            self._request.durable = bool(durable)
        fh = self._request.get_file()
        tiff_writer = functools.partial(tifffile.TiffWriter, fh, imagej=flavour == "imagej",
                                        ome=flavour == "ome", **wk)
        # plain volumes straight from the array (issue 21); tifffile writes the rest
        self._writer = encode.open_encoder(fh, flavour, wk, tiff_writer) or tiff_writer()
        self._flavour = flavour

    def _choose_flavour(self, images: list[np.ndarray], physical: bool, ome, imagej,
                        axes: str | None) -> str:
        opened = self._writer_kwargs
        ome = opened.get("ome") if ome is None else ome
        imagej = opened.get("imagej") if imagej is None else imagej
        if ome or (ome is None and not imagej
                   and self._target_name().endswith((".ome.tif", ".ome.tiff"))):
            return "ome"
        if imagej:
            return "imagej"
        if not physical:
            return "shaped"
        if len(images) == 1 and _imagej_compatible(images[0], axes):
            return "imagej"
        return "shaped" if ome is False else "ome"

    def write(self, ndimage, *, is_batch: bool | None = None, spacing=None, axes: str | None = None,
              units=None, ome: bool | None = None, imagej: bool | None = None,
              **kwargs) -> bytes | None:
        """Write one ndimage (or a batch) as TIFF series; see the module docstring."""
        self._check_open()
        self._request.check_writable()
        if isinstance(ndimage, (list, tuple)):
            is_batch = True if is_batch is None else is_batch
        images = [np.asarray(im) for im in (ndimage if is_batch else [ndimage])]
        for image in images:
            if image.ndim < 1:  # 1-D arrays are written as tifffile (and imageio) do
                raise ShapeError(f"Cannot write a 0-D array to {self._request.filename}: "
                                 "TIFF images need at least 1 axis.")
        physical = spacing is not None or axes is not None or units is not None
        if self._writer is None:
            flavour = self._choose_flavour(images, physical, ome, imagej, axes)
            bigtiff = kwargs.get("bigtiff", self._writer_kwargs.get("bigtiff"))
            if bigtiff is None:
                bigtiff = sum(im.nbytes for im in images) > _BIGTIFF_ABOVE
                if bigtiff and flavour == "imagej" and not (imagej or
                                                            self._writer_kwargs.get("imagej")):
                    flavour = "ome"  # ImageJ hyperstacks cannot be BigTIFF; OME can
                kwargs["bigtiff"] = bigtiff
            self._open_writer(flavour, bool(bigtiff), kwargs)
        else:
            for key in self._WRITER_KEYS:
                kwargs.pop(key, None)
        if kwargs.get("compression") not in (None, 0, 1, "none", "None", "NONE"):
            kwargs.setdefault("maxworkers", os.cpu_count() or 1)
        for image in images:
            options = dict(kwargs)
            rgb = image.ndim >= 3 and image.shape[-1] in (3, 4) and image.dtype != bool
            if "photometric" not in options and image.ndim > 1:
                options["photometric"] = "rgb" if rgb else "minisblack"
            if physical or self._flavour in ("imagej", "ome"):
                _physical_options(image, options, spacing, axes, units, self._flavour, rgb)
            try:
                self._writer.write(image, **options)
            except (ValueError, TypeError) as exc:
                if isinstance(exc, (ShapeError, DTypeError)):
                    raise
                raise FormatError(f"Cannot write {image.shape} {image.dtype} to "
                                  f"{self._request.filename} as {self._flavour} TIFF: {exc}"
                                  ) from exc
        if self._request.kind == "return_bytes":
            return self._close(success=True)
        return None

    def append(self, frame, *, spacing=None, axes: str | None = None, units=None,
               ome: bool | None = None, **kwargs) -> None:
        """Add ``frame`` to one growing series on disk (v2 ``Writer.append_data``).

        Only one frame is in memory at a time; reading the file back gives
        ``(n, *frame.shape)`` (just ``frame.shape`` when only one frame was
        appended, as imageio's writer stores it).  Uncompressed frames are stored contiguously;
        compressed frames as pages of one series.  ``spacing``/``axes``/``units``
        describe the whole series (one more axis than a frame, e.g. ``"ZYX"``)
        and are taken from the first call.  The file is BigTIFF unless
        ``bigtiff=False`` (the final size is unknown), and OME-TIFF with
        ``ome=True`` or an ``.ome.tif`` name.  The series' final shape (and the
        OME-XML) is written into the first page's description when the writer
        closes.
        """
        self._check_open()
        self._request.check_writable()
        frame = np.asarray(frame)
        if frame.ndim < 2:
            raise ShapeError(f"Cannot append a {frame.ndim}-D array of shape {frame.shape} "
                             f"to {self._request.filename}: TIFF frames need at least 2 axes.")
        rgb = frame.ndim >= 3 and frame.shape[-1] in (3, 4) and frame.dtype != bool
        if self._writer is None:
            kwargs.setdefault("bigtiff", self._writer_kwargs.get("bigtiff", True))
            self._open_writer("shaped", bool(kwargs["bigtiff"]), kwargs)
            self._flavour = "append"
            self._append_like = (frame.shape, frame.dtype)
            compression = kwargs.get("compression")
            self._append_contiguous = compression in (None, 0, 1, "none", "None", "NONE")
            want_ome = self._writer_kwargs.get("ome") if ome is None else ome
            if want_ome is None:
                want_ome = self._target_name().endswith((".ome.tif", ".ome.tiff"))
            if axes is not None and len(axes) == frame.ndim:
                axes = "T" + axes
            # the description of the whole series, finished when the writer closes
            self._append_series = (bool(want_ome), spacing, axes, units, rgb)
        else:
            for key in self._WRITER_KEYS:
                kwargs.pop(key, None)
            if self._flavour != "append":
                raise FormatError(f"{self._request.filename}: append() cannot follow write() "
                                  "on the same writer; use one or the other.")
            shape, dtype = self._append_like
            if frame.shape != shape:
                raise ShapeError(f"{self._request.filename}: frame {self._append_count} has "
                                 f"shape {frame.shape}, but the series holds frames of {shape}.")
            if frame.dtype != dtype:
                raise DTypeError(f"{self._request.filename}: frame {self._append_count} has "
                                 f"dtype {frame.dtype}, but the series holds {dtype}.")
        options = dict(kwargs)
        options.setdefault("photometric", "rgb" if rgb else "minisblack")
        options["metadata"] = None  # the description is written at close
        if self._append_count == 0:
            options["description"] = _PENDING_DESCRIPTION
            want_ome, spacing, axes, units, _ = self._append_series
            if spacing is not None:  # pixel size in the resolution tags, on every page
                probe = np.empty((2,) + frame.shape, frame.dtype)
                res = {}
                _physical_options(probe, res, spacing, axes, units, "plain", rgb)
                self._append_res = {k: res[k] for k in ("resolution", "resolutionunit")
                                    if k in res}
        options.update(self._append_res)
        if self._append_contiguous:
            options["contiguous"] = True
        else:
            options.setdefault("maxworkers", 1)
        self._writer.write(frame, **options)
        self._append_count += 1

    def _appended_description(self) -> str:
        """The first page's description for the ``n`` frames appended so far."""
        want_ome, spacing, axes, units, rgb = self._append_series
        frame_shape, dtype = self._append_like
        shape = (self._append_count,) + tuple(frame_shape)
        if self._append_count == 1:
            # one appended frame is that ndimage, as a single write() would store it
            shape = tuple(frame_shape)
            if axes is not None and len(axes) == len(shape) + 1:
                axes = axes[1:]
            if spacing is not None and not isinstance(spacing, (int, float)) \
                    and len(spacing) == len(shape) + 1:
                spacing = spacing[1:]
            if units is not None and not isinstance(units, str) and len(units) == len(shape) + 1:
                units = units[1:]
        probe = np.lib.stride_tricks.as_strided(np.empty(1, dtype), shape, (0,) * len(shape))
        options: dict[str, Any] = {}
        if want_ome:
            _physical_options(probe, options, spacing, axes, units, "ome", rgb)
            meta = options["metadata"]
            if rgb:
                height, width, samples = frame_shape[-3:]
                pages = self._append_count * math.prod(frame_shape[:-3])
            else:
                (height, width), samples = frame_shape[-2:], 1
                pages = self._append_count * math.prod(frame_shape[:-2])
            ome = tifffile.OmeXml()
            ome.addimage(dtype, shape, (pages, 1, 1, height, width, samples), **meta)
            return ome.tostring(declaration=True)
        meta: dict[str, Any] = {}
        if spacing is not None or axes is not None or units is not None:
            _physical_options(probe, options, spacing, axes, units, "shaped", rgb)
            meta = options["metadata"]
        return json.dumps({"shape": list(shape), **meta})

    def _close_writer(self) -> None:
        """Close the TiffWriter; an appended series gets its final description."""
        if self._writer is not None:
            self._writer.close()
            if self._flavour == "append" and self._append_count:
                fh = self._request.get_file()
                try:
                    fh.seek(0)
                    tifffile.tiffcomment(fh, comment=self._appended_description().encode("utf-8"))
                except (OSError, ValueError) as exc:  # io.UnsupportedOperation included
                    raise FormatError(
                        f"{self._request.filename}: could not finish the series description "
                        f"after appending ({exc}); appending to TIFF needs a file object "
                        "that can be read back and rewritten.") from exc


#: placeholder description of an appended series, replaced when the writer closes
_PENDING_DESCRIPTION = "imgio: series being appended"


# -- physical metadata for writing ----------------------------------------------------------
_IMAGEJ_AXES = "TZCYXS"


def _imagej_compatible(image: np.ndarray, axes: str | None) -> bool:
    rgb = image.ndim >= 3 and image.shape[-1] in (3, 4)
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        return False
    axes = axes or _default_axes(image, rgb)
    if axes is None or len(axes) != image.ndim or len(set(axes)) != len(axes):
        return False
    if not all(a in _IMAGEJ_AXES for a in axes):
        return False
    order = [_IMAGEJ_AXES.index(a) for a in axes]
    if order != sorted(order) or not axes.endswith(("YX", "YXS")):
        return False
    return not (axes.endswith("S") and (image.dtype != np.uint8 or image.shape[-1] not in (3, 4)))


def _default_axes(image: np.ndarray, rgb: bool) -> str | None:
    gray = {2: "YX", 3: "ZYX", 4: "TZYX", 5: "TZCYX"}
    color = {3: "YXS", 4: "ZYXS", 5: "TZYXS", 6: "TZCYXS"}
    return (color if rgb else gray).get(image.ndim)


def _expand(values, axes: str, what: str) -> list:
    """``values`` aligned with ``axes``: a tuple shorter than ``axes`` fills the last axes."""
    if values is None:
        return [None] * len(axes)
    if isinstance(values, (int, float, str)):
        raise ShapeError(f"`{what}` must be a sequence with one value per axis of {axes!r} "
                         f"(or of its last axes), not {values!r}")
    values = list(values)
    if len(values) > len(axes):
        raise ShapeError(f"`{what}` has {len(values)} values, but the image has "
                         f"{len(axes)} axes ({axes!r})")
    return [None] * (len(axes) - len(values)) + values


def _physical_options(image: np.ndarray, options: dict, spacing, axes, units,
                      flavour: str, rgb: bool) -> None:
    """Add resolution and ImageJ/OME/JSON metadata for spacing/axes/units to ``options``."""
    axes = axes or _default_axes(image, rgb)
    if axes is None:
        raise ShapeError(f"Pass `axes=` to write spacing of a {image.ndim}-D image "
                         f"(e.g. 'TZCYX').")
    axes = axes.upper()
    if len(axes) != image.ndim:
        raise ShapeError(f"axes {axes!r} has {len(axes)} letters, but the image has "
                         f"{image.ndim} axes (shape {image.shape})")
    sp = [None if v is None else float(v) for v in _expand(spacing, axes, "spacing")]
    if isinstance(units, str) or units is None:
        space_unit = normalize_unit(units) or "um"
        un = [space_unit if a in "XYZ" else "s" if a == "T" else None for a in axes]
        if units is None and spacing is None:
            un = [None] * len(axes)
    else:
        un = [normalize_unit(u) for u in _expand(units, axes, "units")]
    found = {a: (v, u) for a, v, u in zip(axes, sp, un) if v is not None and v > 0}
    user_meta = options.pop("metadata", None) or {}
    if "X" in found and "Y" in found and "resolution" not in options:
        (dx, ux), (dy, uy) = found["X"], found["Y"]
        if flavour == "imagej":
            options["resolution"] = (1.0 / dx, 1.0 / dy)
        elif ux in _IN_CM and uy in _IN_CM:
            options["resolution"] = (1.0 / (dx * _IN_CM[ux]), 1.0 / (dy * _IN_CM[uy]))
            options["resolutionunit"] = "CENTIMETER"
    if flavour == "imagej":
        meta: dict[str, Any] = {"axes": axes}
        unit = (found.get("X") or found.get("Y") or found.get("Z") or (None, None))[1]
        if unit is not None:
            meta["unit"] = _IMAGEJ_UNIT.get(unit, unit)
            for ax in "YZ":
                if ax in found and found[ax][1] not in (None, unit):
                    meta[f"{ax.lower()}unit"] = _IMAGEJ_UNIT.get(found[ax][1], found[ax][1])
        if "Z" in found:
            meta["spacing"] = found["Z"][0]
        if "T" in found:
            meta["finterval"] = found["T"][0]
            if found["T"][1] not in (None, "s"):
                meta["tunit"] = found["T"][1]
    elif flavour == "ome":
        meta = {"axes": axes}
        for ax in "XYZ":
            if ax in found:
                meta[f"PhysicalSize{ax}"] = found[ax][0]
                if found[ax][1] is not None:
                    meta[f"PhysicalSize{ax}Unit"] = _OME_UNIT.get(found[ax][1], found[ax][1])
        if "T" in found:
            meta["TimeIncrement"] = found["T"][0]
            if found["T"][1] is not None:
                meta["TimeIncrementUnit"] = _OME_UNIT.get(found["T"][1], found["T"][1])
    elif flavour == "shaped":
        meta = {"axes": axes, "spacing": sp, "units": un}
    else:  # plain pages: only the resolution tags carry the pixel size
        if user_meta:
            options["metadata"] = user_meta
        return
    meta.update(user_meta)
    options["metadata"] = meta
