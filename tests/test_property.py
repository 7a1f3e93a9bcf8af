"""Random sequences of legal primitives give the same result as the unscheduled op."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tiletune as tt
from tests import ops

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def apply_random(s, stage, data, allow_vector=True):
    """Apply a random legal sequence of split/reorder/fuse/annotations to a stage."""
    for _ in range(data.draw(st.integers(0, 3), label="n_splits")):
        leaves = list(stage.leaf_iter_vars)
        iv = data.draw(st.sampled_from(leaves), label="split axis")
        if iv.extent < 2:
            continue
        if data.draw(st.booleans(), label="factor?"):
            stage.split(iv, factor=data.draw(st.integers(1, iv.extent), label="factor"))
        else:
            stage.split(iv, nparts=data.draw(st.integers(1, iv.extent), label="nparts"))
    leaves = list(stage.leaf_iter_vars)
    perm = data.draw(st.permutations(leaves), label="order")
    stage.reorder(*perm)
    leaves = list(stage.leaf_iter_vars)
    if len(leaves) >= 2 and data.draw(st.booleans(), label="fuse?"):
        p = data.draw(st.integers(0, len(leaves) - 2), label="fuse at")
        if leaves[p].kind == leaves[p + 1].kind:
            stage.fuse(leaves[p], leaves[p + 1])
    leaves = list(stage.leaf_iter_vars)
    inner = leaves[-1]
    if allow_vector and inner.kind == "data" and inner.extent <= 64 and data.draw(st.booleans()):
        stage.vectorize(inner)
    for iv in leaves[:-1]:
        if iv.extent <= 8 and data.draw(st.booleans(), label="unroll?"):
            stage.unroll(iv)
    outer = stage.leaf_iter_vars[0]
    if outer.kind == "data" and outer not in stage.annotations and data.draw(st.booleans()):
        stage.parallel(outer)


@SETTINGS
@given(data=st.data())
def test_random_matmul_schedules(data):
    M, N, K = data.draw(st.sampled_from([(9, 13, 7), (16, 32, 8), (5, 40, 3)]), label="shape")
    A, B, C = ops.matmul(M, N, K)
    s = tt.create_schedule(C)
    if data.draw(st.booleans(), label="cache_write?"):
        CL = s.cache_write(C, "local")
        apply_random(s, s[C], data)
        leaves = s[C].leaf_iter_vars
        at = data.draw(st.sampled_from(leaves), label="attach")
        if s[C].annotations.get(at) not in ("vectorized",):
            s[CL].compute_at(s[C], at)
        apply_random(s, s[CL], data)
    else:
        apply_random(s, s[C], data)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((M, K)).astype("float32")
    b = rng.standard_normal((K, N)).astype("float32")
    c = np.empty((M, N), "float32")
    tt.build(s, [A, B, C], opt_level=1)(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(data=st.data())
def test_random_conv_schedules(data):
    cfg = data.draw(st.sampled_from([(1, 3, 7, 9, 4, 3, 3, 1, 1), (1, 2, 8, 8, 5, 3, 3, 2, 1),
                                     (1, 4, 6, 6, 3, 1, 1, 1, 0)]), label="conv")
    N, C, H, W, K, R, S, stride, pad = cfg
    data_t, weight, P, O = ops.conv2d_nchw(*cfg)
    s = tt.create_schedule(O)
    how = data.draw(st.sampled_from(["inline", "root", "at"]), label="pad")
    apply_random(s, s[O], data)
    if how == "inline":
        s[P].compute_inline()
    elif how == "at":
        leaves = [iv for iv in s[O].leaf_iter_vars
                  if s[O].annotations.get(iv) != "vectorized"]
        s[P].compute_at(s[O], data.draw(st.sampled_from(leaves), label="pad at"))
    else:
        apply_random(s, s[P], data)
    rng = np.random.default_rng(2)
    a = rng.standard_normal((N, C, H, W)).astype("float32")
    w = rng.standard_normal((K, C, R, S)).astype("float32")
    out = np.empty(O.shape, "float32")
    tt.build(s, [data_t, weight, O], opt_level=1)(a, w, out)
    np.testing.assert_allclose(out, ops.conv2d_ref(a, w, stride, pad), rtol=1e-4, atol=1e-4)
