"""Writing HDF5: the crash-safe file sink, dataset layout and attributes."""
from __future__ import annotations

import errno
import io
import json
import os

import h5py
import numpy as np

from ...errors import DTypeError, ShapeError

#: micrometre spellings (for ``element_size_um``)
_MICRONS = {"um", "µm", "μm", "micron", "microns", "micrometer", "micrometre"}

class _WriteSink(io.RawIOBase):
    """The file HDF5 writes through (h5py's ``fileobj`` driver), safe on a full disk.

    With HDF5's own POSIX driver a failed write (``ENOSPC``, ``EFBIG``) leaves
    dirty metadata that HDF5 retries to flush when its objects are freed, and
    the process dies with SIGSEGV.  Here the first failure is recorded and
    every later write is accepted and dropped, so HDF5 closes cleanly; the
    plugin then raises :class:`~imgio.errors.WriteError` naming the target and
    the temporary file is removed.
    """

    def __init__(self, raw) -> None:
        super().__init__()
        self.raw = raw
        self.failed: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.raw.seek(pos, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def readinto(self, buf) -> int:
        return self.raw.readinto(buf)

    def write(self, buf) -> int:
        n = memoryview(buf).nbytes
        if self.failed is None:
            try:
                done = 0
                view = memoryview(buf).cast("B")
                while done < n:
                    got = self.raw.write(view[done:])
                    if not got:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    done += got
                return n
            except OSError as exc:
                self.failed = exc
        return n

    def truncate(self, size: int | None = None) -> int:
        if self.failed is None:
            try:
                return self.raw.truncate(size)
            except OSError as exc:
                self.failed = exc
        return self.raw.tell() if size is None else size

    def flush(self) -> None:
        if self.failed is None and not self.raw.closed:
            try:
                self.raw.flush()
            except OSError as exc:
                self.failed = exc

    def close(self) -> None:
        if not self.raw.closed:
            try:
                self.raw.close()
            except OSError as exc:
                self.failed = self.failed or exc
        super().close()

