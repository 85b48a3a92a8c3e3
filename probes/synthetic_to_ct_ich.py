"""Probe (sim-to-real, zero-shot): a slice CNN pre-trained on the synthetic cohort alone, in the windows
of the CT-ICH JPGs, scored on every CT-ICH scan. None of the CT-ICH scans trains or chooses anything,
so all 62 are test scans: slice ROC AUC over every slice and scan AUC of the maximum and 95th
percentile of the slice probabilities, each with DeLong's 95% interval.
usage: synthetic_to_ct_ich.py SYNTHETIC_DATA CT_ICH_DATA OUT_DIR N_BATCHES
  SYNTHETIC_DATA: a cohort of ich-synth (e.g. data/demo-cohort of `make reproduce`)
  CT_ICH_DATA: `ich-prepare --source ct-ich --cavity` of ../shared/data/ct-ich"""
import json, sys, time
import numpy as np, pandas as pd
from ich_study.core import set_torch_threads
from ich_study.datasets import read_manifest, read_slice_labels
from ich_study.preprocess import PreprocessConfig, SliceDataset
from ich_study.stats import auc_confidence_interval
from ich_study.train import TrainConfig, load_checkpoint, model_from_checkpoint, predict_scans, predict_slices, train_stage

JPG_WINDOWS = ((40.0, 120.0), (700.0, 3200.0))     # brain and bone windows of the CT-ICH JPGs (level, width)

def with_ci(labels, scores) -> str:
    low, auc, high = auc_confidence_interval(np.asarray(labels), np.asarray(scores, dtype=float))
    return f"{auc:.3f} [{low:.3f}-{high:.3f}]"

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
    ct_ich = PreprocessConfig(windows=JPG_WINDOWS, max_filter="2x2", matrix=96)   # as profiles/ct-ich.toml reads it
    print(f"CT-ICH: {len(manifest)} scans ({int(manifest.label.sum())} with ICH), {len(slices)} slices", flush=True)
    for name in ("best.pt", "last.pt"):
        checkpoint = load_checkpoint(best.with_name(name))
        model = model_from_checkpoint(checkpoint)
        scored_slices = predict_slices(model, SliceDataset(slices, ct_ich, cache_dir=f"{out_dir}/cache"),
                                       np.arange(len(slices)), "cpu", 50, False)
        scored = predict_scans(model, manifest, ct_ich, f"{out_dir}/cache", progress=False)
        per_slice = scored.slice_probabilities.map(json.loads)
        print(f"{name} (batch {checkpoint['step']}): slice AUC {with_ci(scored_slices.label, scored_slices.probability)}; "
              f"scan AUC, maximum {with_ci(scored.label, per_slice.map(max))}, "
              f"95th percentile {with_ci(scored.label, per_slice.map(lambda p: np.percentile(p, 95)))}", flush=True)
