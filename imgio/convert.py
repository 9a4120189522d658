"""Conversion to OME-Zarr, streamed on one machine or spread over a dask cluster.

:func:`convert` reads the source (TIFF, ImageJ/OME-TIFF, folders of slices,
HDF5 incl. BigDataViewer/Imaris, any format imgio reads) lazily, one shard row
at a time, and writes an NGFF 0.5 pyramid, keeping axes, spacing and units.

* ``scheduler=None``: in this process; level 0 is read and written one shard
  tile at a time, each tile downsampled straight into the next level's shard-row
  buffer (the volume is never in memory: one shard tile of level 0 being
  encoded, plus one shard row of each level above, 2^d times smaller each).
* ``scheduler="tcp://host:8786"`` (or a ``distributed.Client``): on a dask
  cluster.  The driver creates the store and its metadata; then, level by
  level, every task reads one shard row (level 0 from the source, level ``k``
  from level ``k - 1`` in the store) and writes it.  Tasks write disjoint shard
  rows, so no shard is written twice.  The workers must see the source path
  and the destination (a shared file system, or an ``s3://`` store).

A local destination is written into a temporary folder renamed into place at
the end; a remote one (object stores cannot rename) gets its root ``zarr.json``
(group and multiscales metadata) last, and a failed conversion removes what it
wrote, so a half-written store is never a readable image.

The result is the same bits either way.  Other destinations are
:func:`imgio.cli.convert`'s (frame by frame, one machine).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import numpy as np

__all__ = ["convert", "ngff_axes"]

_ZARR_SUFFIX = ".zarr"


def _is_zarr(dst: Any) -> bool:
    return str(dst).lower().rstrip("/").endswith(_ZARR_SUFFIX)


def ngff_axes(axes: str | None, shape) -> tuple[str, tuple[int, ...]]:
    """NGFF axes (``"TCZYX"`` order) for a source's axes, and the permutation of the
    source axes that puts them in that order (``tifffile``'s ``I``/``Q`` page axes become
    ``Z``, or ``T`` when there is a ``Z``; samples ``S`` become channels ``C``).

    Parameters
    ----------
    axes : str or None
        The source's axis letters (tifffile's, ``improps(...).axes``).
    shape : tuple of int
        The source's shape.
    """
    ndim = len(shape)
    if axes is None or len(axes) != ndim:
        from .plugins.zarr.ngff import _DEFAULT_AXES
        axes = _DEFAULT_AXES.get(ndim)
        if axes is None:
            raise ValueError(f"cannot map {ndim} axes without names onto NGFF; pass axes=")
        return axes, tuple(range(ndim))
    letters = []
    for a in axes.upper():
        if a == "S":
            a = "C"
        elif a in "IQPRE" or a not in "TCZYX":
            a = "Z" if "Z" not in axes.upper() and "Z" not in letters else "T"
        if a in letters:
            raise ValueError(f"cannot map the axes {axes!r} onto NGFF (two {a} axes)")
        letters.append(a)
    order = sorted(range(ndim), key=lambda i: "TCZYX".index(letters[i]))
    return "".join(letters[i] for i in order), tuple(order)


def _open_source(src, read_kw):
    import imgio
    lazy = imgio.lazy
    lazy = lazy if callable(lazy) else lazy.lazy  # the function, or the package that has it
    return lazy(src, **read_kw)


def _read_rows(src, read_kw, perm, shape_out, a: int, b: int, arr=None) -> np.ndarray:
    """Output rows ``a:b`` (axis 0 of the NGFF order) read from the source (``arr``: the
    source already opened lazily)."""
    if arr is None:
        arr = _open_source(src, read_kw)
    box = [slice(None)] * len(perm)
    box[perm[0]] = slice(a, b)
    data = np.asarray(arr[tuple(box)])
    return np.ascontiguousarray(np.transpose(data, perm)) if perm != tuple(range(len(perm))) \
        else data


def _tile_reader(source, perm, a: int, b: int):
    """``read_tile(box)``: output rows ``a:b`` within ``box`` (NGFF order) from the source."""
    identity = perm == tuple(range(len(perm)))

    def read(rows: slice, box):
        src_box = [None] * len(perm)
        for i, sl in enumerate((rows,) + tuple(box)):
            src_box[perm[i]] = sl
        data = np.asarray(source[tuple(src_box)])
        return data if identity else np.transpose(data, perm)

    def read_tile(box):
        plane = int(np.prod([s.stop - s.start for s in box])) * source.dtype.itemsize
        step = max(1, _SLAB_BYTES // max(1, plane))
        if step >= b - a:
            return np.ascontiguousarray(read(slice(a, b), box))
        # in slabs of a few MiB: a memory-mapped source maps in only a slab's pages at once
        out = np.empty((b - a,) + tuple(s.stop - s.start for s in box), source.dtype)
        for r in range(a, b, step):
            out[r - a:min(r + step, b) - a] = read(slice(r, min(r + step, b)), box)
        return out
    return read_tile


#: bytes read from the source at once within a shard tile
_SLAB_BYTES = 8 << 20


def _store(root: str, storage_options, read_only=False):
    from .core.remote import is_remote_url as _is_remote_url
    if _is_remote_url(root):
        from zarr.storage import FsspecStore
        return FsspecStore.from_url(root, storage_options=dict(storage_options or {}),
                                    read_only=read_only)
    from zarr.storage import LocalStore
    return LocalStore(root, read_only=read_only)


def _open_level(root, storage_options, k: int):
    import zarr
    return zarr.open_array(store=_store(root, storage_options), path=str(k), mode="r+")


def _task_level0(src, read_kw, perm, shape_out, root, storage_options, a, b) -> int:
    from .plugins.zarr.write import write_rows
    arr = _open_level(root, storage_options, 0)
    write_rows(arr, a, _read_rows(src, read_kw, perm, shape_out, a, b))
    return b - a


def _task_level(root, storage_options, k, factors, method, a, b) -> int:
    from .plugins.zarr.write import downsample, write_rows
    prev = _open_level(root, storage_options, k - 1)
    arr = _open_level(root, storage_options, k)
    f0 = factors[0]
    rows = prev[a * f0:min(b * f0, prev.shape[0])]
    write_rows(arr, a, downsample(np.asarray(rows), factors, method))
    return b - a


def _client(scheduler):
    try:
        import distributed
    except ImportError as exc:
        from .errors import BackendMissingError
        raise BackendMissingError("convert", "distributed", "dask") from exc
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    return distributed.Client(scheduler), True


def convert(src: Any, dst: Any, *, scheduler: Any = None, progress: Any = False,
            levels: int | None = None, downsample: str = "mean", chunks=None, shards=None,
            compression: str | None = "zstd", dataset: str | None = None,
            plugin: str | None = None, storage_options: dict | None = None,
            **read_kw) -> dict:
    """Convert ``src`` into the OME-Zarr ``dst`` (NGFF 0.5 pyramid), streaming by shard rows.

    Parameters
    ----------
    storage_options : dict, optional
        fsspec options for a remote ``dst`` (credentials, ``endpoint_url`` ...).
    src : str or pathlib.Path
        Anything :func:`imgio.lazy` opens (file, folder, glob).
    dst : str
        A ``.zarr`` folder or URL (``s3://bucket/x.ome.zarr``, with ``storage_options``).
    scheduler : str or distributed.Client, optional
        Run on this dask.distributed cluster (address or client).
    progress : bool or callable
        ``True`` for a bar, or ``progress(done, total)`` per shard row written.
    levels, downsample, chunks, shards, compression
        As for the zarr plugin's ``write``.
    dataset, plugin, **read_kw
        Select what to read (``dataset=`` for HDF5, ``series=`` ...).

    Returns
    -------
    dict
        ``shape``, ``dtype``, ``axes``, ``levels`` (shapes) and ``tasks`` run.
    """
    src = os.fspath(src) if isinstance(src, os.PathLike) else src
    dst = os.fspath(dst) if isinstance(dst, os.PathLike) else dst
    if not _is_zarr(dst):
        raise ValueError(f"imgio.convert.convert writes OME-Zarr (a .zarr destination), not "
                         f"{dst}; imgio.cli.convert copies between other formats frame by frame.")
    from . import v3
    from .core.remote import is_remote_url as _is_remote_url
    from .plugins.zarr.write import LevelWriter, create_ngff
    from .progress import make_progress
    if dataset is not None:
        read_kw["dataset"] = dataset
    if plugin is not None:
        read_kw["plugin"] = plugin
    props_kw = {k: v for k, v in read_kw.items() if k != "plugin"}
    props = v3.improps(src, plugin=plugin, **props_kw)
    source = _open_source(src, read_kw)
    shape_src = tuple(source.shape)
    axes, perm = ngff_axes(props.axes, shape_src)
    shape = tuple(shape_src[i] for i in perm)
    spacing = None if props.spacing is None else tuple(
        1.0 if props.spacing[i] is None else props.spacing[i] for i in perm)
    units = None if props.units is None else tuple(props.units[i] for i in perm)
    remote = _is_remote_url(dst)
    target = dst.rstrip("/")
    if remote:
        root = target
    else:
        directory, name = os.path.split(os.path.abspath(target))
        if not os.path.isdir(directory):
            from .errors import dir_not_found
            raise dir_not_found(directory)
        root = tempfile.mkdtemp(prefix=f".{name}.", suffix=".imgio-partial", dir=directory)
    ok = False
    try:
        made = create_ngff(
            _store(root, storage_options), shape, props.dtype, axes=axes, spacing=spacing,
            units=units, levels=levels, chunks=chunks, shards=shards, compression=compression,
            method=downsample, where=str(dst), root_last=remote)
        arrays, factors = made[:2]
        units_per_level = [int((a.shards or a.chunks)[0]) for a in arrays]
        plan = [[(a, min(a + u, arr.shape[0])) for a in range(0, arr.shape[0], u)]
                for arr, u in zip(arrays, units_per_level)]
        total = sum(len(p) for p in plan)
        with make_progress(progress, total, f"convert {os.path.basename(str(src))}",
                           unit="row") as report:
            done = 0
            if scheduler is None:
                writer = None
                for arr in reversed(arrays):
                    writer = LevelWriter(arr, factors, downsample, writer, grow=False)
                step = writer.unit  # whole shard rows, an even number of frames
                for a in range(0, shape[0], step):  # one shard tile read and written at a time
                    b = min(a + step, shape[0])
                    writer.write_row_by_tiles(b - a, _tile_reader(source, perm, a, b))
                    done += -(-(b - a) // units_per_level[0])
                    report(min(done, len(plan[0])))
                writer.finish()
                done = total
                report(done)
            else:
                import distributed
                client, own = _client(scheduler)
                try:
                    for k, rows in enumerate(plan):
                        if k == 0:
                            futures = [client.submit(_task_level0, src, read_kw, perm, shape,
                                                     root, storage_options, a, b, pure=False)
                                       for a, b in rows]
                        else:
                            futures = [client.submit(_task_level, root, storage_options, k,
                                                     factors, downsample, a, b, pure=False)
                                       for a, b in rows]
                        for fut in distributed.as_completed(futures):
                            fut.result()
                            done += 1
                            report(done)
                finally:
                    if own:
                        client.close()
        if remote:
            made[2]()  # the root zarr.json last: only now is the store an image
        ok = True
    finally:
        if remote and not ok:
            from .plugins.zarr.write import discard_store
            discard_store(_store(root, storage_options))
        if not remote:
            if ok:
                old = None
                if os.path.exists(target):
                    old = target + ".imgio-old"
                    os.replace(target, old)
                os.replace(root, target)
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
            else:
                shutil.rmtree(root, ignore_errors=True)
    return {"shape": shape, "dtype": str(props.dtype), "axes": axes,
            "levels": [tuple(a.shape) for a in arrays], "tasks": total,
            "frames": shape[0], "streamed": True}
