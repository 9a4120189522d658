"""Everyday raster formats through Pillow: PNG/APNG, JPEG, GIF, BMP and WebP.

One file holds one image, except GIF, APNG and animated WebP, which hold a
sequence of frames of equal size.

Keywords
--------
read(index=None, mode=None, rotate=False, apply_gamma=False, writeable_output=True)
    ``index=None`` is the whole frame stack for GIF, APNG and animated WebP
    (as imageio does) and the image itself for every other file; an int
    selects one frame; ``...`` stacks every frame (``(1, H, W, ...)`` for a
    still image).  ``mode`` converts each frame with Pillow (``"L"``,
    ``"RGB"``, ``"RGBA"``, ``"F"``, ...); by default palette images become RGB
    (RGBA with transparency) and everything else keeps its mode.
    ``rotate=True`` applies the EXIF orientation (off by default, as in
    imageio 2.38, v2 and v3 alike); ``apply_gamma=True`` applies a PNG's
    ``gamma`` entry as imageio does.  As in imageio, ``pilmode`` and
    ``exifrotate`` are deprecated spellings of ``mode`` and ``rotate``
    (``DeprecationWarning``), ``as_gray`` is refused (``TypeError``; use
    ``mode="F"`` or ``mode="L"``), and unknown keywords raise Python's own
    ``TypeError`` ("read() got an unexpected keyword argument 'x'").
write(ndimage, is_batch=None, mode=None, format=None, **kw)
    A list, or an array with more axes than one image, is a batch of frames:
    GIF, PNG (written as APNG) and WebP animate it; JPEG and BMP hold one
    image.  Other keywords go to Pillow's ``Image.save``: ``quality``
    (JPEG/WebP), ``compress_level`` and ``optimize`` (PNG), ``duration``
    (ms per frame) and ``loop`` (GIF/APNG/WebP), ``lossless`` (WebP) ...
    ``bits=n`` quantizes each frame to a palette of ``2**n`` colours;
    ``fps=`` is imageio's deprecated spelling of ``duration=1000/fps``.
    Frames are buffered and encoded when the plugin closes.

Pixels the format cannot hold (floats, signed or wide integers; 16-bit colour)
are scaled with :func:`imgio._kernels.to_uint` to 8 bits (16 for gray PNG),
which warns "Lossy conversion from X to Y" (:class:`UserWarning`) as imageio does.  ``bool`` images are written as 1-bit images
(Pillow mode ``"1"``) where the format has them and read back as ``bool``.
"""
from __future__ import annotations

import io
import struct
import sys
import warnings
import zlib
from typing import Any, Iterator

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageMode, UnidentifiedImageError

from .. import _kernels
from ..core.limits import check_nbytes
from ..core.plugin import ImageProperties, PluginV3
from ..errors import unexpected_keyword
from .pillow_png import _decode_plain_png, _plain_png_mode
from .pillow_sniff import sniff as _pillow
from ..errors import (CorruptFileError, DTypeError, FormatError, ImageTooLargeError,
                      InitializationError, ShapeError)

__all__ = ["PillowPlugin"]

#: what Pillow raises for damaged data (truncated streams, bad chunks, bad CRCs)
_DAMAGE = (OSError, SyntaxError, EOFError, struct.error, zlib.error, IndexError)
#: seeking and decoding take no user arguments: a ValueError there ("tile cannot
#: extend outside image", ...) also means a damaged file
_DECODE_DAMAGE = _DAMAGE + (ValueError,)

#: extension -> Pillow format, for writing
_EXT_FORMAT = {
    ".png": "PNG", ".apng": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG",
    ".jfif": "JPEG", ".gif": "GIF", ".bmp": "BMP", ".dib": "BMP", ".webp": "WEBP",
}

