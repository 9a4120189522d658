"""Run the benchmark suite and print imgio against its peers, then check targets.

Usage::

    python benchmarks/compare.py            # full run (IMGIO_BENCH_FULL sizes if set)
    python benchmarks/compare.py --quick    # CI sizes, under 2 minutes on 2 cores
    python benchmarks/compare.py --json results.json --no-check
    python benchmarks/compare.py --from-json results.json   # re-render, re-check

Each benchmark group is one workload.  Within a group, the test whose name
starts with ``test_imgio`` is imgio; the others are peers (imageio,
tifffile, h5py, Pillow, NumPy) or the ``floor`` (plain ``readinto``).  The
table gives the median time, throughput, peak memory and the ratio of imgio's
median to each peer's.  Targets live in ``benchmarks/thresholds.toml``; a
missed target exits with status 1 and says which.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

HERE = Path(__file__).resolve().parent


def run_suite(quick: bool, select: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider",
               f"--benchmark-json={out}", "--benchmark-min-rounds=3",
               "--benchmark-max-time=0.5" if quick else "--benchmark-max-time=2"]
        if select:
            cmd += ["-k", select]
        env = dict(os.environ)
        if quick:
            env.pop("IMGIO_BENCH_FULL", None)
        proc = subprocess.run(cmd, env=env)
        if proc.returncode not in (0, 5) or not out.exists():
            sys.exit(f"benchmark run failed (pytest exit {proc.returncode})")
        return json.loads(out.read_text())


#: implementation names, in the order they are looked for in a test name
IMPLS = ("imgio", "imageio", "tifffile", "h5py", "pillow", "numpy", "floor", "readinto", "raw")


def impl_of(name: str) -> str:
    """``imgio`` or the peer a benchmark measures, from its test name."""
    tokens = re.split(r"[_\[\]]", name.split("[")[0].lower())
    for impl in IMPLS:
        if impl in tokens:
            return "floor" if impl in ("floor", "readinto", "raw") else impl
    return tokens[1] if len(tokens) > 1 else name


def table(results: dict) -> tuple[list[str], dict]:
    groups: dict[str, list[dict]] = {}
    for b in results["benchmarks"]:
        groups.setdefault(b.get("group") or "(none)", []).append(b)
    lines = []
    medians: dict[tuple[str, str], float] = {}
    header = f"{'workload / implementation':58s} {'median':>10s} {'MB/s':>8s} {'peak MB':>8s} {'imgio/x':>8s}"
    for group in sorted(groups):
        rows = groups[group]
        mine = [r for r in rows if impl_of(r["name"]) == "imgio"]
        # several imgio variants: ratios are taken against the fastest
        ref = min(r["stats"]["median"] for r in mine) if mine else None
        lines.append("")
        lines.append(group)
        lines.append(header)
        for r in sorted(rows, key=lambda r: r["stats"]["median"]):
            med = r["stats"]["median"]
            medians[(group, r["name"])] = med
            extra = r.get("extra_info", {})
            mbs = f"{extra['nbytes'] / med / 1e6:8.0f}" if extra.get("nbytes") else f"{'':8s}"
            peak = f"{extra['peak_bytes'] / 2**20:8.1f}" if "peak_bytes" in extra else f"{'':8s}"
            ratio = f"{ref / med:8.2f}" if ref is not None else f"{'':8s}"
            name = r["name"].split("[")[0][5:]
            lines.append(f"  {name:56s} {_fmt(med):>10s} {mbs} {peak} {ratio}")
    return lines, medians


def _fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def check(results: dict, medians: dict, thresholds_path: Path, quick: bool) -> list[str]:
    """Return one message per missed target (ratios of medians, never absolute times)."""
    if not thresholds_path.exists():
        # a check that cannot read its targets must not pass
        return [f"thresholds file {thresholds_path} not found: no target was checked"]
    config = tomllib.loads(thresholds_path.read_text())
    by_name = {}
    for (group, name), med in medians.items():
        by_name[name.split("[")[0]] = med
    failures = []
    if not config.get("target"):
        return [f"{thresholds_path} defines no [[target]]: nothing was checked"]
    for rule in config.get("target", []):
        if quick and not rule.get("quick", True):
            continue
        a, b = by_name.get(rule["imgio"]), by_name.get(rule["peer"])
        if a is None or b is None:
            failures.append(f"{rule['imgio']} / {rule['peer']}: benchmark missing from the run")
            continue
        ratio = a / b
        limit = rule["max_ratio_quick"] if quick and "max_ratio_quick" in rule else rule["max_ratio"]
        status = "ok  " if ratio <= limit else "MISS"
        print(f"{status} {rule['imgio']} / {rule['peer']} = {ratio:.2f} (target <= {limit}) "
              f"{rule.get('why', '')}")
        if ratio > limit:
            failures.append(f"{rule['imgio']} / {rule['peer']} = {ratio:.2f} > {limit}")
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI sizes, a couple of minutes")
    parser.add_argument("-k", dest="select", help="pytest -k expression to run a subset")
    parser.add_argument("--json", help="also save pytest-benchmark's JSON here")
    parser.add_argument("--no-check", action="store_true", help="print the table only")
    parser.add_argument("--thresholds", default=str(HERE / "thresholds.toml"))
    parser.add_argument("--from-json", help="render a saved run instead of running")
    args = parser.parse_args(argv)
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
    else:
        results = run_suite(args.quick, args.select)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    lines, medians = table(results)
    machine = results.get("machine_info", {})
    print(f"machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
          f"{os.cpu_count()} cores, python {machine.get('python_version', '?')}")
    print("\n".join(lines))
    if args.no_check:
        return 0
    print("\ntargets (ratio of medians, imgio / peer):")
    failures = check(results, medians, Path(args.thresholds), args.quick)
    if failures:
        print("\nMISSED TARGETS:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
