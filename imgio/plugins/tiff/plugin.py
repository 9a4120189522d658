"""TIFF through tifffile: one *series* is one ndimage.

tifffile groups a file's pages into series (an ImageJ hyperstack, an OME
image, a plain multi-page stack are each one series), so the shape of an
ndimage is what tifffile's series says: never a flattened or first-page shape.

Physical metadata
-----------------
``properties()`` reports ``axes`` (tifffile's letters, e.g. ``"TZCYX"``),
``spacing`` (the physical size of one step along each axis, ``None`` where
unknown) and ``units`` (``"um"``, ``"nm"``, ``"s"`` ...; ``None`` where
unknown).  Sources, first match wins: OME ``PhysicalSizeX/Y/Z`` and
``TimeIncrement``; ImageJ ``spacing``/``finterval`` plus the resolution tags in
the ImageJ ``unit``; the JSON description imgio writes for plain stacks; LSM
voxel sizes; MetaMorph calibration; the resolution tags with their unit.

Keywords
--------
read(index=None, page=None, out=None, mmap=False, fast=True, maxworkers=None, **kw)
    ``index`` selects the series (``...`` stacks all series, which must have
    equal shapes); ``page=k`` reads one page: of series ``index`` when
    ``index`` is an int, of the whole file otherwise.  ``mmap=True`` returns a
    read-only memory map of uncompressed contiguous data (opens instantly).
    ``maxworkers`` threads decode compressed pages or read uncompressed data
    (default: every core).  ``fast=False`` bypasses :mod:`imgio.plugins.tiff.fastpath`.
    Other keywords go to ``TiffFile.asarray``.
write(...), append(...)
    See :mod:`imgio.plugins.tiff.writer`.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import threading
import warnings
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import numpy as np
import tifffile

from ... import _kernels
from ...core.plugin import ImageProperties, PluginV3, counting
from ..physical import METERS, normalize_unit, positive
from . import sniff as _tiff
from .writer import WRITES_PHYSICAL, WriterMixin
from ...errors import (CorruptFileError, DTypeError, FormatError, ImageTooLargeError,
                      ImgioError, InitializationError, PartialReadWarning, ShapeError,
                      selection_error, unexpected_keyword)

__all__ = ["TifffilePlugin", "WRITES_PHYSICAL", "MAX_BYTES", "normalize_unit"]

#: largest decoded size the plugin itself lets a read allocate, in bytes
#: (``None``: the machine's RAM).  :func:`imgio.v3.imread` applies the
#: configurable limit of :mod:`imgio.core.limits` first.  Reads into ``out=``
#: or with ``mmap=True`` are not limited.
MAX_BYTES: int | None = None

#: exceptions tifffile raises for damaged files
_DAMAGE = (tifffile.TiffFileError, ValueError, EOFError, OSError, KeyError, IndexError,
           RuntimeError,  # imagecodecs' decode errors (DeflateError ...)
           __import__("struct").error)

#: what tifffile's parsing code also raises on damaged headers (divisions by a
#: zero tag, ``None`` arithmetic on a missing tag, its asserts); damage only when
#: raised inside tifffile or imagecodecs, never when raised by imgio's own code
_DAMAGE_IN_BACKEND = _DAMAGE + (TypeError, ZeroDivisionError, AssertionError, OverflowError,
                                AttributeError, UnicodeDecodeError)

#: folders of the backends whose exceptions are file damage
_BACKEND_DIRS = tuple(os.path.dirname(m.__file__) + os.sep for m in (tifffile,))


def _backend_dirs() -> tuple[str, ...]:
    try:
        import imagecodecs
        return _BACKEND_DIRS + (os.path.dirname(imagecodecs.__file__) + os.sep,)
    except ImportError:  # pragma: no cover - imagecodecs is a dependency
        return _BACKEND_DIRS


def _is_damage(exc: BaseException) -> bool:
    """Whether ``exc`` is tifffile's (or a codec's) answer to a damaged file.

    The types tifffile raises for damage (``_DAMAGE``: its TiffFileError,
    ValueError, OSError, KeyError ...) are damage wherever they come from; the
    types that mean a programming error (TypeError, AttributeError,
    ZeroDivisionError, AssertionError ...) count only if the innermost frame of
    the traceback is in tifffile or imagecodecs (whose parsers raise them on
    damaged headers), so a bug in imgio propagates unchanged; NameError and
    the like never count.
    """
    if isinstance(exc, ImgioError) or not isinstance(exc, _DAMAGE_IN_BACKEND):
        return False
    if isinstance(exc, _DAMAGE):
        return True  # what tifffile raises for damage, wherever the damaged value ended up
    if type(exc).__module__.startswith("imagecodecs"):
        return True  # DeflateError ... raised from compiled code
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return False
    return last.tb_frame.f_code.co_filename.startswith(_backend_dirs())


#: tifffile log messages (level WARNING) that mean the file holds less than it
#: declares; every message at level ERROR counts as damage too
_DAMAGE_WARNINGS = re.compile(
    r"index out of range|failed to read|is missing|incompletely written|"
    r"invalid offset to first page|incorrect Strip|contains no pages|corrupted")


class _DamageLog(logging.Handler):
    """Collects tifffile's damage messages logged by the current thread.

    tifffile often reads a damaged file partially and only logs what it
    skipped (a page chain that ends at an offset past the end of the file, an
    ImageJ or shaped description declaring more pages than found): it returns
    one page of an eight-page stack.  imgio turns such a log into
    :class:`~imgio.errors.CorruptFileError` (or, with ``allow_partial=True``, a
    warning).
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        try:
            msg = record.getMessage()
        except Exception:  # pragma: no cover - a malformed record
            return
        if record.levelno >= logging.ERROR or _DAMAGE_WARNINGS.search(msg):
            self.messages.append(msg)


class _watch:
    """``with _watch() as log:`` -- tifffile's damage messages inside the block."""

    def __enter__(self) -> _DamageLog:
        self.log = _DamageLog()
        logging.getLogger("tifffile").addHandler(self.log)
        return self.log

    def __exit__(self, *exc) -> None:
        logging.getLogger("tifffile").removeHandler(self.log)

#: imageio's RuntimeWarning for a resolution tag with a 0 denominator (immeta and improps)
_ZERO_DENOMINATOR = ("Ignoring resolution metadata because at least one direction has a 0 "
                     "denominator.")

_NATIVE = "<" if np.little_endian else ">"

#: read keywords passed on to tifffile's ``asarray`` (anything else is refused)
_ASARRAY_KEYS = frozenset({"level", "squeeze", "buffersize"})


_SMALL_FILE = 512 << 10  # below this, decoding threads cost more than they save


