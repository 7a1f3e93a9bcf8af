"""ResNet-18 conv layers (batch 1, fp32, NCHW in and out): tiletune vs NumPy, PyTorch, ONNX
Runtime and the FMA peak, on 1 and 2 threads.

    python benchmarks/conv2d_resnet18.py [--threads 1 2] [--layers 1-12] [--sweep 24]
                                         [--records tuned.jsonl]

tiletune rows: the heuristic default config (no search) and the best config of the tuner's
records (``--records``) or, without records, of a seeded sweep over the template's space.
Algorithm rows (``--algorithms``, on by default): the best Winograd config (stride-1 3x3
layers; a sweep over F(2x2), F(4x4), F(6x6) and register tiles, with its error against a
float64 reference) and the best im2col + GEMM config, then the best of the combined space
(direct, Winograd, im2col) as a ratio to the best direct config and to ONNX Runtime, and its
effective rate (direct-convolution FLOPs / time) as a fraction of the FMA peak.
All ratios are measured within one run. Writes ``benchmarks/results/conv2d_resnet18.json``.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402  (unsets OPENBLAS_CORETYPE before numpy)
from tiletune.schedules import conv2d, conv2d_nchw, im2col, winograd  # noqa: E402
from tiletune.schedules.machine import host_machine  # noqa: E402

LAYERS = [(3, 224, 224, 64, 7, 7, 2, 3), (64, 56, 56, 64, 3, 3, 1, 1),
          (64, 56, 56, 64, 1, 1, 1, 0), (64, 56, 56, 128, 3, 3, 2, 1),
          (64, 56, 56, 128, 1, 1, 2, 0), (128, 28, 28, 128, 3, 3, 1, 1),
          (128, 28, 28, 256, 3, 3, 2, 1), (128, 28, 28, 256, 1, 1, 2, 0),
          (256, 14, 14, 256, 3, 3, 1, 1), (256, 14, 14, 512, 3, 3, 2, 1),
          (256, 14, 14, 512, 1, 1, 2, 0), (512, 7, 7, 512, 3, 3, 1, 1)]


def workload(layer) -> conv2d.Conv2dWorkload:
    C, H, W, K, R, S, stride, pad = layer
    return conv2d.Conv2dWorkload(1, C, H, W, K, R, S, stride, pad)


def sweep_configs(w: conv2d.Conv2dWorkload, n: int, seed: int = 0) -> list[tuple]:
    """The heuristic choice plus ``n`` seeded valid configs of each conv2d template."""
    import itertools
    rng = np.random.default_rng(seed)
    lanes = host_machine().vector_lanes
    out = [conv2d_nchw.choose(w)]
    for module in (conv2d, conv2d_nchw):
        sp = module.space(w)
        allc = [dict(zip(sp, vals)) for vals in itertools.product(*sp.values())]
        allc = [c for c in allc if module.is_valid(w, c) and c["parallel"] in (True, "n_occ_oh")]
        if module is conv2d:
            good = [c for c in allc if c["oc_bn"] % lanes == 0 and c["reg_n"] >= 4]
            allc = good or allc
        picks = rng.choice(len(allc), size=min(n, len(allc)), replace=False)
        out += [(module, module.default_config(w))] + [(module, allc[i]) for i in picks]
    return out


_REFERENCE: dict = {}


def reference(w, data, weight) -> np.ndarray:
    """The float64 reference of a layer (computed once per layer and inputs)."""
    key = (w, id(data), id(weight))
    if key not in _REFERENCE:
        _REFERENCE.clear()
        _REFERENCE[key] = conv2d.reference(data, weight, w.stride, w.pad)
    return _REFERENCE[key]


_BUILT: dict = {}


def built(w, module, cfg):
    """The compiled kernel of a config (compiled once per layer: re-timed on more threads)."""
    import json
    key = (w, module.__name__, json.dumps(cfg, sort_keys=True))
    if key not in _BUILT:
        if _BUILT and next(iter(_BUILT))[0] != w:
            _BUILT.clear()
        _BUILT[key] = module.build(w, cfg)
    return _BUILT[key]


def time_config(w, choice, data, weight, threads: int, number: int = 5) -> float:
    module, cfg = choice
    f = built(w, module, cfg)
    f.set_num_threads(threads)
    out = np.empty((w.N, w.K, w.OH, w.OW), "float32")
    wp = module.pack_weight(weight, cfg)
    f(data, wp, out)
    ref = reference(w, data, weight)
    err = np.abs(out - ref).max() / (np.abs(ref).max() + 1e-9)
    if err > 1e-4:
        raise AssertionError(f"{w.key()} {cfg}: wrong result (rel err {err:.2e})")
    return f.time_evaluator(number=number, repeat=5)(data, wp, out).min


def algorithm_configs(w: conv2d.Conv2dWorkload, n: int, seed: int = 0) -> dict[str, list]:
    """Candidates of the Winograd (if it applies) and im2col templates: the default, each
    Winograd tile size, and ``n`` seeded valid configs of each (parallel knob on)."""
    import itertools
    rng = np.random.default_rng(seed)
    lanes = host_machine().vector_lanes
    out: dict[str, list] = {}
    for name, module in (("winograd", winograd), ("im2col", im2col)):
        if name == "winograd" and not winograd.applicable(w):
            continue
        d = module.default_config(w)
        cands = [d]
        if module is winograd:  # each tile size with its default register tile
            cands += [c for m in winograd.space(w)["tile"] if m != d["tile"]
                      for c in [{**d, "tile": m, "reg_p": winograd.default_reg_p(
                          w, m, d["oc_bn"])}] if winograd.is_valid(w, c)]
        sp = module.space(w)
        allc = [dict(zip(sp, v)) for v in itertools.product(*sp.values())]
        allc = [c for c in allc if module.is_valid(w, c) and c["parallel"]
                and c.get("oc_bn", lanes) % lanes == 0 and c.get("reg_p", 6) >= 4]
        picks = rng.choice(len(allc), size=min(n, len(allc)), replace=False)
        out[name] = [(module, c) for c in cands + [allc[i] for i in picks]]
    return out


def relative_error(w, choice, data, weight) -> float:
    """max |out - ref| / max |ref| against the float64 reference."""
    module, cfg = choice
    out = np.empty((w.N, w.K, w.OH, w.OW), "float32")
    f = built(w, module, cfg)
    f.set_num_threads(1)
    f(data, module.pack_weight(weight, cfg), out)
    ref = reference(w, data, weight)
    return float(np.abs(out - ref).max() / np.abs(ref).max())


def winograd_stages(w, cfg, threads: int) -> dict[str, float]:
    """Milliseconds of the input transform, the batched GEMM and the output transform, each
    compiled and timed alone (``winograd.stage_kernels``; NCHW in and out)."""
    import tiletune as tt
    rng = np.random.default_rng(0)
    out = {}
    for name, (s, tensors) in winograd.stage_kernels(w, cfg).items():
        f = tt.build(s, tensors, name=f"winograd_{name}")
        f.set_num_threads(threads)
        arrays = [rng.standard_normal(t.shape).astype("float32") for t in tensors]
        out[name] = 1e3 * f.time_evaluator(number=5, repeat=5)(*arrays).min
    return out


def with_parallel(choice: tuple, threads: int) -> list[tuple]:
    """The config, and for several threads its variants over the parallel knob (a config
    tuned on one thread is indifferent to which loops are parallel)."""
    module, cfg = choice
    if threads == 1:
        return [choice]
    return [(module, {**cfg, "parallel": p}) for p in _parallel_choices(module)]


def _parallel_choices(module) -> list:
    if module is conv2d:
        return ["n_occ_oh", "n_occ", "occ"]
    return [True]


def best_from_records(path: str, w) -> dict | None:
    """The fastest successful config recorded for this layer (records of ``tiletune tune``)."""
    from tiletune.tuner.records.store import best_records, load_records
    recs, problems = load_records(path)
    for p in problems:
        print(f"records: {p}")
    args = f'({w.N},{w.C},{w.H},{w.W},{w.K},{w.R},{w.S},{w.stride},{w.pad},"{w.dtype}")@llvm'
    best = best_records(recs)
    found = [(best[t + args], module) for t, module in (("conv2d_nchwc", conv2d),
                                                        ("conv2d_nchw", conv2d_nchw))
             if t + args in best]
    if not found:
        return None
    rec, module = min(found, key=lambda rm: sum(rm[0]["costs"]) / len(rm[0]["costs"]))
    return module, dict(rec["config"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--layers", default="1-12", help="e.g. 1-12 or 2,6,9")
    p.add_argument("--sweep", type=int, default=16, help="configs per layer in the sweep")
    p.add_argument("--records", help="tuning records: use their best config per layer")
    p.add_argument("--algorithms", type=int, default=4, metavar="N",
                   help="Winograd/im2col rows: N sweep configs each besides the defaults "
                        "(-1: no algorithm rows)")
    args = p.parse_args()
    sel = _parse_layers(args.layers)
    peak = common.fma_peak_gflops()
    print(f"measured FMA peak, one core: {peak:.1f} GFLOP/s")
    rows, results, alg_rows = [], [], []
    rng = np.random.default_rng(0)
    for li in sel:
        w = workload(LAYERS[li - 1])
        data = rng.standard_normal((1, w.C, w.H, w.W)).astype("float32")
        weight = rng.standard_normal((w.K, w.C, w.R, w.S)).astype("float32")
        gf = lambda t: w.flop / t / 1e9  # noqa: E731
        tuned = best_from_records(args.records, w) if args.records else None
        candidates = [tuned, conv2d_nchw.choose(w)] if tuned else \
            sweep_configs(w, args.sweep, seed=li)
        best_cfg, best_t = None, float("inf")
        for cfg in candidates:
            t = time_config(w, cfg, data, weight, 1)
            if t < best_t:
                best_cfg, best_t = cfg, t
        algos: dict[str, tuple] = {}
        for name, cands in (algorithm_configs(w, args.algorithms, seed=li).items()
                            if args.algorithms >= 0 else []):
            timed = [(time_config(w, c, data, weight, 1), c) for c in cands]
            algos[name] = min(timed, key=lambda tc: tc[0])[1]
        wino_err = relative_error(w, algos["winograd"], data, weight) \
            if "winograd" in algos else float("nan")
        wino_label = (f"F{algos['winograd'][1]['tile']} {wino_err:.1e}" if "winograd" in algos
                      else "-")
        stages = winograd_stages(w, algos["winograd"][1], 1) if "winograd" in algos else {}
        if stages:
            print(f"layer {li} winograd {algos['winograd'][1]}: stages (ms, 1 thread) " +
                  ", ".join(f"{k} {v:.3f}" for k, v in stages.items()), flush=True)
        for threads in args.threads:
            t_def = time_config(w, conv2d_nchw.choose(w), data, weight, threads)
            t_best = min([t_def] + [time_config(w, c, data, weight, threads)
                                    for c in with_parallel(best_cfg, threads)])
            with common.numpy_threads(threads):
                t_np = common.best_time(lambda: common.im2col_conv(data, weight, w.stride,
                                                                   w.pad))
            make_t, make_o = common.torch_conv(threads), common.ort_conv(threads)
            t_torch = common.best_time(make_t(data, weight, w.stride, w.pad)) if make_t \
                else float("nan")
            t_ort = common.best_time(make_o(data, weight, w.stride, w.pad)) if make_o \
                else float("nan")
            t_alg = {name: time_config(w, c, data, weight, threads)
                     for name, c in algos.items()}
            t_comb = min([t_best, *t_alg.values()])
            rec = {"layer": li, "shape": LAYERS[li - 1], "threads": threads,
                   "gflops": {"default": gf(t_def), "best": gf(t_best), "numpy": gf(t_np),
                              "torch": gf(t_torch), "onnxruntime": gf(t_ort),
                              **{n: gf(t) for n, t in t_alg.items()},
                              "combined": gf(t_comb)},
                   "algorithm_configs": {n: c[1] for n, c in algos.items()},
                   "winograd_rel_error": wino_err, "winograd_stages_ms_1thread": stages,
                   "peak": peak * threads, "best_template": best_cfg[0].__name__.split(".")[-1],
                   "best_config": best_cfg[1],
                   "source": "records" if tuned else f"sweep of {len(candidates)}"}
            results.append(rec)
            g = rec["gflops"]
            rows.append([li, threads, g["default"], g["best"], g["numpy"], g["torch"],
                         g["onnxruntime"], g["best"] / g["onnxruntime"],
                         g["best"] / g["torch"], 100 * g["best"] / (peak * threads),
                         g["default"] / g["onnxruntime"]])
            alg_rows.append([li, threads, g["best"], g.get("winograd", float("nan")),
                             g.get("im2col", float("nan")), g["combined"],
                             g["combined"] / g["best"], g["combined"] / g["onnxruntime"],
                             100 * g["combined"] / (peak * threads), wino_label])
            print(f"layer {li} x{threads}: best {g['best']:.1f} default {g['default']:.1f} "
                  f"winograd {g.get('winograd', float('nan')):.1f} "
                  f"im2col {g.get('im2col', float('nan')):.1f} "
                  f"ort {g['onnxruntime']:.1f} torch {g['torch']:.1f} GFLOP/s", flush=True)
    common.print_table(
        "ResNet-18 conv2d (GFLOP/s)",
        ["layer", "thr", "tt default", "tt best", "numpy", "torch", "ort", "best/ort",
         "best/torch", "% peak", "default/ort"], rows)
    if alg_rows:
        common.print_table(
            "ResNet-18 conv2d algorithms (GFLOP/s; effective rate = direct FLOPs / time)",
            ["layer", "thr", "best direct", "winograd", "im2col", "combined", "comb/direct",
             "comb/ort", "% peak", "wino err"], alg_rows)
    summary = {}
    for threads in args.threads:
        sel_r = [r for r in results if r["threads"] == threads]
        summary[threads] = {
            "geomean_best_over_ort": common.geomean(
                [r["gflops"]["best"] / r["gflops"]["onnxruntime"] for r in sel_r]),
            "geomean_default_over_ort": common.geomean(
                [r["gflops"]["default"] / r["gflops"]["onnxruntime"] for r in sel_r]),
            "min_best_over_torch": min(r["gflops"]["best"] / r["gflops"]["torch"]
                                       for r in sel_r),
            "geomean_combined_over_ort": common.geomean(
                [r["gflops"]["combined"] / r["gflops"]["onnxruntime"] for r in sel_r]),
            "stride1_3x3_combined_over_direct": [
                r["gflops"]["combined"] / r["gflops"]["best"] for r in sel_r
                if r["shape"][4] == 3 and r["shape"][6] == 1],
            "min_peak_fraction_3x3": min(
                [r["gflops"]["best"] / r["peak"] for r in sel_r if r["shape"][4] == 3] or
                [float("nan")]),
        }
        print(f"{threads} thread(s): " + ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {[round(x, 2) for x in v]}"
            for k, v in summary[threads].items()))
    common.write_json("conv2d_resnet18.json", {"peak_gflops": peak, "layers": results,
                                               "summary": summary})


def _parse_layers(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


if __name__ == "__main__":
    main()
