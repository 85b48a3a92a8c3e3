"""Validation against test ROC AUC of every model of a report: per fold and their mean (validation),
and the pooled test AUC, from reports/{study}/predictions/*.csv; plus the minutes per step from
reproduce.json.

usage: .venv/bin/python probes/validation_vs_test.py reports/ct-ich [reports/demo ...]
"""
import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

for report in sys.argv[1:]:
    print(f"== {report}")
    for path in sorted(Path(report).glob("predictions/*.csv")):
        table = pd.read_csv(path)
        validation, test = table[table.split == "val"], table[table.split == "test"]
        per_fold = [roc_auc_score(rows.label, rows.probability)
                    for _, rows in validation.groupby("fold") if rows.label.nunique() == 2]
        print(f"{path.stem:9s} validation per fold {' '.join(f'{auc:.2f}' for auc in per_fold)}, mean "
              f"{sum(per_fold) / len(per_fold):.3f} ({len(validation)} scans) | test, pooled: "
              f"{roc_auc_score(test.label, test.probability):.3f} ({len(test)} scans)")
    seconds = json.loads((Path(report) / "reproduce.json").read_text())["seconds"]
    print("minutes:", {name: round(value / 60, 1) for name, value in seconds.items()})
