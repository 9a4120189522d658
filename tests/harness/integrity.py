"""A bounded integrity harness: truncations, bombs, kill -9 and full disks.

Run it with ``python -m tests.harness.integrity --quick`` (a few seconds) or
``--full`` (every byte offset class, more bombs and kills; a few minutes).  It
prints the figures issue 15 asks for:

* truncation calls tried / data-loss results (a call that returned something
  other than the intact file's result without raising) / escapes (a call that
  raised something that is not an imgio error);
* bombs tried / guard bypasses (a read that allocated past the limit instead
  of raising ImageTooLargeError);
* kill -9 runs / corrupt targets / temporary files left;
* full-disk writes / crashes (a child that died of a signal) / temp files left.

Every memory-hungry step runs in a child process under ``RLIMIT_AS``, and the
harness sets ``IMGIO_MAX_BYTES`` for itself, so it cannot exhaust the machine.
The tests in ``tests/test_integrity.py`` call the same functions with small
budgets and assert the figures are zero.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: the size limit the harness (and the robustness tests) run with
GUARD_BYTES = 256 << 20
#: address-space limit of every child process the harness starts
CHILD_RLIMIT_AS = 2 << 30

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


# -- seed files ---------------------------------------------------------------------------
def _stack(n=8, h=32, w=32, dtype=np.uint16) -> np.ndarray:
    return (np.arange(n * h * w) * 7 % 65521).astype(dtype).reshape(n, h, w)


def _tiff(**kw) -> bytes:
    import tifffile
    buf = io.BytesIO()
    tifffile.imwrite(buf, _stack(), photometric="minisblack", **kw)
    return buf.getvalue()


def seeds() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, extension) of valid files of every format imgio reads."""
    import h5py
    from PIL import Image
    out: dict[str, tuple[bytes, str]] = {
        "tiff-plain": (_tiff(), ".tif"),
        "tiff-zlib": (_tiff(compression="zlib"), ".tif"),
        "tiff-tiled": (_tiff(tile=(16, 16)), ".tif"),
        "tiff-imagej": (_tiff(imagej=True), ".tif"),
        "tiff-ome": (_tiff(ome=True), ".ome.tif"),
    }
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_dataset("data", data=_stack(), chunks=(1, 32, 32), compression="gzip")
    out["hdf5"] = (buf.getvalue(), ".h5")
    buf = io.BytesIO()
    np.save(buf, _stack())
    out["npy"] = (buf.getvalue(), ".npy")
    buf = io.BytesIO()
    np.savez_compressed(buf, *_stack(3))
    out["npz"] = (buf.getvalue(), ".npz")
    out["png"] = ((DATA / "checkerboard.png").read_bytes(), ".png")
    out["jpeg"] = ((DATA / "chelsea.jpg").read_bytes(), ".jpg")
    frames = [Image.fromarray(np.full((12, 16, 3), 40 * i, np.uint8)) for i in range(6)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out["gif"] = (buf.getvalue(), ".gif")
    return out


# -- the APIs of issue 15 item 1 -------------------------------------------------------------
def _apis() -> dict:
    import imgio
    import imgio.v2 as v2
    import imgio.v3 as iio

    def reader(p):
        with v2.get_reader(p) as r:
            return [np.asarray(x) for x in r]

    def props(p):
        pr = iio.improps(p)
        return (tuple(pr.shape), str(pr.dtype))

    return {
        "v3.imread": lambda p: iio.imread(p),
        "v3.imread[...]": lambda p: iio.imread(p, index=...),
        "v3.imiter": lambda p: [np.asarray(x) for x in iio.imiter(p)],
        "v3.improps": props,
        "v2.imread": lambda p: v2.imread(p),
        "v2.mimread": lambda p: [np.asarray(x) for x in v2.mimread(p)],
        "v2.volread": lambda p: v2.volread(p),
        "v2.get_reader": reader,
        "lazy": lambda p: np.asarray(imgio.lazy(p)[...]),
        "to_dask": lambda p: np.asarray(imgio.to_dask(p).compute()),
    }


def _same(a, b) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b)))
    if isinstance(a, tuple):
        return a == b
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


@dataclass
class Figures:
    tried: int = 0
    losses: list = field(default_factory=list)
    escapes: list = field(default_factory=list)
    intact_failures: list = field(default_factory=list)


def cut_points(n: int, budget: int) -> list[int]:
    """``budget`` cut offsets spread over the file (always the header region too)."""
    head = [1, 4, 8, 16, 100]
    spread = np.linspace(0.02, 0.999, max(budget - len(head), 2)) * n
    return sorted({int(c) for c in head + list(spread) if 0 < int(c) < n})


