"""imageio v2's ``Reader`` and ``Writer`` objects, on top of v3 plugins.

:func:`imgio.v2.get_reader` and :func:`imgio.v2.get_writer` return these.
They wrap one open plugin (see :mod:`imgio.core.plugin`) and give it the
classic interface: ``get_data(i)``, ``get_next_data()``, ``iter_data()``,
``get_meta_data()``, ``append_data(im, meta)``, ``set_meta_data(meta)``.

Differences from imageio's wrappers (all listed in ``docs/migration.md``):

* ``get_next_data()`` on a fresh reader returns image 0 (imageio skips it);
* ``get_meta_data()`` returns the file-level metadata for every format
  (imageio raises ``TypeError`` on TIFF);
* ``.format`` works for every reader and writer (imageio raises ``TypeError``
  for formats served by v3 plugins);
* use after ``close()`` raises ``RuntimeError`` naming the file, for every
  format.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterator

import numpy as np

from ..errors import ClosedError, ShapeError
from ..core import registry
from .array import Array
from ..core.plugin import PluginV3, _is_write_failure, counting_images

__all__ = ["Format", "Reader", "Writer", "format_of"]

#: v2 image-mode letters and what they mean
MODE_NAMES = {
    "i": "a single image",
    "I": "multiple images",
    "v": "a single volume",
    "V": "multiple volumes",
    "?": "any kind of image",
}

#: metadata keys a plugin can store when writing, passed as ``write`` keywords
#: (only these leave ``append_data(im, meta)``/``set_meta_data`` for the file)
WRITABLE_META: dict[str, tuple[str, ...]] = {
    "tifffile": ("description", "resolution", "resolutionunit", "software",
                 "datetime", "metadata", "extratags"),
}

#: plugins that store every metadata key (as an attribute), passed as ``metadata=``
META_AS_ATTRIBUTES = ("hdf5",)


def _attribute_value(value: Any) -> bool:
    """Whether ``value`` can be stored as an HDF5 attribute."""
    if isinstance(value, (str, bytes, bool, int, float, np.number, np.ndarray)):
        return True
    if isinstance(value, (list, tuple)) and value:
        return all(isinstance(v, (int, float, np.number)) for v in value) or \
            all(isinstance(v, str) for v in value)
    return False


#: descriptions backends generate themselves (copying them would describe the wrong shape)
_GENERATED_DESCRIPTIONS = ('{"shape"', "ImageJ=", "<?xml", "<OME")


#: imageio's v2 format names for the registry entries that imageio's legacy formats
#: mirror (``get_reader("x.tif").format.name == "TIFF"``, as with ``format="TIFF"``)
IMAGEIO_FORMAT_NAMES = {"tifffile": "TIFF", "npz": "NPZ"}


class Format:
    """What v2 calls a *format*: a registry entry seen through imageio's eyes.

    Attributes
    ----------
    name : str
        imageio's format name where it has one (``"TIFF"``, ``"NPZ"``), else
        the registry (plugin) name, e.g. ``"pillow"``.
    description : str
        One line.
    extensions : list of str
        Extensions with their dot.
    modes : str
        The v2 image modes it supports (subset of ``"iIvV"``).
    aliases : tuple of str
        Other names ``format=`` accepts (imageio's legacy names, e.g. ``"TIFF"``).
    """

    def __init__(self, spec: registry.PluginSpec):
        self._spec = spec
        # imageio's name for the format serving these files ("TIFF", "NPZ")
        self.name = IMAGEIO_FORMAT_NAMES.get(spec.name, spec.name)
        self.description = spec.description
        self.extensions = list(spec.extensions)
        self.modes = spec.modes
        self.aliases = tuple(spec.aliases)

    @property
    def spec(self) -> registry.PluginSpec:
        """The underlying :class:`~imgio.core.registry.PluginSpec`."""
        return self._spec

    def backend_installed(self) -> bool:
        """Whether the third-party package this format needs is importable."""
        return self._spec.backend_installed()

    def can_read_mode(self, mode: str) -> bool:
        return mode == "?" or mode in self.modes

    @property
    def doc(self) -> str:
        """Name, description, and the plugin's documentation (keywords ...)."""
        head = f"{self.name} - {self.description}"
        lines = [head, "",
                 f"    Extensions: {' '.join(self.extensions)}",
                 f"    Modes: {self.modes}  (i image, I images, v volume, V volumes)"]
        if self.aliases:
            lines.append(f"    Also known as: {', '.join(self.aliases)}")
        if not self.backend_installed():
            hint = (f"pip install imgio[{self._spec.extra}]" if self._spec.extra
                    else f"pip install {self._spec.backend}")
            lines += ["", f"    The backend `{self._spec.backend}` is not installed ({hint})."]
            return "\n".join(lines) + "\n"
        import importlib
        import inspect
        module = importlib.import_module(self._spec.module)
        cls = getattr(module, self._spec.class_name, None)
        for text in (inspect.getdoc(cls) if cls is not None else None,
                     inspect.getdoc(module)):
            if text:
                lines += [""] + ["    " + line if line else "" for line in text.splitlines()]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"<Format {self.name} - {self.description}>"

    def __str__(self) -> str:
        return self.doc


def format_of(plugin: PluginV3) -> Format:
    """The :class:`Format` of an open plugin (from the registry when it is registered)."""
    try:
        return Format(registry.get_spec(plugin.name))
    except ValueError:  # a plugin class passed directly, not in the registry
        spec = registry.PluginSpec(
            name=plugin.name or type(plugin).__name__, module=type(plugin).__module__,
            class_name=type(plugin).__name__, extensions=tuple(plugin.extensions),
            modes=plugin.modes, description=plugin.description or type(plugin).__name__,
            backend="numpy")
        return Format(spec)


def check_mode(plugin: PluginV3, mode: str, io_mode: str) -> None:
    """Raise ``ValueError`` (and close ``plugin``) if its format cannot do ``mode``."""
    fmt = format_of(plugin)
    if fmt.can_read_mode(mode):
        return
    plugin._close(success=False)
    verb = "read" if io_mode == "r" else "write"
    raise ValueError(
        f"The {fmt.name} format cannot {verb} {MODE_NAMES[mode]} (mode {mode!r}) "
        f"for {plugin.request.filename}; it supports mode(s) "
        + ", ".join(f"{m!r} ({MODE_NAMES[m]})" for m in fmt.modes) + ".")


def _plugin_meta(plugin: PluginV3, index: Any, **kwargs) -> dict:
    """The plugin's metadata for ``index`` as a dict; ``{}`` if it has none."""
    try:
        meta = plugin.metadata(index=index, exclude_applied=False, **kwargs)
    except NotImplementedError:
        return {}
    return dict(meta) if meta is not None else {}


class _Base:
    _what = "Reader"

    def __init__(self, plugin: PluginV3, **kwargs):
        self._plugin = plugin
        self._kwargs = kwargs
        self._closed = False

    @property
    def request(self):
        """The :class:`~imgio.core.request.Request` (``.filename``, ``.extension``, ``.mode``)."""
        return self._plugin.request

    @property
    def format(self) -> Format:
        """The format (``.name``, ``.description``, ``.extensions``, ``.modes``)."""
        return format_of(self._plugin)

    @property
    def plugin(self) -> PluginV3:
        """The v3 plugin doing the work."""
        return self._plugin

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(
                f"I/O operation on closed {self._what}: {self.request.filename}.")

    def __enter__(self):
        self._check_open()
        return self

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (f"<imgio v2 {self._what} ({self.format.name}), {state}, "
                f"{self.request.filename}>")


class Reader(_Base):
    """Reads the images of one resource one at a time (imageio's ``Reader``).

    Keywords given to :func:`imgio.v2.get_reader` are passed to every read.
    Images come back as :class:`~imgio.v2.array.Array` with ``.meta``.
    """

    _what = "Reader"

    def __init__(self, plugin: PluginV3, **kwargs):
        super().__init__(plugin, **kwargs)
        self._last_index = -1
        self._length: float | int | None = None

    # -- length ------------------------------------------------------------------
    def get_length(self) -> int | float:
        """Number of images: 0 for a file holding only metadata, ``inf`` when unknown."""
        self._check_open()
        if self._length is None:
            self._length = self._count()
        return self._length

    def _count(self) -> int | float:
        with counting_images():  # imgio's bookkeeping: no warnings meant for improps
            return self._count_images()

    def _count_images(self) -> int | float:
        from ..v3 import _SELECTION_KEYWORDS
        # the keywords that choose what is read (dataset=, level= ...) choose what is counted
        sel = {k: v for k, v in self._kwargs.items() if k in _SELECTION_KEYWORDS
               and k not in ("page", "key", "mode", "pilmode", "as_gray", "rotate", "exifrotate")}
        try:
            n = self._plugin.properties(index=..., **sel).n_images
        except (ShapeError, ValueError, NotImplementedError):
            # images of different shapes cannot be stacked: count them one by one
            n = 0
            while True:
                try:
                    self._plugin.properties(index=n, **sel)
                except IndexError:
                    return n
                except NotImplementedError:
                    return float("inf")
                n += 1
        return float("inf") if n is None else int(n)

    def __len__(self) -> int:
        n = self.get_length()
        if n == float("inf"):
            # imageio returns sys.maxsize here, which makes list(reader) try to
            # allocate that many slots; a TypeError lets list() grow as it goes
            raise TypeError(f"{self.request.filename} is a stream of unknown length; "
                            "get_length() returns inf.")
        return int(n)

    # -- data ----------------------------------------------------------------------
    def _normalize(self, index: Any) -> int:
        try:
            i = int(index)
        except (TypeError, ValueError):
            raise TypeError(f"the image index must be an int, not {type(index).__name__}") from None
        if i != index or isinstance(index, bool):
            raise TypeError(f"the image index must be an int, got {index!r}")
        if i < 0:
            # imageio's readers take no negative index (its legacy formats raise
            # "Index out of range while reading ..."): count from 0
            raise IndexError(
                f"{self.request.filename}: image index {index} is out of range: a v2 "
                "Reader counts images from 0 (use get_length() - 1 for the last one).")
        n = self.get_length()
        if n != float("inf") and i >= n:
            raise IndexError(
                f"{self.request.filename}: image index {index} is out of range "
                f"(the file holds {n} image{'s' if n != 1 else ''}).")
        return i

    def get_data(self, index: int, **kwargs) -> Array:
        """Image ``index`` (counted from 0, as in imageio) with its metadata.

        Raises
        ------
        IndexError
            If ``index`` is out of range.
        """
        self._check_open()
        i = self._normalize(index)
        self._last_index = i
        options = {**self._kwargs, **kwargs}
        image = self._plugin.read(index=i, **options)
        meta_kw = {"page": options["page"]} if "page" in options else {}
        return Array(np.asarray(image), _plugin_meta(self._plugin, i, **meta_kw))

    def get_next_data(self, **kwargs) -> Array:
        """The image after the last one read; on a fresh reader, image 0."""
        return self.get_data(self._last_index + 1, **kwargs)

    def set_image_index(self, index: int, **kwargs) -> None:
        """Make :meth:`get_next_data` return image ``index`` next."""
        self._check_open()
        n = self.get_length()
        self._last_index = min(max(int(index) - 1, -1), n)

    def get_meta_data(self, index: int | None = None) -> dict:
        """Metadata of image ``index``, or of the whole file for ``None``."""
        self._check_open()
        if index is not None:
            index = self._normalize(index)
        return _plugin_meta(self._plugin, index)

    def iter_data(self) -> Iterator[Array]:
        """Yield every image, as ``Array`` with its metadata."""
        self._check_open()
        i = 0
        try:
            for image in self._plugin.iter(**self._kwargs):
                self._check_open()
                self._last_index = i
                yield Array(np.asarray(image), _plugin_meta(self._plugin, i))
                i += 1
        except IndexError:
            if self.get_length() != float("inf"):
                raise  # an unknown-length stream ends with IndexError

    def __iter__(self) -> Iterator[Array]:
        return self.iter_data()

    # -- closing ----------------------------------------------------------------------
    def close(self) -> None:
        """Release the file.  Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._plugin.close()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


class Writer(_Base):
    """Writes images one at a time (imageio's ``Writer``).

    Keywords given to :func:`imgio.v2.get_writer` are passed to every
    ``append`` of the plugin, so a TIFF grows one page at a time.
    """

    _what = "Writer"

    def __init__(self, plugin: PluginV3, **kwargs):
        super().__init__(plugin, **kwargs)
        self._meta: dict = {}
        self._result: bytes | None = None
        # plugins encode "<bytes>" in one write call, so frames wait here until close
        self._buffer: list | None = [] if plugin.request.kind == "return_bytes" else None

    def _meta_kwargs(self, meta: dict, explicit: dict) -> dict:
        if self._plugin.name in META_AS_ATTRIBUTES:
            # every key that an HDF5 attribute can hold becomes one
            attrs = {str(k): v for k, v in meta.items() if _attribute_value(v)}
            dropped = sorted(str(k) for k in explicit if str(k) not in attrs)
            if dropped:
                warnings.warn(
                    f"The {self.format.name} format cannot store the metadata key(s) "
                    f"{', '.join(dropped)}: their values are not numbers, strings or "
                    "arrays.", UserWarning, stacklevel=3)
            return {"metadata": attrs} if attrs else {}
        keys = WRITABLE_META.get(self._plugin.name, ())
        out = {k: v for k, v in meta.items() if k in keys and k not in self._kwargs}
        dropped = sorted(str(k) for k in explicit if k not in keys)
        if dropped:
            warnings.warn(
                f"The {self.format.name} format cannot store the metadata key(s) "
                f"{', '.join(dropped)}; they are ignored"
                + (f" (it stores: {', '.join(keys)})." if keys else "."),
                UserWarning, stacklevel=3)
        return out

    def append_data(self, im, meta: dict | None = None) -> None:
        """Add an image.

        Parameters
        ----------
        im : array_like
            The image (an ``Array``'s ``.meta`` is used as its metadata).
        meta : dict, optional
            Metadata updating ``im.meta`` and the writer's :meth:`set_meta_data`.
            Keys the format can store (TIFF: description, resolution, software,
            datetime ...) go to the file; for other keys a ``UserWarning`` says
            they are ignored.
        """
        self._check_open()
        if meta is not None and not isinstance(meta, dict):
            raise ValueError(f"meta must be a dict, not {type(meta).__name__}.")
        implicit = dict(getattr(im, "meta", None) or {})
        desc = implicit.get("description")
        if isinstance(desc, str) and (not desc or desc.startswith(_GENERATED_DESCRIPTIONS)):
            # written by the backend to describe the source's layout, not by the user
            del implicit["description"]
        total = {**implicit, **self._meta, **(meta or {})}
        frame = np.asarray(im)
        kwargs = {**self._kwargs, **self._meta_kwargs(total, meta or {})}
        if self._buffer is not None:
            self._buffer.append((frame, kwargs))
            return
        try:
            if getattr(self._plugin, "v2_append_writes_images", False):
                # one image per call, as mimwrite writes them and as imageio does
                self._plugin.write(frame, **kwargs)
            else:
                self._plugin.append(frame, **kwargs)
        except OSError as exc:  # a full disk, a read-only target: name the target
            if _is_write_failure(self._plugin.request, exc):
                raise self._plugin.request.write_error(exc) from exc
            raise

    def set_meta_data(self, meta: dict) -> None:
        """Metadata for the whole file, used by every following :meth:`append_data`."""
        self._check_open()
        if not isinstance(meta, dict):
            raise ValueError(f"meta must be a dict, not {type(meta).__name__}.")
        self._meta_kwargs(meta, meta)  # warn now about keys the format cannot store
        self._meta.update(meta)

    def close(self) -> bytes | None:
        """Finish and commit the file; returns the bytes for the ``"<bytes>"`` target.

        Safe to call twice.
        """
        return self._finish(success=True)

    def _finish(self, success: bool) -> bytes | None:
        if self._closed:
            return self._result
        self._closed = True
        try:
            if success and self._buffer:
                self._flush_buffer()
        except BaseException:
            self._plugin._close(success=False)
            raise
        self._plugin._close(success=success)
        self._result = self._plugin.request.finish(success=success)
        return self._result

    def _flush_buffer(self) -> None:
        frames = [frame for frame, _ in self._buffer]
        options = [kw for _, kw in self._buffer]
        self._buffer = None
        common = options[0]
        if any(kw != common for kw in options[1:]):
            warnings.warn(
                "Frames written to '<bytes>' are encoded together, so per-frame metadata "
                "cannot differ; the writer's keywords and set_meta_data() are used.",
                UserWarning, stacklevel=4)
            common = {**self._kwargs, **self._meta_kwargs(self._meta, {})}
        if len(frames) == 1:
            self._plugin.write(frames[0], **common)
        else:
            self._plugin.write(frames, is_batch=True, **common)

    def __exit__(self, exc_type, exc, tb) -> None:
        # an exception inside the ``with`` discards the partial file
        self._finish(success=exc_type is None)
