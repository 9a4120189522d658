"""The classic imageio v2 API: ``import imgio.v2 as imageio``.

Scripts written for ``imageio.v2`` run unchanged.  Every read returns an
:class:`~imgio.v2.array.Array` (an ndarray with ``.meta``); every function
goes through :func:`imgio.core.imopen.imopen`, so plugin choice, atomic writes
and error messages are the same as in :mod:`imgio.v3`.

``format=`` accepts a plugin name (any case, also imageio's legacy names such
as ``"TIFF"`` or ``"NPZ"``), an extension with or without its dot
(``"tif"``, ``".tif"``) or a file name (``"x.tif"``).

Differences from imageio are listed in ``docs/migration.md`` ("v2 API").
"""
from __future__ import annotations

import os
import re
from numbers import Number
from pathlib import PurePath
from typing import Any

import numpy as np

from .. import _kernels
from ..core import registry
from .array import Array, DeferredMeta, Image
from ..core.imopen import imopen
from ..core.limits import check_nbytes, max_bytes
from .legacy import MODE_NAMES, Format, Reader, Writer, _plugin_meta, check_mode
from ..core.plugin import PluginV3, counting_images
from ..core.request import RETURN_BYTES
from ..errors import ImgioError, MemtestError
from ..progress import make_progress

__all__ = [
    "imread", "mimread", "volread", "mvolread",
    "imwrite", "mimwrite", "volwrite", "mvolwrite",
    "help", "show_formats", "get_reader", "get_writer", "RETURN_BYTES",
]

#: default ``memtest`` of :func:`mimread` (SI units: 256 000 000 bytes)
MEMTEST_DEFAULT_MIM = "256MB"
#: default ``memtest`` of :func:`mvolread` (1e9 bytes)
MEMTEST_DEFAULT_MVOL = "1GB"

is_batch = _kernels.is_batch
is_volume = _kernels.is_volume

LegacyReader = Reader
LegacyWriter = Writer


# -- memtest ---------------------------------------------------------------------------
_SIZE = re.compile(r"^(\d+\.?\d*)\s*([kKMGTPEZY]?i?)B?$")
_UNITS = {"": 1}
for _i, _p in enumerate("kMGTPEZY", start=1):
    _UNITS[_p] = 1000 ** _i
    _UNITS[_p.upper() + "i"] = 1024 ** _i
del _i, _p


def to_nbytes(arg: Any, default: Any = None) -> int | float:
    """A memory size in bytes from ``memtest``-style input.

    Parameters
    ----------
    arg : bool, number, str or None
        ``True``: ``default``; falsy (``False``, ``None``, ``0``, ``""``): no
        limit (``inf``); a number: that many bytes (returned as is); a string:
        a number with an optional SI (``k M G T P E Z Y``) or binary (``Ki Mi
        Gi ...``) unit and an optional ``B``, e.g. ``"256MB"``, ``"1.5 GB"``,
        ``"100KiB"``.  Case matters, as in imageio: ``"1mb"`` and ``"1KB"`` are
        errors (``k`` is SI kilo, ``Ki`` binary kibi).
    default : optional
        What ``True`` means.

    Raises
    ------
    ValueError
        If the string cannot be parsed.
    """
    if arg is True:
        arg = default
    if not arg:
        return float("inf")
    if isinstance(arg, Number):
        return arg
    if not isinstance(arg, str):
        raise ValueError(f"Memory size must be a number or a string like '256MB', not {arg!r}.")
    match = _SIZE.match(arg)
    if match is None:
        raise ValueError(
            f"Memory size could not be parsed (is your capitalisation correct?): {arg!r}. "
            "Expected a number with an optional unit such as '256MB', '1.5 GB' or '100KiB'.")
    number, unit = match.groups()
    if unit not in _UNITS:
        raise ValueError(
            f"Memory size unit not recognised (is your capitalisation correct?): {unit!r} "
            f"in {arg!r}. Use one of k M G T P E Z Y (powers of 1000) or "
            "Ki Mi Gi Ti Pi Ei Zi Yi (powers of 1024).")
    return float(number) * _UNITS[unit]


