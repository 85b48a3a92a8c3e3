"""How far two reports' predictions lie apart, model by model, scan by scan: whether the two CSVs are the same
bytes, and the largest and median absolute difference of the probabilities over every scan both score (all
splits). For two runs of one chain on other machines (reports/trials/float32-avx2), where paired DeLong tests
(probes/compare_reports.py) say nothing about how near two nearly equal runs came.

usage: .venv/bin/python probes/prediction_differences.py REPORT_A REPORT_B
"""
import sys
from pathlib import Path

import pandas as pd

if __name__ == "__main__":
    if len(sys.argv) != 3: sys.exit(__doc__)
    report_a, report_b = map(Path, sys.argv[1:])
    for path in sorted(report_a.glob("predictions/*.csv")):
        other = report_b / "predictions" / path.name
        a = pd.read_csv(path).set_index(["case_id", "split"]).sort_index()
        b = pd.read_csv(other).set_index(["case_id", "split"]).sort_index()
        if not a.index.equals(b.index) or not a.label.equals(b.label):
            sys.exit(f"{path.stem}: the two reports do not hold the same scans with the same labels")
        difference = (a.probability - b.probability).abs()
        same_bytes = path.read_bytes() == other.read_bytes()
        print(f"{path.stem:9s} {'same bytes' if same_bytes else 'other bytes'}; |difference| of the probabilities over "
              f"{len(a)} scans: largest {difference.max():.2g}, median {difference.median():.2g}, "
              f"equal in {int((difference == 0).sum())}")