#: Pillow modes each format can store after imgio's own conversions
_WRITABLE_MODES = {
    "PNG": {"1", "L", "LA", "RGB", "RGBA", "I;16", "P"},
    "JPEG": {"1", "L", "RGB", "CMYK"},
    "BMP": {"1", "L", "RGB", "P"},  # Pillow reads 32-bit BMP back as RGB
    "GIF": {"1", "L", "RGB", "RGBA", "P"},
    "WEBP": {"1", "L", "LA", "RGB", "RGBA"},
}

#: formats that hold a single image
_SINGLE = {"JPEG", "BMP"}

#: EXIF orientation -> the transpose that undoes it
_ORIENT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

#: Pillow's readers, by the signature :func:`_pillow` recognises
_SIG_FORMATS = (
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"), (b"BM", "BMP"),
)

_ORIENTATION_TAG = 0x0112
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825


def _format_of(head: bytes) -> str | None:
    for sig, fmt in _SIG_FORMATS:
        if head.startswith(sig):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _mode_shape(mode: str, size: tuple[int, int]) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of ``np.asarray`` of a Pillow image of ``mode`` and ``size``."""
    info = ImageMode.getmode(mode)
    w, h = size
    shape = (h, w) if len(info.bands) == 1 else (h, w, len(info.bands))
    return shape, np.dtype(info.typestr)


def _export_writeable(im: Image.Image) -> np.ndarray | None:
    """``np.asarray(im).copy()`` without its two intermediate copies, or ``None``.

    ``np.asarray`` goes through ``Image.tobytes``, which packs the pixels in
    blocks and joins them into one read-only ``bytes``; a writeable result then
    needs a third copy.  Here the same raw encoder packs each block straight
    into a numpy-owned array.  ``None`` (use the plain path) if anything is
    unusual.
    """
    w, h = im.size
    if not w or not h:
        return None
    try:
        shape, dtype = _mode_shape(im.mode, im.size)
        arr = np.empty(shape, dtype)
        flat = memoryview(arr).cast("B")
        total = len(flat)
        encoder = Image._getencoder(im.mode, "raw", im.mode)
        encoder.setimage(im.im, (0, 0, w, h))
        bufsize = max(ImageFile.MAXBLOCK, w * 4)  # as Image.tobytes
        pos = 0
        while True:
            _, errcode, data = encoder.encode(bufsize)
            end = pos + len(data)
            if end > total:
                return None
            flat[pos:end] = data
            pos = end
            if errcode:
                break
    except Exception:  # noqa: BLE001 - the plain path reports any real problem
        return None
    if errcode < 0 or pos != total:
        return None
    return arr


def _plain(value: Any) -> Any:
    """EXIF values as plain Python: rationals become floats, tuples recurse."""
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if type(value).__name__ == "IFDRational":
        try:
            return float(value)
        except ZeroDivisionError:
            return float("nan")
    return value


class PillowPlugin(PluginV3):
    """PNG/APNG, JPEG, GIF, BMP and WebP through Pillow."""

    # name, extensions, modes, description: from its registry entry (PluginSpec)

    def __init__(self, request, **kwargs) -> None:
        super().__init__(request)
        if kwargs:
            raise TypeError(f"the pillow plugin takes no open() keywords, got {sorted(kwargs)}")
        self._image = None
        self._frames: list[Image.Image] = []
        self._save_kwargs: dict = {}
        self._success = True
        self._n: int | None = None
        self._orientation: int | None = None
        self._defaults: tuple | None = None
        self._shapes: dict = {}
        try:
            self._init(request)
        except BaseException:
            # a plugin that failed to open must not finish the request when it is
            # garbage-collected: imopen may hand the request to the next candidate
            self._closed = True
            if self._image is not None:
                self._image.__exit__(None, None, None)
            raise

    def _init(self, request) -> None:
        if request.io_mode == "r":
            self._open_for_reading(request)
        else:
            self._format = None
            ext = request.extension
            if ext is not None:
                self._format = _EXT_FORMAT.get(ext) or self._pillow_format_for(ext)
                if self._format is None:
                    raise InitializationError(
                        f"Pillow does not know the extension {ext!r}")

    # -- opening ---------------------------------------------------------------------
    @staticmethod
    def _pillow_format_for(ext: str) -> str | None:
        Image.init()  # every Pillow plugin: only for extensions outside the usual five
        return Image.registered_extensions().get(ext)

    def _open_for_reading(self, request) -> None:
        if request.kind not in ("path", "bytes", "file"):
            raise InitializationError(f"{request.filename} is a {request.kind}, not one file")
        # the request's own handle: no second open of the file by Pillow, and the
        # signature comes from it rather than from another ``request.firstbytes`` open
        source: Any = request.get_file()
        cached = request._head if request.kind in ("path", "bytes") else None
        try:
            start = source.tell()
            if start == 0 and cached is not None:
                head = cached[:33]  # the request's sniffed bytes: no read and rewind
            else:
                head = source.read(33)
                source.seek(start)
        except (OSError, AttributeError, ValueError) as exc:
            raise CorruptFileError(f"Cannot read {request.filename}: the file object must "
                                   f"be readable and seekable: {exc}") from exc
        if start != 0:
            source = io.BytesIO(source.read())  # Pillow reads from offset 0
        fmt = _format_of(head) if _pillow(head) else None
        try:
            # restricting Pillow to the format we recognised skips its own sniffing
            self._image = Image.open(source, formats=[fmt] if fmt else None)
        except Image.DecompressionBombError as exc:
            raise self._too_large(exc) from exc
        except UnidentifiedImageError as exc:
            if fmt is None:
                raise InitializationError(f"Pillow cannot identify it: {exc}") from exc
            raise CorruptFileError(
                f"{request.filename} looks like a {fmt} file but Pillow cannot parse its "
                f"header.") from exc
        except _DAMAGE + (ValueError,) as exc:
            raise CorruptFileError(
                f"{request.filename} looks like a {fmt or 'Pillow'} file but cannot be "
                f"opened: {exc}") from exc
        im = self._image
        self._format = im.format
        self._mode0 = im.mode
        self._info0 = dict(im.info)
        self._size = im.size
        self._animated_png = (im.format == "PNG"
                              and getattr(im, "custom_mimetype", None) == "image/apng")
        self._plain_png = None
        if im.format == "PNG" and not self._animated_png and request.kind in ("path", "bytes"):
            mode = _plain_png_mode(head if len(head) >= 33 else b"")
            # a tRNS colour in gray or RGB: libpng would add an alpha channel
            if mode is not None and mode == im.mode and "transparency" not in self._info0:
                self._plain_png = mode
        if self._format == "PNG" and len(head) >= 26 and head[24] == 16 \
                and head[25] in (2, 4, 6):
            self._depth_warning = (
                f"{request.filename} is a 16-bit colour PNG; Pillow reads only the high "
                "8 bits of each sample.")
        else:
            self._depth_warning = None

    def _too_large(self, exc: Exception) -> ImageTooLargeError:
        return ImageTooLargeError(
            f"{self._request.filename}: {exc} (Pillow's decompression-bomb guard; raise "
            "PIL.Image.MAX_IMAGE_PIXELS, or set it to None, to read it anyway).")

    def _damaged(self, exc: Exception) -> CorruptFileError:
        return CorruptFileError(
            f"{self._request.filename}: the {self._format} data cannot be decoded "
            f"(truncated or damaged file): {exc}")

    # -- frames ------------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        """Number of frames (1 for still images)."""
        if self._n is None:
            try:
                n = int(getattr(self._image, "n_frames", 1))
            except _DECODE_DAMAGE as exc:
                raise self._damaged(exc) from exc
            if self._format == "GIF":
                self._check_gif_trailer(n)
            self._n = n
        return self._n

    def _check_gif_trailer(self, n: int) -> None:
        """A GIF ends with its trailer byte (0x3B); Pillow counts a cut file's frames
        up to the cut and says nothing, so a 6-frame GIF cut in frame 3 would read
        as 2 frames."""
        try:
            fh = self._request.get_file()
            pos = fh.tell()
            try:
                fh.seek(-1, 2)
                last = fh.read(1)
            finally:
                fh.seek(pos)
        except (OSError, ValueError, AttributeError):
            return  # not seekable: nothing to check against
        if last == b"\x3b":
            return
        text = (f"{self._request.filename} is a truncated GIF: it does not end with the "
                f"GIF trailer, so frames after frame {n - 1} (and maybe part of it) are "
                "missing")
        if getattr(self, "_allow_partial", False):
            import warnings
            from ..errors import PartialReadWarning
            warnings.warn(text + "; reading what is there (allow_partial=True).",
                          PartialReadWarning, stacklevel=4)
            return
        raise CorruptFileError(text + " (pass allow_partial=True to read what is there).")

    def _natural_batch(self) -> bool:
        """Whether ``index=None`` means every frame (GIF, APNG, animated WebP)."""
        if self._format == "GIF" or self._animated_png:
            return True
        return self._format == "WEBP" and self.n_frames > 1

    def _natural_mode(self) -> str:
        mode = self._mode0
        if self._format == "GIF" and mode in ("P", "L"):
            # Pillow decodes frames after the first as RGB(A); all frames share one mode
            return "RGBA" if "transparency" in self._info0 else "RGB"
        if mode == "P":
            return "RGBA" if "transparency" in self._info0 else "RGB"
        if mode == "PA":
            return "RGBA"
        return mode

    def _get_orientation(self) -> int:
        """EXIF orientation known from the headers (1 when there is none)."""
        if self._orientation is None:
            self._orientation = 1
            info = self._info0
            if "exif" in info or "xmp" in info or "XML:com.adobe.xmp" in info:
                try:
                    value = int(self._image.getexif().get(_ORIENTATION_TAG, 1))
                except Exception:  # odd EXIF must never stop a read
                    value = 1
                self._orientation = value if value in _ORIENT else 1
        return self._orientation

    def _read_options(self, kwargs: dict, func: str = "read") -> tuple[str, str | None, bool, bool]:
        """(target mode, extra mode, rotate, writeable) from read/properties keywords.

        imageio's keywords and warnings: ``pilmode``/``exifrotate`` are deprecated
        spellings (``DeprecationWarning``), ``as_gray`` is refused (``TypeError``),
        EXIF orientation is applied only with ``rotate=True``, and an unknown
        keyword raises Python's own ``TypeError`` wording.
        """
        if not kwargs:  # the common call: computed once per file
            self._apply_gamma = False
            if self._defaults is None:
                self._defaults = (self._natural_mode(), None, False, True)
            return self._defaults
        mode = kwargs.pop("mode", None)
        pilmode = kwargs.pop("pilmode", None)
        if pilmode is not None:
            warnings.warn("`pilmode` is deprecated. Use `mode` instead.", DeprecationWarning,
                          stacklevel=4)
            mode = pilmode
        rotate = kwargs.pop("rotate", False)
        exifrotate = kwargs.pop("exifrotate", None)
        if exifrotate is not None:
            warnings.warn("`exifrotate` is deprecated. Use `rotate` instead.",
                          DeprecationWarning, stacklevel=4)
            rotate = exifrotate
        if kwargs.pop("as_gray", None) is not None:
            raise TypeError(
                "The keyword `as_gray` is no longer supported.Use `mode='F'` for a "
                "backward-compatible result, or  `mode='L'` for an integer-valued result.")
        writeable = bool(kwargs.pop("writeable_output", True))
        self._apply_gamma = bool(kwargs.pop("apply_gamma", False))
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.{func}", kwargs)
        if mode is not None:
            try:
                ImageMode.getmode(mode)
            except KeyError:
                raise ValueError(f"{mode!r} is not a Pillow image mode (e.g. 'L', 'RGB', "
                                 "'RGBA', 'I;16', 'F').") from None
        target = mode if mode is not None else self._natural_mode()
        return target, None, bool(rotate), writeable

    def _gamma(self, arr: np.ndarray) -> np.ndarray:
        """imageio's ``apply_gamma=True``: the PNG ``gamma`` entry applied to the pixels."""
        gamma = self._info0.get("gamma") if getattr(self, "_apply_gamma", False) else None
        if gamma is None:
            return arr
        scale = float(65536 if arr.dtype == np.uint16 else 255)
        # imageio's arithmetic (its result is uint8 whatever the input depth)
        return np.round(((arr / scale) ** float(gamma)) * scale + 0.4999).astype(np.uint8)

    def _frame_index(self, index: Any) -> int | None:
        """The frame for ``index`` (``None`` for every frame)."""
        if index is None:
            return None if self._natural_batch() else 0
        if index is Ellipsis:
            return None
        return self._normalize_index(index, self.n_frames, "frame")

    def _frame_shape(self, target: str, extra: str | None, rotate: bool):
        key = (target, extra, rotate)
        found = self._shapes.get(key)
        if found is None:
            size = self._size
            if rotate and self._get_orientation() >= 5:
                size = size[::-1]
            found = self._shapes[key] = _mode_shape(extra or target, size)
        return found

    def _fast_frame(self, i: int, target: str, extra: str | None,
                    rotate: bool) -> np.ndarray | None:
        """Frame ``i`` decoded by libpng when it is a plain PNG read as it is, else ``None``."""
        mode = self._plain_png
        if mode is None or i != 0 or target != mode or (extra is not None and extra != mode):
            return None
        if rotate and self._get_orientation() != 1:
            return None
        fh = self._request.get_file()
        try:
            pos = fh.tell()
            fh.seek(0)
            data = fh.read()
            fh.seek(pos)  # Pillow's handle: where its own decoder would start
        except (OSError, ValueError):
            return None
        arr = _decode_plain_png(data, mode, self._frame_shape(target, extra, rotate)[0])
        if arr is None:
            self._plain_png = None  # Pillow's path from now on
        return arr

    def _load(self, i: int) -> Image.Image:
        im = self._image
        try:
            if i != im.tell():
                im.seek(i)
            im.load()
        except Image.DecompressionBombError as exc:
            raise self._too_large(exc) from exc
        except _DECODE_DAMAGE as exc:
            raise self._damaged(exc) from exc
        return im

    def _frame(self, i: int, target: str, extra: str | None, rotate: bool) -> Image.Image:
        im = self._load(i)
        if im.mode != target:
            im = im.convert(target)
        if extra is not None and im.mode != extra:
            im = im.convert(extra)
        if rotate:
            orientation = self._get_orientation()
            if orientation != 1:
                im = im.transpose(_ORIENT[orientation])
        return im

    @staticmethod
    def _to_array(im: Image.Image, writeable: bool) -> np.ndarray:
        if im.mode == "1":  # one bit per pixel: unpack to proper 0/1 booleans
            w, h = im.size
            return np.frombuffer(im.tobytes("raw", "L"), np.uint8).reshape(h, w) != 0
        if writeable:
            arr = _export_writeable(im)
            if arr is not None:
                return arr
        arr = np.asarray(im)
        if writeable and not arr.flags.writeable:
            arr = arr.copy()
        return arr

    # -- reading -------------------------------------------------------------------------
    def read(self, *, index: Any = None, **kwargs) -> np.ndarray:
        """Read an image, one frame or the frame stack (see the module docstring)."""
        self._check_open()
        limit = self._take_guard_options(kwargs)
        target, extra, rotate, writeable = self._read_options(kwargs)
        i = self._frame_index(index)
        if self._depth_warning:
            warnings.warn(self._depth_warning, UserWarning, stacklevel=3)
        if i is not None:
            arr = self._fast_frame(i, target, extra, rotate)
            if arr is not None:
                return self._gamma(arr)
            return self._gamma(self._to_array(self._frame(i, target, extra, rotate), writeable))
        n = self.n_frames
        shape, dtype = self._frame_shape(target, extra, rotate)
        check_nbytes((n,) + shape, dtype, self._request.filename, limit)
        out = np.empty((n,) + shape, dtype)
        for k in range(n):
            frame = self._to_array(self._frame(k, target, extra, rotate), False)
            if frame.shape != shape:  # pragma: no cover - Pillow keeps frames equal
                raise ShapeError(f"{self._request.filename}: frame {k} has shape "
                                 f"{frame.shape}, frame 0 {shape}.")
            out[k] = frame
        return self._gamma(out)

    def iter(self, **kwargs) -> Iterator[np.ndarray]:
        """Yield every frame (a still image yields itself once)."""
        self._check_open()
        limit = self._take_guard_options(kwargs)
        target, extra, rotate, writeable = self._read_options(kwargs, "iter")
        check_nbytes(*self._frame_shape(target, extra, rotate)[:2], self._request.filename, limit)
        if self._depth_warning:
            warnings.warn(self._depth_warning, UserWarning, stacklevel=3)
        for k in range(self.n_frames):
            arr = self._fast_frame(k, target, extra, rotate) if k == 0 else None
            if arr is None:
                arr = self._to_array(self._frame(k, target, extra, rotate), writeable)
            yield self._gamma(arr)

    def _take_guard_options(self, kwargs: dict):
        """Pop ``allow_partial`` (kept on the plugin) and ``max_bytes`` (returned)."""
        if "allow_partial" in kwargs:
            self._allow_partial = bool(kwargs.pop("allow_partial"))
        return kwargs.pop("max_bytes", None)

    def check_read_size(self, *, index: Any = None, limit=None, **selection) -> None:
        """The size guard from the headers, without building :class:`ImageProperties`."""
        with self._lock:
            self._check_open()
            self._take_guard_options(selection)
            if not selection:  # the common call: nothing to warn about, no catch_warnings
                target, extra, rotate, _ = self._read_options(selection)
            else:
                with warnings.catch_warnings():  # the read itself warns about the keywords
                    warnings.simplefilter("ignore", DeprecationWarning)
                    target, extra, rotate, _ = self._read_options(selection)
            i = self._frame_index(index)
            shape, dtype = self._frame_shape(target, extra, rotate)
            if i is None:
                shape = (self.n_frames,) + shape
        check_nbytes(shape, dtype, self._request.filename, limit)

    def properties(self, *, index: Any = None, **kwargs) -> ImageProperties:
        """Shape and dtype from the headers; equal to ``read``'s for the same keywords."""
        self._check_open()
        self._take_guard_options(kwargs)
        target, extra, rotate, _ = self._read_options(kwargs, "properties")
        i = self._frame_index(index)
        shape, dtype = self._frame_shape(target, extra, rotate)
        if i is None:
            n = self.n_frames
            return ImageProperties((n,) + shape, dtype, n_images=n, is_batch=True)
        return ImageProperties(shape, dtype)

    def metadata(self, *, index: Any = None, exclude_applied: bool = True, **kwargs) -> dict:
        """``image.info`` plus EXIF tags by name, ``mode``, ``size`` and ``shape``.

        ``shape`` is imageio's entry, Pillow's ``(width, height)`` (as ``size``),
        not the array shape; ``improps`` gives that.

        ``index=None`` gives frame 0, which for GIF and APNG also holds the file's
        global entries (``loop``, ``background``).  ``exclude_applied=True``
        drops what reading already applied: the EXIF ``Orientation`` and the
        palette.
        """
        self._check_open()
        if kwargs:
            raise unexpected_keyword(f"{type(self).__name__}.metadata", kwargs)
        if index is None or index is Ellipsis:
            i = 0
            info = dict(self._info0)
        else:
            i = self._normalize_index(index, self.n_frames, "frame")
            im = self._image
            try:
                if i != im.tell():
                    im.seek(i)
            except _DECODE_DAMAGE as exc:
                raise self._damaged(exc) from exc
            info = dict(im.info)
        im = self._image
        meta: dict[str, Any] = info
        meta["mode"] = self._mode0 if i == 0 else im.mode
        meta["size"] = tuple(self._size)
        meta["shape"] = tuple(self._size)  # imageio's key: Pillow's (width, height)
        meta["n_images"] = self.n_frames
        meta.update(self._exif())
        if exclude_applied:
            meta.pop("Orientation", None)
        elif self._mode0 == "P" and im.palette is not None:
            # imageio's entry: the palette's colours, in the order Pillow lists them
            meta["palette"] = np.asarray(tuple(im.palette.colors.keys()))
        return meta

    def get_meta(self, *, index: int = 0) -> dict:
        """imageio's ``PillowPlugin.get_meta``: ``metadata(index, exclude_applied=False)``."""
        return self.metadata(index=index, exclude_applied=False)

    def _exif(self) -> dict:
        if not any(k in self._info0 for k in ("exif", "xmp", "XML:com.adobe.xmp")):
            return {}
        try:
            exif = self._image.getexif()
            out = {ExifTags.TAGS.get(k, k): _plain(v) for k, v in exif.items()
                   if k not in (_EXIF_IFD, _GPS_IFD)}
            sub = exif.get_ifd(_EXIF_IFD)
            out.update({ExifTags.TAGS.get(k, k): _plain(v) for k, v in sub.items()})
            gps = exif.get_ifd(_GPS_IFD)
            if gps:
                out["GPSInfo"] = {ExifTags.GPSTAGS.get(k, k): _plain(v) for k, v in gps.items()}
            return out
        except Exception as exc:  # a camera's odd EXIF must never break metadata
            return {"exif_error": f"could not parse EXIF: {exc}"}

    # -- writing -------------------------------------------------------------------------
    def write(self, ndimage, *, is_batch: bool | None = None, mode: str | None = None,
              format: str | None = None, **kwargs) -> bytes | None:
        """Add an image or a batch of frames; encoded when the plugin closes."""
        self._check_open()
        self._request.check_writable()
        if format is not None:
            new_format = str(format).upper()
            if new_format == "JPG":
                new_format = "JPEG"
            if self._frames and self._format is not None and new_format != self._format:
                warnings.warn(
                    "Changing the output format during incremental writes is strongly "
                    f"discouraged. Was `{self._format}`, is now `{format}`.", UserWarning,
                    stacklevel=3)
            self._format = new_format
        if self._format is None:
            raise FormatError(
                f"Cannot tell which format to write {self._request.filename} in: pass "
                "`extension=\".png\"` or `format=\"PNG\"`.")
        if "fps" in kwargs:
            warnings.warn(
                "The keyword `fps` is no longer supported. Use `duration`(in ms) instead, "
                "e.g. `fps=50` == `duration=20` (1000 * 1/50).", DeprecationWarning,
                stacklevel=3)
            kwargs["duration"] = 1000.0 / float(kwargs.pop("fps"))
        bits = kwargs.pop("bits", None)
        frames = self._split_batch(ndimage, is_batch)
        new = [self._to_pil(f, mode) for f in frames]
        if bits is not None:  # imageio: palette quantization to 2**bits colours
            new = [im.quantize(colors=2 ** int(bits)) for im in new]
        if self._format in _SINGLE and len(self._frames) + len(new) > 1:
            raise ShapeError(
                f"Cannot write {len(self._frames) + len(new)} images to "
                f"{self._request.filename}: {self._format} holds a single image. Write "
                "them to separate files, or use GIF, PNG (APNG), WebP or TIFF.")
        self._frames.extend(new)
        self._save_kwargs.update(kwargs)
        if self._request.kind == "return_bytes":
            return self._close(success=True)
        return None

    def _split_batch(self, ndimage, is_batch: bool | None) -> list[np.ndarray]:
        if isinstance(ndimage, (list, tuple)):
            if is_batch is False:
                return [self._as_array(ndimage)]
            return [self._as_array(f) for f in ndimage]
        arr = self._as_array(ndimage)
        if is_batch is None:
            is_batch = arr.ndim == 4 or (arr.ndim == 3 and arr.shape[-1] > 4)
        return list(arr) if is_batch else [arr]

    def _as_array(self, data) -> np.ndarray:
        try:
            arr = np.asarray(data)
        except ValueError as exc:
            raise ShapeError(f"Cannot write to {self._request.filename}: the image data is "
                             f"not a regular array: {exc}") from None
        if arr.dtype != bool and arr.dtype.kind not in "uif":
            raise DTypeError(f"Cannot write a {arr.dtype} array to {self._request.filename}: "
                             "images must be numeric or bool.")
        return arr

    def _to_pil(self, arr: np.ndarray, mode: str | None) -> Image.Image:
        fmt, where = self._format, self._request.filename
        if arr.ndim == 3 and arr.shape[-1] == 1:
            raise ShapeError(
                f"Cannot write an image of shape {arr.shape} to {where}: an image with one "
                "colour channel is ambiguous; drop the last axis (image[..., 0]) to write "
                "it as gray.")
        if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (2, 3, 4))):
            raise ShapeError(
                f"Cannot write an image of shape {arr.shape} to {where}: {fmt} images are "
                "(H, W) gray, (H, W, 2) gray+alpha, (H, W, 3) RGB or (H, W, 4) RGBA.")
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ShapeError(f"Cannot write an empty image of shape {arr.shape} to {where}.")
        channels = 1 if arr.ndim == 2 else arr.shape[-1]
        if arr.dtype == bool:
            pass  # Pillow mode "1"
        elif arr.dtype == np.uint8:
            pass
        elif arr.dtype == np.uint16 and channels == 1 and fmt == "PNG":
            arr = arr.astype("<u2", copy=False)  # Pillow mode "I;16"
        else:
            # to_uint issues imageio's "Lossy conversion from X to Y" UserWarning
            arr = _kernels.to_uint(arr, 16 if (fmt == "PNG" and channels == 1) else 8)
        if fmt in ("JPEG", "BMP") and channels in (2, 4):
            raise ShapeError(
                f"Cannot write an image of shape {arr.shape} to {where}: {fmt} has no alpha "
                "channel. Drop it (image[..., :-1]) or write PNG, WebP or TIFF.")
        if fmt == "GIF" and channels == 2:
            raise ShapeError(
                f"Cannot write an image of shape {arr.shape} to {where}: GIF has no "
                "gray+alpha images. Write gray, RGB or RGBA.")
        im = Image.fromarray(np.ascontiguousarray(arr))
        if mode is not None and im.mode != mode:
            im = im.convert(mode)
        elif fmt == "WEBP" and im.mode == "1":
            im = im.convert("L")
        allowed = _WRITABLE_MODES.get(fmt)
        if allowed is not None and im.mode not in allowed:
            raise DTypeError(f"Cannot write a Pillow mode {im.mode!r} image to {where}: "
                             f"{fmt} stores modes {sorted(allowed)}.")
        if getattr(im, "readonly", 0):  # shares the caller's buffer until it is encoded
            im = im.copy()
        return im

    def _close(self, success: bool) -> bytes | None:
        self._success = success
        return super()._close(success)

    def _close_backend(self) -> None:
        if self._image is not None:
            # the context-manager exit closes only a file Pillow opened itself,
            # never the caller's file object
            self._image.__exit__(None, None, None)
            self._image = None
        if self._request.io_mode == "w" and self._frames and self._success:
            frames, self._frames = self._frames, []
            options = dict(self._save_kwargs)
            if len(frames) > 1:
                options.update(save_all=True, append_images=frames[1:])
            try:
                frames[0].save(self._request.get_file(), format=self._format, **options)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise FormatError(f"Cannot write {self._request.filename} as "
                                  f"{self._format}: {exc}") from exc
