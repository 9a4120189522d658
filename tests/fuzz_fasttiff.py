"""Bounded fuzz of the fast TIFF path against tifffile.

Each case is a small generated TIFF (a seed corpus of 30 layouts: byte
orders, BigTIFF, strips, tiles, zlib with and without predictors, RGB,
ImageJ / shaped / plain descriptions, shaped volumes) damaged by one to four mutations: byte
flips anywhere (weighted toward the header and IFD), flips inside the pixel
data, truncation, appended bytes, and edits of strip/tile offsets and byte
counts (0, inside the header, past the end, random).  For every case the
fast path (``imgio.plugins.tiff.fastpath.read_simple``) either declines (``None``),
raises ``CorruptFileError``/``ImageTooLargeError``, or returns an array; an
array is compared with ``tifffile.imread`` of the same bytes.

Outcomes:

* ``silent``: an array where tifffile raises, or an array that differs from
  tifffile's (dtype, shape or pixels).  Target 0; the test fails otherwise.
* ``crash``: any other exception from the fast path (an imgio bug).  Target 0.
* ``raised``: the fast path raised (tifffile is not asked: on some damaged
  page chains it spins for minutes).  Raising is never silent; where tifffile
  would return an array (it reads damaged segments as zeros, with a logged
  warning) imgio's rule is all or nothing.

Run standalone at larger counts (the figure of issue 15)::

    python -m tests.fuzz_fasttiff --n 20000 [--seed 0] [--show 5]

or from pytest: ``tests/test_fasttiff.py::test_fuzz_against_tifffile`` runs
``IMGIO_FUZZ_N`` cases (default 400).
"""
from __future__ import annotations

import argparse
import io
import logging
import os
import random
import struct
import sys
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import tifffile

from imgio.plugins.tiff import fastpath as _fasttiff
from imgio.errors import CorruptFileError, ImageTooLargeError

MAX_BYTES = 64 << 20   # a mutated size field must not make the harness allocate GiBs


def seed_corpus() -> list[bytes]:
    """Small TIFFs of every layout the fast path serves, as bytes."""
    rng = np.random.default_rng(0)
    cases = [
        ("u2", (20, 24), {}),
        ("u1", (19, 23), {"rowsperstrip": 4}),
        ("u2", (20, 24), {"byteorder": ">", "rowsperstrip": 3}),
        ("f4", (17, 21), {"compression": "zlib"}),
        ("u2", (20, 24), {"compression": "zlib", "rowsperstrip": 5}),
        ("u2", (20, 24), {"compression": "zlib", "predictor": True, "rowsperstrip": 6}),
        ("f4", (18, 22), {"compression": "zlib", "predictor": True, "byteorder": ">"}),
        ("f8", (18, 22), {"compression": "zlib", "predictor": True, "tile": (16, 16)}),
        ("u2", (40, 40), {"tile": (16, 16)}),
        ("u2", (40, 40), {"tile": (16, 16), "compression": "zlib"}),
        ("i2", (40, 40), {"tile": (16, 32), "compression": "zlib", "predictor": True,
                          "byteorder": ">"}),
        ("u1", (20, 24, 3), {"photometric": "rgb"}),
        ("u1", (20, 24, 3), {"photometric": "rgb", "compression": "zlib", "predictor": True}),
        ("u2", (20, 24, 4), {"photometric": "rgb", "extrasamples": ["unassalpha"],
                             "tile": (16, 16)}),
        ("u2", (20, 24), {"bigtiff": True}),
        ("u2", (20, 24), {"bigtiff": True, "compression": "zlib", "tile": (16, 16)}),
        ("u2", (20, 24), {"bigtiff": True, "byteorder": ">", "rowsperstrip": 7}),
        ("u2", (20, 24), {"imagej": True}),
        ("f4", (20, 24), {"imagej": True, "compression": "zlib"}),
        ("u2", (20, 24), {"description": "a plain note"}),
        ("u2", (20, 24), {"metadata": None}),
        ("i4", (20, 24), {"compression": "adobe_deflate"}),
        ("u8", (9, 11), {"compression": "zlib", "rowsperstrip": 2}),
        ("u2", (1, 1), {}),
        # shaped volumes (the fast path serves compressed ones page by page)
        ("u2", (3, 20, 24), {"compression": "zlib", "rowsperstrip": 7}),
        ("u2", (3, 20, 24), {"compression": "zlib", "predictor": True, "byteorder": ">"}),
        ("f4", (2, 18, 22), {"compression": "zlib", "predictor": True, "tile": (16, 16)}),
        ("u1", (2, 20, 24, 3), {"photometric": "rgb", "compression": "zlib",
                                "bigtiff": True}),
        ("u2", (4, 20, 24), {"compression": "zlib", "tile": (16, 16)}),
        ("u2", (3, 20, 24), {}),
    ]
    seeds = []
    for dtype, shape, kw in cases:
        dt = np.dtype(dtype)
        if dt.kind == "f":
            a = (rng.standard_normal(shape) * 100).astype(dt)
        else:
            a = rng.integers(0, min(np.iinfo(dt).max, 5000), shape, dtype=dt, endpoint=True)
        buf = io.BytesIO()
        kw = dict(kw)
        kw.setdefault("photometric", "minisblack")
        tifffile.imwrite(buf, a, **kw)
        seeds.append(buf.getvalue())
    return seeds


