"""Mobile and grouped conv layers (batch 1, fp32, NCHW): MobileNet-V2's depthwise and
pointwise layers and ResNeXt-50 (32x4d)'s grouped 3x3 layers; tiletune vs ONNX Runtime and
PyTorch on 1 and 2 threads.

    python benchmarks/conv2d_mobile.py [--threads 1 2] [--sets depthwise pointwise grouped]
                                       [--sweep 4]

tiletune rows: the heuristic default and the best of the default plus ``--sweep`` seeded
configs of the layer's template (depthwise: ``depthwise``; pointwise: the combined
algorithm space ``conv2d_auto``, i.e. direct NCHWc / NCHW and im2col; grouped: ``grouped``),
chosen on one thread. Every result is checked against NumPy. Ratios are measured in one run.
Writes ``benchmarks/results/conv2d_mobile.json``.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402  (unsets OPENBLAS_CORETYPE before numpy)
from tiletune.schedules import conv2d, conv2d_auto, grouped  # noqa: E402
from tiletune.schedules import depthwise as dw  # noqa: E402

#: MobileNet-V2 (224x224) depthwise 3x3 layers: (C, H, stride); pad 1.
DEPTHWISE = [(32, 112, 1), (96, 112, 2), (144, 56, 1), (144, 56, 2), (192, 28, 1),
             (192, 28, 2), (384, 14, 1), (576, 14, 1), (576, 14, 2), (960, 7, 1)]
#: MobileNet-V2 pointwise (1x1) layers: (C, H, K).
POINTWISE = [(32, 112, 16), (16, 112, 96), (96, 56, 24), (24, 56, 144), (144, 28, 32),
             (192, 14, 64), (384, 14, 96), (576, 7, 160), (960, 7, 320), (320, 7, 1280)]
#: ResNeXt-50 (32x4d) grouped 3x3 layers: (C = K, H, stride); 32 groups, pad 1.
GROUPED = [(128, 56, 1), (256, 56, 2), (256, 28, 1), (512, 28, 2), (512, 14, 1),
           (1024, 14, 2), (1024, 7, 1)]


def torch_call(data: np.ndarray, weight: np.ndarray, stride: int, pad: int, group: int,
               threads: int):
    import torch
    torch.set_num_threads(threads)
    x, w = torch.from_numpy(data), torch.from_numpy(weight)

    def run():
        with torch.no_grad():
            return torch.nn.functional.conv2d(x, w, stride=stride, padding=pad, groups=group)
    return run


def _sample(module, w, n: int, rng, keep=lambda c: True) -> list[dict]:
    sp = module.space(w)
    allc = [dict(zip(sp, v)) for v in itertools.product(*sp.values())]
    allc = [c for c in allc if module.is_valid(w, c) and keep(c)]
    picks = rng.choice(len(allc), size=min(n, len(allc)), replace=False)
    return [allc[i] for i in picks]


class Case:
    """One layer: its tiletune kernel factory, reference and baselines."""

    def __init__(self, kind: str, shape: tuple, rng: np.random.Generator, sweep: int) -> None:
        self.kind, self.shape = kind, shape
        self._built: dict[str, object] = {}
        if kind == "depthwise":
            C, H, s = shape
            self.w = dw.DepthwiseWorkload(1, C, H, H, 3, s, 1)
            self.module, self.group, self.stride, self.pad = dw, C, s, 1
            self.weight = rng.standard_normal((C, 1, 3, 3)).astype("float32")
            self.data = rng.standard_normal((1, C, H, H)).astype("float32")
            self.ref = dw.reference(self.data, self.weight[:, 0], s, 1)
            self.configs = [dw.default_config(self.w)] + _sample(dw, self.w, sweep, rng)
        elif kind == "pointwise":
            C, H, K = shape
            self.w = conv2d.Conv2dWorkload(1, C, H, H, K, 1, 1, 1, 0)
            self.module, self.group, self.stride, self.pad = conv2d_auto, 1, 1, 0
            self.weight = rng.standard_normal((K, C, 1, 1)).astype("float32")
            self.data = rng.standard_normal((1, C, H, H)).astype("float32")
            self.ref = conv2d.reference(self.data, self.weight, 1, 0)
            per_algo = [{"algorithm": n, "schedule": c}
                        for n in conv2d_auto.applicable(self.w)
                        for c in [conv2d_auto.ALGORITHMS[n].default_config(self.w)]
                        + _sample(conv2d_auto.ALGORITHMS[n], self.w, sweep // 2, rng,
                                  lambda c: c.get("parallel") in (True, "n_occ_oh"))]
            self.configs = [conv2d_auto.default_config(self.w)] + per_algo
        else:
            C, H, s = shape
            self.w = grouped.GroupedConv2dWorkload(1, C, H, H, C, 3, 3, s, 1, groups=32)
            self.module, self.group, self.stride, self.pad = grouped, 32, s, 1
            self.weight = rng.standard_normal((C, C // 32, 3, 3)).astype("float32")
            self.data = rng.standard_normal((1, C, H, H)).astype("float32")
            self.ref = grouped.reference(self.data, self.weight, s, 1, 32)
            self.configs = [grouped.default_config(self.w)] + _sample(
                grouped, self.w, sweep, rng, lambda c: c["parallel"] == "n_occ_oh")

    def kernel(self, cfg: dict, threads: int):
        key = repr(cfg)
        if key not in self._built:  # build once per config; threads are a call setting
            self._built[key] = self.module.build(self.w, cfg)
        f = self._built[key]
        f.set_num_threads(threads)
        weight = self.weight[:, 0] if self.kind == "depthwise" else \
            self.module.pack_weight(self.weight, cfg)
        out = np.empty(self.ref.shape, "float32")
        f(self.data, weight, out)
        err = np.abs(out - self.ref).max() / np.abs(self.ref).max()
        if err > 1e-4:
            raise AssertionError(f"{self.kind} {self.shape} {cfg}: wrong (rel err {err:.1e})")
        return lambda: f(self.data, weight, out)

    @property
    def flop(self) -> float:
        return float(self.w.flop)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--sets", nargs="+", default=["depthwise", "pointwise", "grouped"],
                   choices=["depthwise", "pointwise", "grouped"])
    p.add_argument("--sweep", type=int, default=4, help="sampled configs per layer")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    table = {"depthwise": DEPTHWISE, "pointwise": POINTWISE, "grouped": GROUPED}
    results, rows = [], []
    for kind in args.sets:
        for shape in table[kind]:
            case = Case(kind, shape, rng, args.sweep)
            timed = [(common.best_time(case.kernel(c, 1), repeat=3, min_time=0.02), c)
                     for c in case.configs]
            t_default = timed[0][0]
            best_t, best_cfg = min(timed, key=lambda tc: tc[0])
            for threads in args.threads:
                t_def = t_default if threads == 1 else common.best_time(
                    case.kernel(case.configs[0], threads), repeat=3, min_time=0.02)
                t_best = best_t if threads == 1 else common.best_time(
                    case.kernel(best_cfg, threads), repeat=3, min_time=0.02)
                t_best = min(t_best, t_def)
                t_ort = common.best_time(common.ort_conv(threads)(
                    case.data, case.weight, case.stride, case.pad, case.group))
                t_torch = common.best_time(torch_call(case.data, case.weight, case.stride,
                                                      case.pad, case.group, threads))
                gf = lambda t: case.flop / t / 1e9  # noqa: E731
                rec = {"set": kind, "shape": shape, "threads": threads,
                       "gflops": {"default": gf(t_def), "best": gf(t_best),
                                  "onnxruntime": gf(t_ort), "torch": gf(t_torch)},
                       "best_config": best_cfg}
                results.append(rec)
                rows.append([kind, "x".join(map(str, shape)), threads, gf(t_def), gf(t_best),
                             gf(t_ort), gf(t_torch), t_ort / t_best, t_torch / t_best])
                print(f"{kind} {shape} x{threads}: best {gf(t_best):.2f} default "
                      f"{gf(t_def):.2f} ort {gf(t_ort):.2f} torch {gf(t_torch):.2f} GFLOP/s",
                      flush=True)
    common.print_table("Mobile / grouped conv layers (GFLOP/s)",
                       ["set", "shape", "thr", "tt default", "tt best", "ort", "torch",
                        "best/ort", "best/torch"], rows)
    summary = {}
    for kind in args.sets:
        for threads in args.threads:
            sel = [r for r in results if r["set"] == kind and r["threads"] == threads]
            summary[f"{kind}_x{threads}"] = {
                "geomean_best_over_ort": common.geomean(
                    [r["gflops"]["best"] / r["gflops"]["onnxruntime"] for r in sel]),
                "geomean_default_over_ort": common.geomean(
                    [r["gflops"]["default"] / r["gflops"]["onnxruntime"] for r in sel]),
                "geomean_best_over_torch": common.geomean(
                    [r["gflops"]["best"] / r["gflops"]["torch"] for r in sel]),
            }
            print(f"{kind} x{threads}: " + ", ".join(
                f"{k} {v:.3f}" for k, v in summary[f"{kind}_x{threads}"].items()))
    common.write_json("conv2d_mobile.json", {"layers": results, "summary": summary})


if __name__ == "__main__":
    main()
