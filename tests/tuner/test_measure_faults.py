"""Faults injected into the measurement harness: nothing lost, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tiletune.tuner import LocalMeasurer, MeasureOption, Task
from tiletune.tuner.measure import local

OPT = dict(number=1, repeat=1, cutoff=None)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:  # a zombie not reaped yet is gone too
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


def _wait_gone(pids: list[int], seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if not _gone(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def test_worker_killed_between_batches_is_respawned_and_its_job_requeued():
    """Fault: a worker dies while idle (the OOM killer, a user's kill). Before, the next
    batch's send raised BrokenPipeError, which ended `tiletune tune` with exit 0 and no
    summary. Now: respawned, the candidate re-queued, no Crash blamed on it."""
    task = Task("dense", (16, 16, 16))
    lock = _CountingLock()  # the per-host timing lock a Dask worker passes
    with LocalMeasurer(task, MeasureOption(jobs=1, **OPT), timing_lock=lock) as measure:
        first = measure(task.space.sample(2, rng=0))
        assert all(r.ok for r in first)
        for w in measure._workers:  # the idle worker dies between batches
            os.kill(w.proc.pid, signal.SIGKILL)
            w.proc.join(5)
        again = measure(task.space.sample(3, rng=1))
        assert all(r.ok for r in again), [r.describe() for r in again]
        assert measure.n_respawns == 1
    assert lock.acquired == lock.released == 5 and not lock.held  # held for each timing


class _CountingLock:
    def __init__(self) -> None:
        self.acquired = self.released = 0
        self.held = False

    def acquire(self) -> None:
        assert not self.held
        self.acquired, self.held = self.acquired + 1, True

    def release(self) -> None:
        assert self.held
        self.released, self.held = self.released + 1, False


def test_crash_logs_live_in_a_per_run_directory_removed_at_close():
    task = Task("dense", (16, 16, 16))
    measure = LocalMeasurer(task, MeasureOption(jobs=1, **OPT))
    run_dir = measure.run_dir
    assert os.path.isdir(run_dir) and os.path.basename(run_dir).startswith("tiletune-run-")
    assert all(r.ok for r in measure([0]))
    assert os.listdir(run_dir) == []  # each log is unlinked once its worker holds it open
    measure.close()
    assert not os.path.exists(run_dir)


_ORPHAN_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from tiletune.tuner import LocalMeasurer, MeasureOption, Task
    if __name__ == "__main__":
        task = Task("dense", (16, 16, 16))
        m = LocalMeasurer(task, MeasureOption(jobs=2, number=1, repeat=1))
        m([0])
        pids = [w.proc.pid for w in m._workers]
        os.kill(pids[0], signal.SIGSTOP)  # as when builds are paused for a timing
        print(m.run_dir, *pids, flush=True)
        time.sleep(600)
""")


def test_workers_die_with_a_killed_parent_even_when_stopped(tmp_path):
    """Fault: the tuner is SIGKILLed while a worker's build is paused (SIGSTOP). Before,
    the workers stayed stopped forever. Now the kernel kills them (PR_SET_PDEATHSIG)."""
    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                         env=env)
    try:
        line = p.stdout.readline().split()
        assert line, "the script did not start its workers"
        run_dir, pids = line[0], [int(x) for x in line[1:]]
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        assert _wait_gone(pids) == [], "workers outlived their parent"
        assert os.listdir(run_dir) == []  # no crash logs left behind
    finally:
        if p.poll() is None:
            p.kill()
    os.rmdir(run_dir)


def test_a_stop_signal_during_a_worker_spawn_is_not_lost():
    """The Ctrl-C race: the spawn window used to set SIGINT to SIG_IGN while it was blocked,
    and POSIX discards a pending signal whose action becomes SIG_IGN, so a Ctrl-C landing
    there was lost and the tuner ran to its last trial. Now the handler is never touched:
    a SIGINT raised inside the window is delivered when it ends."""
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with local._stop_signals_blocked():
            assert signal.getsignal(signal.SIGINT) is before
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            time.sleep(0.05)  # pending in this thread, not delivered yet
            delivered_inside = False
        delivered_inside = True  # pragma: no cover - the KeyboardInterrupt comes first
    assert not delivered_inside
    assert signal.getsignal(signal.SIGINT) is before
