"""Records that travel: provenance, strict validation, file locks, shared files."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

from tiletune.cli import main
from tiletune.tuner import MeasureInput, MeasureResult, RecordWriter, load_records
from tiletune.tuner.records.shared import SharedRecords
from tiletune.tuner.records.store import (
    FORMAT_VERSION,
    best_records,
    host_info,
    record_problem,
    same_machine,
)
from tiletune.tuner.templates.task import Task

TASK = Task("dense", (16, 16, 16))


def good(index: int = 0, cost: float = 1e-3, **more) -> dict:
    cfg = TASK.space.get(index).to_json()
    return {"workload": TASK.workload_key, "template": "dense", "config": cfg,
            "index": index, "costs": [cost], "error": None, "message": "",
            "timestamp": 1.0, "all_cost": 0.1, "seed": 0, "tuner": "random"} | more


def test_records_carry_format_host_threads_and_versions(tmp_path):
    path = tmp_path / "r.jsonl"
    RecordWriter(path, threads=3).write([MeasureInput("w", 0, {"a": 1})],
                                        [MeasureResult.success([1e-3])])
    (rec,), problems = load_records(path)
    assert not problems and rec["format"] == FORMAT_VERSION and rec["threads"] == 3
    assert rec["host"] == host_info() and len(rec["host"]["features"]) == 8
    assert rec["host"]["cpu"] and rec["versions"]["tiletune"]


@pytest.mark.parametrize("bad, why", [
    ({"costs": [0]}, "finite positive"),
    ({"costs": [-1e-3]}, "finite positive"),
    ({"costs": [1e-3, None]}, "finite positive"),
    ({"message": None}, "'message'"),
    ({"timestamp": "yesterday"}, "'timestamp'"),
    ({"error": "Segfault", "costs": []}, "unknown error class"),
    ({"tuner": 7}, "'tuner'"),
    ({"threads": 0}, "'threads'"),
    ({"index": -1}, "'index'"),
])
def test_the_validator_rejects_bad_lines_with_a_message(tmp_path, bad, why):
    """Faults: `costs: [0]` ended --resume in ZeroDivisionError, a null message or a text
    timestamp in TypeErrors, a negative cost was taken as the best."""
    assert why in record_problem(good() | bad)
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(good(1, 2e-3)) + "\n" + json.dumps(good(0) | bad) + "\n")
    recs, problems = load_records(path)
    assert len(recs) == 1 and len(problems) == 1 and why in problems[0].reason
    # every command reading the file survives it
    assert main(["records", "show", str(path)]) == 1
    assert main(["records", "best", str(path), "--json"]) == 1


def test_best_skips_configs_outside_the_space_and_other_machines(tmp_path, capsys):
    outside = good(0, 1e-6) | {"config": {"tile_y": [-1, 999]}}
    other_cpu = good(2, 1e-5, host={"name": "x", "cpu": "sapphirerapids", "features": "0"},
                     threads=1)
    other_threads = good(3, 1e-5, threads=64)
    mine = good(1, 1e-3)
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in
                            (outside, other_cpu, other_threads, mine)))
    assert not same_machine(other_cpu) and not same_machine(other_threads)
    assert same_machine(mine)  # format 1: says nothing, matches
    others: list = []
    best = best_records(load_records(path)[0], machine=same_machine, others=others)
    assert len(others) == 2
    code = main(["records", "best", str(path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)["index"] == 1, out
    assert "2 record(s) measured on another CPU or thread count" in err
    assert best  # the library call without fits still sees the outside record
    assert main(["records", "best", str(path), "--json", "--any-machine"]) == 0
    assert json.loads(capsys.readouterr()[0])["index"] in (2, 3)


def test_records_best_escapes_every_value_it_prints(tmp_path, capsys):
    """Fault: a crafted `tuner` field with a newline injected code into the script."""
    evil = good(1, tuner="x\nimport os; os.system('echo pwned')\n#", seed=None,
                message="m")
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(evil) + "\n")
    assert main(["records", "best", str(path)]) == 0
    script = capsys.readouterr()[0]
    tree = ast.parse(script)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "attr", "") == "system"]
    assert calls == [] and "\nimport os" not in script


def test_appends_from_two_processes_never_interleave(tmp_path):
    path = tmp_path / "r.jsonl"
    code = ("import sys\nfrom tiletune.tuner import MeasureInput, MeasureResult, "
            "RecordWriter\nw = RecordWriter(sys.argv[1])\nfor k in range(40):\n"
            "    w.write([MeasureInput('w', k, {'pad': 'x' * 5000})] * 8,"
            " [MeasureResult.success([1e-3])] * 8)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], env=env)
             for _ in range(2)]
    assert all(p.wait(120) == 0 for p in procs)
    recs, problems = load_records(path)
    assert problems == [] and len(recs) == 2 * 40 * 8


def test_a_second_process_skips_configs_claimed_or_recorded_by_another(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("")
    me = SharedRecords(path, TASK.workload_key, TASK.space)
    # another live process (our parent) claimed config 5; a dead one claimed config 6
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    claims = [{"workload": TASK.workload_key, "index": 5, "host": me.host,
               "pid": os.getppid()},
              {"workload": TASK.workload_key, "index": 6, "host": me.host, "pid": int(dead)}]
    me.claims.write_text("".join(json.dumps(c) + "\n" for c in claims))
    # and config 4 was recorded by another process after this session started
    RecordWriter(path).write([MeasureInput(TASK.workload_key, 4,
                                           TASK.space.get(4).to_json())],
                             [MeasureResult.success([2e-3])])
    todo, done, busy = me.claim([4, 5, 6, 7])
    assert todo == [6, 7] and list(done) == [4] and busy == [5]
    assert done[4].costs == (2e-3,)
    again = SharedRecords(path, TASK.workload_key, TASK.space)
    again.pid = -1  # another process of this host: sees our claims
    assert again.claim([6, 7])[2] == [6, 7]
    me.close()
    assert me.claims.exists()  # the parent's live claim stays
    assert "\"index\": 6" not in me.claims.read_text()


def test_two_tune_processes_on_one_file_measure_each_config_once(tmp_path):
    """Fault: two `tune` runs appending to one records file measured the same configs twice
    (same seed: the very same batches). Now the second waits for or reuses the first's."""
    rec = tmp_path / "shared.jsonl"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-m", "tiletune.cli", "tune", "--op", "dense", "--shape",
           "16,16,16", "--trials", "8", "--records", str(rec), "--jobs", "1",
           "--batch-size", "2", "--number", "1", "--repeat", "1", "--tuner", "random",
           "--threads", "1", "--json"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=400) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    recs, problems = load_records(rec)
    measured = [r["index"] for r in recs if r["tuner"] != "confirm"]
    assert not problems and len(measured) == len(set(measured)) == 8, measured
    assert not rec.with_name(rec.name + ".claims").exists()
