"""The tutorial runs as written: each page's ```python blocks (one namespace per page) and
its ```bash `tiletune ...` commands, in order, in an empty directory; links resolve."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
RUNNABLE = ["1-tensor-expressions.md", "2-schedules.md", "3-build-and-run.md", "4-tune.md"]


def blocks(path: Path) -> list[tuple[str, str]]:
    return re.findall(r"```(python|bash)\n(.*?)```", path.read_text(), re.S)


@pytest.mark.parametrize("page", RUNNABLE)
def test_tutorial_page_runs(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TILETUNE_NUM_THREADS", "1")
    ns: dict = {"__name__": f"docs_{page[0]}"}
    found = blocks(DOCS / "tutorial" / page)
    assert any(lang == "python" for lang, _ in found)
    for lang, code in found:
        if lang == "python":
            exec(compile(code, page, "exec"), ns)
            continue
        for line in code.strip().splitlines():
            argv = shlex.split(line.split("#")[0])
            assert argv[0] == "tiletune", line
            res = subprocess.run([sys.executable, "-m", "tiletune", *argv[1:]], cwd=tmp_path,
                                 env=dict(os.environ, PYTHONPATH=str(ROOT)),
                                 capture_output=True, text=True, timeout=600)
            assert res.returncode == 0, f"{line}\n{res.stdout[-1500:]}\n{res.stderr[-1500:]}"
    assert "Error" not in capsys.readouterr().err


def test_links_resolve():
    pages = list(DOCS.rglob("*.md"))
    assert len(pages) >= 8
    for page in pages:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page}: broken link {target}"
