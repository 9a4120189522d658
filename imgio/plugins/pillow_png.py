"""The plain-PNG fast path of the Pillow plugin: libpng (through imagecodecs) decodes
the pixels of a plain PNG that Pillow has opened.

Which PNGs qualify (:func:`_plain_png_mode`, from the signature and IHDR), the
decoder loaded once (:func:`_load_png_decoder`), the log filter that hides
libpng's warnings on this path and sends such files to Pillow
(:class:`_LibpngWarnings`), and the decode itself (:func:`_decode_plain_png`).
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

# -- the plain-PNG fast path -----------------------------------------------------------
# Pillow's PNG decoder (zlib inflate, then a Python-driven unfilter per block) is
# the bulk of reading a small PNG; libpng through imagecodecs decodes the same
# pixels about a third faster.  Pillow still opens the file (header, ``info``,
# mode, size: metadata stays Pillow's); only the pixels of a plain PNG come from
# libpng: 8-bit gray, gray+alpha, RGB, RGBA and 16-bit gray, not interlaced, not
# animated, in Pillow's own mode.  Palette images (converted to RGB(A) by
# Pillow), 16-bit colour (Pillow keeps the high bytes), sub-byte depths (Pillow
# rescales 2/4-bit gray, unpacks 1-bit to bool), interlaced and APNG files take
# Pillow's path, as does any file libpng rejects, so Pillow still decides what
# a damaged file gives.

#: IHDR (bit depth, colour type) -> the Pillow mode of a plain PNG
_PLAIN_PNG = {(8, 0): "L", (8, 4): "LA", (8, 2): "RGB", (8, 6): "RGBA", (16, 0): "I;16"}
_png_decode: Any = None
_DECODER_LOCK = threading.Lock()


def _plain_png_mode(head: bytes) -> str | None:
    """The Pillow mode of a plain PNG from its first 33 bytes (signature + IHDR), or
    ``None`` when the pixels need Pillow (see above)."""
    if len(head) < 33 or head[12:16] != b"IHDR":
        return None
    # bytes 24..28: bit depth, colour type, compression, filter, interlace
    if head[26] != 0 or head[27] != 0 or head[28] != 0:
        return None
    return _PLAIN_PNG.get((head[24], head[25]))


class _LibpngWarnings(logging.Filter):
    """Drops the libpng warnings imagecodecs logs while *this thread* runs the fast
    path, and notes them: a file libpng finds odd is decoded by Pillow instead (as
    without the fast path, and with no log line Pillow would not have written).
    Records from any other use of imagecodecs pass untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_FAST, "decoding", False):
            _FAST.warned = True
            return False
        return True


_FAST = threading.local()


def _load_png_decoder() -> Any:
    global _png_decode
    try:
        from imagecodecs import png_decode
    except ImportError:  # pragma: no cover - imagecodecs is a dependency
        _png_decode = False
        return False
    logging.getLogger("imagecodecs").addFilter(_LibpngWarnings())
    _png_decode = png_decode
    return png_decode


def _decode_plain_png(data: bytes, mode: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """libpng's pixels of a plain PNG, or ``None`` (Pillow decodes it instead)."""
    decode = _png_decode
    if decode is None:
        with _DECODER_LOCK:
            decode = _png_decode if _png_decode is not None else _load_png_decoder()
    if decode is False:  # pragma: no cover
        return None
    _FAST.warned = False
    _FAST.decoding = True
    try:
        arr = decode(data)
    except (RuntimeError, ValueError):
        # what imagecodecs raises for a stream libpng refuses (PngError, a RuntimeError;
        # ValueError for no PNG): Pillow's path decides whether the file is damaged.
        # Anything else (imgio calling the decoder wrongly) propagates.
        return None
    finally:
        _FAST.decoding = False
    if _FAST.warned:
        return None
    want = np.dtype("<u2") if mode == "I;16" else np.dtype(np.uint8)
    if arr.shape != shape or arr.dtype != want or not arr.flags.writeable:
        return None  # pragma: no cover - libpng and Pillow agree on plain PNGs
    return arr
