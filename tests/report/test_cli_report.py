"""``tiletune report``: files written, exit codes, clear errors."""

from tiletune.cli import main


def test_report_verb_writes_page_and_pngs(small_records, tmp_path, capsys):
    clean = tmp_path / "clean.jsonl"
    clean.write_text("".join(small_records.read_text().splitlines(True)[:12]))  # dense only
    out, pngs = tmp_path / "r.html", tmp_path / "png"
    assert main(["report", str(clean), "-o", str(out), "--png", str(pngs), "--peak", "90",
                 "--title", "my <run>"]) == 0
    text = out.read_text()
    assert "<title>my &lt;run&gt;</title>" in text and text.count("<svg") == 3
    assert "of the FMA peak of 1 core(s)" in text and "BuildError: 1, RunTimeout: 1" in text
    assert sorted(p.name for p in pngs.iterdir()) == [
        "dense-64-64-64-time.png", "dense-64-64-64-trials.png", "summary.png"]
    assert "wrote" in capsys.readouterr().err


def test_report_exit_code_1_on_skipped_lines(small_records, tmp_path, capsys):
    assert main(["report", str(small_records), "-o", str(tmp_path / "r.html"),
                 "--no-peak", "-q"]) == 1
    assert capsys.readouterr().err == ""


def test_report_errors(tmp_path, capsys):
    assert main(["report", "-o", str(tmp_path / "r.html")]) == 2
    assert "nothing to report" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.jsonl"), "--no-peak"]) == 2
    assert "cannot read records file" in capsys.readouterr().err
    bad = tmp_path / "p.json"
    bad.write_text("{}")
    assert main(["report", "--profile", str(bad), "-o", str(tmp_path / "r.html")]) == 2
    assert "'operators' list" in capsys.readouterr().err


def test_python_dash_m_tiletune_report_help():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "tiletune", "report", "-h"],
                         capture_output=True, text=True, check=True)
    assert "--png DIR" in out.stdout
