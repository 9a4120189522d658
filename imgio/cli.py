"""The ``imgio`` command line (``python -m imgio`` too).

Commands
--------
``imgio info FILE...``
    Format, shape, dtype, axes, spacing, number of images, compression and size.
``imgio convert SRC DST``
    Any readable format to any writable one, frame by frame.
``imgio preview FILE -o out.png``
    A picture of the data: projection and slice montage of a volume, or a thumbnail.
``imgio formats``
    The formats imgio knows and whether their backends are installed.
``imgio demo``
    Write a generated microscopy stack, read it back, report.

Every command prints one line on standard error and exits non-zero on failure;
``--debug`` shows the traceback instead.  :func:`info`, :func:`convert` and
:func:`preview` are the functions behind the commands, usable from Python.
"""
from __future__ import annotations

import argparse
import errno
import inspect
import json
import math
import os
import re
import sys
from typing import Any, Callable, Iterator

import numpy as np

from .errors import FormatError, WriteError

__all__ = ["main", "main_entry", "build_parser", "info", "convert", "preview",
           "formats_table"]


# -- shared helpers -------------------------------------------------------------------
def _is_image2d(shape: tuple[int, ...]) -> bool:
    """Whether an ndimage of ``shape`` is one picture (gray, or RGB/RGBA last axis)."""
    return len(shape) == 2 or (len(shape) == 3 and shape[-1] in (3, 4))


def _human_size(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)  # pragma: no cover


def _resource_size(request) -> int | None:
    """Bytes on disk of a file, or of every file of a folder/glob."""
    try:
        if request.kind in ("dir", "glob"):
            return sum(os.path.getsize(p) for p in request.paths())
        return request.size()
    except OSError:
        return None


def _n_images(reader, props, sel: dict | None = None) -> int | None:
    """How many ndimages the resource holds (``index=...`` stacks them)."""
    sel = {k: v for k, v in (sel or {}).items() if k != "index"}
    if props.is_batch and props.n_images is not None:
        return props.n_images
    if "series" in sel:
        return 1
    try:
        n = reader.properties(index=..., **sel).n_images
        if n is not None:
            return int(n)
    except Exception:  # unequal shapes, or a plugin that cannot stack
        pass
    try:
        meta = reader.metadata(**sel)
    except Exception:
        return None
    for key in ("n_images", "n_series"):
        if isinstance(meta.get(key), int):
            return meta[key]
    return None


def _compression(reader, sel: dict | None = None) -> str | None:
    """The compression scheme, as the plugin's metadata names it, lower case."""
    sel = {k: v for k, v in (sel or {}).items() if k != "index"}
    for index in (0, None):
        try:
            meta = reader.metadata(index=index, **sel)
        except Exception:
            continue
        if not isinstance(meta, dict):
            continue
        value = meta.get("compression")
        if value is None and isinstance(meta.get("dataset_details"), dict):
            value = (meta["dataset_details"].get(meta.get("dataset")) or {}).get("compression")
        if value is not None:
            value = getattr(value, "name", value)
            return str(value).lower()
    return None


def _accepts(func: Callable, name: str) -> bool:
    """Whether ``func`` takes a keyword called ``name`` by that name."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    p = params.get(name)
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


# -- selection ---------------------------------------------------------------------------
#: the selection options every command takes, as plugin keywords
SELECTION_OPTIONS = ("dataset", "series", "level", "index")


def _selection(dataset=None, series=None, level=None, index=None) -> dict:
    """The plugin keywords for the chosen ``--dataset/--series/--level``."""
    given = {"dataset": dataset, "series": series, "level": level, "index": index}
    return {k: v for k, v in given.items() if v is not None}


def _refused_option(exc: TypeError, uri, reader) -> Exception:
    """A plugin's "unexpected keyword argument 'level'" as a CLI message about --level."""
    text = str(exc)
    for name in SELECTION_OPTIONS:
        if f"unexpected keyword argument '{name}'" in text:
            return ValueError(f"--{name} does not apply to {uri}: the {reader.name} plugin's "
                              f"files have no {name}s.")
    return exc


def _props(reader, uri, sel: dict):
    try:
        return reader.properties(**sel)
    except TypeError as exc:
        raise _refused_option(exc, uri, reader) from exc


# -- info ---------------------------------------------------------------------------------
def _dataset_listing(reader, sel: dict) -> list | None:
    """``[{path, shape, dtype, chunks, compression}]`` when the file holds several datasets."""
    if "dataset" in sel:
        return None
    try:
        meta = reader.metadata(**{k: v for k, v in sel.items() if k != "index"})
    except Exception:
        return None
    details = meta.get("dataset_details") if isinstance(meta, dict) else None
    if not isinstance(details, dict) or meta.get("dataset") is not None:
        return None
    return [dict(path=path, **d) for path, d in details.items()]


