"""Helpers every command shares: sizes, selections (``--dataset/--series/--level``)."""
from __future__ import annotations

import errno
import inspect
import os
import re
import sys
from typing import Callable

from ..errors import WriteError


# -- shared helpers -------------------------------------------------------------------
def _is_image2d(shape: tuple[int, ...]) -> bool:
    """Whether an ndimage of ``shape`` is one picture (gray, or RGB/RGBA last axis)."""
    return len(shape) == 2 or (len(shape) == 3 and shape[-1] in (3, 4))


def _human_size(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)  # pragma: no cover


def _resource_size(request) -> int | None:
    """Bytes on disk of a file, or of every file of a folder/glob."""
    try:
        if request.kind in ("dir", "glob"):
            return sum(os.path.getsize(p) for p in request.paths())
        return request.size()
    except OSError:
        return None


def _n_images(reader, props, sel: dict | None = None) -> int | None:
    """How many ndimages the resource holds (``index=...`` stacks them)."""
    sel = {k: v for k, v in (sel or {}).items() if k != "index"}
    if props.is_batch and props.n_images is not None:
        return props.n_images
    if "series" in sel:
        return 1
    try:
        n = reader.properties(index=..., **sel).n_images
        if n is not None:
            return int(n)
    except Exception:  # unequal shapes, or a plugin that cannot stack
        pass
    try:
        meta = reader.metadata(**sel)
    except Exception:
        return None
    for key in ("n_images", "n_series"):
        if isinstance(meta.get(key), int):
            return meta[key]
    return None


def _compression(reader, sel: dict | None = None) -> str | None:
    """The compression scheme, as the plugin's metadata names it, lower case."""
    sel = {k: v for k, v in (sel or {}).items() if k != "index"}
    for index in (0, None):
        try:
            meta = reader.metadata(index=index, **sel)
        except Exception:
            continue
        if not isinstance(meta, dict):
            continue
        value = meta.get("compression")
        if value is None and isinstance(meta.get("dataset_details"), dict):
            value = (meta["dataset_details"].get(meta.get("dataset")) or {}).get("compression")
        if value is not None:
            value = getattr(value, "name", value)
            return str(value).lower()
    return None


def _accepts(func: Callable, name: str) -> bool:
    """Whether ``func`` takes a keyword called ``name`` by that name."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    p = params.get(name)
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


# -- selection ---------------------------------------------------------------------------
#: the selection options every command takes, as plugin keywords
SELECTION_OPTIONS = ("dataset", "series", "level", "index")


def _selection(dataset=None, series=None, level=None, index=None) -> dict:
    """The plugin keywords for the chosen ``--dataset/--series/--level``."""
    given = {"dataset": dataset, "series": series, "level": level, "index": index}
    return {k: v for k, v in given.items() if v is not None}


def _refused_option(exc: TypeError, uri, reader) -> Exception:
    """A plugin's "unexpected keyword argument 'level'" as a CLI message about --level."""
    text = str(exc)
    for name in SELECTION_OPTIONS:
        if f"unexpected keyword argument '{name}'" in text:
            return ValueError(f"--{name} does not apply to {uri}: the {reader.name} plugin's "
                              f"files have no {name}s.")
    return exc


def _props(reader, uri, sel: dict):
    try:
        return reader.properties(**sel)
    except TypeError as exc:
        raise _refused_option(exc, uri, reader) from exc


# -- errors as one line ----------------------------------------------------------------
#: errno -> the reason a write failed, as the user reads it
_WRITE_REASONS = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                  errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
                  errno.EDQUOT: "disk quota exceeded"}
_PARTIAL = re.compile(r"^(?P<dir>.*?)(?P<sep>[\\/]?)\.(?P<name>.+)\.[^./\\]+\.imgio-partial$")


def _target_of(filename: str) -> str:
    """The file a write was for, given the temporary ``.NAME.XXXX.imgio-partial`` beside it."""
    m = _PARTIAL.match(str(filename))
    return m.group("dir") + m.group("sep") + m.group("name") if m else str(filename)


def _one_line(exc: BaseException) -> str:
    """An exception as one readable line."""
    if isinstance(exc, WriteError) and exc.target and exc.errno in _WRITE_REASONS:
        text = f"cannot write {exc.target}: {_WRITE_REASONS[exc.errno]}"
    elif isinstance(exc, OSError) and exc.filename is not None and exc.errno in _WRITE_REASONS:
        target = _target_of(exc.filename)
        text = f"cannot write {target}: {_WRITE_REASONS[exc.errno]}"
    elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {_target_of(exc.filename)}"
    else:
        text = str(exc) or type(exc).__name__
    text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}"


def _print_error(where: str, exc: BaseException) -> None:
    print(f"imgio {where}: error: {_one_line(exc)}", file=sys.stderr)
