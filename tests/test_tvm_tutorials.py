"""TVM's public TE tutorials, schedules ported with only the module name changed.

Each block below is a tutorial's schedule as written, with ``te.`` / ``tvm.`` / ``tvm.tir.``
replaced by ``tt.``; each is checked against NumPy. Lines that cannot run here are kept as
comments saying why (GPU thread binding, symbolic shapes, ``comm_reducer``, timing through
``tvm.nd`` arrays). Sources (apache/tvm, v0.12-v0.19):
gallery/how_to/optimize_operators/opt_gemm.py, opt_conv_cuda.py,
gallery/how_to/work_with_schedules/schedule_primitives.py, reduction.py and
gallery/tutorial/tensor_expr_get_started.py.
"""
import numpy
import numpy as np
import pytest

import tiletune as tt

target = "llvm"


def run(func, *arrays):
    """Call a built kernel on NumPy arrays (TVM: ``tvm.nd.array``; ours take NumPy)."""
    func(*arrays)
    return arrays[-1]


# --------------------------------------------------------------------- How to optimize GEMM on CPU
def gemm_algorithm(M, K, N, packed=False, bn=32):
    dtype = "float32"  # noqa: F841 (the tutorial's default tensor type)
    k = tt.reduce_axis((0, K), "k")
    A = tt.placeholder((M, K), name="A")
    B = tt.placeholder((K, N), name="B")
    if not packed:
        C = tt.compute((M, N), lambda m, n: tt.sum(A[m, k] * B[k, n], axis=k), name="C")
        return A, B, C, None
    packedB = tt.compute(
        (N / bn, K, bn), lambda bigN, k, littleN: B[k, bigN * bn + littleN], name="packedB"
    )
    C = tt.compute(
        (M, N),
        lambda m, n: tt.sum(A[m, k] * packedB[n // bn, k, tt.indexmod(n, bn)], axis=k),
        name="C",
    )
    return A, B, C, packedB


def gemm_schedule(step, A, B, C, packedB, bn=32, kfactor=4):
    if step == "baseline":
        s = tt.create_schedule(C.op)
        return s
    s = tt.create_schedule(C.op)
    if step in ("blocking", "vectorization", "loop_permutation", "array_packing"):
        # Blocking by loop tiling
        mo, no, mi, ni = s[C].tile(C.op.axis[0], C.op.axis[1], bn, bn)
        (kaxis,) = s[C].op.reduce_axis
        ko, ki = s[C].split(kaxis, factor=kfactor)
        if step == "blocking":
            # Hoist reduction domain outside the blocking loop
            s[C].reorder(mo, no, ko, ki, mi, ni)
        elif step == "vectorization":
            s[C].reorder(mo, no, ko, ki, mi, ni)
            # Vectorization
            s[C].vectorize(ni)
        else:
            # re-ordering
            s[C].reorder(mo, no, ko, mi, ki, ni)
            s[C].vectorize(ni)
        if step == "array_packing":
            bigN, _, littleN = s[packedB].op.axis
            s[packedB].vectorize(littleN)
            s[packedB].parallel(bigN)
        return s
    # "write_cache" and "parallel"
    CC = s.cache_write(C, "global")
    mo, no, mi, ni = s[C].tile(C.op.axis[0], C.op.axis[1], bn, bn)
    # Write cache is computed at no
    s[CC].compute_at(s[C], no)
    # New inner axes
    mc, nc = s[CC].op.axis
    (kaxis,) = s[CC].op.reduce_axis
    ko, ki = s[CC].split(kaxis, factor=kfactor)
    s[CC].reorder(ko, mc, ki, nc)
    s[CC].vectorize(nc)
    # unroll kfactor loops
    s[CC].unroll(ki)
    if step == "parallel":
        s[C].parallel(mo)
    bigN, _, littleN = s[packedB].op.axis
    s[packedB].vectorize(littleN)
    s[packedB].parallel(bigN)
    return s


GEMM_STEPS = ["baseline", "blocking", "vectorization", "loop_permutation", "array_packing",
              "write_cache", "parallel"]


@pytest.mark.parametrize("step", GEMM_STEPS)
def test_opt_gemm(step):
    M = K = N = 256  # the tutorial's 1024 for the last two steps below; all steps, faster
    packed = step in GEMM_STEPS[4:]
    A, B, C, packedB = gemm_algorithm(M, K, N, packed)
    s = gemm_schedule(step, A, B, C, packedB)
    assert "for" in str(tt.lower(s, [A, B, C], simple_mode=True))
    func = tt.build(s, [A, B, C], target=target, name="mmult")
    assert func
    a = numpy.random.rand(M, K).astype("float32")
    b = numpy.random.rand(K, N).astype("float32")
    answer = numpy.dot(a, b)
    c = numpy.zeros((M, N), dtype="float32")
    run(func, a, b, c)
    numpy.testing.assert_allclose(c, answer, rtol=1e-4)


@pytest.mark.parametrize("step", ["write_cache", "parallel"])
def test_opt_gemm_expert_schedule_at_1024(step):
    """The tutorial's own size: vectorize(nc) sees 1024 before compute_at, 32 after."""
    M = K = N = 1024
    A, B, C, packedB = gemm_algorithm(M, K, N, packed=True)
    s = gemm_schedule(step, A, B, C, packedB)
    func = tt.build(s, [A, B, C], target=target, name="mmult")
    a = numpy.random.rand(M, K).astype("float32")
    b = numpy.random.rand(K, N).astype("float32")
    c = numpy.zeros((M, N), dtype="float32")
    run(func, a, b, c)
    numpy.testing.assert_allclose(c, numpy.dot(a, b), rtol=1e-4)


# --------------------------------------------------------------------- Schedule Primitives in TVM
# ``n = te.var("n"); m = te.var("m")``: symbolic shapes are not supported (every extent is a
# constant here), so the tutorial's variables get concrete odd values.
m, n = 37, 23


def check_1d(s, A, B, ref):
    f = tt.build(s, [A, B], target=target)
    a = np.random.rand(*A.shape).astype("float32")
    b = np.zeros(B.shape, "float32")
    f(a, b)
    np.testing.assert_allclose(b, ref(a), rtol=1e-6)


def test_primitives_create_schedule_from_list_of_ops():
    A = tt.placeholder((m, n), name="A")
    B = tt.placeholder((m, n), name="B")
    C = tt.compute((m, n), lambda i, j: A[i, j] * B[i, j], name="C")
    s = tt.create_schedule([C.op])
    print(tt.lower(s, [A, B, C], simple_mode=True))
    a, b = np.random.rand(m, n).astype("float32"), np.random.rand(m, n).astype("float32")
    c = np.zeros((m, n), "float32")
    tt.build(s, [A, B, C], target=target)(a, b, c)
    np.testing.assert_allclose(c, a * b, rtol=1e-6)


def test_primitives_split_factor_and_nparts():
    A = tt.placeholder((m,), name="A")
    B = tt.compute((m,), lambda i: A[i] * 2, name="B")
    s = tt.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=32)
    print(tt.lower(s, [A, B], simple_mode=True))
    check_1d(s, A, B, lambda a: a * 2)

    A = tt.placeholder((m,), name="A")
    B = tt.compute((m,), lambda i: A[i], name="B")
    s = tt.create_schedule(B.op)
    bx, tx = s[B].split(B.op.axis[0], nparts=32)
    print(tt.lower(s, [A, B], simple_mode=True))
    check_1d(s, A, B, lambda a: a)


@pytest.mark.parametrize("then", ["tile", "fuse", "reorder"])
def test_primitives_tile_fuse_reorder(then):
    A = tt.placeholder((m, n), name="A")
    B = tt.compute((m, n), lambda i, j: A[i, j], name="B")
    s = tt.create_schedule(B.op)
    xo, yo, xi, yi = s[B].tile(B.op.axis[0], B.op.axis[1], x_factor=10, y_factor=5)
    if then == "fuse":
        # then fuse (i.inner, j.inner) into one axis: (i.inner.j.inner.fused)
        fused = s[B].fuse(xi, yi)  # noqa: F841
    elif then == "reorder":
        # then reorder the axes: (i.inner, j.outer, i.outer, j.inner)
        s[B].reorder(xi, yo, xo, yi)
    print(tt.lower(s, [A, B], simple_mode=True))
    check_1d(s, A, B, lambda a: a)


def test_primitives_bind_is_gpu_only():
    A = tt.placeholder((n,), name="A")
    B = tt.compute(A.shape, lambda i: A[i] * 2, name="B")
    s = tt.create_schedule(B.op)
    bx, tx = s[B].split(B.op.axis[0], factor=64)
    # s[B].bind(bx, te.thread_axis("blockIdx.x"))   -- GPU thread binding: no GPU target
    # s[B].bind(tx, te.thread_axis("threadIdx.x"))
    check_1d(s, A, B, lambda a: a * 2)


@pytest.mark.parametrize("how", ["root", "compute_at", "compute_inline", "compute_root"])
def test_primitives_placement(how):
    A = tt.placeholder((m,), name="A")
    B = tt.compute((m,), lambda i: A[i] + 1, name="B")
    C = tt.compute((m,), lambda i: B[i] * 2, name="C")
    s = tt.create_schedule(C.op)
    if how == "compute_at":
        s[B].compute_at(s[C], C.op.axis[0])
    elif how == "compute_inline":
        s[B].compute_inline()
    elif how == "compute_root":
        s[B].compute_at(s[C], C.op.axis[0])
        s[B].compute_root()
    text = str(tt.lower(s, [A, B, C] if how != "compute_inline" else [A, C],
                        simple_mode=True))
    assert ("B computed at loop i of C" in text) == (how == "compute_at")
    args = [A, B, C] if how != "compute_inline" else [A, C]
    f = tt.build(s, args, target=target)
    a = np.random.rand(m).astype("float32")
    outs = [np.zeros(m, "float32") for _ in args[1:]]
    f(a, *outs)
    np.testing.assert_allclose(outs[-1], (a + 1) * 2, rtol=1e-6)


# --------------------------------------------------------------------- Reduction
def test_reduction_split_row_sum():
    n, m = 70, 45  # te.var("n"), te.var("m"): symbolic shapes unsupported
    A = tt.placeholder((n, m), name="A")
    k = tt.reduce_axis((0, m), "k")
    B = tt.compute((n,), lambda i: tt.sum(A[i, k], axis=k), name="B")
    s = tt.create_schedule(B.op)
    print(tt.lower(s, [A, B], simple_mode=True))
    ko, ki = s[B].split(B.op.reduce_axis[0], factor=16)
    xo, xi = s[B].split(B.op.axis[0], factor=32)
    print(tt.lower(s, [A, B], simple_mode=True))
    # s[B].bind(xo, te.thread_axis("blockIdx.x"))  -- GPU thread binding: no GPU target
    # s[B].bind(xi, te.thread_axis("threadIdx.x"))
    check_1d(s, A, B, lambda a: a.sum(axis=1))


@pytest.mark.parametrize("part", ["rfactor", "cross_thread"])
def test_reduction_rfactor(part):
    n, m = 70, 45  # te.var("n"), te.var("m"): symbolic shapes unsupported
    A = tt.placeholder((n, m), name="A")
    k = tt.reduce_axis((0, m), "k")
    B = tt.compute((n,), lambda i: tt.sum(A[i, k], axis=k), name="B")
    s = tt.create_schedule(B.op)
    ko, ki = s[B].split(B.op.reduce_axis[0], factor=16)
    BF = s.rfactor(B, ki)
    print(tt.lower(s, [A, B], simple_mode=True))
    print(s[B].op.body)
    if part == "cross_thread":
        xo, xi = s[B].split(s[B].op.axis[0], factor=32)
        # s[B].bind(xo, te.thread_axis("blockIdx.x")) ... s[B].bind(s[B].op.reduce_axis[0], tx)
        # and s[B].set_store_predicate(tx.var.equal(0)): GPU threads, no GPU target; the loops
        # stay serial and the schedule's compute_at below is kept
        s[BF].compute_at(s[B], s[B].op.reduce_axis[0])
    check_1d(s, A, B, lambda a: a.sum(axis=1))


def test_reduction_convolution_via_2d_reduction():
    n = 19  # te.var("n"): symbolic shapes unsupported
    Input = tt.placeholder((n, n), name="Input")
    Filter = tt.placeholder((3, 3), name="Filter")
    di = tt.reduce_axis((0, 3), name="di")
    dj = tt.reduce_axis((0, 3), name="dj")
    Output = tt.compute(
        (n - 2, n - 2),
        lambda i, j: tt.sum(Input[i + di, j + dj] * Filter[di, dj], axis=[di, dj]),
        name="Output",
    )
    s = tt.create_schedule(Output.op)
    print(tt.lower(s, [Input, Filter, Output], simple_mode=True))
    x = np.random.rand(n, n).astype("float32")
    w = np.random.rand(3, 3).astype("float32")
    out = np.zeros((n - 2, n - 2), "float32")
    tt.build(s, [Input, Filter, Output], target=target)(x, w, out)
    ref = sum(x[a:a + n - 2, b:b + n - 2] * w[a, b] for a in range(3) for b in range(3))
    np.testing.assert_allclose(out, ref, rtol=1e-5)
    # product = te.comm_reducer(lambda x, y: x * y, ...): user-defined reducers are not
    # supported (tt.sum, tt.max and tt.min are).


# ------------------------------------------------------------ Tensor expression: get started
@pytest.mark.parametrize("schedule", ["naive", "parallel", "vector"])
def test_get_started_vector_add(schedule):
    n = 1024  # te.var("n"): symbolic shapes unsupported
    A = tt.placeholder((n,), name="A")
    B = tt.placeholder((n,), name="B")
    C = tt.compute(A.shape, lambda i: A[i] + B[i], name="C")
    s = tt.create_schedule(C.op)
    if schedule == "parallel":
        s[C].parallel(C.op.axis[0])
    elif schedule == "vector":
        factor = 4
        outer, inner = s[C].split(C.op.axis[0], factor=factor)
        s[C].parallel(outer)
        s[C].vectorize(inner)
    print(tt.lower(s, [A, B, C], simple_mode=True))
    fadd = tt.build(s, [A, B, C], target, name="myadd")
    a = np.random.uniform(size=n).astype(A.dtype)
    b = np.random.uniform(size=n).astype(B.dtype)
    c = np.zeros(n, dtype=C.dtype)
    fadd(a, b, c)
    np.testing.assert_allclose(c, a + b)


# --------------------------------------------------------------------- How to optimize convolution
def test_opt_conv_schedule():
    """The GPU convolution tutorial's schedule on the CPU, at a smaller size (the tutorial's
    256 x 256 x 512 x 14 x 14 takes minutes serially); ``bind`` lines are GPU-only."""
    batch = 64
    in_channel = 16
    out_channel = 64
    in_size = 6
    kernel = 3
    pad = 1
    stride = 1

    # Algorithm
    A = tt.placeholder((in_size, in_size, in_channel, batch), name="A")
    W = tt.placeholder((kernel, kernel, in_channel, out_channel), name="W")
    out_size = (in_size - kernel + 2 * pad) // stride + 1
    # Pad input
    Apad = tt.compute(
        (in_size + 2 * pad, in_size + 2 * pad, in_channel, batch),
        lambda yy, xx, cc, nn: tt.if_then_else(
            tt.all(yy >= pad, yy - pad < in_size, xx >= pad, xx - pad < in_size),
            A[yy - pad, xx - pad, cc, nn],
            tt.const(0.0, "float32"),
        ),
        name="Apad",
    )
    # Create reduction variables
    rc = tt.reduce_axis((0, in_channel), name="rc")
    ry = tt.reduce_axis((0, kernel), name="ry")
    rx = tt.reduce_axis((0, kernel), name="rx")
    # Compute the convolution
    B = tt.compute(
        (out_size, out_size, out_channel, batch),
        lambda yy, xx, ff, nn: tt.sum(
            Apad[yy * stride + ry, xx * stride + rx, rc, nn] * W[ry, rx, rc, ff],
            axis=[ry, rx, rc]
        ),
        name="B",
    )

    # Designate the memory hierarchy
    s = tt.create_schedule(B.op)
    s[Apad].compute_inline()  # compute Apad inline
    AA = s.cache_read(Apad, "shared", [B])
    WW = s.cache_read(W, "shared", [B])
    AL = s.cache_read(AA, "local", [B])
    WL = s.cache_read(WW, "local", [B])
    BL = s.cache_write(B, "local")

    # tile consts
    tile = 8
    num_thread = 8
    block_factor = tile * num_thread
    step = 8
    vthread = 2

    # block_x = te.thread_axis("blockIdx.x") ... thread_yz = te.thread_axis(..., "vthread"):
    # GPU thread axes; the loops they would bind stay serial loops here.

    # Split the workloads
    hi, wi, fi, ni = s[B].op.axis
    bz = s[B].fuse(hi, wi)
    by, fi = s[B].split(fi, factor=block_factor)
    bx, ni = s[B].split(ni, factor=block_factor)

    tyz, fi = s[B].split(fi, nparts=vthread)  # virtual thread split
    txz, ni = s[B].split(ni, nparts=vthread)  # virtual thread split
    ty, fi = s[B].split(fi, nparts=num_thread)
    tx, ni = s[B].split(ni, nparts=num_thread)
    s[B].reorder(bz, by, bx, tyz, txz, ty, tx, fi, ni)

    # Schedule BL local write
    s[BL].compute_at(s[B], tx)
    yi, xi, fi, ni = s[BL].op.axis
    ry, rx, rc = s[BL].op.reduce_axis
    rco, rci = s[BL].split(rc, factor=step)
    s[BL].reorder(rco, ry, rx, rci, fi, ni)

    # Attach computation to iteration variables
    s[AA].compute_at(s[BL], rx)
    s[WW].compute_at(s[BL], rx)
    s[AL].compute_at(s[BL], rci)
    s[WL].compute_at(s[BL], rci)

    # Schedule for A's shared memory load
    yi, xi, ci, ni = s[AA].op.axis
    ty, ci = s[AA].split(ci, nparts=num_thread)
    tx, ni = s[AA].split(ni, nparts=num_thread)
    _, ni = s[AA].split(ni, factor=4)
    s[AA].reorder(ty, tx, yi, xi, ci, ni)
    s[AA].vectorize(ni)  # vectorize memory load

    # Schedule for W's shared memory load
    yi, xi, ci, fi = s[WW].op.axis
    ty, ci = s[WW].split(ci, nparts=num_thread)
    tx, fi = s[WW].split(fi, nparts=num_thread)
    _, fi = s[WW].split(fi, factor=4)
    s[WW].reorder(ty, tx, yi, xi, ci, fi)
    s[WW].vectorize(fi)  # vectorize memory load

    func = tt.build(s, [A, W, B], target)  # the tutorial: "cuda"
    a_np = np.random.uniform(size=(in_size, in_size, in_channel, batch)).astype(A.dtype)
    w_np = np.random.uniform(size=(kernel, kernel, in_channel, out_channel)).astype(W.dtype)
    b = np.zeros((out_size, out_size, out_channel, batch), dtype=B.dtype)
    func(a_np, w_np, b)
    padded = np.pad(a_np, ((pad, pad), (pad, pad), (0, 0), (0, 0)))
    ref = np.zeros_like(b)
    for y in range(kernel):
        for x in range(kernel):
            window = padded[y:y + out_size, x:x + out_size]  # (oy, ox, c, n)
            ref += np.einsum("abcn,cf->abfn", window, w_np[y, x])
    np.testing.assert_allclose(b, ref, rtol=1e-4)
