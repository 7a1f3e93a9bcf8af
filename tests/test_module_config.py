"""Library kernels remember the config they were built with, also across export/load."""
import tiletune as tt
from tiletune.schedules import dense, dispatch


class _Tuned:
    def __init__(self, key, cfg):
        self.key, self.cfg, self.missed = key, cfg, []

    def query(self, key, workload=None):
        return self.cfg if key == self.key else None

    def miss(self, key, workload=None):
        self.missed.append(key)


def test_config_is_the_one_used_and_survives_export(tmp_path):
    w = dense.DenseWorkload(32, 32, 32)
    assert dense.build(w).config == dense.default_config(w)
    other = dict(dense.default_config(w), unroll_k=1 if dense.default_config(w)["unroll_k"]
                 != 1 else 2)
    ctx = _Tuned(w.key(), other)
    with dispatch.push(ctx):
        f = dense.build(w)
    assert f.config == other and not ctx.missed
    f.export_library(tmp_path / "k.so")
    assert tt.runtime.load_module(tmp_path / "k.so").config == other


def test_hand_built_kernels_have_no_config():
    A = tt.placeholder((4,), "float32", name="A")
    B = tt.compute((4,), lambda i: A[i] + 1.0, name="B")
    assert tt.build(tt.create_schedule(B), [A, B]).config is None
