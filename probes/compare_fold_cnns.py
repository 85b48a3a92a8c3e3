"""Out-of-fold comparison of cross-validated slice CNNs (the `cnn-fold{k}/best.pt` of each runs folder):
slice ROC AUC of the slice head against the slice labels, and scan ROC AUC of the maximum and the
95th percentile of the slice probabilities, each pooled over the folds' test scans.

usage: python probes/compare_fold_cnns.py DATA_DIR RUNS_DIR [RUNS_DIR ...]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from ich_study.datasets import assign_split, load_splits, read_manifest, read_slice_labels
from ich_study.preprocess import PreprocessConfig
from ich_study.reproduce import run_name
from ich_study.train import load_checkpoint, model_from_checkpoint, predict_scans


def out_of_fold_slice_probabilities(data_dir: Path, runs_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(slices: fold, case_id, label, probability; scans: fold, case_id, label, max, p95) over every fold."""
    manifest = read_manifest(data_dir)
    splits = load_splits(data_dir / "splits.csv", manifest)
    labels_by_case = {case: table.sort_values("slice_index")["label"].to_numpy()
                      for case, table in read_slice_labels(data_dir).groupby("case_id")}
    n_folds = int(splits["fold"].max()) + 1
    slices, scans = [], []
    for fold in range(n_folds):
        checkpoint = load_checkpoint(runs_dir / run_name("cnn", fold) / "best.pt", expect_stage="cnn")
        model = model_from_checkpoint(checkpoint, precision="float32").eval()
        config = PreprocessConfig.from_dict(checkpoint["preprocess"])
        test = assign_split(manifest, splits, fold=fold).query("split == 'test'")
        scored = predict_scans(model, test, config, data_dir / "cache", progress=False)
        for scan in scored.itertuples():
            probabilities = np.asarray(json.loads(scan.slice_probabilities))
            labels = labels_by_case[scan.case_id]
            if len(labels) != len(probabilities):
                raise ValueError(f"{scan.case_id}: {len(labels)} slice labels for {len(probabilities)} slices")
            slices += [{"fold": fold, "case_id": scan.case_id, "label": int(label), "probability": float(p)}
                       for label, p in zip(labels, probabilities)]
            scans.append({"fold": fold, "case_id": scan.case_id, "label": int(scan.label),
                          "max": float(probabilities.max()), "p95": float(np.percentile(probabilities, 95))})
    return pd.DataFrame(slices), pd.DataFrame(scans)


if __name__ == "__main__":
    if len(sys.argv) < 3: sys.exit(__doc__)
    torch.set_num_threads(1)
    data_dir = Path(sys.argv[1])
    for runs_dir in map(Path, sys.argv[2:]):
        slices, scans = out_of_fold_slice_probabilities(data_dir, runs_dir)
        per_fold = [round(roc_auc_score(g["label"], g["probability"]), 3) for _, g in slices.groupby("fold")]
        print(f"{runs_dir}: slice AUC {roc_auc_score(slices['label'], slices['probability']):.3f} "
              f"(per fold {per_fold}, {len(slices)} slices); scan AUC of the maximum "
              f"{roc_auc_score(scans['label'], scans['max']):.3f}, of the 95th percentile "
              f"{roc_auc_score(scans['label'], scans['p95']):.3f} ({len(scans)} scans)")
