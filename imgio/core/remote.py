"""Remote resources: fsspec URLs (``s3://``, ``http(s)://``, ``memory://`` ...) for
:class:`~imgio.core.request.Request`, and plain http(s) downloads without fsspec."""
from __future__ import annotations

import io
import os

from ..errors import FormatError, file_not_found

__all__ = ["REMOTE_BLOCK_SIZE", "url_to_fs", "parse_remote", "download", "is_remote_url",
           "remote_extension"]


#: URL schemes read and written through fsspec (``file://`` stays a local path)
_REMOTE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "http", "https", "memory",
                   "ftp", "sftp", "ssh", "hdfs", "webhdfs")
#: block size of remote file objects: one range request reads at least this much
REMOTE_BLOCK_SIZE = 1 << 16
#: metadata keys that make a remote folder a Zarr store
_ZARR_KEYS = ("zarr.json", ".zgroup", ".zarray")


def is_remote_url(text: str) -> bool:
    """Whether ``text`` is a URL of a scheme read through fsspec."""
    head, sep, _ = text.partition("://")
    return bool(sep) and head.lower() in _REMOTE_SCHEMES


def remote_extension(path: str) -> str | None:
    """The lower-case extension of the last part of a URL path, or None."""
    name = path.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else None


def url_to_fs(url: str, storage_options: dict | None = None):
    """``(filesystem, path)`` for an fsspec URL, or an install hint if the backend is missing."""
    from ..errors import BackendMissingError
    try:
        import fsspec
    except ImportError as exc:
        raise BackendMissingError("remote", "fsspec", "zarr") from exc
    try:
        return fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as exc:  # the protocol's package (s3fs, gcsfs, aiohttp ...)
        import re
        module = (getattr(exc.__cause__, "name", None) or getattr(exc, "name", None)
                  or next(iter(re.findall(r"[Ii]nstall (\w+)", str(exc))), None) or "fsspec")
        raise BackendMissingError("remote", module,
                                  "zarr" if module in ("s3fs", "fsspec") else None) from exc


def parse_remote(self, uri: str) -> str:
    """For :class:`~imgio.core.request.Request` ``self``: the ``kind`` of an fsspec URL: ``"file"`` (a file object), ``"urldir"`` (a Zarr store)
    or, for writing one file, ``"url"`` (a local temp file uploaded by finish)."""
    self.url = self.filename = uri
    try:
        self.fs, self.fs_path = url_to_fs(uri, self.storage_options)
    except ImportError:
        # imageio reads http(s) with the standard library only: so does imgio when fsspec
        # (or its aiohttp) is missing; storage options and writes still need fsspec
        if self.io_mode != "r" or self.storage_options \
                or uri.partition("://")[0].lower() not in ("http", "https") \
                or remote_extension(uri.partition("?")[0].rstrip("/")) == ".zarr":
            raise
        self.url = None  # no filesystem: plugins see bytes named by the URL
        self._bytes = download(uri)
        from urllib.parse import urlsplit
        self._compat_name = urlsplit(uri).path  # gives the extension
        return "bytes"
    fs, path = self.fs, self.fs_path
    ext = remote_extension(path)
    if self.io_mode == "w":
        return "urldir" if ext == ".zarr" else "url"
    if ext == ".zarr":  # the zarr plugin finds its metadata (or says the store is missing)
        return "urldir"
    if ext is None:  # a file with a known extension is opened without a listing
        base = path.rstrip("/")
        if any(fs.exists(f"{base}/{key}") for key in _ZARR_KEYS):
            return "urldir"
        if fs.isdir(path):
            if not fs.exists(path):
                raise file_not_found(uri)
            raise FormatError(f"Cannot read {uri}: it is a remote folder without Zarr "
                              "metadata (zarr.json, .zgroup or .zarray).")
    try:
        self._file = fs.open(path, "rb", block_size=REMOTE_BLOCK_SIZE, cache_type="readahead")
    except FileNotFoundError:
        raise file_not_found(uri) from None
    self._own_file = True
    if not getattr(self._file, "seekable", lambda: False)():
        self._file.close()
        self._file = None
        raise FormatError(f"Cannot read {uri}: the server does not support range requests "
                          "(or sends no Content-Length), so the file cannot be read in parts.")
    self._size = getattr(self._file, "size", None)
    return "file"



#: seconds to wait for a server without fsspec (imageio's variable and default)
_DEFAULT_TIMEOUT = 5.0
#: bytes read per call while downloading
_DOWNLOAD_CHUNK = 1 << 20


def download(url: str) -> bytes:
    """Every byte of an http(s) URL, read with :mod:`urllib` (no fsspec needed).

    Refuses with :class:`~imgio.errors.ImageTooLargeError`, naming the URL, a
    ``Content-Length`` above the size guard's limit (:func:`imgio.core.limits.max_bytes`)
    or, without one, as soon as more than the limit has arrived.  A missing resource
    (HTTP 404/410) raises :class:`FileNotFoundError`.  The timeout is imageio's:
    ``$IMAGEIO_REQUEST_TIMEOUT`` seconds, else 5.
    """
    import http.client
    import urllib.error
    import urllib.request

    from ..errors import CorruptFileError, ImageTooLargeError
    from .limits import _size, _source, max_bytes
    cap = max_bytes()

    def too_large(what: str) -> ImageTooLargeError:
        return ImageTooLargeError(
            f"Cannot read {url}: {what}, more than the size limit of {_size(cap)} "
            f"({_source(None)}). "
            "Install fsspec to read it in parts, or raise the limit "
            "(imgio.core.limits.MAX_BYTES or IMGIO_MAX_BYTES).")

    env = os.environ.get("IMAGEIO_REQUEST_TIMEOUT", "")
    timeout = float(env) if env.isdigit() else _DEFAULT_TIMEOUT
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code in (404, 410):
            raise file_not_found(url) from None
        raise OSError(f"Cannot read {url}: the server answered HTTP {exc.code} "
                      f"({exc.reason}).") from None
    except urllib.error.URLError as exc:
        raise OSError(f"Cannot read {url}: {exc.reason}") from exc
    with response:
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            raise too_large(f"the server declares {_size(int(declared))} (Content-Length)")
        buf = io.BytesIO()  # getvalue() hands over its buffer without a copy
        received = 0
        try:
            # read1: what has arrived (at most a chunk), so the guard acts as soon as it can
            while chunk := response.read1(_DOWNLOAD_CHUNK):
                received += len(chunk)
                if received > cap:
                    raise too_large(f"{received:,} bytes arrived")
                buf.write(chunk)
        except http.client.IncompleteRead as exc:  # a chunked body cut short
            raise CorruptFileError(f"Cannot read {url}: the connection ended after "
                                   f"{received + len(exc.partial):,} bytes, before the end "
                                   "of the body.") from None
        if declared.isdigit() and received != int(declared):  # all or nothing
            raise CorruptFileError(f"Cannot read {url}: the connection ended after "
                                   f"{received:,} of the {int(declared):,} bytes the server "
                                   "declared (Content-Length).")
    return buf.getvalue()