def info(uri: Any, *, plugin: str | None = None, dataset: str | None = None,
         series: int | None = None, level: int | None = None) -> dict:
    """What ``imgio info`` reports about one file, folder or glob, as a dict.

    Parameters
    ----------
    uri : str or pathlib.Path
        A file, or a folder or glob read as one stack of slices.
    plugin : str, optional
        Read with this plugin.
    dataset, series, level : optional
        Which ndimage to describe (the plugins' selection keywords).

    Returns
    -------
    dict
        ``file, format, shape, dtype, axes, spacing, units, n_images,
        compression, file_size`` (JSON-serialisable; unknown values are ``None``).
        For a file with several datasets and no ``dataset`` chosen: ``file,
        format, file_size`` and ``datasets``, a list of ``{path, shape, dtype,
        chunks, compression}``.
    """
    from .core.imopen import imopen

    sel = _selection(dataset, series, level)
    with imopen(uri, "r", plugin=plugin) as reader:
        try:
            props = _props(reader, uri, sel)
        except FormatError:
            listing = _dataset_listing(reader, sel)
            if not listing:
                raise
            return {"file": os.fspath(uri) if not isinstance(uri, str) else uri,
                    "format": reader.name, "datasets": listing,
                    "file_size": _resource_size(reader.request)}
        report = {
            "file": os.fspath(uri) if not isinstance(uri, str) else uri,
            "format": reader.name,
            "shape": list(props.shape),
            "dtype": str(props.dtype),
            "axes": props.axes,
            "spacing": None if props.spacing is None else [
                None if s is None else float(s) for s in props.spacing],
            "units": None if props.units is None else list(props.units),
            "n_images": _n_images(reader, props, sel),
            "compression": _compression(reader, sel),
            "file_size": _resource_size(reader.request),
        }
    return report


def _format_spacing(report: dict) -> str:
    spacing, units, axes = report["spacing"], report["units"], report["axes"]
    if spacing is None or all(s is None for s in spacing):
        return "unknown"
    parts = []
    for i, s in enumerate(spacing):
        name = axes[i] if axes and i < len(axes) else f"axis{i}"
        unit = units[i] if units and i < len(units) and units[i] else ""
        parts.append(f"{name} ?" if s is None else f"{name} {s:g}{' ' + unit if unit else ''}")
    return ", ".join(parts)


