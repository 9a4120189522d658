"""Zarr and OME-Zarr (NGFF 0.4 and 0.5) through zarr-python 3.

Reading
-------
A store is a local folder (``x.ome.zarr``) or an fsspec URL (``s3://``,
``http(s)://``, ``memory://`` ..., with ``storage_options=``).  What is read:

* an OME-Zarr image (NGFF 0.5 on Zarr v3, ``attrs["ome"]["multiscales"]``, or
  NGFF 0.4 on Zarr v2, ``attrs["multiscales"]``): the array of resolution
  ``level`` (0, full resolution, by default; negative counts from the coarsest),
  with ``improps`` axes (``"TCZYX"``...), spacing (the ``scale`` transformations
  of that level, times the multiscale-wide one) and units (``"um"``, ``"s"``...);
* a bioformats2raw layout (a root with series ``0``, ``1`` ... groups): series
  ``0`` unless ``dataset=`` names another;
* a plain Zarr array, or the array (or multiscale sub-group) of a plain group
  that ``dataset="path/in/group"`` names; a group holding one array needs none.

``index`` follows the HDF5 plugin: ``None`` or ``...`` the whole array, an int
one frame along the first axis; ``iter()`` yields those frames.
:meth:`ZarrPlugin.chunks` and :meth:`ZarrPlugin.read_region` read only the
chunks a box touches (zarr reads inner chunks of shards by byte range).

Writing
-------
``write(ndimage, axes=None, spacing=None, units=None, levels=None,
downsample="mean", chunks=None, shards=None, compression="zstd",
compression_level=None, name=None, ome=True)`` writes NGFF 0.5 (Zarr v3): a
pyramid of ``levels`` arrays ``0, 1, ...`` whose spatial axes are halved per
level (``"mean"`` of 2 x 2 (x 2) blocks, or ``"stride"``), with ``scale``
transformations that double accordingly.  ``ome=False`` writes one plain Zarr
v3 array.  ``append(frame, ...)`` (v2 ``get_writer().append_data``, and
``imwrite`` of a dask array) grows the first axis one shard row at a time; every
pyramid level is built blockwise from the shard tiles as they are written, so the
volume is never held in memory (peak: one preallocated shard row per level, each
coarser one 2^d times smaller, plus the shard zarr is encoding).

Local writes go into a temporary folder beside the target, renamed into place
when the write succeeded.  Remote writes (object stores cannot rename) go
straight to the store, each level an array of its own, and the root
``zarr.json`` (the group and its multiscales metadata) is written last: until it
is, the store is no Zarr group and no image; a failed write removes what it wrote.

Layout
------
Importing this package is light (no zarr): the registry loads the plugin class
from :mod:`imgio.plugins.zarr.plugin`; :mod:`~imgio.plugins.zarr.ngff` holds the
NGFF metadata (axes, units, multiscales parsing), :mod:`~imgio.plugins.zarr.write`
the writing (layout, codecs, pyramid, streaming levels, remote write order).
"""
