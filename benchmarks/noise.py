"""Measure the noise of the quick benchmark check and propose its limits.

Runs ``python benchmarks/compare.py --quick --json RUN.json`` N times (N >= 5),
each in a fresh process, and prints per target the ratios imgio / peer of every
run, their median and worst, and a proposed CI limit::

    max_ratio_quick = ceil_to_0.01(worst * (1 + margin))      # margin 10% by default

The worst of N runs covers the noise seen so far; the margin covers some that
was not.  A limit is a regression alarm, not a promise, so it never loosens a
target silently; a target is flagged when:

* ``QUICK>FULL``: the quick worst is above the full-size target ``max_ratio``
  (the CI size measures something the target does not promise, usually start-up
  costs at a size too small for the workload, or the target is really missed);
* ``FLAKY``: the current ``max_ratio_quick`` is below the worst run (the check
  would have failed on a run that changed nothing);
* ``NOISY``: the worst is more than 1.3 x the median (the proposed limit is
  wide; a bigger CI size would measure it better).

Usage::

    nice python benchmarks/noise.py -n 5                 # run, print the table
    python benchmarks/noise.py --from-dir DIR            # re-analyse saved runs
    python benchmarks/noise.py --from-dir DIR --set test_imgio_x/test_numpy_y
        # write the proposed limit of those targets into thresholds.toml

Say in any report whether the machine was busy: the proposal is only as good as
the runs it comes from.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import compare  # noqa: E402

MARGIN = 0.10
MIN_RUNS = 5


def run_once(path: Path, extra: list[str]) -> int:
    cmd = [sys.executable, str(HERE / "compare.py"), "--quick", "--json", str(path)] + extra
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if not path.exists():
        sys.exit(f"noise.py: {' '.join(cmd)} failed (exit {proc.returncode}) and saved "
                 f"nothing:\n{proc.stderr[-2000:]}")
    return proc.returncode


def ratios_of(paths: list[Path]) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = {}
    for path in paths:
        saved = json.loads(path.read_text())
        for row in saved.get("imgio_compare", {}).get("targets", []):
            key = (row["imgio"], row["peer"])
            out.setdefault(key, [])
            if row.get("ratio") is not None:
                out[key].append(row["ratio"])
    return out


def propose(ratios: list[float], margin: float) -> float:
    return math.ceil(max(ratios) * (1 + margin) * 100 - 1e-9) / 100


def analyse(ratios: dict, targets: list[dict], margin: float) -> list[dict]:
    rows = []
    for rule in targets:
        key = (rule["imgio"], rule["peer"])
        rs = ratios.get(key, [])
        row = {"imgio": rule["imgio"], "peer": rule["peer"], "runs": rs,
               "max_ratio": rule["max_ratio"], "current": rule["max_ratio_quick"], "flags": []}
        if not rs:
            row["flags"].append("NOT MEASURED")
            rows.append(row)
            continue
        row["median"] = statistics.median(rs)
        row["worst"] = max(rs)
        row["proposed"] = propose(rs, margin)
        if row["worst"] > rule["max_ratio"]:
            row["flags"].append("QUICK>FULL")
        if row["worst"] > rule["max_ratio_quick"]:
            row["flags"].append("FLAKY")
        if row["worst"] > 1.3 * row["median"]:
            row["flags"].append("NOISY")
        rows.append(row)
    return rows


def render(rows: list[dict], n: int, margin: float) -> str:
    lines = [f"{'target (imgio / peer)':74s} {'median':>7s} {'worst':>7s} {'proposed':>8s} "
             f"{'current':>8s} {'full':>6s}  flags   (runs: {n}, margin {margin:.0%})"]
    for r in rows:
        name = f"{r['imgio']} / {r['peer']}"
        if "worst" not in r:
            lines.append(f"{name:74s} {'-':>7s} {'-':>7s} {'-':>8s} {r['current']:8.2f} "
                         f"{r['max_ratio']:6.2f}  {' '.join(r['flags'])}")
            continue
        lines.append(f"{name:74s} {r['median']:7.2f} {r['worst']:7.2f} {r['proposed']:8.2f} "
                     f"{r['current']:8.2f} {r['max_ratio']:6.2f}  {' '.join(r['flags'])}")
        lines.append(f"{'':6s}runs: " + ", ".join(f"{x:.2f}" for x in r["runs"]))
    return "\n".join(lines)


def set_limits(path: Path, rows: list[dict], chosen: list[str]) -> list[str]:
    """Write the proposed max_ratio_quick of the ``imgio/peer`` pairs in ``chosen``."""
    text = path.read_text()
    parts = text.split("[[target]]")
    done = []
    by_key = {f"{r['imgio']}/{r['peer']}": r for r in rows}
    for pair in chosen:
        row = by_key.get(pair)
        if row is None or "proposed" not in row:
            sys.exit(f"noise.py: no measured target {pair}")
        imgio, peer = pair.split("/")
        for i, part in enumerate(parts):
            if (re.search(rf'^imgio = "{re.escape(imgio)}"$', part, re.M)
                    and re.search(rf'^peer = "{re.escape(peer)}"$', part, re.M)):
                parts[i] = re.sub(r"^max_ratio_quick = .*$",
                                  f"max_ratio_quick = {row['proposed']:.2f}", part, flags=re.M)
                done.append(f"{pair}: max_ratio_quick = {row['proposed']:.2f}")
                break
        else:
            sys.exit(f"noise.py: target {pair} not in {path}")
    path.write_text("[[target]]".join(parts))
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=MIN_RUNS, help=f"runs (>= {MIN_RUNS})")
    parser.add_argument("--margin", type=float, default=MARGIN,
                        help="proposed limit = worst x (1 + margin); default 0.10")
    parser.add_argument("--out-dir", help="keep each run's JSON here (default: a new temp dir)")
    parser.add_argument("--from-dir", help="analyse the run*.json saved in DIR, run nothing")
    parser.add_argument("--thresholds", default=str(HERE / "thresholds.toml"))
    parser.add_argument("--set", nargs="+", metavar="IMGIO/PEER", default=[],
                        help="write the proposed limits of these targets into the thresholds")
    parser.add_argument("-k", dest="select", help="pass -k to compare.py (a subset)")
    args = parser.parse_args(argv)
    try:
        targets = compare.load_targets(args.thresholds)
    except compare.ThresholdsError as exc:
        print(f"noise.py: {exc}", file=sys.stderr)
        return compare.EXIT_REFUSED
    if args.from_dir:
        paths = sorted(Path(args.from_dir).glob("run*.json"))
    else:
        if args.n < MIN_RUNS:
            parser.error(f"-n must be at least {MIN_RUNS}: fewer runs do not show the noise")
        out = Path(args.out_dir or tempfile.mkdtemp(prefix="imgio-noise-"))
        out.mkdir(parents=True, exist_ok=True)
        print(f"noise.py: {args.n} runs of compare.py --quick, JSON in {out}; "
              f"load average {os.getloadavg()[0]:.2f} at the start", flush=True)
        paths = []
        for i in range(args.n):
            t0 = time.perf_counter()
            path = out / f"run{i:02d}.json"
            code = run_once(path, ["-k", args.select] if args.select else [])
            paths.append(path)
            print(f"  run {i + 1}/{args.n}: {time.perf_counter() - t0:.0f} s, compare.py exit "
                  f"{code}, load average {os.getloadavg()[0]:.2f}", flush=True)
    if len(paths) < MIN_RUNS:
        print(f"noise.py: {len(paths)} run(s) found; at least {MIN_RUNS} are needed",
              file=sys.stderr)
        return compare.EXIT_REFUSED
    rows = analyse(ratios_of(paths), targets, args.margin)
    print(render(rows, len(paths), args.margin))
    if args.set:
        for line in set_limits(Path(args.thresholds), rows, args.set):
            print("set", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
