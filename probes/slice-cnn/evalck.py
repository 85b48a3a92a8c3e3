"""Scan AUC (maximum and 95th percentile of slice probabilities) of CNN checkpoints on one split,
read as 2x2x2-filtered volumes (what stages 2 and 3 read), or with another max filter ('2x2': every
slice kept, as in pre-training).
usage: evalck.py CHECKPOINT[,CHECKPOINT...] [SPLIT] [MAX_FILTER]   (PROBE_DATA: the dataset folder)"""
import json, os, sys
import numpy as np, pandas as pd
from ich_study.core import set_torch_threads
from ich_study.datasets import assign_split, load_splits, read_manifest
from ich_study.preprocess import PreprocessConfig
from ich_study.train import load_checkpoint, model_from_checkpoint, predict_scans, safe_auc

def scan_aucs(model, rows: pd.DataFrame, preprocess: PreprocessConfig, cache_dir: str) -> tuple[float, float]:
    """ROC AUC over `rows` of each scan's maximum and 95th percentile of slice-head probabilities."""
    scored = predict_scans(model, rows, preprocess, cache_dir, progress=False)
    slices = scored.slice_probabilities.map(json.loads)
    return (safe_auc(scored.label, slices.map(max)),
            safe_auc(scored.label, slices.map(lambda probabilities: np.percentile(probabilities, 95))))

if __name__ == "__main__":
    set_torch_threads(2)
    data_dir = os.environ.get("PROBE_DATA", "data/demo-cohort")
    split = sys.argv[2] if len(sys.argv) > 2 else "val"
    max_filter = sys.argv[3] if len(sys.argv) > 3 else "2x2x2"
    manifest = read_manifest(data_dir)
    rows = assign_split(manifest, load_splits(f"{data_dir}/splits.csv", manifest)).query("split == @split")
    for path in sys.argv[1].split(","):
        checkpoint = load_checkpoint(path)
        volumes = PreprocessConfig.from_dict({**checkpoint["preprocess"], "max_filter": max_filter})
        auc_max, auc_p95 = scan_aucs(model_from_checkpoint(checkpoint), rows, volumes, f"{data_dir}/cache")
        print(path, checkpoint["step"], split, max_filter, "scan max AUC", round(auc_max, 3), "p95", round(auc_p95, 3), flush=True)
