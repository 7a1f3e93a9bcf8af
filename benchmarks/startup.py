"""Start-up time: ``import tiletune``, ``import tiletune.tuner``, ``tiletune --help``, ``tiletune
tune --help`` and a measurement worker's start-up, each in a fresh interpreter.

    python benchmarks/startup.py [--runs 7] [--importtime]

Each command runs ``--runs`` times; the table gives the best and the median wall time, and the
median minus that of a bare ``python -c pass`` (the interpreter's own start-up, ``site`` and
the installed ``.pth`` files included). The budgets of issue 14 are on the total: ``tiletune
--help`` < 0.3 s, ``import tiletune`` < 0.15 s. ``--importtime`` also prints the ten slowest
imports (``python -X importtime``) of each command. Writes
``benchmarks/results/startup.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import common  # noqa: E402  (unsets OPENBLAS_CORETYPE)

WORKER = ("import json, sys\n"
          "from tiletune.tuner.measure.worker import main\n"
          "from tiletune.tuner.templates.task import Task\n"
          "Task.from_json(json.loads(sys.argv[1]))")

# name -> (python arguments, budget in seconds or None)
CASES: dict[str, tuple[list[str], float | None]] = {
    "python -c pass": (["-c", "pass"], None),
    "import tiletune": (["-c", "import tiletune"], 0.15),
    "import tiletune.tuner": (["-c", "import tiletune.tuner"], None),
    "tiletune --help": (["-m", "tiletune.cli", "--help"], 0.3),
    "tiletune tune --help": (["-m", "tiletune.cli", "tune", "--help"], None),
    "measurement worker start-up": (["-c", WORKER], None),
}


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def worker_task_json() -> str:
    """What a worker receives: a conv2d task of ResNet-18's second layer, as JSON."""
    from tiletune.tuner.session.workloads import parse_workloads

    (w,) = parse_workloads("resnet18:2")
    return json.dumps(w.task().to_json())


def time_once(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def slowest_imports(args: list[str], env: dict[str, str], n: int = 10) -> list[tuple[str, float]]:
    """The ``n`` top-level imports with the largest cumulative time (``-X importtime``)."""
    p = subprocess.run([sys.executable, "-X", "importtime", *args], env=env, cwd=ROOT,
                       capture_output=True, text=True, check=True)
    rows = []
    for line in p.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        rows.append((name.rstrip(), int(cumulative) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:n]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7, help="fresh interpreters per command")
    p.add_argument("--importtime", action="store_true",
                   help="also print the slowest imports of each command")
    args = p.parse_args()
    env = environment()
    cases = {name: ([*a, worker_task_json()] if name.startswith("measurement") else a, budget)
             for name, (a, budget) in CASES.items()}
    for a, _ in cases.values():  # warm the file cache (and check every command runs)
        time_once(a, env)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):  # interleaved, so a burst of load hits every command alike
        for name, (a, _) in cases.items():
            times[name].append(time_once(a, env))
    base = statistics.median(times["python -c pass"])
    rows, out = [], {}
    for name, (a, budget) in cases.items():
        med = statistics.median(times[name])
        ok = "-" if budget is None else ("yes" if med < budget else "NO")
        rows.append([name, f"{min(times[name]):.3f}", f"{med:.3f}", f"{med - base:+.3f}",
                     "-" if budget is None else f"< {budget}", ok])
        out[name] = {"argv": ["python", *a[:3]], "runs_s": times[name], "best_s": min(times[name]),
                     "median_s": med, "median_minus_bare_python_s": med - base,
                     "budget_s": budget}
    common.print_table(f"start-up, {args.runs} fresh interpreters each (seconds)",
                       ["command", "best", "median", "minus bare python", "budget", "within"],
                       rows)
    if args.importtime:
        for name, (a, _) in cases.items():
            print(f"\n{name}: slowest imports (cumulative seconds)")
            for mod, sec in slowest_imports(a, env):
                print(f"  {sec:7.3f}  {mod}")
    common.write_json("startup.json", {
        "machine": platform.processor() or platform.machine(), "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "runs": args.runs,
        "results": out})


if __name__ == "__main__":
    main()
