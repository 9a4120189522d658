"""Plain TIFF volumes written straight from the array buffer (issue 21).

:class:`TiffEncoder` stands in for ``tifffile.TiffWriter`` in the TIFF
plugin's writer for the "shaped" flavour (tifffile's JSON description, no
ImageJ/OME): it takes the same ``write(image, **options)`` calls and writes
the same tags tifffile writes (shape description, photometric, sample format,
resolution), in a simpler layout::

    header | series data, pixel bytes in array order | every IFD, chained

* uncompressed data goes to the file from the array's own buffer, no copy (one
  ``ndarray.tofile`` call from 4 MiB on, measurably faster here than
  ``os.write`` of the same buffer; ``os.pwrite`` below); only a non-contiguous
  or byte-swapped array is converted, whole pages at a time;
* zlib (TIFF compression 8, the zlib-wrapped deflate stream) is encoded with
  libdeflate (``imagecodecs.deflate_encode``, which emits zlib format unless
  ``raw=True``) in strips of tifffile's default size and level (the same
  bytes tifffile writes: tifffile encodes with the same function), on all cores
  (the codec releases the GIL) in a pipeline without a barrier per page, each
  strip encoded straight out of the array;
* IFDs are written when the writer closes, so appended frames stream to the
  disk at the speed of a raw write and the series description is final.

Anything it does not cover (other codecs, predictors, tiles, extra tags, a
user description, ImageJ/OME flavours, bool/complex data, file objects without
a descriptor) is written by tifffile: before the first series the encoder hands
the whole file to a ``tifffile.TiffWriter``; after it, it finishes its own IFDs
and lets tifffile append to the valid file.  ``IMGIO_TIFF_ENCODER=0`` switches
the encoder off (everything through tifffile).
"""
from __future__ import annotations

import math
import os
import struct
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

__all__ = ["TiffEncoder", "open_encoder", "covered"]

#: from this size on, uncompressed data go through ``ndarray.tofile`` (below, ``os.pwrite``)
TOFILE_ABOVE = 1 << 22
#: bytes per uncompressed write call (and per converted block)
WRITE_BLOCK = 1 << 26
#: tifffile's default strip size for compressed data (``262144 // rowsize`` rows)
STRIP_BYTES = 262144
#: input bytes per encoding task (several strips: fewer futures, larger writes)
TASK_BYTES = 1 << 22
#: below this many input bytes zlib strips are encoded on the calling thread
THREADS_ABOVE = 1 << 21
#: the level tifffile's default encoder (``imagecodecs.deflate_encode(data)``) uses
DEFAULT_LEVEL = 6

_LITTLE = np.little_endian
_NONE = (None, 0, 1, "none", "None", "NONE")
#: what tifffile writes as compression 8 ("deflate" is tifffile's 32946, left to it)
_ZLIB = ("zlib", "ZLIB", "Zlib", "adobe_deflate", "ADOBE_DEFLATE", 8)
_PHOTOMETRIC = {"minisblack": 1, "rgb": 2, 1: 1, 2: 2}
_RESUNIT = {None: None, "none": 1, "inch": 2, "centimeter": 3, "cm": 3, 1: 1, 2: 2, 3: 3}
_SAMPLEFORMAT = {"u": 1, "i": 2, "f": 3}
#: write() keywords the encoder understands; any other sends the write to tifffile
_KEYS = frozenset(("photometric", "metadata", "resolution", "resolutionunit", "compression",
                   "compressionargs", "level", "maxworkers", "contiguous", "description",
                   "software"))

#: IFD templates by (BigTIFF?, layout): the IFDs of a write are patched copies
_TEMPLATES: dict = {}

