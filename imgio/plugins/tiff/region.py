"""Region reads of TIFF files: :class:`RegionMixin` (``chunks`` and ``read_region``).

A series that is its pages stacked is read page by page; inside a page only
the strips or tiles a box touches are read and decoded (through tifffile's
decoders); an uncompressed series stored contiguously in a file on disk is
read from its bytes (memory-mapped).  :mod:`imgio.lazy` and
:func:`imgio.to_dask` use these two methods of the plugin contract.

The mixin needs the plugin's ``_request``, ``_tif``, ``_series``, ``_guard``,
``_damaged``, ``_set_partial``, ``_series_index``, ``_check_equal_shapes``,
``_contiguous_offset``, ``_check_allocation`` and ``read``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...errors import CorruptFileError, unexpected_keyword
from ...io import raw
from .damage import _DAMAGE

__all__ = ["RegionMixin"]


class RegionMixin:
    """``chunks`` (native strips and tiles) and ``read_region(box, out=)``."""

    #: selection keywords read_region and chunks take (as read() does)
    _REGION_KEYS = ("page", "key", "series", "level")

    def _region_target(self, index: Any, selection: dict, what: str = "read_region") -> tuple:
        """What ``read(index=index, **selection)`` returns, as ``(kind, shape, dtype, obj)``.

        ``kind`` is ``"page"`` (obj: one page), ``"series"`` (obj: a series or a
        level of it) or ``"stack"`` (obj: every series, ``index=...``).
        """
        selection = dict(selection)
        self._set_partial(selection)
        selection.pop("max_bytes", None)  # region reads allocate through _region_out's guard
        unknown = [key for key in selection if key not in self._REGION_KEYS]
        if unknown:
            raise unexpected_keyword(f"{type(self).__name__}.{what}", unknown)
        page = selection.pop("page", None)
        if "key" in selection:
            page = selection.pop("key")
        if "series" in selection:
            if index is not None:
                raise ValueError("Can't use `series` and `index` at the same time.")
            index = selection.pop("series")
        level = selection.pop("level", None)
        if page is not None:
            if index is None or index is Ellipsis:
                pages = self._tif.pages
            else:
                pages = self._series[self._series_index(index)].pages
            p = pages[self._normalize_index(page, self._guard(len, pages), "page")]
            return "page", tuple(p.shape), p.dtype, p
        if index is Ellipsis:
            self._check_equal_shapes()
            first = self._series[0]
            return ("stack", (len(self._series),) + tuple(first.shape), first.dtype,
                    list(self._series))
        ser = self._series[self._series_index(index)]
        if level is not None:
            n = len(ser.levels)
            ser = ser.levels[self._normalize_index(level, n, "level")]
        return "series", tuple(ser.shape), ser.dtype, ser

    def _segment_grid(self, page) -> tuple | None:
        """``(axis map, segment shape in page axes, grid)`` of a page's strips or tiles.

        The axis map gives, for each axis of ``page.shape``, its position in
        tifffile's 5-D ``shaped`` layout (separate samples, depth, length,
        width, contiguous samples).  None when the page is read whole.
        """
        shaped = tuple(page.shaped)
        separate = page.planarconfig == 2
        where = {"Z": 1, "Y": 2, "X": 3, "S": 0 if separate else 4}
        axes = page.axes
        if len(axes) != len(page.shape) or any(a not in where for a in axes):
            return None
        amap = tuple(where[a] for a in axes)
        if len(set(amap)) != len(amap) or any(shaped[m] != n for m, n in zip(amap, page.shape)):
            return None
        if math.prod(page.shape) != math.prod(shaped):
            return None
        if page.is_tiled:
            seg = [1, page.tiledepth or 1, page.tilelength, page.tilewidth, shaped[4]]
        else:
            if shaped[1] != 1:
                return None
            seg = [1, 1, min(page.rowsperstrip or shaped[2], shaped[2]) or 1, shaped[3],
                   shaped[4]]
        grid = tuple(-(-shaped[i] // max(seg[i], 1)) for i in range(4))
        if math.prod(grid) != len(page.dataoffsets):
            return None
        return amap, tuple(min(seg[m], n) for m, n in zip(amap, page.shape)), grid

    def _page_chunks(self, page) -> tuple:
        found = self._segment_grid(page)
        return tuple(page.shape) if found is None else found[1]

    def chunks(self, *, index: Any = None, **selection) -> tuple[int, ...] | None:
        """TIFF chunks: one page's strips or tiles; the axes above the page one at a time."""
        self._check_open()
        kind, shape, dtype, obj = self._guard(self._region_target, index, selection)
        if kind == "page":
            return self._guard(self._page_chunks, obj.keyframe if hasattr(obj, "keyframe")
                               and obj.keyframe is not None else obj)
        sers = obj if kind == "stack" else [obj]
        inner = self._series_chunks(sers[0])
        if inner is None:
            return None
        return ((1,) + inner) if kind == "stack" else inner

    def _series_chunks(self, ser) -> tuple | None:
        layout = self._guard(self._series_layout, ser)
        if layout is None:
            return None
        lead, kf = layout
        return (1,) * len(lead) + self._guard(self._page_chunks, kf)

    @staticmethod
    def _series_layout(ser) -> tuple | None:
        """``(leading shape, keyframe)`` when a series is its pages stacked, else None."""
        kf = ser.keyframe
        shape, pshape = tuple(ser.shape), tuple(kf.shape)
        pn = len(pshape)
        if len(shape) < pn or shape[len(shape) - pn:] != pshape:
            return None
        lead = shape[:len(shape) - pn]
        if math.prod(lead) != len(ser.pages):
            return None
        return lead, kf

    def read_region(self, box, *, index: Any = None, out=None, **selection) -> np.ndarray:
        """``read(...)[box]`` reading only the pages, strips and tiles the box touches.

        An uncompressed series stored contiguously in a file on disk is read from
        its bytes (memory-mapped); other series page by page and, inside a page,
        segment by segment through tifffile's decoders.
        """
        self._check_open()
        kind, shape, dtype, obj = self._guard(self._region_target, index, selection)
        box = self._check_box(box, shape)
        out = self._region_out(box, dtype, out)
        if out.size == 0:
            return out
        if kind == "page":
            self._region_page(obj, box, out)
        elif kind == "stack":
            for i in range(box[0].start, box[0].stop):
                self._region_series(obj[i], box[1:], out[i - box[0].start])
        else:
            self._region_series(obj, box, out)
        return out

    def _region_series(self, ser, box, out) -> None:
        shape = tuple(ser.shape)
        if all(b.start == 0 and b.stop == n for b, n in zip(box, shape)) and self._is_top(ser):
            # the whole series: read() knows the fastest way (the fast parser)
            got = self.read(index=self._series.index(ser), out=out, maxworkers=1)
            if got is not out:
                np.copyto(out, got)
            return
        offset = self._guard(self._contiguous_offset, ser)
        if (offset is not None and self._request.kind == "path"
                and ser.dtype.kind in "biufc"):
            mm = np.memmap(self._request.path, dtype=ser.dtype.newbyteorder(self._tif.byteorder),
                           mode="r", offset=offset, shape=shape)
            try:
                np.copyto(out, mm[box])
            finally:
                del mm
            return
        layout = self._guard(self._series_layout, ser)
        if layout is None:  # pages do not map onto the shape: the series whole
            self._check_allocation(ser)
            data = self._guard(ser.asarray, maxworkers=1)
            np.copyto(out, data[box])
            return
        lead, kf = layout
        nl = len(lead)
        numbers = np.arange(math.prod(lead), dtype=np.intp).reshape(lead)[box[:nl]]
        flat = out.reshape((numbers.size,) + out.shape[nl:])
        for i, k in enumerate(numbers.ravel()):
            page = self._guard(ser.pages.__getitem__, int(k))
            if page is None:  # a page an OME series lacks reads as zeros, as in read()
                flat[i] = 0
                continue
            self._region_page(page, box[nl:], flat[i])

    def _is_top(self, ser) -> bool:
        return any(s is ser for s in self._series)

    def _region_page(self, page, box, out) -> None:
        """Fill ``out`` with ``page.asarray()[box]``, decoding only the segments it touches."""
        kf = page.keyframe if getattr(page, "keyframe", None) is not None else page
        found = self._guard(self._segment_grid, kf)
        if found is None:
            np.copyto(out, self._guard(page.asarray, maxworkers=1)[box])
            return
        amap, _, grid = found
        shaped = tuple(kf.shaped)
        lo, hi = [0] * 5, list(shaped)
        for b, m in zip(box, amap):
            lo[m], hi[m] = b.start, b.stop
        seg = (1, kf.tiledepth or 1, kf.tilelength, kf.tilewidth) if kf.is_tiled else (
            1, 1, min(kf.rowsperstrip or shaped[2], shaped[2]) or 1, shaped[3])
        ranges = [range(lo[i] // seg[i], -(-hi[i] // seg[i])) for i in range(4)]
        if list(amap) != sorted(amap):  # page axes in another order than tifffile's layout
            np.copyto(out, self._guard(page.asarray, maxworkers=1)[box])
            return
        # out in the 5-D layout: the axes the page squeezes away have length 1
        view = out.reshape(tuple(hi[i] - lo[i] for i in range(5)))
        fh = self._tif.filehandle
        offsets, counts = page.dataoffsets, page.databytecounts
        decode = kf.decode
        size = self._request.size()
        for s in ranges[0]:
            for z in ranges[1]:
                for y in ranges[2]:
                    for x in ranges[3]:
                        j = ((s * grid[1] + z) * grid[2] + y) * grid[3] + x
                        self._region_segment(fh, decode, kf, offsets[j], counts[j], j, size,
                                             (s, z, y, x), seg, lo, hi, view)

    def _region_segment(self, fh, decode, kf, offset, count, j, size, pos, seg, lo, hi,
                        view) -> None:
        origin = [pos[i] * seg[i] for i in range(4)]
        if count == 0:
            data = None
        else:
            if size is not None and offset + count > size:
                raise CorruptFileError(
                    f"{self._request.filename}: segment {j} of a page ({count} bytes at "
                    f"offset {offset}) lies past the end of the {size}-byte file.")
            if self._request.kind == "path":  # a local file: positioned reads (imgio.io.raw)
                data = bytearray(count)
                try:
                    raw.pread_into(self._request.fileno(), memoryview(data), offset)
                except raw.Truncated as exc:
                    raise CorruptFileError(
                        f"{self._request.filename}: segment {j} is truncated (read "
                        f"{exc.got} of {count} bytes).") from None
            else:  # a file object (remote, bytes): tifffile's handle
                fh.seek(offset)
                data = fh.read(count)
                if len(data) != count:
                    raise CorruptFileError(f"{self._request.filename}: segment {j} is "
                                           f"truncated (read {len(data)} of {count} bytes).")
        if data is None:
            block = None
        else:
            try:
                block, _, _ = decode(data, j, jpegtables=getattr(kf, "jpegtables", None))
            except _DAMAGE as exc:
                raise self._damaged(exc) from exc
        # block: (depth, length, width, samples) of segment j (separate sample j's plane)
        dst, src = [], []
        for i in range(1, 4):
            a = max(lo[i], origin[i])
            b = min(hi[i], origin[i] + seg[i])
            dst.append(slice(a - lo[i], b - lo[i]))
            src.append(slice(a - origin[i], b - origin[i]))
        s_dst = slice(pos[0] - lo[0], pos[0] - lo[0] + 1)
        target = view[(s_dst,) + tuple(dst) + (slice(None),)]
        if block is None:
            target[...] = 0
            return
        block = block.reshape((1,) + block.shape[-4:]) if block.ndim == 4 else block
        piece = block[(slice(0, 1),) + tuple(src) + (slice(lo[4], hi[4]),)]
        if piece.shape != target.shape:
            raise CorruptFileError(f"{self._request.filename}: segment {j} decodes to "
                                   f"{block.shape[1:]}, expected {tuple(seg[1:])}.")
        np.copyto(target, piece)
