"""Fast path for simple TIFF files, on top of the Cython parser ``_ext/tiffparse``.

:func:`read_simple` serves the daily "folder of 10,000 small slices" job and
compressed stacks: one page, or a shaped volume of N compressed pages stored
alike (what ``tifffile.imwrite`` writes for a zlib stack); uncompressed or
zlib/deflate strips or tiles, 8/16/32/64-bit integer or float samples, gray or
RGB(A) contiguous, predictor none / horizontal / floating point.  It returns
``None`` ("not mine, use tifffile") for anything else, decided from the parsed
tags (never by catching a crash), and raises
:class:`~imgio.errors.CorruptFileError` for damaged files it recognises.

The result always equals ``tifffile.imread(path)`` (shape, dtype, values):
gray pages are ``(H, W)``, RGB(A) pages ``(H, W, S)``, volumes ``(N, H, W[, S])``,
in native byte order.

Layout of a read: one ``read`` of the first 4 KiB; the kernel parses the
header and IFDs from it with the GIL released (or, when the IFDs or their
arrays lie further in, from a read-only ``mmap`` of the file).  Raw bytes are
read through :mod:`imgio.io.raw` (``pread_into`` / ``pread_ranges``):
uncompressed strips straight into the output, merged into one call when they
sit back to back.  Compressed segments are read in runs of about 1 MiB and
inflated by libdeflate (imagecodecs' ``deflate_decode``, zlib format: it
checks each stream to its end and its adler32 checksum) straight into the
output (strips) or a tile buffer (tiles), on every core when there is more
than ``_THREAD_MIN`` of them (the GIL is released while inflating).  Byte
swapping and tile assembly are nogil kernels, predictor undo is imagecodecs'
(``delta_decode``, ``floatpred_decode``), per segment on the decoding thread.

Which files are served is decided once, in Cython (``tiffparse._decline``:
the parse carries its verdict as ``info["reason"]``); damage is decided here
(:func:`_geometry`): segments starting at offset 0 or inside the header, past
the end, too short, tiles expanding far beyond the image, streams that do not
end where the segment does.  Every allocation sized by the file (the image,
the tile buffer, the compressed bytes) passes
:func:`imgio.core.limits.check_nbytes` first.
"""
from __future__ import annotations

import mmap
import os
import sys
import threading
from typing import Any

import numpy as np

from ..._ext import tiffparse as _tp
from ...core.limits import check_nbytes
from ...errors import CorruptFileError, DTypeError, ShapeError

from imagecodecs import DeflateError as _DeflateError
from imagecodecs import deflate_decode as _deflate_decode
from imagecodecs import delta_decode as _delta_decode
from imagecodecs import floatpred_decode as _floatpred_decode

from ...io import raw as _raw

__all__ = ["read_simple", "parse", "why_not"]

_OK, _NOT_TIFF, _NEED_MORE, _CORRUPT = 0, 1, 2, 3
_HEAD = 4096               # bytes read up front; tifffile puts the IFD at offset 8
_PARSE_PAGES = 1024        # page-count limit of parse()
_LITTLE = sys.byteorder == "little"
_NATIVE = "<" if _LITTLE else ">"
_DEFLATE_RATIO = 1032      # no deflate stream expands more than this
# tiles may overhang the image (a 16x16 image in one 256x256 tile is legal) but a
# tile buffer larger than this is a bomb, refused before it is allocated
_TILE_SLACK = 4            # x the image's bytes ...
_TILE_SLACK_BYTES = 16 << 20   # ... plus this

_CORRUPT_MESSAGES = {
    1: "the file ends inside the TIFF header (file size {d})",
    2: "the BigTIFF header declares an offset size of {d}, not 8",
    3: "the first IFD offset is 0: the file holds no image",
    4: "the IFD at offset {d} lies past the end of the file",
    5: "the IFD declares {d} entries, more than the file can hold",
    6: "the value of tag {d} lies past the end of the file",
    7: "tag {d} declares more values than the file can hold",
    8: "the IFD chain loops back to offset {d}",
    9: "the next-IFD offset {d} points past the end of the file",
}

