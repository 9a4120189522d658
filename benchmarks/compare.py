"""Run the benchmark suite and print imgio against its peers, then check targets.

Usage::

    python benchmarks/compare.py --quick    # CI sizes and the max_ratio_quick limits
    python benchmarks/compare.py --full     # the sizes of docs/performance.md (IMGIO_BENCH_FULL=1)
    python benchmarks/compare.py --full --markdown docs-table.md   # also render the docs table
    python benchmarks/compare.py --quick --retry-missed   # re-measure missed targets once
    python benchmarks/compare.py --quick --json results.json
    python benchmarks/compare.py --from-json results.json   # re-render, re-check a saved run

Each benchmark group is one workload.  Within a group, the test whose name
starts with ``test_imgio`` is imgio; the others are peers (imageio,
tifffile, h5py, Pillow, NumPy) or the ``floor`` (plain ``readinto``).  The
table gives the median time, throughput, peak memory and the ratio of imgio's
median to each peer's.

Targets live in ``benchmarks/thresholds.toml``.  Every target names the peer's
best setup (``peer_setup``), the full-size limit (``max_ratio``) and the CI-size
limit (``max_ratio_quick``).  The check refuses to run (exit 2, saying which)
when the file is missing, unreadable or empty, or a target lacks a field; it
fails (exit 1) when a target's benchmarks are missing from the run, when a
target is missed, or when no target was checked at all.  With
``--retry-missed`` the missed targets (only those) are measured once more and
both ratios are printed; the second measurement decides.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
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
REPO = HERE.parent

#: exit status when the thresholds or the run cannot be checked at all
EXIT_REFUSED = 2
#: exit status when a target is missed or its benchmarks are missing
EXIT_MISSED = 1

REQUIRED = {"imgio": str, "peer": str, "peer_setup": str,
            "max_ratio": (int, float), "max_ratio_quick": (int, float)}
OPTIONAL = {"why": str}

#: libraries whose versions the docs table records
LIBRARIES = ("imgio", "numpy", "tifffile", "imagecodecs", "h5py", "Pillow", "imageio",
             "zarr", "dask", "pytest-benchmark")


class ThresholdsError(Exception):
    """The thresholds cannot be used: nothing would be checked (exit 2)."""


# -- thresholds ------------------------------------------------------------------------------
def load_targets(path: Path | str) -> list[dict]:
    """The ``[[target]]`` tables of ``path``, validated; ThresholdsError says what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ThresholdsError(f"thresholds file {path} not found: no target can be checked")
    except OSError as exc:
        raise ThresholdsError(f"thresholds file {path} cannot be read ({exc}): "
                              "no target can be checked")
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ThresholdsError(f"thresholds file {path} is not valid TOML ({exc}): "
                              "no target can be checked")
    targets = config.get("target")
    if not targets:
        raise ThresholdsError(f"thresholds file {path} defines no [[target]]: nothing to check")
    if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
        raise ThresholdsError(f"thresholds file {path}: 'target' must be an array of tables "
                              "([[target]])")
    problems = []
    for i, rule in enumerate(targets, 1):
        label = f"target #{i} ({rule.get('imgio', '?')} / {rule.get('peer', '?')})"
        for key, kind in REQUIRED.items():
            value = rule.get(key)
            if value is None:
                hint = {"peer_setup": ": name the peer's best setup, e.g. "
                                      "'tifffile.imread(maxworkers=2)'",
                        "max_ratio_quick": ": every target needs a CI-size limit, "
                                           "set from benchmarks/noise.py"}.get(key, "")
                problems.append(f"{label} has no {key}{hint}")
            elif not isinstance(value, kind) or isinstance(value, bool):
                problems.append(f"{label}: {key} = {value!r} is not a {_kind_name(kind)}")
            elif isinstance(value, str) and not value.strip():
                problems.append(f"{label}: {key} is empty")
            elif not isinstance(value, str) and not value > 0:
                problems.append(f"{label}: {key} = {value!r} must be > 0")
        if "quick" in rule:
            problems.append(f"{label} has quick = {rule['quick']!r}: every target is checked "
                            "at CI size; give it a CI size big enough to measure the workload "
                            "and a max_ratio_quick")
        unknown = sorted(set(rule) - set(REQUIRED) - set(OPTIONAL) - {"quick"})
        if unknown:
            problems.append(f"{label} has unknown key(s) {', '.join(unknown)} "
                            f"(known: {', '.join(list(REQUIRED) + list(OPTIONAL))})")
    if problems:
        raise ThresholdsError(f"thresholds file {path} refused:\n  " + "\n  ".join(problems))
    return targets


