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
import inspect
import json
import math
import os
import sys
from typing import Any, Callable, Iterator

import numpy as np

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


def _n_images(reader, props) -> int | None:
    """How many ndimages the resource holds (``index=...`` stacks them)."""
    if props.is_batch and props.n_images is not None:
        return props.n_images
    try:
        n = reader.properties(index=...).n_images
        if n is not None:
            return int(n)
    except Exception:  # unequal shapes, or a plugin that cannot stack
        pass
    try:
        meta = reader.metadata()
    except Exception:
        return None
    for key in ("n_images", "n_series"):
        if isinstance(meta.get(key), int):
            return meta[key]
    return None


def _compression(reader) -> str | None:
    """The compression scheme, as the plugin's metadata names it, lower case."""
    for index in (0, None):
        try:
            meta = reader.metadata(index=index)
        except Exception:
            continue
        value = meta.get("compression") if isinstance(meta, dict) else None
        if value is not None:
            value = getattr(value, "name", value)
            return str(value).lower()
    if reader.name == "hdf5" and reader.request.kind == "path":
        return _hdf5_compression(reader)
    return None


def _hdf5_compression(reader) -> str | None:
    """The filter of the dataset the HDF5 plugin reads ("none" when unfiltered)."""
    try:
        name = reader.metadata().get("dataset")
        import h5py
        with h5py.File(reader.request.path, "r") as fh:
            obj = fh[name]
            return str(obj.compression) if obj.compression else "none"
    except Exception:  # a group of frames, an odd layout: unknown, not an error
        return None


