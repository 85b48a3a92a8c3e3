"""Probe: the scale of what stage 2's BiLSTM reads, training scans only (never validation or test).

Stage 2 feeds the frozen slice CNN's 512-vectors (after two ReLU dense layers) to a BiLSTM whose input
weights are Glorot-uniform. If those vectors are large, the gates' pre-activations W x + b lie far out
on the sigmoid and tanh, where their gradients vanish, and the BiLSTM learns slowly whatever its learning
rate. This prints, for the first N training scans of a dataset as stage 2 reads them (no augmentation):
the vectors' per-feature mean and standard deviation, their norm, the share of zero entries; and for the
first BiLSTM layer as it starts (the initialisation of stage 2, seed of the profile) the spread of the
gates' input pre-activations and the share beyond |4| (sigmoid slope under 0.018), for the raw vectors
and for the vectors standardised per feature with the same scans' mean and standard deviation.

usage: .venv/bin/python probes/lstm_input_scale.py DATASET_DIR CNN_RUN_DIR [N_SCANS]
       e.g. data/demo-cohort runs/demo/cnn 60
"""
import sys
from pathlib import Path

import numpy as np
import torch

from ich_study.core import set_torch_threads
from ich_study.preprocess import load_preprocessed
from ich_study.train import TrainConfig, initial_model, load_checkpoint, run_tables


def stage2_model(dataset_dir: Path, cnn_run: Path) -> tuple[torch.nn.Module, TrainConfig]:
    """The model stage 2 starts from (the run's CNN, frozen; the BiLSTM as stage 2 initialises it), float32."""
    checkpoint = load_checkpoint(cnn_run / "best.pt", expect_stage="cnn")
    recorded = checkpoint["config"]
    config = TrainConfig(stage="lstm", experiment="probe", data_dir=str(dataset_dir), windows=recorded["windows"],
                         matrix=recorded["matrix"], base_width=recorded["base_width"], seed=recorded["seed"],
                         init_checkpoint=str(cnn_run / "best.pt"), precision="float32").resolved()
    return initial_model(config, checkpoint["architecture"]["in_channels"]).eval(), config


def training_features(model: torch.nn.Module, config: TrainConfig, n_scans: int) -> np.ndarray:
    """The frozen CNN's slice vectors (slices, 512) of the first `n_scans` training scans, as stage 2 reads them."""
    preprocess, cache_dir = config.preprocess_config(), Path(config.data_dir) / "cache"
    vectors = []
    with torch.no_grad():
        for image in run_tables(config)["train"].image[:n_scans]:
            volume = torch.from_numpy(np.ascontiguousarray(load_preprocessed(image, preprocess, cache_dir)))
            vectors.append(model.slice_features(volume[None])[0].numpy())
    return np.concatenate(vectors)


def gate_spread(model: torch.nn.Module, vectors: np.ndarray) -> dict[str, float]:
    """Pre-activations of the first BiLSTM layer's gates (forward direction, first step) for these inputs."""
    lstm = model.lstm.layers[0]
    with torch.no_grad():
        pre = torch.from_numpy(vectors) @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + lstm.bias_hh_l0
    pre = pre.numpy()
    return {"sd": float(pre.std()), "p99_abs": float(np.percentile(np.abs(pre), 99)),
            "share_beyond_4": float((np.abs(pre) > 4).mean())}


if __name__ == "__main__":
    set_torch_threads(2)
    dataset_dir, cnn_run = Path(sys.argv[1]), Path(sys.argv[2])
    n_scans = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    model, config = stage2_model(dataset_dir, cnn_run)
    vectors = training_features(model, config, n_scans)
    mean, sd = vectors.mean(0), vectors.std(0)
    print(f"{len(vectors)} slices of {n_scans} training scans, {vectors.shape[1]} features")
    print(f"entries: mean {vectors.mean():.3f}, sd {vectors.std():.3f}, max {vectors.max():.2f}, "
          f"zero {np.mean(vectors == 0):.3f}; features never above zero: {int(np.sum(vectors.max(0) == 0))}")
    print(f"per-feature mean: median {np.median(mean):.3f}, max {mean.max():.2f}; "
          f"per-feature sd: median {np.median(sd):.3f}, max {sd.max():.2f}")
    norms = np.linalg.norm(vectors, axis=1)
    print(f"slice-vector norm: median {np.median(norms):.2f}, 5-95% {np.percentile(norms, 5):.2f}-{np.percentile(norms, 95):.2f}")
    standardised = ((vectors - mean) / np.where(sd > 0, sd, 1)).astype(np.float32)
    for name, inputs in (("raw", vectors), ("standardised", standardised)):
        spread = gate_spread(model, inputs)
        print(f"gate pre-activations, {name}: sd {spread['sd']:.2f}, 99th percentile of |.| {spread['p99_abs']:.2f}, "
              f"share beyond |4| {spread['share_beyond_4']:.3f}")