def truncations(budget: int = 12, only: set[str] | None = None,
                apis: set[str] | None = None) -> dict[str, Figures]:
    """Cut every seed at ``budget`` offsets; each API must raise or equal the intact result.

    Returns per-API figures.
    """
    from imgio.errors import ImgioError
    table = _apis()
    figures = {name: Figures() for name in table if apis is None or name in apis}
    with tempfile.TemporaryDirectory(prefix="imgio-integrity-") as tmp:
        for fmt, (data, ext) in seeds().items():
            if only is not None and fmt not in only:
                continue
            intact_path = os.path.join(tmp, "intact" + ext)
            Path(intact_path).write_bytes(data)
            intact = {}
            for api, fig in figures.items():
                try:
                    intact[api] = table[api](intact_path)
                except Exception as exc:  # an API that cannot read the intact file
                    fig.intact_failures.append((fmt, repr(exc)[:200]))
            for cut in cut_points(len(data), budget):
                path = os.path.join(tmp, f"cut{cut}" + ext)
                Path(path).write_bytes(data[:cut])
                for api, fig in figures.items():
                    if api not in intact:
                        continue
                    fig.tried += 1
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            got = table[api](path)
                    except ImgioError:
                        continue
                    except Exception as exc:
                        fig.escapes.append((fmt, cut, len(data), repr(exc)[:200]))
                        continue
                    if not _same(got, intact[api]):
                        fig.losses.append((fmt, cut, len(data)))
                os.remove(path)
    return figures


# -- bombs ---------------------------------------------------------------------------------
_BOMB_CHILD = textwrap.dedent('''
    import io, os, struct, sys, json, warnings
    import numpy as np
    kind, api, path, limit = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    import imgio.v2 as v2, imgio.v3 as iio
    import imgio.plugins.tiff.plugin, imgio.plugins.hdf5.plugin, imgio.plugins.npy, tifffile, h5py
    from imgio.errors import ImageTooLargeError, ImgioError
    import resource
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    calls = {
        "v3.imread": lambda: iio.imread(path, max_bytes=int(limit) if limit != "-" else None),
        "v2.imread": lambda: v2.imread(path),
        "v2.mimread": lambda: v2.mimread(path, memtest=False),
        "v3.imiter": lambda: [None for _ in iio.imiter(path)],  # one frame at a time
        "get_data": lambda: v2.get_reader(path).get_data(0),
    }
    from imgio.core import limits
    cap = limits.max_bytes(int(limit) if limit != "-" else None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = calls[api]()
        size = sum(np.asarray(g).nbytes for g in got if g is not None) \
            if isinstance(got, list) else np.asarray(got).nbytes
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        # a returned read is right only if what it returned, and what it
        # allocated on the way (the peak above the interpreter's own), is within the limit
        ok = size <= cap and peak - base <= cap + (64 << 20)
        print(json.dumps({"result": "within limit" if ok else "returned",
                          "size": size, "peak": peak, "base": base}))
    except ImageTooLargeError as exc:
        print(json.dumps({"result": "guarded"}))
    except ImgioError as exc:
        print(json.dumps({"result": "refused", "error": type(exc).__name__}))
    except MemoryError as exc:
        print(json.dumps({"result": "bare MemoryError", "error": str(exc)[:200]}))
''')


def _bomb_files(tmp: str) -> dict[str, str]:
    """Small files declaring huge images (each well under 5 MB on disk)."""
    import h5py
    import tifffile
    files = {}
    # a TIFF declaring a 16 x 16 image with one 32768 x 32768 zlib tile whose
    # stream really inflates to 1 GiB (about 1 MB on disk)
    p = os.path.join(tmp, "tile-bomb.tif")
    with tifffile.TiffWriter(p) as w:
        w.write(np.zeros((16, 16), np.uint8), compression="zlib", tile=(16, 16))
    raw = bytearray(Path(p).read_bytes())
    import zlib
    comp = zlib.compressobj(9)
    chunk = bytes(64 << 20)
    stream = b"".join(comp.compress(chunk) for _ in range(16)) + comp.flush()
    with tifffile.TiffFile(p) as tif:
        tags = tif.pages.first.tags
        for name, value in (("TileWidth", 32768), ("TileLength", 32768),
                            ("TileOffsets", len(raw)), ("TileByteCounts", len(stream))):
            tag = tags[name]
            size = 2 if tag.dtype == 3 else 4
            raw[tag.valueoffset:tag.valueoffset + size] = value.to_bytes(size, "little")
    Path(p).write_bytes(bytes(raw) + stream)
    files["tiff-tile-bomb"] = p
    # a TIFF page declaring 100000 x 100000 pixels (uncompressed, 10 GB)
    p = os.path.join(tmp, "page-bomb.tif")
    with tifffile.TiffWriter(p) as w:
        w.write(np.zeros((16, 16), np.uint8))
    raw = bytearray(Path(p).read_bytes())
    with tifffile.TiffFile(p) as tif:
        tags = tif.pages.first.tags
        for name in ("ImageWidth", "ImageLength"):
            tag = tags[name]
            size = 2 if tag.dtype == 3 else 4
            val = 60000 if size == 2 else 100000
            raw[tag.valueoffset:tag.valueoffset + size] = val.to_bytes(size, "little")
    Path(p).write_bytes(bytes(raw))
    files["tiff-page-bomb"] = p
    # HDF5 declaring 8 GiB (an unwritten chunked dataset: a few KB on disk)
    p = os.path.join(tmp, "bomb.h5")
    with h5py.File(p, "w") as f:
        f.create_dataset("data", shape=(8192, 1024, 1024), dtype="u1", chunks=(1, 1024, 1024))
    files["hdf5-bomb"] = p
    # NPY whose header declares 9 GB
    p = os.path.join(tmp, "bomb.npy")
    buf = io.BytesIO()
    np.save(buf, np.zeros((4, 4), np.uint8))
    header = buf.getvalue().replace(b"(4, 4)", b"(9000, 1000000)")
    Path(p).write_bytes(header)
    files["npy-bomb"] = p
    # NPZ whose member declares 9 GB
    p = os.path.join(tmp, "bomb.npz")
    import zipfile
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("arr_0.npy", header)
    files["npz-bomb"] = p
    return files