def _kind_name(kind) -> str:
    return "string" if kind is str else "number"


# -- running ---------------------------------------------------------------------------------
def run_suite(full: bool, select: str | None = None, nodeids: list[str] | None = None,
              max_time: float | None = None) -> dict:
    """pytest-benchmark's JSON of one run of ``benchmarks/`` (or of ``nodeids``)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        if max_time is None:
            max_time = 2.0 if full else 0.5
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--benchmark-json={out}", "--benchmark-min-rounds=3",
               f"--benchmark-max-time={max_time}"]
        cmd += nodeids if nodeids else [str(HERE)]
        if select:
            cmd += ["-k", select]
        env = dict(os.environ)
        if full:
            env["IMGIO_BENCH_FULL"] = "1"
        else:
            env.pop("IMGIO_BENCH_FULL", None)
        proc = subprocess.run(cmd, env=env, cwd=REPO)
        if not out.exists():
            raise RuntimeError(f"benchmark run failed (pytest exit {proc.returncode}), no "
                               "results: " + " ".join(cmd[2:]))
        results = json.loads(out.read_text())
    # a failing benchmark (its own assertion) is a broken measurement: main fails the check
    results["imgio_compare"] = {"full": full, "select": select, "nodeids": nodeids,
                                "pytest_exit": proc.returncode}
    return results


# -- the table of every benchmark ------------------------------------------------------------
#: implementation names, in the order they are looked for in a test name
IMPLS = ("imgio", "imageio", "tifffile", "h5py", "pillow", "numpy", "floor", "readinto", "raw")


def impl_of(name: str) -> str:
    """``imgio`` or the peer a benchmark measures, from its test name."""
    tokens = re.split(r"[_\[\]]", name.split("[")[0].lower())
    for impl in IMPLS:
        if impl in tokens:
            return "floor" if impl in ("floor", "readinto", "raw") else impl
    return tokens[1] if len(tokens) > 1 else name


def table(results: dict) -> list[str]:
    groups: dict[str, list[dict]] = {}
    for b in results["benchmarks"]:
        groups.setdefault(b.get("group") or "(none)", []).append(b)
    lines = []
    header = (f"{'workload / implementation':58s} {'median':>10s} {'MB/s':>8s} "
              f"{'peak MB':>8s} {'imgio/x':>8s}")
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
            extra = r.get("extra_info", {})
            mbs = f"{extra['nbytes'] / med / 1e6:8.0f}" if extra.get("nbytes") else f"{'':8s}"
            peak = (f"{extra['peak_bytes'] / 2**20:8.1f}" if "peak_bytes" in extra
                    else f"{'':8s}")
            ratio = f"{ref / med:8.2f}" if ref is not None else f"{'':8s}"
            name = r["name"][5:] if r["name"].startswith("test_") else r["name"]
            lines.append(f"  {name:56s} {_fmt(med):>10s} {mbs} {peak} {ratio}")
    return lines


def _fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


# -- the check -------------------------------------------------------------------------------
def _index(results: dict) -> dict[str, list[dict]]:
    """Benchmarks by test name, with and without their parameters."""
    by_name: dict[str, list[dict]] = {}
    for b in results.get("benchmarks", []):
        names = {b["name"], b["name"].split("[")[0]}
        for n in names:
            by_name.setdefault(n, []).append(b)
    return by_name


def evaluate(results: dict, targets: list[dict], full: bool, partial: bool = False) -> list[dict]:
    """One row per target: the ratio of medians imgio / peer and whether it meets its limit.

    ``status`` is ``met``, ``missed``, ``missing`` (a benchmark of the target is not in
    the run, or its name is ambiguous) or, with ``partial`` (a ``-k`` subset),
    ``not run`` when neither benchmark was selected.
    """
    by_name = _index(results)
    rows = []
    for rule in targets:
        limit = rule["max_ratio"] if full else rule["max_ratio_quick"]
        row = {"imgio": rule["imgio"], "peer": rule["peer"], "peer_setup": rule["peer_setup"],
               "why": rule.get("why", ""), "limit": limit, "max_ratio": rule["max_ratio"],
               "max_ratio_quick": rule["max_ratio_quick"], "ratio": None, "group": None,
               "imgio_median": None, "peer_median": None, "nodeids": [], "problem": None}
        found = {side: by_name.get(rule[side], []) for side in ("imgio", "peer")}
        if partial and not found["imgio"] and not found["peer"]:
            row["status"] = "not run"
            rows.append(row)
            continue
        problems = []
        for side, hits in found.items():
            if not hits:
                problems.append(f"{side} benchmark {rule[side]} is missing from the run")
            elif len(hits) > 1:
                problems.append(f"{side} benchmark {rule[side]} is ambiguous ("
                                + ", ".join(h["fullname"] for h in hits)
                                + "): name one of them exactly")
        if problems:
            row["status"] = "missing"
            row["problem"] = "; ".join(problems)
            rows.append(row)
            continue
        a, b = found["imgio"][0], found["peer"][0]
        row["imgio_median"], row["peer_median"] = a["stats"]["median"], b["stats"]["median"]
        row["ratio"] = row["imgio_median"] / row["peer_median"]
        row["group"] = a.get("group") or "(none)"
        if (b.get("group") or "(none)") != row["group"]:
            row["group"] += f" / {b.get('group')}"
        row["nodeids"] = [a["fullname"], b["fullname"]]
        row["status"] = "met" if row["ratio"] <= limit else "missed"
        rows.append(row)
    return rows


def retry_missed(rows: list[dict], targets: list[dict], full: bool, runner=run_suite) -> None:
    """Measure the missed targets' benchmarks once more; keep both ratios in each row."""
    missed = [r for r in rows if r["status"] == "missed"]
    if not missed:
        return
    nodeids = sorted({n for r in missed for n in r["nodeids"]})
    print(f"\nretrying {len(missed)} missed target(s), once, measuring only "
          f"{len(nodeids)} benchmark(s): " + ", ".join(nodeids), flush=True)
    second = runner(full, nodeids=nodeids)
    failed = second.get("imgio_compare", {}).get("pytest_exit", 0)
    by_key = {(r["imgio"], r["peer"]): r for r in evaluate(second, targets, full, partial=True)}
    for row in missed:
        again = by_key.get((row["imgio"], row["peer"]))
        row["first_ratio"] = row["ratio"]
        row["first_status"] = row["status"]
        if failed or again is None or again["ratio"] is None:
            row["status"] = "missing"
            row["problem"] = (f"first ratio {row['first_ratio']:.2f} missed; the retry "
                              + (f"run failed (pytest exit {failed})" if failed
                                 else "did not measure it"))
            continue
        row["ratio"] = again["ratio"]
        row["imgio_median"], row["peer_median"] = again["imgio_median"], again["peer_median"]
        row["status"] = again["status"]


