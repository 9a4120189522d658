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

import contextlib
import contextvars
import dataclasses
import functools
import _thread
import threading
from typing import Any, Iterator

import numpy as np

from ..errors import ClosedError, DTypeError, ShapeError
from .limits import check_nbytes
from .registry import apply_metadata, builtin_spec_for
from .request import Request

__all__ = ["ImageProperties", "PluginV3", "ARRAY_ADAPTERS", "counting", "counting_images"]

#: adapters the layers above register themselves in (``"dask"``: ``adapter(plugin, index=,
#: chunks=, **selection)`` for :meth:`PluginV3.to_dask`, registered by :mod:`imgio.lazy`,
#: which :mod:`imgio.v3` imports); the core neither imports nor names them
ARRAY_ADAPTERS: dict[str, Any] = {}

#: true while imgio itself (not the user) asks ``properties`` how many images there are,
#: e.g. v2's ``len(reader)`` inside ``get_data``: plugins then leave out the warnings that
#: imageio gives only for the user's own ``improps``/``properties`` call
counting: contextvars.ContextVar[bool] = contextvars.ContextVar("imgio_counting",
                                                                 default=False)


@contextlib.contextmanager
def counting_images():
    """Mark the ``properties`` calls inside as imgio's own bookkeeping (see :data:`counting`)."""
    token = counting.set(True)
    try:
        yield
    finally:
        counting.reset(token)


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
_LOCKED_METHODS = ("read", "write", "append", "properties", "metadata", "chunks",
                   "read_region")


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

    Subclasses override the methods.  The class attributes below (``name``,
    ``description``, ``extensions``, ``modes``) come from the plugin's registry
    entry (:class:`~imgio.core.registry.PluginSpec`), its one source: a built-in
    plugin gets them when its class is defined, any plugin when its spec loads
    it.  A class passed directly as ``plugin=`` (not registered) sets them itself.

    Thread safety: one plugin object may be shared between threads.  Its
    ``read``, ``write``, ``append``, ``properties`` and ``metadata`` calls are
    serialized by a per-object re-entrant lock (applied automatically to the
    methods subclasses define), so backends that keep a file position never
    see interleaved calls; ``iter`` takes the lock for each item it reads.
    For parallel reads of one file, open one reader per thread.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        spec = builtin_spec_for(cls.__module__, cls.__qualname__)
        if spec is not None:  # its registry entry is the one source of its metadata
            apply_metadata(spec, cls)
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
            # the first definition in the MRO: a plugin composed of mixins (the TIFF
            # plugin's region reads, metadata and writer) is locked like one defined
            # in a single class body; PluginV3's own defaults stay as they are
            owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
            if owner is None or owner is PluginV3 or owner is object:
                continue
            method = owner.__dict__[name]
            if not getattr(method, "_imgio_locked", False):
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

    # -- region reads (the contract imgio.lazy and imgio.to_dask build on) ----------
    def chunks(self, *, index: Any = None, **selection) -> tuple[int, ...] | None:
        """Native chunk shape of the ndimage ``read(index=index, **selection)`` returns.

        One int per axis (an axis read whole has its full length): TIFF pages,
        strips or tiles, HDF5 chunks, rows of an ``.npy`` file.  ``None`` when the
        format can only be read whole (the default: formats without region reads).
        """
        try:
            self.properties(index=index, **selection)  # refuses what read() refuses
        except NotImplementedError:
            pass
        return None

    def read_region(self, box, *, index: Any = None, out=None, **selection) -> np.ndarray:
        """``read(index=index, **selection)[box]``, reading only what the chunks that box touches need.

        ``box``: a tuple of ``slice(start, stop)`` with step 1 and
        ``0 <= start <= stop <= n``, one per axis.  ``out``: an optional
        C-contiguous array of the box's shape and the ndimage's dtype, filled and
        returned.  Raises :class:`~imgio.errors.CorruptFileError` for damage and
        :class:`~imgio.errors.ImageTooLargeError` past the size guard
        (:mod:`imgio.core.limits`).

        The default serves formats without region reads: it checks the size guard
        for the whole image, reads it and slices.
        """
        try:
            props = self.properties(index=index, **selection)
        except NotImplementedError:  # a plugin without properties: what read() gives
            data = self.read(index=index, **selection)
            return self._region_result(data[self._check_box(box, data.shape)], out, data.dtype)
        box = self._check_box(box, props.shape)
        check_nbytes(props.shape, props.dtype, self._request.filename)
        data = self.read(index=index, **selection)
        return self._region_result(data[box], out, props.dtype)

    def to_dask(self, *, index: Any = None, chunks: Any = "native", **selection):
        """This resource as a lazy ``dask.array.Array`` (see :mod:`imgio.lazy`).

        The implementation is :func:`imgio.lazy.plugin_to_dask`: the lazy layer
        registers it in :data:`ARRAY_ADAPTERS` when imported, and
        :mod:`imgio.v3` (whose ``imopen`` hands plugins to users) imports that
        layer.  The contract depends on nothing above it.

        Parameters
        ----------
        index : int, ``...`` or None
            As for :meth:`read`.
        chunks : "native", "auto", tuple, int or dict
            See :mod:`imgio.lazy`.
        **selection
            Selection keywords of the plugin (``series=``, ``dataset=`` ...).

        Returns
        -------
        dask.array.Array

        Raises
        ------
        RuntimeError
            If the lazy layer was never imported (only possible when the core is
            used without :mod:`imgio.v3` or :mod:`imgio.lazy`).
        """
        adapter = ARRAY_ADAPTERS.get("dask")
        if adapter is None:
            raise RuntimeError("to_dask() is provided by imgio.lazy: `import imgio.lazy` (or "
                               "use imgio.v3.imopen, which does) first.")
        return adapter(self, index=index, chunks=chunks, **selection)

    # helpers for read_region implementations
    def _check_box(self, box, shape) -> tuple[slice, ...]:
        """``box`` validated against ``shape``: a tuple of step-1 slices within bounds."""
        if not isinstance(box, tuple):
            box = tuple(box)
        shape = tuple(shape)
        if len(box) != len(shape):
            raise ValueError(f"{self._request.filename}: a box needs one slice per axis of "
                             f"the shape {shape}, got {len(box)}.")
        for axis, (b, n) in enumerate(zip(box, shape)):
            if (not isinstance(b, slice) or b.step not in (None, 1) or b.start is None
                    or b.stop is None or not 0 <= b.start <= b.stop <= n):
                raise ValueError(f"{self._request.filename}: box entry {b!r} for axis {axis} "
                                 f"(length {n}) must be slice(start, stop) with "
                                 "0 <= start <= stop <= length.")
        return tuple(slice(int(b.start), int(b.stop)) for b in box)

    def _region_out(self, box, dtype, out=None) -> np.ndarray:
        """The array a region read fills: ``out`` (checked) or a new one (size-guarded)."""
        shape = tuple(b.stop - b.start for b in box)
        dtype = np.dtype(dtype)
        if out is None:
            check_nbytes(shape, dtype, self._request.filename)
            return np.empty(shape, dtype)
        if not isinstance(out, np.ndarray) or out.shape != shape:
            raise ShapeError(f"out has shape {getattr(out, 'shape', None)}, but the box of "
                             f"{self._request.filename} has shape {shape}")
        if out.dtype != dtype:
            raise DTypeError(f"out has dtype {out.dtype}, but {self._request.filename} "
                             f"is {dtype}")
        if not (out.flags.c_contiguous and out.flags.writeable):
            raise ValueError("out must be a writeable C-contiguous array")
        return out

    def _region_result(self, region: np.ndarray, out, dtype) -> np.ndarray:
        if out is None:
            return np.ascontiguousarray(region)
        target = self._region_out(tuple(slice(0, n) for n in region.shape), dtype, out)
        np.copyto(target, region)
        return target

    def check_read_size(self, *, index: Any = None, limit=None, **selection) -> None:
        """Raise :class:`~imgio.errors.ImageTooLargeError` if a read would pass ``limit``.

        Called by :func:`imgio.v3.imread` before reading, with the keywords that
        select the image (``page``, ``dataset`` ...).  The default asks
        :meth:`properties`; plugins with a cheaper answer override it.
        """
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
        from ..errors import SelectionError
        plural = what if what.endswith("s") else what + "s"  # "series" stays "series"
        has = f"{plural} 0-{n - 1}" if n > 1 else f"only {what} 0" if n == 1 else f"no {plural}"
        return SelectionError(
            f"{self._request.filename}: {what} index {index} is out of range "
            f"({what} {index} requested; the file has {has})."
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
