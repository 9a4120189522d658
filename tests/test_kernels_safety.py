"""No Python-callable Cython entry point can be driven out of bounds, and the GIL is released.

Every entry point of ``_ext/tiffparse`` and ``_ext/convert`` is driven by
Hypothesis with arbitrary buffer lengths, sizes, offsets and shapes in a
child process, so a segfault fails the test (with the last arguments tried)
instead of killing pytest.  The allowed outcomes are a return or an ordinary
Python error (ValueError, TypeError, BufferError from Cython's buffer checks,
OverflowError for integers beyond the C type); where the arguments are valid
the result is also compared with a NumPy reference.

The GIL tests run each releasing kernel on an input large enough to take
milliseconds while a counter thread counts; the counter must advance during
the call.  A control call that holds the GIL (``bytes.count``) shows the
measurement can fail.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from imgio._ext import convert as _convert
from imgio._ext import tiffparse as _tp

ALLOWED = "(ValueError, TypeError, BufferError, OverflowError)"

_PRELUDE = f"""
import sys
import numpy as np
from hypothesis import given, settings, strategies as st, HealthCheck
from imgio._ext import tiffparse as tp, convert as cv
ALLOWED = {ALLOWED}
EXAMPLES = int(sys.argv[1])
SET = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))
def trace(*args):
    sys.stderr.write(repr(args) + "\\n")
    sys.stderr.flush()
sizes = st.one_of(st.integers(-3, 70), st.sampled_from([0, 1, 2**31, 2**32 + 1, 2**62,
                                                        2**63 - 1, -2**63]))
"""

_DRIVERS = {
    "tiffparse.byteswap": """
@SET
@given(st.integers(0, 200), st.one_of(st.integers(-2, 9), st.sampled_from([2**40])),
       st.booleans())
def drive(n, itemsize, readonly):
    buf = bytearray(np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes())
    before = bytes(buf)
    arg = bytes(buf) if readonly else buf
    trace("byteswap", n, itemsize, readonly)
    try:
        tp.byteswap(arg, itemsize)
    except ALLOWED:
        return
    if itemsize > 1:
        ref = np.frombuffer(before, f"u{itemsize}").byteswap().tobytes()
        assert bytes(buf) == ref
drive()
""",
    "tiffparse.untile": """
@SET
@given(st.integers(0, 3000), st.integers(0, 3000), sizes, sizes, sizes, sizes,
       st.one_of(st.integers(-1, 9), st.sampled_from([2**62])))
def drive(ntiles, nout, h, w, tl, tw, px):
    tiles = np.arange(ntiles, dtype=np.uint8)
    out = np.zeros(nout, np.uint8)
    trace("untile", ntiles, nout, h, w, tl, tw, px)
    try:
        tp.untile(tiles, out, h, w, tl, tw, px)
    except ALLOWED:
        return
    down, across = -(-h // tl), -(-w // tw)
    t = tiles[:down * across * tl * tw * px].reshape(down, across, tl, tw, px)
    full = t.transpose(0, 2, 1, 3, 4).reshape(down * tl, across * tw, px)[:h, :w]
    assert np.array_equal(out[:h * w * px].reshape(h, w, px), full)
    assert not out[h * w * px:].any()
drive()
""",
    "tiffparse.plan_runs": """
@SET
@given(st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 300), max_size=40),
       sizes, sizes, st.integers(0, 45), st.integers(0, 5))
def drive(offsets, stride, total, nrows, ncols):
    offs = np.array(offsets, np.uint64)
    runs = np.full((nrows, ncols), -7, np.int64)
    trace("plan_runs", offsets, stride, total, nrows, ncols)
    try:
        nr = tp.plan_runs(offs, stride, total, runs)
    except ALLOWED:
        return
    assert 0 <= nr <= len(offsets) and nr <= nrows
    # the runs cover output bytes 0..total exactly once, in order
    pos = 0
    for fo, oo, ln in runs[:nr].tolist():
        assert oo == pos and ln > 0
        pos += ln
    assert pos == total
    assert (runs[nr:] == -7).all()
drive()
""",
    "tiffparse.parse_buffer": """
@SET
@given(st.binary(max_size=300), st.one_of(st.integers(0, 400), st.sampled_from([2**64 - 1])),
       st.integers(-5, 5000))