def _segment_fields(data: bytes) -> list[tuple[int, int]]:
    """(position, size) of every strip/tile offset and byte count value in the
    first IFDs (up to 8 of the chain: the pages of a volume)."""
    out = []
    try:
        bo = "<" if data[:2] == b"II" else ">"
        big = struct.unpack(bo + "H", data[2:4])[0] == 43
        ifd = struct.unpack(bo + ("Q" if big else "I"),
                            data[8:16] if big else data[4:8])[0]
        for _ in range(8):
            if not 0 < ifd < len(data):
                break
            if big:
                n = struct.unpack(bo + "Q", data[ifd:ifd + 8])[0]
                pos, ent, cfmt, vsz = ifd + 8, 20, "Q", 8
            else:
                n = struct.unpack(bo + "H", data[ifd:ifd + 2])[0]
                pos, ent, cfmt, vsz = ifd + 2, 12, "I", 4
            for k in range(min(n, 64)):
                e = pos + k * ent
                tag, typ = struct.unpack(bo + "HH", data[e:e + 4])
                if tag not in (273, 279, 324, 325):
                    continue
                cnt = struct.unpack(bo + cfmt, data[e + 4:e + 4 + vsz])[0]
                size = {3: 2, 4: 4, 16: 8}.get(typ, 4)
                if cnt * size <= vsz:
                    start = e + 4 + vsz
                else:
                    start = struct.unpack(bo + cfmt, data[e + 4 + vsz:e + 4 + 2 * vsz])[0]
                out += [(start + j * size, size) for j in range(min(cnt, 64))]
            e = pos + n * ent
            ifd = struct.unpack(bo + cfmt, data[e:e + vsz])[0]
    except (struct.error, IndexError, ValueError):
        pass
    return [(p, s) for p, s in out if p + s <= len(data)]


def mutate(data: bytes, rnd: random.Random) -> tuple[bytes, list[str]]:
    """``data`` damaged by one to four random mutations, and their names."""
    d = bytearray(data)
    names = []
    fields = _segment_fields(data)
    bo = "little" if data[:2] == b"II" else "big"
    for _ in range(rnd.randint(1, 4)):
        kind = rnd.choice(["flip-head", "flip-head", "flip-any", "flip-data", "truncate",
                           "append", "segment", "segment", "byte-set"])
        if not d:
            break
        if kind == "flip-head":
            p = rnd.randrange(min(len(d), 512))
            d[p] ^= 1 << rnd.randrange(8)
        elif kind == "flip-any":
            p = rnd.randrange(len(d))
            d[p] ^= 1 << rnd.randrange(8)
        elif kind == "flip-data":
            # pixel/compressed bytes sit after the IFD in tifffile's files
            lo = min(len(d) - 1, 8 + (len(d) // 3))
            p = rnd.randrange(lo, len(d))
            d[p] ^= 1 << rnd.randrange(8)
        elif kind == "byte-set":
            p = rnd.randrange(min(len(d), 512))
            d[p] = rnd.choice([0, 0xFF, 1, 2, 0x80, rnd.randrange(256)])
        elif kind == "truncate":
            del d[rnd.randrange(len(d)):]
        elif kind == "append":
            d += bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 64)))
        elif kind == "segment" and fields:
            p, size = rnd.choice(fields)
            if p + size > len(d):
                continue
            value = rnd.choice([0, 1, 4, 7, 8, 15, len(d), len(d) - 1, 2 ** (8 * size) - 1,
                                rnd.randrange(2 ** (8 * size)),
                                int.from_bytes(d[p:p + size], bo) + rnd.choice([-3, -1, 1, 5])])
            d[p:p + size] = (value % 2 ** (8 * size)).to_bytes(size, bo)
        names.append(kind)
    return bytes(d), names


