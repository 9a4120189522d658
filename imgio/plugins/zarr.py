"""Zarr and OME-Zarr (NGFF 0.4 and 0.5) through zarr-python 3.

Reading
-------
A store is a local folder (``x.ome.zarr``) or an fsspec URL (``s3://``,
``http(s)://``, ``memory://`` ..., with ``storage_options=``).  What is read:

* an OME-Zarr image (NGFF 0.5 on Zarr v3, ``attrs["ome"]["multiscales"]``, or
  NGFF 0.4 on Zarr v2, ``attrs["multiscales"]``): the array of resolution
  ``level`` (0, full resolution, by default; negative counts from the coarsest),
  with ``improps`` axes (``"TCZYX"``...), spacing (the ``scale`` transformations
  of that level, times the multiscale-wide one) and units (``"um"``, ``"s"``...);
* a bioformats2raw layout (a root with series ``0``, ``1`` ... groups): series
  ``0`` unless ``dataset=`` names another;
* a plain Zarr array, or the array (or multiscale sub-group) of a plain group
  that ``dataset="path/in/group"`` names; a group holding one array needs none.

``index`` follows the HDF5 plugin: ``None`` or ``...`` the whole array, an int
one frame along the first axis; ``iter()`` yields those frames.
:meth:`ZarrPlugin.chunks` and :meth:`ZarrPlugin.read_region` read only the
chunks a box touches (zarr reads inner chunks of shards by byte range).

Writing
-------
``write(ndimage, axes=None, spacing=None, units=None, levels=None,
downsample="mean", chunks=None, shards=None, compression="zstd",
compression_level=None, name=None, ome=True)`` writes NGFF 0.5 (Zarr v3): a
pyramid of ``levels`` arrays ``0, 1, ...`` whose spatial axes are halved per
level (``"mean"`` of 2 x 2 (x 2) blocks, or ``"stride"``), with ``scale``
transformations that double accordingly.  ``ome=False`` writes one plain Zarr
v3 array.  ``append(frame, ...)`` (v2 ``get_writer().append_data``, and
``imwrite`` of a dask array) grows the first axis one shard row at a time; every
pyramid level is built blockwise from the shard tiles as they are written, so the
volume is never held in memory (peak: one preallocated shard row per level, each
coarser one 2^d times smaller, plus the shard zarr is encoding).

Local writes go into a temporary folder beside the target, renamed into place
when the write succeeded.  Remote writes (object stores cannot rename) go
straight to the store, each level an array of its own, and the root
``zarr.json`` (the group and its multiscales metadata) is written last: until it
is, the store is no Zarr group and no image; a failed write removes what it wrote.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from typing import Any, Iterator

import numpy as np
import zarr

from ..core.plugin import ImageProperties, PluginV3
from ..errors import (CorruptFileError, DTypeError, FormatError, InitializationError,
                      ShapeError)

__all__ = ["ZarrPlugin", "default_chunks", "downsample", "create_ngff", "LevelWriter",
           "write_rows"]

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
_WRITE_KEYS = {"axes", "spacing", "units", "levels", "downsample", "chunks", "shards",
               "compression", "compression_level", "name", "ome", "metadata"}


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


def _open_store(request, mode: str):
    """The zarr store of a request: local folder or fsspec URL."""
    read_only = mode == "r"
    if request.url is not None:
        from zarr.storage import FsspecStore
        return FsspecStore.from_url(request.url.rstrip("/"),
                                    storage_options=dict(request.storage_options or {}),
                                    read_only=read_only)
    from zarr.storage import LocalStore
    return LocalStore(request.path, read_only=read_only)


def _open_root(store):
    """The group or array at the root of a store, or None.  The format is tried
    explicitly (v3, then v2): zarr's own detection costs several round trips more
    on object storage."""
    from zarr.errors import (ArrayNotFoundError, ContainsArrayError, ContainsGroupError,
                             GroupNotFoundError, NodeTypeValidationError)
    missing = (GroupNotFoundError, ArrayNotFoundError, NodeTypeValidationError,
               ContainsArrayError, ContainsGroupError, FileNotFoundError, KeyError)
    for fmt in (3, 2):
        try:
            return zarr.open_group(store, mode="r", zarr_format=fmt, use_consolidated=False)
        except missing:
            pass
        try:
            return zarr.open_array(store=store, mode="r", zarr_format=fmt)
        except missing:
            pass
    return None


def _codec_name(arr) -> str | None:
    """The (first) compressor of an array, by name: ``"zstd"``, ``"blosc"``, ``"gzip"``..."""
    try:
        codecs = arr.compressors
    except Exception:  # pragma: no cover - metadata zarr cannot describe
        return None
    if not codecs:
        return None
    codec = codecs[0]
    name = getattr(codec, "codec_id", None) or type(codec).__name__
    return str(name).lower().replace("codec", "") or None


# -- layout choices ------------------------------------------------------------------------
def default_chunks(shape, axes: str, itemsize: int) -> tuple[int, ...]:
    """Inner chunk shape for 3-D access: about 64 x 128 x 128 (64^3 above 2 bytes/pixel)
    over the spatial axes, 1 along time and channel."""
    spatial = [i for i, a in enumerate(axes) if _AXIS_TYPES.get(a) == "space"]
    out = []
    side = 128 if itemsize <= 2 else 64
    for i, (n, a) in enumerate(zip(shape, axes)):
        if i not in spatial:
            out.append(1)
        elif len(spatial) == 2:
            out.append(max(1, min(n, 512)))
        elif a == "Z":
            out.append(max(1, min(n, 64)))
        else:
            out.append(max(1, min(n, side)))
    return tuple(out)


def default_shards(shape, chunks, axes: str) -> tuple[int, ...]:
    """Shards: one chunk deep along the first spatial axis (so that a shard row is written
    whole by a streaming write) and up to 512 pixels, whole chunks, across the others."""
    out = []
    first = True
    for n, c, a in zip(shape, chunks, axes):
        if _AXIS_TYPES.get(a) != "space" or first and sum(
                _AXIS_TYPES.get(b) == "space" for b in axes) == 3:
            first = first and _AXIS_TYPES.get(a) != "space"
            out.append(c)
            continue
        out.append(c * max(1, math.ceil(min(max(n, 1), 512) / c)))
    return tuple(out)


def _compressors(compression, level):
    from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec
    if compression in (None, False, "none", "None"):
        return None
    name = str(compression).lower()
    if name == "zstd":
        return [ZstdCodec(level=3 if level is None else int(level))]
    if name == "blosc":
        return [BloscCodec(cname="zstd", clevel=5 if level is None else int(level),
                           shuffle="bitshuffle")]
    if name in ("gzip", "zlib", "deflate"):
        return [GzipCodec(level=6 if level is None else int(level))]
    raise ValueError(f"compression must be 'zstd', 'blosc', 'gzip' or None, not {compression!r}")


def level_factors(axes: str, shape) -> tuple[int, ...]:
    """Downsampling factor per axis: 2 along spatial axes longer than 1, else 1."""
    return tuple(2 if _AXIS_TYPES.get(a) == "space" and n > 1 else 1
                 for a, n in zip(axes, shape))


def downsample(block: np.ndarray, factors, method: str = "mean") -> np.ndarray:
    """``block`` shrunk by ``factors`` (ceil of each length): the mean of each block of
    ``factors`` pixels (edge pixels repeated at odd ends) or every ``factor``-th pixel."""
    factors = tuple(int(f) for f in factors)
    if method == "stride" or block.dtype.kind == "b":
        return np.ascontiguousarray(block[tuple(slice(None, None, f) for f in factors)])
    if method != "mean":
        raise ValueError(f"downsample must be 'mean' or 'stride', not {method!r}")
    out_shape = tuple(-(-n // f) for n, f in zip(block.shape, factors))
    out = np.empty(out_shape, block.dtype)
    acc = np.float64 if block.dtype.itemsize > 2 or block.dtype.kind == "f" and \
        block.dtype.itemsize > 4 else np.float32
    f0 = factors[0]
    step = max(f0, f0 * max(1, (8 << 20) // max(1, math.prod(block.shape[1:]) * 4)))
    for a in range(0, block.shape[0], step):  # a few MiB of float temporaries at a time
        part = block[a:a + step]
        pad = [(0, (-n) % f) for n, f in zip(part.shape, factors)]
        if any(p[1] for p in pad):
            part = np.pad(part, pad, mode="edge")
        shape = []
        for n, f in zip(part.shape, factors):
            shape += [n // f, f]
        red = part.reshape(shape).mean(axis=tuple(range(1, 2 * len(factors), 2)), dtype=acc)
        dst = out[a // f0:a // f0 + red.shape[0]]
        if out.dtype.kind in "iu":
            np.rint(red, out=red)
            info = np.iinfo(out.dtype)
            np.clip(red, info.min, info.max, out=red)
        dst[...] = red
    return out


def create_ngff(store, shape, dtype, *, axes: str, spacing=None, units=None, levels=None,
                chunks=None, shards=None, compression="zstd", compression_level=None,
                name=None, metadata=None, method: str = "mean",
                where: str = "", root_last: bool = False):
    """Create an NGFF 0.5 group with ``levels`` empty arrays; ``(arrays, factors)``.

    ``shape[0]`` may be 0 for a streaming write (the arrays grow along axis 0).
    ``root_last=True`` (object stores, which cannot rename a finished store into
    place): the root ``zarr.json``, which makes the store a group and holds the
    multiscales metadata, is not written; ``(arrays, factors, write_root)`` is
    returned and ``write_root()`` writes it once every level is complete, so a
    store whose write stopped half-way is no Zarr group and no image.
    """
    shape = tuple(int(s) for s in shape)
    dtype = np.dtype(dtype)
    names = [a.lower() for a in axes]
    factors = level_factors(axes, [max(s, 2) for s in shape])
    if levels is None:  # halve until the largest plane fits in 512 x 512 (at most 6 levels)
        sp = [s for s, a in zip(shape, axes) if _AXIS_TYPES.get(a) == "space"]
        big = max(sp[-2:]) if sp else 1
        levels = 1
        while big > 512 and levels < 6:
            big = -(-big // 2)
            levels += 1
    levels = int(levels)
    if levels < 1:
        raise ValueError(f"levels must be at least 1, not {levels}")
    spacing = tuple(1.0 if s is None else float(s) for s in spacing) if spacing is not None \
        else (1.0,) * len(shape)
    if len(spacing) != len(shape):
        raise ShapeError(f"{where}: spacing {spacing} has {len(spacing)} values for "
                         f"{len(shape)} axes")
    if isinstance(units, str):  # one unit, as for TIFF: the spatial axes' unit
        units = [units if a in "ZYX" else None for a in axes]
    ngff_units = [None] * len(shape) if units is None else [
        _ngff_unit(u, where) for u in units]
    if len(ngff_units) != len(shape):
        raise ShapeError(f"{where}: units has {len(ngff_units)} values for {len(shape)} axes")
    base_chunks = tuple(chunks) if chunks is not None else default_chunks(
        [s if s else 64 for s in shape], axes, dtype.itemsize)
    if len(base_chunks) != len(shape):
        raise ShapeError(f"{where}: chunks {base_chunks} has {len(base_chunks)} values for "
                         f"{len(shape)} axes")
    if root_last:
        _clear_store(store)
        root = None
    else:
        root = zarr.open_group(store, mode="w", zarr_format=3)
    compressors = _compressors(compression, compression_level)
    arrays, datasets = [], []
    lshape = shape
    for k in range(levels):
        ch = tuple(max(1, min(c, s)) if s else c for c, s in zip(base_chunks, lshape))
        if shards is False:
            sh = None
        elif shards is None:
            sh = default_shards([s if s else c for s, c in zip(lshape, ch)], ch, axes)
            if sh == ch:
                sh = None
        else:  # whole inner chunks per shard, however the level's shape clamped them
            sh0 = tuple(int(v) for v in shards)
            if len(sh0) != len(shape):
                raise ShapeError(f"{where}: shards {sh0} has {len(sh0)} values for "
                                 f"{len(shape)} axes")
            ch = tuple(min(c, s) for c, s in zip(ch, sh0))
            sh = tuple(c * max(1, -(-min(s, n or s) // c)) for c, s, n in zip(ch, sh0, lshape))
            if sh == ch:
                sh = None
        spec = dict(shape=lshape, dtype=dtype, chunks=ch, shards=sh, compressors=compressors,
                    dimension_names=names, fill_value=0)
        if root is None:  # an array at the root of its own sub-store: no parent group
            arr = zarr.create_array(store=_substore(store, str(k)), **spec)
        else:
            arr = root.create_array(str(k), **spec)
        arrays.append(arr)
        scale = [s * (f ** k) for s, f in zip(spacing, factors)]
        datasets.append({"path": str(k), "coordinateTransformations": [
            {"type": "scale", "scale": scale}]})
        lshape = tuple(-(-s // f) for s, f in zip(lshape, factors))
    ax = []
    for a, n, u in zip(axes, names, ngff_units):
        entry = {"name": n, "type": _AXIS_TYPES[a]}
        if u is not None:
            entry["unit"] = u
        ax.append(entry)
    multiscale = {"axes": ax, "datasets": datasets, "type": method,
                  "metadata": {"method": f"imgio downsample ({method})"}}
    if name is not None:
        multiscale["name"] = str(name)
    attrs = {"ome": {"version": "0.5", "multiscales": [multiscale]}}
    if metadata:
        attrs.update({k: v for k, v in metadata.items() if k != "ome"})
    if root is None:
        def write_root():
            zarr.create_group(store=store, zarr_format=3, attributes=attrs, overwrite=False)
        return arrays, factors, write_root
    root.attrs.update(attrs)
    return arrays, factors


def _substore(store, key: str):
    """The store of ``key`` inside ``store`` (its root is the key)."""
    from zarr.storage import FsspecStore, LocalStore
    if isinstance(store, FsspecStore):
        return FsspecStore(store.fs, path=f"{store.path.rstrip('/')}/{key}", read_only=False)
    if isinstance(store, LocalStore):
        return LocalStore(os.path.join(str(store.root), key), read_only=False)
    raise TypeError(f"cannot write a deferred root into a {type(store).__name__}")


def _clear_store(store) -> None:
    """Empty a store before a write: the root ``zarr.json`` first (so that an old image
    stops being one at once), then everything else."""
    from zarr.core.sync import sync
    for key in ("zarr.json", ".zattrs", ".zgroup", ".zarray"):
        sync(store.delete(key))
    sync(store.delete_dir(""))


def discard_store(store) -> None:
    """Best-effort removal of what a failed write left (root metadata first)."""
    try:
        _clear_store(store)
    except Exception:  # pragma: no cover - the store is unreachable: the write error stands
        pass


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


def write_rows(arr, pos: int, rows: np.ndarray) -> None:
    """``arr[pos:pos + len(rows)] = rows``, one shard (or chunk) at a time across the row.

    zarr assembles a whole shard in memory before it stores it, so writing a row at
    once would hold every shard of the row encoded at the same time."""
    end = pos + rows.shape[0]
    tile = tuple(int(t) for t in (arr.shards or arr.chunks)[1:])
    shape = rows.shape[1:]
    for corner in np.ndindex(*[-(-n // t) for n, t in zip(shape, tile)]):
        box = tuple(slice(c * t, min((c + 1) * t, n)) for c, t, n in zip(corner, tile, shape))
        arr[(slice(pos, end),) + box] = rows[(slice(None),) + box]


def _tiles(shape, tile):
    """The boxes (tuples of slices) of ``tile``-sized tiles covering ``shape``."""
    for corner in np.ndindex(*[-(-n // t) for n, t in zip(shape, tile)]):
        yield tuple(slice(c * t, min((c + 1) * t, n)) for c, t, n in zip(corner, tile, shape))


class LevelWriter:
    """Writes the rows of one pyramid level as they come, and feeds the next level.

    Rows arrive along axis 0 and are copied into one preallocated shard row
    (``unit`` frames); whenever it is full it is written one shard tile at a time
    (growing the array when the final shape is unknown), and each tile, downsampled,
    goes straight into the next level's row buffer.  What is held at most: one shard
    row per level (the levels above 0 are 2^d times smaller each) and one shard tile
    being encoded.  Shard rows are disjoint, so no shard is read back and rewritten.
    """

    def __init__(self, arr, factors, method, nxt: "LevelWriter | None", grow: bool):
        self.arr, self.factors, self.method, self.next = arr, factors, method, nxt
        self.unit = int((arr.shards or arr.chunks)[0])
        if factors[0] == 2 and self.unit % 2:
            self.unit *= 2
        self.tile = tuple(int(t) for t in (arr.shards or arr.chunks)[1:])
        self.grow = grow
        self.pos = 0
        self.buf: np.ndarray | None = None
        self.n_pending = 0
        # tiles downsample on their own when they start on multiples of the factors
        self.tiles_align = all(t % f == 0 for t, f in zip(self.tile, factors[1:]))

    def _buffer(self) -> np.ndarray:
        if self.buf is None:
            self.buf = np.empty((self.unit,) + tuple(self.arr.shape[1:]), self.arr.dtype)
        return self.buf

    def push(self, block: np.ndarray) -> None:
        start = 0
        n = block.shape[0]
        while start < n:
            if not self.n_pending and n - start >= self.unit:
                self._flush(block[start:start + self.unit])  # straight from the caller's array
                start += self.unit
                continue
            take = min(n - start, self.unit - self.n_pending)
            self._buffer()[self.n_pending:self.n_pending + take] = block[start:start + take]
            self.n_pending += take
            start += take
            if self.n_pending == self.unit:
                self._flush(self.buf)

    def room(self) -> int:
        """Rows the row buffer can still take before it is written."""
        return self.unit - self.n_pending

    def put_tile(self, box, data: np.ndarray) -> None:
        """Rows ``data`` of one tile (``box`` across the row) into the row buffer; the
        rows count once every tile of them is in (:meth:`advance`)."""
        self._buffer()[(slice(self.n_pending, self.n_pending + data.shape[0]),) + box] = data

    def advance(self, n: int) -> None:
        self.n_pending += n
        if self.n_pending == self.unit:
            self._flush(self.buf)

    def write_row_by_tiles(self, n: int, read_tile) -> None:
        """Write ``n`` rows (a whole shard row, or the last rows) that ``read_tile(box)``
        gives one shard tile at a time: the row is never whole in memory."""
        assert not self.n_pending
        shape = tuple(self.arr.shape[1:])
        if self.next is not None and not self._feeds_tiles(n):
            # tiles that do not downsample on their own: the row whole, then as push()
            rows = np.empty((n,) + shape, self.arr.dtype)
            for box in _tiles(shape, self.tile):
                rows[(slice(None),) + box] = read_tile(box)
            self._flush(rows)
            return
        for box in _tiles(shape, self.tile):
            data = read_tile(box)
            self._write_tile(n, box, data)
            del data
        self._after_write(n, None)

    def _write_tile(self, n: int, box, data: np.ndarray) -> None:
        self.arr[(slice(self.pos, self.pos + n),) + box] = data
        nxt = self.next
        if nxt is not None and self._feeds_tiles(n):
            small = downsample(data, self.factors, self.method)
            nxt.put_tile(tuple(slice(b.start // f, b.start // f + m) for b, f, m in
                               zip(box, self.factors[1:], small.shape[1:])), small)

    def _feeds_tiles(self, n: int) -> bool:
        return self.tiles_align and self.next.room() >= -(-n // self.factors[0])

    def _after_write(self, n: int, rows) -> None:
        nxt = self.next
        fed = nxt is not None and self._feeds_tiles(n)
        self.pos += n
        if nxt is not None:
            if fed:
                nxt.advance(-(-n // self.factors[0]))
            else:
                nxt.push(downsample(rows, self.factors, self.method))

    def _flush(self, rows: np.ndarray) -> None:
        n = rows.shape[0]
        end = self.pos + n
        if self.grow and end > self.arr.shape[0]:
            self.arr.resize((end,) + tuple(self.arr.shape[1:]))
        fed = self.next is not None and self._feeds_tiles(n)
        for box in _tiles(rows.shape[1:], self.tile):
            if fed:
                self._write_tile(n, box, rows[(slice(None),) + box])
            else:
                self.arr[(slice(self.pos, end),) + box] = rows[(slice(None),) + box]
        self.n_pending = 0
        self._after_write(n, None if fed else rows)

    def finish(self) -> None:
        if self.n_pending:
            self._flush(self.buf[:self.n_pending])
        self.buf = None
        if self.next is not None:
            self.next.finish()


class ZarrPlugin(PluginV3):
    """Zarr arrays and OME-Zarr images (NGFF 0.4, 0.5), local or through fsspec."""

    def __init__(self, request, *, dataset: str | None = None, **kwargs) -> None:
        super().__init__(request)
        if kwargs:
            raise TypeError(f"the zarr plugin takes only dataset= when opened, got {sorted(kwargs)}")
        self._dataset = dataset
        self._writer_levels: LevelWriter | None = None
        self._tmp_dir: str | None = None
        self._root = None
        self._where = request.filename
        if request.io_mode == "r":
            if request.kind not in ("dir", "urldir"):
                raise InitializationError("not a folder or a remote Zarr store")
            try:
                self._root = _open_root(_open_store(request, "r"))
            except ValueError as exc:  # unparsable zarr.json / .zarray (JSON or fields)
                raise CorruptFileError(f"{request.filename}: its Zarr metadata cannot be "
                                       f"parsed ({exc})") from exc
            if self._root is None:
                if request.kind == "urldir":  # nothing else reads remote folders
                    from ..errors import file_not_found
                    raise file_not_found(request.filename)
                raise InitializationError("no Zarr metadata (zarr.json, .zgroup, .zarray)")
        else:
            if request.kind not in ("path", "urldir"):
                raise InitializationError(f"{request.filename} is not a folder path or a URL")
            if request.kind == "path" and not (request.path or "").lower().rstrip("/").endswith(
                    ".zarr"):
                raise InitializationError("not a .zarr target")
            self._store = None

    # -- reading -------------------------------------------------------------------------
    def _node(self, dataset: str | None = None, level: int | None = None):
        """``(array, info)``: the array selected and its NGFF description (or None)."""
        self._check_open()
        root = self._root
        path = self._dataset if dataset is None else dataset
        node = root
        if path not in (None, "", "/"):
            try:
                node = root[str(path).strip("/")]
            except KeyError:
                raise FormatError(f"{self._where} has no array or group {path!r}; it holds "
                                  + self._listing()) from None
        if isinstance(node, zarr.Array):
            if level not in (None, 0):
                raise FormatError(f"{self._where}: {path or 'the array'} is a plain Zarr "
                                  f"array with one resolution, not level {level}")
            return node, None
        ms = self._multiscales(node)
        if ms is None:
            if path in (None, "", "/"):
                for key in ("0",):  # bioformats2raw: series 0
                    if "bioformats2raw.layout" in node.attrs and key in node:
                        return self._node(key, level)
                arrays = [k for k, _ in node.arrays()]
                groups = [g for k, g in node.groups() if self._multiscales(g) is not None]
                if len(arrays) == 1 and not groups:
                    return self._node(arrays[0], level)
                if len(groups) == 1 and not arrays:
                    return self._node(groups[0].path[len(node.path):].strip("/"), level)
            raise FormatError(f"{self._where}: pick an array with dataset=; it holds "
                              + self._listing())
        datasets = ms["datasets"]
        lv = 0 if level is None else int(level)
        if not -len(datasets) <= lv < len(datasets):
            raise IndexError(f"{self._where}: level {level} is out of range (the image has "
                             f"{len(datasets)} level{'s' if len(datasets) != 1 else ''})")
        lv %= len(datasets)
        try:
            arr = node[datasets[lv]["path"]]
        except KeyError:
            raise CorruptFileError(f"{self._where}: the multiscales metadata names level "
                                   f"{datasets[lv]['path']!r}, which is missing") from None
        return arr, {"multiscale": ms, "level": lv, "n_levels": len(datasets),
                     "version": self._version(node, ms)}

    @staticmethod
    def _multiscales(node):
        attrs = node.attrs
        ome = attrs.get("ome")
        if isinstance(ome, dict) and ome.get("multiscales"):
            return ome["multiscales"][0]
        ms = attrs.get("multiscales")
        if isinstance(ms, list) and ms:
            return ms[0]
        return None

    @staticmethod
    def _version(node, ms) -> str | None:
        ome = node.attrs.get("ome")
        if isinstance(ome, dict) and "version" in ome:
            return str(ome["version"])
        return str(ms.get("version")) if ms.get("version") is not None else None

    def _listing(self) -> str:
        items = []

        def walk(group, prefix):
            for key, arr in group.arrays():
                items.append(f"{prefix}{key} {arr.shape} {arr.dtype}")
            for key, sub in group.groups():
                if self._multiscales(sub) is not None:
                    items.append(f"{prefix}{key} (OME-Zarr image)")
                elif len(items) < 50:
                    walk(sub, f"{prefix}{key}/")
        if isinstance(self._root, zarr.Group):
            walk(self._root, "")
        return ", ".join(items) or "nothing"

    @staticmethod
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

    def _frame_index(self, index, n: int):
        index = self._volume_index(index)
        if index is None or index is Ellipsis:
            return None
        return self._normalize_index(index, n, "frame")

    def read(self, *, index: Any = None, dataset: str | None = None, level: int | None = None,
             out: np.ndarray | None = None, **kwargs) -> np.ndarray:
        if kwargs:
            raise TypeError(f"unexpected read keywords for the zarr plugin: {sorted(kwargs)}")
        arr, _ = self._node(dataset, level)
        i = self._frame_index(index, arr.shape[0] if arr.ndim else 1)
        box = tuple(slice(0, n) for n in (arr.shape if i is None else arr.shape[1:]))
        return self.read_region(box, index=i, out=out, dataset=dataset, level=level)

    def read_region(self, box, *, index: Any = None, out: np.ndarray | None = None,
                    dataset: str | None = None, level: int | None = None, **kwargs) -> np.ndarray:
        """``read(index=index, ...)[box]``, reading only the chunks the box touches."""
        if kwargs:
            raise TypeError(f"unexpected keywords for the zarr plugin: {sorted(kwargs)}")
        self._check_open()
        arr, _ = self._node(dataset, level)
        i = self._frame_index(index, arr.shape[0] if arr.ndim else 1)
        shape = arr.shape if i is None else arr.shape[1:]
        box = tuple(box)
        if len(box) != len(shape) or any(
                not isinstance(b, slice) or b.step not in (None, 1) or b.start is None
                or b.stop is None or not 0 <= b.start <= b.stop <= n for b, n in zip(box, shape)):
            raise ValueError(f"{self._where}: box {box} does not fit the shape {shape}")
        sel = box if i is None else (i,) + box
        bshape = tuple(b.stop - b.start for b in box)
        if out is not None:
            if out.shape != bshape or out.dtype != arr.dtype or not out.flags.c_contiguous:
                raise ValueError(f"out must be a C-contiguous {arr.dtype} array of shape "
                                 f"{bshape}, not {out.dtype} {out.shape}")
        else:
            from ..core.limits import check_nbytes
            check_nbytes(bshape, arr.dtype, self._where, None)
        try:
            if out is not None and math.prod(bshape):
                from zarr.core.buffer.cpu import NDBuffer
                arr.get_basic_selection(sel, out=NDBuffer.from_numpy_array(out))
                return out
            data = np.asarray(arr[sel])
        except (ValueError, TypeError, IndexError, MemoryError):
            raise
        except Exception as exc:  # zarr's codec errors on damaged chunks
            if type(exc).__module__.split(".")[0] in ("numcodecs", "zarr") or isinstance(
                    exc, (RuntimeError, OSError)) and not isinstance(exc, FileNotFoundError):
                raise CorruptFileError(f"{self._where}: a chunk of {arr.path or 'the array'} "
                                       f"cannot be decoded ({exc})") from exc
            raise
        if out is not None:
            out[...] = data
            return out
        return data

    def chunks(self, *, index: Any = None, dataset: str | None = None,
               level: int | None = None, **kwargs) -> tuple[int, ...] | None:
        """Chunk shape (the inner chunks of shards) of the ndimage ``read`` returns."""
        arr, _ = self._node(dataset, level)
        i = self._frame_index(index, arr.shape[0] if arr.ndim else 1)
        ch = tuple(int(c) for c in arr.chunks)
        return ch if i is None else ch[1:]

    def iter(self, *, dataset: str | None = None, level: int | None = None,
             **kwargs) -> Iterator[np.ndarray]:
        arr, _ = self._node(dataset, level)
        if arr.ndim < 3:
            yield self.read(dataset=dataset, level=level)
            return
        for i in range(arr.shape[0]):
            with self._lock:
                frame = self.read(index=i, dataset=dataset, level=level)
            yield frame

    def properties(self, *, index: Any = None, dataset: str | None = None,
                   level: int | None = None, **kwargs) -> ImageProperties:
        arr, info = self._node(dataset, level)
        axes, spacing, units = self._physical(arr, info)
        i = self._frame_index(index, arr.shape[0] if arr.ndim else 1)
        shape = tuple(arr.shape)
        if i is not None:
            return ImageProperties(shape[1:], arr.dtype, axes=None if axes is None else axes[1:],
                                   spacing=None if spacing is None else spacing[1:],
                                   units=None if units is None else units[1:])
        return ImageProperties(shape, arr.dtype, n_images=shape[0] if shape else 1,
                               is_batch=index is Ellipsis, axes=axes, spacing=spacing,
                               units=units)

    def metadata(self, *, index: Any = None, exclude_applied: bool = True,
                 dataset: str | None = None, level: int | None = None, **kwargs) -> dict:
        arr, info = self._node(dataset, level)
        meta = dict(self._root.attrs) if isinstance(self._root, zarr.Group) else {}
        meta.update({"zarr_format": arr.metadata.zarr_format, "path": arr.path,
                     "shape": tuple(arr.shape), "dtype": str(arr.dtype),
                     "chunks": tuple(arr.chunks),
                     "shards": None if arr.shards is None else tuple(arr.shards),
                     "compression": _codec_name(arr)})
        if info is not None:
            meta.update({"ngff_version": info["version"], "level": info["level"],
                         "n_levels": info["n_levels"],
                         "levels": [d["path"] for d in info["multiscale"]["datasets"]]})
            if not exclude_applied:
                meta["multiscales"] = info["multiscale"]
        axes, spacing, units = self._physical(arr, info)
        meta.update({"axes": axes, "spacing": spacing, "units": units})
        return meta

    # -- writing -------------------------------------------------------------------------
    def _write_store(self):
        request = self._request
        if request.kind == "urldir":
            return _open_store(request, "w")
        from zarr.storage import LocalStore
        directory, name = os.path.split(request.path.rstrip("/"))
        self._tmp_dir = tempfile.mkdtemp(prefix=f".{name}.", suffix=".imgio-partial",
                                         dir=directory)
        return LocalStore(self._tmp_dir, read_only=False)

    def _start(self, shape, dtype, kw: dict, grow: bool) -> None:
        unknown = set(kw) - _WRITE_KEYS
        if unknown:
            raise TypeError(f"unexpected write keywords for the zarr plugin: {sorted(unknown)}")
        dtype = np.dtype(dtype)
        if dtype.kind not in "biufc" or dtype.fields is not None:
            raise DTypeError(f"{self._where}: Zarr images hold numbers, not {dtype}")
        where = self._where
        store = self._write_store()
        method = kw.get("downsample", "mean")
        if method not in ("mean", "stride"):
            raise ValueError(f"downsample must be 'mean' or 'stride', not {method!r}")
        if kw.get("ome", True) is False:
            chunks = kw.get("chunks") or tuple(max(1, min(s or 64, 256)) for s in shape)
            spec = dict(shape=shape, dtype=dtype, chunks=chunks, shards=kw.get("shards") or None,
                        compressors=_compressors(kw.get("compression", "zstd"),
                                                 kw.get("compression_level")))
            attrs = dict(kw.get("metadata") or {})
            if self._tmp_dir is None:  # remote: the root group last, as for OME-Zarr
                _clear_store(store)
                arr = zarr.create_array(store=_substore(store, "data"), **spec)
                self._write_root = lambda: zarr.create_group(
                    store=store, zarr_format=3, attributes=attrs, overwrite=False)
                self._remote_store = store
            else:
                root = zarr.open_group(store, mode="w", zarr_format=3)
                arr = root.create_array("data", **spec)
                if attrs:
                    root.attrs.update(attrs)
            arrays, factors, levels = [arr], (1,) * len(shape), 1
        else:
            axes = _check_axes(kw.get("axes"), len(shape), where, shape)
            made = create_ngff(
                store, shape, dtype, axes=axes, spacing=kw.get("spacing"), units=kw.get("units"),
                levels=kw.get("levels"), chunks=kw.get("chunks"), shards=kw.get("shards"),
                compression=kw.get("compression", "zstd"),
                compression_level=kw.get("compression_level"), name=kw.get("name"),
                metadata=kw.get("metadata"), method=method, where=where,
                root_last=self._tmp_dir is None)
            arrays, factors = made[:2]
            self._write_root = made[2] if len(made) > 2 else None
            self._remote_store = store if self._tmp_dir is None else None
        nxt = None
        for arr in reversed(arrays):
            nxt = LevelWriter(arr, factors, method, nxt, grow)
        self._writer_levels = nxt

    def write(self, ndimage, *, is_batch: bool | None = None, **kwargs) -> None:
        self._check_open()
        self._request.check_writable()
        if self._writer_levels is not None:
            raise FormatError(f"{self._where}: the zarr plugin writes one image per store")
        if isinstance(ndimage, (list, tuple)):
            ndimage = np.stack([np.asarray(a) for a in ndimage])
        data = np.asarray(ndimage)
        if data.ndim < 2:
            raise ShapeError(f"{self._where}: Zarr images need at least 2 axes, got {data.shape}")
        self._start(data.shape, data.dtype, kwargs, grow=False)
        self._writer_levels.push(data)
        self._writer_levels.finish()

    def append(self, frame, *, axes=None, spacing=None, units=None, **kwargs) -> None:
        """Add one frame (a new first-axis row); the first call's keywords shape the store
        (``axes``/``spacing``/``units`` describe the growing array, frame axes included)."""
        self._check_open()
        self._request.check_writable()
        frame = np.asarray(frame)
        if self._writer_levels is None:
            if frame.ndim < 1:
                raise ShapeError(f"{self._where}: frames need at least 1 axis")
            kw = dict(kwargs, axes=axes, spacing=spacing, units=units)
            self._frame_shape = frame.shape
            self._start((0,) + frame.shape, frame.dtype, kw, grow=True)
            self._appending = True
        elif not getattr(self, "_appending", False):
            raise FormatError(f"{self._where}: append after write")
        if frame.shape != self._frame_shape:
            raise ShapeError(f"{self._where}: frame of shape {frame.shape}, the first was "
                             f"{self._frame_shape}")
        self._writer_levels.push(frame[None])

    def _close_backend(self) -> None:
        if getattr(self, "_appending", False) and self._writer_levels is not None:
            self._appending = False
            self._writer_levels.finish()

    def _close_locked(self, success: bool):
        if self._closed:
            return self._request._result
        try:
            result = super()._close_locked(success)
        except BaseException:
            self._discard()
            raise
        if self._tmp_dir is None and getattr(self, "_remote_store", None) is not None:
            store, self._remote_store = self._remote_store, None
            if success and self._writer_levels is not None:
                try:
                    self._write_root()  # last: now the store is an image
                except BaseException:
                    discard_store(store)
                    raise
            else:
                discard_store(store)
        if self._tmp_dir is not None:
            if success and self._writer_levels is not None:
                target = self._request.path.rstrip("/")
                old = None
                if os.path.exists(target):
                    old = target + ".imgio-old"
                    os.replace(target, old)
                os.replace(self._tmp_dir, target)
                self._tmp_dir = None
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
            else:
                self._discard()
        return result

    def _discard(self) -> None:
        if getattr(self, "_remote_store", None) is not None:
            store, self._remote_store = self._remote_store, None
            discard_store(store)
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None
