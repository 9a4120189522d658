"""The imageio v3 ndimage API: ``import imgio.v3 as iio``.

Every function opens the resource through :func:`imopen`, which chooses the
plugin (see :mod:`imgio.core.imopen`), and closes it before returning.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Iterator

import numpy as np

from . import lazy as _lazy  # registers PluginV3.to_dask's implementation (no dask import)
from .core.imopen import imopen
from .core.plugin import ImageProperties

__all__ = ["imopen", "imread", "imwrite", "imiter", "improps", "immeta", "ImageProperties"]


def imread(uri, *, index: Any = None, plugin=None, extension=None, format_hint=None,
           max_bytes: int | None = None, **kwargs) -> np.ndarray:
    """Read an ndimage.

    Parameters
    ----------
    uri : str, pathlib.Path, bytes or file object
        The resource; a folder or glob reads a stack of slice files.
    index : int, ``...`` or None
        ``None``: the format's natural ndimage; an int: that ndimage;
        ``...``: every ndimage stacked along a new first axis.
    plugin, extension, format_hint
        Choose the plugin (see :func:`imopen`).
    max_bytes : int or bool, optional
        Refuse (with :class:`~imgio.errors.ImageTooLargeError`, before allocating)
        an image larger than this; ``None`` uses :mod:`imgio.core.limits`'
        default (physical memory), ``False`` disables the check.
    **kwargs
        Passed to the plugin's ``read``.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import numpy as np, imgio.v3 as iio
    >>> data = iio.imwrite("<bytes>", np.zeros((4, 8), np.uint8), extension=".tif")
    >>> iio.imread(data).shape
    (4, 8)
    """
    if index is not None:
        kwargs["index"] = index
    with imopen(uri, "r", plugin=plugin, extension=extension, format_hint=format_hint,
                **_remote(kwargs)) as f:
        if not kwargs.get("mmap") and kwargs.get("out") is None:
            _guard_size(f, index, kwargs, max_bytes)
        if max_bytes is not None:  # the plugins' own guards (tiles, frames ...) use it too
            kwargs["max_bytes"] = max_bytes
        return np.asarray(f.read(**kwargs))


#: read keywords that also select what ``properties`` describes
_SELECTION_KEYWORDS = ("page", "key", "series", "dataset", "level", "setup", "mode", "pilmode",
                       "as_gray", "rotate", "exifrotate",
                       # the trust opt-ins change what a file is allowed to declare
                       "allow_partial", "allow_external")


def _guard_size(plugin, index, kwargs, limit) -> None:
    """Refuse, before any allocation, a read larger than the size limit."""
    if not kwargs or (len(kwargs) == 1 and "index" in kwargs):  # the common call
        plugin.check_read_size(index=index, limit=limit)
        return
    selection = {k: kwargs[k] for k in _SELECTION_KEYWORDS if k in kwargs}
    plugin.check_read_size(index=index, limit=limit, **selection)


def imiter(uri, *, plugin=None, extension=None, format_hint=None, **kwargs) -> Iterator[np.ndarray]:
    """Yield the ndimages of a resource one at a time.

    A generator: the file is opened on the first ``next()`` and closed when the
    iteration ends (or the generator is closed).

    Parameters
    ----------
    uri : str, pathlib.Path, bytes or file object
        The resource.
    plugin : str or PluginV3 subclass, optional
        Use this plugin (registry name, any case, or class) and no other.
    extension : str, optional
        Treat the resource as having this extension (``".tif"``).
    format_hint : str, optional
        Older spelling of ``extension`` (``DeprecationWarning``, as in imageio).
    **kwargs
        Passed to the plugin's ``iter``.
    """
    with imopen(uri, "r", plugin=plugin, extension=extension, format_hint=format_hint,
                **_remote(kwargs)) as f:
        for image in f.iter(**kwargs):
            yield np.asarray(image)


def imwrite(uri, image, *, plugin=None, extension=None, format_hint=None, **kwargs):
    """Write an ndimage, or a list of ndimages, to ``uri``.

    Parameters
    ----------
    uri : str, pathlib.Path, file object or "<bytes>"
        Where to write; ``"<bytes>"`` returns the encoded bytes.
    image : array_like, list of array_like or dask.array.Array
        An ndimage, or several (a list, or a batch with ``is_batch=True``).
    plugin : str or PluginV3 subclass, optional
        Use this plugin (registry name, any case, or class) and no other.
    extension : str, optional
        Treat the resource as having this extension (``".tif"``).
    format_hint : str, optional
        Older spelling of ``extension`` (``DeprecationWarning``, as in imageio).
    **kwargs
        Passed to the plugin's ``write``.

    Returns
    -------
    bytes or None
        The encoded bytes when ``uri`` is ``"<bytes>"``.

    Notes
    -----
    Writes to a path are atomic: the data goes into a temporary file beside the
    target, renamed over it only when the write succeeded.  A dask array is
    written block row by block row (:func:`imgio.lazy.write_dask`).
    """
    if extension is None and plugin is None and kwargs.get("format") is not None \
            and _has_no_extension(uri):
        # imageio's Pillow plugin: the format given to write() names the file type
        warnings.warn("Can't determine file format to write as. You _must_ set `format` "
                      "during write or the call will fail. Use `extension` to suppress "
                      "this warning. ", UserWarning, stacklevel=2)
        extension = "." + str(kwargs["format"]).lower()
    if _is_dask(image):  # never imports dask unless given a dask array
        return _lazy.write_dask(uri, image, plugin=plugin, extension=extension,
                          format_hint=format_hint, **kwargs)
    with imopen(uri, "w", plugin=plugin, extension=extension, format_hint=format_hint,
                **_remote(kwargs)) as f:
        f.write(image, **kwargs)
    return f.request.finish()


def _remote(kwargs: dict) -> dict:
    """``storage_options=`` (for fsspec URLs) taken out of a call's keywords, for imopen."""
    if "storage_options" in kwargs:
        return {"storage_options": kwargs.pop("storage_options")}
    return {}


