"""Probe (2026-12-04): the demo's slice CNN at base width 8 on 128 x 128 slices without the 2x2 max filter,
6,000 batches, checkpoint chosen by slice AUC on the 500 validation slices: the pre-training of
reports/trials/demo-width8/auc (its `[stages.cnn]` and `[train]` settings) except the input's resolution.
Writes {PROBE_OUT}/runs/cnn-128-w8; score it and the 64 x 64 CNN of that trial with sliceauc.py (run.sh)."""
import os, time
from ich_study.core import set_torch_threads
from ich_study.train import TrainConfig, train_stage
set_torch_threads(2)
data, out = os.environ.get("PROBE_DATA", "data/demo-cohort"), os.environ.get("PROBE_OUT", "runs/probe-slice-cnn")
config = TrainConfig(stage="cnn", experiment="cnn-128-w8", data_dir=data, runs_dir=f"{out}/runs",
                     windows=((40, 80), (600, 2800)), matrix=128, max_filter="none",
                     base_width=8, n_samples=150000, eval_interval=200, n_val_slices=500, min_lesion_mm2=30,
                     cnn_selection="auc", seed=0, precision="auto")
started = time.perf_counter()
print(train_stage(config, progress=False), f"{(time.perf_counter() - started) / 60:.1f} min", flush=True)
