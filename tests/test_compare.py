"""benchmarks/compare.py on fake pytest-benchmark results: the check can fail, and says why.

No benchmark runs here: ``compare.main`` takes a ``runner`` that returns made-up
results, so these tests are fast and part of the normal suite.
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_imgio_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


compare = _load("compare")

TARGET = """
[[target]]
imgio = "test_imgio_read"
peer = "test_tifffile_read"
peer_setup = "tifffile.imread(maxworkers=2)"
max_ratio = 1.0
max_ratio_quick = 1.2
why = "reads on par"
"""


def _bench(name, median, group="read"):
    return {"name": name, "fullname": f"benchmarks/test_bench_x.py::{name}", "group": group,
            "stats": {"median": median}, "extra_info": {}}


def _results(**medians):
    return {"benchmarks": [_bench(n, m) for n, m in medians.items()]}


def _thresholds(tmp_path, text=TARGET):
    path = tmp_path / "thresholds.toml"
    path.write_text(text)
    return path


class Runner:
    """Returns the queued results one call at a time and records the calls."""

    def __init__(self, *results):
        self.queue = list(results)
        self.calls = []

    def __call__(self, full, select=None, nodeids=None):
        self.calls.append({"full": full, "select": select, "nodeids": nodeids})
        if not self.queue:
            raise AssertionError("the benchmarks were run more often than expected")
        return self.queue.pop(0)


def _never(*args, **kwargs):
    raise AssertionError("the benchmarks must not run when the thresholds are refused")


# -- thresholds refused before anything runs ---------------------------------------------------
@pytest.mark.parametrize("drop, message", [
    ("peer_setup", "has no peer_setup"),
    ("max_ratio_quick", "has no max_ratio_quick"),
    ("max_ratio", "has no max_ratio"),
    ("peer", "has no peer"),
])
def test_a_target_without_a_required_field_is_refused(tmp_path, capsys, drop, message):
    text = "\n".join(line for line in TARGET.splitlines() if not line.startswith(f"{drop} ="))
    path = _thresholds(tmp_path, text)
    with pytest.raises(compare.ThresholdsError, match=message):
        compare.load_targets(path)
    assert compare.main(["--quick", "--thresholds", str(path)], runner=_never) == 2
    err = capsys.readouterr().err
    assert message in err and "target #1" in err


def test_which_target_lacks_peer_setup_is_named(tmp_path):
    second = TARGET.replace("test_imgio_read", "test_imgio_write").replace(
        'peer_setup = "tifffile.imread(maxworkers=2)"\n', "")
    with pytest.raises(compare.ThresholdsError) as info:
        compare.load_targets(_thresholds(tmp_path, TARGET + second))
    assert "target #2 (test_imgio_write / test_tifffile_read) has no peer_setup" in str(info.value)
    assert "target #1" not in str(info.value)


@pytest.mark.parametrize("line, message", [
    ('peer_setup = "  "', "peer_setup is empty"),
    ("quick = false", "quick = False"),
    ('max_ratio_quick = "1.2"', "is not a number"),
    ("max_ratio_quick = 0", "must be > 0"),
    ('peer_setp = "typo"', "unknown key"),
])
def test_bad_fields_are_refused(tmp_path, line, message):
    key = line.split(" =")[0]
    text = "\n".join(l for l in TARGET.splitlines() if not l.startswith(f"{key} =")) + f"\n{line}\n"
    with pytest.raises(compare.ThresholdsError, match=re.escape(message)):
        compare.load_targets(_thresholds(tmp_path, text))


@pytest.mark.parametrize("text, message", [
    (None, "not found"),
    ("", "defines no [[target]]"),
    ("# only comments\n", "defines no [[target]]"),
    ("[[target]\nimgio = 1", "not valid TOML"),
])
def test_a_missing_empty_or_unreadable_file_is_refused(tmp_path, capsys, text, message):
    path = tmp_path / "thresholds.toml"
    if text is not None:
        path.write_text(text)
    assert compare.main(["--quick", "--thresholds", str(path)], runner=_never) == 2
    assert message in capsys.readouterr().err


# -- the check ----------------------------------------------------------------------------------
def test_met_and_peer_setup_printed(tmp_path, capsys):
    run = Runner(_results(test_imgio_read=1.0, test_tifffile_read=1.0))
    assert compare.main(["--quick", "--thresholds", str(_thresholds(tmp_path))], runner=run) == 0
    out = capsys.readouterr().out
    assert "ok   test_imgio_read / test_tifffile_read = 1.00 (target <= 1.2)" in out
    assert "peer at its best: tifffile.imread(maxworkers=2)" in out
    assert run.calls == [{"full": False, "select": None, "nodeids": None}]


def test_a_miss_is_detected(tmp_path, capsys):
    run = Runner(_results(test_imgio_read=1.3, test_tifffile_read=1.0))
    assert compare.main(["--quick", "--thresholds", str(_thresholds(tmp_path))], runner=run) == 1
    captured = capsys.readouterr()
    assert "MISS test_imgio_read / test_tifffile_read = 1.30 (target <= 1.2)" in captured.out
    assert "test_imgio_read / test_tifffile_read = 1.30 > 1.2" in captured.err
    assert len(run.calls) == 1  # no hidden rerun without --retry-missed


def test_full_checks_max_ratio_quick_checks_max_ratio_quick(tmp_path):
    path = str(_thresholds(tmp_path))
    res = _results(test_imgio_read=1.1, test_tifffile_read=1.0)
    assert compare.main(["--quick", "--thresholds", path], runner=Runner(res)) == 0
    run = Runner(res)
    assert compare.main(["--full", "--thresholds", path], runner=run) == 1
    assert run.calls[0]["full"] is True


@pytest.mark.parametrize("present", [{"test_imgio_read": 1.0}, {"test_tifffile_read": 1.0}, {}])
def test_a_target_whose_tests_are_missing_from_the_run_fails(tmp_path, capsys, present):
    run = Runner(_results(test_other=1.0, **present))
    assert compare.main(["--quick", "--thresholds", str(_thresholds(tmp_path))], runner=run) == 1
    err = capsys.readouterr().err
    assert "missing from the run" in err
    assert "no target was checked" in err


def test_an_ambiguous_name_is_not_guessed(tmp_path, capsys):
    res = _results(test_imgio_read=1.0, test_tifffile_read=1.0)
    res["benchmarks"].append(dict(_bench("test_tifffile_read", 0.1),
                                  fullname="benchmarks/test_bench_y.py::test_tifffile_read"))
    assert compare.main(["--quick", "--thresholds", str(_thresholds(tmp_path))],
                        runner=Runner(res)) == 1
    assert "ambiguous" in capsys.readouterr().err


def test_zero_targets_checked_fails(tmp_path, capsys):
    # a -k subset that selects neither benchmark of the only target: nothing was checked
    run = Runner(_results(test_imgio_other=1.0, test_numpy_other=1.0))
    assert compare.main(["--quick", "-k", "other", "--thresholds", str(_thresholds(tmp_path))],
                        runner=run) == 1
    captured = capsys.readouterr()
    assert "not selected by -k" in captured.out
    assert "no target was checked" in captured.err


# -- retry ----------------------------------------------------------------------------------
TWO = TARGET + TARGET.replace("test_imgio_read", "test_imgio_write").replace(
    "test_tifffile_read", "test_tifffile_write")


def _two(read, write):
    return _results(test_imgio_read=read, test_tifffile_read=1.0,
                    test_imgio_write=write, test_tifffile_write=1.0)


def test_retry_measures_only_the_missed_and_prints_both(tmp_path, capsys):
    run = Runner(_two(1.0, 1.5), _results(test_imgio_write=0.9, test_tifffile_write=1.0))
    code = compare.main(["--quick", "--retry-missed", "--thresholds",
                         str(_thresholds(tmp_path, TWO))], runner=run)
    out = capsys.readouterr().out
    assert code == 0
    assert run.calls[1]["nodeids"] == ["benchmarks/test_bench_x.py::test_imgio_write",
                                       "benchmarks/test_bench_x.py::test_tifffile_write"]
    assert "ok   (retried: first 1.50 MISS, second 0.90) test_imgio_write" in out
    assert "ok   test_imgio_read / test_tifffile_read = 1.00" in out  # not retried
    assert "1 only on the retry" in out


def test_retry_that_misses_again_fails_with_both_ratios(tmp_path, capsys):
    run = Runner(_two(1.0, 1.5), _results(test_imgio_write=1.4, test_tifffile_write=1.0))
    path = tmp_path / "run.json"
    md = tmp_path / "table.md"
    code = compare.main(["--quick", "--retry-missed", "--json", str(path), "--markdown", str(md),
                         "--thresholds", str(_thresholds(tmp_path, TWO))], runner=run)
    captured = capsys.readouterr()
    assert code == 1
    assert "MISS (retried: first 1.50 MISS, second 1.40)" in captured.out
    assert "(first 1.50, second 1.40)" in captured.err
    rows = json.loads(path.read_text())["imgio_compare"]["targets"]
    write = [r for r in rows if r["imgio"] == "test_imgio_write"][0]
    assert (write["first_ratio"], write["ratio"], write["status"]) == (1.5, 1.4, "missed")
    assert "| 1.50 then 1.40 | <= 1.2 | **missed** (retried) |" in md.read_text()
    assert len(run.calls) == 2  # at most one retry


def test_no_retry_when_nothing_missed(tmp_path):
    run = Runner(_two(1.0, 1.0))
    assert compare.main(["--quick", "--retry-missed", "--thresholds",
                         str(_thresholds(tmp_path, TWO))], runner=run) == 0
    assert len(run.calls) == 1


# -- markdown and saved runs ------------------------------------------------------------------
def test_markdown_names_peer_setup_commit_machine_versions_and_command(tmp_path, capsys):
    run = Runner(_results(test_imgio_read=0.5, test_tifffile_read=1.0))
    assert compare.main(["--full", "--markdown", "--thresholds", str(_thresholds(tmp_path))],
                        runner=run) == 0
    out = capsys.readouterr().out
    assert "| workload | imgio | peer at its best | ratio | target | |" in out
    assert ("| read | `test_imgio_read` 500.00 ms | tifffile.imread(maxworkers=2) 1.00 s | 0.50 "
            "| <= 1.0 | met |") in out
    assert "python benchmarks/compare.py --full --markdown --thresholds" in out
    assert re.search(r"at commit `([0-9a-f]{40}|unknown)", out)
    assert "numpy " in out and "tifffile " in out and "Python 3." in out
    assert f"on {__import__('os').cpu_count()} x " in out


def test_saved_run_is_checked_again(tmp_path, capsys):
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(_results(test_imgio_read=2.0, test_tifffile_read=1.0)))
    assert compare.main(["--quick", "--from-json", str(saved), "--thresholds",
                         str(_thresholds(tmp_path))], runner=_never) == 1
    assert "MISS" in capsys.readouterr().out


# -- the real thresholds ------------------------------------------------------------------------
def test_the_repository_thresholds_are_complete_and_name_real_benchmarks():
    targets = compare.load_targets(BENCH / "thresholds.toml")  # refuses a missing peer_setup
    defined = set()
    for path in BENCH.glob("test_bench_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)\(", path.read_text(), re.M))
    for rule in targets:
        assert rule["imgio"] in defined, rule["imgio"]
        assert rule["peer"] in defined, rule["peer"]


def test_python_310_reads_the_thresholds_with_tomli():
    text = (ROOT / "pyproject.toml").read_text()
    test_extra = text[text.index("\ntest = ["):]
    test_extra = test_extra[: test_extra.index("]\n") + 1]
    assert re.search(r"""["']tomli[^"']*;\s*python_version\s*<\s*["']3\.11["']["']""",
                     test_extra), test_extra


