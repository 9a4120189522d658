"""The plugin registry: what each plugin reads and writes, and how to recognise it.

Each :class:`PluginSpec` is the one source of its plugin's metadata (name,
extensions, modes, description): the plugin class gets them from its spec (see
:func:`apply_metadata`), it does not repeat them.

Entries name their module as a string and are imported only when tried, so
``import imgio`` loads none of tifffile, h5py, PIL or dask.  Signatures are
checked on the first bytes of a file by the formats' public, light sniffers
(``imgio.plugins.tiff.sniff``, ``imgio.plugins.hdf5.sniff``,
``imgio.plugins.npy_sniff``, ``imgio.plugins.pillow_sniff``) without importing
any backend.

Third-party plugins register through the entry-point group ``imgio.plugins``
(see ``docs/plugins.md``); they are loaded the first time the registry is
consulted (:func:`plugins`, :func:`get_spec`, :func:`known_extensions`) and
come after the built-ins.  A broken one gives a :class:`PluginLoadWarning`
naming it and is left out.

The order of :func:`plugins` is the priority order when several plugins
claim the same extension or signature.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import threading
import warnings
from typing import Callable, Optional

from ..errors import BackendMissingError
from ..plugins import npy_sniff, pillow_sniff
from ..plugins.hdf5 import sniff as _hdf5
from ..plugins.tiff import sniff as _tiff

__all__ = ["PluginSpec", "PLUGINS", "ENTRY_POINT_GROUP", "PluginLoadWarning", "plugins",
           "get_spec", "known_extensions", "apply_metadata", "builtin_spec_for"]

Sniffer = Callable[[bytes], bool]

#: the entry-point group third-party distributions register their plugins in
ENTRY_POINT_GROUP = "imgio.plugins"

#: the metadata a plugin class takes from its spec
METADATA = ("name", "extensions", "modes", "description")

#: plugin classes already imported, by spec
_LOADED: dict = {}


class PluginLoadWarning(RuntimeWarning):
    """A third-party plugin (entry point ``imgio.plugins``) could not be registered."""


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
        cls = module
        for part in self.class_name.split("."):
            cls = getattr(cls, part)
        apply_metadata(self, cls)
        _LOADED[self] = cls
        return cls

    def backend_installed(self) -> bool:
        """Whether the backend can be imported (imports nothing when it is absent)."""
        return importlib.util.find_spec(self.backend) is not None

    def matches(self, name: str) -> bool:
        """Whether ``name`` is this plugin's name or an alias (any case).

        Parameters
        ----------
        name : str
            A ``plugin=`` or ``format=`` value.

        Returns
        -------
        bool
        """
        key = name.lower()
        return key == self.name.lower() or key in (a.lower() for a in self.aliases)

    @classmethod
    def from_class(cls, plugin_class: type, **fields) -> "PluginSpec":
        """The spec of a plugin class that carries its own metadata (a third-party class).

        Parameters
        ----------
        plugin_class : type
            A :class:`~imgio.core.plugin.PluginV3` subclass with ``name`` and
            ``extensions`` (``modes``, ``description``, a static ``sniff`` and
            ``aliases`` are optional).
        **fields
            Spec fields that override what the class says.

        Returns
        -------
        PluginSpec
        """
        values = dict(
            name=getattr(plugin_class, "name", "") or "",
            module=plugin_class.__module__, class_name=plugin_class.__qualname__,
            extensions=tuple(e.lower() for e in getattr(plugin_class, "extensions", ())),
            modes=getattr(plugin_class, "modes", "iIvV"),
            description=getattr(plugin_class, "description", "") or plugin_class.__name__,
            backend=plugin_class.__module__.partition(".")[0],
            sniff=plugin_class.__dict__.get("sniff") and getattr(plugin_class, "sniff"),
            aliases=tuple(getattr(plugin_class, "aliases", ())),
        )
        values.update(fields)
        return cls(**values)


def apply_metadata(spec: PluginSpec, plugin_class: type) -> None:
    """Give ``plugin_class`` the metadata of ``spec`` (its one source).

    Parameters
    ----------
    spec : PluginSpec
        The registry entry.
    plugin_class : type
        The class the entry loads; its ``name``, ``extensions``, ``modes`` and
        ``description`` are set from the spec, whatever the class body said.
    """
    for attr in METADATA:
        value = getattr(spec, attr)
        if plugin_class.__dict__.get(attr, None) != value:
            setattr(plugin_class, attr, value)


def builtin_spec_for(module: str, qualname: str) -> Optional[PluginSpec]:
    """The built-in entry whose class is ``module.qualname``, or None.

    Parameters
    ----------
    module : str
        The class's ``__module__``.
    qualname : str
        The class's ``__qualname__``.

    Returns
    -------
    PluginSpec or None
    """
    for spec in _BUILTINS:
        if spec.module == module and spec.class_name == qualname:
            return spec
    return None


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
        backend="numpy", sniff=npy_sniff.sniff, aliases=("NPY",),
    ),
    PluginSpec(
        name="npz", module="imgio.plugins.npy", class_name="NpzPlugin",
        extensions=(".npz",), modes="iIvV", description="NumPy .npz archive of arrays",
        backend="numpy", sniff=npy_sniff.sniff_npz, aliases=("NPZ",),
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
        backend="PIL", sniff=pillow_sniff.sniff,
        aliases=("PIL", "PNG-PIL", "JPEG-PIL", "GIF-PIL", "BMP-PIL", "WEBP-PIL"),
    ),
    PluginSpec(
        name="hdf5", module="imgio.plugins.hdf5.plugin", class_name="Hdf5Plugin",
        extensions=(".h5", ".hdf5", ".he5", ".nwb", ".ims"), modes="iIvV",
        description="HDF5 datasets (incl. BigDataViewer, Imaris .ims) via h5py",
        backend="h5py", sniff=_hdf5, aliases=("HDF5", "h5py"),
    ),
    PluginSpec(
        name="zarr", module="imgio.plugins.zarr.plugin", class_name="ZarrPlugin",
        extensions=(".zarr", ".ome.zarr"), modes="iIvV",
        description="Zarr v2/v3 arrays and OME-Zarr (NGFF 0.4/0.5) via zarr-python",
        backend="zarr", extra="zarr", aliases=("ZARR", "OME-Zarr", "ome-zarr", "ngff"),
        folders=True,
    ),
    # <registry: add plugins above this line>
]

#: the built-in entries (PLUGINS also holds the third-party ones once loaded)
_BUILTINS: tuple[PluginSpec, ...] = tuple(PLUGINS)

_ENTRY_POINTS_LOCK = threading.RLock()
#: None: not loaded yet; False: loading (a plugin module consulting the registry
#: while it is imported sees the built-ins); True: loaded
_entry_points_state: Optional[bool] = None


def _entry_point_spec(ep) -> PluginSpec:
    """The spec an ``imgio.plugins`` entry point gives (a spec, or a plugin class)."""
    obj = ep.load()
    if isinstance(obj, PluginSpec):
        spec = obj
    elif _is_plugin_class(obj):
        spec = PluginSpec.from_class(obj)
        apply_metadata(spec, obj)
        _LOADED[spec] = obj
    else:
        raise TypeError(f"it gives {type(obj).__name__} {obj!r}, not a PluginSpec "
                        "or a PluginV3 subclass")
    if not spec.name:
        raise ValueError("its plugin has no name")
    return spec


def _is_plugin_class(obj) -> bool:
    """Whether ``obj`` subclasses :class:`~imgio.core.plugin.PluginV3` (which imports this module)."""
    return isinstance(obj, type) and any(
        c.__name__ == "PluginV3" and c.__module__ == "imgio.core.plugin" for c in obj.__mro__)


def _distribution_of(ep) -> str:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return f" (distribution {name})" if name else ""


def _load_entry_points() -> None:
    global _entry_points_state
    with _ENTRY_POINTS_LOCK:
        if _entry_points_state is not None:
            return
        _entry_points_state = False
        # importlib.metadata costs ~15 ms to import: paid on the first registry
        # lookup, not by ``import imgio``
        import importlib.metadata
        try:
            try:
                found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
            except Exception as exc:  # a damaged installation's metadata
                warnings.warn(f"imgio could not list the entry points {ENTRY_POINT_GROUP!r}: "
                              f"{exc}", PluginLoadWarning, stacklevel=3)
                return
            seen = {s.name.lower() for s in PLUGINS}
            for ep in sorted(found, key=lambda e: e.name):
                label = f"{ep.name!r} = {ep.value!r}{_distribution_of(ep)}"
                try:
                    spec = _entry_point_spec(ep)
                except Exception as exc:  # third-party code: whatever it raises leaves that
                    # one plugin out, named in the warning; imgio's built-ins are unaffected
                    warnings.warn(f"imgio left out the third-party plugin {label}: loading "
                                  f"it failed with {type(exc).__name__}: {exc}",
                                  PluginLoadWarning, stacklevel=3)
                    continue
                if spec.name.lower() in seen:
                    warnings.warn(f"imgio left out the third-party plugin {label}: the name "
                                  f"{spec.name!r} is already registered", PluginLoadWarning,
                                  stacklevel=3)
                    continue
                seen.add(spec.name.lower())
                PLUGINS.append(spec)
        finally:
            _entry_points_state = True


def _forget_entry_points() -> None:
    """Drop the third-party entries so the next consultation loads them again (tests)."""
    global _entry_points_state
    with _ENTRY_POINTS_LOCK:
        PLUGINS[:] = _BUILTINS
        _entry_points_state = None


def plugins() -> list[PluginSpec]:
    """Every registered plugin, highest priority first: the built-ins, then third-party ones.

    The first call loads the entry points of the group ``imgio.plugins``.

    Returns
    -------
    list of PluginSpec
        The registry itself (:data:`PLUGINS`); do not modify it.
    """
    if _entry_points_state is not True:  # another thread loading: wait for it (RLock)
        _load_entry_points()
    return PLUGINS


def get_spec(name: str) -> PluginSpec:
    """The registry entry called ``name`` (case-insensitive; aliases too).

    Parameters
    ----------
    name : str
        A plugin name or alias.

    Returns
    -------
    PluginSpec

    Raises
    ------
    ValueError
        If no plugin has that name.
    """
    specs = plugins()
    for spec in specs:  # a plugin's own name, as plugins report it: no lower-casing
        if spec.name == name:
            return spec
    for spec in specs:
        if spec.matches(name):
            return spec
    raise ValueError(
        f"`{name}` is not a registered plugin name; known plugins: "
        + ", ".join(s.name for s in specs) + "."
    )


def known_extensions() -> dict[str, list[PluginSpec]]:
    """Map each known extension to the plugins that handle it, in priority order.

    Returns
    -------
    dict
        ``extension -> [PluginSpec, ...]``.
    """
    table: dict[str, list[PluginSpec]] = {}
    for spec in plugins():
        for ext in spec.extensions:
            table.setdefault(ext, []).append(spec)
    return table
