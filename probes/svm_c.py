"""Probe: the SVM baseline's regularisation C on training and validation scans (never test).

For a stage-1 `cnn` run, each scan's slice features are zero-padded (centred, to the longest scan of
the data set, test scans included as in `evaluate.cnn_baselines`: their length only, never their labels)
and flattened; for every C of `evaluate.SVM_C_GRID` a standardised linear SVM
(`evaluate.linear_svm`) is fitted on the training scans and its decision values ranked on the
training scans themselves (how closely it fits them) and on the validation scans (what
`evaluate.choose_svm_c` chooses by), and for two Cs below the grid (`BELOW_GRID`).

usage: .venv/bin/python probes/svm_c.py DATASET_DIR CNN_RUN_DIR
       e.g. data/demo-cohort runs/demo/cnn   (about 3 min on 2 cores for demo)
"""
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from ich_study.datasets import assign_split, load_splits, read_manifest
from ich_study.evaluate import SVM_C_GRID, _preprocess_config, _volume_tensor, linear_svm
from ich_study.train import load_checkpoint, model_from_checkpoint

# two Cs below SVM_C_GRID, to see whether the validation AUC still moves where the grid stops
BELOW_GRID = tuple(min(SVM_C_GRID) * 10.0 ** -k for k in (2, 1))


def padded_features(dataset_dir: Path, run_dir: Path):
    """Flattened, centred zero-padded slice features and labels of the training and validation scans,
    padded to the longest scan of the whole data set as `evaluate.cnn_baselines` pads them."""
    manifest = read_manifest(dataset_dir)
    manifest = assign_split(manifest, load_splits(dataset_dir / "splits.csv", manifest))
    checkpoint = load_checkpoint(run_dir / "best.pt")
    model, config = model_from_checkpoint(checkpoint).eval(), _preprocess_config(checkpoint)
    with torch.no_grad():
        features = [model.slice_features(_volume_tensor(image, config, dataset_dir / "cache", "cpu"))[0].float().numpy()
                    for image in manifest.image]
    length = max(f.shape[0] for f in features)
    def pad(matrix):
        before = (length - matrix.shape[0]) // 2
        return np.pad(matrix, ((before, length - matrix.shape[0] - before), (0, 0))).ravel()
    rows = np.stack([pad(f) for f in features])
    return {split: (rows[(manifest.split == split).to_numpy()], manifest.label[manifest.split == split].to_numpy())
            for split in ("train", "val")}


if __name__ == "__main__":
    if len(sys.argv) != 3: sys.exit(__doc__)
    data = padded_features(Path(sys.argv[1]), Path(sys.argv[2]))
    (train_x, train_y), (val_x, val_y) = data["train"], data["val"]
    print(f"{len(train_y)} training scans, {len(val_y)} validation scans, {train_x.shape[1]} features")
    for c in BELOW_GRID + SVM_C_GRID:
        svm = linear_svm(c).fit(train_x, train_y)
        print(f"C = {c:g}{' (below the grid)' if c in BELOW_GRID else ''}: ROC AUC on the training scans {roc_auc_score(train_y, svm.decision_function(train_x)):.3f}, "
              f"on the validation scans {roc_auc_score(val_y, svm.decision_function(val_x)):.3f}")
