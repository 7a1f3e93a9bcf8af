"""Convolutions and dense layers of a graph: which template runs each, and its kernel.

``conv_plan(g, node, configs)`` is the one dispatch point: it picks the algorithm from the
workload (and the tuned records) and says which layouts the kernel reads and writes:

* ``nchwc``      - groups 1, square stride, symmetric pads, no dilation: NCHW[ic_bn]c in
                   (or NCHW with the pack fused when the producer is plain), NCHW[oc_bn]c
                   out, epilogue fused, weights packed (Winograd: transformed) at compile
                   time. The algorithm is a choice (``schedules.conv2d_auto`` fused configs
                   ``{"algorithm": ..., "schedule": ...}``): direct NCHWc
                   (``schedules.conv2d``), Winograd (stride-1 3x3) or im2col + GEMM, from
                   the ``conv2d_auto_fused`` records, else ``conv2d_nchwc_fused`` records
                   (direct), else the heuristic ``conv2d_auto.fused_default``;
* ``depthwise``  - ``schedules.depthwise_nchwc`` (groups == channels, multiplier 1): any
                   strides, pads, dilations; the block follows the producer's layout;
* ``generic``    - a direct grouped/dilated convolution in plain NCHW (any attributes): the
                   correct fallback for what the fast templates do not cover.

New algorithms (Winograd, im2col, grouped templates) plug in as another kind here.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

import tiletune as tt
from tiletune.graph.ir import Graph
from tiletune.graph.kernels import KernelSpec
from tiletune.graph.records import TunedConfigs
from tiletune.schedules import conv2d, conv2d_auto, dense, depthwise_nchwc
from tiletune.schedules.epilogue import Epilogue
from tiletune.schedules.machine import divisors, host_machine


@dataclass(frozen=True)
class ConvPlan:
    kind: str                      # "nchwc" | "depthwise" | "generic" | "dense"
    config: dict[str, Any] | None  # nchwc: {"algorithm": ..., "schedule": ...}
    in_block: int                  # channel block of the data operand (0: plain)
    out_block: int                 # channel block of the output (0: plain)
    template: str = ""             # tuning template of the kernel ("" if not tunable)
    task_args: tuple = ()
    tuned: bool = False


def epilogue_of(g: Graph, node: str) -> Epilogue:
    return Epilogue(tuple(g.node(node)["attrs"].get("epilogue", ())))


def _extras(g: Graph, node: str) -> tuple[str | None, str | None]:
    """The bias and residual operands of a conv/dense node (None when absent)."""
    d = g.node(node)
    extra = iter(d["inputs"][2:])
    steps = [s[0] for s in d["attrs"].get("epilogue", ())]
    bias = next(extra) if "bias" in steps else None
    residual = next(extra) if "residual" in steps else None
    return bias, residual


def conv_kind(g: Graph, node: str) -> str:
    a = g.node(node)["attrs"]
    x, w = g.type(g.node(node)["inputs"][0]), g.type(g.node(node)["inputs"][1])
    groups = a.get("groups", 1)
    (sh, sw), (dh, dw), pads = a["strides"], a["dilations"], a["pads"]
    if groups == 1 and sh == sw and dh == dw == 1 and len(set(pads)) == 1:
        return "nchwc"
    if groups == x.shape[1] == w.shape[0] and w.shape[1] == 1:
        return "depthwise"
    return "generic"


def conv2d_workload(g: Graph, node: str) -> conv2d.Conv2dWorkload:
    a = g.node(node)["attrs"]
    n, c, h, w = g.type(g.node(node)["inputs"][0]).shape
    k, _, r, s = g.type(g.node(node)["inputs"][1]).shape
    return conv2d.Conv2dWorkload(n, c, h, w, k, r, s, a["strides"][0], a["pads"][0],
                                 g.type(node).dtype)


def depthwise_workload(g: Graph, node: str, block: int) -> depthwise_nchwc.DepthwiseNCHWcWorkload:
    a = g.node(node)["attrs"]
    n, c, h, w = g.type(g.node(node)["inputs"][0]).shape
    _, _, r, s = g.type(g.node(node)["inputs"][1]).shape
    return depthwise_nchwc.DepthwiseNCHWcWorkload(
        n, c, h, w, r, s, block, *a["strides"], *a["pads"], *a["dilations"], g.type(node).dtype)


def channel_block(c: int) -> int:
    """The default channel block of a blocked activation: the SIMD width if it divides."""
    lanes = host_machine().vector_lanes
    return max(d for d in divisors(c) if d <= lanes)


def conv_plan(g: Graph, node: str, configs: TunedConfigs, producer_block: int) -> ConvPlan:
    """Algorithm, config and layouts of a conv2d or dense node."""
    epi = epilogue_of(g, node)
    if g.op(node) == "dense":
        (m, k), (n, _) = g.type(g.node(node)["inputs"][0]).shape, g.type(
            g.node(node)["inputs"][1]).shape
        w = dense.DenseWorkload(m, n, k, g.type(node).dtype)
        args = (m, n, k, epi.key(), w.dtype)
        cfg = configs.get("dense_fused", args) or configs.get("dense", (m, n, k, w.dtype))
        tuned = cfg is not None and _fits(dense, w, cfg)
        return ConvPlan("dense", cfg if tuned else dense.default_config(w), 0, 0,
                        "dense_fused", args, tuned)
    kind = conv_kind(g, node)
    if kind == "nchwc":
        # the channel blocks are fixed here (the input's block is its producer's, the
        # output's the default for the shape), so neighbouring convs need no transform; the
        # tuned knobs are the algorithm and its schedule with those blocks
        w = conv2d_workload(g, node)
        default = conv2d.default_config(w)
        ic_ok = producer_block in conv2d.space(w)["ic_bn"]
        layout_in = "NCHWc" if producer_block and ic_ok else "NCHW"
        ic_bn = producer_block if layout_in == "NCHWc" else default["ic_bn"]
        oc_bn = default["oc_bn"]
        args = (w.N, w.C, w.H, w.W, w.K, w.R, w.S, w.stride, w.pad, layout_in, ic_bn, oc_bn,
                epi.key(), w.dtype)
        cfg, tuned = _algorithm_choice(configs, w, args, ic_bn, oc_bn)
        return ConvPlan(kind, cfg, ic_bn if layout_in == "NCHWc" else 0, oc_bn,
                        "conv2d_auto_fused", args, tuned)
    if kind == "depthwise":
        c = g.type(node).shape[1]
        block = producer_block if producer_block and c % producer_block == 0 \
            else channel_block(c)
        wl = depthwise_workload(g, node, block)
        args = (*dataclasses.astuple(wl)[:-1], epi.key(), wl.dtype)
        cfg = configs.get("depthwise_nchwc", args)
        tuned = cfg is not None and _fits(depthwise_nchwc, wl, cfg)
        return ConvPlan(kind, cfg if tuned else depthwise_nchwc.default_config(wl), block,
                        block, "depthwise_nchwc", args, tuned)
    return ConvPlan("generic", None, 0, 0)


def _algorithm_choice(configs: TunedConfigs, w: conv2d.Conv2dWorkload, args: tuple,
                      ic_bn: int, oc_bn: int) -> tuple[dict[str, Any], bool]:
    """The faster of the node's tuned ``conv2d_auto_fused`` and direct (``conv2d_nchwc_fused``,
    then plain ``conv2d_nchwc``) records that fit the blocks, else the heuristic default."""
    found: list[tuple[float, dict[str, Any]]] = []
    auto = configs.get_with_cost("conv2d_auto_fused", args)
    if auto is not None and conv2d_auto.fused_is_valid(w, auto[1], ic_bn, oc_bn):
        found.append(auto)
    plain = (w.N, w.C, w.H, w.W, w.K, w.R, w.S, w.stride, w.pad, w.dtype)
    for template, targs in (("conv2d_nchwc_fused", args), ("conv2d_nchwc", plain)):
        hit = configs.get_with_cost(template, targs)
        if hit is not None:
            cand = {**hit[1], "ic_bn": ic_bn, "oc_bn": oc_bn}
            if _fits(conv2d, w, cand):
                found.append((hit[0], {"algorithm": "nchwc", "schedule": cand}))
                break
    if found:
        return min(found, key=lambda cc: cc[0])[1], True
    return conv2d_auto.fused_default(w, ic_bn, oc_bn), False


def _fits(module: Any, w: Any, cfg: dict[str, Any]) -> bool:
    space = module.space(w)
    return set(cfg) == set(space) and all(cfg[k] in space[k] for k in space) and bool(
        module.is_valid(w, cfg))


# ---------------------------------------------------------------------------- kernels
def _operands(g: Graph, node: str, bias_arr: np.ndarray | None) -> list[tuple[str, Any]]:
    bias, residual = _extras(g, node)
    out: list[tuple[str, Any]] = []
    if bias is not None:
        out.append(("const", np.ascontiguousarray(bias_arr, dtype=g.type(node).dtype)))
    if residual is not None:
        out.append(("act", residual))
    return out


def lower_conv2d(g: Graph, node: str) -> KernelSpec:
    plan: ConvPlan = g.node(node)["plan"]
    d = g.node(node)
    x, wname = d["inputs"][0], d["inputs"][1]
    weight = g.value(wname)
    bias, _ = _extras(g, node)
    bias_arr = g.value(bias) if bias is not None else None
    epi = epilogue_of(g, node)
    if plan.kind == "nchwc":
        w = conv2d_workload(g, node)
        cfg = plan.config
        layout_in = "NCHWc" if plan.in_block else "NCHW"
        ic_bn, oc_bn = plan.task_args[10:12]

        def make():
            return conv2d_auto.fused_schedule(w, cfg, epi, layout_in, ic_bn, oc_bn)

        args = [("act", x), ("const", conv2d_auto.pack_weight(weight, cfg))]
        key = (f"conv2d|{w.key()}|{layout_in}|{ic_bn}|{oc_bn}|{epi.key()}|"
               f"{json.dumps(cfg, sort_keys=True)}")
        return KernelSpec(key, make, args + _operands(g, node, bias_arr), w.flop,
                          (plan.template, plan.task_args))
    if plan.kind == "depthwise":
        wl = depthwise_workload(g, node, plan.in_block)
        cfg = plan.config

        def make():
            return depthwise_nchwc.schedule(wl, cfg, epi)

        args = [("act", x), ("const", depthwise_nchwc.pack_weight(weight, wl.block))]
        key = f"depthwise|{wl.key()}|{epi.key()}|{sorted(cfg.items())}"
        return KernelSpec(key, make, args + _operands(g, node, bias_arr), wl.flop,
                          (plan.template, plan.task_args))
    return _lower_generic(g, node, weight, bias_arr, epi)


def lower_dense(g: Graph, node: str) -> KernelSpec:
    plan: ConvPlan = g.node(node)["plan"]
    d = g.node(node)
    (m, k), (n, _) = g.type(d["inputs"][0]).shape, g.type(d["inputs"][1]).shape
    w = dense.DenseWorkload(m, n, k, g.type(node).dtype)
    epi = epilogue_of(g, node)
    bias, _ = _extras(g, node)
    cfg = plan.config

    def make():
        return dense.schedule(w, cfg, epi)

    B = np.ascontiguousarray(g.value(d["inputs"][1]).T)
    args = [("act", d["inputs"][0]), ("const", B)]
    key = f"dense|{w.key()}|{epi.key()}|{sorted(cfg.items())}"
    return KernelSpec(key, make, args + _operands(g, node, g.value(bias) if bias else None),
                      w.flop, (plan.template, plan.task_args))


def _lower_generic(g: Graph, node: str, weight: np.ndarray, bias_arr, epi: Epilogue
                   ) -> KernelSpec:
    """Direct convolution, plain NCHW, any groups/strides/dilations/pads::

        pad = zero-padded data                                  # root, parallel
        for n, k in parallel:  for oh:  for owo:
          acc[tile] = sum_{c in group, kh, kw} pad[n, g*Cg + c, oh*sh + kh*dh,
                                                  ow*sw + kw*dw] * w[k, c, kh, kw]
          out[n, k, oh, ow] = epilogue(acc)                     # vectorized over ow
    """
    d = g.node(node)
    a = d["attrs"]
    in_t, out_t = g.type(d["inputs"][0]), g.type(node)
    N, C, H, W = in_t.shape
    K, Cg, R, S = weight.shape
    _, _, OH, OW = out_t.shape
    (sh, sw), (dh, dw) = a["strides"], a["dilations"]
    pt, pl, pb, pr = a["pads"]
    Kg = K // a.get("groups", 1)
    lanes = host_machine().vector_lanes
    dtype = out_t.dtype

    def make():
        data = tt.placeholder((N, C, H, W), dtype, name="data")
        wt = tt.placeholder((K, Cg, R, S), dtype, name="weight")
        if pt or pl or pb or pr:
            src = tt.compute((N, C, H + pt + pb, W + pl + pr), lambda n, c, h, x: (
                tt.if_then_else(tt.all(h >= pt, h < H + pt, x >= pl, x < W + pl),
                                data[n, c, tt.max(tt.min(h - pt, H - 1), 0),
                                     tt.max(tt.min(x - pl, W - 1), 0)], tt.const(0, dtype))),
                name="pad")
        else:
            src = data
        rc, rh, rw = tt.reduce_axis(Cg, "rc"), tt.reduce_axis(R, "rh"), tt.reduce_axis(S, "rw")
        conv = tt.compute((N, K, OH, OW), lambda n, k, oh, ow: tt.sum(
            src[n, (k // Kg) * Cg + rc, oh * sh + rh * dh, ow * sw + rw * dw]
            * wt[k, rc, rh, rw], axis=[rc, rh, rw]), name="conv")
        bias = tt.placeholder((K,), dtype, name="bias") if epi.has_bias else None
        residual = tt.placeholder((N, K, OH, OW), dtype, name="residual") \
            if epi.has_residual else None
        out = tt.compute((N, K, OH, OW), lambda n, k, oh, ow: epi.apply(
            conv[n, k, oh, ow], k, bias, lambda: residual[n, k, oh, ow]), name="output")
        s = tt.create_schedule(out)
        if src is not data:
            sn, sc, shh, sww = s[src].axis
            s[src].parallel(s[src].fuse(sn, sc))
        s[conv].set_scope("local")
        n, k, oh, ow = s[out].axis
        tile = lanes if OW >= lanes else OW
        owo, owi = s[out].split(ow, factor=tile)
        s[out].parallel(s[out].fuse(n, k))
        if tile == lanes:
            s[out].vectorize(owi)
        s[conv].compute_at(s[out], owo)
        cn, ck, coh, cow = s[conv].axis
        s[conv].reorder(cn, ck, coh, rc, rh, rw, cow)
        if tile == lanes:
            s[conv].vectorize(cow)
        args = [data, wt] + [t for t in (bias, residual) if t is not None] + [out]
        return s, args

    key = f"conv_generic|{in_t}|{weight.shape}|{sorted(a.items())}"
    args = [("act", d["inputs"][0]), ("const", np.ascontiguousarray(weight))]
    flop = 2 * N * K * OH * OW * Cg * R * S
    return KernelSpec(key, make, args + _operands(g, node, bias_arr), flop)
