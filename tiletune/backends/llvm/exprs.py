"""Expressions -> LLVM IR text (scalar and vector), including loads.

Semantics: integers wrap; ``floordiv``/``floormod`` round toward negative infinity for signed
ints (Python); an integer division by zero gives 0 (NumPy); float ``min``/``max`` are
``select(a < b, a, b)`` (TVM); float -> int truncates toward zero (narrow ints go through
i32, as NumPy does on x86); ``a * b + c`` on floats becomes ``llvm.fmuladd``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tiletune.backends.llvm import int8dot
from tiletune.backends.llvm.emit import (
    FunctionText,
    ModuleText,
    const_lit,
    elem_bytes,
    ll_type,
    mem_elem,
    vec,
    vector_lit,
)
from tiletune.backends.llvm.target import libmvec_isas
from tiletune.errors import BuildError
from tiletune.ir import dtype as dt
from tiletune.ir.expr import (
    Binary,
    Broadcast,
    Call,
    Cast,
    Compare,
    Const,
    Expr,
    Load,
    Not,
    Ramp,
    Select,
    Var,
    canonical,
    const_value,
)

_FARITH = {"add": "fadd", "sub": "fsub", "mul": "fmul", "div": "fdiv"}
_IARITH = {"add": "add", "sub": "sub", "mul": "mul", "and": "and", "or": "or"}
_FCMP = {"lt": "olt", "le": "ole", "gt": "ogt", "ge": "oge", "eq": "oeq", "ne": "une"}
_ICMP_S = {"lt": "slt", "le": "sle", "gt": "sgt", "ge": "sge", "eq": "eq", "ne": "ne"}
_ICMP_U = {"lt": "ult", "le": "ule", "gt": "ugt", "ge": "uge", "eq": "eq", "ne": "ne"}
_MATH = ("exp", "log", "sqrt", "tanh")
_MVEC_ISA = {("float32", 4): "b", ("float32", 8): "d", ("float32", 16): "e",
             ("float64", 2): "b", ("float64", 4): "d", ("float64", 8): "e"}


def _bool_t(dtype: str) -> str:
    return ll_type(dt.with_lanes("bool", dt.lanes(dtype)))


_PURE_TYPES = (Binary, Compare, Not, Select, Cast, Ramp, Broadcast)
_PURE_FIELDS = ("a", "b", "cond", "base", "stride", "value")


def _is_pure(e: Expr) -> bool:
    """No Load or Call below: the value depends on variables only (safe to reuse). Cached on
    the node (the IR is immutable)."""
    if isinstance(e, (Const, Var)):
        return True
    d = e.__dict__
    out = d.get("_pure")
    if out is not None:
        return out
    if not isinstance(e, _PURE_TYPES):
        out = False
    else:
        out = True
        for f in _PURE_FIELDS:
            v = d.get(f)
            if isinstance(v, Expr) and not _is_pure(v):
                out = False
                break
    object.__setattr__(e, "_pure", out)
    return out


def split_ramp(e: Expr) -> tuple[Expr, int] | None:
    """``(scalar base, constant stride)`` when vector index ``e`` is affine; else None."""
    if isinstance(e, Ramp):
        s = const_value(e.stride)
        return (e.base, int(s)) if isinstance(s, int) and not isinstance(s, bool) else None
    if isinstance(e, Broadcast):
        return e.value, 0
    if isinstance(e, Binary) and e.op in ("add", "sub"):
        a, b = split_ramp(e.a), split_ramp(e.b)
        if a is None or b is None:
            return None
        if e.op == "add":
            return Binary("add", a[0], b[0]), a[1] + b[1]
        return Binary("sub", a[0], b[0]), a[1] - b[1]
    if isinstance(e, Binary) and e.op == "mul":
        for x, y in ((e.a, e.b), (e.b, e.a)):
            c = const_value(y)
            r = split_ramp(x)
            if r is not None and isinstance(c, int) and not isinstance(c, bool):
                return Binary("mul", r[0], Const(c, r[0].dtype)), r[1] * c
    return None


class ExprGen:
    """Lowers expressions into ``self.fn``; subclasses add statements."""

    mod: ModuleText
    fn: FunctionText
    vars: dict[int, str]  # Var.uid -> SSA value
    bufs: dict[int, str]  # Buffer.uid -> pointer value

    # ------------------------------------------------------------------ entry points

    def expr(self, e: Expr) -> str:
        hit = self.fn.memo.get(id(e))
        if hit is not None and hit[0] is e:
            return hit[1]
        meth = _DISPATCH.get(type(e))
        if meth is None:
            raise BuildError(f"the LLVM backend cannot compile {type(e).__name__} node {e!r}; "
                             "it should have been lowered before code generation")
        pure = type(e) in _PURE_TYPES and _is_pure(e)
        if pure:
            key = canonical(e)  # keyed by the canonical node: an identity hit, no __eq__
            v = self.fn.pure.get(key)
            if v is not None:
                self.fn.memo[id(e)] = (e, v)
                return v
        v = meth(self, e)
        self.fn.memo[id(e)] = (e, v)
        if pure:
            self.fn.remember(key, v)
        return v

    def index(self, e: Expr) -> str:
        """An integer (vector) expression widened to i64 lanes."""
        v = self.expr(e)
        base, n = dt.split_lanes(e.dtype)
        if base == "int64":
            return v
        if not dt.is_int(base) and base != "bool":
            raise BuildError(f"index {e!r} has dtype {e.dtype}; indices must be integers")
        ext = "sext" if dt.is_signed(base) else "zext"
        return self.fn.op(f"{ext} {ll_type(e.dtype)} {v} to {vec('i64', n)}")

    def buffer_ptr(self, buf: Any) -> str:
        p = self.bufs.get(buf.uid)
        if p is None:
            raise BuildError(f"buffer {buf.name} is used outside its scope (not a parameter "
                             "nor an enclosing Allocate)")
        return p

    def splat(self, v: str, scalar_t: str, n: int) -> str:
        vt = f"<{n} x {scalar_t}>"
        x = self.fn.op(f"insertelement {vt} poison, {scalar_t} {v}, i64 0")
        return self.fn.op(f"shufflevector {vt} {x}, {vt} poison, <{n} x i32> zeroinitializer")

    def true_mask(self, n: int) -> str:
        return "splat (i1 true)"

    def mask(self, pred: Expr | None, n: int) -> str | None:
        """``<n x i1>`` for a predicate (a scalar bool predicate applies to every lane)."""
        if pred is None:
            return None
        m = self.expr(pred)
        if dt.lanes(pred.dtype) == 1:
            return self.splat(m, "i1", n)
        return m

    # ------------------------------------------------------------------ leaves

    def _const(self, e: Const) -> str:
        return const_lit(e.value, e.dtype)

    def _var(self, e: Var) -> str:
        v = self.vars.get(e.uid)
        if v is None:
            raise BuildError(f"variable {e.name} is used outside the loop that defines it")
        return v

    def _broadcast(self, e: Broadcast) -> str:
        if isinstance(e.value, Const):
            return const_lit(e.value.value, e.dtype)
        return self.splat(self.expr(e.value), ll_type(e.value.dtype), e.lanes)

    def _ramp(self, e: Ramp) -> str:
        b, s = const_value(e.base), const_value(e.stride)
        elem = e.base.dtype
        if isinstance(e.base, Const) and isinstance(s, int):
            return vector_lit([b + i * s for i in range(e.lanes)], elem)
        t, vt = ll_type(elem), ll_type(e.dtype)
        base = self.splat(self.expr(e.base), t, e.lanes)
        if isinstance(s, int):
            steps = vector_lit([i * s for i in range(e.lanes)], elem)
        else:
            st = self.splat(self.expr(e.stride), t, e.lanes)
            steps = self.fn.op(f"mul {vt} {st}, {vector_lit(list(range(e.lanes)), elem)}")
        return self.fn.op(f"add {vt} {base}, {steps}")

    # ------------------------------------------------------------------ arithmetic

    def _binary(self, e: Binary) -> str:
        dtype, op = e.a.dtype, e.op
        t = ll_type(dtype)
        if dt.is_float(dtype):
            fused = self._fused(e, t)
            if fused is not None:
                return fused
            a, b = self.expr(e.a), self.expr(e.b)
            if op in _FARITH:
                return self.fn.op(f"{_FARITH[op]} contract {t} {a}, {b}")
            if op in ("min", "max"):
                c = self.fn.op(f"fcmp {'olt' if op == 'min' else 'ogt'} {t} {a}, {b}")
                return self.fn.op(f"select {_bool_t(dtype)}"
                                  f" {c}, {t} {a}, {t} {b}")
            raise BuildError(f"operator {op} is not defined on {dtype}")
        if op == "add" and dt.element(dtype) == "int32":
            dot = int8dot.fused_add(self, e)
            if dot is not None:
                return dot
        a, b = self.expr(e.a), self.expr(e.b)
        if dt.is_bool(dtype):
            ops = {"and": "and", "or": "or", "min": "and", "max": "or"}
            if op not in ops:
                raise BuildError(f"operator {op} is not defined on bool")
            return self.fn.op(f"{ops[op]} {t} {a}, {b}")
        if op in _IARITH:
            return self.fn.op(f"{_IARITH[op]} {t} {a}, {b}")
        if op in ("min", "max"):
            name = ("s" if dt.is_signed(dtype) else "u") + op
            f = self.mod.intrinsic(name, t, [t, t], [t])
            return self.fn.op(f"call {t} {f}({t} {a}, {t} {b})")
        if op in ("div", "floordiv", "floormod"):
            return self._intdiv(op, e, a, b, t)
        raise BuildError(f"operator {op} is not defined on {dtype}")

    def _fused(self, e: Binary, t: str) -> str | None:
        """``a*b + c``, ``c + a*b``, ``a*b - c`` -> ``llvm.fmuladd``."""
        if e.op not in ("add", "sub"):
            return None
        if isinstance(e.a, Binary) and e.a.op == "mul":
            m, c, neg_c = e.a, e.b, e.op == "sub"
        elif e.op == "add" and isinstance(e.b, Binary) and e.b.op == "mul":
            m, c, neg_c = e.b, e.a, False
        else:
            return None
        x, y, z = self.expr(m.a), self.expr(m.b), self.expr(c)
        if neg_c:
            z = self.fn.op(f"fneg {t} {z}")
        f = self.mod.intrinsic("fmuladd", t, [t, t, t], [t])
        return self.fn.op(f"call {t} {f}({t} {x}, {t} {y}, {t} {z})")

    def _intdiv(self, op: str, e: Binary, a: str, b: str, t: str) -> str:
        dtype, fn = e.a.dtype, self.fn
        signed = dt.is_signed(dtype)
        zero, one = const_lit(0, dtype), const_lit(1, dtype)
        c = const_value(e.b)
        if isinstance(c, int):
            if c == 0:
                return zero
            if signed and c == -1:
                return fn.op(f"sub {t} {zero}, {a}") if op != "floormod" else zero
            if c > 0 and c & (c - 1) == 0 and op != "div":
                k = c.bit_length() - 1
                if op == "floormod":
                    return fn.op(f"and {t} {a}, {const_lit(c - 1, dtype)}")
                return fn.op(f"{'ashr' if signed else 'lshr'} {t} {a}, {const_lit(k, dtype)}")
            return self._divmod(op, a, b, t, dtype, signed, c > 0)
        # Runtime divisor: avoid the hardware traps on 0 and INT_MIN / -1.
        ct = _bool_t(dtype)
        is0 = fn.op(f"icmp eq {t} {b}, {zero}")
        safe = fn.op(f"select {ct} {is0}, {t} {one}, {t} {b}")
        if signed:
            m1 = fn.op(f"icmp eq {t} {b}, {const_lit(-1, dtype)}")
            safe = fn.op(f"select {ct} {m1}, {t} {one}, {t} {safe}")
        r = self._divmod(op, a, safe, t, dtype, signed, False)
        if signed:
            neg = zero if op == "floormod" else fn.op(f"sub {t} {zero}, {a}")
            r = fn.op(f"select {ct} {m1}, {t} {neg}, {t} {r}")
        return fn.op(f"select {ct} {is0}, {t} {zero}, {t} {r}")

    def _divmod(self, op: str, a: str, b: str, t: str, dtype: str, signed: bool,
                b_positive: bool) -> str:
        fn = self.fn
        if not signed:
            return fn.op(f"{'urem' if op == 'floormod' else 'udiv'} {t} {a}, {b}")
        if op == "div":
            return fn.op(f"sdiv {t} {a}, {b}")
        zero = const_lit(0, dtype)
        ct = _bool_t(dtype)
        r = fn.op(f"srem {t} {a}, {b}")
        if b_positive:
            fix = fn.op(f"icmp slt {t} {r}, {zero}")
        else:
            nz = fn.op(f"icmp ne {t} {r}, {zero}")
            x = fn.op(f"xor {t} {r}, {b}")
            sg = fn.op(f"icmp slt {t} {x}, {zero}")
            fix = fn.op(f"and {ct} {nz}, {sg}")
        if op == "floormod":
            add = fn.op(f"select {ct} {fix}, {t} {b}, {t} {zero}")
            return fn.op(f"add {t} {r}, {add}")
        q = fn.op(f"sdiv {t} {a}, {b}")
        d = fn.op(f"sext {ct} {fix} to {t}")
        return fn.op(f"add {t} {q}, {d}")

    def _compare(self, e: Compare) -> str:
        dtype = e.a.dtype
        t = ll_type(dtype)
        a, b = self.expr(e.a), self.expr(e.b)
        if dt.is_float(dtype):
            return self.fn.op(f"fcmp {_FCMP[e.op]} {t} {a}, {b}")
        table = _ICMP_S if dt.is_signed(dtype) else _ICMP_U
        return self.fn.op(f"icmp {table[e.op]} {t} {a}, {b}")

    def _not(self, e: Not) -> str:
        t = ll_type(e.dtype)
        ones = const_lit(True if dt.is_bool(e.dtype) else -1, e.dtype)
        return self.fn.op(f"xor {t} {self.expr(e.a)}, {ones}")

    def _select(self, e: Select) -> str:
        t = ll_type(e.dtype)
        c, a, b = self.expr(e.cond), self.expr(e.a), self.expr(e.b)
        return self.fn.op(f"select {ll_type(e.cond.dtype)} {c}, {t} {a}, {t} {b}")

    def _cast(self, e: Cast) -> str:
        src, dst = e.a.dtype, e.dtype
        v = self.expr(e.a)
        sb, db = dt.element(src), dt.element(dst)
        if sb == db:
            return v
        ts, td, fn = ll_type(src), ll_type(dst), self.fn
        if db == "bool":
            cmp = "fcmp une" if dt.is_float(sb) else "icmp ne"
            return fn.op(f"{cmp} {ts} {v}, {const_lit(0, src)}")
        if sb == "bool":
            return fn.op(f"{'uitofp' if dt.is_float(db) else 'zext'} {ts} {v} to {td}")
        if dt.is_int(sb) and dt.is_int(db):
            bs, bd = dt.bits(sb), dt.bits(db)
            if bs == bd:
                return v
            if bs > bd:
                return fn.op(f"trunc {ts} {v} to {td}")
            return fn.op(f"{'sext' if dt.is_signed(sb) else 'zext'} {ts} {v} to {td}")
        if dt.is_int(sb):
            return fn.op(f"{'sitofp' if dt.is_signed(sb) else 'uitofp'} {ts} {v} to {td}")
        if dt.is_float(db):
            ext = "fpext" if dt.bits(db) > dt.bits(sb) else "fptrunc"
            return fn.op(f"{ext} {ts} {v} to {td}")
        if dt.bits(db) >= 32:
            return fn.op(f"fptosi {ts} {v} to {td}")
        t32 = vec("i32", dt.lanes(dst))
        w = fn.op(f"fptosi {ts} {v} to {t32}")
        return fn.op(f"trunc {t32} {w} to {td}")

    def _call(self, e: Call) -> str:
        name, t = e.name, ll_type(e.dtype)
        if int8dot.is_dot(name):
            return int8dot.emit(self, e, None)
        args = [self.expr(a) for a in e.args]
        want = 3 if name == "fmuladd" else 1
        if len(args) != want:
            raise BuildError(f"{name} takes {want} argument(s), got {len(args)}")
        if name in _MATH:
            if not dt.is_float(e.dtype):
                raise BuildError(f"{name} needs a float argument, got {e.dtype}")
            f = self._vector_math(name, e.dtype, t) or self.mod.intrinsic(name, t, [t], [t])
            return self.fn.op(f"call {t} {f}({t} {args[0]})")
        if name == "abs":
            if dt.is_float(e.dtype):
                f = self.mod.intrinsic("fabs", t, [t], [t])
                return self.fn.op(f"call {t} {f}({t} {args[0]})")
            if not dt.is_signed(e.dtype):
                return args[0]
            f = self.mod.intrinsic("abs", t, [t, "i1"], [t])
            return self.fn.op(f"call {t} {f}({t} {args[0]}, i1 false)")
        if name == "fmuladd":
            if dt.is_float(e.dtype):
                f = self.mod.intrinsic("fmuladd", t, [t, t, t], [t])
                return self.fn.op(f"call {t} {f}({t} {args[0]}, {t} {args[1]}, {t} {args[2]})")
            m = self.fn.op(f"mul {t} {args[0]}, {args[1]}")
            return self.fn.op(f"add {t} {m}, {args[2]}")
        raise BuildError(f"unknown intrinsic call {name}; supported: exp log sqrt tanh abs "
                         "fmuladd")

    def _vector_math(self, name: str, dtype: str, t: str) -> str | None:
        """glibc libmvec's SIMD exp/log/tanh for a vector type (LLVM would otherwise call the
        scalar libm function once per lane)."""
        base, n = dt.split_lanes(dtype)
        isa = _MVEC_ISA.get((base, n))
        if name == "sqrt" or isa is None or isa not in libmvec_isas():
            return None
        sym = f"_ZGV{isa}N{n}v_{name}{'f' if base == 'float32' else ''}"
        self.mod.libs.add("mvec")
        return self.mod.declare(sym, f"declare {t} @{sym}({t}) nounwind readnone")

    # ------------------------------------------------------------------ memory

    def from_mem(self, v: str, dtype: str) -> str:
        """Value loaded as its memory type -> register type (i8 -> i1 for bool)."""
        if not dt.is_bool(dtype):
            return v
        n = dt.lanes(dtype)
        return self.fn.op(f"icmp ne {vec('i8', n)} {v}, {const_lit(0, dt.with_lanes('int8', n))}")

    def to_mem(self, v: str, dtype: str) -> str:
        if not dt.is_bool(dtype):
            return v
        n = dt.lanes(dtype)
        return self.fn.op(f"zext {vec('i1', n)} {v} to {vec('i8', n)}")

    def flat_index(self, node: Any) -> Expr:
        if len(node.indices) != 1:
            raise BuildError(f"access to {node.buffer.name} has {len(node.indices)} indices; "
                             "the LLVM backend needs flattened (1-D) accesses")
        return node.indices[0]

    def gep(self, buf: Any, idx: str, n: int = 1) -> str:
        """Address(es) of element(s) ``idx`` of ``buf`` (``idx`` is i64 or <n x i64>)."""
        return self.fn.op(f"getelementptr {mem_elem(buf.dtype)}, ptr {self.buffer_ptr(buf)}, "
                          f"{vec('i64', n)} {idx}", "p")

    def _load(self, e: Load) -> str:
        ctx = getattr(self, "ctx", None)
        if ctx is not None and ctx.bounds_check:  # tt.build(..., bounds_check=True)
            from tiletune.backends.llvm.checks import checked, in_bounds

            ok = in_bounds(self, e.buffer, self.flat_index(e), dt.lanes(e.dtype), e.pred)
            return checked(self, ok, lambda: self._load_unchecked(e), e.dtype)
        return self._load_unchecked(e)

    def _load_unchecked(self, e: Load) -> str:
        buf, fn = e.buffer, self.fn
        index = self.flat_index(e)
        n, el = dt.lanes(e.dtype), mem_elem(buf.dtype)
        align = elem_bytes(buf.dtype)
        if n == 1:
            p = self.gep(buf, self.index(index))
            if e.pred is not None:
                return self._guarded_scalar_load(e, p, el, align)
            return self.from_mem(fn.op(f"load {el}, ptr {p}, align {align}"), e.dtype)
        vt = vec(el, n)
        mask = self.mask(e.pred, n)
        ramp = (index, 1) if dt.lanes(index.dtype) == 1 else split_ramp(index)
        if ramp is not None and ramp[1] == 1:
            p = self.gep(buf, self.index(ramp[0]))
            if mask is None:
                v = fn.op(f"load {vt}, ptr {p}, align {align}")
            else:
                f = self.mod.intrinsic("masked.load", vt, ["ptr", f"<{n} x i1>", vt], [vt, "ptr"])
                v = fn.op(f"call {vt} {f}(ptr align {align} {p}, <{n} x i1> {mask}, "
                          f"{vt} zeroinitializer)")
            return self.from_mem(v, e.dtype)
        if ramp is not None and ramp[1] == 0 and mask is None:
            p = self.gep(buf, self.index(ramp[0]))
            s = fn.op(f"load {el}, ptr {p}, align {align}")
            return self.from_mem(self.splat(s, el, n), e.dtype)
        ptrs = self.gep(buf, self.index(index), n)
        pt = f"<{n} x ptr>"
        f = self.mod.intrinsic("masked.gather", vt, [pt, f"<{n} x i1>", vt], [vt, pt])
        v = fn.op(f"call {vt} {f}({pt} align {align} {ptrs}, <{n} x i1> "
                  f"{mask or self.true_mask(n)}, {vt} zeroinitializer)")
        return self.from_mem(v, e.dtype)

    def _guarded_scalar_load(self, e: Load, p: str, el: str, align: int) -> str:
        fn = self.fn
        c = self.expr(e.pred)
        pre, body, join = fn.block, fn.label("ld"), fn.label("ldj")
        fn.emit(f"br i1 {c}, label %{body}, label %{join}")
        fn.start_block(body)
        v = self.from_mem(fn.op(f"load {el}, ptr {p}, align {align}"), e.dtype)
        end = fn.block
        fn.emit(f"br label %{join}")
        fn.start_block(join)
        t = ll_type(e.dtype)
        return fn.op(f"phi {t} [ {v}, %{end} ], [ {const_lit(0, e.dtype)}, %{pre} ]")


_DISPATCH: dict[type, Callable[[ExprGen, Any], str]] = {
    Const: ExprGen._const, Var: ExprGen._var, Binary: ExprGen._binary,
    Compare: ExprGen._compare, Not: ExprGen._not, Select: ExprGen._select, Cast: ExprGen._cast,
    Call: ExprGen._call, Load: ExprGen._load, Ramp: ExprGen._ramp,
    Broadcast: ExprGen._broadcast,
}