def _has_no_extension(uri) -> bool:
    """Whether a write target has no file name extension ("<bytes>", a bare stream)."""
    name = uri if isinstance(uri, str) else getattr(uri, "name", None)
    if name == "<bytes>":
        return True
    return isinstance(name, str) and not os.path.splitext(name)[1] or (
        name is None and hasattr(uri, "write"))


def _is_dask(image) -> bool:
    return type(image).__module__.startswith("dask") and hasattr(image, "compute")


def improps(uri, *, index: Any = None, plugin=None, extension=None, **kwargs) -> ImageProperties:
    """Shape, dtype and physical properties of an ndimage, without reading pixels.

    ``improps(uri, **kw).shape == imread(uri, **kw).shape`` for the same arguments.

    Parameters
    ----------
    uri : str, pathlib.Path, bytes or file object
        The resource.
    index : int, ``...`` or None
        As for :func:`imread`.
    plugin : str or PluginV3 subclass, optional
        Use this plugin (registry name, any case, or class) and no other.
    extension : str, optional
        Treat the resource as having this extension (``".tif"``).
    **kwargs
        Passed to the plugin's ``properties`` (the selection keywords of ``read``).
    """
    with imopen(uri, "r", plugin=plugin, extension=extension, **_remote(kwargs)) as f:
        return f.properties(index=index, **kwargs)


def immeta(uri, *, index: Any = None, plugin=None, extension=None, exclude_applied: bool = True,
           **kwargs) -> dict:
    """Format-specific metadata of an ndimage (``index=None``: file-level metadata).

    Parameters
    ----------
    uri : str, pathlib.Path, bytes or file object
        The resource.
    index : int, ``...`` or None
        Which ndimage; ``None``: the file-level metadata.
    plugin : str or PluginV3 subclass, optional
        Use this plugin (registry name, any case, or class) and no other.
    extension : str, optional
        Treat the resource as having this extension (``".tif"``).
    exclude_applied : bool
        Leave out what reading already applied (imageio's keyword).
    **kwargs
        Passed to the plugin's ``metadata``.
    """
    with imopen(uri, "r", plugin=plugin, extension=extension, **_remote(kwargs)) as f:
        return f.metadata(index=index, exclude_applied=exclude_applied, **kwargs)