@dataclass
class Result:
    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    silent: list = field(default_factory=list)    # (case index, mutations, what)
    crashes: list = field(default_factory=list)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout("tifffile took more than 20 s")


def _tifffile(path: str):
    import signal
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tifffile.imread(path), None
    except Exception as exc:  # noqa: BLE001 - any failure of tifffile's is "raises"
        return None, exc
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        logger.setLevel(level)


def run(n: int, seed: int = 0, workdir: str | None = None) -> Result:
    """Fuzz ``n`` cases; deterministic for a given ``seed``."""
    seeds = seed_corpus()
    res = Result()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = os.path.join(tmp, "fuzz.tif")
        for i in range(n):
            rnd = random.Random(seed * 1_000_003 + i)
            data, names = mutate(seeds[i % len(seeds)], rnd)
            with open(path, "wb") as f:
                f.write(data)
            res.cases += 1
            try:
                got = _fasttiff.read_simple(path, max_bytes=MAX_BYTES)
            except (CorruptFileError, ImageTooLargeError) as exc:
                if path not in str(exc):
                    res.crashes.append((i, names, f"error does not name the file: {exc}"))
                res.outcomes["raised CorruptFileError"] += 1
                continue
            except Exception as exc:  # noqa: BLE001 - an imgio bug: count it
                res.crashes.append((i, names, f"{type(exc).__name__}: {exc}"))
                res.outcomes["crash"] += 1
                continue
            if got is None:
                res.outcomes["declined"] += 1
                continue
            ref, err = _tifffile(path)
            if ref is None:
                res.silent.append((i, names, f"array where tifffile raises "
                                             f"{type(err).__name__}: {err}"))
                res.outcomes["silent"] += 1
            elif ref.dtype != got.dtype or ref.shape != got.shape:
                res.silent.append((i, names, f"{got.dtype}{got.shape} where tifffile gives "
                                             f"{ref.dtype}{ref.shape}"))
                res.outcomes["silent"] += 1
            elif not np.array_equal(ref, got, equal_nan=got.dtype.kind == "f"):
                res.silent.append((i, names, "other pixels than tifffile's"))
                res.outcomes["silent"] += 1
            else:
                res.outcomes["served, equal"] += 1
    return res


def limit_memory(gib: float) -> None:
    """Cap this process's address space (RLIMIT_AS): MemoryError instead of the OOM killer."""
    import resource
    cap = int(gib * 2**30)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=int(os.environ.get("IMGIO_FUZZ_N", 2000)))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=10, help="silent cases and crashes to print")
    ap.add_argument("--max-memory", type=float, default=4.0,
                    help="address-space limit in GiB (tifffile has no size guard: a mutated "
                         "ImageWidth makes it allocate what the file declares)")
    args = ap.parse_args(argv)
    limit_memory(args.max_memory)
    res = run(args.n, args.seed)
    print(f"cases {res.cases}: " + ", ".join(f"{k} {v}" for k, v in sorted(res.outcomes.items())))
    print(f"silent differences from tifffile: {len(res.silent)}; crashes: {len(res.crashes)}")
    for i, names, what in (res.silent + res.crashes)[:args.show]:
        print(f"  case {i} {names}: {what}")
    return 1 if res.silent or res.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
