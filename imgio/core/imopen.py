"""Plugin choice: which plugin opens a resource.

Reading: an explicit ``plugin=`` wins; folders and globs go to a plugin that
reads slices; otherwise the file's first bytes decide (its signature) and the
extension only breaks ties, so TIFF bytes in a file called ``x.png`` are read
as TIFF.  Writing: ``plugin=``, else the extension (or ``extension=``).
"""
from __future__ import annotations

from typing import Any

import warnings

from ..errors import (BackendMissingError, InitializationError, NoPluginError,
                      PluginInitError)
from . import registry
from .plugin import PluginV3
from .request import Request

__all__ = ["imopen"]


def _candidates_for_read(request: Request) -> list[registry.PluginSpec]:
    specs = registry.plugins()
    if request.kind in ("dir", "glob", "urldir"):
        return [s for s in specs if s.folders]
    head = request.firstbytes
    by_sig = [s for s in specs if s.sniff is not None and s.sniff(head)]
    ext = request.extension
    if len(by_sig) > 1:
        # a signature match decides; among several, the extension breaks the tie
        by_sig.sort(key=lambda s: ext not in s.extensions)
    if ext:  # a format without a signature (e.g. a third-party one) is known by its extension
        by_sig += [s for s in specs if s.sniff is None and not s.folders and ext in s.extensions]
    return by_sig


#: plugin classes already loaded, by ``id(spec)`` (the entry keeps its spec alive,
#: so the id is not reused): saves hashing the spec's fields on every open
_CLASSES: dict[int, tuple[registry.PluginSpec, type]] = {}


def _load(spec: registry.PluginSpec) -> type:
    found = _CLASSES.get(id(spec))
    if found is not None and found[0] is spec:
        return found[1]
    cls = spec.load()
    if len(_CLASSES) < 256:
        _CLASSES[id(spec)] = (spec, cls)
    return cls


def _candidates_for_write(request: Request) -> list[registry.PluginSpec]:
    name = (request.path or getattr(request.raw_uri, "name", None) or "")
    name = name.lower() if isinstance(name, str) else ""
    ext = request.extension
    out = []
    for spec in registry.plugins():
        # compound extensions such as ".ome.tif" match on the full name
        if ext in spec.extensions or any(e.count(".") > 1 and name.endswith(e)
                                         for e in spec.extensions):
            out.append(spec)
    return out


def _describe_failure(request: Request, tried: list[str], missing: list[str]) -> str:
    where = request.filename
    if request.io_mode == "w":
        if not request.extension:
            msg = (f"Cannot tell which format to write {where}: it has no extension. "
                   "Pass `extension=\".tif\"` (v3) or `format=\"tif\"` (v2), or `plugin=`.")
        else:
            msg = (f"Cannot write {where}: no plugin writes the extension "
                   f"{request.extension!r}. Known extensions: "
                   + " ".join(sorted(registry.known_extensions())) + ".")
    elif request.kind in ("dir", "glob"):
        msg = (f"Cannot read {where}: it is a folder or pattern, and no plugin "
               "could read it as a stack of slices.")
    else:
        head = request.firstbytes
        if request.kind == "path" and request.size() == 0 or request.kind == "bytes" and not head:
            msg = f"Cannot read {where}: the file is empty (0 bytes)."
        elif not tried and not missing:
            msg = (f"Cannot read {where}: its content matches no format imgio knows "
                   f"(first bytes {head[:8]!r}). Known formats: "
                   + ", ".join(s.name for s in registry.plugins()) + ".")
        else:
            msg = f"Cannot read {where}: no plugin could open it."
    if tried:
        msg += "\nTried:\n  " + "\n  ".join(tried)
    if missing:
        msg += "\nThese plugins might read it once installed:\n  " + "\n  ".join(missing)
    return msg


def imopen(uri: Any, io_mode: str, *, plugin: Any = None, extension: str | None = None,
           format_hint: str | None = None, storage_options: dict | None = None,
           legacy_mode: bool = False, **kwargs) -> PluginV3:
    """Open ``uri`` and return the plugin object that handles it.

    Parameters
    ----------
    uri : str, pathlib.Path, bytes, file object or "<bytes>"
        The resource.  For reading, a folder or glob reads a stack of slices.
    io_mode : str
        ``"r"`` or ``"w"`` (a second v2 letter such as ``"rv"`` is accepted).
    plugin : str or PluginV3 subclass, optional
        Use this plugin (by registry name, any case, or class) and no other.
    extension : str, optional
        Treat the resource as having this extension (``".tif"``).
    format_hint : str, optional
        Older spelling of ``extension`` (``DeprecationWarning``, as in imageio).
    legacy_mode : bool
        imageio's switch for its v2 API; accepted for compatibility.  imgio's
        errors are already both imageio's v2 and v3 types (``NoPluginError`` is
        an ``OSError`` and a ``ValueError``; a refusing ``plugin=`` raises
        :class:`~imgio.errors.PluginInitError`, an ``OSError`` and a
        ``RuntimeError``), so it changes nothing else; a :class:`Request` is
        accepted as ``uri`` either way.
    storage_options : dict, optional
        For fsspec URLs (``s3://``, ``http(s)://``, ``memory://`` ...): options of the
        filesystem (credentials, ``endpoint_url``, ...).
    **kwargs
        Passed to the plugin's constructor.

    Returns
    -------
    PluginV3
        Use it as a context manager so the file is closed (and a write committed).

    Raises
    ------
    FileNotFoundError
        The file (or, for writing, its folder) does not exist.
    NoPluginError
        No plugin could open the resource (subclass of ``OSError`` and ``ValueError``).
    """
    if format_hint is not None:
        warnings.warn("The usage of `format_hint` is deprecated and will be removed in "
                      "ImageIO v3. Use `extension` instead.", DeprecationWarning, stacklevel=2)
    if isinstance(uri, Request):
        request = uri
    else:
        request = Request(uri, io_mode, extension=extension, format_hint=format_hint,
                          **({} if storage_options is None else
                             {"storage_options": storage_options}))

    if plugin is not None:
        if isinstance(plugin, type) and issubclass(plugin, PluginV3):
            cls, label = plugin, plugin.__name__
        else:
            spec = registry.get_spec(str(plugin))
            cls, label = spec.load(), spec.name
        try:
            return cls(request, **kwargs)
        except InitializationError as exc:
            request.finish(success=False)
            raise PluginInitError(f"The `{label}` plugin cannot "
                              f"{'read' if request.io_mode == 'r' else 'write'} "
                              f"{request.filename}: {exc}") from exc
        except BaseException:
            request.finish(success=False)
            raise

    specs = (_candidates_for_read(request) if request.io_mode == "r"
             else _candidates_for_write(request))
    tried: list[str] = []
    missing: list[str] = []
    for spec in specs:
        try:
            cls = _load(spec)
        except BackendMissingError as exc:
            missing.append(f"{spec.name}: {exc}")
            continue
        try:
            return cls(request, **kwargs)
        except InitializationError as exc:
            tried.append(f"{spec.name}: {exc}")
        except BaseException:
            request.finish(success=False)
            raise
    request.finish(success=False)
    raise NoPluginError(_describe_failure(request, tried, missing))
