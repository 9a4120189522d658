"""The resource behind a read or a write: a path, bytes, a file object or ``"<bytes>"``.

A :class:`Request` does all URI parsing up front, so a missing file or a
missing parent directory is reported before any plugin is tried.  Plugins then
ask it for what they need (a file object, a local file name, the first bytes)
and call :meth:`Request.finish` when done.

Writes to a path are atomic: plugins write into a temporary file beside the
target, and :meth:`Request.finish` renames it over the target only when the
write succeeded.  A failed write leaves any previous file untouched and
removes the temporary file; its error (:class:`~imgio.errors.WriteError`)
names the target, not the temporary file.

Durability is opt-in: with ``IMGIO_DURABLE=1`` (or ``request.durable = True``,
the ``durable=True`` write keyword of plugins that take it) the temporary file
is ``fsync``-ed before the rename and the folder after it, so after a power cut
the target is the old file or the new one, never an empty or partial one.  By
default neither is synced: the write is atomic for every other process (they
see the old file or the complete new one) at the speed of the page cache, as
``tifffile.imwrite`` writes (see docs/limits.md, "What an atomic write costs").

Temporary files are named ``.<target>.<pid>.<random>.imgio-partial``.  A
process killed with ``kill -9`` cannot remove its own; the next write into the
same folder removes those whose process is gone, and reads refuse
``.imgio-partial`` files and never list them in folder stacks.
"""
from __future__ import annotations

import glob as _glob
import io
import os
import stat
import tempfile
from pathlib import Path, PurePath
from typing import Any

from ..errors import (FormatError, InitializationError, ReadOnlyError,  # noqa: F401
                      WriteError, dir_not_found, file_not_found)
# imageio's names, served from here as imageio serves them from imageio.core.request
from .compat import (URI_BYTES, URI_FILE, URI_FILENAME, URI_FTP, URI_HTTP,  # noqa: F401
                     URI_ZIPPED, IOMode, _Mode, resolve_compat_source)
from .remote import is_remote_url, parse_remote, remote_extension

__all__ = ["Request", "RETURN_BYTES", "IO_MODES", "IMAGE_MODES", "InitializationError",
           "IOMode", "URI_BYTES", "URI_FILE", "URI_FILENAME", "URI_ZIPPED", "URI_HTTP",
           "URI_FTP"]

#: the special write target whose result is returned as ``bytes``
RETURN_BYTES = "<bytes>"

IO_MODES = "rw"
#: image-mode letters of the v2 API: image, multi-image, volume, multi-volume, any
IMAGE_MODES = "iIvV?"

#: how many leading bytes plugin selection looks at
FIRST_BYTES = 1032
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


#: every valid io_mode string, parsed (``Request._parse_mode``'s answers)
_PARSED_MODES = {io + im: (io, im or "?") for io in IO_MODES for im in ("",) + tuple(IMAGE_MODES)}

#: POSIX paths: the extension can be found without ``os.path.splitext``
_POSIX = os.sep == "/" and os.altsep is None


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


#: the suffix of every temporary file a write creates beside its target
PARTIAL_SUFFIX = ".imgio-partial"


def _durable(request: Any = None) -> bool:
    """fsync before and after the rename?  ``request.durable`` if set, else ``IMGIO_DURABLE``."""
    chosen = getattr(request, "durable", None)
    if chosen is not None:
        return bool(chosen)
    return os.environ.get("IMGIO_DURABLE", "0").strip().lower() in ("1", "true", "yes", "on")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process
    return True


def clean_stale_partials(directory: str) -> list[str]:
    """Remove ``.imgio-partial`` files in ``directory`` left by dead processes.

    The writer's pid is part of the name; files of live processes (and names
    without a pid) are left alone.  Returns the removed paths.
    """
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(".") and name.endswith(PARTIAL_SUFFIX)):
            continue
        parts = name[:-len(PARTIAL_SUFFIX)].split(".")
        # "", target name pieces..., pid, random
        if len(parts) < 4 or not parts[-2].isdigit():
            continue
        if _pid_alive(int(parts[-2])):
            continue
        path = os.path.join(directory, name)
        try:
            os.remove(path)
            removed.append(path)
        except OSError:
            pass
    return removed


