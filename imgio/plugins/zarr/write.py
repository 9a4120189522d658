"""Writing Zarr and OME-Zarr: chunk and shard layout, codecs, the NGFF pyramid
(:func:`create_ngff`, :func:`downsample`), the streaming writer that builds every
level blockwise from shard rows (:class:`LevelWriter`, :func:`write_rows`) and the
remote-safe write order (the root ``zarr.json`` last; :func:`discard_store` removes a
failed write).
"""
from __future__ import annotations

import math
import os

import numpy as np
import zarr

from ...errors import ShapeError
from .ngff import _AXIS_TYPES, _ngff_unit

__all__ = ["default_chunks", "default_shards", "level_factors", "downsample", "create_ngff",
           "LevelWriter", "write_rows", "discard_store"]

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