_DTYPES = {(1, 8): "u1", (1, 16): "u2", (1, 32): "u4", (1, 64): "u8",
           (2, 8): "i1", (2, 16): "i2", (2, 32): "i4", (2, 64): "i8",
           (3, 16): "f2", (3, 32): "f4", (3, 64): "f8"}


_NP_DTYPES = {key: np.dtype(code) for key, code in _DTYPES.items()}


def _corrupt(name: str, what: str) -> CorruptFileError:
    return CorruptFileError(f"{name}: damaged TIFF file: {what}")


# -- parsing -------------------------------------------------------------------------
def _parse_fd(fd: int, size: int, max_pages: int, name: str,
              head: bytes | None = None) -> dict | None:
    """Parse via the kernel from an open file: the head first, then mmap if needed.

    ``head``: the file's first ``min(size, _HEAD)`` bytes, if already read.
    """
    if head is None:
        head = os.pread(fd, min(size, _HEAD), 0)
    info = _tp.parse_buffer(head, size, max_pages)
    if info["status"] == _NEED_MORE:
        with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mm:
            info = _tp.parse_buffer(mm, size, max_pages)
    return _checked(info, name)


def _checked(info: dict, name: str) -> dict | None:
    status = info["status"]
    if status == _NOT_TIFF:
        return None
    if status == _CORRUPT:
        msg = _CORRUPT_MESSAGES.get(info["code"], "code {d}").format(d=info["detail"])
        raise _corrupt(name, msg)
    if status != _OK:  # pragma: no cover - NEED_MORE cannot survive a whole-file parse
        raise _corrupt(name, f"parser status {status}")
    return info


