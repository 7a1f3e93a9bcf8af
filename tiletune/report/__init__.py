"""Tuning reports: one self-contained HTML page from records files (and network profiles).

    from tiletune.report import write_report
    data = write_report(["tuned.jsonl"], "report.html", png_dir="plots/")

Per workload: best-so-far against trials and against wall time for each tuner run, every
trial's GFLOP/s, the fraction of the measured FMA peak (CPU) or GEMM utilisation (VTA),
failures by class, default vs best, the winning config and its schedule code; per network
profile (``profile.py`` documents the JSON), each operator's share of the time.

Modules: ``data`` (records -> the numbers; no plotting), ``plots`` (matplotlib, imported
only there), ``page`` (HTML), ``profile`` (network profiles), ``schedule_code`` (a record's
schedule as Python, shared with ``tiletune records best``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tiletune.report.data import ReportData

__all__ = ["write_report"]


def write_report(records: Sequence[str | Path], output: str | Path, *,
                 png_dir: str | Path | None = None, peak_gflops: float | None = None,
                 measure_peak: bool = True, profiles: Sequence[str | Path] = (),
                 title: str = "tiletune tuning report") -> ReportData:
    """Write the report page to ``output`` (and PNGs to ``png_dir``); return its data.

    ``peak_gflops``: the single-core FMA peak to compare with; when None and
    ``measure_peak``, it is measured on this host (about a second).
    """
    from tiletune.report.data import collect
    from tiletune.report.page import render
    from tiletune.report.profile import load_profile

    if peak_gflops is None and measure_peak:
        from tiletune.backends.llvm.peak import fma_peak_gflops

        peak_gflops = fma_peak_gflops()
    data = collect(records, peak=peak_gflops, profiles=[load_profile(p) for p in profiles])
    text, _ = render(data, png_dir, title)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return data