def _accepts(func: Callable, name: str) -> bool:
    """Whether ``func`` takes a keyword called ``name`` by that name."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    p = params.get(name)
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


# -- info ---------------------------------------------------------------------------------
def info(uri: Any, *, plugin: str | None = None) -> dict:
    """What ``imgio info`` reports about one file, folder or glob, as a dict.

    Parameters
    ----------
    uri : str or pathlib.Path
        A file, or a folder or glob read as one stack of slices.
    plugin : str, optional
        Read with this plugin.

    Returns
    -------
    dict
        ``file, format, shape, dtype, axes, spacing, units, n_images,
        compression, file_size`` (JSON-serialisable; unknown values are ``None``).
    """
    from .core.imopen import imopen

    with imopen(uri, "r", plugin=plugin) as reader:
        props = reader.properties()
        report = {
            "file": os.fspath(uri) if not isinstance(uri, str) else uri,
            "format": reader.name,
            "shape": list(props.shape),
            "dtype": str(props.dtype),
            "axes": props.axes,
            "spacing": None if props.spacing is None else [
                None if s is None else float(s) for s in props.spacing],
            "units": None if props.units is None else list(props.units),
            "n_images": _n_images(reader, props),
            "compression": _compression(reader),
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
            reports.append(info(uri, plugin=args.plugin))
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

    def __init__(self, reader, props):
        self.reader = reader
        self.props = props
        shape = props.shape
        n_nd = None if props.is_batch else _n_images(reader, props)
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
        reader, kind = self.reader, self.kind
        if kind == "image":
            yield np.asarray(reader.read())
        elif kind == "batch":
            for i in range(self.n):
                yield np.asarray(reader.read(index=i))
        elif kind == "series":
            for image in reader.iter():
                yield np.asarray(image)
        else:
            yield from self._volume_frames()

    def _volume_frames(self) -> Iterator[np.ndarray]:
        shape = self.props.shape
        pages = self._tiff_pages_per_frame()
        if pages:
            for i in range(shape[0]):
                planes = [np.asarray(self.reader.read(page=i * pages + k)) for k in range(pages)]
                frame = planes[0] if pages == 1 else np.stack(planes)
                yield frame.reshape(shape[1:])
            return
        # no cheaper way: read the ndimage and hand out its first-axis slices
        volume = np.asarray(self.reader.read())
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
def convert(src: Any, dst: Any, *, compression: str | None = None,
            dataset: str | None = None, plugin: str | None = None,
            progress: Any = False) -> dict:
    """Copy an image file, folder or glob into another format, frame by frame.

    The destination plugin's ``append`` receives one frame at a time, so TIFF
    and HDF5 destinations grow one series without holding the whole stack in
    memory.  Spacing, axes and units go with the first frame where the
    destination plugin takes them.

    Parameters
    ----------
    src : str or pathlib.Path
        What to read (a folder or glob reads a stack of slices).
    dst : str or pathlib.Path
        What to write; its extension chooses the format.
    compression : str, optional
        Passed to the destination plugin (e.g. ``"zlib"`` for TIFF, ``"gzip"``
        for HDF5).
    dataset : str, optional
        The HDF5 dataset to read from (HDF5 source) or write to (HDF5 destination).
    plugin : str, optional
        Read ``src`` with this plugin.
    progress : bool or callable, optional
        ``True`` for a bar on a terminal, or ``progress(done, total)``.

    Returns
    -------
    dict
        ``frames`` written, ``shape`` and ``dtype`` of the source, and whether
        the write ``streamed``.
    """
    from .core.imopen import imopen
    from .core.plugin import PluginV3
    from .progress import make_progress

    read_kw = _dataset_kwargs("hdf5", dataset, for_read=True, path=src)
    write_kw = _dataset_kwargs("hdf5", dataset, for_read=False, path=dst)
    if dataset is not None and not (read_kw or write_kw):
        raise ValueError(f"--dataset {dataset!r} applies to HDF5 files, and neither "
                         f"{src} nor {dst} is one.")
    with imopen(src, "r", plugin=plugin, **read_kw) as reader:
        props = reader.properties()
        source = _Source(reader, props)
        with imopen(dst, "w", **write_kw) as writer:
            streaming = type(writer).append is not PluginV3.append
            method = writer.append if streaming and source.kind != "image" else writer.write
            base = {} if compression is None else {"compression": compression}
            first = dict(base)
            for key, value in (("spacing", props.spacing), ("axes", props.axes),
                               ("units", props.units)):
                if value is not None and _accepts(method, key):
                    first[key] = tuple(value) if key != "axes" else value
            frames = 0
            with make_progress(progress, source.n, f"convert {os.path.basename(str(src))}") \
                    as report:
                if source.kind == "image" or streaming:
                    for frame in source.frames():
                        method(frame, **(first if frames == 0 else base))
                        frames += 1
                        report(frames)
                else:  # the plugin cannot grow a series: collect, then write once
                    collected = []
                    for frame in source.frames():
                        collected.append(frame)
                        frames += 1
                        report(frames)
                    if source.kind == "series":
                        writer.write(collected, is_batch=True, **base)
                    else:
                        from . import _kernels
                        writer.write(_kernels.stack_frames(collected), **first)
    return {"frames": frames, "shape": props.shape, "dtype": str(props.dtype),
            "streamed": streaming and source.kind != "image"}


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
    if getattr(args, "scheduler", None) or str(args.dst).lower().rstrip("/").endswith(".zarr"):
        from .convert import convert as zarr_convert  # OME-Zarr, optionally on a cluster
        kw = {} if args.compression is None else {"compression": args.compression}
        result = zarr_convert(args.src, args.dst, scheduler=args.scheduler,
                              dataset=args.dataset, plugin=args.plugin,
                              progress=not args.quiet, **kw)
    else:
        result = convert(args.src, args.dst, compression=args.compression,
                         dataset=args.dataset, plugin=args.plugin, progress=not args.quiet)
    if not args.quiet:
        written = info(args.dst)
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


def _resize(img: np.ndarray, size: tuple[int, int]):
    """``img`` (uint8) as a PIL image of ``size`` = (width, height)."""
    from PIL import Image
    pil = Image.fromarray(img)
    if pil.size != size:
        pil = pil.resize(size, Image.Resampling.LANCZOS if min(size) >= 1 else Image.NEAREST)
    return pil


def preview(src: Any, out: Any, *, n_slices: int = 8, size: int = 1024,
            plugin: str | None = None, progress: Any = False) -> tuple[int, int]:
    """Write a PNG picture of an image or a volume.

    A volume (a stack along its first axis) becomes its maximum-intensity
    projection on the left and a grid of ``n_slices`` evenly spaced slices on
    the right, contrast-stretched between the 0.5 and 99.5 percentiles.  A 2-D
    gray or RGB image becomes a stretched thumbnail.  Frames are read one at a
    time, so memory holds one frame, the projection and the chosen slices.

    Parameters
    ----------
    src : str or pathlib.Path
        The image, volume, folder or glob.
    out : str or pathlib.Path
        The PNG to write.
    n_slices : int, optional
        How many slices the montage shows.
    size : int, optional
        Longest side of the picture in pixels.
    plugin : str, optional
        Read ``src`` with this plugin.
    progress : bool or callable, optional
        As for :func:`convert`.

    Returns
    -------
    tuple of int
        (height, width) of the picture written.
    """
    from PIL import Image, ImageDraw

    from .core.imopen import imopen
    from .progress import make_progress

    with imopen(src, "r", plugin=plugin) as reader:
        props = reader.properties()
        source = _Source(reader, props)
        if source.kind == "image":
            plane = _to_plane(next(iter(source.frames())))
            (img,) = _stretch([plane])
            pil = Image.fromarray(img)
            pil.thumbnail((size, size), Image.Resampling.LANCZOS)
            return _save_png(np.asarray(pil), out)
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
    cols = max(1, math.ceil(len(tiles) / 2))
    rows = 1 if len(tiles) == 1 else 2
    gap = 4
    th = h if rows == 1 else max(1, (h - gap) // 2)
    tw = max(1, round(w * th / h))
    mode = "RGB" if mip8.ndim == 3 else "L"
    gray = 96 if mode == "L" else (96, 96, 96)  # the gaps between tiles
    canvas = Image.new(mode, (w + gap + cols * (tw + gap) - gap, h), gray)
    canvas.paste(_resize(mip8, (w, h)).convert(mode), (0, 0))
    labels = [("MIP", (0, 0))]
    letter = props.axes[0] if props.axes and props.axes[0] not in "QI" else "#"
    for k, (i, tile) in enumerate(zip(sorted(slices), tiles)):
        x = w + gap + (k % cols) * (tw + gap)
        y = (k // cols) * (th + gap)
        canvas.paste(_resize(tile, (tw, th)).convert(mode), (x, y))
        labels.append((f"{letter}={i}", (x, y)))
    # fit the longest side into `size`; blow small data up (pixels stay sharp) to be seen
    longest = max(canvas.size)
    scale = size / longest if longest > size else max(1.0, min(size, 512) / longest)
    if scale != 1.0:
        canvas = canvas.resize((max(1, round(canvas.size[0] * scale)),
                                max(1, round(canvas.size[1] * scale))),
                               Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(canvas)
    white = 255 if mode == "L" else (255, 255, 0)
    for text, (x, y) in labels:
        draw.text((round(x * scale) + 3, round(y * scale) + 2), text, fill=white)
    return _save_png(np.asarray(canvas), out)


def _save_png(img: np.ndarray, out: Any) -> tuple[int, int]:
    """Write ``img`` as PNG through imgio when a plugin writes PNG, else with Pillow."""
    from .core import registry
    if any(".png" in s.extensions and s.backend_installed() for s in registry.PLUGINS):
        import imgio.v3 as iio
        iio.imwrite(out, img, extension=".png")
    else:  # until a PNG plugin is registered
        from PIL import Image
        Image.fromarray(img).save(os.fspath(out), format="PNG")
    return img.shape[0], img.shape[1]


def _cmd_preview(args) -> int:
    out = args.output
    if out is None:
        base = os.path.basename(os.path.normpath(str(args.file)).rstrip("*"))
        out = (base.split(".")[0] or "preview") + "_preview.png"
    h, w = preview(args.file, out, n_slices=args.slices, size=args.size, plugin=args.plugin,
                   progress=not args.quiet)
    if not args.quiet:
        print(f"imgio preview: wrote {out} ({w} x {h})")
    return 0


# -- formats -------------------------------------------------------------------------------
def formats_table() -> list[dict]:
    """One dict per registered plugin: name, extensions, modes, installed, description."""
    from .core import registry
    rows = []
    for spec in registry.PLUGINS:
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
def build_parser() -> argparse.ArgumentParser:
    """The ``imgio`` argument parser."""
    parser = argparse.ArgumentParser(prog="imgio", description="Scientific image I/O.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="shape, dtype, axes, spacing, compression of files",
                       description="Report what a file (or a folder or glob of slices, "
                       "read as one stack) holds, without reading its pixels.")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="files, folders or quoted glob patterns ('slices/*.tif')")
    p.add_argument("--json", action="store_true", help="print a JSON list for scripts")
    p.add_argument("--plugin", default=None, help="read with this plugin")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("convert", help="convert between formats, frame by frame",
                       description="Copy SRC into DST (format from DST's extension), one "
                       "frame at a time, keeping spacing, axes and units.")
    p.add_argument("src", metavar="SRC", help="file, folder or quoted glob to read")
    p.add_argument("dst", metavar="DST", help="file to write")
    p.add_argument("--compression", default=None,
                   help="compression of DST (e.g. zlib, zstd for TIFF; gzip, lzf for HDF5)")
    p.add_argument("--dataset", default=None,
                   help="HDF5 dataset to read (HDF5 SRC) or write (HDF5 DST)")
    p.add_argument("--plugin", default=None, help="read SRC with this plugin")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="convert to OME-Zarr on this dask.distributed scheduler "
                   "(e.g. tcp://10.0.0.1:8786); workers write disjoint shard rows")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("preview", help="a PNG picture of an image or a volume",
                       description="Write a PNG: for a volume its maximum-intensity "
                       "projection and a montage of evenly spaced slices; for an image a "
                       "thumbnail.  Contrast is stretched to the 0.5..99.5 percentiles.")
    p.add_argument("file", metavar="FILE", help="file, folder or quoted glob to show")
    p.add_argument("-o", "--output", default=None,
                   help="PNG to write (default: <name>_preview.png here)")
    p.add_argument("--slices", type=int, default=8, help="slices in the montage (8)")
    p.add_argument("--size", type=int, default=1024, help="longest side in pixels (1024)")
    p.add_argument("--plugin", default=None, help="read FILE with this plugin")
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


def _one_line(exc: BaseException) -> str:
    """An exception as one readable line."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}"
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
