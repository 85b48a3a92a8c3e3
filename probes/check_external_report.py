"""Check an external-test report (evaluate's `test_data_dir`) against two references: the probabilities a probe
gave the same scans with the same models (`chain N` of probes/independent_cohort.py's predictions-{model}.csv),
and the chain's own report, whose validation rows, SVM selection and operating-point thresholds the external
scans must not move.

usage: .venv/bin/python probes/check_external_report.py EXTERNAL_REPORT PROBE_DIR[::N] OWN_REPORT
  e.g. reports/trials/demo-external reports/trials/demo128-independent::0 /tmp/ci616/reports/demo
Prints, per model, the largest difference from the probe and both AUCs, then the comparisons with the own report.
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def read_predictions(report: Path, model: str) -> pd.DataFrame:
    return pd.read_csv(report / "predictions" / f"{model}.csv", dtype={"case_id": str})


def main(external: Path, probe: str, own: Path) -> None:
    probe_dir, _, chain = probe.partition("::")
    column = f"chain {chain or 0}"
    for model in ("lstm1", "lstm2", "e2e1", "e2e2"):
        test = read_predictions(external, model).query("split == 'test'")
        test = test.assign(case_id=test.case_id.str.split(":", n=1).str[1]).set_index("case_id")
        scored = pd.read_csv(Path(probe_dir) / f"predictions-{model}.csv", dtype={"case_id": str}).set_index("case_id")
        scored = scored.reindex(test.index)
        print(f"{model}: {len(test)} scans, largest |difference| from the probe {np.abs(test.probability - scored[column]).max():.3g}, "
              f"labels the same: {bool((test.label == scored.label).all())}, AUC {roc_auc_score(test.label, test.probability):.3f} "
              f"(probe {roc_auc_score(scored.label, scored[column]):.3f})")
    for model in sorted(p.stem for p in (external / "predictions").glob("*.csv")):
        ours, theirs = (read_predictions(report, model).query("split == 'val'").reset_index(drop=True) for report in (external, own))
        same_rows = ours.drop(columns="probability").equals(theirs.drop(columns="probability"))
        print(f"{model}: validation rows the own report's: {same_rows}, largest |difference| of their probabilities "
              f"{np.abs(ours.probability - theirs.probability).max():.3g}")
    print("svm_selection.csv the own report's:",
          pd.read_csv(external / "svm_selection.csv").equals(pd.read_csv(own / "svm_selection.csv")))
    print("operating-point thresholds the own report's:",
          pd.read_csv(external / "operating_point.csv").thresholds.tolist() == pd.read_csv(own / "operating_point.csv").thresholds.tolist())


if __name__ == "__main__":
    if len(sys.argv) != 4: raise SystemExit(__doc__)
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
