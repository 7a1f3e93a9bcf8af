"""Distributed measurement: candidates per second, local vs Dask, and simulated scaling.

    flock /tmp/tiletune-bench.lock python benchmarks/cluster.py [--configs 12]
        [--hosts 1 2 4 8 16 32] [--sleep 0.2] [--batches 3] [--skip-real]

1. **Real, this machine.** The same ``--configs`` sampled configs of dense 64x64x64 are
   measured by ``LocalMeasurer(jobs=2)`` and by ``DaskMeasurer`` on a ``LocalCluster`` of 1
   worker (2 threads) and of 2 workers (1 thread each) on loopback. Each path measures one
   warm-up batch (worker start-up, imports) and is then timed on a second batch of other
   configs: candidates per second and the ratio to local (target: Dask >= 90% of local).
2. **Simulated hosts.** A Dask ``LocalCluster`` of H single-thread workers (threads of this
   process) stands for H machines; the measure function sleeps ``--sleep`` seconds per
   candidate (a typical build + timing). The real XGB tuner proposes batches of 2H configs
   of a ResNet-18 conv2d space and fits its model on the (synthetic) costs, so the tuner's
   own time per batch is real. Reported per H: candidates/s, speed-up over one host
   (target: 16 hosts >= 12x), and the share of wall time spent in the tuner (model fitting
   + proposing) and in Dask scheduling overhead: where the tuner, not the hosts, becomes
   the bottleneck.

Writes ``benchmarks/results/cluster.json``.
"""

from __future__ import annotations

import os

os.environ.pop("OPENBLAS_CORETYPE", None)  # before NumPy

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def real(n_configs: int) -> dict:
    import dask
    import distributed

    from tiletune.tuner.measure.dask import DaskMeasurer
    from tiletune.tuner.measure.local import LocalMeasurer, MeasureOption
    from tiletune.tuner.templates.task import Task

    task = Task("dense", (64, 64, 64))
    warm = task.space.sample(n_configs, rng=1)
    timed = task.space.sample(n_configs, rng=2, exclude=warm)
    option = MeasureOption(jobs=2, number=2, repeat=2, threads=1)

    def rate(m) -> float:
        m(warm)
        t0 = time.perf_counter()
        res = m(timed)
        dt = time.perf_counter() - t0
        assert len(res) == len(timed)
        return len(timed) / dt

    out = {}
    with LocalMeasurer(task, option) as m:
        out["local (jobs=2)"] = rate(m)
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    for label, workers, threads in (("dask 1 worker x 2 threads", 1, 2),
                                    ("dask 2 workers x 1 thread", 2, 1)):
        with dask.config.set({"distributed.worker.daemon": False}):
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=threads,
                                               processes=True, host="127.0.0.1",
                                               dashboard_address=":0", env=env)
        try:
            client = distributed.Client(cluster, set_as_default=False)
            with DaskMeasurer(task, option, client=client) as m:
                out[label] = rate(m)
            client.close()
        finally:
            cluster.close()
    return out


def simulate(hosts: list[int], sleep: float, batches: int) -> list[dict]:
    import distributed

    from tiletune.tuner.measure.result import MeasureResult
    from tiletune.tuner.search.registry import TunerContext, make_tuner
    from tiletune.tuner.session.workloads import parse_workloads

    task = parse_workloads("resnet18:7")[0].task()

    def cost(i: int) -> float:  # a deterministic synthetic landscape
        return 1e-3 * (1 + (zlib.crc32(str(i).encode()) % 1000) / 250)

    def job(i: int) -> float:
        time.sleep(sleep)
        return cost(i)

    rows = []
    for h in hosts:
        cluster = distributed.LocalCluster(n_workers=h, threads_per_worker=1, processes=False,
                                           dashboard_address=":0")
        client = distributed.Client(cluster, set_as_default=False)
        client.gather(client.map(time.sleep, [0.0] * h, pure=False))  # warm every worker
        tuner = make_tuner("xgb", TunerContext(task, 0, batches * 2 * h, []))
        in_measure = [0.0]

        def measure(indices, client=client, in_measure=in_measure):
            t0 = time.perf_counter()
            futs = client.map(job, list(indices), pure=False)
            costs = client.gather(futs)
            in_measure[0] += time.perf_counter() - t0
            return [MeasureResult.success([c]) for c in costs]

        t0 = time.perf_counter()
        summary = tuner.tune(measure, batches * 2 * h, flop=float(task.flop), batch_size=2 * h)
        wall = time.perf_counter() - t0
        client.close()
        cluster.close()
        n = summary.n_measured
        ideal_measure = batches * 2 * sleep  # each host: 2 candidates per batch
        rows.append({"hosts": h, "candidates": n, "wall_s": wall, "cand_per_s": n / wall,
                     "tuner_share": 1 - in_measure[0] / wall,
                     "dask_overhead_share": max(0.0, in_measure[0] - ideal_measure) / wall})
    base = rows[0]["cand_per_s"] / rows[0]["hosts"]
    for r in rows:
        r["speedup_vs_1_host"] = r["cand_per_s"] / base
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", type=int, default=12)
    ap.add_argument("--hosts", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    ap.add_argument("--sleep", type=float, default=0.2)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--skip-real", action="store_true")
    args = ap.parse_args()
    out: dict = {"configs": args.configs, "sleep": args.sleep, "batches": args.batches}
    if not args.skip_real:
        rates = real(args.configs)
        local = rates["local (jobs=2)"]
        print(f"{'path':30} {'cand/s':>8} {'vs local':>9}")
        for k, v in rates.items():
            print(f"{k:30} {v:8.2f} {v / local:8.0%}")
        out["real"] = {k: {"cand_per_s": v, "ratio_to_local": v / local}
                       for k, v in rates.items()}
    rows = simulate(args.hosts, args.sleep, args.batches)
    print(f"\n{'hosts':>5} {'cand/s':>8} {'speed-up':>9} {'tuner %':>8} {'dask %':>7}")
    for r in rows:
        print(f"{r['hosts']:5d} {r['cand_per_s']:8.2f} {r['speedup_vs_1_host']:8.1f}x "
              f"{r['tuner_share']:7.0%} {r['dask_overhead_share']:6.0%}")
    out["simulated"] = rows
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
