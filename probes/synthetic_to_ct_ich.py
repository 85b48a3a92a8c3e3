"""Probe (sim-to-real, zero-shot): a slice CNN pre-trained on the synthetic cohort alone, in the windows
of the CT-ICH JPGs, scored on every CT-ICH scan. None of the CT-ICH scans trains or chooses anything,
so all 62 are test scans: slice ROC AUC over every slice, and scan AUC of the maximum and 95th
percentile of the slice probabilities, over all slices and over those inside the cranial cavity
(`ich-prepare --cavity`), each with DeLong's 95% interval. One pass of the CNN over the slices.
usage: synthetic_to_ct_ich.py SYNTHETIC_DATA CT_ICH_DATA OUT_DIR N_BATCHES
  SYNTHETIC_DATA: a cohort of ich-synth (e.g. data/demo-cohort of `make reproduce`)
  CT_ICH_DATA: `ich-prepare --source ct-ich --cavity` of ../shared/data/ct-ich"""
import sys, time
from pathlib import Path
import numpy as np, pandas as pd
from ich_study.core import set_torch_threads
from ich_study.datasets import read_manifest, read_slice_labels
from ich_study.preprocess import PreprocessConfig, SliceDataset
from ich_study.train import TrainConfig, load_checkpoint, model_from_checkpoint, predict_slices, train_stage

from compare_independent_reports import auc_with_ci

JPG_WINDOWS = ((40.0, 120.0), (700.0, 3200.0))     # brain and bone windows of the CT-ICH JPGs (level, width)
CT_ICH_INPUT = PreprocessConfig(windows=JPG_WINDOWS, max_filter="2x2", matrix=96)   # as profiles/ct-ich.toml reads it

def score(checkpoint_path: Path, manifest: pd.DataFrame, slices: pd.DataFrame, cache_dir: str) -> str:
    """Slice AUC, and scan AUCs of the maximum / 95th percentile over all and over cavity slices."""
    checkpoint = load_checkpoint(checkpoint_path)
    scored = predict_slices(model_from_checkpoint(checkpoint), SliceDataset(slices, CT_ICH_INPUT, cache_dir=cache_dir),
                            np.arange(len(slices)), "cpu", 50, False)
    scored = scored.merge(slices[["case_id", "slice_index", "cranial_cavity"]], on=["case_id", "slice_index"])
    labels = manifest.set_index("case_id").label
    parts = [f"{checkpoint_path.name} (batch {checkpoint['step']}): slice AUC {auc_with_ci(scored.label, scored.probability)}"]
    for where, rows in (("all slices", scored), ("cavity slices", scored[scored.cranial_cavity == 1])):
        per_scan = rows.groupby("case_id").probability
        maximum, p95 = per_scan.max(), per_scan.quantile(0.95)
        parts.append(f"scan AUC over {where}: maximum {auc_with_ci(labels[maximum.index], maximum)}, "
                     f"95th percentile {auc_with_ci(labels[p95.index], p95)}")
    return "; ".join(parts)

if __name__ == "__main__":
    set_torch_threads(2)
    synthetic_dir, ct_ich_dir, out_dir, n_batches = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    config = TrainConfig(stage="cnn", experiment=f"synthetic-cnn-jpg-windows-{n_batches}", data_dir=synthetic_dir,
                         runs_dir=f"{out_dir}/runs", windows=JPG_WINDOWS, matrix=96, max_filter="none", base_width=16,
                         n_samples=25 * n_batches, eval_interval=200, n_val_slices=500, min_lesion_mm2=30, seed=0)
    started = time.time()
    best = train_stage(config, progress=False)
    print(f"pre-training on {synthetic_dir}: {(time.time() - started) / 60:.1f} min", flush=True)
    manifest = read_manifest(ct_ich_dir)
    slices = read_slice_labels(ct_ich_dir).merge(manifest[["case_id", "image"]], on="case_id")
    print(f"CT-ICH: {len(manifest)} scans ({int(manifest.label.sum())} with ICH), {len(slices)} slices", flush=True)
    for name in ("best.pt", "last.pt"):
        print(score(best.with_name(name), manifest, slices, f"{out_dir}/cache"), flush=True)
