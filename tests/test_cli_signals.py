"""SIGTERM and SIGHUP end `tiletune tune` like Ctrl-C: summary, records kept, 128 + N."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tiletune.tuner.records.store import load_records


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_stop_signal_prints_the_summary_and_exits_128_plus_n(tmp_path, sig, code):
    rec = tmp_path / "r.jsonl"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen([sys.executable, "-m", "tiletune.cli", "tune", "--op", "dense",
                          "--shape", "16,16,16", "--trials", "500", "--records", str(rec),
                          "--jobs", "1", "--batch-size", "2", "--number", "1", "--repeat",
                          "1", "--time-budget", "0", "--tuner", "random"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (rec.exists() and len(load_records(rec)[0]) >= 3):
            assert time.monotonic() < deadline and p.poll() is None, "no records in 2 min"
            time.sleep(0.2)
        os.killpg(p.pid, sig)  # the whole group, workers included, as a service manager does
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == code, err
    assert "Traceback" not in err, err
    assert "summary" in out and "interrupted" in err
    recs, problems = load_records(rec)
    assert len(recs) >= 3 and not problems
