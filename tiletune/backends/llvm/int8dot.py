"""u8 x s8 -> s32 dot products of four bytes per 32-bit lane, by instruction-set path.

``Call("dot_u8s8_<path>", (a, b), "int32xN")``: every int32 lane of ``a`` holds four
unsigned bytes, the same lane of ``b`` four signed bytes; the result lane is
``sum_j u8(a)[j] * s8(b)[j]``. An integer ``acc + call`` is fused into one accumulate
(``vpdpbusd`` adds into its destination). Paths:

    vnni      vpdpbusd (AVX512-VNNI zmm/ymm, or AVX-VNNI ymm)        exact
    avx512bw  vpmaddubsw + vpmaddwd (zmm), ymm pieces via AVX2        exact if 2|a||b| < 2**15
    avx2      vpmaddubsw + vpmaddwd (ymm), xmm pieces via SSSE3       exact if 2|a||b| < 2**15
    avx2_s16  bytes widened to int16, vpmaddwd, pair add (ymm)        exact
    generic   zext/sext, mul, add (LLVM picks the instructions)       exact

``vpmaddubsw`` adds two u8 x s8 products in *saturating* int16: 255 * -128 * 2 = -65280
does not fit. Those paths are exact when one operand gives up a bit: 7-bit weights
(``|w| <= 64``, onnxruntime's ``reduce_range``: 255 * 64 * 2 = 32640) with full u8
activations - the quantizer's default on them (``weight_bits``) - or 7-bit activations
(``<= 127``: 127 * 128 * 2 = 32512) with full s8 weights (``activation_max``). The exact
generic path measured 17-22x slower than ``avx2`` on ResNet-18's 3x3 layers (Zen 3), so
the saturating paths with 7-bit weights are the default where VNNI is missing; a layer
with 8-bit weights and full u8 activations (a QDQ model quantized without reduce_range)
takes ``avx2_s16``, exact: measured 3.5-4.3x slower than ``avx2`` and 5x faster than
``generic`` on the same layers, so 7-bit weights (same instructions as 7-bit activations,
full speed) are the quantizer's choice.

Emitting a path the target cannot execute would abort LLVM's instruction selection, so
the path's features are checked against the host (or the ``cross_features`` override used
to read the assembly of another CPU's code).
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from tiletune.backends.llvm import target
from tiletune.errors import BuildError
from tiletune.ir import dtype as dt

PREFIX = "dot_u8s8_"
PATHS = ("vnni", "avx512bw", "avx2", "avx2_s16", "generic")
_CROSS: contextvars.ContextVar[frozenset[str] | None] = contextvars.ContextVar(
    "int8dot_cross_features", default=None)


def call_name(path: str) -> str:
    if path not in PATHS:
        raise BuildError(f"unknown int8 dot-product path {path!r}; known: {PATHS}")
    return PREFIX + path


def is_dot(name: str) -> bool:
    return name.startswith(PREFIX)


SATURATING = ("avx512bw", "avx2")


def activation_max(path: str, weight_abs: int = 128) -> int:
    """Largest activation byte the path multiplies exactly by weights of magnitude up to
    ``weight_abs`` (see the module docstring): 255, or 127 for full s8 weights on the
    saturating paths."""
    if path not in SATURATING:
        return 255
    return min(255, 32767 // (2 * max(1, weight_abs)))


def weight_bits(path: str) -> int:
    """Bits of the symmetric weights the quantizer uses on ``path`` so that full u8
    activations are exact: 7 (``|w| <= 63``) on the saturating paths, else 8."""
    return 7 if path in SATURATING else 8


def weight_abs(weight: Any) -> int:
    """Largest ``|w|`` of an int8 weight array (0 for an empty one)."""
    import numpy as np
    w = np.asarray(weight)
    return int(np.abs(w.astype(np.int16)).max()) if w.size else 0


def describe(path: str) -> str:
    """One line on how ``path`` multiplies (for ``tiletune doctor``)."""
    return {"vnni": "vpdpbusd, exact on u8 activations x s8 weights",
            "avx512bw": "vpmaddubsw+vpmaddwd (zmm, no VNNI): u8 activations x 7-bit weights "
                        "(reduce_range) keep the int16 pair sums exact",
            "avx2": "vpmaddubsw+vpmaddwd (ymm, no VNNI, no AVX-512): u8 activations x 7-bit "
                    "weights (reduce_range) keep the int16 pair sums exact",
            "avx2_s16": "bytes widened to int16 + vpmaddwd: exact on any u8 x s8, slower",
            "generic": "widen + multiply (no AVX2): exact, slow"}[path]


def feature_set(features: str | None = None) -> frozenset[str]:
    """Enabled features of an LLVM feature string (``+avx2,-avx512f,...``)."""
    text = target.host()[2] if features is None else features
    return frozenset(f[1:] for f in text.split(",") if f.startswith("+"))


def _target_features() -> frozenset[str]:
    cross = _CROSS.get()
    return cross if cross is not None else feature_set()


def exact_path(features: frozenset[str] | None = None) -> str:
    """The fastest path exact on any u8 x s8 operands (VNNI, else the int16 one)."""
    best = best_path(features)
    if best not in SATURATING:
        return best
    return "avx2_s16" if supported("avx2_s16", features) else "generic"


def best_path(features: frozenset[str] | None = None) -> str:
    """The fastest path the CPU with ``features`` (default: this host) executes."""
    f = feature_set() if features is None else features
    if "avx512vnni" in f or "avxvnni" in f:
        return "vnni"
    if "avx512bw" in f:
        return "avx512bw"
    if "avx2" in f:
        return "avx2"
    return "generic"


def supported(path: str, features: frozenset[str] | None = None) -> bool:
    f = feature_set() if features is None else features
    return {"vnni": "avx512vnni" in f or "avxvnni" in f, "avx512bw": "avx512bw" in f,
            "avx2": "avx2" in f, "avx2_s16": "avx2" in f, "generic": True}[path]


@contextlib.contextmanager
def cross_features(features: str) -> Iterator[None]:
    """Generate code for a CPU with ``features`` (for reading its IR/assembly, not running)."""
    token = _CROSS.set(feature_set(features))
    try:
        yield
    finally:
        _CROSS.reset(token)


def emit(gen: Any, call: Any, acc: str | None) -> str:
    """The dot product ``call`` (plus ``acc``, an SSA int32 value, when fused)."""
    path = call.name[len(PREFIX):]
    if path not in PATHS:
        raise BuildError(f"unknown int8 dot-product intrinsic {call.name}; paths: {PATHS}")
    if len(call.args) != 2 or any(dt.element(a.dtype) != "int32" for a in call.args):
        raise BuildError(f"{call.name} takes two int32 (4 x 8-bit packed) operands")
    feats = _target_features()
    if not supported(path, feats):
        raise BuildError(f"int8 path {path!r} needs CPU features this target lacks "
                         f"(best here: {best_path(feats)!r})")
    n = dt.lanes(call.dtype)
    a, b = gen.expr(call.args[0]), gen.expr(call.args[1])
    width = _chunk(path, n, feats)
    if width == 0:
        out = _generic(gen, a, b, n)
        return out if acc is None else gen.fn.op(f"add {_vt(n)} {out}, {acc}")
    pieces = []
    for i in range(0, n, width):
        pa, pb = _piece(gen, a, n, i, width), _piece(gen, b, n, i, width)
        pc = None if acc is None else _piece(gen, acc, n, i, width)
        pieces.append(_native(gen, path, pa, pb, pc, width))
    return _concat(gen, pieces, width)


def _vt(n: int) -> str:
    return "i32" if n == 1 else f"<{n} x i32>"


def _chunk(path: str, n: int, feats: frozenset[str]) -> int:
    """Lanes per native instruction (0: use the generic sequence)."""
    if path == "vnni":
        widths = ([16] if "avx512vnni" in feats else []) + [8, 4]
    elif path == "avx512bw":
        widths = [16, 8, 4]
    elif path in ("avx2", "avx2_s16"):
        widths = [8, 4]
    else:
        return 0
    return next((w for w in widths if n % w == 0), 0)


def _piece(gen: Any, v: str, n: int, start: int, width: int) -> str:
    if n == width:
        return v
    idx = ", ".join(f"i32 {start + i}" for i in range(width))
    return gen.fn.op(f"shufflevector {_vt(n)} {v}, {_vt(n)} poison, <{width} x i32> <{idx}>")


def _concat(gen: Any, pieces: list[str], width: int) -> str:
    while len(pieces) > 1:
        nxt = []
        for x, y in zip(pieces[::2], pieces[1::2]):
            idx = ", ".join(f"i32 {i}" for i in range(2 * width))
            nxt.append(gen.fn.op(f"shufflevector {_vt(width)} {x}, {_vt(width)} {y}, "
                                 f"<{2 * width} x i32> <{idx}>"))
        pieces, width = nxt, 2 * width
    return pieces[0]


def _native(gen: Any, path: str, a: str, b: str, acc: str | None, w: int) -> str:
    fn, vt, bt = gen.fn, _vt(w), f"<{4 * w} x i8>"
    if path == "avx2_s16":
        return _s16(gen, a, b, acc, w)
    if path == "vnni":
        bits = {16: "512", 8: "256", 4: "128"}[w]
        f = gen.mod.declare(f"llvm.x86.avx512.vpdpbusd.{bits}",
                            f"declare {vt} @llvm.x86.avx512.vpdpbusd.{bits}({vt}, {vt}, {vt})")
        return fn.op(f"call {vt} {f}({vt} {acc or 'zeroinitializer'}, {vt} {a}, {vt} {b})")
    ub, sb = fn.op(f"bitcast {vt} {a} to {bt}"), fn.op(f"bitcast {vt} {b} to {bt}")
    ht = f"<{2 * w} x i16>"
    if w == 16:
        mub, mwd = "llvm.x86.avx512.pmaddubs.w.512", "llvm.x86.avx512.pmaddw.d.512"
    elif w == 8:
        mub, mwd = "llvm.x86.avx2.pmadd.ub.sw", "llvm.x86.avx2.pmadd.wd"
    else:
        mub, mwd = "llvm.x86.ssse3.pmadd.ub.sw.128", "llvm.x86.sse2.pmadd.wd"
    f1 = gen.mod.declare(mub, f"declare {ht} @{mub}({bt}, {bt})")
    f2 = gen.mod.declare(mwd, f"declare {vt} @{mwd}({ht}, {ht})")
    pairs = fn.op(f"call {ht} {f1}({bt} {ub}, {bt} {sb})")
    quads = fn.op(f"call {vt} {f2}({ht} {pairs}, {ht} splat (i16 1))")
    return quads if acc is None else fn.op(f"add {vt} {quads}, {acc}")


def _s16(gen: Any, a: str, b: str, acc: str | None, w: int) -> str:
    """Exact: bytes widened to int16 (u8 zero-, s8 sign-extended), ``vpmaddwd`` on each
    half (int32 pair sums, never saturating), then each lane's two pairs added."""
    fn, vt, bt, st = gen.fn, _vt(w), f"<{4 * w} x i8>", f"<{4 * w} x i16>"
    ht = f"<{2 * w} x i16>"
    mwd = "llvm.x86.avx2.pmadd.wd" if w == 8 else "llvm.x86.sse2.pmadd.wd"
    f = gen.mod.declare(mwd, f"declare {vt} @{mwd}({ht}, {ht})")
    az = fn.op(f"zext {bt} {fn.op(f'bitcast {vt} {a} to {bt}')} to {st}")
    bs = fn.op(f"sext {bt} {fn.op(f'bitcast {vt} {b} to {bt}')} to {st}")
    pairs = []
    for half in (0, 1):
        idx = ", ".join(f"i32 {half * 2 * w + i}" for i in range(2 * w))
        ah = fn.op(f"shufflevector {st} {az}, {st} poison, <{2 * w} x i32> <{idx}>")
        bh = fn.op(f"shufflevector {st} {bs}, {st} poison, <{2 * w} x i32> <{idx}>")
        pairs.append(fn.op(f"call {vt} {f}({ht} {ah}, {ht} {bh})"))
    even = ", ".join(f"i32 {2 * i}" for i in range(w))
    odd = ", ".join(f"i32 {2 * i + 1}" for i in range(w))
    e = fn.op(f"shufflevector {vt} {pairs[0]}, {vt} {pairs[1]}, <{w} x i32> <{even}>")
    o = fn.op(f"shufflevector {vt} {pairs[0]}, {vt} {pairs[1]}, <{w} x i32> <{odd}>")
    out = fn.op(f"add {vt} {e}, {o}")
    return out if acc is None else fn.op(f"add {vt} {out}, {acc}")


