"""Signatures of the formats the Pillow plugin reads, for the registry.

Light (no Pillow, no NumPy): the registry imports this module to recognise the
formats; the plugin lives in :mod:`imgio.plugins.pillow` and is imported (with
Pillow) when it is tried.
"""
from __future__ import annotations

__all__ = ["sniff"]

_PREFIXES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")


def sniff(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts a PNG, JPEG, GIF, BMP or WebP.

    Parameters
    ----------
    head : bytes
        The first bytes of the file (at least 12 are needed for WebP).

    Returns
    -------
    bool
        True when one of those formats' signatures is there.
    """
    head = bytes(head[:12])
    return head.startswith(_PREFIXES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
