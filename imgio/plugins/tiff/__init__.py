"""TIFF in one place: the tifffile plugin, the Cython fast path, physical metadata,
the writer and region reads.

Importing this package is light (no tifffile): the registry uses :func:`sniff`;
the plugin class lives in :mod:`imgio.plugins.tiff.plugin` and is imported when
the plugin is tried.
"""
from __future__ import annotations

__all__ = ["sniff"]

_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def sniff(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts a TIFF or BigTIFF.

    Parameters
    ----------
    head : bytes
        The first bytes of the file (at least 4 are needed).

    Returns
    -------
    bool
        True for the classic and BigTIFF signatures, either byte order.
    """
    return bytes(head[:4]) in _SIGNATURES
