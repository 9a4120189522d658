"""Damage detection for the tifffile plugin: :class:`DamageMixin` and its helpers.

tifffile answers a damaged file in three ways: it raises (its TiffFileError, or
a ValueError, struct.error ... from its parsers and imagecodecs' decoders), it
logs what it skipped and returns less than the file declares, or it reads
strips and tiles whose offsets lie past the end of the file.  :func:`_is_damage`
tells the first from imgio's own bugs (which propagate unchanged), :class:`_watch`
collects the second, and :meth:`DamageMixin._check_segments` finds the third;
all become :class:`~imgio.errors.CorruptFileError` naming the file (or, with
``allow_partial=True``, a :class:`~imgio.errors.PartialReadWarning`).

The mixin needs the plugin's ``_request``, ``_tif_obj`` and ``_read_limit()``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import warnings

import tifffile

from ...errors import CorruptFileError, ImageTooLargeError, ImgioError, PartialReadWarning

__all__ = ["DamageMixin"]

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


class DamageMixin:
    """``allow_partial``/``allow_external``, the damage checks and :meth:`_guard`."""

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
        limit = self._read_limit()
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
