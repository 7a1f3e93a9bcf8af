"""Readable text for expressions, loop nests and kernels (Python-like, stable for golden files)."""
from __future__ import annotations

from typing import Any

from tiletune.ir import dtype as dt
from tiletune.ir.expr import (
    Binary,
    Broadcast,
    Call,
    Cast,
    Compare,
    Const,
    Load,
    Not,
    Ramp,
    Reduce,
    Select,
    TensorRead,
    Var,
)
from tiletune.ir.stmt import Allocate, For, IfThenElse, PrimFunc, Seq, Stmt, Store

_NAMES: dict[int, str] = {}  # Var uid -> unique display name, while printing one function
_NOTES: dict[str, str] = {}  # buffer name -> where its attached stage landed, likewise

_INFIX = {"add": ("+", 4), "sub": ("-", 4), "mul": ("*", 5), "div": ("/", 5),
          "floordiv": ("//", 5), "floormod": ("%", 5), "and": ("&", 2), "or": ("|", 1)}
_CMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


def _const(c: Const) -> str:
    if dt.is_bool(c.dtype):
        return "True" if c.value else "False"
    if dt.is_float(c.dtype):
        s = repr(float(c.value))
        return s + ("f" if dt.element(c.dtype) == "float32" else "")
    if c.dtype == dt.INDEX:
        return str(c.value)
    return f"{c.value}:{c.dtype}"


def expr_str(e: Any, prec: int = 0) -> str:
    """Print an expression, adding parentheses only where precedence needs them."""
    if isinstance(e, Const):
        return _const(e)
    if isinstance(e, Var):
        return _NAMES.get(e.uid, e.name)
    if hasattr(e, "var") and isinstance(e.var, Var):
        return _NAMES.get(e.var.uid, e.var.name)
    if isinstance(e, Binary):
        if e.op in _INFIX:
            sym, p = _INFIX[e.op]
            s = f"{expr_str(e.a, p)} {sym} {expr_str(e.b, p + 1)}"
            return f"({s})" if p < prec else s
        return f"{e.op}({expr_str(e.a)}, {expr_str(e.b)})"
    if isinstance(e, Compare):
        s = f"{expr_str(e.a, 4)} {_CMP[e.op]} {expr_str(e.b, 4)}"
        return f"({s})" if prec > 0 else s
    if isinstance(e, Not):
        return f"~{expr_str(e.a, 9)}"
    if isinstance(e, Select):
        return f"select({expr_str(e.cond)}, {expr_str(e.a)}, {expr_str(e.b)})"
    if isinstance(e, Cast):
        return f"{e.dtype}({expr_str(e.a)})"
    if isinstance(e, Call):
        return f"{e.name}({', '.join(expr_str(a) for a in e.args)})"
    if isinstance(e, TensorRead):
        return f"{e.tensor.name}[{', '.join(expr_str(i) for i in e.indices)}]"
    if isinstance(e, Reduce):
        axes = ", ".join(repr(a) for a in e.axes)
        where = f", where={expr_str(e.cond)}" if e.cond is not None else ""
        return f"{e.combiner}({expr_str(e.source)}, axis=[{axes}]{where})"
    if isinstance(e, Load):
        pred = f" if {expr_str(e.pred)}" if e.pred is not None else ""
        return f"{e.buffer.name}[{', '.join(expr_str(i) for i in e.indices)}{pred}]"
    if isinstance(e, Ramp):
        return f"ramp({expr_str(e.base)}, {expr_str(e.stride)}, {e.lanes})"
    if isinstance(e, Broadcast):
        return f"x{e.lanes}({expr_str(e.value)})"
    return repr(e)


def _loop_head(s: For) -> str:
    lo = expr_str(s.lo)
    rng = expr_str(s.extent) if lo == "0" else f"{lo}, {expr_str(s.lo)} + {expr_str(s.extent)}"
    kind = "range" if s.kind == "serial" else s.kind
    return f"for {expr_str(s.var)} in {kind}({rng}):"


def _lines(s: Stmt, depth: int, out: list[str]) -> None:
    pad = "  " * depth
    if isinstance(s, For):
        out.append(pad + _loop_head(s))
        _lines(s.body, depth + 1, out)
    elif isinstance(s, Seq):
        if not s.stmts:
            out.append(pad + "pass")
        for x in s.stmts:
            _lines(x, depth, out)
    elif isinstance(s, Store):
        idx = ", ".join(expr_str(i) for i in s.indices)
        pred = f"  if {expr_str(s.pred)}" if s.pred is not None else ""
        out.append(f"{pad}{s.buffer.name}[{idx}] = {expr_str(s.value)}{pred}")
    elif isinstance(s, Allocate):
        b = s.buffer
        note = f"  # {_NOTES[b.name]}" if b.name in _NOTES else ""
        out.append(f"{pad}{b.name} = allocate({b.dtype}{list(b.shape)}, {b.scope}){note}")
        _lines(s.body, depth, out)
    elif isinstance(s, IfThenElse):
        out.append(f"{pad}if {expr_str(s.cond)}:")
        _lines(s.then, depth + 1, out)
        if s.else_ is not None:
            out.append(f"{pad}else:")
            _lines(s.else_, depth + 1, out)
    else:
        out.append(pad + repr(s))


def stmt_str(s: Stmt, depth: int = 0) -> str:
    out: list[str] = []
    _lines(s, depth, out)
    return "\n".join(out)


def unique_names(node: Any) -> dict[int, str]:
    """Display names for the loop vars under ``node``: a repeated name gets a suffix."""
    from tiletune.ir.functor import collect
    names: dict[int, str] = {}
    used: set[str] = set()
    for loop in collect(node, lambda n: isinstance(n, For)):
        v = loop.var
        if v.uid in names:
            continue
        name, k = v.name, 1
        while name in used:
            name, k = f"{v.name}_{k}", k + 1
        used.add(name)
        names[v.uid] = name
    return names


def func_str(f: PrimFunc) -> str:
    global _NAMES, _NOTES
    params = ", ".join(f"{b.name}: {b.dtype}{list(b.shape)}" for b in f.params)
    saved = _NAMES, _NOTES
    _NAMES, _NOTES = unique_names(f.body), dict(f.attrs.get("attachments", {}))
    try:
        from tiletune.ir.functor import collect
        allocated = {a.buffer.name for a in collect(f.body, lambda n: isinstance(n, Allocate))}
        # attached stages with no buffer of their own (kernel arguments written in place)
        head = "".join(f"  # {note}\n" for name, note in _NOTES.items()
                       if name not in allocated)
        return f"def {f.name}({params}):\n{head}{stmt_str(f.body, 1)}\n"
    finally:
        _NAMES, _NOTES = saved
