"""Tutorial step 1-3: a tensor expression, a schedule, the loop nest, a compiled kernel.

    python examples/01_dsl_schedule_build.py
"""
import numpy as np

import tiletune as tt


def main(n: int = 256) -> None:
    # 1. what to compute: C = A @ B
    A = tt.placeholder((n, n), "float32", name="A")
    B = tt.placeholder((n, n), "float32", name="B")
    k = tt.reduce_axis(n, name="k")
    C = tt.compute((n, n), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=k), name="C")

    # 2. how to loop: 32x32 tiles, k split by 4, the innermost j vectorized
    s = tt.create_schedule(C)
    i, j = s[C].axis
    io, jo, ii, ji = s[C].tile(i, j, 32, 32)
    ko, ki = s[C].split(k, factor=4)
    s[C].reorder(io, jo, ko, ii, ki, ji)
    s[C].vectorize(ji)
    s[C].unroll(ki)
    s[C].parallel(io)
    print(tt.lower(s, [A, B, C]))

    # 3. compile for this CPU and check against NumPy
    f = tt.build(s, [A, B, C], target="llvm", name="matmul")
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    c = np.empty((n, n), "float32")
    f(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4)
    t = f.time_evaluator(number=5, repeat=3)(a, b, c)
    print(f"matmul {n}^3: {2 * n**3 / t.median / 1e9:.1f} GFLOP/s "
          f"({f.num_threads} threads), matches NumPy")


if __name__ == "__main__":
    main()
