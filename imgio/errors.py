"""Every exception imgio raises on purpose lives here.

Each class subclasses the builtin exceptions that imageio, tifffile and h5py
users already catch, so ``except OSError`` or ``except ValueError`` written
for those libraries keeps working.

Messages name the file and say what was expected and what was found.
"""
from __future__ import annotations

import errno
import os

__all__ = [
    "ImgioError",
    "FormatError",
    "NoPluginError",
    "CorruptFileError",
    "ImageTooLargeError",
    "MemtestError",
    "ShapeError",
    "DTypeError",
    "BackendMissingError",
    "InitializationError",
    "ClosedError",
    "ReadOnlyError",
    "SelectionError",
    "ExternalReferenceError",
    "WriteError",
    "PartialReadWarning",
    "file_not_found",
    "dir_not_found",
]


class ImgioError(Exception):
    """Base class of every imgio error (catch this to catch them all)."""


class FormatError(ImgioError, OSError, ValueError):
    """The resource cannot be read or written in the requested format.

    Subclasses both :class:`OSError` (what imageio v3 raises) and
    :class:`ValueError` (what imageio v2 raises), so code written for either
    keeps working.
    """


class NoPluginError(FormatError):
    """No plugin could open the resource (unknown, empty or undecodable file)."""


class CorruptFileError(FormatError):
    """The file is recognised but damaged: truncated, bad offsets, corrupt data."""


class ImageTooLargeError(FormatError, MemoryError):
    """A file declares more pixels than the configured limit allows.

    Raised before any allocation, like Pillow's decompression-bomb guard.
    """


class MemtestError(ImgioError, RuntimeError):
    """A v2 ``mimread``/``mvolread`` went past its ``memtest`` limit."""


class ShapeError(ImgioError, ValueError):
    """An array has a shape the operation or format cannot handle."""


class DTypeError(ImgioError, TypeError, ValueError):
    """An array has a dtype the operation or format cannot handle."""


class BackendMissingError(ImgioError, ImportError):
    """An optional backend (tifffile, h5py, Pillow, dask) is not installed."""

    def __init__(self, plugin: str, module: str, extra: str | None = None):
        hint = f"pip install imgio[{extra}]" if extra else f"pip install {module}"
        super().__init__(
            f"The `{plugin}` plugin needs the `{module}` package, which is not "
            f"installed. Install it with `{hint}`."
        )
        self.plugin = plugin
        self.module = module


class InitializationError(ImgioError, ValueError):
    """Raised by a plugin's constructor to say "this resource is not mine".

    Internal signal for plugin selection; users see :class:`NoPluginError`.
    """


class ClosedError(ImgioError, RuntimeError):
    """A reader, writer or plugin was used after ``close()`` (imageio raises RuntimeError)."""


class ReadOnlyError(ImgioError, OSError, ValueError):
    """A write was requested on something that can only be read."""


class ExternalReferenceError(FormatError, PermissionError):
    """A file refers to data outside what the user named (HDF5 external storage,
    virtual datasets or external links, OME-TIFF planes in another folder, a
    folder entry that is a symlink out of the folder).

    Refused by default; pass ``allow_external=True`` to follow such references.
    """


class WriteError(ImgioError, OSError):
    """A write failed (full disk, read-only target, missing permission ...).

    The message names the target, never the temporary file; ``errno`` is the
    system's error number when there is one, ``target`` the file that was to be
    written.  The temporary file is removed.
    """

    target: str | None = None


class PartialReadWarning(UserWarning):
    """A damaged file was read partially because the caller passed ``allow_partial=True``."""


def file_not_found(path: str | os.PathLike) -> FileNotFoundError:
    """A :class:`FileNotFoundError` for ``path`` with ``errno`` and ``filename`` set.

    Parameters
    ----------
    path : str or os.PathLike
        The missing file.
    """
    return FileNotFoundError(errno.ENOENT, "No such file or directory", os.fspath(path))


def dir_not_found(path: str | os.PathLike) -> FileNotFoundError:
    """A :class:`FileNotFoundError` for a missing parent directory of a write target.

    Parameters
    ----------
    path : str or os.PathLike
        The write target whose folder is missing.
    """
    return FileNotFoundError(
        errno.ENOENT, "The directory to write into does not exist", os.fspath(path)
    )


class SelectionError(ImgioError, IndexError):
    """A selection keyword (``index``, ``level``, ``series``, ``page``, ``dataset``,
    ``setup`` ...) asks for something the file does not hold.

    Subclasses :class:`IndexError`, what Python and imageio raise for an index
    out of range; the message names the file, what was asked and what exists.
    """


def selection_error(filename, what: str, value, n: int, plural: str | None = None
                    ) -> SelectionError:
    """``<file>: level 3 requested; the file has levels 0-2``.

    Parameters
    ----------
    filename : str
        The file, as the message names it.
    what : str
        What was selected (``"level"``).
    value : Any
        The requested number.
    n : int
        How many there are.
    plural : str, optional
        Plural of ``what`` when it is not ``what + "s"``.
    """
    plural = plural or (what if what.endswith("s") else what + "s")  # "series" stays
    if n <= 0:
        has = f"no {plural}"
    elif n == 1:
        has = f"only {what} 0"
    else:
        has = f"{plural} 0-{n - 1}"
    return SelectionError(f"{filename}: {what} {value} requested; the file has {has}.")


def missing_selection(filename, what: str, value, available, plural: str | None = None
                      ) -> SelectionError:
    """``<file>: dataset '/nope' requested; the file has datasets: /a (4, 5) uint8; /b ...``.

    For selections by name (``available``: one description per thing that exists).

    Parameters
    ----------
    filename : str
        The file, as the message names it.
    what : str
        What was selected (``"dataset"``).
    value : Any
        The requested name.
    available : iterable of str
        One description per thing that exists.
    plural : str, optional
        Plural of ``what`` when it is not ``what + "s"``.
    """
    plural = plural or (what + "s")
    available = list(available)
    has = f"{plural}: " + "; ".join(available) if available else f"no {plural}"
    return SelectionError(f"{filename}: {what} {value!r} requested; the file has {has}.")


def unexpected_keyword(func: str, names) -> TypeError:
    """The TypeError Python raises for a keyword a function does not take.

    Parameters
    ----------
    func : str
        The function's name, as the message shows it.
    names : iterable of str
        The keywords it does not take (the first is named).
    """
    names = sorted(names)
    return TypeError(f"{func}() got an unexpected keyword argument {names[0]!r}")


class PluginInitError(FormatError, RuntimeError):
    """An explicitly chosen plugin cannot open the resource (``imopen(..., plugin=)``).

    An ``OSError`` (imageio v3) and, as imageio's ``legacy_mode``/v2 raises, a
    ``RuntimeError`` (and a ``ValueError``).
    """
