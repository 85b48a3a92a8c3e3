"""Out-of-fold comparison of cross-validated slice CNNs (the `cnn-fold{k}/best.pt` of each runs folder):
slice ROC AUC of the slice head against the slice labels, and scan ROC AUC of the maximum and the
95th percentile of the slice probabilities, each pooled over the folds' test scans.

usage: python probes/compare_fold_cnns.py DATA_DIR RUNS_DIR [RUNS_DIR ...] [--save DIR] [--against REPORT_DIR] [--paired]
  --save DIR           write each runs folder's out-of-fold scan scores to DIR/<runs folder name>-scans.csv
  --against REPORT_DIR also give each scan AUC's DeLong 95% interval and DeLong's paired test against the
                       report's own cnn-max / cnn-p95 test predictions on the same scans (e.g. reports/ct-ich)
  --paired             also DeLong's paired test of each later runs folder against the first, on the same scans
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from ich_study.core import write_csv
from ich_study.datasets import assign_split, load_splits, read_manifest, read_slice_labels
from ich_study.preprocess import PreprocessConfig
from ich_study.reproduce import run_name
from ich_study.stats import auc_confidence_interval, delong_paired_test, roc_auc
from ich_study.train import load_checkpoint, model_from_checkpoint, predict_scans


def out_of_fold_slice_probabilities(data_dir: Path, runs_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(slices: fold, case_id, slice_index, label, probability; scans: fold, case_id, label, max, p95) over every fold."""
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
            slices += [{"fold": fold, "case_id": scan.case_id, "slice_index": index, "label": int(label),
                        "probability": float(p)} for index, (label, p) in enumerate(zip(labels, probabilities))]
            scans.append({"fold": fold, "case_id": scan.case_id, "label": int(scan.label),
                          "max": float(probabilities.max()), "p95": float(np.percentile(probabilities, 95))})
    return pd.DataFrame(slices), pd.DataFrame(scans)


def report_scores(report_dir: Path) -> pd.DataFrame:
    """A report's own CNN baselines on its test scans: case_id, label, max (cnn-max), p95 (cnn-p95)."""
    tables = [pd.read_csv(report_dir / "predictions" / f"cnn-{summary}.csv").query("split == 'test'")
              [["case_id", "label", "probability"]].rename(columns={"probability": summary}) for summary in ("max", "p95")]
    return tables[0].merge(tables[1], on=["case_id", "label"])


def paired_against(scans: pd.DataFrame, reference: pd.DataFrame, reference_prefix: str) -> list[str]:
    """One line per summary (max, p95): the scan AUC of `scans` with its DeLong 95% interval, the AUC of
    `reference` (case_id, label, max, p95: a report's baselines or another runs folder's scores, named in the
    line as `reference_prefix` + summary) on the same scans, and DeLong's paired p-value."""
    paired = scans.merge(reference, on="case_id", suffixes=("", "_reference"))
    if len(paired) != len(scans) or len(paired) != len(reference) or not (paired["label"] == paired["label_reference"]).all():
        raise ValueError(f"{reference_prefix}: its scans or labels are not the {len(scans)} scored here")
    lines = []
    for summary in ("max", "p95"):
        low, auc, high = auc_confidence_interval(paired["label"], paired[summary])
        reference_auc = roc_auc(paired["label"], paired[f"{summary}_reference"])
        _, p = delong_paired_test(paired["label"], paired[summary], paired[f"{summary}_reference"])
        lines.append(f"  {summary}: {auc:.3f} [{low:.3f}-{high:.3f}] against {reference_prefix}{summary} "
                     f"{reference_auc:.3f} on the same {len(paired)} scans (DeLong paired p = {p:.3g})")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("runs_dirs", type=Path, nargs="+")
    parser.add_argument("--save", type=Path, help="folder for <runs folder name>-scans.csv")
    parser.add_argument("--against", type=Path, help="a report folder whose cnn-max / cnn-p95 test predictions to compare with")
    parser.add_argument("--paired", action="store_true", help="pair each later runs folder against the first")
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    first: pd.DataFrame | None = None
    for runs_dir in arguments.runs_dirs:
        slices, scans = out_of_fold_slice_probabilities(arguments.data_dir, runs_dir)
        per_fold = [round(roc_auc_score(g["label"], g["probability"]), 3) for _, g in slices.groupby("fold")]
        print(f"{runs_dir}: slice AUC {roc_auc_score(slices['label'], slices['probability']):.3f} "
              f"(per fold {per_fold}, {len(slices)} slices); scan AUC of the maximum "
              f"{roc_auc_score(scans['label'], scans['max']):.3f}, of the 95th percentile "
              f"{roc_auc_score(scans['label'], scans['p95']):.3f} ({len(scans)} scans)")
        if arguments.against:
            print("\n".join(paired_against(scans, report_scores(arguments.against), f"{arguments.against}'s cnn-")))
        if arguments.paired and first is not None:
            print("\n".join(paired_against(scans, first[["case_id", "label", "max", "p95"]], f"{arguments.runs_dirs[0]}'s ")))
        if first is None: first = scans
        if arguments.save:
            target = write_csv(scans, arguments.save / f"{runs_dir.resolve().name}-scans.csv")
            print(f"  out-of-fold scan scores: {target}")
