"""The report's numbers: curves, default vs best, failures, peak fraction, VTA utilisation."""
import json
import math

import pytest

from tiletune.report.data import collect, curves_of
from tiletune.report.profile import ProfileError, load_profile


def test_golden_report_data(small_records, utc, golden, monkeypatch):
    monkeypatch.chdir(small_records.parent)  # relative paths in the golden file
    data = collect([small_records.name], peak=90.0)
    golden("report_small.json", data.dumps())


def test_curves_are_best_so_far_in_measuring_order():
    recs = [{"workload": "w", "config": {}, "costs": c, "error": e, "timestamp": t,
             "all_cost": 0.25, "tuner": "random", "seed": 3}
            for c, e, t in (([2.0], None, 11.0), ([], "BuildError", 10.5), ([1.0], None, 12.0),
                            ([4.0], None, 13.0))]
    (c,) = curves_of(recs, flop=4e9)
    assert c.label == "random (seed 3)"
    assert c.trials == [1, 2, 3, 4]
    assert c.errors == ["BuildError", None, None, None]  # sorted by timestamp
    assert c.gflops == [None, 2.0, 4.0, 1.0]
    assert c.best == [0.0, 2.0, 4.0, 4.0]
    assert c.elapsed == pytest.approx([0.25, 0.75, 1.75, 2.75])


def test_default_and_confirm_records_are_not_trials(small_records):
    data = collect([small_records], peak=None, utilization=None)
    dense = data.workloads[0]
    assert {c.tuner for c in dense.curves} == {"random", "xgb"}
    assert sum(len(c.trials) for c in dense.curves) == 9
    assert dense.records == 12
    assert dense.failures == {"BuildError": 1, "RunTimeout": 1}
    # default: the faster of its default and confirm measurements; best: the confirm 11 us
    assert dense.default_gflops == pytest.approx(524288 / 1.9e-5 / 1e9)
    assert dense.best_gflops == pytest.approx(524288 / 1.1e-5 / 1e9)
    assert dense.peak_fraction is None
    assert "dense.schedule(w, config)" in dense.code
    assert data.problems and "small.jsonl:16" in data.problems[0]


def test_vta_workload_reports_gemm_utilisation(small_records):
    vta = collect([small_records], peak=90.0).workloads[1]
    assert vta.target == "vta" and vta.peak_fraction is None
    u = vta.gemm_utilization
    assert set(u) == {"default", "best"} and all(0 < x <= 1 for x in u.values())


def test_profile_format(tmp_path):
    p = tmp_path / "prof.json"
    p.write_text(json.dumps({"model": "net", "operators": [
        {"name": "conv_0", "op": "conv2d", "time_ms": 3.0},
        {"name": "conv_1", "op": "conv2d", "time_ms": 1.0},
        {"name": "dense_0", "op": "dense", "time_ms": 1.0}]}))
    prof = load_profile(p)
    assert prof.total_ms == 5.0
    assert prof.shares()[0] == ("conv_0", 0.6)
    assert prof.by_kind() == [("conv2d", 0.8), ("dense", 0.2)]
    p.write_text(json.dumps({"operators": [{"name": "x", "time_ms": -1}]}))
    with pytest.raises(ProfileError, match=r"operators\[0\] \(x\) needs a finite 'time_ms'"):
        load_profile(p)
    p.write_text("[1, 2]")
    with pytest.raises(ProfileError, match="'operators' list"):
        load_profile(p)
    assert math.isfinite(prof.total_ms)
