"""Settings of the napari plugin, importable without napari (and without a cycle)."""

#: images larger than this (bytes, per resolution level) open as lazy dask arrays;
#: ``IMGIO_NAPARI_LAZY_BYTES`` in the environment overrides it
LAZY_BYTES = 256 * 2**20
