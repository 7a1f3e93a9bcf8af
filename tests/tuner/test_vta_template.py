"""The vta_conv2d / vta_dense templates: spaces, validity = what the compiler accepts, tuning."""
import numpy as np
import pytest

import tiletune as tt
from tiletune.errors import ScheduleError, VTAError
from tiletune.schedules import vta_conv2d as vc
from tiletune.schedules import vta_dense as vd
from tiletune.tuner import RandomTuner
from tiletune.tuner.measure.local import MeasureOption
from tiletune.tuner.targets import vta as tuning
from tiletune.tuner.templates.task import Task

RESNET18 = [(64, 56, 56, 64, 3, 3, 1, 1), (64, 56, 56, 64, 1, 1, 1, 0),
            (64, 56, 56, 128, 3, 3, 2, 1), (64, 56, 56, 128, 1, 1, 2, 0),
            (128, 28, 28, 128, 3, 3, 1, 1), (128, 28, 28, 256, 3, 3, 2, 1),
            (128, 28, 28, 256, 1, 1, 2, 0), (256, 14, 14, 256, 3, 3, 1, 1),
            (256, 14, 14, 512, 3, 3, 2, 1), (256, 14, 14, 512, 1, 1, 2, 0),
            (512, 7, 7, 512, 3, 3, 1, 1)]


def test_workload():
    w = vc.VTAConv2dWorkload(1, 64, 56, 56, 128, 3, 3, 2, 1)
    assert (w.OH, w.OW) == (28, 28) and w.macs == 28 * 28 * 128 * 64 * 9
    assert w.flop == 2 * w.macs and w.ideal_cycles() == w.macs / 256
    assert w.key() == "vta_conv2d_1x64x56x56_k128_3x3_s2_p1_shr8_clip0_127"
    with pytest.raises(ScheduleError, match=r"C=3 is not a multiple of the VTA block 16"):
        vc.space(vc.VTAConv2dWorkload(1, 3, 224, 224, 64, 7, 7, 2, 3))
    assert "multiple of the VTA block" in tuning.unsupported_reason(1, 3, 224, 224, 64, 7, 7,
                                                                    2, 3)
    assert tuning.unsupported_reason(1, 64, 56, 56, 64, 3, 3, 1, 1) is None


@pytest.mark.parametrize("layer", RESNET18)
def test_default_config_is_valid_for_every_resnet_layer(layer):
    w = vc.VTAConv2dWorkload(1, *layer)
    cfg = vc.default_config(w)
    assert set(cfg) == set(vc.KNOBS) and vc.is_valid(w, cfg)
    assert cfg["oc_nthread"] * cfg["h_nthread"] == 2


def test_validity_matches_the_compiler():
    """is_valid / usage predict exactly what the compiler's SRAM plan needs."""
    w = vc.VTAConv2dWorkload(1, 64, 28, 28, 64, 3, 3, 1, 1)
    space = vc.space(w)
    rng = np.random.default_rng(0)
    keys = list(space)
    checked = {True: 0, False: 0}
    while min(checked.values()) < 6:
        cfg = {k: space[k][rng.integers(len(space[k]))] for k in keys}
        if (w.K // 16 // cfg["tile_co"]) % cfg["oc_nthread"] or \
                (w.OH // cfg["tile_h"]) % cfg["h_nthread"] or \
                cfg["oc_nthread"] * cfg["h_nthread"] > 2 or \
                cfg["tile_h"] * cfg["tile_w"] < 28 or checked[vc.is_valid(w, cfg)] >= 6:
            continue
        valid = vc.is_valid(w, cfg)
        s, args = vc.schedule(w, cfg, validate=False)
        if valid:
            f = tt.build(s, args, target="vta")
            use = vc.usage(w, cfg)
            assert f.sram_usage == {"vta.inp": use["inp"], "vta.wgt": use["wgt"],
                                    "vta.acc": use["acc"]}
        else:
            with pytest.raises(VTAError, match="buffer overflow"):
                tt.build(s, args, target="vta")
        checked[valid] += 1
    with pytest.raises(ScheduleError, match="INP overflow"):
        vc.schedule(w, dict(tile_b=1, tile_h=28, tile_w=28, tile_ci=4, tile_co=1,
                            oc_nthread=2, h_nthread=1))


def test_template_knobs_and_constraint():
    task = Task("vta_conv2d", (1, 64, 14, 14, 64, 3, 3, 1, 1, "int8"), target="vta")
    assert task.workload_key == 'vta_conv2d(1,64,14,14,64,3,3,1,1,"int8")@vta'
    assert list(task.space.knobs) == list(vc.KNOBS)
    assert len(task.space) == 1 * 4 * 4 * 3 * 3 * 2 * 2
    w = vc.VTAConv2dWorkload(1, 64, 14, 14, 64, 3, 3, 1, 1)
    for i in range(len(task.space)):
        assert task.space.is_valid(i) == vc.is_valid(w, task.space.get(i).to_json())
    assert task.flop == w.flop
    default = task.default_config()
    assert default.to_json() == vc.default_config(w)
    s, tensors = task.instantiate(default)
    assert [t.name for t in tensors] == ["data", "kernel", "out"]


def test_measurer_reports_simulated_seconds_and_checks_outputs():
    task = Task("vta_conv2d", (1, 32, 14, 14, 32, 3, 3, 2, 1, "int8"), target="vta")
    valid = [i for i in range(len(task.space)) if task.space.is_valid(i)]
    invalid = next(i for i in range(len(task.space)) if not task.space.is_valid(i))
    with tuning.VTAMeasurer(task, MeasureOption(repeat=2, jobs=1), check_first=3) as m:
        results = m(valid[-3:] + [invalid])
        assert m.n_checked == 3
    for i, r in zip(valid[-3:], results):
        assert r.ok, r.message
        cfg = task.space.get(i).to_json()
        f = vc.build(vc.VTAConv2dWorkload(1, 32, 14, 14, 32, 3, 3, 2, 1), cfg)
        assert r.costs == (f.cycles / 100e6,) * 2
    assert results[-1].error == "InstantiationError" and "constraint" in results[-1].message
    assert m.best_cost == min(r.mean for r in results[:3])


def test_random_tuner_drives_the_template():
    task = Task("vta_conv2d", (1, 32, 14, 14, 32, 1, 1, 1, 0, "int8"), target="vta")
    tuner = RandomTuner(task.space, seed=1)
    with tuning.VTAMeasurer(task, MeasureOption(jobs=1), check_every=4) as m:
        summary = tuner.tune(m, 8, flop=task.flop, batch_size=4)
    assert summary.n_measured == 8 and summary.n_failed == 0
    assert summary.best_cost == min(r.mean for r in tuner.results)


def test_dense_template():
    task = Task("vta_dense", (16, 64, 64), target="vta")
    assert list(task.space.knobs) == ["tile_m", "tile_n", "tile_k", "nthread"]
    with tuning.VTAMeasurer(task, MeasureOption(jobs=1), check_first=2) as m:
        results = m([task.default_config().index, 0])
    assert all(r.ok for r in results) and m.n_checked == 2
    w = vd.VTADenseWorkload(16, 64, 64)
    assert vd.invalid_reason(w, dict(tile_m=16, tile_n=2, tile_k=4, nthread=2)) is None
    big = vd.VTADenseWorkload(256, 1024, 512)
    assert "ACC overflow" in vd.invalid_reason(big, dict(tile_m=256, tile_n=16, tile_k=1,
                                                         nthread=1))
