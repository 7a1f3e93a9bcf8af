"""Module.close() from one thread while another is inside the kernel."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import tiletune as tt
from tiletune.errors import TileTuneError


def _slow_module(n: int = 256, reps: int = 64) -> tuple[tt.runtime.Module, list[np.ndarray]]:
    A = tt.placeholder((n, n), "float32", name="A")
    B = tt.placeholder((n, n), "float32", name="B")
    k = tt.reduce_axis(n * reps, name="k")
    C = tt.compute((n, n), lambda i, j: tt.sum(A[i, k % n] * B[k % n, j], axis=k), name="C")
    mod = tt.build(tt.create_schedule(C), [A, B, C])
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((n, n), dtype="float32"),
              rng.standard_normal((n, n), dtype="float32"), np.zeros((n, n), "float32")]
    return mod, arrays


def test_close_waits_for_a_call_running_in_another_thread():
    """Fault: close() freed the machine code under a running call (a segfault). Now it
    waits for the call to return; calls made afterwards raise."""
    mod, (a, b, c) = _slow_module()
    started, errors = threading.Event(), []

    def call() -> None:
        started.set()
        try:
            mod(a, b, c)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=call)
    t.start()
    started.wait()
    time.sleep(0.05)  # inside the kernel (it runs for a good fraction of a second)
    assert mod._active == 1  # the other thread is inside the kernel
    mod.close()
    assert not t.is_alive()  # close returned only after the call did
    t.join()
    assert errors == []
    np.testing.assert_allclose(c[:2, :2], 64 * (a @ b)[:2, :2], rtol=1e-3, atol=1e-2)
    with pytest.raises(TileTuneError, match="closed"):
        mod(a, b, c)
    with pytest.raises(TileTuneError, match="closed"):
        mod.time_evaluator(1, 1)(a, b, c)