def _memtest_error(func: str, limit: float, filename: str) -> MemtestError:
    return MemtestError(
        f"imgio.v2.{func}() has read over {int(limit)}B of image data from {filename}.\n"
        "Stopped to avoid memory problems. Use imgio.v2.get_reader() to read the "
        "images one at a time, increase the threshold (memtest='2GB'), or pass memtest=False.")


# -- format= ---------------------------------------------------------------------------
def _format_args(format: Any) -> dict:
    """``format=`` as the ``plugin=``/``extension=`` keyword of :func:`imopen`."""
    if format is None:
        return {}
    if isinstance(format, type) and issubclass(format, PluginV3):
        return {"plugin": format}
    if isinstance(format, Format):
        return {"plugin": format.name}
    if isinstance(format, PurePath) or isinstance(format, os.PathLike):
        format = os.fspath(format)
    if not isinstance(format, str) or not format:
        raise ValueError(f"format must be a format name, an extension or a file name, "
                         f"not {format!r}.")
    known = registry.known_extensions()
    suffix = PurePath(format).suffix.lower()
    if suffix in known:
        return {"extension": suffix}
    for spec in registry.plugins():
        if spec.matches(format):
            return {"plugin": spec.name}
    lower = format.lower()
    if lower in known:
        return {"extension": lower}
    if "." + lower in known:
        return {"extension": "." + lower}
    raise ValueError(
        f"No format known by name {format!r}. Known formats: "
        + ", ".join(s.name for s in registry.plugins())
        + "; known extensions: " + " ".join(sorted(known)) + ".")


def _spec_for(name: Any) -> registry.PluginSpec:
    """The registry entry ``help``/``formats[...]`` means by a name, extension or file name."""
    args = _format_args(name)
    if "plugin" in args:
        plugin = args["plugin"]
        if isinstance(plugin, type):
            raise ValueError(f"{plugin.__name__} is a plugin class, not a registered format.")
        return registry.get_spec(plugin)
    return registry.known_extensions()[args["extension"]][0]


def _check_mode_letter(mode: Any) -> str:
    if not isinstance(mode, str) or len(mode) != 1 or mode not in MODE_NAMES:
        raise ValueError(
            f"Invalid mode {mode!r}: expected one of "
            + ", ".join(f"{m!r} ({what})" for m, what in MODE_NAMES.items()) + ".")
    return mode


def _open(uri, io_mode: str, format: Any, kwargs: dict | None = None):
    # ``storage_options=`` (fsspec URLs) is the resource's, not the plugin's: taken out here
    remote = {}
    if kwargs and "storage_options" in kwargs:
        remote = {"storage_options": kwargs.pop("storage_options")}
    plugin = imopen(uri, io_mode, **_format_args(format), **remote)
    check_mode(plugin, io_mode[1], io_mode[0])
    return plugin


def _read_one(uri, format, mode: str, kwargs: dict, func: str) -> Array:
    if "index" in kwargs:
        raise TypeError(
            f"{func}() reads image 0 and takes no `index`; use "
            "imgio.v2.get_reader(uri).get_data(i) or imgio.v3.imread(uri, index=i).")
    meta_kw = {"page": kwargs["page"]} if "page" in kwargs else {}
    with _open(uri, "r" + mode, format, kwargs) as plugin:
        image = np.asarray(plugin.read(index=0, **kwargs))
        if plugin.request.kind != "path":
            return Array(image, _plugin_meta(plugin, 0, **meta_kw))
        path = plugin.request.path

    def load_meta() -> dict:
        # ``.meta`` was asked for: reopen the file (the read did not need its tags)
        with _open(path, "r" + mode, format) as again:
            return _plugin_meta(again, 0, **meta_kw)
    return Array(image, DeferredMeta(load_meta))


