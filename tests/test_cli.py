"""The `tiletune` command, every verb end to end through ``main([...])`` (the real measurement
harness on a tiny dense workload), and once through the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tiletune.cli import main
from tiletune.tuner.records.store import load_records

TINY = ["--op", "dense", "--shape", "32,32,32"]
FAST = ["--jobs", "1", "--batch-size", "3", "--number", "2", "--repeat", "2"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A records file from a real 6-trial tune of the tiny dense workload (run once)."""
    path = tmp_path_factory.mktemp("records") / "tuned.jsonl"
    code = main(["tune", *TINY, "--trials", "6", "--records", str(path), *FAST, "-q"])
    assert code == 0
    return path


# --------------------------------------------------------------------------- tune
def test_tune_json_summary_and_records(tuned, capsys, tmp_path):
    recs, problems = load_records(tuned)
    trials = [r for r in recs if r["tuner"] != "confirm"]  # confirmation rounds aside
    assert len(trials) == 6 and not problems and recs[0]["tuner"] == "default"
    path = tmp_path / "r.jsonl"
    shutil.copy(tuned, path)
    code, out, err = run(capsys, "tune", *TINY, "--trials", "8", "--records", str(path),
                         "--resume", "--json", *FAST)
    assert code == 0
    summary = json.loads(out)  # nothing but JSON on stdout
    (w,) = summary["workloads"]
    assert w["trials"] == 8 and w["resumed"] == 6 and w["new_trials"] == 2
    assert w["best_gflops"] > 0 and w["speedup"] >= 1.0 and summary["exit_code"] == 0
    assert "summary" in err and "\r" not in err  # table and plain progress on stderr
    measured = [r for r in load_records(path)[0] if r["tuner"] != "confirm"]
    assert len(measured) == 8  # --resume measured only the 2 new configs (confirmation
    #                            re-measurements of the default and the top configs aside)


def test_tune_resume_with_nothing_new_measures_nothing(tuned, capsys, tmp_path):
    path = tmp_path / "r.jsonl"
    shutil.copy(tuned, path)
    code, out, err = run(capsys, "tune", *TINY, "--trials", "6", "--records", str(path),
                         "--resume", *FAST)
    assert code == 0 and "6 (6 resumed)" in out and "speed-up" in out
    assert len(load_records(path)[0]) == len(load_records(tuned)[0])
    assert "already holds" not in err  # --resume: no re-tuning warning


def test_retuning_without_resume_warns_with_the_record_count(tuned, capsys, tmp_path):
    path = tmp_path / "r.jsonl"
    shutil.copy(tuned, path)
    code, _, err = run(capsys, "tune", *TINY, "--trials", "1", "--records", str(path), *FAST)
    assert code == 0
    n = len(load_records(tuned)[0])  # 6 trials, and confirmation rounds if the search won
    (line,) = [ln for ln in err.splitlines() if "already holds" in ln]
    assert line.startswith("warning:") and f"{n} records of dense" in line and "--resume" in line


def test_tune_with_failed_trials_exits_0_and_reports_them(capsys, tmp_path, monkeypatch):
    from tiletune.tuner.measure import local as measure
    from tiletune.tuner.targets.registry import get_target

    real = measure.LocalMeasurer

    class Flaky(real):
        def __call__(self, indices):
            res = super().__call__(indices)
            return [measure.MeasureResult.failure("WrongAnswer", "3 elements differ",
                                                  traceback="Traceback: here")
                    if k == 1 else r for k, r in enumerate(res)]

    monkeypatch.setattr(get_target("llvm"), "measurer", Flaky)
    code, out, err = run(capsys, "tune", *TINY, "--trials", "4", "--records",
                         str(tmp_path / "r.jsonl"), "-v", *FAST)
    assert code == 0  # every workload got a best: failed trials are reported, not fatal
    assert "WrongAnswer:1" in out
    assert "3 elements differ" in err and "Traceback: here" in err  # -v: each failure


