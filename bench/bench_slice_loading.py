"""Loading the slice CNN's training batches: every cached volume's memory map kept open (the default of
`SliceDataset` since 2026-12-04) against only the last two (`volumes_in_memory=2`, as before), where a
slice drawn at random from another scan re-opens its .npy file and recomputes its cache key. Both load
the demo's training draws (25 slices of 2 x 64 x 64 a batch, balanced, augmented) in the same order;
the bench checks that they give the same images to the bit and fails otherwise. The settings are
interleaved, each measured `--repeats` times over `--batches` batches; it prints the medians of the
milliseconds per batch and their ratio. The network's own step (about 150 ms on a 2-core AMD EPYC in
float32) is not part of it.

    .venv/bin/python bench/bench_slice_loading.py                          # a 24-scan cohort, made here
    .venv/bin/python bench/bench_slice_loading.py --data data/demo-cohort  # or an existing dataset folder
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ich_study.core import cpu_model
from ich_study.preprocess import SliceDataset
from ich_study.train import TrainConfig, batch_loader, run_tables, training_draws

from bench_workers import DEMO, small_demo_cohort


def batches_of(dataset: SliceDataset, config: TrainConfig, n_batches: int) -> tuple[float, list[torch.Tensor]]:
    """Seconds to load the first `n_batches` training batches of `dataset`, and the batches."""
    batches = iter(batch_loader(dataset, training_draws(dataset.labels, config), config.batch_size, 0))
    started = time.perf_counter()
    images = [next(batches)["image"] for _ in range(n_batches)]
    return time.perf_counter() - started, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="dataset folder (manifest, splits, slice labels); default: make a small one")
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}")
    with tempfile.TemporaryDirectory() as scratch_dir:
        data_dir = Path(args.data) if args.data else small_demo_cohort(Path(scratch_dir))
        config = TrainConfig(stage="cnn", experiment="bench", data_dir=str(data_dir), runs_dir=scratch_dir,
                             n_samples=25 * args.batches, min_lesion_mm2=30, augment=True,
                             **{k: v for k, v in DEMO.items() if k in ("windows", "matrix")}).resolved()
        table = run_tables(config)["train_slices"]
        cache_dir = data_dir / "cache"
        settings = {"all open": None, "last two": 2}
        milliseconds = {name: [] for name in settings}
        reference = None
        for repeat in range(args.repeats + 1):            # the first round fills the cache and the page cache
            for name, volumes_in_memory in settings.items():
                dataset = SliceDataset(table, config.preprocess_config(), augment=True, cache_dir=cache_dir,
                                       seed=config.seed, volumes_in_memory=volumes_in_memory)
                seconds, images = batches_of(dataset, config, args.batches)
                if reference is None: reference = images
                elif not all(torch.equal(a, b) for a, b in zip(reference, images)):
                    raise SystemExit(f"{name}: the batches differ from the first setting's")
                if repeat: milliseconds[name].append(1000 * seconds / args.batches)
        print(f"{len(table)} training slices of {table['image'].nunique()} scans; {args.batches} batches of 25, "
              f"median of {args.repeats} (the same images in both)")
        for name, values in milliseconds.items():
            print(f"  {name:9s} {statistics.median(values):6.1f} ms per batch  ({', '.join(f'{v:.1f}' for v in values)})")
        ratio = statistics.median(milliseconds["last two"]) / statistics.median(milliseconds["all open"])
        print(f"  all open is {ratio:.2f}x as fast as the last two")


if __name__ == "__main__":
    main()