class Request:
    """A resource opened for reading (``"r"``) or writing (``"w"``).

    Parameters
    ----------
    uri : str, pathlib.Path, bytes, memoryview or file object
        What to read from or write to.  ``str`` paths may start with
        ``file://`` and may use ``~``.  ``"<bytes>"`` as a write target makes
        :meth:`finish` return the encoded bytes.  For reading, a directory or
        a glob pattern names a stack of slice files.
    io_mode : str
        ``"r"`` or ``"w"``, optionally followed by one v2 image-mode letter
        (``i I v V ?``), e.g. ``"rv"``.
    extension : str, optional
        Overrides the extension taken from the file name; must start with a dot.
    format_hint : str, optional
        Older spelling of ``extension`` (accepted for imageio compatibility).

    Attributes
    ----------
    kind : str
        ``"path"``, ``"dir"``, ``"glob"``, ``"bytes"``, ``"file"`` or ``"return_bytes"``.
    filename : str
        The absolute path, or a placeholder such as ``"<bytes>"`` used in messages.
    extension : str or None
        Lower-case extension with its dot (``".tif"``), or ``None``.
    """

    def __init__(self, uri: Any, io_mode: str, *, extension: str | None = None,
                 format_hint: str | None = None, storage_options: dict | None = None):
        self.io_mode, self.image_mode = self._parse_mode(io_mode)
        self.url: str | None = None  # an fsspec URL (see core/remote.py)
        self.storage_options = storage_options
        self.fs: Any = None
        self.fs_path: str | None = None
        self.raw_uri = uri
        self._file: Any = None  # the file object handed to plugins
        self._fd: int | None = None  # a bare descriptor from fileno(), before get_file()
        self._own_file = False  # whether finish() must close self._file
        self._tmp_path: str | None = None  # atomic write target
        self._local_tmp: str | None = None  # temp copy for reading bytes by name
        self._result: bytes | None = None
        self._finished = False
        self._bytes: bytes | None = None
        self._head: bytes | None = None
        self._size: int | None = None  # of a file being read, from the stat at open
        self.path: str | None = None
        self.kind = self._parse_uri(uri)
        for name, value in (() if extension is None and format_hint is None else
                            (("extension", extension), ("format_hint", format_hint))):
            if value is not None and not (isinstance(value, str) and value.startswith(".")):
                raise ValueError(
                    f"`{name}` should be a file extension starting with a `.`, but is `{value}`."
                )
        ext = extension or format_hint
        self.extension = ext.lower() if ext else self._extension_from_name()

    # -- parsing ---------------------------------------------------------------
    @staticmethod
    def _parse_mode(io_mode: str) -> tuple[str, str]:
        parsed = _PARSED_MODES.get(io_mode) if type(io_mode) is str else None
        if parsed is not None:
            return parsed
        if not isinstance(io_mode, str) or not 1 <= len(io_mode) <= 2 \
                or io_mode[0] not in IO_MODES \
                or (len(io_mode) == 2 and io_mode[1] not in IMAGE_MODES):
            raise ValueError(
                f"Invalid mode {io_mode!r}: expected 'r' or 'w', optionally followed by "
                f"one of {' '.join(IMAGE_MODES)} (e.g. 'rv')."
            )
        return io_mode[0], (io_mode[1] if len(io_mode) == 2 else "?")

    def _parse_uri(self, uri: Any) -> str:
        reading = self.io_mode == "r"
        # imageio's extra sources: "imageio:<name>", "a.zip/b.png", non-seekable streams
        resolved = resolve_compat_source(uri, reading)
        if resolved is not None:
            uri, name = resolved
            if name is None:  # an unnamed stream
                name = RETURN_BYTES
            if isinstance(uri, bytes):
                self._bytes, self.filename, self._compat_name = uri, name, name
                return "bytes"
        if isinstance(uri, PurePath):
            uri = os.fspath(uri)
        if isinstance(uri, str):
            if uri == RETURN_BYTES and not reading:
                self.filename = RETURN_BYTES
                return "return_bytes"
            if is_remote_url(uri):
                return parse_remote(self, uri)
            if uri.startswith("file://"):
                uri = uri[len("file://"):]
            if uri.startswith(("http://", "https://", "ftp://", "ftps://")):
                raise FormatError(
                    f"Cannot open {uri!r}: imgio reads local files, bytes and file objects "
                    "only; download the file first."
                )
            if uri[:1] == "~":
                uri_path = os.path.expanduser(uri)
            else:
                uri_path = uri
            # abspath, without its getcwd() call for paths that are already absolute
            path = (os.path.normpath(uri_path) if uri_path[:1] == "/" and os.sep == "/"
                    else os.path.abspath(uri_path))
            self.path = self.filename = path
            if reading:
                try:
                    st = os.stat(path)  # one system call for every question
                    mode = st.st_mode
                except OSError:
                    mode = 0
                if stat.S_ISDIR(mode):
                    return "dir"
                if stat.S_ISREG(mode):
                    if path.endswith(PARTIAL_SUFFIX):
                        raise FormatError(
                            f"{path} is the temporary file of an unfinished imgio write "
                            "(its writer was killed or is still running), not an image.")
                    self._size = st.st_size
                    return "path"
                if _is_glob(uri) and _glob.glob(os.path.expanduser(uri)):
                    return "glob"
                raise file_not_found(path)
            if os.path.isdir(path) and not path.lower().endswith(".zarr"):
                raise FormatError(f"Cannot write to {path}: it is a directory, not a file name.")
            if not os.path.isdir(os.path.dirname(path)):
                raise dir_not_found(os.path.dirname(path))
            return "path"
        if isinstance(uri, (bytes, memoryview)):
            if not reading:
                raise FormatError(
                    f"Cannot write to a bytes object ({self._short(uri)}); use the target "
                    f"{RETURN_BYTES!r} to get the encoded bytes back."
                )
            self._bytes = bytes(uri)
            self.filename = RETURN_BYTES
            return "bytes"
        if reading and hasattr(uri, "read"):
            self._file = uri
            self.filename = self._name_of(uri)
            return "file"
        if not reading and hasattr(uri, "write"):
            self._file = uri
            self.filename = self._name_of(uri)
            return "file"
        raise FormatError(
            f"Cannot understand the given URI {self._short(uri)}: expected a path, "
            f"bytes, a file object{'' if reading else ' or ' + repr(RETURN_BYTES)}."
        )

    @staticmethod
    def _short(obj: Any) -> str:
        text = repr(obj)
        return text if len(text) <= 60 else text[:57] + "..."

    @staticmethod
    def _name_of(fileobj: Any) -> str:
        name = getattr(fileobj, "name", None)
        return name if isinstance(name, str) else f"<file object {type(fileobj).__name__}>"

    def _extension_from_name(self) -> str | None:
        compat = getattr(self, "_compat_name", None)
        if compat is not None:  # a ZIP member or a named stream read into memory
            return os.path.splitext(compat)[1].lower() or None
        name = self.filename
        if self.url is not None:
            return remote_extension(self.fs_path or "")
        if self.kind == "file":
            name = getattr(self.raw_uri, "name", None)
            if not isinstance(name, str):
                return None
        if self.kind in ("bytes", "return_bytes", "dir"):
            return None
        if _POSIX and type(name) is str:
            # os.path.splitext: the last dot after the last separator, unless the
            # name before it is only dots (".bashrc" has no extension)
            dot = name.rfind(".")
            sep = name.rfind("/")
            if dot > sep + 1 and name[sep + 1:dot].strip("."):
                return name[dot:].lower() or None
            return None
        suffix = os.path.splitext(name)[1].lower()
        return suffix or None

    # -- what plugins use --------------------------------------------------------
    @property
    def mode(self) -> str:
        """The two-letter mode, e.g. ``"ri"`` (also ``mode.io_mode``, as in imageio)."""
        return _Mode(self.io_mode + self.image_mode)

    @property
    def _uri_type(self) -> int:
        """imageio's URI kind constant (``URI_BYTES`` ...), for plugins written for imageio."""
        return {"bytes": URI_BYTES, "return_bytes": URI_BYTES, "file": URI_FILE}.get(
            self.kind, URI_FILENAME)

    def __repr__(self) -> str:
        return f"<Request {self.mode} {self.filename}>"

    def get_file(self):
        """A binary file object for the resource.

        For reading: the opened file, a ``BytesIO`` over the bytes, or the
        caller's file object (never closed by imgio).  For writing: a temporary
        file beside the target (renamed into place by :meth:`finish`), a
        ``BytesIO`` for ``"<bytes>"``, or the caller's file object.
        """
        if self._file is not None:
            return self._file
        if self.kind == "path":
            if self.io_mode == "r":
                # what open(path, "rb") builds, without its isatty() system call;
                # on the descriptor fileno() opened if there is one
                if self._fd is not None:
                    raw = io.FileIO(self._fd, "rb", closefd=True)
                    self._fd = None  # the file object owns it now
                    raw.name = self.path
                else:
                    raw = io.FileIO(self.path, "rb")
                try:
                    blksize = getattr(raw, "_blksize", 0)
                    self._file = io.BufferedReader(
                        raw, blksize if blksize > 1 else io.DEFAULT_BUFFER_SIZE)
                except BaseException:
                    raw.close()
                    raise
            else:
                # readable too: some writers finish a file by rewriting its header
                self._file = self.open_local()
            self._own_file = True
        elif self.kind == "bytes":
            self._file = io.BytesIO(self._bytes)
            self._own_file = True
        elif self.kind == "return_bytes":
            self._file = io.BytesIO()
            self._own_file = False  # kept until finish() takes its value
        elif self.kind == "url" and self.io_mode == "w":
            # a local temporary file, uploaded by finish() when the write succeeded
            self._file = open(self.get_local_filename(), "w+b")
            self._own_file = True
        else:
            raise FormatError(f"{self.filename} is a {self.kind}, not a single file.")
        return self._file

    def open_local(self, buffering: int = -1):
        """The local file a write fills (:meth:`get_local_filename`), opened read-write.

        Opened ``"r+b"``, not ``"w+b"``: ``mkstemp`` made it empty, and truncating a
        file makes ext4 flush it when it is closed (``auto_da_alloc``), a cost a fresh
        target need not pay.  A file that is not empty is truncated.

        Parameters
        ----------
        buffering : int, optional
            As for :func:`open` (``0``: unbuffered, for h5py's file-object driver).
        """
        fh = open(self.get_local_filename(), "r+b", buffering=buffering)
        if os.fstat(fh.fileno()).st_size:
            fh.truncate()
        return fh

    def get_local_filename(self) -> str:
        """A name on disk for backends that insist on one.

        For reading a path this is the path itself; bytes and file objects are
        copied to a temporary file (removed by :meth:`finish`).  For writing a
        path this is the temporary file beside the target.
        """
        if self.io_mode == "r":
            if self.kind == "path":
                return self.path
            if self._local_tmp is None:
                fd, self._local_tmp = tempfile.mkstemp(prefix="imgio-", suffix=self.extension or "")
                with os.fdopen(fd, "wb") as fh:
                    fh.write(self.firstbytes_all())
            return self._local_tmp
        if self.kind == "path":
            if self._tmp_path is None:
                directory, name = os.path.split(self.path)
                clean_stale_partials(directory)
                try:
                    fd, self._tmp_path = tempfile.mkstemp(
                        prefix=f".{name}.{os.getpid()}.", suffix=PARTIAL_SUFFIX, dir=directory)
                except OSError as exc:
                    raise self.write_error(exc) from exc
                os.close(fd)
            return self._tmp_path
        if self._local_tmp is None:
            fd, self._local_tmp = tempfile.mkstemp(prefix="imgio-", suffix=self.extension or "")
            os.close(fd)
        return self._local_tmp

    def firstbytes_all(self) -> bytes:
        """Every byte of an in-memory or file-object resource (used for temp copies)."""
        if self.kind == "bytes":
            return self._bytes
        fh = self.get_file()
        pos = fh.tell()
        fh.seek(0)
        data = fh.read()
        fh.seek(pos)
        return data

    def __del__(self):
        # a bare descriptor has no file object to close it when collected
        fd = getattr(self, "_fd", None)
        if fd is not None:
            self._fd = None
            try:
                os.close(fd)
            except OSError:
                pass

    def fileno(self) -> int:
        """An OS file descriptor of a file being read, for positioned reads.

        Opened without a Python file object (cheaper, for plugins that only
        ``os.pread``); a later :meth:`get_file` wraps the same descriptor.  Do
        not move its offset or close it: :meth:`finish` closes it.
        """
        if self._file is not None:
            return self._file.fileno()
        if self.kind == "path" and self.io_mode == "r":
            if self._fd is None:
                self._fd = os.open(self.path, _READ_FLAGS)
            return self._fd
        return self.get_file().fileno()

    @property
    def firstbytes(self) -> bytes:
        """The first bytes of a readable single-file resource ('' for folders).

        Read once and cached; the file handle opened for it is the one
        :meth:`get_file` returns afterwards (rewound), so a read opens the file once.
        """
        if self._head is not None:
            return self._head
        if self.io_mode != "r" or self.kind in ("dir", "glob"):
            return b""
        if self.kind == "bytes":
            self._head = self._bytes[:FIRST_BYTES]
            return self._head
        if self.kind == "path" and self._file is None:
            # our own file, just opened at offset 0: a positioned read leaves the
            # descriptor (and any buffer over it) untouched, so no tell/seek is needed
            try:
                data = os.pread(self.fileno(), FIRST_BYTES, 0)
            except (OSError, AttributeError, ValueError):
                data = None
            if data is not None:
                self._head = data
                return data
        fh = self.get_file()
        try:
            pos = fh.tell()
            data = fh.read(FIRST_BYTES)
            fh.seek(pos)
        except (OSError, AttributeError, ValueError) as exc:
            raise FormatError(
                f"Cannot read {self.filename}: the file object must be seekable so that "
                "imgio can look at its first bytes and rewind."
            ) from exc
        self._head = data
        return data

    def size(self) -> int | None:
        """Size in bytes of a readable single-file resource, when it can be known."""
        if self.kind == "path":
            if self._size is None:
                self._size = os.path.getsize(self.path)
            return self._size
        if self.kind == "bytes":
            return len(self._bytes)
        return None

    def paths(self) -> list[str]:
        """The files of a folder or glob resource, unsorted (plugins sort them)."""
        if self.kind == "dir":
            return [str(p) for p in Path(self.path).iterdir() if p.is_file()
                    and not p.name.startswith(".")]
        if self.kind == "glob":
            return [p for p in _glob.glob(os.path.expanduser(os.fspath(self.raw_uri)))
                    if os.path.isfile(p)]
        return [self.path] if self.path else []

    def finish(self, success: bool = True) -> bytes | None:
        """Release the resource; commit or discard a write.

        Returns the encoded bytes for the ``"<bytes>"`` target, else ``None``.
        Calling it more than once is harmless.
        """
        if self._finished:
            return self._result
        self._finished = True
        if self.kind == "return_bytes" and self._file is not None:
            self._result = self._file.getvalue() if success else None
            self._file = None
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
        if self._own_file and self._file is not None:
            try:
                self._file.close()  # flushes: a full disk may raise here
            except BaseException:
                self._file = None
                self._discard_tmp()
                self._discard_local()
                raise
            self._file = None
        if self._tmp_path is not None:
            if success:
                try:
                    self._commit()
                except BaseException:
                    self._discard_tmp()
                    self._discard_local()
                    raise
            else:
                self._discard_tmp()
            self._tmp_path = None
        if self._local_tmp is not None:
            if success and self.kind == "return_bytes":
                with open(self._local_tmp, "rb") as fh:
                    self._result = fh.read()
            elif success and self.kind == "file" and self.io_mode == "w":
                with open(self._local_tmp, "rb") as fh:
                    self._file_write_back(fh)
            elif success and self.kind == "url":
                self.fs.put_file(self._local_tmp, self.fs_path)
            try:
                os.remove(self._local_tmp)
            except FileNotFoundError:
                pass
            self._local_tmp = None
        return self._result

    def _commit(self) -> None:
        """fsync (if durable, see :func:`_durable`), chmod and rename the temporary file."""
        tmp = self._tmp_path
        durable = _durable(self)
        try:
            if durable:
                fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.chmod(tmp, self._target_mode())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise self.write_error(exc) from exc
        self._tmp_path = None
        if durable and hasattr(os, "O_DIRECTORY"):
            try:  # the rename itself reaches the disk with the folder's metadata
                dfd = os.open(os.path.dirname(self.path), os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            except OSError:
                pass  # some file systems cannot sync a folder; the data are synced

    def _discard_tmp(self) -> None:
        if self._tmp_path is not None:
            try:
                os.remove(self._tmp_path)
            except OSError:
                pass
            self._tmp_path = None

    def _discard_local(self) -> None:
        if self._local_tmp is not None:
            try:
                os.remove(self._local_tmp)
            except OSError:
                pass
            self._local_tmp = None

    def write_error(self, exc: BaseException) -> WriteError:
        """A :class:`WriteError` for ``exc`` that names the target, not the temporary file."""
        if isinstance(exc, WriteError):
            return exc
        err = getattr(exc, "errno", None)
        reason = getattr(exc, "strerror", None) or str(exc)
        for tmp in (self._tmp_path, self._local_tmp):
            if tmp:
                reason = reason.replace(tmp, self.filename)
        if err:
            error = WriteError(err, f"Cannot write {self.filename}: {reason}")
        else:
            error = WriteError(f"Cannot write {self.filename}: {reason}")
        error.target = self.filename
        return error

    def _target_mode(self) -> int:
        """Permissions for the committed file: the old file's, else the umask default.

        (``mkstemp`` creates temporary files with mode 0600.)
        """
        try:
            return os.stat(self.path).st_mode & 0o7777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            return 0o666 & ~umask

    def _file_write_back(self, fh) -> None:
        target = self.raw_uri
        while chunk := fh.read(1 << 20):
            target.write(chunk)

    @property
    def finished(self) -> bool:
        return self._finished

    def check_writable(self) -> None:
        """Raise :class:`ReadOnlyError` unless the request was opened for writing."""
        if self.io_mode != "w":
            raise ReadOnlyError(f"{self.filename} was opened for reading, not writing.")
