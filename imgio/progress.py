"""Progress reporting for long reads and writes.

Functions that take a long time accept a ``progress`` argument:

* ``False`` or ``None`` -- report nothing (the default everywhere);
* ``True`` -- a tqdm bar on standard error, shown only when standard error is
  a terminal (so logs and pipes stay clean);
* a callable ``progress(done, total)`` -- called after each step with the
  number of steps done and the total (``None`` when unknown).

:func:`make_progress` turns any of these into one object to call, so a
library function needs three lines to support them all:

>>> from imgio.progress import make_progress
>>> seen = []
>>> with make_progress(lambda done, total: seen.append((done, total)), 3) as report:
...     for i in range(3):
...         report(i + 1)
>>> seen
[(1, 3), (2, 3), (3, 3)]
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Iterable, Iterator, TypeVar

__all__ = ["Progress", "make_progress", "track"]

T = TypeVar("T")

ProgressArg = Any  # bool | None | Callable[[int, int | None], Any]


class Progress:
    """A progress reporter: call it with the number of steps done.

    Make one with :func:`make_progress`.  Calling it after the end is
    harmless; :meth:`close` (or leaving the ``with`` block) finishes a bar.

    Parameters
    ----------
    callback : callable or None
        ``callback(done, total)``, or ``None`` to report nothing.
    total : int or None
        The number of steps, if known.
    bar : object or None
        A tqdm bar that this reporter drives and closes.
    """

    def __init__(self, callback: Callable[[int, int | None], Any] | None = None,
                 total: int | None = None, bar: Any = None) -> None:
        self.callback = callback
        self.total = total
        self.done = 0
        self._bar = bar

    @property
    def active(self) -> bool:
        """Whether anything is reported at all."""
        return self.callback is not None or self._bar is not None

    def __call__(self, done: int, total: int | None = None) -> None:
        """Report that ``done`` steps (of ``total``, default: the known total) are done."""
        if total is not None:
            self.total = total
            if self._bar is not None and self._bar.total != total:
                self._bar.total = total
                self._bar.refresh()
        step = done - self.done
        self.done = done
        if self._bar is not None and step:
            self._bar.update(step)
        if self.callback is not None:
            self.callback(done, self.total)

    def advance(self, steps: int = 1) -> None:
        """Report ``steps`` more steps done."""
        self(self.done + steps)

    def close(self) -> None:
        """Finish the bar, if there is one.  Safe to call twice."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def make_progress(progress: ProgressArg, total: int | None = None, desc: str = "",
                  *, stream: Any = None, unit: str = "frame") -> Progress:
    """Turn a ``progress`` argument into a :class:`Progress` to call.

    Parameters
    ----------
    progress : bool, None or callable
        ``True`` for a tqdm bar when ``stream`` is a terminal, a callable
        ``progress(done, total)``, or ``False``/``None`` for nothing.
    total : int, optional
        The number of steps, if known.
    desc : str, optional
        Label shown in front of the bar.
    stream : file object, optional
        Where the bar goes (default: ``sys.stderr``).
    unit : str, optional
        What one step is called in the bar.

    Returns
    -------
    Progress
        Call it with the number of steps done; close it when finished.

    Raises
    ------
    TypeError
        If ``progress`` is neither a bool, ``None`` nor a callable.
    """
    if progress is None or progress is False:
        return Progress(None, total)
    if progress is True:
        stream = sys.stderr if stream is None else stream
        if not _is_tty(stream):
            return Progress(None, total)
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is a dependency, but a missing bar must not break a read
            return Progress(None, total)
        bar = tqdm(total=total, desc=desc or None, unit=unit, file=stream,
                   dynamic_ncols=True, leave=False)
        return Progress(None, total, bar=bar)
    if callable(progress):
        return Progress(progress, total)
    raise TypeError("progress must be True, False, None or a callable (done, total), "
                    f"not {type(progress).__name__}")


def track(iterable: Iterable[T], progress: ProgressArg, total: int | None = None,
          desc: str = "", **kwargs: Any) -> Iterator[T]:
    """Yield the items of ``iterable``, reporting one step per item.

    Parameters
    ----------
    iterable : iterable
        The steps.
    progress : bool, None or callable
        As for :func:`make_progress`.
    total : int, optional
        The number of items (default: ``len(iterable)`` when it has one).
    desc : str, optional
        Label of the bar.
    **kwargs
        Passed to :func:`make_progress`.

    Yields
    ------
    object
        The items of ``iterable``.

    Examples
    --------
    >>> from imgio.progress import track
    >>> list(track("abc", lambda done, total: print(done, total)))
    1 3
    2 3
    3 3
    ['a', 'b', 'c']
    """
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with make_progress(progress, total, desc, **kwargs) as report:
        for item in iterable:
            yield item
            report.advance()