def parse(source: Any, max_pages: int = _PARSE_PAGES) -> dict | None:
    """The parsed header, first IFD and page count of a TIFF file (for tests).

    ``source`` is a path or the file's bytes.  Returns ``None`` for data that
    is not TIFF; raises :class:`CorruptFileError` for damaged structure.  The
    dict also holds ``"dtype"``, ``"shape"`` and ``"reason"`` (why the fast
    path declines the file, or ``None`` when it serves it).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = memoryview(source).cast("B")
        info = _checked(_tp.parse_buffer(data, len(data), max_pages), "<bytes>")
    else:
        name = os.fspath(source)
        with open(name, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            info = _parse_fd(f.fileno(), size, max_pages, name)
    if info is not None:
        layout = _layout(info) if info["reason"] is None else None
        info["shape"] = layout[0] if layout else None
        info["dtype"] = layout[1] if layout else None
    return info


def why_not(source: Any) -> str | None:
    """Why :func:`read_simple` declines ``source`` (``None`` if it serves it)."""
    info = parse(source, max_pages=2)
    return "not a TIFF file" if info is None else info["reason"]


# -- the layout of a served file ---------------------------------------------------
def _layout(info: dict) -> tuple[tuple[int, ...], np.dtype]:
    h, w, spp = int(info["length"]), int(info["width"]), int(info["samplesperpixel"])
    dtype = _NP_DTYPES[(info["sampleformat"], info["bitspersample"])]
    shape = (h, w) if spp == 1 else (h, w, spp)
    npages = int(info["n_pages"])
    return ((npages,) + shape if npages > 1 else shape), dtype


# -- reading -------------------------------------------------------------------------
def read_simple(path: Any, out: np.ndarray | None = None, *,
                max_bytes: Any = None, fd: int | None = None,
                head: bytes | None = None, size: int | None = None) -> np.ndarray | None:
    """The pixels of a simple TIFF file (one page or a compressed volume), or ``None``.

    Parameters
    ----------
    path : str or os.PathLike
        A local file.  Anything else (file objects, bytes) returns ``None``.
    out : numpy.ndarray, optional
        Output of exactly the image's shape and dtype (``tifffile.imread``'s
        shape and dtype); it is filled and returned.  Non-array ``out`` (e.g.
        tifffile's ``"memmap"``) returns ``None``.
    max_bytes : int or bool, optional
        Size limit checked before allocating a new array (see
        :func:`imgio.core.limits.check_nbytes`: ``None`` is the default limit,
        ``False`` none).
    fd : int, optional
        An open descriptor of ``path`` to read from (positioned reads only; it
        is neither moved nor closed), saving a second ``open``.
    head, size : bytes and int, optional
        With ``fd``: the file's first bytes and its size, when the caller has
        them already (saves a read and an ``fstat``).  A head too short for
        the first IFD is only a first try.

    Returns
    -------
    numpy.ndarray or None
        The image, equal to ``tifffile.imread(path)``; ``None`` when the file
        is not TIFF or is not simple (several pages other than a compressed
        shaped volume, ImageJ hyperstack, OME, other codecs, odd bit depths,
        planar RGB, palette, ...).  Compressed data are decoded on every core
        when there is enough of it (tifffile's ``maxworkers`` is not a
        parameter here: the plugin's seam keeps this signature).

    Raises
    ------
    CorruptFileError
        Damaged structure: offsets past the end of the file, truncated
        strips or tiles, absurd counts, IFD loops, undecodable data.
    ShapeError, DTypeError
        ``out`` does not match the image.
    """
    if out is not None and not isinstance(out, np.ndarray):
        return None
    if not isinstance(path, (str, os.PathLike)):
        return None
    name = os.fspath(path)
    if not isinstance(name, str):
        return None
    if fd is not None:  # the caller's descriptor: neither moved nor closed
        target = _read_fd(fd, name, out, max_bytes, head, size)
    else:
        with open(name, "rb", buffering=0) as f:
            target = _read_fd(f.fileno(), name, out, max_bytes)
    if target is None:
        return None
    if out is not None and target is not out:
        np.copyto(out, target)
        return out
    return target


def _read_fd(fd: int, name: str, out: np.ndarray | None, max_bytes: Any,
             head: bytes | None = None, size: int | None = None) -> np.ndarray | None:
    """:func:`read_simple` on an open descriptor: the pixels, or ``None`` if declined."""
    if size is None:
        size = os.fstat(fd).st_size
        head = None  # only trusted together with the size it came with
    plan = None if head is None else _tp.plan_simple(head, size)
    if plan is None and (head is None or len(head) < min(size, _HEAD)):
        # no head, or the caller's is shorter than ours and may not reach the IFD
        head = os.pread(fd, min(size, _HEAD), 0)
        plan = _tp.plan_simple(head, size)
    if plan is not None:
        return _read_plain(fd, name, out, max_bytes, plan)
    info = _parse_fd(fd, size, 2, name, head)
    if info is None or info["reason"] is not None:   # the Cython rule's verdict
        return None
    shape, dtype = _layout(info)
    geometry = _geometry(info, size, name, max_bytes)
    target = _target(out, shape, dtype, name, max_bytes)
    _read_pixels(fd, info, geometry, target, name, max_bytes)
    return target


def _target(out: np.ndarray | None, shape: tuple, dtype: np.dtype, name: str,
            max_bytes: Any) -> np.ndarray:
    """Where the pixels go: ``out`` if it matches and is contiguous, else a new array.

    A non-contiguous ``out`` gets a contiguous temporary that
    :func:`read_simple` copies into it.
    """
    if out is None:
        check_nbytes(shape, dtype, name, max_bytes)
        return np.empty(shape, dtype)
    if out.shape != shape:
        raise ShapeError(f"out has shape {out.shape}, but {name} holds {shape}")
    if out.dtype != dtype:
        raise DTypeError(f"out has dtype {out.dtype}, but {name} holds {dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out if out.flags.c_contiguous else np.empty(shape, dtype)


def _read_plain(fd: int, name: str, out: np.ndarray | None, max_bytes: Any,
                plan: tuple) -> np.ndarray:
    """The common case, planned by ``plan_simple``: one run of raw pixel bytes."""
    h, w, spp, sampleformat, bps, bigendian, offset = plan
    shape = (h, w) if spp == 1 else (h, w, spp)
    target = _target(out, shape, _NP_DTYPES[(sampleformat, bps)], name, max_bytes)
    flat = memoryview(target).cast("B")
    _read_into(fd, [flat], [offset], name)
    if bigendian != _BIG_NATIVE and bps > 8:
        _tp.byteswap(flat, bps // 8)
    return target


_BIG_NATIVE = _NATIVE == ">"


def _truncated(name: str, exc: _raw.Truncated) -> CorruptFileError:
    return _corrupt(name, f"the file ends at {exc.offset + exc.got} while reading "
                          f"{exc.wanted} bytes at offset {exc.offset}")


def _read_into(fd: int, views: list, offsets: list, name: str, workers: int = 1) -> None:
    """Fill each view from its offset (:func:`imgio.io.raw.pread_ranges`)."""
    try:
        if len(views) == 1 and workers == 1:
            _raw.pread_into(fd, views[0], offsets[0])
        else:
            _raw.pread_ranges(fd, views, offsets, workers=workers)
    except _raw.Truncated as exc:
        raise _truncated(name, exc) from None


def _workers() -> int:
    return os.cpu_count() or 1


def _geometry(info: dict, size: int, name: str, max_bytes: Any) -> dict:
    """Check every segment against the file before anything is allocated."""
    h, w = int(info["length"]), int(info["width"])
    spp = int(info["samplesperpixel"])
    npages = int(info["n_pages"])
    itemsize = int(info["bitspersample"]) // 8
    pixelbytes = spp * itemsize
    rowbytes = w * pixelbytes
    total = h * rowbytes            # one page
    offsets, counts = info["offsets"], info["bytecounts"]
    compressed = info["compression"] != 1
    tiled = info["tilewidth"] is not None
    kind = "tile" if tiled else "strip"
    if tiled:
        tw, tl = int(info["tilewidth"]), int(info["tilelength"])
        nseg = -(-h // tl) * -(-w // tw)
        segbytes = tl * tw * pixelbytes
    else:
        rps = info["rowsperstrip"]
        rps = h if rps is None or rps > h else int(rps)
        tw, tl = w, rps
        nseg = -(-h // rps)
        segbytes = rps * rowbytes
    if len(offsets) != npages * nseg or len(counts) != npages * nseg:
        pages = f" in {npages} pages" if npages > 1 else ""
        raise _corrupt(name, f"{len(offsets)} offsets and {len(counts)} byte counts for "
                             f"{npages * nseg} {kind}s{pages}")
    off_list = offsets.tolist()
    cnt_list = counts.tolist()
    header = int(info["header_size"])
    for i, (o, c) in enumerate(zip(off_list, cnt_list)):
        if o < header or o > size or c > size - o:
            seg = (f"{kind} {i % nseg} of page {i // nseg}" if npages > 1
                   else f"{kind} {i}")
            if o < header:
                raise _corrupt(name, f"{seg} starts at offset {o}, inside the header "
                                     f"({header} bytes)")
            raise _corrupt(name, f"{seg} ({c} bytes at offset {o}) runs past the end "
                                 f"of the file ({size} bytes)")
    if tiled and nseg * segbytes > _TILE_SLACK * total + _TILE_SLACK_BYTES:
        raise _corrupt(name, f"{nseg} tiles of {tl}x{tw} pixels ({nseg * segbytes} bytes) "
                             f"for a {h}x{w} image: the tiles expand far beyond the image")
    if not compressed:  # (volumes are compressed: one page here)
        for i, c in enumerate(cnt_list):
            need = segbytes if tiled else min(segbytes, total - i * segbytes)
            if c < need:
                raise _corrupt(name, f"{kind} {i} holds {c} bytes, expected {need}")
    elif npages * nseg * segbytes > _DEFLATE_RATIO * sum(cnt_list) + 65536 * npages:
        raise _corrupt(name, f"{sum(cnt_list)} compressed bytes cannot hold "
                             f"{npages} x {h}x{w}x{spp} samples of {itemsize} bytes")
    if tiled:  # the tile buffer is sized by the file: the guard first
        check_nbytes((npages * nseg, tl, tw, pixelbytes), np.uint8, name, max_bytes)
    return dict(h=h, w=w, spp=spp, itemsize=itemsize, pixelbytes=pixelbytes, total=total,
                tiled=tiled, compressed=compressed, nseg=nseg, segbytes=segbytes,
                tw=tw, tl=tl, off_list=off_list, cnt_list=cnt_list, npages=npages)


def _read_pixels(fd: int, info: dict, g: dict, arr: np.ndarray, name: str,
                 max_bytes: Any = None) -> None:
    h, w, itemsize = g["h"], g["w"], g["itemsize"]
    nseg, segbytes, total = g["nseg"], g["segbytes"], g["total"]
    tiled, compressed, npages = g["tiled"], g["compressed"], g["npages"]
    tw, tl, pixelbytes = g["tw"], g["tl"], g["pixelbytes"]
    off_list = g["off_list"]
    flat = memoryview(arr).cast("B") if arr.size else memoryview(bytearray(0))
    if compressed:
        tiles = bytearray(npages * nseg * segbytes) if tiled else None  # guarded in _geometry
        _Decoder(fd, info, g, flat if tiles is None else memoryview(tiles), name,
                 max_bytes).run()
        if tiled:
            tview = memoryview(tiles)
            pagetiles = nseg * segbytes
            for k in range(npages):
                _tp.untile(tview[k * pagetiles:(k + 1) * pagetiles],
                           flat[k * total:(k + 1) * total], h, w, tl, tw, pixelbytes)
        return
    swap = info["byteorder"] != _NATIVE and itemsize > 1
    if not tiled:
        if nseg == 1:
            # one strip (checked by _geometry to hold ``total`` bytes): one read
            _read_into(fd, [flat[:total]], [off_list[0]], name, _workers())
        else:
            runs = np.empty((nseg, 3), dtype=np.int64)
            nr = _tp.plan_runs(info["offsets"], segbytes, total, runs)
            rl = runs[:nr].tolist()
            _read_into(fd, [flat[oo:oo + ln] for _, oo, ln in rl], [fo for fo, _, _ in rl],
                       name, _workers())
        if swap:
            _tp.byteswap(flat, itemsize)
        return
    tiles = bytearray(nseg * segbytes)   # guarded in _geometry
    tview = memoryview(tiles)
    _read_into(fd, [tview[i * segbytes:(i + 1) * segbytes] for i in range(nseg)],
               off_list, name, _workers())
    if swap:
        _tp.byteswap(tview, itemsize)
    _tp.untile(tview, flat, h, w, tl, tw, pixelbytes)


#: compressed bytes below which decoding stays on the calling thread (a pool
#: costs more than it saves: see the TIFF plugin's ``_SMALL_FILE``)
_THREAD_MIN = 512 << 10
#: compressed bytes per task: segments are read and decoded in runs of about this
_TASK_BYTES = 1 << 20


class _Decoder:
    """Read and inflate every compressed segment into its place, on all cores.

    Each task reads a run of neighbouring segments with one positioned read
    (:func:`imgio.io.raw.pread_into`) into its thread's buffer and inflates
    each straight into the output (strips) or the tile buffer (tiles) with
    libdeflate (imagecodecs' ``deflate_decode``, GIL released), then byte-swaps
    and undoes the predictor of that segment.  The first failing segment (in
    file order) is the error raised.
    """

    def __init__(self, fd: int, info: dict, g: dict, dest: memoryview, name: str,
                 max_bytes: Any) -> None:
        self.fd, self.dest, self.name = fd, dest, name
        self.offs, self.cnts = g["off_list"], g["cnt_list"]
        self.nseg, self.segbytes, self.total = g["nseg"], g["segbytes"], g["total"]
        self.tiled, self.tw, self.spp = g["tiled"], g["tw"], g["spp"]
        self.rowbytes = g["tw"] * g["pixelbytes"]
        self.itemsize = g["itemsize"]
        self.swap = info["byteorder"] != _NATIVE and self.itemsize > 1
        self.predictor = info["predictor"]
        self.native = _NP_DTYPES[(info["sampleformat"], info["bitspersample"])]
        self.tasks = self._tasks()
        span = max(hi - lo for _, _, lo, hi in self.tasks)
        check_nbytes((span,), np.uint8, name, max_bytes)   # each thread's read buffer
        self.errors: list[tuple[int, BaseException]] = []

    def _tasks(self) -> list[tuple[int, int, int, int]]:
        """Runs ``(first, stop, lo, hi)`` of segments read as one span ``[lo, hi)``."""
        tasks = []
        offs, cnts = self.offs, self.cnts
        i, n = 0, len(offs)
        while i < n:
            lo, hi, size, j = offs[i], offs[i] + cnts[i], cnts[i], i + 1
            while j < n and size < _TASK_BYTES:
                o, c = offs[j], cnts[j]
                nlo, nhi = min(lo, o), max(hi, o + c)
                if nhi - nlo > 2 * (size + c) + 4096:
                    break   # not packed together: a task of its own
                lo, hi, size, j = nlo, nhi, size + c, j + 1
            tasks.append((i, j, lo, hi))
            i = j
        return tasks

    def run(self) -> None:
        stored = sum(self.cnts)
        workers = min(_workers(), len(self.tasks)) if stored >= _THREAD_MIN else 1
        todo = iter(range(len(self.tasks)))   # shared: each worker takes the next task
        helpers = [threading.Thread(target=self._work, args=(todo,), daemon=True)
                   for _ in range(workers - 1)]
        for t in helpers:
            t.start()
        try:
            self._work(todo)                  # the calling thread is a worker too
        finally:
            for t in helpers:
                t.join()
        if self.errors:
            raise min(self.errors, key=lambda e: e[0])[1]

    def _work(self, todo) -> None:
        buf = bytearray(0)
        scratch = bytearray(self.segbytes) if self.predictor == 3 else None
        for t in todo:
            if self.errors:
                return
            first, stop, lo, hi = self.tasks[t]
            if len(buf) < hi - lo:
                buf = bytearray(hi - lo)
            view = memoryview(buf)
            try:
                _raw.pread_into(self.fd, view[:hi - lo], lo)
                for i in range(first, stop):
                    o = self.offs[i] - lo
                    self._segment(i, view[o:o + self.cnts[i]], scratch)
            except _raw.Truncated as exc:
                self.errors.append((first, _truncated(self.name, exc)))
            except BaseException as exc:   # noqa: BLE001 - re-raised by run()
                self.errors.append((first, exc))

    def _segment(self, i: int, data: memoryview, scratch: bytearray | None) -> None:
        segbytes = self.segbytes
        if self.tiled:
            start, need = i * segbytes, segbytes
        else:
            page, j = divmod(i, self.nseg)
            need = min(segbytes, self.total - j * segbytes)
            start = page * self.total + j * segbytes
        dst = self.dest[start:start + need]
        rows = need // self.rowbytes
        if scratch is not None:
            tmp = memoryview(scratch)[:need]
            _decode_into(data, tmp, self.name, i)
            _unpredict_float(tmp, dst, rows, self.tw, self.spp, self.native)
            return
        _decode_into(data, dst, self.name, i)
        if self.swap:
            _tp.byteswap(dst, self.itemsize)
        if self.predictor == 2:
            v = np.frombuffer(dst, dtype=self.native).reshape(rows, self.tw, self.spp)
            _delta_decode(v, axis=-2, out=v)


def _unpredict_float(src: memoryview, dst: memoryview, rows: int, tw: int, spp: int,
                     native: np.dtype) -> None:
    """Undo TIFF predictor 3 from ``src`` into ``dst`` (native values; the encoded
    byte planes do not depend on the file's byte order)."""
    if not rows:
        return
    shape = (rows, tw, spp)
    s = np.frombuffer(src, dtype=native, count=rows * tw * spp).reshape(shape)
    d = np.frombuffer(dst, dtype=native, count=rows * tw * spp).reshape(shape)
    _floatpred_decode(s, axis=-2, out=d)


def _decode_into(data: memoryview, dst: memoryview, name: str, index: int) -> None:
    """Inflate the zlib stream ``data`` into exactly ``len(dst)`` bytes of ``dst``.

    libdeflate checks the whole stream: it must end, with a good adler32
    checksum, exactly when ``dst`` is full.  A stream holding more (even a
    last strip stored at full strip size) is damage, as for tifffile.
    """
    n = len(dst)
    try:
        got = len(_deflate_decode(data, out=dst))
    except _DeflateError as exc:
        raise _corrupt(name, f"segment {index} does not inflate to {n} bytes: {exc}") from None
    if got != n:
        raise _corrupt(name, f"segment {index} inflates to {got} bytes, expected {n}")