def _ratio_text(row: dict) -> str:
    if row["ratio"] is None:
        return "-"
    if "first_ratio" in row:
        return f"{row['first_ratio']:.2f} then {row['ratio']:.2f}"
    return f"{row['ratio']:.2f}"


STATUS = {"met": "ok  ", "missed": "MISS", "missing": "MISSING", "not run": "----"}


def report(rows: list[dict]) -> list[str]:
    """Human lines per target (both ratios of a retried target) and the failures."""
    lines = []
    for row in rows:
        tag = STATUS[row["status"]]
        if "first_ratio" in row:
            tag = f"{tag} (retried: first {row['first_ratio']:.2f} "\
                  f"{'MISS' if row['first_status'] == 'missed' else row['first_status']}, "\
                  f"second {row['ratio']:.2f})" if row["ratio"] is not None else f"{tag} (retried)"
        if row["status"] in ("missing",):
            lines.append(f"{tag} {row['imgio']} / {row['peer']}: {row['problem']}")
            continue
        if row["status"] == "not run":
            lines.append(f"{tag} {row['imgio']} / {row['peer']}: not selected by -k")
            continue
        lines.append(f"{tag} {row['imgio']} / {row['peer']} = {row['ratio']:.2f} "
                     f"(target <= {row['limit']}) [{row['group']}]")
        lines.append(f"       peer at its best: {row['peer_setup']}")
        if row["why"]:
            lines.append(f"       {row['why']}")
    return lines