def _read_many(uri, format, mode: str, memtest, default: str, kwargs: dict,
               func: str) -> list[Array]:
    limit = to_nbytes(memtest, default)
    guard = max_bytes()
    progress = kwargs.pop("progress", None)
    images: list[Array] = []
    nbytes = 0
    with _open(uri, "r" + mode, format, kwargs) as plugin:
        with make_progress(progress, _count(plugin) if progress else None, func,
                           unit="image") as prog:
            for i, image in enumerate(plugin.iter(**kwargs)):
                image = np.asarray(image)
                images.append(Array(image, _plugin_meta(plugin, i)))
                nbytes += image.nbytes
                prog.advance()
                if nbytes > limit:
                    raise _memtest_error(func, limit, plugin.request.filename)
                if nbytes > guard:  # the size guard holds even with memtest=False
                    check_nbytes((len(images),) + image.shape, image.dtype,
                                 plugin.request.filename, None, what=f"{func}() images")
    return images


def _count(plugin) -> int | None:
    """How many ndimages ``iter`` will yield, when the plugin knows it cheaply."""
    try:
        with counting_images():
            return plugin.properties(index=...).n_images
    except (ImgioError, NotImplementedError):
        return None


# -- reading ---------------------------------------------------------------------------
def imread(uri, format: Any = None, **kwargs) -> Array:
    """Read image 0 of ``uri``.

    Parameters
    ----------
    uri : str, pathlib.Path, bytes or file object
        The resource.
    format : str, optional
        Plugin name, extension or file name choosing the format.
    **kwargs
        Passed to the plugin's ``read`` (TIFF: ``page``, ``maxworkers`` ...).

    Returns
    -------
    Array
        The image, with ``.meta`` = the plugin's metadata of image 0.
    """
    return _read_one(uri, format, "i", kwargs, "imread")


def volread(uri, format: Any = None, **kwargs) -> Array:
    """Read volume 0 of ``uri`` (for TIFF the first series, all its pages).

    Parameters
    ----------
    uri : str, pathlib.Path, bytes or file object
        The resource; a folder or glob reads a stack of slice files.
    format : str, optional
        imageio's format name or a plugin name (``"TIFF"``, ``"PNG-PIL"``,
        ``"tifffile"``); by default the file's content chooses the plugin.
    **kwargs
        Passed to the plugin's ``read``.
    """
    return _read_one(uri, format, "v", kwargs, "volread")


def mimread(uri, format: Any = None, memtest: Any = MEMTEST_DEFAULT_MIM, **kwargs) -> list[Array]:
    """Read every image of ``uri`` into a list.

    A file holding one ndimage that is a batch (e.g. a (Z, Y, X) TIFF series or
    an .npz with one 3-D array) is split into its frames.

    Parameters
    ----------
    uri : str, pathlib.Path, bytes or file object
        The resource; a folder or glob reads a stack of slice files.
    format : str, optional
        imageio's format name or a plugin name (``"TIFF"``, ``"PNG-PIL"``,
        ``"tifffile"``); by default the file's content chooses the plugin.
    memtest : bool, number or str
        Stop with :class:`~imgio.errors.MemtestError` once more than this many
        bytes were read (checked after each image): ``"256MB"`` by default,
        ``False`` for no limit (see :func:`to_nbytes`).
    progress : bool or callable, optional
        ``True`` shows a progress bar on a terminal; a callable is called as
        ``progress(done, total)`` after each image (``total`` may be ``None``).
    **kwargs
        Passed to the plugin's ``iter``.
    """
    images = _read_many(uri, format, "I", memtest, MEMTEST_DEFAULT_MIM, kwargs, "mimread")
    if len(images) == 1 and is_batch(images[0]):
        images = list(images[0])
    return images


