"""Probe: the SVM baseline's regularisation C on training and validation scans (never test).

For a stage-1 `cnn` run, the scans are split as `evaluate.evaluate_study` splits them for that run
(its fold and validation fraction) and their slice features flattened as `evaluate.cnn_baselines`
flattens them (`cnn_slice_outputs`, `padded_feature_rows`: centred zero-padding to the longest
scan of the run's rows, test scans included for their length only, never their labels). For every
C of `evaluate.SVM_C_GRID`, and for two Cs below it (`BELOW_GRID`), a standardised linear SVM
(`evaluate.linear_svm`) is fitted on the training scans and its decision values ranked on the
training scans themselves (how closely it fits them) and on the validation scans (what
`evaluate.choose_svm_c` chooses by: its validation AUCs are those of the report's svm_selection.csv).

usage: .venv/bin/python probes/svm_c.py DATASET_DIR CNN_RUN_DIR
       e.g. data/demo-cohort runs/demo/cnn   (about 2 min on 2 cores for demo)
"""
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from ich_study.evaluate import (SVM_C_GRID, _fold_manifest, cnn_slice_outputs, linear_svm, padded_feature_rows,
                                read_dataset, run_fold)

# two Cs below SVM_C_GRID, to see whether the validation AUC still moves where the grid stops
BELOW_GRID = tuple(min(SVM_C_GRID) * 10.0 ** -k for k in (2, 1))


def split_feature_rows(dataset_dir: Path, run_dir: Path, kept_splits: tuple[str, ...] = ("train", "val")
                       ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (flattened padded slice features, labels)} of the run's scans of `kept_splits` (training and validation)."""
    manifest, splits = read_dataset(dataset_dir)
    rows = _fold_manifest(manifest, splits, run_fold(run_dir, 0, 1), run_dir)
    rows = rows[rows.split.isin(["train", "val", "test"])]
    features, _ = cnn_slice_outputs(run_dir, rows, dataset_dir / "cache", "cpu")
    flat = padded_feature_rows(features)
    return {split: (np.stack([flat[c] for c in part.case_id]), part.label.to_numpy())
            for split, part in rows.groupby("split") if split in kept_splits}


if __name__ == "__main__":
    if len(sys.argv) != 3: sys.exit(__doc__)
    data = split_feature_rows(Path(sys.argv[1]), Path(sys.argv[2]))
    (train_x, train_y), (val_x, val_y) = data["train"], data["val"]
    print(f"{len(train_y)} training scans, {len(val_y)} validation scans, {train_x.shape[1]} features")
    for c in BELOW_GRID + SVM_C_GRID:
        svm = linear_svm(c).fit(train_x, train_y)
        below = " (below the grid)" if c in BELOW_GRID else ""
        print(f"C = {c:g}{below}: ROC AUC on the training scans {roc_auc_score(train_y, svm.decision_function(train_x)):.3f}, "
              f"on the validation scans {roc_auc_score(val_y, svm.decision_function(val_x)):.3f}")