def drive(data, filesize, max_pages):
    # a valid header pointing into the random bytes now and then
    if len(data) > 8 and data[0] % 3 == 0:
        data = b"II*\\0" + (8 + data[1] % 64).to_bytes(4, "little") + data[8:]
    trace("parse_buffer", data, filesize, max_pages)
    try:
        info = tp.parse_buffer(data, filesize, max_pages)
        tp.plan_simple(data, filesize)
    except ALLOWED:
        return
    assert info["status"] in (0, 1, 2, 3)
drive()
""",
    "convert.minmax2": """
dtypes = st.sampled_from(["u1", "u2", "i4", "u8", "f4", "f8"])
@SET
@given(dtypes, st.integers(0, 9), st.integers(0, 9), st.integers(-3, 3), st.integers(-3, 3),
       st.integers(0, 3), st.integers(0, 5), st.booleans(), st.booleans(), st.booleans())
def drive(dt, rows, cols, rstep, cstep, nlohi, nflags, swap, finite, unaligned):
    base = np.arange(max(1, rows * 3 * cols * 3 + 9) * 8, dtype=np.uint8)
    if unaligned:   # strides that are not multiples of the item size
        src = np.lib.stride_tricks.as_strided(base[1:].view(np.uint8), (rows, cols), (3, 1))
        src = src.view(np.uint8) if dt == "u1" else src
    else:
        a = np.arange(rows * 3 * cols * 3, dtype=dt).reshape(rows * 3, cols * 3) \\
            if rows and cols else np.zeros((rows, cols), dt)
        src = a[::rstep or 1, ::cstep or 1][:rows, :cols]
    lohi = np.zeros(nlohi, src.dtype)
    flags = np.zeros(nflags, np.int64)
    trace("minmax2", dt, rows, cols, rstep, cstep, nlohi, nflags, swap, finite, unaligned)
    f = cv.minmax_finite2 if finite else cv.minmax2
    try:
        f(src, swap, lohi, flags)
    except ALLOWED:
        return
    if not swap and src.size and nlohi == 2:
        lohi2 = np.array([np.inf, -np.inf] if src.dtype.kind == "f" else
                         [np.iinfo(src.dtype).max, np.iinfo(src.dtype).min], src.dtype)
        f(src, False, lohi2, np.zeros(4, np.int64))
        assert lohi2[0] == src.min() and lohi2[1] == src.max()
drive()
""",
    "convert.scale2": """
src_types = st.sampled_from(["u1", "u2", "u4", "u8", "i2", "i8", "f4", "f8"])
@SET
@given(src_types, st.sampled_from(["u1", "u2"]), st.integers(0, 7), st.integers(0, 7),
       st.integers(0, 7), st.integers(0, 7), st.integers(-2, 5), st.integers(-3, 70),
       st.integers(1, 3), st.booleans())
def drive(sdt, ddt, r1, c1, r2, c2, mode, shift, step, swap):
    src = np.arange(r1 * c1 * step * step, dtype=sdt).reshape(r1 * step, c1 * step)[::step, ::step]
    dst = np.zeros((r2 * step, c2 * step), ddt)[::step, ::step]
    trace("scale2", sdt, ddt, r1, c1, r2, c2, mode, shift, step, swap)
    try:
        cv.scale2(src, swap, dst, mode, 0.0, 1.0, 255.0, shift)
    except ALLOWED:
        return
    assert src.shape == dst.shape
    if mode == 3 and not swap and src.size:
        top = 255 if ddt == "u1" else 65535
        assert np.array_equal(dst, np.clip(src, 0, top).astype(ddt))
