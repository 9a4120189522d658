"""imageio's names and extra sources, for :class:`~imgio.core.request.Request`.

imageio's names for the kinds of resource and for the io mode, and the sources that
imageio accepts beyond paths, bytes and seekable file objects: standard images
("imageio:chelsea.png", from the local cache), members of ZIP archives
("archive.zip/inner/image.png") and non-seekable streams (a pipe, an object with
only ``read()``), which are read into memory.
"""
from __future__ import annotations

import enum
import os
from pathlib import PurePath
from typing import Any

from ..errors import FormatError

__all__ = ["URI_BYTES", "URI_FILE", "URI_FILENAME", "URI_ZIPPED", "URI_HTTP", "URI_FTP",
           "IOMode", "STANDARD_IMAGES", "standard_images_dir", "resolve_compat_source"]

URI_BYTES, URI_FILE, URI_FILENAME, URI_ZIPPED, URI_HTTP, URI_FTP = 1, 2, 3, 4, 5, 6


class IOMode(str, enum.Enum):
    """imageio's ``IOMode``: ``IOMode.read == "r"``, ``IOMode.write == "w"``."""

    read = "r"
    write = "w"


class _Mode(str):
    """The two-letter mode string with imageio's ``io_mode``/``image_mode`` attributes."""

    @property
    def io_mode(self) -> IOMode:
        return IOMode(self[0])

    @property
    def image_mode(self) -> str:
        return self[1]


#: the standard images imageio knows by name (``imageio:<name>``)
STANDARD_IMAGES = frozenset("""
astronaut.png bacterial_colony.tif bricks.jpg calcium_imaging.tif camera.png
checkerboard.png chelsea.bsdf chelsea.png chelsea.zip clock.png cockatoo.mp4
cockatoo_yuv420.mp4 coffee.png coins.png horse.png hubble_deep_field.png
immunohistochemistry.png meadow_cube.jpg moon.png newtonscradle.gif page.png
stent.npz text.png wikkie.png wood.jpg""".split())


def standard_images_dir() -> str:
    """Where imageio keeps downloaded standard images: ``$IMAGEIO_USERDIR/.imageio/images``.

    Without ``IMAGEIO_USERDIR`` the user's home folder is used, as imageio does.
    """
    base = os.environ.get("IMAGEIO_USERDIR") or os.path.expanduser("~")
    return os.path.join(base, ".imageio", "images")


def _standard_image(uri: str, reading: bool) -> str:
    if not reading:
        raise RuntimeError("Cannot write to the standard images.")
    name = uri.split(":", 1)[1].lower()
    name, _, member = name.partition(".zip/")
    if member:
        name += ".zip"
    if name not in STANDARD_IMAGES:
        raise ValueError(f"Unknown standard image {name!r}.")
    path = os.path.join(standard_images_dir(), name)
    if not os.path.isfile(path):
        # imgio never downloads: the cache is filled by imageio or by hand
        raise OSError(
            f"Unable to find the standard image {name!r}: it is not in the local cache "
            f"{standard_images_dir()} and imgio does not download it. Put the file there "
            f"(imageio's https://github.com/imageio/imageio-binaries/raw/master/images/{name}) "
            "or set IMAGEIO_USERDIR to a folder holding .imageio/images/.")
    return path + ("/" + member if member else "")


def _zip_member(path: str) -> tuple[bytes, str] | None:
    """The bytes of ``archive.zip/inner/name`` when ``archive.zip`` is an existing file."""
    lower = path.lower()
    for sep in (".zip/", ".zip\\"):
        at = lower.find(sep)
        while at != -1:
            archive = os.path.abspath(os.path.expanduser(path[:at + 4]))
            if os.path.isfile(archive):
                import zipfile
                member = path[at + 5:].replace("\\", "/")
                with zipfile.ZipFile(archive) as zf:
                    # a missing member: zipfile's KeyError, as imageio lets through
                    data = zf.read(member)
                return data, os.path.join(archive, member)
            at = lower.find(sep, at + 1)
    return None


def resolve_compat_source(uri: Any, reading: bool) -> tuple[Any, str | None] | None:
    """``(path or bytes, name)`` for imageio's extra sources, else ``None``.

    Parameters
    ----------
    uri : Any
        What the user passed.
    reading : bool
        Whether the request reads (imageio's extra sources are read-only).

    Returns
    -------
    tuple or None
        ``(path or bytes, name)``; ``name`` is None for an unnamed stream.
    """
    if isinstance(uri, PurePath):
        uri = os.fspath(uri)
    if isinstance(uri, str):
        if uri.startswith("imageio:"):
            uri = _standard_image(uri, reading)
            found = _zip_member(uri) if reading and ".zip/" in uri.lower() else None
            return found if found is not None else (uri, uri)
        if reading and ".zip" in uri.lower() and not os.path.exists(uri):
            return _zip_member(uri)
        return None
    if reading and hasattr(uri, "read") and not isinstance(uri, (bytes, memoryview)):
        seekable = getattr(uri, "seekable", None)
        try:
            ok = callable(seekable) and seekable() and hasattr(uri, "seek")
        except (OSError, ValueError):
            ok = False
        if not ok:  # a pipe or a read()-only object: read it whole, once
            name = getattr(uri, "name", None)
            data = uri.read()
            if not isinstance(data, (bytes, bytearray)):
                raise FormatError(f"Cannot read {name or type(uri).__name__}: read() returned "
                                  f"{type(data).__name__}, not bytes (open it in binary mode).")
            return bytes(data), name if isinstance(name, str) else None
    return None
