"""int8 conv layers of ResNet-18 vs the fp32 kernels and onnxruntime, and the quantization
noise of each calibration method.

    python benchmarks/int8.py [--threads 1] [--layers 1-12] [--sweep 4] [--sqnr-inputs 100]

Layers (batch 1, NCHW in and out, 1 thread by default): tiletune fp32 (best of the default
and a seeded sweep of both conv2d templates, as ``conv2d_resnet18.py``), tiletune int8
(u8 x s8 with the requantize epilogue, on the host's int8 path; default and a seeded sweep
of ``int8_conv2d``), onnxruntime's fp32 Conv and its int8 QLinearConv (u8 in, s8 per-channel
weights, u8 out). The first layer's 3 channels are padded to 4 for int8.

SQNR: a chain of five 3x3 conv+ReLU layers, global average pooling and an fp32 classifier
with random He-initialised weights, calibrated on 32 inputs by each method, run in int8
by tiletune's kernels on ``--sqnr-inputs`` other inputs; SQNR of the logits against fp32.

Whole network (``--network``): the built-in ResNet-18 (``frontend.builder.resnet18``, random
weights, batch 1, ``--image`` pixels) imported and built by tiletune in fp32, quantized by
``compress.quantize_graph`` per calibration method (``--calib`` inputs) and built with the
int8 kernels, against onnxruntime on its own QDQ model of the same network
(``quantize_static``, per-channel s8 weights, u8 activations, reduce_range) at each thread
count, the three runtimes taking turns (interleaved rounds, best of each); SQNR of the int8
logits against tiletune fp32 over ``--net-sqnr-inputs`` inputs, per method, and on an
AVX2 / AVX-512BW host also for 7-bit activations x 8-bit weights (the alternative to the
default u8 activations x 7-bit weights). ``--records`` applies tuning records (e.g. of
``tiletune tune --model resnet18 [--quantize kl]``) to both tiletune builds.
Writes ``benchmarks/results/int8.json`` (``int8_network.json`` with ``--network-only``).
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402  (unsets OPENBLAS_CORETYPE before numpy)
from benchmarks.conv2d_resnet18 import LAYERS, sweep_configs, time_config  # noqa: E402
from tiletune.backends.llvm import int8dot  # noqa: E402
from tiletune.compress.quantize import METHODS, Observer, quantize_layer  # noqa: E402
from tiletune.schedules import conv2d  # noqa: E402
from tiletune.schedules import int8_conv2d as ic  # noqa: E402
from tiletune.schedules.int8_requant import Requant  # noqa: E402


def int8_configs(w: ic.Int8Conv2dWorkload, n: int, seed: int) -> list[dict]:
    sp = ic.space(w)
    allc = [dict(zip(sp, v)) for v in itertools.product(*sp.values())]
    allc = [c for c in allc if ic.is_valid(w, c) and c["parallel"] == "n_occ_oh"]
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(allc), size=min(n, len(allc)), replace=False)
    # plus, per output-channel block, the widest register tile that fits (no spills)
    widest = []
    for oc in sorted({c["oc_bn"] for c in allc if c["oc_bn"] % ic.lanes() == 0}):
        fit = [c for c in allc if c["oc_bn"] == oc and c["ic_bn"] == ic.default_config(w)[
            "ic_bn"] and not c["unroll_kw"]]
        if fit:
            widest.append(max(fit, key=lambda c: (w.OW % c["reg_n"] == 0, c["reg_n"])))
    out = [ic.default_config(w)]
    for c in widest + [allc[i] for i in picks]:
        if c not in out:
            out.append(c)
    return out


def time_int8(w: ic.Int8Conv2dWorkload, cfg: dict, x, wt, b, mult, threads: int) -> float:
    rq = Requant(24, 0, 0, 255)
    layer = ic.Int8Conv2d(w, wt, b, mult, rq=rq, cfg=cfg)
    layer.kernel.set_num_threads(threads)
    out = layer(x)
    ref = ic.reference(x, wt, b, w.stride, w.pad, 0, mult, rq)
    if not np.array_equal(out, ref):
        raise AssertionError(f"{w.key()} {cfg}: int8 result differs from the reference")
    o = np.empty_like(out)
    return layer.kernel.time_evaluator(number=5, repeat=5)(x, layer.weight, layer.bias,
                                                           layer.mult, o).min


def ort_qlinearconv(threads: int, x, wt, w_scale, stride: int, pad: int):
    """onnxruntime's QLinearConv (u8 x s8 per-channel -> u8), or None without it."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    K = wt.shape[0]
    N, C, H, W = x.shape
    OH = (H + 2 * pad - wt.shape[2]) // stride + 1
    OW = (W + 2 * pad - wt.shape[3]) // stride + 1
    inits = {"xs": np.array(0.02, np.float32), "xz": np.array(0, np.uint8), "w": wt,
             "ws": w_scale.astype(np.float32), "wz": np.zeros(K, np.int8),
             "ys": np.array(0.05, np.float32), "yz": np.array(0, np.uint8)}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"],
                            ["y"], pads=[pad] * 4, strides=[stride] * 2)
    g = helper.make_graph([node], "qconv",
                          [helper.make_tensor_value_info("x", TensorProto.UINT8, x.shape)],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8,
                                                         (N, K, OH, OW))],
                          initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return lambda: sess.run(None, {"x": x})


