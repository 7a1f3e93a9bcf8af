"""Tutorial step 2, further: the GEMM blocking of TVM's "How to optimize GEMM on CPU".

A local accumulator tile (``cache_write``) is computed at the block loop (``compute_at``),
so each 32x32 block of C is summed in registers and written once.

    python examples/02_cache_write_compute_at.py
"""
import numpy as np

import tiletune as tt


def main(m: int = 128, bn: int = 32, kfactor: int = 4) -> None:
    A = tt.placeholder((m, m), "float32", name="A")
    B = tt.placeholder((m, m), "float32", name="B")
    k = tt.reduce_axis(m, name="k")
    C = tt.compute((m, m), lambda x, y: tt.sum(A[x, k] * B[k, y], axis=k), name="C")

    s = tt.create_schedule(C)
    CC = s.cache_write(C, "local")
    xo, yo, xi, yi = s[C].tile(*s[C].axis, bn, bn)
    s[CC].compute_at(s[C], yo)
    xc, yc = s[CC].axis
    (kr,) = s[CC].reduce_axis
    ko, ki = s[CC].split(kr, factor=kfactor)
    s[CC].reorder(ko, xc, ki, yc)
    s[CC].unroll(ki)
    s[CC].vectorize(yc)
    s[C].parallel(xo)
    print(tt.lower(s, [A, B, C]))

    f = tt.build(s, [A, B, C], name="gemm_blocked")
    rng = np.random.default_rng(0)
    a, b = rng.random((m, m), dtype=np.float32), rng.random((m, m), dtype=np.float32)
    c = np.empty((m, m), "float32")
    f(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4)
    print("blocked GEMM matches NumPy")


if __name__ == "__main__":
    main()
