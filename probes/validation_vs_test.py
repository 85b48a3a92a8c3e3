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
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

@lru_cache(maxsize=None)      # folds of one composition share one simulation
def best_of_noise(n_positive: int, n_negative: int, evaluations: int, repeats: int = 4000, seed: int = 0) -> float:
    """Mean of the best of `evaluations` ROC AUCs of random scores on a set of this composition."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_positive), np.zeros(n_negative)]
    return float(np.mean([max(roc_auc_score(labels, rng.normal(size=len(labels))) for _ in range(evaluations))
                          for _ in range(repeats)]))

def summarise(report: Path, evaluations: int) -> None:
    """Print validation (per fold, mean) against pooled test AUC per model, the noise level and the minutes."""
    print(f"== {report}")
    tables = {path.stem: pd.read_csv(path) for path in sorted(report.glob("predictions/*.csv"))}
    for name, table in tables.items():
        validation, test = table[table.split == "val"], table[table.split == "test"]
        per_fold = [roc_auc_score(rows.label, rows.probability)
                    for _, rows in validation.groupby("fold") if rows.label.nunique() == 2]
        print(f"{name:9s} validation per fold {' '.join(f'{auc:.2f}' for auc in per_fold)}, mean "
              f"{sum(per_fold) / len(per_fold):.3f} ({len(validation)} scans) | test, pooled: "
              f"{roc_auc_score(test.label, test.probability):.3f} ({len(test)} scans)")
    first = next(iter(tables.values()))               # every model of a report validates on the same scans
    counts = first[first.split == "val"].groupby("fold").label.agg(["sum", "count"])
    noise = [best_of_noise(int(positives), int(scans - positives), evaluations)
             for positives, scans in zip(counts["sum"], counts["count"])]
    print(f"no signal at all, best of {evaluations} validations per fold: mean {np.mean(noise):.3f} "
          f"(validation positives / scans per fold: {', '.join(f'{p}/{n}' for p, n in zip(counts['sum'], counts['count']))})")
    seconds = json.loads((report / "reproduce.json").read_text(encoding="utf-8"))["seconds"]
    print("minutes:", {name: round(value / 60, 1) for name, value in seconds.items()})

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--evaluations", type=int, default=6)
    arguments = parser.parse_args()
    for report in arguments.reports:
        summarise(report, arguments.evaluations)
