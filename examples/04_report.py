"""Tutorial step 4, continued: a report of tuning records (what ``tiletune report`` does).

Run ``examples/03_tune_a_template.py`` first (it writes ``matmul.jsonl``), then

    python examples/04_report.py [records.jsonl]     # -> report.html and plots/*.png
"""
import sys
from pathlib import Path

from tiletune.report import write_report


def main(records: str = "matmul.jsonl") -> None:
    if not Path(records).exists():
        sys.exit(f"{records} not found: run examples/03_tune_a_template.py first")
    data = write_report([records], "report.html", png_dir="plots")
    for w in data.workloads:
        runs = ", ".join(f"{c.label}: {len(c.trials)} trials" for c in w.curves)
        print(f"{w.name}: best {w.best_gflops:.2f} {w.unit} ({runs})")
    print("wrote report.html and plots/; open the page in a browser")


if __name__ == "__main__":
    main(*sys.argv[1:2])
