"""Tutorial step 4: a tunable template, a few trials of the XGBoost tuner, the best config.

AutoTVM's matmul tutorial with ``cfg`` passed explicitly. The template must live at module
level (measurement runs in worker processes that import it), and the script needs the
``if __name__ == "__main__"`` guard.

    python examples/03_tune_a_template.py [records.jsonl]
"""
import sys

import numpy as np

import tiletune as tt
from tiletune.tuner import LocalMeasurer, MeasureOption, RecordWriter, Task, XGBTuner


@tt.tuner.template("example_matmul")
def matmul(cfg, N, L, M, dtype="float32"):
    A = tt.placeholder((N, L), dtype, name="A")
    B = tt.placeholder((L, M), dtype, name="B")
    k = tt.reduce_axis(L, name="k")
    C = tt.compute((N, M), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = tt.create_schedule(C)
    y, x = s[C].axis
    cfg.define_split("tile_y", y, num_outputs=2)
    cfg.define_split("tile_x", x, num_outputs=2)
    cfg.define_knob("vectorize", [0, 1])
    yo, yi = cfg["tile_y"].apply(s[C], y)
    xo, xi = cfg["tile_x"].apply(s[C], x)
    s[C].reorder(yo, xo, k, yi, xi)
    if cfg["vectorize"].val:
        s[C].vectorize(xi)
    return s, [A, B, C]


def main(records: str = "matmul.jsonl", trials: int = 16) -> None:
    task = Task("example_matmul", (64, 64, 64))
    print(f"{task.workload_key}: {len(task.space)} configs")
    writer = RecordWriter(records, template=task.name, tuner="xgb")
    tuner = XGBTuner(task.space, seed=0)
    option = MeasureOption(jobs=1, number=2, repeat=2)
    with LocalMeasurer(task, option, seed=0) as measure:
        summary = tuner.tune(measure, trials, flop=task.flop, batch_size=8,
                             callbacks=[writer.callback(task.workload_key)])
    best = task.space.get(tuner.best_index)
    print(f"best of {len(tuner.visited)} trials: {tuner.best_flops / 1e9:.2f} GFLOP/s, "
          f"config {best.to_json()} ({summary.stop_reason or 'trials done'})")

    # the best record, applied: Task.instantiate() without a config asks the records
    with tt.tuner.apply_history_best(records):
        s, args = task.instantiate()
    f = tt.build(s, args)
    a, b = task.make_inputs(0)
    c = np.empty((64, 64), "float32")
    f(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4)
    print(f"records in {records}; see them with: tiletune report {records} -o report.html")


if __name__ == "__main__":
    main(*sys.argv[1:2])