def _generic(gen: Any, a: str, b: str, n: int) -> str:
    """Exact: widen the bytes to i32, multiply, add each lane's four products."""
    fn, vt, bt, wt = gen.fn, _vt(n), f"<{4 * n} x i8>", f"<{4 * n} x i32>"
    ua = fn.op(f"zext {bt} {fn.op(f'bitcast {vt} {a} to {bt}')} to {wt}")
    sb = fn.op(f"sext {bt} {fn.op(f'bitcast {vt} {b} to {bt}')} to {wt}")
    prod = fn.op(f"mul {wt} {ua}, {sb}")
    out = None
    for j in range(4):
        idx = ", ".join(f"i32 {4 * i + j}" for i in range(n))
        part = fn.op(f"shufflevector {wt} {prod}, {wt} poison, <{n} x i32> <{idx}>")
        if n == 1:
            part = fn.op(f"extractelement <1 x i32> {part}, i64 0")
        out = part if out is None else fn.op(f"add {vt} {out}, {part}")
    return out


def fused_add(gen: Any, e: Any) -> str | None:
    """``acc + dot(...)`` or ``dot(...) + acc`` as one accumulate; None for other adds."""
    from tiletune.ir.expr import Call
    if e.op != "add":
        return None
    for call, other in ((e.b, e.a), (e.a, e.b)):
        if isinstance(call, Call) and is_dot(call.name):
            return emit(gen, call, gen.expr(other))
    return None


def assembly(func: Any, features: str, cpu: str = "x86-64") -> str:
    """Assembly of a lowered PrimFunc for a CPU with ``features`` (never executed)."""
    import llvmlite.binding as llvm

    from tiletune.backends.llvm.codegen import generate
    with cross_features(features):
        kernel = generate(func)
    target.init()
    mod = llvm.parse_assembly(kernel.text)
    mod.verify()
    mod.triple = target.host()[0]
    tm = llvm.Target.from_triple(mod.triple).create_target_machine(
        cpu=cpu, features=features, opt=3)
    return tm.emit_assembly(mod)
