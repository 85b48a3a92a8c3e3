"""Two reports of one method on different scans (e.g. two cohorts), model by model: each one's ROC AUC
on its validation and its test scans with the DeLong 95% interval, and the unpaired DeLong test
between the two test AUCs (z = difference / sqrt(variance a + variance b), two-sided p, b against a).

Unpaired: the two sets of scans are taken as independent samples. Where the scans are the same, use
probes/compare_reports.py (paired) instead; where they overlap in part, the p-value is only a guide.

usage: .venv/bin/python probes/compare_independent_reports.py REPORT_A REPORT_B
       e.g. reports/demo and reports/trials/demo-n1930 (see that trial's README)
"""
import math
import sys
from pathlib import Path

import pandas as pd
from scipy import stats as scipy_stats

from ich_study.stats import auc_confidence_interval, delong_auc_variance

from compare_reports import held_out_predictions


def auc_with_ci(labels, scores) -> str:
    """'AUC [low-high]': the ROC AUC of `scores` and its DeLong 95% interval."""
    low, auc, high = auc_confidence_interval(labels, scores)
    return f"{auc:.3f} [{low:.3f}-{high:.3f}]"


def describe(rows: pd.DataFrame) -> str:
    """'AUC [low-high] (n scans)' for the rows' labels and probabilities."""
    return f"{auc_with_ci(rows.label, rows.probability)} ({len(rows)})"


if __name__ == "__main__":
    if len(sys.argv) != 3: sys.exit(__doc__)
    report_a, report_b = map(Path, sys.argv[1:])
    models = sorted({p.stem for p in report_a.glob("predictions/*.csv")} & {p.stem for p in report_b.glob("predictions/*.csv")})
    if not models: sys.exit("the two reports have no model in common (predictions/*.csv)")
    print(f"a: {report_a}\nb: {report_b}\nmodel      validation a / b                          test a / b                                unpaired DeLong (test, b - a)")
    for model in models:
        val_a, val_b = held_out_predictions(report_a, model, "val"), held_out_predictions(report_b, model, "val")
        test_a, test_b = held_out_predictions(report_a, model), held_out_predictions(report_b, model)
        (auc_a, var_a), (auc_b, var_b) = delong_auc_variance(test_a.label, test_a.probability), \
                                         delong_auc_variance(test_b.label, test_b.probability)
        z = (auc_b - auc_a) / math.sqrt(var_a + var_b)
        p = 2 * scipy_stats.norm.sf(abs(z))
        print(f"{model:9s}  {describe(val_a)} / {describe(val_b)}   {describe(test_a)} / {describe(test_b)}"
              f"   {auc_b - auc_a:+.3f}, z {z:.2f}, p {p:.3f}")