def test_noise_proposes_worst_times_margin_and_flags(tmp_path):
    noise = _load("noise")
    targets = compare.load_targets(_thresholds(tmp_path, TWO))
    ratios = {("test_imgio_read", "test_tifffile_read"): [0.80, 0.82, 0.85, 0.81, 0.90],
              ("test_imgio_write", "test_tifffile_write"): [1.0, 1.1, 1.3, 1.05, 1.02]}
    rows = noise.analyse(ratios, targets, 0.10)
    read, write = rows
    assert (read["worst"], read["median"], read["proposed"], read["flags"]) == (0.90, 0.82, 0.99, [])
    assert write["proposed"] == 1.43 and write["flags"] == ["QUICK>FULL", "FLAKY"]
    path = _thresholds(tmp_path, TWO)
    noise.set_limits(path, rows, ["test_imgio_write/test_tifffile_write"])
    limits = [(t["imgio"], t["max_ratio_quick"]) for t in compare.load_targets(path)]
    assert limits == [("test_imgio_read", 1.2), ("test_imgio_write", 1.43)]


def test_a_failing_benchmark_fails_the_check(tmp_path, capsys):
    res = _results(test_imgio_read=1.0, test_tifffile_read=1.0)
    res["imgio_compare"] = {"pytest_exit": 1}
    assert compare.main(["--quick", "--thresholds", str(_thresholds(tmp_path))],
                        runner=Runner(res)) == 1
    assert "the benchmark run itself failed (pytest exit 1" in capsys.readouterr().err