def failures(rows: list[dict]) -> list[str]:
    out = []
    for row in rows:
        if row["status"] == "missing":
            out.append(f"{row['imgio']} / {row['peer']}: {row['problem']}")
        elif row["status"] == "missed":
            first = (f" (first {row['first_ratio']:.2f}, second {row['ratio']:.2f})"
                     if "first_ratio" in row else "")
            out.append(f"{row['imgio']} / {row['peer']} = {row['ratio']:.2f} > "
                       f"{row['limit']}{first}; peer: {row['peer_setup']}")
    if not any(r["status"] in ("met", "missed") for r in rows):
        out.append("no target was checked (zero ratios measured): the check cannot pass")
    return out


# -- the docs table --------------------------------------------------------------------------
def machine_info() -> dict:
    model = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor() or "?"
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu_count": os.cpu_count(), "cpu_model": model, "memory_bytes": mem,
            "loadavg": load, "python": platform.python_version(), "system": platform.platform()}


def library_versions() -> dict:
    from importlib import metadata
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True).stdout.strip()
        return sha + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def run_info(command: str) -> dict:
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit(), "machine": machine_info(), "versions": library_versions(),
            "command": command}


def markdown(rows: list[dict], info: dict, full: bool) -> str:
    m = info["machine"]
    mem = f", {m['memory_bytes'] / 2**30:.0f} GiB" if m.get("memory_bytes") else ""
    load = (", load average {:.2f} {:.2f} {:.2f} at the start".format(*m["loadavg"])
            if m.get("loadavg") else "")
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    out = [f"Measured {info['date']} at commit `{info['commit']}` on {m['cpu_count']} x "
           f"{m['cpu_model']}{mem}{load}; Python {m['python']}; {versions}. Command:",
           "", "```bash", info["command"], "```", "",
           f"Sizes: {'full (IMGIO_BENCH_FULL=1)' if full else 'CI (--quick)'}; ratio = "
           "imgio's median / the peer's median, from the same run (below 1: imgio is faster).",
           "",
           "| workload | imgio | peer at its best | ratio | target | |",
           "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        if row["status"] == "not run":
            continue
        if row["status"] == "missing":
            out.append(f"| - | `{row['imgio']}` | {_md(row['peer_setup'])} | - | "
                       f"<= {row['limit']} | **missing**: {_md(row['problem'])} |")
            continue
        verdict = "met" if row["status"] == "met" else "**missed**"
        if "first_ratio" in row:
            verdict += " (retried)"
        out.append(f"| {_md(row['group'])} | `{row['imgio']}` {_fmt(row['imgio_median'])} | "
                   f"{_md(row['peer_setup'])} {_fmt(row['peer_median'])} | {_ratio_text(row)} | "
                   f"<= {row['limit']} | {verdict} |")
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


# -- main ------------------------------------------------------------------------------------
def main(argv=None, runner=run_suite) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="CI sizes and max_ratio_quick (the default unless IMGIO_BENCH_FULL=1)")
    size.add_argument("--full", action="store_true",
                      help="the sizes of docs/performance.md and max_ratio "
                           "(same as IMGIO_BENCH_FULL=1)")
    parser.add_argument("-k", dest="select", help="pytest -k expression to run a subset")
    parser.add_argument("--json", help="save the run (pytest-benchmark's JSON plus the "
                                       "targets' ratios under 'imgio_compare') here")
    parser.add_argument("--no-check", action="store_true", help="print the table only")
    parser.add_argument("--retry-missed", action="store_true",
                        help="measure missed targets once more; both ratios are printed and "
                             "the second decides")
    parser.add_argument("--markdown", nargs="?", const="-", metavar="FILE",
                        help="render the targets as the docs/performance.md table "
                             "(to FILE, or stdout)")
    parser.add_argument("--thresholds", default=str(HERE / "thresholds.toml"))
    parser.add_argument("--from-json", help="render and check a saved run instead of running")
    args = parser.parse_args(argv)

    if args.full:
        full = True
    elif args.quick:
        full = False
    else:
        full = os.environ.get("IMGIO_BENCH_FULL") == "1"

    targets = None
    if not args.no_check:
        try:  # before the run: a check that cannot read its targets must not take minutes to say so
            targets = load_targets(args.thresholds)
        except ThresholdsError as exc:
            print(f"compare.py: {exc}", file=sys.stderr)
            return EXIT_REFUSED

    command = "python benchmarks/compare.py " + " ".join(argv)
    info = run_info(command)  # before the run: date, commit and load average at the start
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        saved = results.get("imgio_compare", {})
        if "full" in saved and not (args.full or args.quick):
            full = saved["full"]
    else:
        try:
            results = runner(full, select=args.select)
        except RuntimeError as exc:
            print(f"compare.py: {exc}", file=sys.stderr)
            return EXIT_REFUSED
    m = info["machine"]
    print(f"\nmachine: {m['cpu_model']}, {m['cpu_count']} cores, python {m['python']}; "
          f"sizes: {'full' if full else 'CI (quick)'}")
    print("\n".join(table(results)))

    rows = []
    if targets is not None:
        partial = bool(args.select) or bool(results.get("imgio_compare", {}).get("select"))
        rows = evaluate(results, targets, full, partial=partial)
        if args.retry_missed and not args.from_json:
            retry_missed(rows, targets, full, runner=runner)
        print(f"\ntargets (ratio of medians, imgio / peer; limits: "
              f"{'max_ratio' if full else 'max_ratio_quick'}):")
        print("\n".join(report(rows)))

    if args.json:
        saved = dict(results)
        saved["imgio_compare"] = dict(results.get("imgio_compare", {}), full=full,
                                      targets=rows, info=info)
        Path(args.json).write_text(json.dumps(saved, indent=1))
    if args.markdown and targets is not None:
        text = markdown(rows, info, full)
        if args.markdown == "-":
            print("\n" + text)
        else:
            Path(args.markdown).write_text(text)
            print(f"\nmarkdown table written to {args.markdown}")
    if targets is None:
        return 0
    bad = failures(rows)
    code = results.get("imgio_compare", {}).get("pytest_exit", 0)
    if code:
        bad.append(f"the benchmark run itself failed (pytest exit {code}, see its output): "
                   "a benchmark that fails its own checks measures nothing")
    if bad:
        print("\nFAILED:\n  " + "\n  ".join(bad), file=sys.stderr)
        return EXIT_MISSED
    checked = sum(r["status"] == "met" for r in rows)
    retried = sum("first_ratio" in r for r in rows)
    print(f"\nall {checked} checked target(s) met"
          + (f" ({retried} only on the retry, both ratios above)" if retried else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
