"""The report's plots, drawn with matplotlib (imported here only, never by the rest of
tiletune) and rendered as inline SVG (and PNG with ``--png``).

Figures are made with ``matplotlib.figure.Figure`` (no pyplot: no global state, no GUI
backend). SVG ids are salted per plot, so several plots share one page without clashing,
and the output is deterministic.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from tiletune.report.data import WorkloadReport
    from tiletune.report.profile import NetworkProfile

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
          "#bcbd22")
FAIL_COLOR = "#d62728"


def _figure(width: float = 6.0, height: float = 3.4) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def svg(fig: Figure, salt: str) -> str:
    """The figure as an ``<svg>`` element (no XML prolog), ids salted with ``salt``."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def png(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})


def _gflops_axis(ax: Any, w: WorkloadReport, peak: float | None) -> None:
    ax.set_ylabel(w.unit)
    ax.grid(True, alpha=0.3)
    if peak and w.target != "vta" and w.flop:
        cap = peak * (w.threads or 1)
        sec = ax.secondary_yaxis("right", functions=(lambda g: g / cap, lambda f: f * cap))
        sec.set_ylabel(f"fraction of FMA peak ({cap:.0f} GFLOP/s)")


def _default_line(ax: Any, w: WorkloadReport) -> None:
    if w.default_gflops:
        ax.axhline(w.default_gflops, color="0.4", linestyle="--", linewidth=1,
                   label=f"heuristic default {w.default_gflops:.1f}")


def trials_plot(w: WorkloadReport, peak: float | None) -> Figure:
    """Best-so-far against trials per tuner, every trial's GFLOP/s as a scatter, failures
    as red crosses on the axis."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure()
    ax = fig.add_subplot()
    failed_x: list[int] = []
    for k, c in enumerate(w.curves):
        color = COLORS[k % len(COLORS)]
        ok = [(t, g) for t, g in zip(c.trials, c.gflops) if g is not None]
        if ok:
            ax.scatter([t for t, _ in ok], [g for _, g in ok], s=9, alpha=0.45, color=color,
                       linewidths=0)
        ax.step(c.trials, c.best, where="post", color=color, linewidth=1.8, marker="o",
                markersize=2.5, label=f"{c.label}: best {max(c.best, default=0):.1f}")
        failed_x += [t for t, g in zip(c.trials, c.gflops) if g is None]
    if failed_x:
        ax.scatter(failed_x, [0] * len(failed_x), marker="x", s=18, color=FAIL_COLOR,
                   label=f"failed trials ({len(failed_x)})", clip_on=False)
    _default_line(ax, w)
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    _gflops_axis(ax, w, peak)
    ax.set_title(f"{w.name}: best so far and every trial", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return fig


def time_plot(w: WorkloadReport) -> Figure:
    """Best-so-far against wall time per tuner."""
    fig = _figure()
    ax = fig.add_subplot()
    for k, c in enumerate(w.curves):
        ax.step(c.elapsed, c.best, where="post", color=COLORS[k % len(COLORS)], linewidth=1.8,
                label=c.label, marker=".", markersize=3)
    _default_line(ax, w)
    ax.set_xlabel("wall time since the run started (s)")
    ax.set_ylabel(f"best {w.unit} so far")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{w.name}: best so far against wall time", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return fig


def summary_plot(workloads: Sequence[WorkloadReport]) -> Figure:
    """Heuristic default against best, one pair of bars per workload."""
    ws = [w for w in workloads if w.best_gflops and w.flop]
    fig = _figure(7.0, max(2.2, 0.42 * len(ws) + 1.2))
    ax = fig.add_subplot()
    ys = list(range(len(ws)))
    ax.barh([y + 0.2 for y in ys], [w.best_gflops or 0 for w in ws], height=0.4,
            color=COLORS[0], label="best")
    ax.barh([y - 0.2 for y in ys], [w.default_gflops or 0 for w in ws], height=0.4,
            color="0.65", label="heuristic default")
    for y, w in zip(ys, ws):
        if w.speedup:
            ax.text(w.best_gflops or 0, y + 0.2, f" {w.speedup:.2f}x", va="center", fontsize=7)
    ax.set_yticks(ys, [w.name for w in ws], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("GFLOP/s")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title("default vs best per workload", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def profile_plot(p: NetworkProfile, top: int = 20) -> Figure:
    """Each operator's share of the network's time (the ``top`` largest), and per kind."""
    shares = p.shares()[:top]
    kinds = p.by_kind()
    fig = _figure(8.0, max(2.6, 0.28 * len(shares) + 1.2))
    ax, bx = fig.subplots(1, 2, width_ratios=[2, 1])
    ax.barh(range(len(shares)), [s * 100 for _, s in shares], color=COLORS[0])
    ax.set_yticks(range(len(shares)), [n for n, _ in shares], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("% of network time")
    ax.set_title(f"{p.model}: {p.total_ms:.3f} ms per run", fontsize=10)
    bx.barh(range(len(kinds)), [s * 100 for _, s in kinds], color=COLORS[1])
    bx.set_yticks(range(len(kinds)), [k for k, _ in kinds], fontsize=7)
    bx.invert_yaxis()
    bx.set_xlabel("% by operator kind")
    for a in (ax, bx):
        a.grid(True, axis="x", alpha=0.3)
    return fig