@functools.lru_cache(maxsize=1)
def _cpu_count() -> int:
    return os.cpu_count() or 1


# -- the seam for the fast Cython parser ------------------------------------------------
def _try_fast(path, out=None, max_bytes=None, fd=None, head=None, size=None):
    """Read ``path`` with :func:`imgio.plugins.tiff.fastpath.read_simple`, or ``None`` if it declines.

    The fast parser decides from the parsed tags; a file it recognises as
    damaged raises :class:`~imgio.errors.CorruptFileError` (tifffile would
    sometimes read such a file partially, with only a log message).
    """
    from . import fastpath as _fasttiff
    return _fasttiff.read_simple(os.fspath(path), out=out, max_bytes=max_bytes, fd=fd,
                                 head=head, size=size)


# -- units and physical sizes -------------------------------------------------------------
# the unit vocabulary is shared by every plugin (imgio.plugins.physical)



_positive = positive  # one rule for "a usable physical size", in physical.py


def _rational(value: Any) -> float | None:
    """A resolution tag value ``(num, den)`` as ``num/den`` (pixels per unit)."""
    try:
        if isinstance(value, (tuple, list)):
            return _positive(value[0] / value[1])
        return _positive(value)
    except (ZeroDivisionError, TypeError, IndexError):
        return None


def _resolution_yx(page) -> tuple[float | None, float | None]:
    """(pixel height, pixel width) in resolution-tag units (``1 / resolution``)."""
    tags = page.tags
    out = []
    for name in ("YResolution", "XResolution"):
        tag = tags.get(name)
        res = _rational(tag.value) if tag is not None else None
        # rationals are approximations: 10 significant digits undo 1/0.325 -> 0.32499999...
        out.append(float(f"{1.0 / res:.10g}") if res else None)
    return out[0], out[1]


def _resolution_spacing(page) -> tuple[tuple | None, tuple | None]:
    """(spacing, units) of the Y and X axes from a page's resolution tags."""
    # Only a metric unit makes the tags a pixel size: inches (the default, and the
    # 72/96 dpi screens, scanners and MetaMorph write) and RESUNIT.NONE are
    # display or print settings; the raw tags stay in the metadata.
    unit_tag = page.tags.get("ResolutionUnit")
    try:
        unit = int(unit_tag.value) if unit_tag is not None else 2
    except (TypeError, ValueError):  # a damaged tag: no physical size
        return None, None
    if unit != 3:
        return None, None
    sy, sx = _resolution_yx(page)
    if sy is None or sx is None:
        return None, None
    return (sy, sx), ("cm", "cm")


def _meters_to(value: float, unit: str) -> float:
    """A length in meters expressed in ``unit``, rounded to 10 significant digits."""
    return float(f"{value / METERS[unit]:.10g}")


def _sem_unit(meters: float) -> str:
    """The unit an electron microscope shows a pixel size in: nm below 1 um, else um."""
    return "nm" if meters < 1e-6 else "um"


def _ome_images(xml: str) -> list[ET.Element]:
    """The ``Image`` elements of an OME-XML document (namespace-agnostic)."""
    root = ET.fromstring(xml)
    return [el for el in root if el.tag.rsplit("}", 1)[-1] == "Image"]


