"""The fused tuning templates build kernels that match their NumPy reference."""
from __future__ import annotations

import pytest

import tiletune as tt
from tiletune.schedules.epilogue import Epilogue
from tiletune.tuner.templates.task import Task

CASES = [
    ("conv2d_nchwc_fused", (1, 16, 8, 8, 16, 3, 3, 1, 1, "NCHWc", 8, 8, "bias_residual_relu",
                            "float32")),
    ("conv2d_nchwc_fused", (1, 3, 9, 9, 16, 3, 3, 2, 1, "NCHW", 3, 8, "bias_clip0to6",
                            "float32")),
    ("conv2d_auto_fused", (1, 16, 8, 8, 16, 3, 3, 1, 1, "NCHWc", 8, 8, "bias_residual_relu",
                           "float32")),
    ("conv2d_auto_fused", (1, 8, 7, 7, 16, 1, 1, 2, 0, "NCHW", 8, 8, "bias_relu", "float32")),
    ("depthwise_nchwc", (1, 16, 7, 7, 3, 3, 8, 2, 2, 1, 0, 1, 1, 1, 1, "bias_relu",
                         "float32")),
    ("dense_fused", (2, 24, 16, "bias_relu", "float32")),
]


@pytest.mark.parametrize("name,args", CASES)
def test_fused_template_default_and_other_config(name, args):
    task = Task(name, args)
    inputs = task.make_inputs(0)
    expected = task.reference(inputs)
    configs = [task.default_config()]
    configs.append(task.space.get(len(task.space) - 1).to_json())
    for cfg in configs:
        s, tensors = task.instantiate(cfg)
        f = tt.build(s, tensors, name="k")
        arrays, out_pos = task.prepare(cfg, inputs, tensors)
        f(*arrays)
        assert task.check([arrays[i] for i in out_pos], expected) is None


def test_epilogue_key_round_trip():
    for steps in [(), (("bias",),), (("bias",), ("residual",), ("relu",)),
                  (("residual",), ("clip", 0.0, 6.0))]:
        e = Epilogue(steps)
        assert Epilogue.from_key(e.key()) == e
    with pytest.raises(tt.ScheduleError):
        Epilogue.from_key("bias_clipXto6")