def layer_rows(sel: list[int], threads: int, sweep: int, results: list, rows: list) -> None:
    rng = np.random.default_rng(0)
    path = int8dot.best_path()
    wmax = 2 ** (int8dot.weight_bits(path) - 1) - 1  # 63 on a vpmaddubsw path: u8 exact
    amax = int8dot.activation_max(path, wmax)
    for li in sel:
        C, H, W, K, R, S, stride, pad = LAYERS[li - 1]
        wf = conv2d.Conv2dWorkload(1, C, H, W, K, R, S, stride, pad)
        data = rng.standard_normal((1, C, H, W)).astype(np.float32)
        weight = rng.standard_normal((K, C, R, S)).astype(np.float32)
        t32 = [time_config(wf, c, data, weight, threads) for c in sweep_configs(wf, sweep, li)]
        C4 = -(-C // 4) * 4
        x = rng.integers(0, amax + 1, (1, C4, H, W)).astype(np.uint8)
        wt = rng.integers(-wmax, wmax + 1, (K, C4, R, S)).astype(np.int8)
        if C4 != C:
            x[:, C:] = 0
            wt[:, C:] = 0
        b = rng.integers(-1000, 1000, K).astype(np.int32)
        mult = np.full(K, 2 ** 24 // (C4 * R * S * 64 * 40), np.int32)
        w8 = ic.Int8Conv2dWorkload(1, C4, H, W, K, R, S, stride, pad)
        cfgs = int8_configs(w8, sweep, li)
        t8 = [time_int8(w8, c, x, wt, b, mult, threads) for c in cfgs]
        make = common.ort_conv(threads)
        t_ortf = common.best_time(make(data, weight, stride, pad)) if make else math.nan
        q = ort_qlinearconv(threads, x, wt, np.full(K, 0.01), stride, pad)
        t_orti = common.best_time(q) if q else math.nan
        rec = {"layer": li, "shape": LAYERS[li - 1], "threads": threads,
               "ms": {"fp32_default": t32[0] * 1e3, "fp32_best": min(t32) * 1e3,
                      "int8_default": t8[0] * 1e3, "int8_best": min(t8) * 1e3,
                      "ort_fp32": t_ortf * 1e3, "ort_int8": t_orti * 1e3},
               "int8_best_config": cfgs[int(np.argmin(t8))], "int8_path": w8.resolved_path}
        rec["int8_vs_fp32_best"] = min(t32) / min(t8)
        rec["int8_vs_ort_int8"] = t_orti / min(t8)
        results.append(rec)
        m = rec["ms"]
        rows.append([li, f"{C}x{H} k{K} {R}x{S}/{stride}", threads, f"{m['fp32_best']:.2f}",
                     f"{m['int8_best']:.2f}", f"{m['ort_fp32']:.2f}", f"{m['ort_int8']:.2f}",
                     f"{rec['int8_vs_fp32_best']:.2f}x", f"{rec['int8_vs_ort_int8']:.2f}x"])
        print(rows[-1], flush=True)


def sqnr_chain(n_inputs: int) -> dict[str, float]:
    """SQNR (dB) of the logits of an int8 conv chain per calibration method."""
    rng = np.random.default_rng(1)
    chans, size, depth = 32, 16, 5
    convs = [(rng.standard_normal((chans, 4 if i == 0 else chans, 3, 3)) *
              math.sqrt(2 / ((4 if i == 0 else chans) * 9))).astype(np.float32)
             for i in range(depth)]
    biases = [(rng.standard_normal(chans) * 0.05).astype(np.float32) for _ in range(depth)]
    fc = (rng.standard_normal((10, chans)) * 0.3).astype(np.float32)

    def fp32(x):
        acts = [x]
        for wgt, b in zip(convs, biases):
            y = conv2d.reference(acts[-1], wgt, 1, 1) + b.reshape(1, -1, 1, 1)
            acts.append(np.maximum(y, 0).astype(np.float32))
        return acts, acts[-1].mean(axis=(2, 3)) @ fc.T

    calib = [rng.standard_normal((1, 4, size, size)).astype(np.float32) for _ in range(32)]
    tests = [rng.standard_normal((1, 4, size, size)).astype(np.float32)
             for _ in range(n_inputs)]
    observers = [Observer() for _ in range(depth + 1)]
    for x in calib:
        for obs, a in zip(observers, fp32(x)[0]):
            obs.update(a)
    out = {}
    for method in METHODS:
        ranges = [o.range(method, percentile=99.99) for o in observers]
        layers = [quantize_layer(f"conv{i}", "conv", convs[i], biases[i], ranges[i],
                                 ranges[i + 1], stride=1, pad=1, relu=True)
                  for i in range(depth)]
        runs = [q.build((1, q.weight.shape[1], size, size)) for q in layers]
        sig = noise = 0.0
        for x in tests:
            ref = fp32(x)[1]
            h = layers[0].x.quantize(x)
            for run in runs:
                h = run(h)
            got = layers[-1].y.dequantize(h).mean(axis=(2, 3)) @ fc.T
            sig += float(np.sum(ref.astype(np.float64) ** 2))
            noise += float(np.sum((ref - got).astype(np.float64) ** 2))
        out[method] = 10 * math.log10(sig / max(noise, 1e-30))
        print(f"SQNR {method}: {out[method]:.1f} dB", flush=True)
    return out


def interleaved(fns: dict[str, object], rounds: int, number: int) -> dict[str, float]:
    """Best mean seconds of each ``fn()`` over ``rounds`` rounds of ``number`` calls, the
    runtimes taking turns in every round (so a burst of load on the shared cores hits them
    alike, and a ratio is measured under the same conditions)."""
    import time as _time
    for fn in fns.values():
        fn()  # warm-up (and the thread pools started)
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = _time.perf_counter()
            for _ in range(number):
                fn()
            best[k] = min(best[k], (_time.perf_counter() - t0) / number)
    return best


def network_rows(threads_list: list[int], image: int, n_calib: int, n_sqnr: int,
                 records: str | None = None, rounds: int = 7) -> dict:
    """Whole ResNet-18: tiletune int8 (per calibration method) vs tiletune fp32 vs
    onnxruntime's QDQ int8 model; latency (ms) per thread count, the three interleaved,
    and SQNR (dB). ``records``: tuning records applied to both tiletune builds."""
    import logging
    import tempfile
    import time as _time

    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from tiletune import frontend, graph
    from tiletune.compress import quantize_graph
    from tiletune.compress.quantize import sqnr_db
    from tiletune.frontend.builder import resnet18
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice
    model = resnet18(seed=0, image=image)
    g = frontend.from_onnx(model)
    rng = np.random.default_rng(5)
    shape = (1, 3, image, image)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(n_calib)]
    tests = [rng.standard_normal(shape).astype(np.float32) for _ in range(n_sqnr)]
    t0 = _time.perf_counter()
    fp32 = graph.build(g, records=records)
    print(f"fp32 build {_time.perf_counter() - t0:.1f} s", flush=True)
    ref = [fp32(x) for x in tests]
    path = int8dot.best_path()
    out: dict = {"image": image, "calib_inputs": n_calib, "sqnr_inputs": n_sqnr,
                 "int8_path": path, "weight_bits": int8dot.weight_bits(path),
                 "records": records, "latency_ms": {}, "sqnr_db": {}, "fp32_operators": None}
    int8 = {}
    # the default (u8 activations, 7-bit weights on a vpmaddubsw path) per method, and on
    # such a path the alternative it replaced: 7-bit activations x 8-bit weights (KL)
    modes = [(m, m, {}) for m in METHODS]
    if int8dot.weight_bits(path) == 7:
        modes.append(("kl, 7-bit activations x 8-bit weights", "kl",
                      {"qmax": 127, "weight_bits": 8}))
    for label, method, extra in modes:
        t0 = _time.perf_counter()
        qg = quantize_graph(g, calib, method=method, **extra)
        t1 = _time.perf_counter()
        int8[label] = graph.build(qg.graph, records=records)
        paths = sorted({layer.path() for layer in qg.layers.values()})
        print(f"{label}: quantize {t1 - t0:.1f} s, build {_time.perf_counter() - t1:.1f} s; "
              f"{len(qg.layers)} int8 layers on {paths}, {len(qg.fp32)} fp32 operators",
              flush=True)
        if not extra:
            out["fp32_operators"] = len(qg.fp32)
        sig = np.concatenate([r.ravel() for r in ref])
        got = np.concatenate([int8[label](x).ravel() for x in tests])
        out["sqnr_db"][label] = sqnr_db(sig, got)
        print(f"SQNR {label} (ResNet-18 logits, {n_sqnr} inputs): "
              f"{out['sqnr_db'][label]:.1f} dB", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "f.onnx"), os.path.join(tmp, "q.onnx")
        onnx.save(model, src)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter([{model.graph.input[0].name: x} for x in calib])

            def get_next(self):
                return next(self.it, None)

        quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        reduce_range=True)
        qdq = onnx.load(dst)
    x = tests[0]
    best = max(METHODS, key=out["sqnr_db"].get)
    rows = []
    for threads in threads_list:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(qdq.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        m = int8[best]
        fp32.set_num_threads(threads)
        m.set_num_threads(threads)
        t = interleaved({"ort": lambda: sess.run(None, {name: x}),  # noqa: B023
                         "fp32": lambda: fp32(x), "int8": lambda: m(x)},  # noqa: B023
                        rounds, 3)
        t_ort, t_fp32, t_int8 = t["ort"], t["fp32"], t["int8"]
        out["latency_ms"][f"{threads}t"] = {"tt_int8": t_int8 * 1e3, "tt_fp32": t_fp32 * 1e3,
                                            "ort_int8_qdq": t_ort * 1e3,
                                            "int8_method": best,
                                            "interleaved_rounds": rounds}
        rows.append([threads, f"{t_int8 * 1e3:.1f}", f"{t_fp32 * 1e3:.1f}",
                     f"{t_ort * 1e3:.1f}", f"{t_fp32 / t_int8:.2f}", f"{t_ort / t_int8:.2f}"])
    common.print_table(f"ResNet-18 ({image}x{image}) whole network, int8 ({best} calibration)"
                       " (ms)", ["thr", "tt int8", "tt fp32", "ort int8 QDQ",
                                 "fp32/int8", "ort/int8"], rows)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--layers", default="1-12", help="e.g. 1-12 or 2,6,9")
    p.add_argument("--sweep", type=int, default=4, help="random configs per template")
    p.add_argument("--sqnr-inputs", type=int, default=100)
    p.add_argument("--network", action="store_true", help="also the whole ResNet-18")
    p.add_argument("--network-only", action="store_true")
    p.add_argument("--image", type=int, default=224)
    p.add_argument("--calib", type=int, default=8, help="calibration inputs (network)")
    p.add_argument("--net-sqnr-inputs", type=int, default=100)
    p.add_argument("--records", default=None,
                   help="tuning records for the whole-network builds (fp32 and int8)")
    args = p.parse_args()
    if args.network_only:
        net = network_rows(args.threads, args.image, args.calib, args.net_sqnr_inputs,
                           args.records)
        common.RESULTS.mkdir(exist_ok=True)
        path = common.RESULTS / "int8_network.json"
        path.write_text(json.dumps(net, indent=1, default=str))
        print(f"wrote {path}")
        return
    sel = []
    for part in args.layers.split(","):
        lo, _, hi = part.partition("-")
        sel += list(range(int(lo), int(hi or lo) + 1))
    print(f"int8 path: {int8dot.best_path()}")
    results, rows = [], []
    for threads in args.threads:
        layer_rows(sel, threads, args.sweep, results, rows)
    common.print_table("ResNet-18 conv layers: int8 vs fp32 (ms, best of sweep)",
                       ["#", "layer", "thr", "tt fp32", "tt int8", "ort fp32", "ort int8",
                        "int8/fp32", "int8/ort int8"], rows)
    summary = {}
    for threads in args.threads:
        three = [r for r in results if r["threads"] == threads and r["shape"][4] == 3]
        summary[f"geomean_3x3_int8_vs_fp32_{threads}t"] = common.geomean(
            [r["int8_vs_fp32_best"] for r in three])
        summary[f"geomean_3x3_int8_vs_ort_int8_{threads}t"] = common.geomean(
            [r["int8_vs_ort_int8"] for r in three])
    for k, v in summary.items():
        print(f"{k}: {v:.2f}")
    sqnr = sqnr_chain(args.sqnr_inputs) if args.sqnr_inputs else {}
    net = network_rows(args.threads, args.image, args.calib, args.net_sqnr_inputs,
                       args.records) if args.network else None
    common.RESULTS.mkdir(exist_ok=True)
    path = common.RESULTS / "int8.json"
    path.write_text(json.dumps({"int8_path": int8dot.best_path(), "layers": results,
                               "summary": summary, "sqnr_db": sqnr, "network": net},
                               indent=1, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
