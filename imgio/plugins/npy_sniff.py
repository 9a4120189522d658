"""Signatures of NumPy's ``.npy`` files and ``.npz`` archives, for the registry.

Light (no NumPy): the registry imports this module to recognise the formats;
the plugins themselves live in :mod:`imgio.plugins.npy` and are imported when
they are tried.
"""
from __future__ import annotations

__all__ = ["sniff", "sniff_npz"]


def sniff(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts a ``.npy`` file.

    Parameters
    ----------
    head : bytes
        The first bytes of the file (at least 6 are needed).

    Returns
    -------
    bool
        True when the NumPy magic string ``b"\\x93NUMPY"`` is there.
    """
    return bytes(head[:6]) == b"\x93NUMPY"


def sniff_npz(head: bytes) -> bool:
    """Whether ``head`` starts a ZIP archive (what ``numpy.savez`` writes).

    Parameters
    ----------
    head : bytes
        The first bytes of the file (at least 4 are needed).

    Returns
    -------
    bool
        True for a ZIP local file header or an empty archive's end record; the
        plugin then checks that the members are ``.npy`` files.
    """
    return bytes(head[:4]) in (b"PK\x03\x04", b"PK\x05\x06")
