"""Probe toward the 20 minutes: can the slice CNN learn in half the batches at a larger learning rate?

Trains stage `cnn` again with the settings of a finished run (its config.json) but for fewer batches
and at another Adam learning rate, then prints, for the new run and the finished one: the validation
accuracy of each evaluation (the paper's selection), the batch chosen, and the slice ROC AUC of the
chosen checkpoint on every validation slice (not only the 500 it was chosen on). Validation slices
only; no test scan is read.

    .venv/bin/python probes/slice-cnn/faster_lr.py RUN_DIR OUT_DIR --lr 3e-4 --batches 3000
    # e.g. RUN_DIR runs/demo/cnn of `make reproduce`, OUT_DIR runs/probe-faster-lr
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ich_study.core import set_torch_threads
from ich_study.preprocess import SliceDataset
from ich_study.train import (TrainConfig, load_checkpoint, model_from_checkpoint, predict_slices, run_tables,
                             safe_auc, train_stage)


def slice_auc(run_dir: Path, config: TrainConfig) -> float:
    """ROC AUC of a cnn run's best.pt on every validation slice of its dataset."""
    checkpoint = load_checkpoint(run_dir / "best.pt", expect_stage="cnn")
    slices = run_tables(config)["val_slices"]
    dataset = SliceDataset(slices, config.preprocess_config(), augment=False,
                           cache_dir=config.cache_dir or Path(config.data_dir) / "cache")
    predictions = predict_slices(model_from_checkpoint(checkpoint), dataset, np.arange(len(dataset)), "cpu", 50, False)
    return safe_auc(predictions["label"], predictions["probability"])


def summary(run_dir: Path, config: TrainConfig) -> dict:
    metrics = pd.read_csv(run_dir / "metrics.csv")
    best = metrics.loc[metrics.val_metric.idxmax()]
    return {"run": str(run_dir), "lr": config.lr, "batches": int(metrics.step.max()), "chosen_batch": int(best.step),
            "chosen_accuracy": float(best.val_metric), "slice_auc_all_val": round(slice_auc(run_dir, config), 4),
            "seconds": float(metrics.seconds.sum()),
            "accuracy_by_batch": {int(s): round(float(a), 3) for s, a in zip(metrics.step, metrics.val_metric)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished stage-cnn run (its config.json and best.pt)")
    parser.add_argument("out_dir", type=Path, help="runs folder of the probe's run")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batches", type=int, default=3000)
    args = parser.parse_args()
    set_torch_threads()
    reference = TrainConfig(**json.loads((args.run_dir / "config.json").read_text(encoding="utf-8")))
    probe = replace(reference, runs_dir=str(args.out_dir), experiment=f"cnn-lr{args.lr:g}-{args.batches}",
                    lr=args.lr, n_samples=args.batches * reference.batch_slices)
    train_stage(probe, progress=False)
    for run_dir, config in ((args.run_dir, reference), (probe.run_dir, probe)):
        print(json.dumps(summary(run_dir, config.resolved())), flush=True)


if __name__ == "__main__":
    main()
