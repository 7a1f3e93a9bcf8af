"""The README's examples run exactly as written."""
import re
from pathlib import Path

import numpy as np

README = Path(__file__).parent.parent / "README.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), re.S)


def test_readme_matmul_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = blocks("python")[0]
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    np.testing.assert_allclose(ns["c"], ns["a"] @ ns["b"], rtol=1e-4)
    assert ns["t"].mean > 0
    c2 = np.empty_like(ns["c"])
    ns["g"](ns["a"], ns["b"], c2)
    np.testing.assert_array_equal(c2, ns["c"])
    assert "for" in capsys.readouterr().out


def test_readme_quick_start_commands():
    cmds = blocks("bash")[:2]
    assert cmds[0].strip().startswith("pip install -e . && tiletune tune --model resnet18")
    assert cmds[1].strip() == 'pip install -e ".[test]" && python -m pytest -q'
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert cmds[1].strip() in ci