def test_tune_vta_resnet18_skips_layer_1_and_reports_simulated_speed(capsys, tmp_path):
    code, out, err = run(capsys, "tune", "--target", "vta", "--workload", "resnet18:1-2",
                         "--trials", "3", "--records", str(tmp_path / "r.jsonl"), "--json")
    assert code == 0, err
    summary = json.loads(out)
    skipped, tuned = summary["workloads"]
    assert skipped["status"] == "skipped" and "C=3" in skipped["stop_reason"]
    assert tuned["status"] == "done" and tuned["trials"] == 3 and tuned["speedup"] >= 1.0
    assert 1 < tuned["best_gflops"] < 1000  # simulated cycles at the VTA clock, not a cutoff
    assert err.count("warning: skipping resnet18:1") == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["tune", "--op", "dense"], "--op and --shape go together"),
    (["tune", "--op", "dense", "--shape", "1,2"], "takes M,N,K"),
    (["tune", "--workload", "resnet50"], "unknown workload"),
    (["tune", "--workload", "resnet18:13"], "out of range"),
    (["tune"], "which workload?"),
    (["tune", "--workload", "resnet18", "--op", "dense", "--shape", "1,1,1"], "either"),
    (["tune", *TINY, "--transfer-from", "x.jsonl", "--tuner", "random"], "--transfer-from"),
    (["tune", "--op", "depthwise", "--shape", "1,8,8,8,3", "--target", "vta"],
     "no template for target 'vta'"),
    (["compile", "--workload", "resnet18", "--dump", "ir"], "takes one workload"),
    (["compile", *TINY], "nothing to do"),
    (["compile", *TINY, "-o", "x.exe"], "unknown extension"),
    (["records", "show", "/nonexistent/r.jsonl"], "cannot read records file"),
])
def test_errors_exit_2_with_a_one_line_message(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_argparse_errors_exit_2(capsys):
    for argv in (["tune", *TINY, "--trials", "0"], ["nope"], ["tune", *TINY, "--tuner", "x"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    capsys.readouterr()


def test_records_dir_is_an_error(capsys, tmp_path):
    code, _, err = run(capsys, "tune", *TINY, "--records", str(tmp_path))
    assert code == 2 and "is a directory" in err


def test_verbose_error_shows_the_traceback(capsys):
    code, _, err = run(capsys, "records", "show", "/nonexistent/r.jsonl", "-v")
    assert code == 2 and "Traceback" in err


@pytest.mark.parametrize("argv", [["-v", "records", "show", "/nonexistent/r.jsonl"],
                                  ["records", "show", "/nonexistent/r.jsonl", "-v"],
                                  ["--verbose", "tune", "--workload", "resnet50"]])
def test_global_flags_go_before_or_after_the_verb(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2 and "Traceback" in err and "error:" in err


def test_quiet_before_the_verb_silences_warnings(tuned, capsys, tmp_path):
    path = tmp_path / "r.jsonl"
    shutil.copy(tuned, path)
    code, _, err = run(capsys, "-q", "tune", *TINY, "--trials", "1", "--records", str(path),
                       *FAST)
    assert code == 0 and "warning" not in err


# --------------------------------------------------------------------------- records
def test_records_show(tuned, capsys):
    n = len(load_records(tuned)[0])  # 6 trials, and confirmation rounds if the search won
    code, out, err = run(capsys, "records", "show", str(tuned))
    assert code == 0 and "dense:32,32,32" in out and f"{n} records" in out
    code, out, _ = run(capsys, "records", "show", str(tuned), "--json")
    (row,) = json.loads(out)["workloads"]
    assert row["records"] == n and row["best_gflops"] > 0


def test_corrupt_lines_are_skipped_and_reported(tuned, capsys, tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = tuned.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + ["{oops", '{"workload": 1}'] + lines[3:]) + "\n")
    code, out, err = run(capsys, "records", "show", str(path))
    assert code == 1 and f"{len(lines)} records" in out
    assert "skipped 2 unusable line(s)" in err and f"{path}:4" in err
    code, out, err = run(capsys, "records", "best", str(path))
    assert code == 1 and "tt.build" in out


def test_records_best_prints_python_that_builds_the_kernel(tuned, capsys, monkeypatch):
    code, out, _ = run(capsys, "records", "best", str(tuned), "--workload", "dense:32,32,32")
    assert code == 0 and "from tiletune.schedules import dense" in out
    best = min(load_records(tuned)[0], key=lambda r: sum(r["costs"]) / len(r["costs"]))
    assert repr(best["config"]) in out
    ns: dict = {}
    exec(compile(out, "<records best>", "exec"), ns)  # noqa: S102 - the point of the test
    capsys.readouterr()
    f = ns["f"]
    a = np.random.rand(32, 32).astype("float32")
    b = np.random.rand(32, 32).astype("float32")
    c = np.empty((32, 32), "float32")
    f(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4)


def test_records_best_unknown_workload(tuned, capsys):
    code, _, err = run(capsys, "records", "best", str(tuned), "--workload", "resnet18:3")
    assert code == 2 and "dense:32,32,32" in err


def test_records_merge(tuned, capsys, tmp_path):
    out_path = tmp_path / "merged.jsonl"
    n = len(load_records(tuned)[0])
    code, _, err = run(capsys, "records", "merge", str(out_path), str(tuned), str(tuned))
    assert code == 0 and f"appended {n}" in err
    code, _, err = run(capsys, "records", "merge", str(out_path), str(tuned))
    assert code == 0 and "appended 0" in err
    assert len(load_records(out_path)[0]) == n


# --------------------------------------------------------------------------- compile, run
def test_compile_tuned_kernel_and_dump_ir(tuned, capsys, tmp_path):
    so = tmp_path / "k.so"
    code, out, err = run(capsys, "compile", *TINY, "--records", str(tuned), "-o", str(so),
                         "--dump", "ir")
    assert code == 0 and so.exists() and "for " in out and "tuned config" in err
    import tiletune as tt

    g = tt.runtime.load_module(str(so))
    a, b = np.ones((32, 32), "float32"), np.ones((32, 32), "float32")
    c = np.empty((32, 32), "float32")
    g(a, b, c)
    assert (c == 32).all()


def test_compile_untuned_warns_once_and_uses_the_default(capsys, tmp_path):
    code, out, err = run(capsys, "compile", "--op", "dense", "--shape", "16,32,32",
                         "-o", str(tmp_path / "k.ll"))
    assert code == 0 and "define " in (tmp_path / "k.ll").read_text()
    assert err.count("warning:") == 1 and "tiletune tune --op dense --shape 16,32,32" in err


def test_run_with_check(tuned, capsys, tmp_path):
    code, out, _ = run(capsys, "run", *TINY, "--records", str(tuned), "--check", "--json",
                       "--number", "2", "--repeat", "2")
    res = json.loads(out)
    assert code == 0 and res["check"] == "ok" and res["tuned"] and res["gflops"] > 0
    assert res["min_ms"] <= res["median_ms"]


def test_run_with_input_files(capsys, tmp_path):
    a = np.random.rand(16, 32).astype("float32")
    b = np.random.rand(32, 8).astype("float32")
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    code, out, err = run(capsys, "run", "--op", "dense", "--shape", "16,8,32", "--inputs",
                         str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--check",
                         "--save-output", str(tmp_path / "c.npy"), "-q")
    assert code == 0 and "check vs NumPy: ok" in out and "GFLOP/s" in out
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), a @ b, rtol=1e-4)
    code, _, err = run(capsys, "run", "--op", "dense", "--shape", "16,8,32", "--inputs",
                       str(tmp_path / "b.npy"), str(tmp_path / "a.npy"))
    assert code == 2 and "shape" in err


# --------------------------------------------------------------------------- doctor
def test_doctor(capsys):
    code, out, _ = run(capsys, "doctor")
    assert code == 0 and "llvmlite" in out and "AVX-512" in out and "libgomp" in out
    code, out, _ = run(capsys, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["JIT smoke test"]["status"] == "ok" and "xgboost" in checks


def test_doctor_warns_about_openblas_coretype(capsys, monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    code, out, _ = run(capsys, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 0
    assert checks["OPENBLAS_CORETYPE"]["status"] == "warn"
    assert checks["OpenMP spinning"]["status"] == "warn"


# --------------------------------------------------------------------------- console script
def test_installed_console_script(tmp_path):
    exe = shutil.which("tiletune")
    if exe is None:
        pytest.skip("the tiletune console script is not installed (pip install -e .)")
    rec = tmp_path / "r.jsonl"
    p = subprocess.run([exe, "tune", *TINY, "--trials", "3", "--records", str(rec), "--json",
                        *FAST], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["workloads"][0]["trials"] == 3
    p = subprocess.run([exe, "records", "best", str(rec)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and "tt.build" in p.stdout
    p = subprocess.run([sys.executable, "-m", "tiletune.cli", "--version"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("tiletune ")


def test_transfer_from_picks_the_transfer_tuner(tuned, capsys, tmp_path):
    code, out, err = run(capsys, "tune", "--op", "dense", "--shape", "16,32,32", "--trials",
                         "4", "--records", str(tmp_path / "r.jsonl"), "--transfer-from",
                         str(tuned), "--json", *FAST)
    assert code == 0 and json.loads(out)["tuner"] == "transfer-xgb"


def test_ctrl_c_prints_only_the_summary_and_keeps_the_records(tmp_path):
    """Ctrl-C at a terminal: SIGINT to the whole process group, workers included. Workers
    ignore it; the parent stops, prints the summary and exits 130; no worker traceback."""
    import os
    import signal
    import time

    rec = tmp_path / "r.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "tiletune.cli", "tune", *TINY, "--trials",
                          "500", "--records", str(rec), "--jobs", "2", "--batch-size", "4",
                          "--time-budget", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)  # its own process group, like a shell job
    try:
        deadline = time.monotonic() + 120
        while not (rec.exists() and len(load_records(rec)[0]) >= 6):  # a few batches done
            assert time.monotonic() < deadline and p.poll() is None, "no records in 2 min"
            time.sleep(0.2)
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "summary" in out and "interrupted" in err
    recs, problems = load_records(rec)
    assert len(recs) >= 6 and not problems
