"""The report page renders in a real browser (headless Chromium): every plot drawn, no
console errors, nothing loaded from outside the page."""
import json
import re

import pytest

from tests.report.browser import chromium, render
from tiletune.report import write_report

pytestmark = pytest.mark.skipif(chromium() is None,
                                reason="needs Debian's chromium (.ci/run installs it)")


def test_report_renders_every_plot_without_errors(small_records, tmp_path):
    prof = tmp_path / "profile.json"
    prof.write_text(json.dumps({"model": "tiny-net", "threads": 1, "operators": [
        {"name": "conv2d_0", "op": "conv2d", "time_ms": 2.5},
        {"name": "dense_0", "op": "dense", "time_ms": 0.5}]}))
    page = tmp_path / "report.html"
    pngs = tmp_path / "png"
    write_report([small_records], page, png_dir=pngs, peak_gflops=90.0, profiles=[prof])
    text = page.read_text()
    # self-contained: no external scripts, styles, images or fonts
    assert not re.search(r'<(script|link|img|iframe)\b', text)
    assert not re.search(r'(src|href)="(?!#)', text)
    names = re.findall(r'<figure class="plot" data-plot="([^"]+)"', text)
    assert sorted(names) == sorted(
        ["summary", "dense-64-64-64-trials", "dense-64-64-64-time",
         "dense-16-64-64-vta-trials", "dense-16-64-64-vta-time", "profile-1"])
    assert sorted(p.stem for p in pngs.glob("*.png")) == sorted(names)

    found = render(page, tmp_path)
    assert found["errors"] == [] and found["console"] == []
    assert [p["name"] for p in found["plots"]] == names
    for p in found["plots"]:
        assert p["svg"] and p["width"] > 100 and p["height"] > 100, p
        assert min(p["bbox"]) > 50 and p["drawn"] > 20, p


def test_the_checker_sees_broken_pages(tmp_path):
    """The detector itself: a missing plot, an empty SVG and a script error are all seen."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head></head><body>'
                    '<figure class="plot" data-plot="empty"><svg width="0" height="0"></svg>'
                    '</figure><figure class="plot" data-plot="none"></figure>'
                    '<script>console.error("boom"); no_such_function();</script></body></html>')
    found = render(page, tmp_path)
    assert any("no_such_function" in e for e in found["errors"])
    assert any("boom" in c for c in found["console"])
    empty, none = found["plots"]
    assert empty["svg"] and empty["width"] == 0
    assert none == {"name": "none", "svg": False}
