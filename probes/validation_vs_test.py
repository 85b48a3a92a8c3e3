"""Validation against test ROC AUC of every model of a report: per fold and their mean (validation),
and the pooled test AUC, from reports/{study}/predictions/*.csv; the minutes per step from
reproduce.json; and what choosing a checkpoint on so few scans gives without any signal: the mean
over folds of the best of K validation AUCs of scores that are pure noise (K independent
evaluations on each fold's validation scans, simulated 4,000 times; checkpoints of one run are
correlated, so this is an upper bound of the optimism).

usage: .venv/bin/python probes/validation_vs_test.py [--evaluations K] reports/ct-ich [reports/demo ...]
       (K: validations per run, 6 in ct-ich's stages 2 and 3: 300 scans, one every 50)
"""
import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

def best_of_noise(n_positive: int, n_negative: int, evaluations: int, repeats: int = 4000, seed: int = 0) -> float:
    """Mean of the best of `evaluations` ROC AUCs of random scores on a set of this composition."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_positive), np.zeros(n_negative)]
    return float(np.mean([max(roc_auc_score(labels, rng.normal(size=len(labels))) for _ in range(evaluations))
                          for _ in range(repeats)]))

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("reports", nargs="+")
parser.add_argument("--evaluations", type=int, default=6)
arguments = parser.parse_args()
for report in arguments.reports:
    print(f"== {report}")
    for path in sorted(Path(report).glob("predictions/*.csv")):
        table = pd.read_csv(path)
        validation, test = table[table.split == "val"], table[table.split == "test"]
        per_fold = [roc_auc_score(rows.label, rows.probability)
                    for _, rows in validation.groupby("fold") if rows.label.nunique() == 2]
        print(f"{path.stem:9s} validation per fold {' '.join(f'{auc:.2f}' for auc in per_fold)}, mean "
              f"{sum(per_fold) / len(per_fold):.3f} ({len(validation)} scans) | test, pooled: "
              f"{roc_auc_score(test.label, test.probability):.3f} ({len(test)} scans)")
    counts = validation.groupby("fold").label.agg(["sum", "count"])      # every model validates on the same scans
    noise = [best_of_noise(int(row["sum"]), int(row["count"] - row["sum"]), arguments.evaluations)
             for _, row in counts.iterrows()]
    print(f"no signal at all, best of {arguments.evaluations} validations per fold: mean {np.mean(noise):.3f} "
          f"(validation positives / scans per fold: {', '.join(f'{p}/{n}' for p, n in zip(counts['sum'], counts['count']))})")
    seconds = json.loads((Path(report) / "reproduce.json").read_text())["seconds"]
    print("minutes:", {name: round(value / 60, 1) for name, value in seconds.items()})