def mvolread(uri, format: Any = None, memtest: Any = MEMTEST_DEFAULT_MVOL,
             **kwargs) -> list[Array]:
    """Read every volume of ``uri`` into a list (one per ndimage; never split).

    ``memtest`` as for :func:`mimread`, default ``"1GB"``.

    Parameters
    ----------
    uri : str, pathlib.Path, bytes or file object
        The resource; a folder or glob reads a stack of slice files.
    format : str, optional
        imageio's format name or a plugin name (``"TIFF"``, ``"PNG-PIL"``,
        ``"tifffile"``); by default the file's content chooses the plugin.
    memtest : bool, number or str
        As for :func:`mimread`; default ``"1GB"``.
    **kwargs
        Passed to the plugin's ``iter``.
    """
    return _read_many(uri, format, "V", memtest, MEMTEST_DEFAULT_MVOL, kwargs, "mvolread")


# -- writing ---------------------------------------------------------------------------
def _write(uri, data, format, mode: str, is_batch_: bool, kwargs: dict):
    with _open(uri, "w" + mode, format, kwargs) as plugin:
        plugin.write(data, is_batch=is_batch_, **kwargs)
    return plugin.request.finish()


def imwrite(uri, im, format: Any = None, **kwargs) -> bytes | None:
    """Write one image (2-D gray, or 3-D with up to 4 channels).

    Parameters
    ----------
    uri : str, pathlib.Path, file object or "<bytes>"
        Where to write; ``"<bytes>"`` returns the encoded bytes.
    im : array_like
        The image.
    format : str, optional
        imageio's format name, a plugin name or an extension (``"TIFF"``,
        ``"tifffile"``, ``".png"``); by default the extension of ``uri`` decides.
    **kwargs
        Passed to the plugin's ``write``.

    Returns
    -------
    bytes or None
        The encoded file when ``uri`` is ``"<bytes>"`` (then ``format`` is needed).

    Raises
    ------
    imgio.errors.DTypeError
        Non-numeric data (bool, object, str).
    imgio.errors.ShapeError
        Not a single image.
    """
    im = _kernels.check_image(im, kind="image")
    return _write(uri, im, format, "i", False, kwargs)


def mimwrite(uri, ims, format: Any = None, **kwargs) -> bytes | None:
    """Write several images (a list, or an array whose first axis indexes them).

    Parameters
    ----------
    uri : str, pathlib.Path, file object or "<bytes>"
        Where to write; ``"<bytes>"`` returns the encoded bytes.
    ims : sequence of array_like or numpy.ndarray
        The images.
    format : str, optional
        imageio's format name, a plugin name or an extension (``"TIFF"``,
        ``"tifffile"``, ``".png"``); by default the extension of ``uri`` decides.
    **kwargs
        Passed to the plugin's ``write``.
    """
    ims = _kernels.check_image(ims, kind="images")
    return _write(uri, ims, format, "I", True, kwargs)


def volwrite(uri, vol, format: Any = None, **kwargs) -> bytes | None:
    """Write one volume (3-D, or 4-D with up to 4 channels per voxel).

    Parameters
    ----------
    uri : str, pathlib.Path, file object or "<bytes>"
        Where to write; ``"<bytes>"`` returns the encoded bytes.
    vol : array_like
        The volume.
    format : str, optional
        imageio's format name, a plugin name or an extension (``"TIFF"``,
        ``"tifffile"``, ``".png"``); by default the extension of ``uri`` decides.
    **kwargs
        Passed to the plugin's ``write``.
    """
    vol = _kernels.check_image(vol, kind="volume")
    return _write(uri, vol, format, "v", False, kwargs)


def mvolwrite(uri, vols, format: Any = None, **kwargs) -> bytes | None:
    """Write several volumes.

    Parameters
    ----------
    uri : str, pathlib.Path, file object or "<bytes>"
        Where to write; ``"<bytes>"`` returns the encoded bytes.
    vols : sequence of array_like
        The volumes.
    format : str, optional
        imageio's format name, a plugin name or an extension (``"TIFF"``,
        ``"tifffile"``, ``".png"``); by default the extension of ``uri`` decides.
    **kwargs
        Passed to the plugin's ``write``.
    """
    vols = _kernels.check_image(vols, kind="volumes")
    return _write(uri, vols, format, "V", True, kwargs)