# TIFF field types
_ASCII, _SHORT, _LONG, _RATIONAL, _LONG8 = 2, 3, 4, 5, 16
_TYPE_SIZE = {_ASCII: 1, _SHORT: 2, _LONG: 4, _RATIONAL: 8, _LONG8: 8}
_TYPE_CODE = {_SHORT: "H", _LONG: "I", _RATIONAL: "I", _LONG8: "Q"}


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _level(options: dict) -> int | None:
    """The zlib level of ``options`` (``None``: not one the encoder understands)."""
    compression = options.get("compression")
    level = options.get("level")
    if isinstance(compression, (tuple, list)):
        if len(compression) != 2:
            return None
        compression, level = compression
    args = options.get("compressionargs") or {}
    if set(args) - {"level"}:
        return None
    level = args.get("level", level)
    if level is None:
        return DEFAULT_LEVEL
    if not isinstance(level, (int, np.integer)) or isinstance(level, bool):
        return None
    level = int(level)
    return level if 1 <= level <= 9 else None


def _compression(options: dict) -> int | None:
    """1 (none), 8 (zlib) or ``None`` for a compression the encoder leaves to tifffile."""
    compression = options.get("compression")
    if isinstance(compression, (tuple, list)):
        compression = compression[0] if compression else None
    if compression in _NONE and not isinstance(compression, bool):
        if options.get("compressionargs") or options.get("level") is not None:
            return None
        return 1
    if compression in _ZLIB and not isinstance(compression, bool):
        return 8 if _level(options) is not None else None
    return None


def covered(image: np.ndarray, options: dict) -> bool:
    """Can :class:`TiffEncoder` write ``image`` with these ``write()`` options?"""
    if set(options) - _KEYS:
        return False
    if options.get("description") is not None and not options.get("contiguous"):
        return False  # tifffile stores a user description beside the shaped one
    if options.get("software") not in (None, False) and not isinstance(options["software"], str):
        return False
    if _compression(options) is None:
        return False
    dt = image.dtype
    if dt.kind not in "uif" or dt.itemsize not in (1, 2, 4, 8) or image.size == 0:
        return False
    if image.ndim < 2:
        return False
    photometric = options.get("photometric")
    photometric = photometric.lower() if isinstance(photometric, str) else photometric
    if photometric not in _PHOTOMETRIC:
        return False
    rgb = image.ndim >= 3 and image.shape[-1] in (3, 4)
    if image.ndim >= 3 and image.shape[-1] == 1:
        return False  # tifffile stores a last axis of 1 as one sample per pixel
    if (_PHOTOMETRIC[photometric] == 2) != rgb:
        return False  # tifffile's own reading of an explicit photometric
    if rgb and image.ndim < 3:
        return False
    unit = options.get("resolutionunit")
    unit = unit.lower() if isinstance(unit, str) else unit
    if unit not in _RESUNIT:
        return False
    res = options.get("resolution")
    if res is not None:
        try:
            if len(res) != 2 or not all(isinstance(float(v), float) for v in res):
                return False
        except (TypeError, ValueError):
            return False
    meta = options.get("metadata", {})
    return meta is None or isinstance(meta, dict)


def _rational(value) -> tuple[int, int]:
    import tifffile
    return tifffile.tifffile.rational(value)


def _pwrite_all(fd: int, data, offset: int) -> int:
    """Write all of ``data`` (bytes or a byte memoryview) at ``offset``; the next offset."""
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    n = len(view)
    done = 0
    while done < n:
        done += os.pwrite(fd, view[done:done + WRITE_BLOCK], offset + done)
    return offset + n


class _Page:
    """One IFD to be written at close: what all pages of its write share, and its strips."""

    __slots__ = ("common", "offsets", "counts", "description", "software")

    def __init__(self, common, offsets, counts, description, software) -> None:
        self.common, self.offsets, self.counts = common, offsets, counts
        self.description, self.software = description, software


class _Plan:
    """What a write() of this shape, dtype and options writes (cached per encoder)."""

    __slots__ = ("compression", "pages", "length", "rowbytes", "rps", "page_ndim", "common",
                 "series_key", "description", "software", "level", "workers", "contiguous")


class _Series:
    """The series a contiguous ``write()`` may extend."""

    __slots__ = ("key", "first", "frames", "shape")

    def __init__(self, key, first, shape) -> None:
        self.key, self.first, self.frames, self.shape = key, first, 1, shape


