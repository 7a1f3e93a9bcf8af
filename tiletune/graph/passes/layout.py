"""Layout planning: activations stay channel-blocked (NCHW[x]c) between kernels that can
read and write that layout; a ``layout_transform`` node is inserted only where a consumer
needs another layout. Weights are packed at compile time by the conv lowering.

For each node in topological order:

* conv2d / dense ask ``lower_conv.conv_plan`` (algorithm, tuned or default config): the
  NCHWc template reads NCHW[ic_bn]c (or plain NCHW, packing inside the kernel, when its
  producer is plain) and writes NCHW[oc_bn]c; depthwise keeps its producer's block; dense
  and the generic conv are plain;
* qconv2d / qdense (int8) ask ``qops.int8_plan`` (tuned or default config), plain u8;
* relu/clip, pooling and pad keep their input's layout; add/mul keep it when every
  activation operand has the output's full 4-D shape (constants are laid out to match);
* everything else (flatten, reshape, concat, softmax, transpose, matmul) is plain, and so
  are the graph's outputs.

Before / after (oc_bn of conv1 is 16, conv2 reads ic_bn 8)::

    %c1 = conv2d(%x, ...) : float32[1, 64, 56, 56] NCHW16c
    %t  = layout_transform(%c1) layout=NCHW8c : float32[1, 64, 56, 56] NCHW8c
    %c2 = conv2d(%t, ...)  : ...
"""
from __future__ import annotations

from typing import Any

from tiletune.graph import qops
from tiletune.graph.ir import Graph, blocked
from tiletune.graph.lower_conv import conv_plan
from tiletune.graph.records import TunedConfigs

FOLLOW_INPUT = ("relu", "clip", "max_pool", "avg_pool", "global_avg_pool", "pad")


def plan_layouts(g: Graph, ctx: Any = None) -> None:
    configs = getattr(ctx, "configs", None) or TunedConfigs()
    block: dict[str, int] = {}
    required: dict[str, list[int | None]] = {}
    for n in g.topo():
        d = g.node(n)
        op, ins = d["op"], d["inputs"]
        if op in ("input", "constant"):
            block[n] = 0
            continue
        acts = [i for i in ins if g.op(i) != "constant"]
        if op in ("conv2d", "dense"):
            plan = conv_plan(g, n, configs, block[ins[0]] if op == "conv2d" else 0)
            d["plan"] = plan
            out = plan.out_block
            req = [plan.in_block] + [None] * (len(ins) - 1)
            if "residual" in [s[0] for s in d["attrs"].get("epilogue", ())]:
                req[-1] = out
        elif op in ("qconv2d", "qdense"):  # int8 kernels: plain u8 in and out
            d["plan"] = qops.int8_plan(g, n, configs)
            out, req = 0, [0]
        elif op in FOLLOW_INPUT:
            out = block[ins[0]]
            req = [out]
        elif op in ("add", "mul") and len(g.type(n).shape) == 4 and acts and all(
                g.type(i).shape == g.type(n).shape for i in acts):
            out = next((block[i] for i in acts if block[i]), 0)
            req = [None if g.op(i) == "constant" else out for i in ins]
        else:
            out = 0
            req = [None if g.op(i) == "constant" else 0 for i in ins]
        block[n] = out
        required[n] = req
        g.set_layout(n, blocked(out))
    transforms: dict[tuple[str, int], str] = {}

    def convert(src: str, want: int) -> str:
        if block[src] == want:
            return src
        if (src, want) not in transforms:
            t = g.add(g.unique_name(f"{src}_to_{blocked(want) or 'NCHW'}"), "layout_transform",
                      [src], {"layout": blocked(want)})
            block[t] = want
            transforms[src, want] = t
        return transforms[src, want]

    for n, req in required.items():
        ins = g.node(n)["inputs"]
        new = [i if r is None else convert(i, r) for i, r in zip(ins, req)]
        if new != ins:
            g.set_inputs(n, new)
    g.outputs = [convert(o, 0) for o in g.outputs]
