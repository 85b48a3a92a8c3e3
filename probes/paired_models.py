"""Two models of one report on the same test scans: the paired DeLong test between them (z and
two-sided p, A against B), from REPORT/predictions/{A,B}.csv, by the report's own
`evaluate.comparisons_table`. The report's comparisons.csv holds the paper's pairs only; this
gives any other pair, such as a baseline against the full model.

usage: .venv/bin/python probes/paired_models.py REPORT A B [A B ...]
       e.g. reports/demo e2e2 cnn-p95 cnn-p95 cnn-max
"""
import sys
from pathlib import Path

import pandas as pd

from ich_study.evaluate import comparisons_table

def main(report: str, *names: str) -> None:
    if not names or len(names) % 2: sys.exit(__doc__)
    pairs = list(zip(names[0::2], names[1::2]))
    predictions = {name: pd.read_csv(Path(report) / "predictions" / f"{name}.csv") for name in set(names)}
    for row in comparisons_table(predictions, pairs).itertuples():
        print(f"{row.experiment_a:9s} {row.auc_a:.3f} vs {row.experiment_b:9s} {row.auc_b:.3f} "
              f"({row.n} scans): DeLong z {row.z:.2f}, p {row.p:.3f}")

if __name__ == "__main__":
    main(*sys.argv[1:])