drive()
""",
}


@pytest.mark.parametrize("entry", sorted(_DRIVERS))
def test_entry_point_cannot_be_driven_out_of_bounds(entry):
    code = textwrap.dedent(_PRELUDE) + textwrap.dedent(_DRIVERS[entry])
    proc = subprocess.run([sys.executable, "-c", code, "300"], capture_output=True,
                          text=True, timeout=600)
    last = proc.stderr.strip().splitlines()[-3:]
    assert proc.returncode == 0, (
        f"{entry}: the child exited with {proc.returncode} (negative: killed by that signal); "
        f"last lines:\n" + "\n".join(last) + "\n" + proc.stdout[-2000:])


def test_harness_catches_a_segfault():
    """The child-process set-up reports a crash (so a passing run means no crash)."""
    code = "import ctypes; ctypes.string_at(0)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode != 0


# -- the GIL is released ---------------------------------------------------------------
_MAX_STAMPS = 1_000_000   # ~32 MB


def _progress_during(call, attempts: int = 5, want: int = 10) -> int:
    """Counter-thread steps in the middle half of a call of ``call`` (the most of
    ``attempts`` tries, stopping once ``want`` is reached).

    The counter thread stamps the time at every step.  While a call holds the GIL
    no other thread can take a step, so no stamp falls in the middle of the call
    (steps just before the call reaches C, or after it, fall at its ends).
    """
    stamps: list[float] = []
    state = {"stop": False}
    clock = time.perf_counter

    def count():
        # bounded: a call slowed down by a loaded machine must not grow the list
        # without limit (the counter steps millions of times a second)
        while not state["stop"]:
            if len(stamps) < _MAX_STAMPS:
                stamps.append(clock())
            else:
                time.sleep(0)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    t = threading.Thread(target=count, daemon=True)
    t.start()
    try:
        while not stamps:
            time.sleep(0.001)
        best = 0
        for _ in range(attempts):
            stamps.clear()
            t0 = clock()
            call()
            t1 = clock()
            lo, hi = t0 + 0.25 * (t1 - t0), t0 + 0.75 * (t1 - t0)
            best = max(best, sum(1 for x in list(stamps) if lo < x < hi))
            if best >= want:
                break
        return best
    finally:
        state["stop"] = True
        t.join()
        sys.setswitchinterval(old)


def test_a_call_holding_the_gil_shows_no_progress():
    """The control: ``bytes.count`` holds the GIL; the measurement sees no step."""
    big = bytes(200 << 20)
    assert _progress_during(lambda: big.count(b"\x01\x02\x03\x04\x05"), attempts=3,
                            want=1) == 0


@pytest.fixture(scope="module")
def big_f8():
    return np.random.default_rng(0).random((2048, 2048))   # 32 MiB


def test_byteswap_releases_the_gil():
    buf = np.zeros(64 << 20, np.uint8)
    assert _progress_during(lambda: _tp.byteswap(buf, 8)) >= 10


def test_untile_releases_the_gil():
    tiles = np.zeros(64 << 20, np.uint8)
    out = np.empty(4096 * 4096 * 4, np.uint8)
    assert _progress_during(lambda: _tp.untile(tiles, out, 4096, 4096, 16, 16, 4)) >= 10


def test_plan_runs_releases_the_gil():
    n = 2_000_000
    offsets = (np.arange(n, dtype=np.uint64) * 3)   # never back to back: one run each
    runs = np.empty((n, 3), np.int64)
    assert _progress_during(lambda: _tp.plan_runs(offsets, 2, 2 * n, runs)) >= 10


def test_minmax2_releases_the_gil(big_f8):
    lohi, flags = np.array([np.inf, -np.inf]), np.zeros(4, np.int64)
    assert _progress_during(lambda: _convert.minmax2(big_f8, False, lohi, flags)) >= 10


def test_minmax_finite2_releases_the_gil(big_f8):
    lohi, flags = np.array([np.inf, -np.inf]), np.zeros(4, np.int64)
    assert _progress_during(
        lambda: _convert.minmax_finite2(big_f8, False, lohi, flags)) >= 10


def test_scale2_releases_the_gil(big_f8):
    out = np.empty(big_f8.shape, np.uint8)
    assert _progress_during(
        lambda: _convert.scale2(big_f8, False, out, 0, 0.0, 1.0, 255.0, 0)) >= 10


def test_parse_buffer_releases_the_gil():
    # a classic TIFF whose IFD chain is 4,095 pages long: the loop detection is O(n^2)
    import struct
    n = 4095
    head = b"II*\x00" + struct.pack("<I", 8)
    ifds = b"".join(struct.pack("<H", 0) + struct.pack("<I", 8 + 6 * (i + 1) if i + 1 < n else 0)
                    for i in range(n))
    data = head + ifds
    assert _progress_during(lambda: _tp.parse_buffer(data, len(data), 4096)) >= 10
