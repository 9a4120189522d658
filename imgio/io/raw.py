"""Positioned reads into caller-owned buffers: the one raw-I/O path every reader uses.

Every plugin that reads bytes at known offsets (TIFF strips and tiles, HDF5
chunks, NPY runs, the fast TIFF path) goes through :func:`pread_into` or
:func:`pread_ranges`, so short reads, truncation messages and threading are
decided once.  Nothing here allocates a file-sized buffer: the caller passes
the view to fill (allocated after the size guard).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

__all__ = ["pread_into", "pread_ranges", "open_fd", "Truncated"]

#: one system call reads at most this much (keeps other threads responsive)
_CALL_BYTES = 1 << 24
#: below this many bytes per thread, threads cost more than they give
_THREAD_BYTES = 8 << 20


class Truncated(EOFError):
    """The file ended before a read was complete (``offset``, ``wanted``, ``got``).

    Plugins turn it into :class:`imgio.errors.CorruptFileError` naming their
    file and what was being read; it is an EOFError so generic callers catch it.
    """

    def __init__(self, offset: int, wanted: int, got: int) -> None:
        self.offset, self.wanted, self.got = offset, wanted, got
        super().__init__(f"the file ends {wanted - got} bytes before the {wanted} bytes "
                         f"at offset {offset} do (read {got})")


def open_fd(path: str | os.PathLike) -> int:
    """A read-only descriptor for ``path`` (binary on Windows).

    Parameters
    ----------
    path : str or os.PathLike
        The file to open.
    """
    return os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_BINARY", 0))


def pread_into(fd: int, view: memoryview, offset: int) -> int:
    """Fill ``view`` (a writable byte view) from ``offset``, looping over short reads.

    Parameters
    ----------
    fd : int
        An open file descriptor; its file position is neither used nor moved.
    view : memoryview
        Writable, contiguous, format ``"B"`` (``memoryview(arr).cast("B")``).
    offset : int
        Byte offset in the file where ``view[0]`` comes from.

    Returns
    -------
    int
        ``len(view)``.

    Raises
    ------
    Truncated
        If the file ends before ``view`` is full.
    """
    total = len(view)
    done = 0
    while done < total:
        got = os.preadv(fd, [view[done:done + _CALL_BYTES]], offset + done)
        if got <= 0:
            raise Truncated(offset, total, done)
        done += got
    return total


def pread_ranges(fd: int, views: Sequence[memoryview], offsets: Sequence[int], *,
                 workers: int = 1,
                 after: Callable[[int], None] | None = None) -> None:
    """Fill ``views[i]`` from ``offsets[i]`` for every ``i``, on up to ``workers`` threads.

    A single large view is split into page-aligned pieces so several threads
    share it.  ``after(i)``, when given, runs on the reading thread once
    ``views[i]`` is full (for example to decode or byte-swap it in place).

    Parameters
    ----------
    fd : int
        An open file descriptor.
    views : sequence of memoryview
        Writable byte views, one per range.
    offsets : sequence of int
        File offsets, one per view.
    workers : int, optional
        Threads to use; fewer are used when the ranges are small.
    after : callable, optional
        ``after(i)`` is called once range ``i`` is read.

    Raises
    ------
    Truncated
        If the file ends inside a range (the first failing range, in order).
    """
    if len(views) != len(offsets):
        raise ValueError(f"{len(views)} views for {len(offsets)} offsets")
    total = sum(len(v) for v in views)
    workers = max(1, min(int(workers), total // _THREAD_BYTES or 1))
    if len(views) == 1 and workers > 1 and after is None:
        view, offset = views[0], offsets[0]
        step = -(-len(view) // workers)
        step += -step % 4096
        views = [view[a:a + step] for a in range(0, len(view), step)]
        offsets = [offset + a for a in range(0, len(view), step)]

    def one(i: int) -> None:
        pread_into(fd, views[i], offsets[i])
        if after is not None:
            after(i)

    if workers == 1 or len(views) == 1:
        for i in range(len(views)):
            one(i)
        return
    with ThreadPoolExecutor(min(workers, len(views))) as pool:
        for f in [pool.submit(one, i) for i in range(len(views))]:
            f.result()
