"""Render a page in headless Chromium and read back what it rendered (a test helper).

A checker script is added to a copy of the page: it records each ``figure.plot``'s SVG size,
bounding box and number of drawn elements, plus every error event, into a ``<pre
id="tt-check">`` that ``--dump-dom`` prints. Console messages come from Chromium's log on
stderr (``--enable-logging=stderr``).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--dump-dom"]

HEAD = ("<script>window.__ttErrors=[];window.addEventListener('error',function(e){"
        "window.__ttErrors.push(String(e.message||(e.target&&e.target.outerHTML)||e))},true);"
        "</script>")
CHECK = """<script>(function(){
 var out=[].map.call(document.querySelectorAll('figure.plot'),function(f){
  var s=f.querySelector('svg'); if(!s) return {name:f.dataset.plot,svg:false};
  var r=s.getBoundingClientRect(), b=s.getBBox();
  return {name:f.dataset.plot,svg:true,width:r.width,height:r.height,bbox:[b.width,b.height],
          drawn:s.querySelectorAll('path,use,text,rect,polyline').length};});
 var el=document.createElement('pre'); el.id='tt-check';
 el.textContent=JSON.stringify({plots:out,errors:window.__ttErrors});
 document.body.appendChild(el);})();</script>"""

CONSOLE = re.compile(r'CONSOLE[^\]]*\]\s*"(.*)", source')


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render(page: Path, workdir: Path) -> dict:
    """{"plots": [...], "errors": [...], "console": [...]} of ``page`` rendered."""
    text = page.read_text(encoding="utf-8")
    text = text.replace("</head>", HEAD + "</head>", 1).replace("</body>", CHECK + "</body>", 1)
    probe = workdir / f"checked-{page.name}"
    probe.write_text(text, encoding="utf-8")
    profile = workdir / "chromium-profile"
    cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", probe.resolve().as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="tt-check">(.*?)</pre>', res.stdout, re.S)
    if m is None:
        raise AssertionError(f"chromium did not run the checker (exit {res.returncode}):\n"
                             f"{res.stderr[-2000:]}")
    found = json.loads(m.group(1).replace("&amp;", "&").replace("&lt;", "<")
                       .replace("&gt;", ">").replace("&quot;", '"'))
    found["console"] = CONSOLE.findall(res.stderr)
    return found