def _print_info(report: dict, out=print) -> None:
    out(report["file"])
    if "datasets" in report:
        out(f"  {'format':<12} {report['format']}")
        out(f"  {'file size':<12} {_human_size(report['file_size'])}")
        out(f"  {len(report['datasets'])} datasets (choose one with --dataset PATH):")
        table = [("path", "shape", "dtype", "chunks", "compression")]
        for d in report["datasets"]:
            table.append((d["path"], "(" + ", ".join(str(s) for s in d["shape"]) + ")",
                          d["dtype"], "none" if not d.get("chunks") else
                          "(" + ", ".join(str(c) for c in d["chunks"]) + ")",
                          d.get("compression") or "none"))
        widths = [max(len(r[i]) for r in table) for i in range(5)]
        for row in table:
            out("    " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        return
    rows = [
        ("format", report["format"]),
        ("shape", "(" + ", ".join(str(s) for s in report["shape"]) + ")"),
        ("dtype", report["dtype"]),
        ("axes", report["axes"] or "unknown"),
        ("spacing", _format_spacing(report)),
        ("images", "unknown" if report["n_images"] is None else str(report["n_images"])),
        ("compression", report["compression"] or "unknown"),
        ("file size", _human_size(report["file_size"])),
    ]
    for key, value in rows:
        out(f"  {key:<12} {value}")


def _cmd_info(args) -> int:
    reports, failed = [], 0
    for uri in args.files:
        try:
            reports.append(info(uri, plugin=args.plugin, dataset=args.dataset,
                                series=args.series, level=args.level))
        except BrokenPipeError:
            raise
        except Exception as exc:
            if args.debug:
                raise
            failed += 1
            _print_error(f"info {uri}", exc)
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        for i, report in enumerate(reports):
            if i:
                print()
            _print_info(report)
    return 1 if failed else 0


# -- reading frame by frame ------------------------------------------------------------
class _Source:
    """How to read a resource frame by frame (the first axis of its stack).

    ``kind`` is ``"image"`` (one picture, read whole), ``"batch"`` (the natural
    ndimage stacks ``n`` images, read one by ``index=i``), ``"series"``
    (several ndimages, read by ``iter()``) or ``"volume"`` (one ndimage whose
    first axis is split into frames).
    """

    def __init__(self, reader, props, sel: dict | None = None):
        self.reader = reader
        self.props = props
        self.sel = dict(sel or {})
        shape = props.shape
        n_nd = None if props.is_batch or "series" in self.sel else \
            _n_images(reader, props, self.sel)
        if n_nd is not None and n_nd > 1:
            try:  # a folder's natural ndimage already is the stack of its slices
                stacked = reader.properties(index=..., **self.sel).shape
            except Exception:
                stacked = None
            if stacked == tuple(shape):
                n_nd = None
        if props.is_batch and props.n_images:
            self.kind, self.n = "batch", int(props.n_images)
        elif n_nd is not None and n_nd > 1:
            self.kind, self.n = "series", n_nd
        elif _is_image2d(shape) or len(shape) < 2:
            self.kind, self.n = "image", 1
        else:
            self.kind, self.n = "volume", shape[0]

    def frames(self) -> Iterator[np.ndarray]:
        """The frames, one array at a time."""
        reader, kind, sel = self.reader, self.kind, self.sel
        if kind == "image":
            yield np.asarray(reader.read(**sel))
        elif kind == "batch":
            for i in range(self.n):
                yield np.asarray(reader.read(**{**sel, "index": i}))
        elif kind == "series":
            for image in reader.iter(**sel):
                yield np.asarray(image)
        else:
            yield from self._volume_frames()

    def read_all(self) -> np.ndarray:
        """The whole ndimage (or the stacked series), as ``iio.imread`` gives it."""
        if self.kind == "series":
            from . import _kernels
            return _kernels.stack_frames(np.asarray(a) for a in self.reader.iter(**self.sel))
        return np.asarray(self.reader.read(**self.sel))

    def _volume_frames(self) -> Iterator[np.ndarray]:
        shape = self.props.shape
        pages = 0 if self.sel else self._tiff_pages_per_frame()
        if pages:
            for i in range(shape[0]):
                planes = [np.asarray(self.reader.read(page=i * pages + k)) for k in range(pages)]
                frame = planes[0] if pages == 1 else np.stack(planes)
                yield frame.reshape(shape[1:])
            return
        # no cheaper way: read the ndimage and hand out its first-axis slices
        volume = np.asarray(self.reader.read(**self.sel))
        yield from volume

    def _tiff_pages_per_frame(self) -> int:
        """Pages per first-axis frame of a one-series TIFF read page by page, or 0."""
        if self.reader.name != "tifffile":
            return 0
        try:
            meta = self.reader.metadata()
            if meta.get("n_series") != 1:
                return 0
            n_pages = int(meta["n_pages"])
            page_shape = self.reader.properties(page=0).shape
        except Exception:
            return 0
        shape = self.props.shape
        total = math.prod(shape)
        if n_pages * math.prod(page_shape) != total or n_pages % shape[0]:
            return 0
        per = n_pages // shape[0]
        if math.prod(page_shape) * per != math.prod(shape[1:]):
            return 0
        return per


# -- convert -------------------------------------------------------------------------------
#: sources up to this size are read whole and written as ``iio.imwrite`` writes them;
#: larger ones stream frame by frame into one growing series
STREAM_ABOVE = 1 << 30

#: the --compression names per destination extension
COMPRESSIONS = {
    ".tif": ("none", "zlib", "deflate", "lzw", "lzma", "zstd", "packbits", "jpeg", "png",
             "webp", "jpeg2000", "jpegxl", "lerc"),
    ".h5": ("gzip", "lzf", "szip"),
}
for _ext in (".tiff", ".btf", ".tf8", ".ome.tif", ".ome.tiff"):
    COMPRESSIONS[_ext] = COMPRESSIONS[".tif"]
for _ext in (".hdf5", ".he5", ".nwb"):
    COMPRESSIONS[_ext] = COMPRESSIONS[".h5"]
#: what users of one library try in another
_COMPRESSION_HINTS = {".h5": {"zlib": "gzip", "deflate": "gzip", "zstd": "gzip or lzf",
                              "lz4": "lzf"},
                      ".tif": {"gzip": "zlib", "lzf": "zlib or zstd"}}


def _check_compression(dst: Any, compression: str | None) -> None:
    """Refuse, before reading anything, a compression the destination cannot write."""
    if compression is None:
        return
    name = os.fspath(dst).lower()
    ext = next((e for e in sorted(COMPRESSIONS, key=len, reverse=True) if name.endswith(e)),
               None)
    if ext is None:
        known = sorted({e for e in COMPRESSIONS if e.count(".") == 1})
        raise ValueError(f"--compression applies to {', '.join(known)} destinations, not "
                         f"{os.path.basename(name)}.")
    valid = COMPRESSIONS[ext]
    if str(compression).lower() in valid:
        return
    family = ".h5" if valid is COMPRESSIONS[".h5"] else ".tif"
    hint = _COMPRESSION_HINTS[family].get(str(compression).lower())
    what = "HDF5" if family == ".h5" else "TIFF"
    raise ValueError(f"--compression {compression!r} is not a {what} compression"
                     + (f" (use {hint})" if hint else "")
                     + f"; valid names for {os.path.basename(name)}: {', '.join(valid)}.")


def convert(src: Any, dst: Any, *, compression: str | None = None,
            dataset: str | None = None, series: int | None = None, level: int | None = None,
            plugin: str | None = None, progress: Any = False, stream: bool | None = None) -> dict:
    """Copy an image file, folder or glob into another format.

    The destination holds what ``iio.imwrite(dst, iio.imread(src), spacing=...,
    axes=..., units=...)`` writes: for TIFF an ImageJ hyperstack when ImageJ
    can hold the axes and dtype, OME-TIFF otherwise or for a ``.ome.tif``
    name, BigTIFF only above 4 GB.  Sources larger than :data:`STREAM_ABOVE`
    (or with ``stream=True``) are streamed: the destination plugin's ``append``
    receives one frame at a time (TIFF: one OME series when spacing is known,
    BigTIFF only above 4 GB).

    Parameters
    ----------
    src : str or pathlib.Path
        What to read (a folder or glob reads a stack of slices).
    dst : str or pathlib.Path
        What to write; its extension chooses the format.
    compression : str, optional
        Passed to the destination plugin (see :data:`COMPRESSIONS`).
    dataset : str, optional
        The HDF5 dataset to read from (HDF5 source) or write to (HDF5 destination).
    series, level : int, optional
        The series and the pyramid level of the source to copy.
    plugin : str, optional
        Read ``src`` with this plugin.
    progress : bool or callable, optional
        ``True`` for a bar on a terminal, or ``progress(done, total)``.
    stream : bool, optional
        Force (``True``) or forbid (``False``) frame-by-frame streaming.

    Returns
    -------
    dict
        ``frames`` written, ``shape`` and ``dtype`` of the source, and whether
        the write ``streamed``.
    """
    from .core.imopen import imopen
    from .core.plugin import PluginV3
    from .progress import make_progress

    _check_compression(dst, compression)
    read_kw = _dataset_kwargs("hdf5", dataset, for_read=True, path=src)
    write_kw = _dataset_kwargs("hdf5", dataset, for_read=False, path=dst)
    if dataset is not None and not (read_kw or write_kw):
        raise ValueError(f"--dataset {dataset!r} applies to HDF5 files, and neither "
                         f"{src} nor {dst} is one.")
    sel = _selection(read_kw.get("dataset"), series, level)
    with imopen(src, "r", plugin=plugin) as reader:
        props = _props(reader, src, sel)
        source = _Source(reader, props, sel)
        nbytes = math.prod(props.shape) * props.dtype.itemsize
        if stream is None:
            stream = nbytes > STREAM_ABOVE
        with imopen(dst, "w", **write_kw) as writer:
            streaming = bool(stream) and type(writer).append is not PluginV3.append \
                and source.kind != "image"
            method = writer.append if streaming else writer.write
            base = {} if compression is None else {"compression": compression}
            first = dict(base)
            for key, value in (("spacing", props.spacing), ("axes", props.axes),
                               ("units", props.units)):
                if value is not None and _accepts(method, key):
                    first[key] = tuple(value) if key != "axes" else value
            if streaming and _accepts(writer.append, "ome") and props.spacing is not None:
                first["ome"] = True  # OME holds any axes and dtype, and Fiji reads it
            if streaming and _accepts(writer.append, "ome"):
                first["bigtiff"] = nbytes > 2**32 - 2**25
            frames = 0
            with make_progress(progress, source.n, f"convert {os.path.basename(str(src))}") \
                    as report:
                if streaming:
                    for frame in source.frames():
                        method(frame, **(first if frames == 0 else base))
                        frames += 1
                        report(frames)
                elif source.kind == "series":
                    collected = []
                    for frame in source.frames():
                        collected.append(frame)
                        frames += 1
                        report(frames)
                    if len({(a.shape, a.dtype) for a in collected}) == 1:
                        from . import _kernels  # equal ndimages: one stack, as index=... reads
                        writer.write(_kernels.stack_frames(collected), **base)
                    else:
                        writer.write(collected, is_batch=True, **base)
                elif source.kind == "image":  # what iio.imwrite writes: one call
                    writer.write(source.read_all(), **first)
                    frames = 1
                    report(frames)
                else:  # the whole ndimage, filled frame by frame (progress), written once
                    from .core.limits import check_nbytes
                    check_nbytes(props.shape, props.dtype, os.fspath(src), None)
                    data = np.empty(props.shape, props.dtype)
                    for frames, frame in enumerate(source.frames(), 1):
                        data[frames - 1] = frame
                        report(frames)
                    writer.write(data, **first)
    return {"frames": frames, "shape": props.shape, "dtype": str(props.dtype),
            "streamed": streaming}


def _dataset_kwargs(plugin_name: str, dataset: str | None, *, for_read: bool,
                    path: Any) -> dict:
    """``dataset=`` for the HDF5 plugin's constructor, when the path is HDF5."""
    if dataset is None:
        return {}
    from .core import registry
    try:
        spec = registry.get_spec(plugin_name)
    except ValueError:
        return {}
    name = str(path).lower()
    if for_read:
        try:
            with open(path, "rb") as fh:
                head = fh.read(1032)
        except OSError:
            return {}
        mine = spec.sniff is not None and spec.sniff(head)
    else:
        mine = any(name.endswith(ext) for ext in spec.extensions)
    return {"dataset": dataset} if mine else {}


def _cmd_convert(args) -> int:
    selection = {k: v for k, v in (("series", args.series), ("level", args.level))
                 if v is not None}
    if getattr(args, "scheduler", None) or str(args.dst).lower().rstrip("/").endswith(".zarr"):
        from .convert import convert as zarr_convert  # OME-Zarr, optionally on a cluster
        kw = {} if args.compression is None else {"compression": args.compression}
        result = zarr_convert(args.src, args.dst, scheduler=args.scheduler,
                              dataset=args.dataset, plugin=args.plugin,
                              progress=not args.quiet, **selection, **kw)
    else:
        result = convert(args.src, args.dst, compression=args.compression,
                         dataset=args.dataset, series=args.series, level=args.level,
                         plugin=args.plugin, progress=not args.quiet)
    if not args.quiet:
        write_kw = _dataset_kwargs("hdf5", args.dataset, for_read=False, path=args.dst)
        written = info(args.dst, **write_kw)
        shape = "(" + ", ".join(str(s) for s in written["shape"]) + ")"
        print(f"imgio convert: {args.src} -> {args.dst} ({written['format']}): "
              f"{result['frames']} frame{'s' if result['frames'] != 1 else ''}, "
              f"{shape} {written['dtype']}, {_human_size(written['file_size'])}")
    return 0


# -- preview -------------------------------------------------------------------------------
def _stretch(images: list[np.ndarray], low: float = 0.5, high: float = 99.5) -> list[np.ndarray]:
    """Contrast-stretch images jointly to uint8 between two percentiles."""
    sample = np.concatenate([np.asarray(im, np.float64).ravel()[:: max(1, im.size // 200_000)]
                             for im in images])
    finite = sample[np.isfinite(sample)]
    lo, hi = (np.percentile(finite, [low, high]) if finite.size else (0.0, 1.0))
    if hi <= lo:
        hi = lo + 1
    out = []
    for im in images:
        scaled = (np.asarray(im, np.float64) - lo) * (255.0 / (hi - lo))
        out.append(np.clip(np.nan_to_num(scaled), 0, 255).astype(np.uint8))
    return out


def _to_plane(frame: np.ndarray) -> np.ndarray:
    """A frame as one picture: (Y, X) or (Y, X, 3); extra leading axes are max-projected."""
    frame = np.asarray(frame)
    if frame.dtype == bool:
        frame = frame.astype(np.uint8)
    if np.iscomplexobj(frame):
        frame = np.abs(frame)
    rgb = frame.ndim >= 3 and frame.shape[-1] in (3, 4)
    core = 3 if rgb else 2
    while frame.ndim > core:
        frame = frame.max(axis=0)
    if rgb:
        frame = frame[..., :3]
    return frame


def _resample(img: np.ndarray, size: tuple[int, int]):
    """``img`` (uint8) as a PIL image of ``size`` = (width, height).

    Shrinking averages every source pixel of a target pixel (an area mean, so
    thin lines and small images are not subsampled away); enlarging repeats
    pixels, so the data's pixels stay visible as squares.
    """
    from PIL import Image
    pil = Image.fromarray(img)
    if pil.size == size:
        return pil
    shrink = size[0] < pil.size[0] or size[1] < pil.size[1]
    return pil.resize(size, Image.Resampling.BOX if shrink else Image.Resampling.NEAREST)


#: picture formats ``preview`` writes, by extension
PREVIEW_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def _preview_format(out: Any) -> str:
    ext = os.path.splitext(os.fspath(out))[1].lower()
    if ext not in PREVIEW_FORMATS:
        raise ValueError(f"preview writes {', '.join(PREVIEW_FORMATS)} pictures; "
                         f"{os.fspath(out)!r} has the extension {ext or '(none)'!r}.")
    return ext


def _label(draw, xy: tuple[int, int], text: str, mode: str) -> None:
    """Text on a dark box with a light outline: legible on any background."""
    x, y = xy
    try:
        left, top, right, bottom = draw.textbbox((x, y), text)
    except AttributeError:  # pragma: no cover - Pillow < 8
        w, h = draw.textsize(text)
        left, top, right, bottom = x, y, x + w, y + h
    box = (left - 2, top - 2, right + 2, bottom + 2)
    dark, light = (0, 255) if mode == "L" else ((0, 0, 0), (255, 255, 0))
    draw.rectangle(box, fill=dark, outline=(128 if mode == "L" else (128, 128, 128)))
    draw.text((x, y), text, fill=light)


def preview(src: Any, out: Any, *, n_slices: int = 8, size: int = 1024,
            plugin: str | None = None, progress: Any = False, dataset: str | None = None,
            series: int | None = None, level: int | None = None) -> tuple[int, int]:
    """Write a PNG or JPEG picture of an image or a volume.

    A volume (a stack along its first axis) becomes its maximum-intensity
    projection on the left and a grid of ``n_slices`` evenly spaced slices on
    the right, contrast-stretched between the 0.5 and 99.5 percentiles.  A 2-D
    gray or RGB image becomes a stretched thumbnail.  Every tile is resampled
    from its whole slice (an area mean when shrinking), the tiles fill the
    projection's height exactly, and labels sit on a dark box.  Frames are read
    one at a time, so memory holds one frame, the projection and the chosen
    slices.

    Parameters
    ----------
    src : str or pathlib.Path
        The image, volume, folder or glob.
    out : str or pathlib.Path
        The picture to write: ``.png``, ``.jpg`` or ``.jpeg``.
    n_slices : int, optional
        How many slices the montage shows.
    size : int, optional
        Longest side of the picture in pixels.
    plugin : str, optional
        Read ``src`` with this plugin.
    progress : bool or callable, optional
        As for :func:`convert`.
    dataset, series, level : optional
        Which ndimage to show (the plugins' selection keywords).

    Returns
    -------
    tuple of int
        (height, width) of the picture written.
    """
    from PIL import Image, ImageDraw

    from .core.imopen import imopen
    from .progress import make_progress

    ext = _preview_format(out)
    sel = _selection(dataset, series, level)
    with imopen(src, "r", plugin=plugin) as reader:
        props = _props(reader, src, sel)
        source = _Source(reader, props, sel)
        if source.kind == "image":
            plane = _to_plane(next(iter(source.frames())))
            (img,) = _stretch([plane])
            h, w = img.shape[:2]
            scale = size / max(h, w) if max(h, w) > size else max(1, min(size, 512) // max(h, w))
            pil = _resample(img, (max(1, round(w * scale)), max(1, round(h * scale))))
            return _save_picture(np.asarray(pil), out, ext)
        n = source.n
        wanted = sorted({int(round(x)) for x in np.linspace(0, n - 1, max(1, min(n_slices, n)))})
        mip = None
        slices: dict[int, np.ndarray] = {}
        with make_progress(progress, n, "preview") as report:
            for i, frame in enumerate(source.frames()):
                plane = _to_plane(frame)
                if mip is None:
                    mip = plane.copy()
                elif mip.shape == plane.shape:  # frames of another shape: slices only
                    np.maximum(mip, plane, out=mip)
                if i in wanted:
                    slices[i] = plane
                report(i + 1)
    if mip is None:
        raise ValueError(f"{src} holds no frames to preview.")
    (mip8,) = _stretch([mip])
    tiles = _stretch([slices[i] for i in sorted(slices)])
    h, w = mip8.shape[:2]
    rows = 1 if len(tiles) == 1 else 2
    cols = max(1, math.ceil(len(tiles) / rows))
    # the picture's scale first, so every tile is resampled once, from the whole slice
    gap = 4

    def layout(scale):
        th = max(8, (round(h * scale) - gap * (rows - 1)) // rows)
        H = th * rows + gap * (rows - 1)  # the tiles fill the projection's height: no band
        W = max(8, round(w * H / h))
        tw = max(1, round(w * th / h))
        return W, H, th, tw, W + gap + cols * (tw + gap) - gap

    longest = max(layout(1.0)[4], layout(1.0)[1])
    target = size if longest > size else max(longest, min(size, 512))
    scale = target / longest
    W, H, th, tw, total = layout(scale)
    while max(total, H) > target and scale > 1e-3:
        scale *= 0.99
        W, H, th, tw, total = layout(scale)
    mode = "RGB" if mip8.ndim == 3 else "L"
    gray = 96 if mode == "L" else (96, 96, 96)  # the gaps between tiles
    canvas = Image.new(mode, (W + gap + cols * (tw + gap) - gap, H), gray)
    canvas.paste(_resample(mip8, (W, H)).convert(mode), (0, 0))
    labels = [("MIP", (0, 0))]
    letter = props.axes[0] if props.axes and props.axes[0] not in "QI" else "#"
    for k, (i, tile) in enumerate(zip(sorted(slices), tiles)):
        x = W + gap + (k % cols) * (tw + gap)
        y = (k // cols) * (th + gap)
        canvas.paste(_resample(tile, (tw, th)).convert(mode), (x, y))
        labels.append((f"{letter}={i}", (x, y)))
    draw = ImageDraw.Draw(canvas)
    for text, (x, y) in labels:
        _label(draw, (x + 4, y + 3), text, mode)
    return _save_picture(np.asarray(canvas), out, ext)


def _save_picture(img: np.ndarray, out: Any, ext: str = ".png") -> tuple[int, int]:
    """Write ``img`` as PNG or JPEG (by ``ext``) through imgio's Pillow plugin."""
    import imgio.v3 as iio
    iio.imwrite(out, img, extension=ext)
    return img.shape[0], img.shape[1]


def _cmd_preview(args) -> int:
    out = args.output
    if out is None:
        base = os.path.basename(os.path.normpath(str(args.file)).rstrip("*"))
        out = (base.split(".")[0] or "preview") + "_preview.png"
    h, w = preview(args.file, out, n_slices=args.slices, size=args.size, plugin=args.plugin,
                   progress=not args.quiet, dataset=args.dataset, series=args.series,
                   level=args.level)
    if not args.quiet:
        print(f"imgio preview: wrote {out} ({w} x {h})")
    return 0


# -- formats -------------------------------------------------------------------------------
def formats_table() -> list[dict]:
    """One dict per registered plugin: name, extensions, modes, installed, description."""
    from .core import registry
    rows = []
    for spec in registry.plugins():
        installed = spec.backend_installed()
        rows.append({
            "name": spec.name, "extensions": list(spec.extensions), "modes": spec.modes,
            "reads_folders": spec.folders, "backend": spec.backend, "installed": installed,
            "install": None if installed else (f"pip install imgio[{spec.extra}]" if spec.extra
                                               else f"pip install {spec.backend}"),
            "description": spec.description,
        })
    return rows


def _cmd_formats(args) -> int:
    rows = formats_table()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [("plugin", "extensions", "modes", "installed", "description")]
    for r in rows:
        exts = " ".join(r["extensions"]) + (" (folders)" if r["reads_folders"] else "")
        inst = "yes" if r["installed"] else f"no: {r['install']}"
        table.append((r["name"], exts, r["modes"], inst, r["description"]))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for k, row in enumerate(table):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
        if k == 0:
            print("  ".join("-" * wd for wd in widths) + "  " + "-" * len(row[4]))
    print("\nmodes: i image, I several images, v volume, V several volumes")
    return 0


# -- demo ----------------------------------------------------------------------------------
def _cmd_demo(args) -> int:
    from .demo import run_demo
    try:
        shape = tuple(int(s) for s in args.shape.split(","))
    except ValueError:
        raise ValueError(f"--shape must be integers separated by commas, got {args.shape!r}") \
            from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--shape must be three positive integers Z,Y,X, got {args.shape!r}")
    run_demo(args.directory, shape=shape)
    return 0


# -- the parser and the entry point ------------------------------------------------------
def _selection_arguments(p, convert: bool = False) -> None:
    p.add_argument("--dataset", default=None, metavar="PATH",
                   help="HDF5 dataset to read (HDF5 SRC) or write (HDF5 DST)" if convert
                   else "HDF5 dataset to read (imgio info lists them)")
    p.add_argument("--series", type=int, default=None, metavar="N",
                   help="TIFF series to read (0 is the first)")
    p.add_argument("--level", type=int, default=None, metavar="N",
                   help="pyramid level to read (0 is full resolution)")


def build_parser() -> argparse.ArgumentParser:
    """The ``imgio`` argument parser."""
    from . import __version__
    parser = argparse.ArgumentParser(prog="imgio", description="Scientific image I/O.")
    parser.add_argument("--version", action="version", version=f"imgio {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="shape, dtype, axes, spacing, compression of files",
                       description="Report what a file (or a folder or glob of slices, "
                       "read as one stack) holds, without reading its pixels.")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="files, folders or quoted glob patterns ('slices/*.tif')")
    p.add_argument("--json", action="store_true", help="print a JSON list for scripts")
    p.add_argument("--plugin", default=None, help="read with this plugin")
    _selection_arguments(p)
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("convert", help="convert between formats, frame by frame",
                       description="Copy SRC into DST (format from DST's extension), one "
                       "frame at a time, keeping spacing, axes and units.")
    p.add_argument("src", metavar="SRC", help="file, folder or quoted glob to read")
    p.add_argument("dst", metavar="DST", help="file to write")
    p.add_argument("--compression", default=None,
                   help="compression of DST (e.g. zlib, zstd for TIFF; gzip, lzf for HDF5)")
    p.add_argument("--plugin", default=None, help="read SRC with this plugin")
    _selection_arguments(p, convert=True)
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="convert to OME-Zarr on this dask.distributed scheduler "
                   "(e.g. tcp://10.0.0.1:8786); workers write disjoint shard rows")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("preview", help="a PNG or JPEG picture of an image or a volume",
                       description="Write a PNG or JPEG (by -o's extension): for a volume "
                       "its maximum-intensity "
                       "projection and a montage of evenly spaced slices; for an image a "
                       "thumbnail.  Contrast is stretched to the 0.5..99.5 percentiles.")
    p.add_argument("file", metavar="FILE", help="file, folder or quoted glob to show")
    p.add_argument("-o", "--output", default=None,
                   help=".png, .jpg or .jpeg to write (default: <name>_preview.png here)")
    p.add_argument("--slices", type=int, default=8, help="slices in the montage (8)")
    p.add_argument("--size", type=int, default=1024, help="longest side in pixels (1024)")
    p.add_argument("--plugin", default=None, help="read FILE with this plugin")
    _selection_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=_cmd_preview)

    p = sub.add_parser("formats", help="formats, extensions and installed backends")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=_cmd_formats)

    p = sub.add_parser("demo", help="write a generated microscopy stack, read it back, report")
    p.add_argument("directory", nargs="?", default=None,
                   help="keep the files here (default: a temporary folder)")
    p.add_argument("--shape", default="64,512,512", help="Z,Y,X of the generated stack")
    p.set_defaults(func=_cmd_demo)
    return parser


#: errno -> the reason a write failed, as the user reads it
_WRITE_REASONS = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                  errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
                  errno.EDQUOT: "disk quota exceeded"}
_PARTIAL = re.compile(r"^(?P<dir>.*?)(?P<sep>[\\/]?)\.(?P<name>.+)\.[^./\\]+\.imgio-partial$")


def _target_of(filename: str) -> str:
    """The file a write was for, given the temporary ``.NAME.XXXX.imgio-partial`` beside it."""
    m = _PARTIAL.match(str(filename))
    return m.group("dir") + m.group("sep") + m.group("name") if m else str(filename)


def _one_line(exc: BaseException) -> str:
    """An exception as one readable line."""
    if isinstance(exc, WriteError) and exc.target and exc.errno in _WRITE_REASONS:
        text = f"cannot write {exc.target}: {_WRITE_REASONS[exc.errno]}"
    elif isinstance(exc, OSError) and exc.filename is not None and exc.errno in _WRITE_REASONS:
        target = _target_of(exc.filename)
        text = f"cannot write {target}: {_WRITE_REASONS[exc.errno]}"
    elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {_target_of(exc.filename)}"
    else:
        text = str(exc) or type(exc).__name__
    text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}"


def _print_error(where: str, exc: BaseException) -> None:
    print(f"imgio {where}: error: {_one_line(exc)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except BrokenPipeError:  # `imgio info ... | head`: the reader left, stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"imgio {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one readable line unless --debug
        if args.debug:
            raise
        _print_error(args.command, exc)
        return 1


def main_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
