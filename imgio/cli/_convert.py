"""``imgio convert``: any readable format to any writable one, frame by frame."""
from __future__ import annotations

import math
import os
from typing import Any, Iterator

import numpy as np

from ._common import _accepts, _human_size, _is_image2d, _n_images, _props, _selection
from ._info import info


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
            from .. import _kernels
            return _kernels.stack_frames(np.asarray(a) for a in self.reader.iter(**self.sel))
        return np.asarray(self.reader.read(**self.sel))

    def _volume_frames(self) -> Iterator[np.ndarray]:
        """First-axis frames through the plugin contract: region reads where the
        format has native chunks (TIFF pages, HDF5 chunks, NPY rows, Zarr chunks),
        else one whole read handed out slice by slice."""
        shape = tuple(self.props.shape)
        try:
            native = self.reader.chunks(**self.sel)
        except NotImplementedError:
            native = None
        if native is not None and shape[0] > 1:
            rest = tuple(slice(0, n) for n in shape[1:])
            for i in range(shape[0]):
                frame = self.reader.read_region((slice(i, i + 1),) + rest, **self.sel)
                yield np.asarray(frame).reshape(shape[1:])
            return
        volume = np.asarray(self.reader.read(**self.sel))
        yield from volume


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
    from ..core.imopen import imopen
    from ..core.plugin import PluginV3
    from ..progress import make_progress

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
                        from .. import _kernels  # equal ndimages: one stack, as index=... reads
                        writer.write(_kernels.stack_frames(collected), **base)
                    else:
                        writer.write(collected, is_batch=True, **base)
                elif source.kind == "image":  # what iio.imwrite writes: one call
                    writer.write(source.read_all(), **first)
                    frames = 1
                    report(frames)
                else:  # the whole ndimage, filled frame by frame (progress), written once
                    from ..core.limits import check_nbytes
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
    from ..core import registry
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
        from ..convert import convert as zarr_convert  # OME-Zarr, optionally on a cluster
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


