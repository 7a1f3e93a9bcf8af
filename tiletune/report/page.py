"""The report as one self-contained HTML page (inline CSS and SVG; no script, no network).

Every plot is a ``<figure class="plot" data-plot="NAME">`` holding one inline ``<svg>``;
``--png DIR`` also writes each plot as ``DIR/NAME.png``.
"""

from __future__ import annotations

import datetime
import html
import json
from collections.abc import Iterator
from pathlib import Path

from tiletune.report import plots
from tiletune.report.data import ReportData, WorkloadReport

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1250px;
 color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{margin-top:2em;border-bottom:1px solid #ccc}
h3{margin-bottom:.3em} .meta{color:#555;font-size:.9em}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:.25em .55em;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:1em} figure.plot{margin:0;flex:1 1 540px;max-width:640px}
figure.plot svg{max-width:100%;height:auto}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.7em;overflow-x:auto;font-size:.82em}
.warn{color:#a15c00}
"""


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _f(x: float | None, fmt: str = "{:.1f}", none: str = "-") -> str:
    return none if x is None else fmt.format(x)


def _failures(f: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in f.items()) or "0"


class Page:
    """Collects plots (SVG inline, PNG optional) while the page is written."""

    def __init__(self, png_dir: str | Path | None) -> None:
        self.png_dir = Path(png_dir) if png_dir else None
        self.names: list[str] = []

    def plot(self, name: str, fig: object, caption: str) -> str:
        if name in self.names:  # two workloads with the same display name
            name = f"{name}-{len(self.names)}"
        self.names.append(name)
        if self.png_dir is not None:
            plots.png(fig, self.png_dir / f"{name}.png")  # type: ignore[arg-type]
        body = plots.svg(fig, salt=name)  # type: ignore[arg-type]
        return (f'<figure class="plot" data-plot="{_e(name)}">{body}'
                f"<figcaption class=\"meta\">{_e(caption)}</figcaption></figure>")


def _summary_table(data: ReportData) -> Iterator[str]:
    yield ("<table><tr><th class=l>workload</th><th class=l>target</th><th>records</th>"
           "<th class=l>tuners</th><th>default GFLOP/s</th><th>best GFLOP/s</th><th>best ms"
           "</th><th>speed-up</th><th>% FMA peak / GEMM util.</th><th class=l>failures</th>"
           "</tr>")
    for w in data.workloads:
        if w.gemm_utilization:
            eff = f"GEMM {_f(w.gemm_utilization.get('best'), '{:.0%}')}"
        else:
            eff = _f(w.peak_fraction, "{:.0%}")
        tuners = ", ".join(sorted({c.tuner for c in w.curves})) or "-"
        unit = "" if w.flop else " calls/s"
        yield (f'<tr><td class=l><a href="#{_e(w.slug)}">{_e(w.name)}</a></td>'
               f"<td class=l>{_e(w.target)}</td><td>{w.records}</td><td class=l>{_e(tuners)}"
               f"</td><td>{_f(w.default_gflops)}{unit}</td><td>{_f(w.best_gflops)}{unit}</td>"
               f"<td>{_f(w.best_ms, '{:.4f}')}</td><td>{_f(w.speedup, '{:.2f}x')}</td>"
               f"<td>{eff}</td><td class=l>{_e(_failures(w.failures))}</td></tr>")
    yield "</table>"


def _workload(w: WorkloadReport, data: ReportData, page: Page) -> Iterator[str]:
    yield f'<section id="{_e(w.slug)}"><h2>{_e(w.name)}</h2>'
    yield f'<p class="meta">workload key <code>{_e(w.key)}</code>; {w.records} records'
    if w.flop:
        yield f"; {w.flop / 1e6:.2f} MFLOP per call"
    yield "</p>"
    if w.curves:
        yield '<div class="plots">'
        yield page.plot(f"{w.slug}-trials", plots.trials_plot(w, data.peak_gflops),
                        "Best so far (lines) and every trial (dots) per tuner run; red "
                        "crosses: failed trials; dashed: the heuristic default.")
        yield page.plot(f"{w.slug}-time", plots.time_plot(w),
                        "Best so far against wall time (build + run of every trial).")
        yield "</div>"
    else:
        yield "<p>No search trials (only default or confirmation measurements).</p>"
    yield f"<table><tr><th class=l></th><th>{w.unit}</th>"
    util = w.gemm_utilization
    if util:
        yield "<th>GEMM utilisation</th>"
    yield "</tr>"
    for label, g, u in (("heuristic default", w.default_gflops, util and util.get("default")),
                        (f"best ({w.best_tuner or '-'})", w.best_gflops,
                         util and util.get("best"))):
        cells = f"<td>{_f(g)}</td>" + (f"<td>{_f(u, '{:.1%}')}</td>" if util else "")
        yield f"<tr><td class=l>{_e(label)}</td>{cells}</tr>"
    yield "</table>"
    if w.peak_fraction is not None:
        threads = w.threads or 1
        note = "" if w.threads else " (thread count not recorded: 1 assumed)"
        yield (f"<p>Best = <b>{w.peak_fraction:.0%}</b> of the FMA peak of {threads} "
               f"core(s){_e(note)}.</p>")
    yield f"<h3>Failures by class</h3><p>{_e(_failures(w.failures))}</p>"
    if w.best_config is not None:
        yield "<h3>Winning config</h3>"
        yield f"<pre>{_e(json.dumps(w.best_config, sort_keys=True))}</pre>"
    if w.code:
        yield "<h3>Its schedule as code</h3>"
        yield f"<pre>{_e(w.code)}</pre>"
    elif w.code_problem:
        yield f'<p class="warn">No schedule code: {_e(w.code_problem)}</p>'
    yield "</section>"


def _profile_section(data: ReportData, page: Page) -> Iterator[str]:
    if not data.profiles:
        return
    yield "<h2>Compiled networks: time per operator</h2>"
    for k, p in enumerate(data.profiles):
        yield page.plot(f"profile-{k + 1}", plots.profile_plot(p),
                        f"{p.source}: share of the network's time per fused operator"
                        + (f" ({p.threads} threads)" if p.threads else ""))
        yield "<table><tr><th class=l>operator</th><th>ms</th><th>share</th></tr>"
        for o in sorted(p.operators, key=lambda o: -o.time_ms):
            yield (f"<tr><td class=l>{_e(o.name)}</td><td>{o.time_ms:.4f}</td>"
                   f"<td>{o.time_ms / (p.total_ms or 1):.1%}</td></tr>")
        yield "</table>"


def render(data: ReportData, png_dir: str | Path | None = None,
           title: str = "tiletune tuning report") -> tuple[str, list[str]]:
    """The page's HTML and the names of its plots."""
    page = Page(png_dir)
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{_e(title)}</h1>",
           f'<p class="meta">records: {_e(", ".join(data.sources) or "none")}; '
           f"generated {now}"]
    if data.peak_gflops:
        out.append(f"; FMA peak {data.peak_gflops:.1f} GFLOP/s per core (measured on the "
                   "host that made this report)")
    out.append("</p>")
    if data.workloads:
        out.append("<h2>Summary</h2>")
        out += _summary_table(data)
        if any(w.best_gflops and w.flop for w in data.workloads):
            out.append(page.plot("summary", plots.summary_plot(data.workloads),
                                 "Heuristic default against the best config found."))
    for w in data.workloads:
        out += _workload(w, data, page)
    out += _profile_section(data, page)
    if data.problems:
        out.append('<h2>Skipped record lines</h2><ul class="warn">')
        out += [f"<li>{_e(p)}</li>" for p in data.problems]
        out.append("</ul>")
    out.append("</body></html>\n")
    return "\n".join(out), page.names
