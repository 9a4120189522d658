"""The plugin registry: what each plugin reads and writes, and how to recognise it.

Entries name their module as a string and are imported only when tried, so
``import imgio`` loads none of tifffile, h5py, PIL or dask.  Signatures are
checked on the first bytes of a file without importing anything.

The order of :data:`PLUGINS` is the priority order when several plugins
claim the same extension or signature.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from typing import Callable, Optional

from ..errors import BackendMissingError
from ..plugins.hdf5 import sniff as _hdf5
from ..plugins.tiff import sniff as _tiff

__all__ = ["PluginSpec", "PLUGINS", "get_spec", "known_extensions"]

Sniffer = Callable[[bytes], bool]

#: plugin classes already imported, by spec
_LOADED: dict = {}


def _npy(head: bytes) -> bool:
    return head[:6] == b"\x93NUMPY"


def _zip(head: bytes) -> bool:
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _pillow(head: bytes) -> bool:
    return (head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff"
            or head[:6] in (b"GIF87a", b"GIF89a") or head[:2] == b"BM"
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"))


@dataclasses.dataclass(frozen=True)
class PluginSpec:
    """How to find, recognise and load one plugin.

    Attributes
    ----------
    name : str
        Registry name (``plugin=`` value).
    module, class_name : str
        Where the plugin class lives; imported on first use.
    extensions : tuple of str
        Extensions it reads and writes, lower case with their dot.
    modes : str
        v2 image modes it supports (subset of ``"iIvV"``).
    description : str
        One line for ``show_formats`` and ``help``.
    backend : str
        The third-party module it needs (for the install hint).
    extra : str or None
        The pip extra that installs that backend, if any.
    sniff : callable or None
        ``sniff(first_bytes) -> bool`` recognises the format by content.
    aliases : tuple of str
        Other names accepted by ``plugin=``/``format=`` (e.g. imageio's legacy
        format names), compared case-insensitively.
    folders : bool
        Whether it reads folders and globs of slice files.
    """

    name: str
    module: str
    class_name: str
    extensions: tuple[str, ...]
    modes: str
    description: str
    backend: str
    extra: Optional[str] = None
    sniff: Optional[Sniffer] = None
    aliases: tuple[str, ...] = ()
    folders: bool = False

    def load(self):
        """Import and return the plugin class.

        Raises
        ------
        BackendMissingError
            If the backend module is not installed (with the pip command).
        """
        cls = _LOADED.get(self)
        if cls is not None:
            return cls
        try:
            importlib.import_module(self.backend)
        except ImportError as exc:
            raise BackendMissingError(self.name, self.backend, self.extra) from exc
        module = importlib.import_module(self.module)
        cls = _LOADED[self] = getattr(module, self.class_name)
        return cls

    def backend_installed(self) -> bool:
        """Whether the backend can be imported (imports nothing when it is absent)."""
        return importlib.util.find_spec(self.backend) is not None

    def matches(self, name: str) -> bool:
        key = name.lower()
        return key == self.name.lower() or key in (a.lower() for a in self.aliases)


#: every plugin imgio ships, highest priority first
PLUGINS: list[PluginSpec] = [
    PluginSpec(
        name="tifffile", module="imgio.plugins.tiff.plugin", class_name="TifffilePlugin",
        extensions=(".tif", ".tiff", ".stk", ".lsm", ".btf", ".tf8", ".tf2", ".ome.tif"),
        modes="iIvV", description="TIFF, BigTIFF, ImageJ, OME-TIFF, STK and LSM via tifffile",
        backend="tifffile", sniff=_tiff, aliases=("TIFF", "tiff", "TIFF-PIL"),
    ),
    PluginSpec(
        name="npy", module="imgio.plugins.npy", class_name="NpyPlugin",
        extensions=(".npy",), modes="iIvV", description="NumPy .npy array file",
        backend="numpy", sniff=_npy, aliases=("NPY",),
    ),
    PluginSpec(
        name="npz", module="imgio.plugins.npy", class_name="NpzPlugin",
        extensions=(".npz",), modes="iIvV", description="NumPy .npz archive of arrays",
        backend="numpy", sniff=_zip, aliases=("NPZ",),
    ),
    PluginSpec(
        name="folder", module="imgio.plugins.folder", class_name="FolderPlugin",
        extensions=(), modes="iIvV", backend="numpy", folders=True,
        description="A folder or glob of slice files (TIFF or any format) read as one volume",
    ),
    PluginSpec(
        name="pillow", module="imgio.plugins.pillow", class_name="PillowPlugin",
        extensions=(".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".bmp",
                    ".dib", ".webp"),
        modes="iI", description="PNG, APNG, JPEG, GIF, BMP and WebP via Pillow",
        backend="PIL", sniff=_pillow,
        aliases=("PIL", "PNG-PIL", "JPEG-PIL", "GIF-PIL", "BMP-PIL", "WEBP-PIL"),
    ),
    PluginSpec(
        name="hdf5", module="imgio.plugins.hdf5.plugin", class_name="Hdf5Plugin",
        extensions=(".h5", ".hdf5", ".he5", ".nwb", ".ims"), modes="iIvV",
        description="HDF5 datasets (incl. BigDataViewer, Imaris .ims) via h5py",
        backend="h5py", sniff=_hdf5, aliases=("HDF5", "h5py"),
    ),
    PluginSpec(
        name="zarr", module="imgio.plugins.zarr", class_name="ZarrPlugin",
        extensions=(".zarr", ".ome.zarr"), modes="iIvV",
        description="Zarr v2/v3 arrays and OME-Zarr (NGFF 0.4/0.5) via zarr-python",
        backend="zarr", extra="zarr", aliases=("ZARR", "OME-Zarr", "ome-zarr", "ngff"),
        folders=True,
    ),
    # <registry: add plugins above this line>
]


def get_spec(name: str) -> PluginSpec:
    """The registry entry called ``name`` (case-insensitive; aliases too)."""
    for spec in PLUGINS:  # a plugin's own name, as plugins report it: no lower-casing
        if spec.name == name:
            return spec
    for spec in PLUGINS:
        if spec.matches(name):
            return spec
    raise ValueError(
        f"`{name}` is not a registered plugin name; known plugins: "
        + ", ".join(s.name for s in PLUGINS) + "."
    )


def known_extensions() -> dict[str, list[PluginSpec]]:
    """Map each known extension to the plugins that handle it, in priority order."""
    table: dict[str, list[PluginSpec]] = {}
    for spec in PLUGINS:
        for ext in spec.extensions:
            table.setdefault(ext, []).append(spec)
    return table
