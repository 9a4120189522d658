"""The plugin contract every format implements, and :class:`ImageProperties`.

A plugin wraps one :class:`~imgio.core.request.Request`.  Its constructor
raises :class:`~imgio.errors.InitializationError` when the resource is not in
its format (plugin choice then tries the next candidate) and
:class:`~imgio.errors.CorruptFileError` when it is, but is damaged.

``index`` follows imageio v3 everywhere:

* ``None``  -- the plugin's natural ndimage (for most formats the first one;
  for animations and HDF5 series the whole stack);
* ``int``   -- that ndimage (negative counts from the end);
* ``...``   -- every ndimage stacked along a new first axis.
"""
from __future__ import annotations

import dataclasses
import functools
import _thread
import threading
from typing import Any, Iterator

import numpy as np

from ..errors import ClosedError
from .request import Request

__all__ = ["ImageProperties", "PluginV3"]


@dataclasses.dataclass
class ImageProperties:
    """What an ndimage looks like, known without decoding its pixels.

    Attributes
    ----------
    shape : tuple of int
        Shape of the array ``imread`` returns for the same arguments.
    dtype : numpy.dtype
        Its dtype.
    n_images : int or None
        Number of images in a batch (``index=...``), or ``None``.
    is_batch : bool
        Whether the first axis enumerates images.
    spacing : tuple of float or None
        Physical size of one step along each axis, in ``units``.  (imageio
        reports the TIFF resolution in pixels per unit here; imgio reports the
        pixel size, see the migration guide.)
    axes : str or None
        One letter per axis, e.g. ``"ZYX"``, when the format records it.
    units : tuple of str or None
        Unit of each axis' spacing, e.g. ``("um", "um", "um")``.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    n_images: int | None = None
    is_batch: bool = False
    spacing: tuple | None = None
    axes: str | None = None
    units: tuple | None = None

    def __post_init__(self):
        self.shape = tuple(int(s) for s in self.shape)
        self.dtype = np.dtype(self.dtype)


#: the C re-entrant lock that ``threading.RLock()`` returns, without its wrapper call
_RLock = getattr(_thread, "RLock", None) or threading.RLock

#: plugin methods that run under the plugin's lock (see :class:`PluginV3`)
_LOCKED_METHODS = ("read", "write", "append", "properties", "metadata")


def _locked(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


def _is_write_failure(request: Request, exc: BaseException) -> bool:
    """An OS error of a write (not imgio's own errors, not a missing parent folder)."""
    from ..errors import ImgioError
    return (request.io_mode == "w" and isinstance(exc, OSError)
            and not isinstance(exc, (ImgioError, FileNotFoundError)))


class PluginV3:
    """Base class of imgio plugins (the imageio v3 plugin contract).

    Subclasses set the class attributes below and override the methods.

    Thread safety: one plugin object may be shared between threads.  Its
    ``read``, ``write``, ``append``, ``properties`` and ``metadata`` calls are
    serialized by a per-object re-entrant lock (applied automatically to the
    methods subclasses define), so backends that keep a file position never
    see interleaved calls; ``iter`` takes the lock for each item it reads.
    For parallel reads of one file, open one reader per thread.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_imgio_guarded", False):
            # a constructor that refuses the resource must not, when the half-built
            # object is collected, finish the request the next candidate plugin uses
            @functools.wraps(init)
            def guarded_init(self, *args, __init=init, **kw):
                try:
                    __init(self, *args, **kw)
                except BaseException:
                    self._closed = True
                    raise
            guarded_init._imgio_guarded = True
            cls.__init__ = guarded_init
        for name in _LOCKED_METHODS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_imgio_locked", False):
                wrapped = _locked(method)
                wrapped._imgio_locked = True
                setattr(cls, name, wrapped)

    #: registry name, e.g. ``"tifffile"``
    name: str = ""
    #: one-line description
    description: str = ""
    #: extensions with their dot, lower case
    extensions: tuple[str, ...] = ()
    #: v2 image modes the format can hold
    modes: str = "iIvV"

    def __init__(self, request: Request) -> None:
        self._request = request
        self._closed = False
        self._lock = _RLock()

    # -- contract ----------------------------------------------------------------
    @property
    def request(self) -> Request:
        """The :class:`~imgio.core.request.Request` this plugin works on."""
        return self._request

    def read(self, *, index: Any = None, **kwargs) -> np.ndarray:
        """Read an ndimage (see the module docstring for ``index``)."""
        raise NotImplementedError(f"The {self.name} plugin cannot read.")

    def iter(self, **kwargs) -> Iterator[np.ndarray]:
        """Yield the ndimages of the resource one by one."""
        raise NotImplementedError(f"The {self.name} plugin cannot iterate.")

    def write(self, ndimage, *, is_batch: bool | None = None, **kwargs) -> bytes | None:
        """Write an ndimage or a batch; returns bytes for the ``"<bytes>"`` target."""
        raise NotImplementedError(f"The {self.name} plugin cannot write.")

    def append(self, frame, **kwargs) -> None:
        """Add one frame to a growing ndimage (streaming writes, v2 ``append_data``).

        Plugins that can grow one series on disk (TIFF pages, HDF5 resizable
        datasets) override this so a long acquisition never sits in memory.  The
        default writes the frame as a new ndimage.
        """
        self.write(frame, **kwargs)

    def to_dask(self, *, index: Any = None, chunks: Any = "native"):
        """This resource as a lazy ``dask.array.Array`` (see :mod:`imgio.lazyio`)."""
        from ..lazyio import plugin_to_dask
        return plugin_to_dask(self, index=index, chunks=chunks)

    def check_read_size(self, *, index: Any = None, limit=None, **selection) -> None:
        """Raise :class:`~imgio.errors.ImageTooLargeError` if a read would pass ``limit``.

        Called by :func:`imgio.v3.imread` before reading, with the keywords that
        select the image (``page``, ``dataset`` ...).  The default asks
        :meth:`properties`; plugins with a cheaper answer override it.
        """
        from .limits import check_nbytes
        try:
            props = self.properties(index=index, **selection)
        except NotImplementedError:
            return
        check_nbytes(props.shape, props.dtype, self._request.filename, limit)

    def properties(self, *, index: Any = None, **kwargs) -> ImageProperties:
        """Shape, dtype and physical metadata without decoding pixels."""
        raise NotImplementedError(f"The {self.name} plugin has no properties().")

    def metadata(self, *, index: Any = None, exclude_applied: bool = True, **kwargs) -> dict:
        """Format-specific metadata as a dict."""
        raise NotImplementedError(f"The {self.name} plugin has no metadata().")

    def close(self) -> None:
        """Release the resource and commit a write.  Safe to call twice."""
        self._close(success=True)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- helpers for subclasses ----------------------------------------------------
    def _close(self, success: bool) -> bytes | None:
        lock = getattr(self, "_lock", None)
        if lock is None:  # a constructor failed before the base __init__ ran
            return self._request.finish(success=False)
        with lock:
            return self._close_locked(success)

    def _close_locked(self, success: bool) -> bytes | None:
        if self._closed:
            return self._request._result
        self._closed = True
        try:
            self._close_backend()
        except BaseException as exc:
            try:
                self._request.finish(success=False)
            except OSError:
                pass  # the first error is the one to report
            if _is_write_failure(self._request, exc):
                raise self._request.write_error(exc) from exc
            raise
        try:
            return self._request.finish(success=success)
        except OSError as exc:  # flushing or renaming the temporary file
            if _is_write_failure(self._request, exc):
                raise self._request.write_error(exc) from exc
            raise

    def _close_backend(self) -> None:
        """Close the backend's handles (override); called once by :meth:`close`."""

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"I/O operation on the closed {self.name} plugin for "
                             f"{self._request.filename}.")

    def _volume_index(self, index: Any) -> Any:
        """``index`` for formats whose natural ndimage is a stack of frames.

        v2's ``volread``/``mvolread`` (modes ``v``/``V``) read ``index=0``, which
        for such formats (HDF5 series, folders of slices) would be one frame:
        there it means the whole volume, ``None``.
        """
        if (isinstance(index, (int, np.integer)) and not isinstance(index, bool)
                and index == 0 and self._request.image_mode in "vV"):
            return None
        return index

    def _index_error(self, index: Any, n: int, what: str = "image") -> IndexError:
        return IndexError(
            f"{self._request.filename}: {what} index {index} is out of range "
            f"(the file holds {n} {what}{'s' if n != 1 else ''})."
        )

    def _normalize_index(self, index: int, n: int, what: str = "image") -> int:
        """``index`` as a non-negative int in ``range(n)``, or an IndexError."""
        try:
            i = int(index)
        except (TypeError, ValueError):
            raise TypeError(
                f"index must be None, an int or `...`, not {type(index).__name__}") from None
        if i != index:
            raise TypeError(f"index must be an integer, got {index!r}")
        if not -n <= i < n:
            raise self._index_error(index, n, what)
        return i % n

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self._close(success=exc_type is None)
        if exc is not None and _is_write_failure(self._request, exc):
            # a full disk, a read-only target ...: name the target, not the temp file
            raise self._request.write_error(exc) from exc

    def __del__(self):
        # an abandoned plugin releases its file but never commits a write: only
        # an explicit close() or a clean ``with`` exit does (a writer whose loop
        # raised must not replace a good file with a partial one); the
        # temporary file is discarded.  Failures here must not escape into the GC
        try:
            if not getattr(self, "_closed", True):
                self._close(success=False)
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<imgio {self.name} plugin, {state}, {self._request.filename}>"