def _ome_physical(image: ET.Element) -> dict[str, tuple[float, str]]:
    """Axis letter -> (spacing, unit) from an OME ``Image``'s ``Pixels``."""
    pixels = next((el for el in image if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return {}
    found = {}
    for ax in "XYZ":
        v = _positive(pixels.get(f"PhysicalSize{ax}"))
        if v is not None:
            found[ax] = (v, normalize_unit(pixels.get(f"PhysicalSize{ax}Unit", "µm")))
    v = _positive(pixels.get("TimeIncrement"))
    if v is not None:
        found["T"] = (v, normalize_unit(pixels.get("TimeIncrementUnit", "s")))
    return found


def _per_axis(axes: str, found: dict[str, tuple[float, str | None]]):
    """Spacing and units tuples along ``axes`` (``None`` everywhere -> ``(None, None)``)."""
    if not found or not axes:
        return None, None
    spacing = tuple(found.get(a, (None, None))[0] for a in axes)
    units = tuple(found.get(a, (None, None))[1] for a in axes)
    if all(s is None for s in spacing):
        return None, None
    return spacing, units


# -- reading uncompressed contiguous data with several threads --------------------------------
def _pread_range(fd: int, offset: int, buf: memoryview) -> None:
    pos, end, chunk = 0, len(buf), 1 << 24
    while pos < end:
        got = os.preadv(fd, [buf[pos:pos + chunk]], offset + pos)
        if got <= 0:
            raise EOFError(f"the file ends {end - pos} bytes before the image data do")
        pos += got


def _pread_into(path: str, offset: int, out: np.ndarray, workers: int) -> None:
    """Fill the C-contiguous ``out`` with the file's bytes from ``offset`` on."""
    buf = memoryview(out.reshape(-1).view(np.uint8))
    n = len(buf)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        workers = max(1, min(workers, n // (8 << 20)))
        if workers == 1:
            _pread_range(fd, offset, buf)
            return
        step = -(-n // workers)
        step += -step % 4096
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(_pread_range, fd, offset + a, buf[a:a + step])
                       for a in range(0, n, step)]
            for f in futures:
                f.result()
    finally:
        os.close(fd)


def _memory_limit(override=None) -> float:
    """Largest eager read in bytes, a last-resort guard behind :mod:`imgio.core.limits`.

    ``override`` (a read's ``max_bytes=``) goes through ``limits.max_bytes``;
    otherwise ``MAX_BYTES`` here, else :func:`imgio.core.limits.max_bytes`
    (``IMGIO_MAX_BYTES``, else a share of the available memory), so v2 reads,
    ``imiter`` and readers are guarded as :func:`imgio.v3.imread` is.
    """
    if override is not None:
        try:
            from ...core import limits
            return limits.max_bytes(override)
        except ImportError:  # pragma: no cover - older trees without the limits module
            return float(override) if override else float("inf")
    if MAX_BYTES is not None:
        return float(MAX_BYTES)
    from ...core import limits
    return limits.max_bytes(None)


class TifffilePlugin(WriterMixin, PluginV3):
    """TIFF, BigTIFF, ImageJ hyperstacks, OME-TIFF, STK and LSM via tifffile."""

    name = "tifffile"
    description = "TIFF, BigTIFF, ImageJ, OME-TIFF, STK and LSM via tifffile"
    extensions = (".tif", ".tiff", ".stk", ".lsm", ".btf", ".tf8", ".tf2")
    modes = "iIvV"

    def __init__(self, request, **kwargs) -> None:
        super().__init__(request)
        self._init_writer(kwargs)
        self._tif_obj = None
        self._series_obj = None
        self._deferred_limit: tuple | None = None
        self._set_partial(kwargs)
        self._open_kwargs = kwargs
        if request.io_mode == "r":
            head = request.firstbytes
            if not _tiff(head):
                raise InitializationError(f"not a TIFF file (first bytes {head[:4]!r})")
            if request.kind != "path" or kwargs:
                self._open_tiff()
            # else: tifffile parses the file only when something needs it, so a
            # simple file read by the fast path never pays for tifffile's parsing

    def _open_tiff(self) -> None:
        request, kwargs = self._request, self._open_kwargs
        source = request.path if request.kind == "path" else request.get_file()
        tif = None
        try:
            with _watch() as log:
                tif = tifffile.TiffFile(source, **kwargs)
                series = tif.series
                # walks the whole page chain (one small read per page): a chain
                # that ends at an offset past the end of the file is logged here
                n_pages = len(tif.pages)
        except TypeError as exc:
            if tif is not None:
                tif.close()
            if "unexpected keyword" in str(exc) or not _is_damage(exc):
                raise
            raise CorruptFileError(
                f"{request.filename} looks like a TIFF file but cannot be parsed: {exc}"
            ) from exc
        except Exception as exc:  # tifffile asserts, TypeErrors ... on damaged headers
            if tif is not None:
                tif.close()
            if not _is_damage(exc):
                raise  # imgio's own bug: never relabelled as file damage
            raise CorruptFileError(
                f"{request.filename} looks like a TIFF file but cannot be parsed: {exc}"
            ) from exc
        if not series:
            tif.close()
            raise CorruptFileError(f"{request.filename} is a TIFF file with no images.")
        self._tif_obj, self._series_obj = tif, series
        try:
            self._check_ome_references(tif)
        except BaseException:
            self._tif_obj = self._series_obj = None
            tif.close()
            raise
        if log.messages:
            # kept: every later call on this reader raises too (or warns once)
            self._open_damage = (list(log.messages), n_pages)
            self._partial(log.messages, n_pages)

    # -- damage -------------------------------------------------------------------
    _allow_partial = False
    _open_damage: tuple | None = None

    _allow_external = False

    def _set_partial(self, kwargs: dict) -> None:
        """Take ``allow_partial`` and ``allow_external`` out of a call's keywords."""
        if "allow_partial" in kwargs:
            self._allow_partial = bool(kwargs.pop("allow_partial"))
        if "allow_external" in kwargs:
            self._allow_external = bool(kwargs.pop("allow_external"))

    def _check_ome_references(self, tif) -> None:
        """Refuse OME-XML ``FileName`` references that leave the file's folder.

        A multi-file OME-TIFF names its other files in ``<UUID FileName=...>``;
        tifffile reads planes from them.  Files in the same folder (or below)
        are part of the dataset; ``../elsewhere/x.ome.tif`` or an absolute path
        are not, unless ``allow_external=True``.
        """
        if self._allow_external or self._request.kind != "path" or not tif.is_ome:
            return
        try:
            xml = tif.pages.first.description or ""
        except Exception as exc:
            if not _is_damage(exc):
                raise  # imgio's own bug must not switch the reference check off
            return  # a damaged first page: tifffile cannot follow its references either
        if "FileName" not in xml:
            return
        root = os.path.realpath(os.path.dirname(self._request.path))
        for name in set(re.findall(r'FileName\s*=\s*"([^"]*)"', xml)):
            real = os.path.realpath(os.path.join(root, name))
            if os.path.commonpath([root, real]) != root:
                from ...errors import ExternalReferenceError
                raise ExternalReferenceError(
                    f"{self._request.filename}: its OME-XML refers to FileName={name!r}, "
                    f"outside the file's folder ({real}); imgio reads only what you named. "
                    "Pass allow_external=True to read it.")

    def _declared_pages(self) -> int | None:
        """How many pages the first page's description declares, if it says."""
        try:
            desc = self._tif_obj.pages.first.description or ""
        except Exception:  # a damaged first page: no declaration to compare with
            return None
        m = re.search(r"^images=(\d+)", desc, re.M) if desc.startswith("ImageJ=") else None
        if m:
            return int(m.group(1))
        if desc.startswith("{") and '"shape"' in desc:
            try:
                shape = json.loads(desc)["shape"]
                rgb = len(shape) >= 3 and shape[-1] in (3, 4)
                return int(math.prod(shape[:-3] if rgb else shape[:-2]))
            except (ValueError, KeyError, TypeError):
                return None
        if "<OME" in desc[:2000]:
            planes = [int(x) for x in re.findall(r'PlaneCount="(\d+)"', desc)]
            if planes:
                return sum(planes)
            counts = re.findall(r'SizeZ="(\d+)"[^>]*?SizeT="(\d+)"[^>]*?SizeC="(\d+)"', desc)
            if len(counts) == 1:
                return None  # channels may share a page (RGB): not a page count
        return None

    def _partial(self, messages: list[str], n_pages: int | None = None) -> None:
        """tifffile read the file partially: raise, or warn with ``allow_partial``."""
        if self._allow_partial:
            reported = self.__dict__.setdefault("_reported", set())
            messages = [m for m in messages if m not in reported]
            if not messages:
                return  # already warned about (nested watches see it twice)
            reported.update(messages)
        size = self._request.size()
        where = f"the {size:,}-byte file" if size is not None else "the file"
        declared = self._declared_pages()
        found = n_pages
        if found is None:
            try:
                found = len(self._tif_obj.pages)
            except Exception:
                found = None
        detail = "; ".join(dict.fromkeys(messages))[:500]
        m = re.search(r"invalid page offset (\d+)", detail)
        if m and found is not None:
            of = f" of {declared}" if declared else ""
            what = (f"page {found + 1}{of} starts past the end of {where} "
                    f"(at offset {int(m.group(1)):,})")
        elif declared and found is not None and declared > found:
            what = f"the description declares {declared} pages, {where} holds {found}"
        else:
            what = f"{where} holds less than its structure declares"
        text = (f"{self._request.filename} is truncated or damaged: {what}. tifffile: {detail}")
        if not self._allow_partial:
            raise CorruptFileError(
                text + " (pass allow_partial=True to read what is there)")
        warnings.warn(text + "; reading what is there (allow_partial=True).",
                      PartialReadWarning, stacklevel=4)

    def _check_tile_sizes(self, pages) -> None:
        """A tile or strip decodes into a buffer of its own declared size, before it is
        cropped to the image: refuse one that would expand far beyond its image (a
        16 x 16 image with one 32768 x 32768 tile inflates 1 GiB) or past the limit."""
        seen = set()
        limit = _memory_limit(getattr(self, "_max_bytes", None))
        for page in pages:
            key = getattr(page, "keyframe", None) or page
            if id(key) in seen:
                continue
            seen.add(id(key))
            try:
                if key.is_tiled:
                    segment = (key.tiledepth * key.tilelength * key.tilewidth
                               * key.samplesperpixel)
                else:
                    segment = key.rowsperstrip * key.imagewidth * key.samplesperpixel
                segment *= max(1, key.bitspersample // 8)
                image = math.prod(key.shape) * key.dtype.itemsize
            except (AttributeError, TypeError, ValueError):
                continue
            if segment > max(16 * image, 64 << 20):
                raise CorruptFileError(
                    f"{self._request.filename}: page {getattr(page, 'index', '?')} declares "
                    f"{'tiles' if key.is_tiled else 'strips'} of {segment:,} bytes for an "
                    f"image of {image:,} bytes ({tuple(key.shape)}): a segment that would "
                    "expand far beyond its image is damage (or a decompression bomb).")
            if segment > limit and segment > image:  # (the image's own size is checked apart)
                raise ImageTooLargeError(
                    f"{self._request.filename}: page {getattr(page, 'index', '?')} declares "
                    f"{'tiles' if key.is_tiled else 'strips'} of {segment:,} bytes, more than "
                    f"the limit of {limit:,.0f} bytes (max_bytes= / IMGIO_MAX_BYTES).")

    def _check_segments(self, pages) -> None:
        """Strips or tiles past the end of the file, or at offset 0 / in the header."""
        size = self._request.size()
        if size is None:
            return
        header = 16 if self._tif_obj.is_bigtiff else 8
        self._check_tile_sizes(pages)
        for page in pages:
            offsets = getattr(page, "dataoffsets", None)
            counts = getattr(page, "databytecounts", None)
            if not offsets or not counts:
                continue
            for k, (o, c) in enumerate(zip(offsets, counts)):
                if c and (o + c > size or o < header):
                    index = getattr(page, "index", "?")
                    kind = "tile" if getattr(page, "is_tiled", False) else "strip"
                    why = (f"ends at byte {o + c:,}, past the end of the {size:,}-byte file"
                           if o + c > size else f"starts at offset {o}, inside the header")
                    self._partial([f"page {index}: {kind} {k} of {len(offsets)} {why}"])
                    return

    @property
    def _tif(self):
        """The ``tifffile.TiffFile``, opened on first use."""
        if self._tif_obj is None and self._request.io_mode == "r":
            self._open_tiff()
        elif self._open_damage is not None:
            self._partial(*self._open_damage)
        return self._tif_obj

    @property
    def _series(self):
        if self._series_obj is None:
            self._tif  # noqa: B018 - opens the file
        return self._series_obj

    def _fast_eligible(self, index, page, mmap, fast, kwargs) -> bool:
        return (fast and index in (None, 0) and page is None and not mmap and not kwargs
                and self._request.kind == "path" and not self._open_kwargs
                and not self._allow_partial)

    def check_read_size(self, *, index: Any = None, limit=None, **selection) -> None:
        """The size guard; for a read the fast path may serve, it is deferred to it.

        The fast parser checks the size from the header it parses anyway; if it
        declines the file, :meth:`read` runs the ordinary check before tifffile.
        """
        if self._fast_eligible(index, selection.get("page"), False, True,
                               {k: v for k, v in selection.items() if k != "page"}):
            self._deferred_limit = (limit,)
            return
        super().check_read_size(index=index, limit=limit, **selection)

    # -- reading -------------------------------------------------------------------
    def _series_index(self, index: Any) -> int:
        return self._normalize_index(0 if index is None else index, len(self._series), "series")

    def _damaged(self, exc: Exception) -> CorruptFileError:
        return CorruptFileError(
            f"{self._request.filename}: the TIFF data cannot be decoded: {exc}")

    def _guard(self, fn, *args, **kwargs):
        """Call ``fn``; what tifffile raises for damage becomes CorruptFileError.

        Exceptions raised by imgio's own code (and by the caller's arguments)
        propagate unchanged; tifffile's log messages about a partial read become
        :class:`CorruptFileError` too (see :meth:`_partial`).
        """
        try:
            with _watch() as log:
                result = fn(*args, **kwargs)
        except ImgioError:
            raise
        except MemoryError as exc:
            raise ImageTooLargeError(
                f"{self._request.filename}: not enough memory to read it: {exc}") from exc
        except (IndexError, TypeError) as exc:
            msg = str(exc)
            if ("unexpected keyword" in msg or msg.startswith("index must")
                    or ("out of range" in msg and self._request.filename in msg)):
                raise  # the caller's arguments, not the file
            if not _is_damage(exc):
                raise
            raise self._damaged(exc) from exc
        except Exception as exc:
            if not _is_damage(exc):
                raise  # imgio's own bug: never relabelled as file damage
            raise self._damaged(exc) from exc
        if log.messages:
            self._partial(log.messages)
        return result

    def _n_pages(self, index: Any, level: int | None = None) -> tuple[int | None, int]:
        """(series or None, page count) that ``page=`` counts in."""
        if level is not None:
            s = 0 if index is None or index is Ellipsis else self._series_index(index)
            return s, self._guard(len, self._level(s, level).pages)
        if index is None or index is Ellipsis:
            return None, self._guard(len, self._tif.pages)
        s = self._series_index(index)
        return s, self._guard(len, self._series[s].pages)

    # -- selection keywords -------------------------------------------------------------
    @staticmethod
    def _aliases(index: Any, page: Any, kwargs: dict) -> tuple[Any, Any]:
        """``key=`` is ``page=`` and ``series=`` is ``index=`` (tifffile's names)."""
        if "key" in kwargs:
            key = kwargs.pop("key")
            if page is not None and key is not None:
                raise ValueError("Can't use `page` and `key` at the same time.")
            page = key if page is None else page
        if "series" in kwargs:
            series = kwargs.pop("series")
            if index is not None and series is not None:
                raise ValueError("Can't use `series` and `index` at the same time.")
            index = series if index is None else index
        return index, page

    def _level_index(self, s: int, level: Any) -> int:
        """``level`` as an index into series ``s``' pyramid levels, or a SelectionError."""
        n = self._guard(len, self._series[s].levels)
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
            raise TypeError(f"level must be an int, not {type(level).__name__}")
        if not -n <= level < n:
            where = f" (series {s})" if len(self._series) > 1 else ""
            raise selection_error(f"{self._request.filename}{where}", "level", level, n)
        return int(level) % n

    def _level(self, s: int, level: Any):
        """Series ``s`` at pyramid ``level`` (``None``: the series itself)."""
        ser = self._series[s]
        if level is None:
            return ser
        return ser.levels[self._level_index(s, level)]

    def read(self, *, index: Any = None, page: int | None = None, out=None, mmap: bool = False,
             fast: bool = True, maxworkers: int | None = None, **kwargs) -> np.ndarray:
        self._check_open()
        self._set_partial(kwargs)
        if kwargs.get("series") is not None:
            index = self._volume_index(index)  # v2's volread(series=k) reads series k
        index, page = self._aliases(index, page, kwargs)
        self._max_bytes = kwargs.pop("max_bytes", None)
        unknown = set(kwargs) - _ASARRAY_KEYS
        if unknown:
            # imageio hands read keywords to tifffile, whose wording users see: match it
            raise unexpected_keyword("TiffFile.asarray", unknown)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if kwargs.get("level") is not None:
            if mmap:
                raise ValueError("`mmap=True` maps level 0 of a series; drop `level=`.")
            for i in (range(len(self._series)) if index is Ellipsis
                      else [None if index is None else self._series_index(index)]):
                kwargs["level"] = self._level_index(0 if i is None else i, kwargs["level"])
        if page is not None:
            if mmap:
                raise ValueError("`mmap=True` maps a whole series; drop `page=`.")
            s, n = self._n_pages(index, kwargs.get("level"))
            key = self._normalize_index(page, n, "page")
            if kwargs.get("level") is not None and s is None:
                s = 0
            pages = self._tif.pages if s is None else self._level(s, kwargs.get("level")).pages
            self._guard(self._check_segments, [pages[key]])
            return self._guard(self._tif.asarray, key=key, series=s, out=out, **kwargs)
        if index is Ellipsis:
            if mmap:
                raise ValueError("`mmap=True` maps one series; pass index=i, not `...`.")
            self._check_equal_shapes(kwargs.get("level"))
            if out is None:
                self._check_allocation(self._level(0, kwargs.get("level")), len(self._series))
            workers = self._workers(maxworkers)
            for ser in self._series:
                self._guard(self._check_segments, ser.pages)
            return self._guard(_kernels.stack_frames, (
                s.asarray(maxworkers=workers, **kwargs) for s in self._series), out=out)
        deferred, self._deferred_limit = self._deferred_limit, None
        if self._fast_eligible(index, page, mmap, fast, kwargs) and (
                out is None or isinstance(out, np.ndarray)):
            limit = deferred[0] if deferred else self._max_bytes
            image = _try_fast(self._request.path, out=out, max_bytes=limit,
                              fd=self._request.fileno(),
                              head=self._request.firstbytes, size=self._request.size())
            if image is not None:
                return image
        if deferred:
            super().check_read_size(index=index, limit=deferred[0])
        s = self._series_index(index)
        if mmap:
            return self._guard(self._memmap, s)
        return self._guard(self._read_series, s, out, self._workers(maxworkers), kwargs)

    def _workers(self, maxworkers: int | None) -> int:
        """Decoder threads: the caller's choice, else one for a small file.

        Starting a thread pool costs more than it saves below about half a MiB of
        stored data (8 zlib pages of 128 x 128 u2, 221 KiB: 2.3 ms on one thread,
        3.1 ms on two; 879 KiB: 4.8 ms vs 4.1 ms), so files under
        ``_SMALL_FILE`` bytes decode on the calling thread.
        """
        if maxworkers is not None:
            return max(1, int(maxworkers))
        size = self._request.size()
        if size is not None and size < _SMALL_FILE:
            return 1
        return _cpu_count()

    def _check_allocation(self, ser, count: int = 1) -> None:
        nbytes = int(np.prod(ser.shape, dtype=np.float64) * ser.dtype.itemsize) * count
        limit = _memory_limit(getattr(self, "_max_bytes", None))
        if nbytes > limit:
            raise ImageTooLargeError(
                f"{self._request.filename} declares an image of shape {tuple(ser.shape)} "
                f"{ser.dtype} ({nbytes / 2**30:.1f} GiB), more than the "
                f"{limit / 2**30:.3g} GiB imgio may allocate (imgio.core.limits, max_bytes=). "
                "Read parts with `page=`, map it with `mmap=True`, or pass `out=`.")

    def _contiguous_offset(self, ser) -> int | None:
        """File offset of the series' raw bytes when they are stored as-is, else None."""
        try:
            offset = ser.dataoffset
        except Exception:  # pragma: no cover - tifffile internals on odd files
            return None
        if offset is None or ser.keyframe.compression != 1:
            return None
        nbytes = int(np.prod(ser.shape, dtype=np.int64)) * ser.dtype.itemsize
        if self._request.kind == "path":
            size = os.path.getsize(self._request.path)
            if offset + nbytes > size:
                raise CorruptFileError(
                    f"{self._request.filename} declares {nbytes} bytes of pixel data "
                    f"(shape {tuple(ser.shape)} {ser.dtype}) at offset {offset}, but the "
                    f"file holds only {size} bytes: it is truncated or its header is wrong.")
        return offset

    def _read_series(self, s: int, out, workers: int, kwargs: dict) -> np.ndarray:
        ser = self._series[s]
        if kwargs.get("level"):  # a sub-resolution level: tifffile reads it
            kwargs = dict(kwargs)
            level = self._level(s, kwargs.pop("level"))
            if out is None:
                self._check_allocation(level)
            return level.asarray(out=out, maxworkers=workers, **kwargs)
        kwargs = {k: v for k, v in kwargs.items() if k != "level"}
        offset = self._contiguous_offset(ser)
        direct = (offset is not None and self._request.kind == "path" and not kwargs
                  and ser.dtype.kind in "biufc")
        if out is not None and direct:
            if not isinstance(out, np.ndarray):
                direct = False
            else:
                if out.shape != tuple(ser.shape):
                    raise ShapeError(f"out has shape {out.shape}, but series {s} of "
                                     f"{self._request.filename} has shape {tuple(ser.shape)}")
                if out.dtype != ser.dtype:
                    raise DTypeError(f"out has dtype {out.dtype}, but series {s} of "
                                     f"{self._request.filename} is {ser.dtype}")
                direct = out.flags.c_contiguous and out.flags.writeable
        if direct:
            if out is None:
                self._check_allocation(ser)
                out = np.empty(ser.shape, ser.dtype)
            _pread_into(self._request.path, offset, out, workers)
            if self._tif.byteorder != _NATIVE and out.dtype.itemsize > 1:
                out.byteswap(inplace=True)
            return out
        if out is None:
            self._check_allocation(ser)
        self._check_segments(ser.pages)
        return ser.asarray(out=out, maxworkers=workers, **kwargs)

    def _memmap(self, s: int) -> np.ndarray:
        ser = self._series[s]
        if self._request.kind != "path":
            raise FormatError(f"{self._request.filename}: `mmap=True` needs a file on disk.")
        offset = self._contiguous_offset(ser)
        if offset is None:
            raise FormatError(
                f"{self._request.filename}: series {s} cannot be memory-mapped: its data "
                f"are compressed, tiled or not stored contiguously "
                f"(compression {ser.keyframe.compression.name}); read it without `mmap=True`.")
        dtype = ser.dtype.newbyteorder(self._tif.byteorder)
        return np.memmap(self._request.path, dtype=dtype, mode="r", offset=offset,
                         shape=tuple(ser.shape))

    def _check_equal_shapes(self, level: int | None = None) -> None:
        shapes = {(self._level(i, level).shape, s.dtype) for i, s in enumerate(self._series)}
        if len(shapes) > 1:
            raise ShapeError(
                f"{self._request.filename}: index=... stacks all series, but they differ: "
                + ", ".join(f"{s.shape} {s.dtype}" for s in self._series)
                + "; read them one by one with index=i or imiter().")

    def iter(self, **kwargs) -> Iterator[np.ndarray]:
        """Yield each series as one ndimage (only series ``series=`` when given)."""
        self._check_open()
        series = kwargs.pop("series", None)
        if series is not None:
            yield self.read(index=series, **kwargs)
            return
        for i in range(len(self._series)):
            yield self.read(index=i, **kwargs)

    def iter_pages(self, index: Any = None, **kwargs) -> Iterator[np.ndarray]:
        """Yield single pages: of series ``index``, or of the whole file (``None``)."""
        self._check_open()
        pages = self._tif.pages if index is None else self._series[self._series_index(index)].pages
        for i in range(self._guard(len, pages)):
            yield self._guard(lambda: pages[i].asarray(**kwargs))

    def properties(self, *, index: Any = None, page: int | None = None, level: int | None = None,
                   squeeze: bool | None = None, **kwargs) -> ImageProperties:
        """Shape, dtype, axes, spacing and units of a series (or of a page).

        Takes the selection keywords of :meth:`read` (``index``/``series``,
        ``page``/``key``, ``level``, ``squeeze``) and means the same by them.
        Like imageio's, warns (``RuntimeWarning``) when the page described has a
        resolution tag with a 0 denominator.
        """
        self._check_open()
        self._set_partial(kwargs)
        index, page = self._aliases(index, page, kwargs)
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.properties", kwargs)
        if level is not None:
            return self._guard(self._level_properties, index, page, level, squeeze)
        props = self._guard(self._properties, index, page)
        # imageio's improps warns about a resolution with a 0 denominator (the user's
        # calls, not the counting and sizing that imgio's own layers do)
        if not counting.get() and self._guard(self._zero_denominator, index, page):
            warnings.warn(_ZERO_DENOMINATOR, RuntimeWarning, stacklevel=2)
        if squeeze is False and page is None and index is not Ellipsis:
            ser = self._series[self._series_index(index)]
            shape, axes = tuple(ser.get_shape(False)), ser.get_axes(False)
            if shape != props.shape:
                return ImageProperties(shape=shape, dtype=props.dtype, axes=axes)
        return props

    def _level_properties(self, index, page, level, squeeze) -> ImageProperties:
        """Properties of pyramid ``level`` (spacing scaled by the level's subsampling)."""
        if index is Ellipsis:
            self._check_equal_shapes(level)
            one = self._level_properties(0, page, level, squeeze)
            n = len(self._series)
            return ImageProperties(
                shape=(n,) + one.shape, dtype=one.dtype, n_images=n, is_batch=True,
                spacing=None if one.spacing is None else (None,) + one.spacing,
                axes=None if one.axes is None else "I" + one.axes,
                units=None if one.units is None else (None,) + one.units)
        s = 0 if index is None else self._series_index(index)
        ser, lev = self._series[s], self._level(s, level)
        if page is not None:
            p = lev.pages[self._normalize_index(page, len(lev.pages), "page")]
            p = p.keyframe if getattr(p, "keyframe", None) is not None else p
            return ImageProperties(shape=p.shape, dtype=p.dtype, axes=p.axes)
        spacing, units = self._spacing(s)
        shape = tuple(lev.get_shape(squeeze)) if squeeze is not None else tuple(lev.shape)
        axes = lev.get_axes(squeeze) if squeeze is not None else lev.axes
        if spacing is not None and len(ser.shape) == len(lev.shape) == len(shape):
            spacing = tuple(None if sp is None else float(f"{sp * full / part:.10g}")
                            for sp, full, part in zip(spacing, ser.shape, lev.shape))
        else:
            spacing = units = None
        return ImageProperties(shape=shape, dtype=lev.dtype, spacing=spacing, axes=axes,
                               units=units)

    def _zero_denominator(self, index: Any, page: Any) -> bool:
        """Whether the page that :meth:`properties` describes first has a resolution (with
        its unit) whose denominator is 0: imageio's ``improps`` warns about it."""
        if page is not None:
            pages = (self._tif.pages if index is None or index is Ellipsis
                     else self._series[self._series_index(index)].pages)
            p = pages[0 if page is Ellipsis else self._normalize_index(page, len(pages), "page")]
            p = p.keyframe if getattr(p, "keyframe", None) is not None else p
        else:
            p = self._series[0 if index is None or index is Ellipsis
                             else self._series_index(index)].keyframe
        tags = getattr(p, "tags", None)
        if tags is None or tags.get(296) is None:
            return False
        x, y = tags.get(282), tags.get(283)
        return x is not None and y is not None and (x.value[1] == 0 or y.value[1] == 0)

    def _properties(self, index: Any, page: int | None) -> ImageProperties:
        if page is not None:
            if index is None or index is Ellipsis:
                p = self._tif.pages[self._normalize_index(page, len(self._tif.pages), "page")]
            else:
                ser = self._series[self._series_index(index)]
                p = ser.pages[self._normalize_index(page, len(ser.pages), "page")]
            p = p.keyframe if hasattr(p, "keyframe") and p.keyframe is not None else p
            spacing, units = _resolution_spacing(p)
            if spacing is not None and not p.axes.endswith(("YX", "YXS")):
                spacing = units = None
            elif spacing is not None:
                pad = len(p.axes) - 2 - p.axes.endswith("S")
                tail = (None,) if p.axes.endswith("S") else ()
                spacing = (None,) * pad + spacing + tail
                units = (None,) * pad + units + tail
            return ImageProperties(shape=p.shape, dtype=p.dtype, spacing=spacing,
                                   axes=p.axes, units=units)
        if index is Ellipsis:
            self._check_equal_shapes()
            first = self._series[0]
            sp, un = self._spacing(0)
            return ImageProperties(
                shape=(len(self._series),) + tuple(first.shape), dtype=first.dtype,
                n_images=len(self._series), is_batch=True,
                spacing=None if sp is None else (None,) + sp,
                axes=None if first.axes is None else "I" + first.axes,
                units=None if un is None else (None,) + un)
        s = self._series_index(index)
        ser = self._series[s]
        spacing, units = self._spacing(s)
        return ImageProperties(shape=ser.shape, dtype=ser.dtype, spacing=spacing,
                               axes=ser.axes, units=units)

    # -- physical metadata -----------------------------------------------------------
    def _spacing(self, s: int) -> tuple[tuple | None, tuple | None]:
        """Per-axis spacing and units of series ``s`` (None where unknown)."""
        spacing, units, _ = self._spacing_source(s)
        return spacing, units

    def _spacing_source(self, s: int) -> tuple[tuple | None, tuple | None, str | None]:
        """(spacing, units, source) of series ``s``; see :mod:`imgio.plugins.physical`.

        Instrument calibrations first (OME, ImageJ, imgio's JSON, LSM, STK, FEI,
        Zeiss SEM), then resolution tags in centimeters; never inches.
        """
        ser = self._series[s]
        for name, source in (("ome", self._ome_found), ("imagej", self._imagej_found),
                             ("imgio", self._shaped_found), ("lsm", self._lsm_found),
                             ("stk", self._stk_found), ("fei", self._fei_found),
                             ("zeiss_sem", self._sem_found)):
            try:
                found = source(s, ser)
            except Exception:  # odd vendor metadata must never break reading
                found = None
            if found:
                spacing, units = _per_axis(ser.axes, found)
                if spacing is not None:
                    return spacing, units, name
        yx, units = _resolution_spacing(ser.keyframe)
        if yx is None:
            return None, None, None
        spacing, units = _per_axis(ser.axes, {"Y": (yx[0], units[0]), "X": (yx[1], units[1])})
        return spacing, units, None if spacing is None else "resolution"

    def _fei_found(self, s: int, ser) -> dict | None:
        """FEI/Thermo SEM and FIB: ``[Scan] PixelWidth/PixelHeight`` in meters."""
        fei = self._tif.fei_metadata if self._tif.is_fei else None
        if not fei or s != 0:
            return None
        scan = fei.get("Scan") or fei.get("EScan") or {}
        found = {}
        for ax, key in (("X", "PixelWidth"), ("Y", "PixelHeight")):
            v = _positive(scan.get(key))
            if v is not None:
                unit = _sem_unit(v)
                found[ax] = (_meters_to(v, unit), unit)
        if "X" in found and "Y" not in found:
            found["Y"] = found["X"]
        return found

    def _sem_found(self, s: int, ser) -> dict | None:
        """Zeiss SEM (CZ_SEM tag): ``ap_pixel_size`` = ("Pixel Size", value, unit)."""
        sem = self._tif.sem_metadata if self._tif.is_sem else None
        if not sem or s != 0:
            return None
        entry = sem.get("ap_pixel_size")
        if not isinstance(entry, (tuple, list)) or len(entry) < 2:
            return None
        v = _positive(entry[1])
        unit = normalize_unit(entry[2]) if len(entry) > 2 else None
        if v is None or unit is None:
            return None
        if unit in METERS and unit not in ("nm", "um"):
            meters = v * METERS[unit]
            unit = _sem_unit(meters)
            v = _meters_to(meters, unit)
        return {"X": (v, unit), "Y": (v, unit)}

    def _ome_found(self, s: int, ser) -> dict | None:
        if not self._tif.is_ome:
            return None
        images = _ome_images(self._tif.ome_metadata)
        name = getattr(ser, "name", None)
        names = [im.get("Name") for im in images]
        if name and names.count(name) == 1 and len(set(names)) == len(names):
            image = images[names.index(name)]
        elif s < len(images):
            image = images[s]
        else:
            return None
        return _ome_physical(image)

    def _imagej_found(self, s: int, ser) -> dict | None:
        ij = self._tif.imagej_metadata if self._tif.is_imagej else None
        if not ij or s != 0:
            return None
        found = {}
        unit = normalize_unit(ij.get("unit"))
        if unit is not None:
            sy, sx = _resolution_yx(ser.keyframe)
            if sx is not None:
                found["X"] = (sx, unit)
            if sy is not None:
                found["Y"] = (sy, normalize_unit(ij.get("yunit")) or unit)
            dz = _positive(ij.get("spacing"))
            if dz is not None:
                found["Z"] = (dz, normalize_unit(ij.get("zunit")) or unit)
        dt = _positive(ij.get("finterval"))
        if dt is not None:
            found["T"] = (dt, normalize_unit(ij.get("tunit")) or "s")
        return found

    def _shaped_found(self, s: int, ser) -> dict | None:
        meta = self._tif.shaped_metadata if self._tif.is_shaped else None
        if not meta or len(meta) != len(self._series) or ser.kind != "shaped":
            return None
        d = meta[s]
        spacing, units = d.get("spacing"), d.get("units")
        axes = d.get("axes", ser.axes)
        if not spacing or len(spacing) != len(axes) or axes != ser.axes:
            return None
        units = units if units and len(units) == len(axes) else [None] * len(axes)
        return {a: (_positive(v), normalize_unit(u)) for a, v, u in zip(axes, spacing, units)
                if _positive(v) is not None}

    def _lsm_found(self, s: int, ser) -> dict | None:
        lsm = self._tif.lsm_metadata if self._tif.is_lsm else None
        if not lsm or s != 0:
            return None
        found = {}
        for ax in "XYZ":
            v = _positive(lsm.get(f"VoxelSize{ax}"))
            if v is not None:
                found[ax] = (_meters_to(v, "um"), "um")  # LSM stores meters
        dt = _positive(lsm.get("TimeIntervall"))
        if dt is not None:
            found["T"] = (dt, "s")
        return found

    def _stk_found(self, s: int, ser) -> dict | None:
        stk = self._tif.stk_metadata if self._tif.is_stk else None
        if not stk or s != 0:
            return None
        unit = normalize_unit(stk.get("CalibrationUnits"))
        if unit is None:
            return None
        found = {}
        for ax, key in (("X", "XCalibration"), ("Y", "YCalibration"), ("Z", "ZDistance")):
            v = stk.get(key)
            v = _positive(v[0] if isinstance(v, (list, tuple, np.ndarray)) and len(v) else v)
            if v is not None:
                found[ax] = (v, unit)
        return found

    def metadata(self, *, index: Any = None, page: int | None = None, level: int | None = None,
                 exclude_applied: bool = True, **kwargs) -> dict:
        """File-level metadata for ``index=None`` (or ``...``), else the tags of a series.

        The keys and types are imageio's, plus imgio's own.  File level:
        ``byteorder``, ``is_<flavor>`` flags and the flavour metadata merged into
        the top level (``spacing``, ``finterval``, ``shape``, ``XCalibration`` ...),
        as imageio does; imgio also keeps each flavour nested under
        ``<flavor>_metadata`` (OME-XML as a dict) and adds ``n_series``,
        ``n_pages``, ``is_bigtiff``.  Per series (or ``page=k``): the first
        page's tags by name with tifffile's values (enums are tifffile's int
        enums, ``meta["compression"] == 8``), imageio's ``planar_configuration,
        compression, predictor, orientation, description1, description,
        software, resolution_unit, resolution, datetime``, plus imgio's
        ``photometric`` and, for a series, ``shape``, ``axes``, ``dtype``,
        ``series_kind``, ``spacing`` and ``units``.  A resolution with a zero
        denominator is left out with imageio's ``RuntimeWarning``.
        """
        self._check_open()
        self._set_partial(kwargs)
        index, page = self._aliases(index, page, kwargs)
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.metadata", kwargs)
        self._meta_warnings: list[str] = []
        meta = self._guard(self._metadata, index, page)
        for message in self._meta_warnings:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        if page is None:
            s = 0 if index is None or index is Ellipsis else self._series_index(index)
            meta["spacing_source"] = self._guard(self._spacing_source, s)[2]
        if level is not None:
            s = 0 if index is None or index is Ellipsis else self._series_index(index)
            lev = self._level(s, level)
            meta["level"] = self._level_index(s, level)
            if "shape" in meta or index is not None:
                meta["shape"] = tuple(lev.shape)
        return meta

    #: flags whose ``<flag>_metadata`` carries nothing of its own
    _PLAIN_FLAGS = ("multipage", "uniform", "subifd", "volumetric")

    def _file_meta(self) -> dict:
        # tifffile's answers to some flags (``is_uniform``) depend on what was asked
        # before (series parsed, flavour metadata read); imageio asks a fresh
        # TiffFile, flag by flag, so imgio asks one the same way (only headers are read)
        fresh = None
        if self._request.kind == "path":
            try:
                fresh = tifffile.TiffFile(self._request.path)
            except Exception:  # only for the flags' values: the open handle answers instead
                fresh = None
        try:
            return self._file_meta_of(fresh if fresh is not None else self._tif)
        finally:
            if fresh is not None:
                fresh.close()

    def _file_meta_of(self, tif) -> dict:
        meta: dict[str, Any] = {"byteorder": tif.byteorder}
        nested: dict[str, Any] = {}
        for flag in tifffile.TIFF.FILE_FLAGS:  # imageio's order: tifffile's
            value = getattr(tif, f"is_{flag}", False)
            meta[f"is_{flag}"] = value
            if not value or flag in self._PLAIN_FLAGS or not hasattr(tif, f"{flag}_metadata"):
                continue
            try:
                flavour = getattr(tif, f"{flag}_metadata", None)
            except Exception as exc:  # a vendor's odd metadata must never break reading
                nested[f"{flag}_metadata"] = {"error": f"could not parse {flag} metadata: {exc}"}
                continue
            if flavour is None:
                continue
            if flag == "ome" and isinstance(flavour, str):
                try:
                    nested["ome_metadata"] = tifffile.xml2dict(flavour)
                except Exception as exc:
                    nested["ome_metadata"] = {"error": f"could not parse OME-XML: {exc}"}
                continue  # imageio crashes merging the XML string (its issue #953)
            nested[f"{flag}_metadata"] = flavour
            # imageio's merge: a tuple (shaped files) contributes its first entry
            merged = flavour[0] if isinstance(flavour, tuple) and flavour else flavour
            if isinstance(merged, dict):
                meta.update(merged)
        for key, value in (("n_series", len(self._series)), ("n_pages", len(self._tif.pages)),
                           ("is_bigtiff", bool(tif.is_bigtiff))):
            meta.setdefault(key, value)
        for key, value in nested.items():
            meta.setdefault(key, value)
        return meta

    def _metadata(self, index: Any, page: int | None) -> dict:
        tif = self._tif
        if page is None and (index is None or index is Ellipsis):
            return self._file_meta()
        if page is not None:
            if index is None or index is Ellipsis:
                p = tif.pages[self._normalize_index(page, len(tif.pages), "page")]
            else:
                ser = self._series[self._series_index(index)]
                p = ser.pages[self._normalize_index(page, len(ser.pages), "page")]
            p = p.keyframe if getattr(p, "keyframe", None) is not None else p
            return self._page_meta(p)
        s = self._series_index(index)
        ser = self._series[s]
        meta = self._page_meta(ser.keyframe)
        spacing, units = self._spacing(s)
        meta.update(shape=tuple(ser.shape), axes=ser.axes, dtype=str(ser.dtype),
                    series_kind=ser.kind, spacing=spacing, units=units)
        return meta

    def _page_meta(self, page) -> dict:
        """imageio's page dict (tags by name, then its summary keys) plus ``photometric``."""
        meta: dict[str, Any] = {tag.name: tag.value for tag in page.tags}
        meta.update(planar_configuration=page.planarconfig, compression=page.compression,
                    predictor=page.predictor, orientation=None,
                    description1=page.description1, description=page.description,
                    software=page.software)
        tags = page.tags
        unit = tags.get(296)
        if unit is not None:
            meta["resolution_unit"] = int(unit.value)
            x, y = tags.get(282), tags.get(283)
            if x is not None and y is not None:
                (xn, xd), (yn, yd) = x.value, y.value
                if xd == 0 or yd == 0:
                    pending = getattr(self, "_meta_warnings", None)
                    message = _ZERO_DENOMINATOR
                    if pending is None:
                        warnings.warn(message, RuntimeWarning, stacklevel=3)
                    else:
                        pending.append(message)
                else:
                    meta["resolution"] = (xn / xd, yn / yd)
        meta["datetime"] = page.datetime
        meta["photometric"] = page.photometric
        return meta

    def _close_backend(self) -> None:
        if self._tif_obj is not None:
            self._tif_obj.close()
        self._close_writer()

    # -- region reads (imgio.lazy, imgio.to_dask) -----------------------------------------
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
            fh.seek(offset)
            data = fh.read(count)
            if len(data) != count:
                raise CorruptFileError(f"{self._request.filename}: segment {j} is truncated "
                                       f"(read {len(data)} of {count} bytes).")
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
