"""A complete imgio plugin for a made-up format, used by docs/plugins.md.

A ``.rawimg`` file is the 8 bytes ``IMGIORAW``, a 4-byte little-endian header
length, a JSON header ``{"shape": [...], "dtype": "..."}`` and the pixels in
C order.  It holds exactly one ndimage.
"""
import json
import struct

import numpy as np

from imgio.core.plugin import ImageProperties, PluginV3
from imgio.errors import CorruptFileError, InitializationError

MAGIC = b"IMGIORAW"


def sniff(first_bytes: bytes) -> bool:
    """Recognise the format by content (called with the file's first bytes)."""
    return first_bytes[:8] == MAGIC


class RawPlugin(PluginV3):
    # the metadata a registry entry is made from when the class itself is registered
    # (entry point ``rawimg = rawplugin:RawPlugin``); a PluginSpec, when there is one,
    # overrides these
    name = "rawimg"
    description = "Example raw format"
    extensions = (".rawimg",)
    modes = "iv"
    sniff = staticmethod(sniff)

    def __init__(self, request, **kwargs):
        super().__init__(request)
        if request.io_mode == "w":
            return
        if not sniff(request.firstbytes):
            raise InitializationError("not a .rawimg file")  # "not mine": try another plugin
        fh = request.get_file()
        fh.seek(8)
        try:
            (n,) = struct.unpack("<I", fh.read(4))
            header = json.loads(fh.read(n))
            self._shape = tuple(header["shape"])
            self._dtype = np.dtype(header["dtype"])
        except (struct.error, ValueError, KeyError, TypeError) as exc:
            raise CorruptFileError(f"{request.filename}: damaged header: {exc}") from exc
        self._offset = 12 + n

    def read(self, *, index=None, **kwargs):
        self._check_open()
        if index not in (None, 0, -1, Ellipsis):
            raise self._index_error(index, 1)
        fh = self._request.get_file()
        fh.seek(self._offset)
        count = int(np.prod(self._shape))
        data = fh.read(count * self._dtype.itemsize)
        if len(data) != count * self._dtype.itemsize:
            raise CorruptFileError(f"{self._request.filename}: the pixel data is truncated")
        image = np.frombuffer(data, self._dtype).reshape(self._shape).copy()
        return image[None] if index is Ellipsis else image

    def iter(self, **kwargs):
        yield self.read(**kwargs)

    def properties(self, *, index=None, **kwargs):
        self._check_open()
        if index not in (None, 0, -1, Ellipsis):
            raise self._index_error(index, 1)
        if index is Ellipsis:
            return ImageProperties((1,) + self._shape, self._dtype, n_images=1, is_batch=True)
        return ImageProperties(self._shape, self._dtype)

    def metadata(self, *, index=None, exclude_applied=True, **kwargs):
        self._check_open()
        return {"shape": self._shape, "dtype": str(self._dtype)}

    def write(self, ndimage, *, is_batch=None, **kwargs):
        self._check_open()
        self._request.check_writable()
        image = np.ascontiguousarray(ndimage)
        header = json.dumps({"shape": image.shape, "dtype": image.dtype.str}).encode()
        fh = self._request.get_file()
        fh.write(MAGIC + struct.pack("<I", len(header)) + header + image.tobytes())
