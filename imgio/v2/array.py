"""``Array``: an ndarray that carries the metadata of the image it was read from.

Every v2 read (``imread``, ``mimread``, ``Reader.get_data`` ...) returns an
:class:`Array`.  It behaves as a plain :class:`numpy.ndarray` everywhere, plus
a ``.meta`` dict:

* ``Array(a, meta)`` is a *view* of ``a`` (no pixel copy); ``meta`` is copied,
  so changing the dict you passed does not change the array's.  Without
  ``meta`` the ``.meta`` of ``a`` (if it has one) is reused.
* ``.meta`` cannot be replaced (``a.meta = {}`` fails); change it in place.
* slices, views, ``copy()``, ``astype`` and ufuncs whose result has the same
  shape keep the metadata; results of another shape (``a.sum(axis=0)``) are
  plain ndarrays and 0-d results are numpy scalars, because the metadata of
  an image does not describe them.
* ``np.asarray(a)`` is a plain ndarray; ``np.asanyarray(a)`` keeps the Array.
* pickling keeps ``.meta`` (imageio's ``Array`` loses it).
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Array", "Image", "Dict", "DeferredMeta"]


class Dict(dict):
    """A dict whose keys can also be read as attributes (``meta.fps``).

    imageio's metadata dicts allow attribute access; scripts that use it keep
    working.  Keys that clash with dict methods (``meta.keys``) are the methods.
    """

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(
                f"the metadata has no key {key!r} (keys: {', '.join(map(str, self))})"
            ) from None

    def __setattr__(self, key: str, value: Any) -> None:
        if hasattr(dict, key):
            raise AttributeError(f"{key!r} is a dict method; use meta[{key!r}] = ... instead")
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __reduce__(self):
        return (Dict, (dict(self),))


def _copy_meta(meta: Any) -> Dict:
    """A copy two levels deep: the dict and any dict, list or set value in it."""
    out = Dict()
    for key, value in meta.items():
        if isinstance(value, (dict, list, set)):
            value = value.copy()
        out[key] = value
    return out


class DeferredMeta:
    """Metadata computed on first access to ``.meta`` (then cached and shared).

    Reading an image's metadata can cost more than reading its pixels (a TIFF's
    tags need tifffile's full parse, while the fast path reads a simple file in
    a fraction of that), so v2 reads from a file on disk attach a loader that
    reopens the file only if ``.meta`` is used.
    """

    __slots__ = ("_loader", "_value")

    def __init__(self, loader):
        self._loader = loader
        self._value: dict | None = None

    def resolve(self) -> dict:
        if self._value is None:
            self._value = dict(self._loader())
            self._loader = None
        return self._value


class Array(np.ndarray):
    """A numpy array with a ``meta`` dict (imageio's ``imageio.core.Array``).

    Parameters
    ----------
    array : numpy.ndarray
        The pixels; the result is a view of it.
    meta : dict, optional
        The metadata (copied).  Default: ``array.meta`` if it has one, else ``{}``.

    Raises
    ------
    ValueError
        If ``array`` is not an ndarray or ``meta`` is not a dict.
    """

    def __new__(cls, array, meta: dict | None = None):
        if not isinstance(array, np.ndarray):
            raise ValueError(
                f"Array expects a numpy array, got {type(array).__name__}; "
                "use Array(np.asarray(data), meta).")
        if meta is None:
            meta = getattr(array, "meta", None)
            meta = {} if meta is None else meta
        if isinstance(meta, DeferredMeta):
            obj = array.view(cls)
            obj._meta = meta
            return obj
        if not isinstance(meta, dict):
            raise ValueError(f"Array expects the metadata to be a dict, got {type(meta).__name__}.")
        obj = array.view(cls)
        obj._meta = _copy_meta(meta)
        return obj

    def __array_finalize__(self, obj) -> None:
        # views, slices, copies and ufunc outputs of an Array inherit its metadata
        meta = getattr(obj, "_meta", None)
        if isinstance(meta, DeferredMeta) and meta._value is None:
            self._meta = meta  # still unread: share the loader, copy on first access
        elif isinstance(meta, DeferredMeta):
            self._meta = _copy_meta(meta._value)
        else:
            self._meta = Dict() if meta is None else _copy_meta(meta)

    def __array_wrap__(self, out_arr, context=None, return_scalar=False):
        if out_arr.ndim == 0 or return_scalar:
            return out_arr[()]
        if out_arr.shape != self.shape:
            # a reduction or broadcast: the metadata no longer describes the result
            return out_arr.view(np.ndarray)
        return super().__array_wrap__(out_arr, context, return_scalar)

    @property
    def meta(self) -> Dict:
        """The image's metadata (read-only attribute; change the dict in place)."""
        if isinstance(self._meta, DeferredMeta):
            self._meta = _copy_meta(self._meta.resolve())
        return self._meta

    # pickling: ndarray's state plus the metadata
    def __reduce__(self):
        constructor, args, state = super().__reduce__()
        return constructor, args, (state, dict(self.meta))

    def __reduce_ex__(self, protocol):
        # ndarray's protocol-5 path would drop the metadata; use ours
        return self.__reduce__()

    def __setstate__(self, state) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            array_state, meta = state
            super().__setstate__(array_state)
            self._meta = _copy_meta(meta)
        else:  # a plain ndarray state
            super().__setstate__(state)
            self._meta = Dict()


#: imageio's other name for :class:`Array`
Image = Array
