"""LazyArray: a NumPy-like ndimage on disk, read only where indexed."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core.plugin import ImageProperties
from ..errors import BackendMissingError, FormatError
from .sources import PluginSource, StackSource

__all__ = ["LazyArray", "from_plugin", "import_dask_array", "NATIVE_CHUNK_BYTES"]

#: upper size of a merged "native" chunk
NATIVE_CHUNK_BYTES = 64 * 2**20


def import_dask_array():
    """``dask.array``, or :class:`BackendMissingError` with the pip command."""
    try:
        import dask.array as da
    except ImportError as exc:
        err = BackendMissingError("dask", "dask", "dask")
        err.args = ("imgio's dask support (to_dask, write_dask, writing dask arrays) "
                    "needs the `dask` package, which is not installed. Install it with "
                    "`pip install imgio[dask]`.",)
        raise err from exc
    return da


def from_plugin(plugin, index: Any = None, **selection) -> "LazyArray":
    """A :class:`LazyArray` of ``plugin.read(index=index, **selection)``.

    Uses only the plugin contract: ``properties`` for shape, dtype and axes,
    ``chunks`` for the native blocks, and (in each process that reads)
    ``read_region`` through a plugin reopened by uri and name.

    Parameters
    ----------
    plugin : PluginV3
        An open plugin on a resource that can be reopened by uri (a path, folder or glob).
    index : int, ``...`` or None
        As for :func:`imgio.v3.imread`.
    **selection
        Selection keywords of the plugin (``series=``, ``dataset=`` ...).
    """
    plugin._check_open()
    request = plugin.request
    url = getattr(request, "url", None)  # an fsspec URL: reopened by URL in each task
    where = {"storage_options": request.storage_options} if url else {}
    if url is None and (request.kind not in ("path", "dir", "glob") or not request.path):
        raise FormatError(
            f"Cannot read {request.filename} lazily: lazy reading and to_dask reopen the "
            "file in each task, so they need a file on disk, not bytes or a file object. "
            "Use imread(), or save the data to a file first.")
    try:
        props = plugin.properties(index=index, **selection)
    except NotImplementedError:  # a plugin without properties: one read tells
        data = plugin.read(index=index, **selection)
        props = ImageProperties(shape=data.shape, dtype=data.dtype)
    native = plugin.chunks(index=index, **selection)
    if native is None and index is Ellipsis and props.is_batch and props.n_images:
        # a batch the plugin reads only whole: stack its images, each read on its own
        children = []
        for i in range(props.n_images):
            p = plugin.properties(index=i, **selection)
            children.append(PluginSource(url or request.path, plugin.name, i, selection,
                                         p.shape, p.dtype,
                                         native=plugin.chunks(index=i, **selection), **where))
        source = StackSource(children)
        if source.shape == tuple(props.shape):
            return LazyArray(source, axes=props.axes)
    source = PluginSource(url or request.path, plugin.name, index, selection, props.shape,
                          props.dtype, axes=props.axes, native=native, **where)
    return LazyArray(source, axes=props.axes)


def _normalize_key(key: Any, shape: tuple) -> tuple[tuple, tuple]:
    """``(box, post, out_shape)``: read ``box`` then index it with ``post``."""
    if not isinstance(key, tuple):
        key = (key,)
    n_ell = sum(k is Ellipsis for k in key)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    n_real = sum(k is not None and k is not Ellipsis for k in key)
    if n_real > len(shape):
        raise IndexError(f"too many indices for array: array is {len(shape)}-dimensional, "
                         f"but {n_real} were indexed")
    expanded = []
    for k in key:
        if k is Ellipsis:
            expanded.extend([slice(None)] * (len(shape) - n_real))
        else:
            expanded.append(k)
    expanded.extend([slice(None)] * (len(shape) - sum(k is not None for k in expanded)))
    box, post = [], []
    n_arrays = 0
    axis = 0
    for k in expanded:
        if k is None:
            post.append(None)
            continue
        n = shape[axis]
        if isinstance(k, (slice,)):
            start, stop, step = k.indices(n)
            length = len(range(start, stop, step))
            if length == 0:
                box.append((0, 0))
                post.append(slice(None))
            elif step > 0:
                box.append((start, start + (length - 1) * step + 1))
                post.append(slice(None, None, step) if step != 1 else slice(None))
            else:
                lo = start + (length - 1) * step
                box.append((lo, start + 1))
                post.append(slice(None, None, step))
        elif isinstance(k, (bool, np.bool_)):
            raise IndexError("a boolean scalar is not a valid LazyArray index")
        elif isinstance(k, (int, np.integer)) or (isinstance(k, np.ndarray) and k.ndim == 0
                                                  and k.dtype.kind in "iu"):
            i = int(k)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}")
            i %= n
            box.append((i, i + 1))
            post.append(0)
        else:
            arr = np.asarray(k)
            if arr.dtype == bool:
                if arr.shape != (n,):
                    raise IndexError(f"boolean index of shape {arr.shape} does not match "
                                     f"axis {axis} of size {n}")
                arr = np.flatnonzero(arr)
            if arr.ndim != 1 or arr.dtype.kind not in "iu":
                raise IndexError("LazyArray supports integers, slices, `...`, None and "
                                 f"1-D integer or boolean arrays as indices, not {k!r}")
            n_arrays += 1
            if n_arrays > 1:
                raise IndexError("LazyArray supports one array index at a time; index the "
                                 "result again for more")
            if arr.size and (arr.min() < -n or arr.max() >= n):
                raise IndexError(f"index out of bounds for axis {axis} with size {n}")
            arr = arr % n if arr.size else arr.astype(np.intp)
            if arr.size:
                lo, hi = int(arr.min()), int(arr.max()) + 1
                box.append((lo, hi))
                post.append(arr - lo)
            else:
                box.append((0, 0))
                post.append(arr)
        axis += 1
    return tuple(box), tuple(post)


class LazyArray:
    """A NumPy-like ndimage on disk, read only where indexed.

    Made by :func:`lazy`.  It holds a path and a selection, never an open
    file, so it pickles (and ships to dask workers) cheaply.

    Attributes
    ----------
    shape, dtype, ndim, size, nbytes
        As for the array ``imread`` returns with the same arguments.
    axes : str or None
        One letter per axis when the format records it.
    chunks : tuple of int
        The merged native block shape (what ``to_dask(chunks="native")`` uses).

    Examples
    --------
    >>> import numpy as np, imgio, imgio.v3 as iio
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "s.tif")
    >>> iio.imwrite(path, np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    >>> arr = imgio.lazy(path)
    >>> arr.shape, arr[1, 2].tolist()
    ((2, 3, 4), [20, 21, 22, 23])
    """

    __array_priority__ = 10

    def __init__(self, source, axes: str | None = None):
        self._source = source
        self.axes = axes if axes is not None else source.axes
        if self.axes is not None and len(self.axes) != len(source.shape):
            self.axes = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self._source.shape

    @property
    def dtype(self) -> np.dtype:
        return self._source.dtype

    @property
    def ndim(self) -> int:
        return len(self._source.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def path(self) -> str:
        return self._source.path

    @property
    def native_blocks(self) -> tuple[int, ...]:
        """The file's own block shape (one TIFF page, one HDF5 chunk ...)."""
        return tuple(min(max(b, 1), s) if s else 1 for b, s in zip(self._source.native, self.shape))

    @property
    def chunks(self) -> tuple[int, ...]:
        return _merge_native(self.shape, self.native_blocks, self.dtype.itemsize,
                             _native_target())

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, key) -> np.ndarray:
        box, post = _normalize_key(key, self.shape)
        if any(b <= a for a, b in box):
            data = np.empty(tuple(b - a for a, b in box), self.dtype)
        else:
            data = self._source.read_box(box)
        if any(not (isinstance(p, slice) and p == slice(None)) for p in post):
            data = data[post]
            if not isinstance(data, np.ndarray):  # a 0-d result comes back as a scalar
                data = np.asarray(data)
        return data

    def __array__(self, dtype=None, copy=None):
        data = self[...]
        if dtype is not None and np.dtype(dtype) != data.dtype:
            data = data.astype(dtype)
        return data

    def read(self) -> np.ndarray:
        """Every pixel, as a NumPy array."""
        return self[...]

    def to_dask(self, chunks: Any = "native"):
        """This array as a ``dask.array.Array`` (see :mod:`imgio.lazy` for ``chunks``).

        Parameters
        ----------
        chunks : "native", "auto", tuple, int or dict
            See :mod:`imgio.lazy`; ``{"Z": 8}`` chunks by axis letter.
        """
        return dask_from_lazy(self, chunks)

    def __dask_tokenize__(self):
        return ("imgio.LazyArray", self._source.token())

    def __repr__(self) -> str:
        axes = f", axes={self.axes!r}" if self.axes else ""
        return (f"<imgio.LazyArray shape={self.shape}, dtype={self.dtype}{axes}, "
                f"{_human(self.nbytes)}, chunks={self.chunks} from {self._source.describe()}>")


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# -- chunk plans ------------------------------------------------------------------------
def _native_target() -> int:
    """:data:`NATIVE_CHUNK_BYTES`, or dask's ``array.chunk-size`` when smaller."""
    target = NATIVE_CHUNK_BYTES
    try:
        import dask
        from dask.utils import parse_bytes
        configured = dask.config.get("array.chunk-size", None)
        if configured is not None:
            target = min(target, parse_bytes(configured))
    except ImportError:
        pass
    return target


