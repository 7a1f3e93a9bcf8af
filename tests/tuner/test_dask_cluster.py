"""Measurement on a real Dask cluster (LocalCluster on loopback, worker processes)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from tiletune.tuner.measure.local import MeasureOption
from tiletune.tuner.records.store import load_records
from tiletune.tuner.session import tune_workloads
from tiletune.tuner.templates.task import Task

distributed = pytest.importorskip("distributed")

OPTION = dict(jobs=1, number=1, repeat=1, threads=1, cutoff=None)


@pytest.fixture(scope="module")
def cluster():
    import dask

    env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    with dask.config.set({"distributed.worker.daemon": False}):
        c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address=":0",
                                     worker_class=distributed.Nanny, env=env)
    try:
        yield c
    finally:
        c.close()


def _measured(path) -> dict[int, bool]:
    recs, problems = load_records(path)
    assert not problems
    keys = [r["index"] for r in recs if r["tuner"] != "confirm"]
    assert len(keys) == len(set(keys)), "a config was recorded twice"
    return {r["index"]: r["error"] is None for r in recs if r["tuner"] != "confirm"}


def test_a_tune_on_two_workers_records_what_a_local_tune_records(cluster, tmp_path):
    task = Task("dense", (16, 16, 16))
    kw = dict(trials=6, tuner="random", seed=3, batch_size=4, confirm=False,
              option=MeasureOption(**OPTION))
    local = tune_workloads([task], records=tmp_path / "local.jsonl", **kw)
    remote = tune_workloads([task], records=tmp_path / "dask.jsonl",
                            cluster=cluster.scheduler_address, **kw)
    assert not local.interrupted and not remote.interrupted
    assert _measured(tmp_path / "dask.jsonl") == _measured(tmp_path / "local.jsonl")
    recs, _ = load_records(tmp_path / "dask.jsonl")
    assert all(r["host"]["name"] and r["threads"] == 1 for r in recs)


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(cluster, tmp_path):
    from tiletune.tuner.measure.dask import DaskMeasurer

    task = Task("dense", (16, 16, 16))
    indices = task.space.sample(6, rng=5)
    client = distributed.Client(cluster.scheduler_address, set_as_default=False)
    try:
        pids = client.run(os.getpid)
        with DaskMeasurer(task, MeasureOption(**OPTION), client=client) as m:
            out: list = []
            t = threading.Thread(target=lambda: out.append(m(indices)))
            t.start()
            deadline = time.monotonic() + 120
            while not any(client.processing().values()):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            victim = next(w for w, tasks in client.processing().items() if tasks)
            os.kill(pids[victim], signal.SIGKILL)  # mid-batch: its job runs elsewhere
            t.join(300)
            assert not t.is_alive()
        (results,) = out
        assert len(results) == len(indices) and all(r.ok for r in results), \
            [r.describe() for r in results]
        assert sorted(m.hosts) == sorted(indices)
    finally:
        client.close()


def test_a_lost_scheduler_ends_the_run_clearly_and_resume_continues(tmp_path):
    """Fault: the scheduler goes away mid-run. The run ends with a TuningError naming the
    cluster; every record written is intact; --resume continues without re-measuring."""
    from tiletune.errors import TuningError

    task = Task("dense", (16, 16, 16))
    rec = tmp_path / "r.jsonl"
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=":0")

    def kill_scheduler() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if rec.exists() and len(load_records(rec)[0]) >= 3:
                break
            time.sleep(0.1)
        cluster.close()

    killer = threading.Thread(target=kill_scheduler)
    killer.start()
    kw = dict(trials=40, tuner="random", seed=1, batch_size=2, confirm=False,
              option=MeasureOption(**OPTION))
    try:
        with pytest.raises(TuningError, match="lost the Dask cluster"):
            tune_workloads([task], records=rec, cluster=cluster.scheduler_address, **kw)
    finally:
        killer.join()
        cluster.close()
    before = _measured(rec)
    assert len(before) >= 3
    kw["trials"] = len(before) + 2
    again = tune_workloads([task], records=rec, resume=True, **kw)
    assert again.results[0].resumed == len(before)
    after = _measured(rec)  # nothing measured twice
    assert set(before) <= set(after) and len(after) == len(before) + 2
