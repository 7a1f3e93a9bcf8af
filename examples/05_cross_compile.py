"""Build a kernel for another x86-64 CPU (``-mcpu``/``-mattr``) and export it.

Code for a CPU whose features this machine has also runs here; code it cannot execute is
exported only (calling it raises a clear error instead of crashing).

    python examples/05_cross_compile.py
"""
import numpy as np

import tiletune as tt


def main() -> None:
    n = 64
    A = tt.placeholder((n, n), "float32", name="A")
    B = tt.placeholder((n, n), "float32", name="B")
    C = tt.compute((n, n), lambda i, j: A[i, j] * 2.0 + B[i, j], name="C")
    s = tt.create_schedule(C)
    _, j = s[C].axis
    _, ji = s[C].split(j, factor=8)
    s[C].vectorize(ji)
    a, b = np.ones((n, n), "float32"), np.arange(n * n, dtype="float32").reshape(n, n)

    for target in ("llvm -mcpu=x86-64-v3", "llvm -mcpu=skylake-avx512"):
        f = tt.build(s, [A, B, C], target=target, name="axpy")
        path = f"axpy-{target.split('=')[-1]}.so"
        f.export_library(path)
        c = np.empty((n, n), "float32")
        try:
            f(a, b, c)
            np.testing.assert_allclose(c, 2 * a + b)
            ran = "ran here, matches NumPy"
        except tt.BuildError as e:
            ran = f"not runnable here: {str(e).split(':')[0]}"
        print(f"{target}: features {f.info.extra['features']}; wrote {path}; {ran}")


if __name__ == "__main__":
    main()
