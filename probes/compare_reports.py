"""Two reports of one study, model by model, on the same test scans: each one's pooled test ROC AUC
and the paired DeLong test between them (z and two-sided p, b against a), from
reports/{study}/predictions/*.csv. The two must hold the same test scans with the same labels.

usage: .venv/bin/python probes/compare_reports.py REPORT_A REPORT_B
       e.g. reports/ct-ich and reports/trials/ct-ich-matrix128 (see that trial's README)
"""
import sys
from pathlib import Path

import pandas as pd

from ich_study.stats import delong_paired_test, roc_auc


def held_out_predictions(report: Path, model: str, split: str = "test") -> pd.DataFrame:
    """One model's rows of one split (the test scans unless told) of a report, indexed by case."""
    table = pd.read_csv(report / "predictions" / f"{model}.csv")
    return table[table.split == split].set_index("case_id").sort_index()


if __name__ == "__main__":
    if len(sys.argv) != 3: sys.exit(__doc__)
    report_a, report_b = map(Path, sys.argv[1:])
    for path in sorted(report_a.glob("predictions/*.csv")):
        a, b = held_out_predictions(report_a, path.stem), held_out_predictions(report_b, path.stem)
        if not a.index.equals(b.index) or not a.label.equals(b.label):
            sys.exit(f"{path.stem}: the two reports do not hold the same test scans with the same labels")
        z, p = delong_paired_test(a.label, b.probability, a.probability)
        print(f"{path.stem:9s} test AUC a {roc_auc(a.label, a.probability):.3f}, b {roc_auc(b.label, b.probability):.3f}"
              f" ({len(a)} scans): DeLong z {z:.2f}, p {p:.2g}")