def _limit_as():
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_RLIMIT_AS, CHILD_RLIMIT_AS))


def _child(args, env_extra=None, timeout=120):
    env = {**os.environ, **(env_extra or {})}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, preexec_fn=_limit_as, cwd=str(ROOT))


def bombs(full: bool = False) -> dict:
    """Every bomb through every API, once with the default limit and once with max_bytes.

    A bypass is a read that returned, or ended in a bare MemoryError, a
    signal or anything but an imgio error.
    """
    apis = ["v3.imread", "v2.imread", "v2.mimread", "v3.imiter", "get_data"]
    tried, bypasses = 0, []
    with tempfile.TemporaryDirectory(prefix="imgio-bombs-") as tmp:
        script = os.path.join(tmp, "child.py")
        Path(script).write_text(_BOMB_CHILD)
        files = _bomb_files(tmp)
        envs = [({}, "-"), ({"IMGIO_MAX_BYTES": str(10 ** 6)}, str(10 ** 6))]
        if full:
            envs.append(({"IMGIO_MAX_BYTES": str(GUARD_BYTES)}, "-"))
        for name, path in files.items():
            for api in apis:
                for env, limit in envs:
                    env = dict(env)
                    if not env:
                        env["IMGIO_MAX_BYTES"] = ""  # the default: available memory
                    tried += 1
                    proc = _child([script, name, api, path, limit], env)
                    line = proc.stdout.strip().splitlines()[-1:] or [""]
                    try:
                        result = json.loads(line[0])["result"]
                    except (ValueError, KeyError):
                        result = f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
                    if result not in ("guarded", "refused", "within limit"):
                        where = (f"max_bytes={limit}" if limit != "-" else
                                 f"IMGIO_MAX_BYTES={env['IMGIO_MAX_BYTES'] or 'unset'}")
                        bypasses.append((name, api, where, result))
    return {"tried": tried, "bypasses": bypasses}


# -- kill -9 during writes -------------------------------------------------------------------
_WRITER_CHILD = textwrap.dedent('''
    import sys, numpy as np, imgio.v2 as v2
    target, n = sys.argv[1], int(sys.argv[2])
    with v2.get_writer(target) as w:
        for i in range(n):
            w.append_data(np.full((64, 64), i, np.uint16))
            print(i, flush=True)
''')


def kills(runs: int = 6) -> dict:
    """Start a writer over a good file, kill -9 it mid-loop, read the target back.

    The target must still be the intact old file; leftover temporary files
    must never be read as data and are cleaned by the next write.
    """
    import imgio.v2 as v2
    corrupt, left = [], 0
    with tempfile.TemporaryDirectory(prefix="imgio-kill-") as tmp:
        script = os.path.join(tmp, "writer.py")
        Path(script).write_text(_WRITER_CHILD)
        for r in range(runs):
            ext = (".tif", ".h5")[r % 2]
            target = os.path.join(tmp, f"t{r}{ext}")
            good = np.stack([np.full((64, 64), 100 + i, np.uint16) for i in range(10)])
            v2.mimwrite(target, list(good))
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            proc = subprocess.Popen([sys.executable, script, target, "100000"],
                                    stdout=subprocess.PIPE, text=True, env=env,
                                    preexec_fn=_limit_as)
            for _ in range(3 + 5 * r):
                if not proc.stdout.readline():
                    break
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
            try:
                back = np.stack(v2.mimread(target))
                if not np.array_equal(back, good):
                    corrupt.append((target, "differs"))
            except Exception as exc:
                corrupt.append((target, repr(exc)[:200]))
        stale = [n for n in os.listdir(tmp) if n.endswith(".imgio-partial")]
        # the next write into the folder removes the dead writers' temporary files
        v2.imwrite(os.path.join(tmp, "next.tif"), np.zeros((4, 4), np.uint8))
        left = len([n for n in os.listdir(tmp) if n.endswith(".imgio-partial")])
    return {"runs": runs, "corrupt": corrupt, "stale_after_kill": len(stale),
            "temp_left": left}


