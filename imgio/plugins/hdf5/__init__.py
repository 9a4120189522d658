"""HDF5 in one place: the h5py plugin, BigDataViewer/Imaris layouts, chunk decoding
and region reads.

Importing this package is light (no h5py): the registry uses :func:`sniff`; the
plugin class lives in :mod:`imgio.plugins.hdf5.plugin`.
"""
from __future__ import annotations

__all__ = ["sniff"]

_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def sniff(head: bytes) -> bool:
    """Whether ``head`` holds an HDF5 superblock signature.

    The superblock sits at offset 0 or, after a user block, at 512, 1024, ...;
    the first 1,032 bytes cover offsets 0, 512 and 1024.

    Parameters
    ----------
    head : bytes
        The first bytes of the file.

    Returns
    -------
    bool
    """
    return any(bytes(head[o:o + 8]) == _SIGNATURE for o in (0, 512, 1024))