# -- readers and writers ---------------------------------------------------------------
def get_reader(uri, format: Any = None, mode: str = "?", **kwargs) -> Reader:
    """A :class:`~imgio.v2.legacy.Reader` for ``uri``.

    Parameters
    ----------
    uri : str, pathlib.Path, bytes or file object
        The resource to read.
    format : str, optional
        imageio's format name or a plugin name (``"TIFF"``, ``"PNG-PIL"``,
        ``"tifffile"``); by default the file's content chooses the plugin.
    mode : {"i", "I", "v", "V", "?"}
        What you intend to read: image, images, volume, volumes, anything.  A
        letter the format cannot do raises ``ValueError``.
    **kwargs
        Passed to every read of the plugin.
    """
    mode = _check_mode_letter(mode)
    return Reader(_open(uri, "r" + mode, format, kwargs), **kwargs)


def get_writer(uri, format: Any = None, mode: str = "?", **kwargs) -> Writer:
    """A :class:`~imgio.v2.legacy.Writer` for ``uri``; ``**kwargs`` go to every append.

    Parameters
    ----------
    uri : str, pathlib.Path, file object or "<bytes>"
        Where to write; ``"<bytes>"`` returns the encoded bytes.
    format : str, optional
        imageio's format name, a plugin name or an extension (``"TIFF"``,
        ``"tifffile"``, ``".png"``); by default the extension of ``uri`` decides.
    mode : {"i", "I", "v", "V", "?"}
        What you intend to write: image, images, volume, volumes, anything.
    **kwargs
        Passed to the plugin's ``write``/``append`` for every frame.
    """
    mode = _check_mode_letter(mode)
    return Writer(_open(uri, "w" + mode, format, kwargs), **kwargs)


# -- formats ---------------------------------------------------------------------------
class FormatManager:
    """The registered formats (``imgio.v2.formats``).

    Iterate over it for :class:`~imgio.v2.legacy.Format` objects; index it
    with a name, extension or file name (``formats["tif"]``).
    """

    def __iter__(self):
        return iter([Format(spec) for spec in registry.plugins()])

    def __len__(self) -> int:
        return len(registry.plugins())

    def __getitem__(self, name: Any) -> Format:
        return Format(_spec_for(name))

    def __contains__(self, name: Any) -> bool:
        try:
            _spec_for(name)
        except ValueError:
            return False
        return True

    def get_format_names(self) -> list[str]:
        return [spec.name for spec in registry.plugins()]

    def __str__(self) -> str:
        return "\n".join(f"{f.name} - {f.description} [{' '.join(f.extensions)}]"
                         for f in self)

    def __repr__(self) -> str:
        return f"<imgio FormatManager with {len(self)} formats>"

    def show(self) -> None:
        """Print a table of the formats (see :func:`show_formats`)."""
        show_formats()


formats = FormatManager()


def show_formats() -> None:
    """Print a table: name, extensions, modes, backend installed, description."""
    rows = [("NAME", "EXTENSIONS", "MODES", "INSTALLED", "DESCRIPTION")]
    for f in formats:
        rows.append((f.name, " ".join(f.extensions), f.modes,
                     "yes" if f.backend_installed() else f"no ({f.spec.backend})",
                     f.description))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    lines = []
    for r in rows:
        lines.append("  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4])
    lines.insert(1, "-" * len(lines[0]))
    print("\n".join(lines))


def help(name: Any = None) -> None:  # noqa: A001 - imageio's name
    """Print the documentation of a format, or the list of formats.

    Parameters
    ----------
    name : str, optional
        A format (plugin) name, an extension (``"tif"``, ``".npz"``) or a
        file name.  Without it, one line per format is printed.
    """
    if name is None:
        print(str(formats))
    else:
        print(formats[name].doc)


# imageio's aliases (the same objects)
imsave = imwrite
mimsave = mimwrite
volsave = volwrite
mvolsave = mvolwrite
read = get_reader
save = get_writer