class TiffEncoder:
    """A ``tifffile.TiffWriter`` stand-in for plain volumes; see the module docstring.

    ``fh`` is a binary file object with a descriptor, positioned where the TIFF
    starts (its start is offset 0 of the TIFF); ``fallback(append=False)`` returns the
    ``tifffile.TiffWriter`` for ``fh`` that writes what the encoder does not cover.
    """

    def __init__(self, fh, *, bigtiff: bool, fallback: Callable[..., Any],
                 maxworkers: int | None = None) -> None:
        fh.flush()
        self._fh = fh
        self._fd = fh.fileno()
        self._start = fh.tell()
        self._big = bool(bigtiff)
        self._fallback = fallback
        self._tiff = None  # the tifffile.TiffWriter once the encoder has handed over
        self._pages: list[_Page] = []
        self._series: _Series | None = None
        self._closed = False
        self._workers = maxworkers
        self._plans: dict = {}
        self._head = 16 if self._big else 8
        self._pos = self._start + self._head  # where the next data go

    # -- the TiffWriter surface the plugin uses --------------------------------------------
    def write(self, image, **options) -> None:
        if self._tiff is not None:
            self._tiff.write(image, **options)
            return
        image = np.asarray(image)
        try:  # the frames of a stream share their plan: decided once
            key = (image.shape, image.dtype, tuple(options.items()))
            plan = self._plans.get(key)
        except TypeError:  # an unhashable option value (a metadata dict)
            key = plan = None
        if plan is None:
            if not covered(image, options):
                self._hand_over()
                self._tiff.write(image, **options)
                return
            plan = self._plan(image, options)
            if key is not None:
                self._plans[key] = plan
        if not self._big and self._pos + image.nbytes + 2 ** 25 >= 2 ** 32:
            self._hand_over()  # classic TIFF offsets end at 4 GiB: tifffile says so
            self._tiff.write(image, **options)
            return
        self._write(image, plan)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._tiff is not None:
            self._tiff.close()
            return
        self._finish()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- handing over to tifffile -----------------------------------------------------------
    def _hand_over(self) -> None:
        if self._pages:
            self._finish()  # a valid TIFF that tifffile appends to
            self._fh.seek(self._start)
            self._tiff = self._fallback(append=True)
        else:
            self._fh.seek(self._start)
            self._tiff = self._fallback()

    # -- writing ----------------------------------------------------------------------------
    def _layout(self, image: np.ndarray, options: dict):
        photometric = options.get("photometric")
        photometric = _PHOTOMETRIC[photometric.lower() if isinstance(photometric, str)
                                   else photometric]
        rgb = photometric == 2
        samples = image.shape[-1] if rgb else 1
        length, width = image.shape[-3:-1] if rgb else image.shape[-2:]
        pages = math.prod(image.shape[:-3] if rgb else image.shape[:-2])
        return photometric, samples, length, width, pages

    def _plan(self, image: np.ndarray, options: dict) -> _Plan:
        plan = _Plan()
        compression = plan.compression = _compression(options)
        photometric, samples, length, width, pages = self._layout(image, options)
        plan.page_ndim = 3 if photometric == 2 else 2
        dtype = image.dtype
        plan.pages, plan.length = pages, length
        rowbytes = plan.rowbytes = width * samples * dtype.itemsize
        res = options.get("resolution")
        unit = options.get("resolutionunit")
        unit = _RESUNIT[unit.lower() if isinstance(unit, str) else unit]
        if unit is None:
            unit = 1 if res is None else 2
        resolution = ((1, 1), (1, 1)) if res is None else (_rational(res[0]), _rational(res[1]))
        rps = plan.rps = length if compression == 1 else min(length,
                                                            max(1, STRIP_BYTES // rowbytes))
        plan.series_key = (tuple(image.shape), dtype.str, photometric, compression, resolution,
                           unit)
        plan.contiguous = bool(options.get("contiguous")) and compression == 1
        plan.description = self._description(image, options)
        software = options.get("software")
        plan.software = "imgio" if software is None else software or None
        plan.common = (width, length, samples, dtype.itemsize * 8, _SAMPLEFORMAT[dtype.kind],
                       photometric, compression, rps, resolution, unit)
        if compression != 1:
            plan.level = _level(options)
            plan.workers = int(options.get("maxworkers") or self._workers or _cpu_count())
        return plan

    def _write(self, image: np.ndarray, plan: _Plan) -> None:
        self._page_ndim = plan.page_ndim
        pages = plan.pages
        series = self._series
        extend = plan.contiguous and series is not None and series.key == plan.series_key
        if plan.compression == 1:
            offset = self._pos - self._start
            self._pos = self._write_raw(image)
            count = plan.length * plan.rowbytes
            page_strips = [([offset + i * count], [count]) for i in range(pages)]
        else:
            page_strips = self._write_zlib(image, pages, plan.length, plan.rps, plan.rowbytes,
                                           plan.level, plan.workers)
        append = self._pages.append
        common = plan.common
        for i, (offs, cnts) in enumerate(page_strips):
            if i == 0 and not extend:
                append(_Page(common, offs, cnts, plan.description, plan.software))
            else:
                append(_Page(common, offs, cnts, None, None))
        if extend:
            series.frames += 1
        elif plan.contiguous:
            self._series = _Series(plan.series_key, len(self._pages) - pages, image.shape)
        else:
            self._series = None

    @staticmethod
    def _description(image: np.ndarray, options: dict) -> str | None:
        if options.get("description") is not None:
            return str(options["description"])
        meta = options.get("metadata", {})
        if meta is None:
            return None
        import tifffile
        return tifffile.tifffile.shaped_description(image.shape, **meta)

    def _native_blocks(self, image: np.ndarray, page_ndim: int):
        """Byte views of ``image`` in C order, whole pages each: its own buffer when it is
        C-contiguous little-endian, else new blocks of about ``WRITE_BLOCK`` bytes filled a
        page at a time (never a copy of the whole array)."""
        dt = image.dtype
        native = dt.newbyteorder("<") if dt.itemsize > 1 else dt
        if image.flags.c_contiguous and dt == native:
            yield memoryview(image.reshape(-1)).cast("B")
            return
        page_shape = image.shape[image.ndim - page_ndim:]
        lead = image.shape[:image.ndim - page_ndim]
        pages = math.prod(lead)
        per = max(1, WRITE_BLOCK // max(1, math.prod(page_shape) * dt.itemsize))
        index = np.ndindex(*lead) if lead else iter([()])
        for start in range(0, pages, per):
            n = min(per, pages - start)
            block = np.empty((n,) + page_shape, native)  # a new one: views of it may be in use
            for j in range(n):
                np.copyto(block[j], image[next(index)])
            yield memoryview(block.reshape(-1)).cast("B")

    def _write_raw(self, image: np.ndarray) -> int:
        pos = self._pos
        dt = image.dtype
        if image.nbytes >= TOFILE_ABOVE and image.flags.c_contiguous and (
                dt.itemsize == 1 or dt.byteorder in "<|" or (dt.byteorder == "=" and _LITTLE)):
            # numpy's tofile: one write(2) from the array's buffer, and measurably faster
            # than os.write of the same buffer (docs/limits.md, "What an atomic write costs")
            self._fh.seek(pos)
            image.tofile(self._fh)
            self._fh.flush()
            return pos + image.nbytes
        for view in self._native_blocks(image, self._page_ndim):
            pos = _pwrite_all(self._fd, view, pos)
        return pos

    def _write_zlib(self, image, pages, length, rps, rowbytes, level, workers):
        """Encode and write every strip; each page's (offsets, bytecounts)."""
        import imagecodecs
        encode = imagecodecs.deflate_encode  # zlib-wrapped (raw=False): TIFF compression 8
        pagebytes = length * rowbytes
        strips = [(s * rps * rowbytes, min(length, (s + 1) * rps) * rowbytes)
                  for s in range(-(-length // rps))]
        per_task = max(1, TASK_BYTES // max(1, rps * rowbytes))

        def tasks():
            """(views of one task's strips) in file order, from the array's own buffer."""
            group = []
            for view in self._native_blocks(image, self._page_ndim):
                assert len(view) % pagebytes == 0
                for p in range(len(view) // pagebytes):
                    base = p * pagebytes
                    for a, b in strips:
                        group.append(view[base + a:base + b])
                        if len(group) == per_task:
                            yield group
                            group = []
            if group:
                yield group

        def run(group):
            return [encode(v, level) for v in group]

        pos = self._pos
        offsets: list[int] = []
        counts: list[int] = []

        def put(encoded):
            nonlocal pos
            start = pos
            for data in encoded:
                offsets.append(pos - self._start)
                counts.append(len(data))
                pos += len(data)
            done = os.pwritev(self._fd, encoded, start) if len(encoded) <= 1024 else 0
            if done < pos - start:  # a short write: the rest one buffer at a time
                _pwrite_all(self._fd, memoryview(b"".join(encoded))[done:], start + done)

        if workers <= 1 or image.nbytes < THREADS_ABOVE:
            for group in tasks():
                put(run(group))
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="imgio-deflate") as pool:
                pending: deque = deque()
                for group in tasks():
                    pending.append(pool.submit(run, group))
                    if len(pending) >= 2 * workers:
                        put(pending.popleft().result())
                while pending:
                    put(pending.popleft().result())
        self._pos = pos
        n = len(strips)
        return [(offsets[i * n:(i + 1) * n], counts[i * n:(i + 1) * n]) for i in range(pages)]

    # -- IFDs -------------------------------------------------------------------------------
    def _finish(self) -> None:
        """Write every IFD after the data, chain them and point the header at the first."""
        big = self._big
        pos = self._pos
        pos += pos & 1  # IFDs start on a word boundary
        first = pos
        chunks = []
        pages = self._pages
        i = 0
        while i < len(pages):  # runs of pages sharing one IFD template, patched at once
            key = self._template_key(pages[i])
            j = i + 1
            while j < len(pages) and self._template_key(pages[j]) == key:
                j += 1
            chunk = self._ifd_run(pages[i:j], key, pos - self._start, j == len(pages))
            chunks.append(chunk)
            pos += len(chunk)
            i = j
        if chunks:
            _pwrite_all(self._fd, b"".join(chunks), first)
        if big:
            header = b"II+\x00\x08\x00\x00\x00" + struct.pack("<Q", first - self._start
                                                              if chunks else 0)
        else:
            header = b"II*\x00" + struct.pack("<I", first - self._start if chunks else 0)
        os.pwrite(self._fd, header, self._start)
        self._fh.seek(max(pos, self._pos))

    def _template_key(self, page: _Page) -> tuple:
        off_type = _LONG8 if self._big else _LONG
        cnt_type = off_type if max(page.counts) >= 2 ** 32 else _LONG
        return (page.common, page.description, page.software, len(page.offsets), off_type,
                cnt_type)

    def _ifd_run(self, run: list, key: tuple, at: int, last: bool) -> bytes:
        """The IFDs of ``run`` (pages of one template), chained, the first at offset ``at``."""
        template = _TEMPLATES.get((self._big, key))
        if template is None:
            template = self._ifd_template(run[0], key[-2], key[-1])
            if len(_TEMPLATES) > 256:
                _TEMPLATES.clear()
            _TEMPLATES[(self._big, key)] = template
        raw, fixups, (off_pos, off_dt), (cnt_pos, cnt_dt), next_pos, ptr_dt = template
        n, size = len(run), len(raw)
        buf = np.frombuffer(raw * n, np.uint8).reshape(n, size).copy()
        ats = at + size * np.arange(n, dtype=np.int64)

        def put(pos, values, dt):
            v = np.ascontiguousarray(np.asarray(values, np.int64).reshape(n, -1), dt)
            buf[:, pos:pos + v.shape[1] * dt.itemsize] = v.view(np.uint8)

        for pointer, rel in fixups:
            put(pointer, ats + rel, ptr_dt)
        put(off_pos, [p.offsets for p in run], off_dt)
        put(cnt_pos, [p.counts for p in run], cnt_dt)
        following = ats + size
        if last:
            following[-1] = 0
        put(next_pos, following, ptr_dt)
        return buf.tobytes()

    def _ifd_template(self, page: _Page, off_type: int, cnt_type: int):
        """An IFD for ``page`` at offset 0 with zero strip offsets/counts, and where to patch."""
        big = self._big
        n = len(page.offsets)
        (width, length, samples, bits, sampleformat, photometric, compression, rps,
         resolution, resolutionunit) = page.common
        tags: list[tuple[int, int, Any]] = [
            (256, _LONG, [width]),
            (257, _LONG, [length]),
            (258, _SHORT, [bits] * samples),
            (259, _SHORT, [compression]),
            (262, _SHORT, [photometric]),
        ]
        if page.description is not None:
            tags.append((270, _ASCII, page.description.encode("utf-8") + b"\x00"))
        tags += [(273, off_type, [0] * n),
                 (277, _SHORT, [samples]),
                 (278, _LONG, [rps]),
                 (279, cnt_type, [0] * n),
                 (282, _RATIONAL, list(resolution[0])),
                 (283, _RATIONAL, list(resolution[1]))]
        if samples > 1:  # tifffile writes PlanarConfiguration for samples only
            tags.append((284, _SHORT, [1]))
        tags.append((296, _SHORT, [resolutionunit]))
        if page.software:
            tags.append((305, _ASCII, page.software.encode("utf-8") + b"\x00"))
        if samples == 4:
            tags.append((338, _SHORT, [2]))  # ExtraSamples: unassociated alpha
        if sampleformat != 1:
            tags.append((339, _SHORT, [sampleformat] * samples))
        tags.sort(key=lambda t: t[0])
        if big:
            entry, head, inline, nfmt, cfmt, ofmt = 20, 8, 8, "<Q", "<HHQ", "<Q"
        else:
            entry, head, inline, nfmt, cfmt, ofmt = 12, 2, 4, "<H", "<HHI", "<I"
        size = head + entry * len(tags) + (8 if big else 4)
        extra = bytearray()
        out = bytearray(struct.pack(nfmt, len(tags)))
        fixups = []
        slots = {}
        for code, typ, values in tags:
            if typ == _ASCII:
                raw, count = bytes(values), len(values)
            else:
                count = len(values) // 2 if typ == _RATIONAL else len(values)
                raw = struct.pack(f"<{len(values)}{_TYPE_CODE[typ]}", *values)
            out += struct.pack(cfmt, code, typ, count)
            if len(raw) <= inline:
                slots[code] = len(out)
                out += raw + b"\x00" * (inline - len(raw))
            else:
                fixups.append((len(out), size + len(extra)))
                slots[code] = size + len(extra)
                out += struct.pack(ofmt, 0)
                extra += raw
                extra += b"\x00" * (len(extra) & 1)
        next_pos = len(out)
        out += struct.pack(ofmt, 0)
        assert len(out) == size
        dtype = {_LONG: np.dtype("<u4"), _LONG8: np.dtype("<u8")}
        return (bytes(out + extra), fixups, (slots[273], dtype[off_type]),
                (slots[279], dtype[cnt_type]), next_pos, dtype[_LONG8 if big else _LONG])


def open_encoder(fh, flavour: str, writer_kwargs: dict,
                 fallback: Callable[..., Any]) -> TiffEncoder | None:
    """A :class:`TiffEncoder` for this writer, or ``None`` when tifffile must write it all.

    ``writer_kwargs`` are ``tifffile.TiffWriter``'s (``bigtiff`` is the only one the
    encoder takes); the file needs a descriptor (not ``BytesIO``, not a socket).
    """
    if flavour != "shaped" or set(writer_kwargs) - {"bigtiff"}:
        return None
    if os.environ.get("IMGIO_TIFF_ENCODER", "1").strip().lower() in ("0", "false", "no"):
        return None
    if not (hasattr(os, "pwrite") and hasattr(os, "pwritev")):
        return None  # positioned writes are POSIX (not Windows)
    try:
        fd = fh.fileno()
        if not _is_regular(fd):
            return None
        import fcntl
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:
            return None  # Linux's pwrite appends on O_APPEND descriptors, whatever the offset
        fh.tell()
    except (AttributeError, ImportError, OSError, ValueError):
        return None
    return TiffEncoder(fh, bigtiff=bool(writer_kwargs.get("bigtiff")), fallback=fallback)


def _is_regular(fd: int) -> bool:
    import stat
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False
