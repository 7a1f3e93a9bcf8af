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


def _tuned_records(path: Path) -> dict:
    """A records file whose best config for the README's layer packs weights differently
    from the heuristic default (the case that used to raise ArgumentError)."""
    import json

    from tiletune.schedules import conv2d
    from tiletune.tuner.templates.task import Task

    w = conv2d.Conv2dWorkload(1, 64, 56, 56, 64, 3, 3, stride=1, pad=1)
    d = conv2d.default_config(w)
    task = Task("conv2d_nchwc", (1, 64, 56, 56, 64, 3, 3, 1, 1))
    tuned = next(c for c in (task.space.get(i).to_json() for i in range(len(task.space)))
                 if (c["ic_bn"], c["oc_bn"]) != (d["ic_bn"], d["oc_bn"])
                 and conv2d.is_valid(w, c))
    rec = {"workload": task.workload_key, "config": tuned, "costs": [1e-4], "error": None,
           "tuner": "xgb", "timestamp": 0.0}
    path.write_text(json.dumps(rec) + "\n")
    return tuned


def test_readme_operator_library_example(tmp_path, monkeypatch):
    from tiletune.schedules import conv2d

    monkeypatch.chdir(tmp_path)
    tuned = _tuned_records(tmp_path / "tuned.jsonl")
    code = blocks("python")[1]
    assert "apply_history_best" in code
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    f, g = ns["f"], ns["g"]
    assert g.config == tuned and f.config == conv2d.default_config(ns["w"])
    expect = conv2d.reference(ns["data"], ns["weight"], 1, 1)
    np.testing.assert_allclose(ns["out"], expect, rtol=1e-3, atol=1e-3)