def _merge_native(shape, block, itemsize, target) -> tuple[int, ...]:
    """Merge native blocks, innermost axis first, up to ``target`` bytes."""
    block = [min(max(int(b), 1), int(s)) if s else 1 for b, s in zip(block, shape)]
    nbytes = math.prod(block) * itemsize
    for ax in range(len(shape) - 1, -1, -1):
        if block[ax] >= shape[ax]:
            continue
        per = nbytes // block[ax]
        if per * shape[ax] <= target:
            block[ax] = shape[ax]
            nbytes = per * shape[ax]
            continue
        k = max(1, target // max(per * block[ax], 1))
        block[ax] = min(shape[ax], k * block[ax])
        break
    return tuple(block)


#: tifffile's letters for an axis of unknown meaning (a plain stack's first axis)
_GENERIC_AXES = "QI"


def _plan_chunks(larr, chunks: Any) -> tuple:
    da = import_dask_array()
    normalize = da.core.normalize_chunks
    shape, dtype = larr.shape, larr.dtype
    native = larr.native_blocks
    merged = larr.chunks
    if chunks is None or (isinstance(chunks, str) and chunks == "native"):
        return normalize(merged, shape, dtype=dtype)
    if isinstance(chunks, str):
        if chunks != "auto":
            raise ValueError(f"chunks must be 'native', 'auto', a tuple or a dict, not {chunks!r}")
        return normalize("auto", shape, dtype=dtype, previous_chunks=native)
    if isinstance(chunks, dict):
        by_axis: dict[int, Any] = {}
        for key, value in chunks.items():
            if isinstance(key, str):
                axes = larr.axes or ""
                pos = axes.find(key) if len(key) == 1 else -1
                if pos < 0:
                    pos = axes.upper().find(key.upper()) if len(key) == 1 else -1
                generic = [i for i, a in enumerate(axes) if a in _GENERIC_AXES]
                if pos < 0 and len(key) == 1 and key.upper() in "ZTI" and len(generic) == 1:
                    pos = generic[0]  # a plain stack: its one unnamed axis
                if pos < 0:
                    raise ValueError(
                        f"chunks names axis {key!r}, but the axes of {larr.path} are "
                        + (repr(larr.axes) if larr.axes else "unknown; use axis numbers") + ".")
                by_axis[pos] = value
            else:
                ax = int(key)
                if not -len(shape) <= ax < len(shape):
                    raise ValueError(f"chunks names axis {key}, but the array has {len(shape)} axes.")
                by_axis[ax % len(shape)] = value
        chunks = tuple(by_axis.get(i, merged[i]) for i in range(len(shape)))
    return normalize(chunks, shape, dtype=dtype, previous_chunks=native)


def dask_from_lazy(larr, chunks: Any):
    """``larr`` as a ``dask.array.Array`` with the chunks ``chunks`` asks for."""
    da = import_dask_array()
    from dask.base import tokenize
    plan = _plan_chunks(larr, chunks)
    name = "imgio-read-" + tokenize(larr, plan)
    return da.from_array(larr, chunks=plan, name=name, lock=False, asarray=False,
                         fancy=False, meta=np.empty((0,) * larr.ndim, larr.dtype))