# -- full disks ---------------------------------------------------------------------------------
_FULL_CHILD = textwrap.dedent('''
    import resource, signal, sys, os, numpy as np
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    import imgio.v2 as v2, imgio.v3 as iio
    from imgio.errors import ImgioError
    how, target = sys.argv[1], sys.argv[2]
    data = np.random.default_rng(0).integers(0, 255, (24, 256, 256), np.uint8)
    try:
        if how == "stream":
            with v2.get_writer(target) as w:
                for f in data:
                    w.append_data(f)
        else:
            iio.imwrite(target, data if not target.endswith(".png") else data[0])
        print("no error")
    except ImgioError as exc:
        print("imgio error:", type(exc).__name__, "names target:", target in str(exc),
              "names temp:", ".imgio-partial" in str(exc))
''')


def full_disks() -> dict:
    """Writes that pass ``RLIMIT_FSIZE`` (EFBIG, as a full disk gives ENOSPC)."""
    cases = [("write", ".tif"), ("write", ".h5"), ("write", ".npy"), ("write", ".npz"),
             ("stream", ".tif"), ("stream", ".h5")]
    crashes, wrong, left = [], [], 0
    with tempfile.TemporaryDirectory(prefix="imgio-full-") as tmp:
        script = os.path.join(tmp, "full.py")
        Path(script).write_text(_FULL_CHILD)
        for how, ext in cases:
            target = os.path.join(tmp, f"{how}{ext}")
            proc = _child([script, how, target])
            out = proc.stdout.strip()
            if proc.returncode < 0 or proc.returncode > 1:
                crashes.append((how, ext, proc.returncode))
            elif "names target: True" not in out or "names temp: True" in out:
                wrong.append((how, ext, out[-200:] or proc.stderr[-300:]))
        left = len([n for n in os.listdir(tmp) if n.endswith(".imgio-partial")])
    return {"writes": len(cases), "crashes": crashes, "wrong_errors": wrong,
            "temp_left": left}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.integrity")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="small budgets (default)")
    group.add_argument("--full", action="store_true", help="larger budgets")
    args = parser.parse_args(argv)
    os.environ.setdefault("IMGIO_MAX_BYTES", str(GUARD_BYTES))
    t0 = time.perf_counter()
    budget = 60 if args.full else 12
    figs = truncations(budget)
    tried = sum(f.tried for f in figs.values())
    losses = sum(len(f.losses) for f in figs.values())
    escapes = sum(len(f.escapes) for f in figs.values())
    print(f"truncation calls tried / data-loss results / escapes: {tried} / {losses} / {escapes}")
    for api, f in figs.items():
        if f.losses or f.escapes:
            fmts = sorted({x[0] for x in f.losses})
            print(f"  {api}: {f.tried} tried, {len(f.losses)} losses {fmts}, "
                  f"{len(f.escapes)} escapes {f.escapes[:2]}")
        if f.intact_failures:  # e.g. v2.volread of a 2-D PNG: refused as imageio does
            print(f"  ({api} cannot read the intact {', '.join(x[0] for x in f.intact_failures)}"
                  " file either: not tried on its cuts)")
    b = bombs(full=args.full)
    print(f"bombs tried / guard bypasses: {b['tried']} / {len(b['bypasses'])}")
    for item in b["bypasses"][:10]:
        print("  ", item)
    k = kills(runs=12 if args.full else 4)
    print(f"kill -9 runs / corrupt targets / temp files left: {k['runs']} / "
          f"{len(k['corrupt'])} / {k['temp_left']} (stale right after the kills: "
          f"{k['stale_after_kill']}, removed by the next write)")
    for item in k["corrupt"][:5]:
        print("  ", item)
    d = full_disks()
    print(f"full-disk writes / crashes / wrong errors / temp files left: {d['writes']} / "
          f"{len(d['crashes'])} / {len(d['wrong_errors'])} / {d['temp_left']}")
    for item in d["crashes"] + d["wrong_errors"]:
        print("  ", item)
    print(f"({time.perf_counter() - t0:.0f} s)")
    bad = losses + escapes + len(b["bypasses"]) + len(k["corrupt"]) + k["temp_left"] \
        + len(d["crashes"]) + len(d["wrong_errors"]) + d["temp_left"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
