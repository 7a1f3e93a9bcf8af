"""Records: append-only JSON lines that survive corruption and interrupted writes."""

import json

import pytest

from tiletune.errors import RecordsError
from tiletune.tuner import (
    MeasureInput,
    MeasureResult,
    RandomTuner,
    RecordWriter,
    best_records,
    load_records,
    measured_configs,
    merge,
    record_result,
)


def batch(workload, costs, start=0):
    inputs = [MeasureInput(workload, start + k, {"tile": [-1, 2 ** (start + k)]})
              for k in range(len(costs))]
    results = [MeasureResult.success([c], timestamp=100.0 + k, all_cost=0.5) if c else
               MeasureResult.failure("BuildError", "no\nregisters", timestamp=100.0 + k)
               for k, c in enumerate(costs)]
    return inputs, results


def test_write_then_read(tmp_path):
    path = tmp_path / "sub" / "tune.jsonl"
    writer = RecordWriter(path, template="conv2d", seed=3, tuner="RandomTuner")
    writer.write(*batch("w1", [2e-3, None, 1e-3]))
    writer.write(*batch("w1", [5e-4], start=3))
    records, problems = load_records(path)
    assert problems == [] and len(records) == 4
    first = records[0]
    assert first["workload"] == "w1" and first["template"] == "conv2d"
    assert first["config"] == {"tile": [-1, 1]} and first["index"] == 0
    assert first["costs"] == [2e-3] and first["error"] is None and first["seed"] == 3
    assert set(first["versions"]) == {"tiletune", "llvmlite", "xgboost"}
    assert records[1]["error"] == "BuildError" and records[1]["message"] == "no registers"
    assert record_result(records[1]) == MeasureResult.failure("BuildError", "no registers",
                                                              timestamp=101.0)
    assert path.read_text().count("\n") == 4


def test_a_corrupt_line_is_reported_and_skipped(tmp_path):
    path = tmp_path / "r.jsonl"
    RecordWriter(path).write(*batch("w", [1e-3, 2e-3]))
    lines = path.read_text().splitlines()
    lines.insert(1, '{"workload": "w", "config": {}, "costs": [1.0')  # cut mid-record
    lines.insert(2, '{"workload": "w", "config": {}, "costs": [], "error": "Meltdown"}')
    path.write_text("\n".join(lines) + "\n")
    records, problems = load_records(path)
    assert [r["costs"] for r in records] == [[1e-3], [2e-3]]
    assert [(p.line, p.reason.split(":")[0]) for p in problems] == [
        (2, "corrupt line"), (3, "unknown error class 'Meltdown'")]
    assert str(problems[0]).startswith(f"{path}:2: corrupt line")


def test_appending_after_a_truncated_line_keeps_it_isolated(tmp_path):
    path = tmp_path / "r.jsonl"
    writer = RecordWriter(path)
    writer.write(*batch("w", [1e-3, 2e-3]))
    text = path.read_text()
    path.write_text(text + text.splitlines()[0][:40])  # an interrupted third write
    records, problems = load_records(path)
    assert len(records) == 2 and [p.line for p in problems] == [3]
    assert "truncated" in problems[0].reason
    writer.write(*batch("w", [3e-3, 4e-3], start=2))  # a resumed run appends
    records, problems = load_records(path)
    assert [r["costs"][0] for r in records] == [1e-3, 2e-3, 3e-3, 4e-3]
    assert [p.line for p in problems] == [3] and "corrupt" in problems[0].reason
    assert path.read_text().endswith("\n")


def test_last_line_without_newline_is_kept_but_reported(tmp_path):
    path = tmp_path / "r.jsonl"
    RecordWriter(path).write(*batch("w", [1e-3]))
    path.write_text(path.read_text().rstrip("\n"))
    records, problems = load_records(path)
    assert len(records) == 1 and "no newline" in problems[0].reason


def test_missing_file_is_a_records_error(tmp_path):
    with pytest.raises(RecordsError, match="cannot read"):
        load_records(tmp_path / "nope.jsonl")


def test_records_are_appended_never_rewritten(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("# not json, but someone's data\n")
    RecordWriter(path).write(*batch("w", [1e-3]))
    assert path.read_text().startswith("# not json, but someone's data\n")
    records, problems = load_records(path)
    assert len(records) == 1 and problems[0].line == 1


def test_best_records(tmp_path):
    path = tmp_path / "r.jsonl"
    writer = RecordWriter(path)
    writer.write(*batch("a", [3e-3, 1e-3, None]))
    writer.write(*batch("b", [None, 7e-3]))
    writer.write(*batch("c", [None]))
    best = best_records(load_records(path)[0])
    assert set(best) == {"a", "b"}
    assert best["a"]["costs"] == [1e-3] and best["b"]["costs"] == [7e-3]


def test_merge_dedupes_and_appends(tmp_path):
    a, b, out = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "out.jsonl"
    RecordWriter(a).write(*batch("w", [1e-3, 2e-3]))
    RecordWriter(b).write(*batch("v", [5e-3]))
    with open(b, "a") as f:
        f.write(a.read_text().splitlines()[0] + "\n" + "garbage\n")
    RecordWriter(out).write(*batch("old", [9e-3]))
    n, problems = merge([a, b, out], out)
    assert n == 3 and [p.line for p in problems] == [3]
    records, _ = load_records(out)
    assert [r["workload"] for r in records] == ["old", "w", "w", "v"]
    assert merge([a, b], out)[0] == 0  # idempotent


def test_resume_from_records_never_remeasures(tmp_path, landscape):
    path = tmp_path / "tune.jsonl"
    first = RandomTuner(landscape.space, seed=0)
    first.tune(landscape.measure, 40, flop=landscape.flop, batch_size=8,
               callbacks=[RecordWriter(path).callback("conv-w")])
    records, problems = load_records(path)
    assert problems == [] and len(records) == 40
    assert records[0]["tuner"] == "RandomTuner" and records[0]["seed"] == 0
    done = measured_configs(records, "conv-w", landscape.space)
    assert set(done) == first.visited
    assert measured_configs(records, "other-workload", landscape.space) == {}

    landscape.calls.clear()
    second = RandomTuner(landscape.space, seed=1)
    summary = second.tune(landscape.measure, 100, flop=landscape.flop, batch_size=8,
                          resume_from=done)
    measured = [i for b in landscape.calls for i in b]
    assert len(measured) == 60 and not set(measured) & set(done)
    assert summary.n_measured == 100
    assert second.best_cost <= first.best_cost


def test_record_lines_are_plain_json(tmp_path):
    path = tmp_path / "r.jsonl"
    RecordWriter(path, tuner="XGBTuner").write(*batch("w", [1e-3]))
    line = json.loads(path.read_text())
    assert list(line)[:4] == ["workload", "template", "config", "index"]
    assert line["tuner"] == "XGBTuner"
