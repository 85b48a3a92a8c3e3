"""Two models of one report on the same test scans: the paired DeLong test between them (z and
two-sided p, A against B), from REPORT/predictions/{A,B}.csv. The report's comparisons.csv holds
the paper's pairs only; this gives any other pair, such as a baseline against the full model.

usage: .venv/bin/python probes/paired_models.py REPORT A B [A B ...]
       e.g. reports/demo e2e2 cnn-p95 cnn-p95 cnn-max
"""
import sys
from pathlib import Path

import pandas as pd

from ich_study.stats import delong_paired_test, roc_auc

def test_rows(report: str, experiment: str) -> pd.DataFrame:
    predictions = pd.read_csv(Path(report) / "predictions" / f"{experiment}.csv")
    return predictions[predictions["split"] == "test"].set_index("case_id")

def main(report: str, *names: str) -> None:
    if not names or len(names) % 2: sys.exit(__doc__)
    for a, b in zip(names[0::2], names[1::2]):
        rows_a, rows_b = test_rows(report, a), test_rows(report, b)
        if set(rows_a.index) != set(rows_b.index): sys.exit(f"{a} and {b} do not hold the same test scans")
        rows_b = rows_b.loc[rows_a.index]
        if (rows_a["label"] != rows_b["label"]).any(): sys.exit(f"{a} and {b} disagree on labels")
        labels = rows_a["label"].to_numpy()
        z, p = delong_paired_test(labels, rows_a["probability"].to_numpy(), rows_b["probability"].to_numpy())
        print(f"{a:9s} {roc_auc(labels, rows_a['probability'].to_numpy()):.3f} vs {b:9s} "
              f"{roc_auc(labels, rows_b['probability'].to_numpy()):.3f} ({len(labels)} scans): DeLong z {z:.2f}, p {p:.3f}")

if __name__ == "__main__":
    main(*sys.argv[1:])
