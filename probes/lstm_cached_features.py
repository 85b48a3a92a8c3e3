"""Probe: does stage 2 (the BiLSTM on the frozen slice CNN) gain from the paper's ~13,000 samples?

Stage 2 trains 500 scans in the CPU profiles because each step reads, augments and runs a volume
through the frozen CNN. With the CNN frozen, a scan's slice features can be computed once per
augmented copy and the BiLSTM trained on them alone, many times faster per step. This probe takes a
finished chain's stage-2 config (its CNN, data, seed), computes the features of `--copies`
augmented copies of every training scan (copy k: the trainer's own augmentation of the scan's draw k)
and of the validation scans (not augmented), trains a fresh BiLSTM + head exactly as stage 2 starts
it (same initial weights, RMSprop at the run's learning rate, balanced draws of batch 1), and writes
the validation AUC every `--eval-every` steps. Validation scans only: the test scans are not read.

    .venv/bin/python probes/lstm_cached_features.py /tmp/ci609/runs/demo/lstm2 --steps 13000 --out /tmp/probe
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ich_study.core import set_seed, set_torch_threads, write_csv, write_json
from ich_study.preprocess import Draw, VolumeDataset, balanced_sampler, load_preprocessed
from ich_study.train import TrainConfig, initial_model, optimizer_for, run_tables, safe_auc


def features_of(model, volume: np.ndarray) -> torch.Tensor:
    """The frozen CNN's (N, 512) features of one preprocessed volume (N, C, H, W)."""
    with torch.no_grad():
        return model.slice_features(torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None])[0].float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished stage-2 run (its config.json is read)")
    parser.add_argument("--steps", type=int, default=13000)
    parser.add_argument("--copies", type=int, default=8, help="augmented copies per training scan")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--lr", type=float, default=None, help="default: the run's")
    parser.add_argument("--batch", type=int, default=1,
                        help="scans per optimiser step (the mean of their losses; the paper: 1)")
    parser.add_argument("--features", type=Path, default=None,
                        help="a .pt file keeping the computed features: read if it exists, else written")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    set_torch_threads(2)
    config = TrainConfig(**json.loads((args.run_dir / "config.json").read_text(encoding="utf-8"))).resolved()
    preprocess = config.preprocess_config()
    tables = run_tables(config)
    cache_dir = Path(config.cache_dir) if config.cache_dir else Path(config.data_dir) / "cache"   # as train_stage
    train_set = VolumeDataset(tables["train"], preprocess, augment=True, cache_dir=cache_dir, seed=config.seed)
    model = initial_model(config, train_set[0]["volume"].shape[1])
    started = time.perf_counter()
    if args.features is not None and args.features.exists():
        train_features, val_features = torch.load(args.features)
        assert len(train_features) == len(train_set) and len(train_features[0]) == args.copies, args.features
    else:
        train_features = [[features_of(model, train_set[Draw(index, draw)]["volume"].numpy())
                           for draw in range(args.copies)] for index in range(len(train_set))]
        val_features = [features_of(model, load_preprocessed(path, preprocess, cache_dir))
                        for path in tables["val"]["image"]]
        if args.features is not None: torch.save((train_features, val_features), args.features)
    feature_seconds = time.perf_counter() - started
    val_labels = tables["val"]["label"].astype(int).to_numpy()
    optimizer = optimizer_for(model, "lstm", args.lr or config.lr)
    draws = list(iter(balanced_sampler(train_set.labels, args.steps * args.batch, config.seed)))
    copy_rng = np.random.default_rng([config.seed, 13000])
    set_seed(config.seed + 1)
    history, losses, started = [], [], time.perf_counter()
    for step in range(1, args.steps + 1):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        for index in draws[(step - 1) * args.batch:step * args.batch]:     # sequences differ in length: one by one
            sequence = train_features[int(index)][int(copy_rng.integers(args.copies))][None]
            _, image_vector = model.lstm(sequence)
            loss = F.cross_entropy(model.head(image_vector), torch.tensor([int(train_set.labels[int(index)])]))
            (loss / args.batch).backward()
            losses.append(float(loss.detach()))
        optimizer.step()
        if step % args.eval_every == 0:
            model.eval()
            scores = [float(model.predict_from_features(features[None])[0][0]) for features in val_features]
            history.append({"step": step, "train_loss": float(np.mean(losses)), "val_auc": safe_auc(val_labels, scores),
                            "seconds": round(time.perf_counter() - started, 1)})
            losses = []
            print(history[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(pd.DataFrame(history), args.out / "curve.csv")
    write_json({"run_dir": str(args.run_dir), "steps": args.steps, "batch": args.batch, "copies": args.copies,
                "lr": args.lr or config.lr,
                "feature_seconds": round(feature_seconds, 1), "train_scans": len(train_set),
                "val_scans": len(val_features)}, args.out / "probe.json")


if __name__ == "__main__":
    main()
