"""DataLoader worker processes (`num_workers`) against none, for the training steps of the demo's stages
on this machine: the slice CNN (25 slices of 2 x 64 x 64 a batch), stage 2 (BiLSTMs on the frozen CNN)
and end-to-end training (`scratch`, the same work per step as stage 3), each at the demo's settings
(base width 16, brain and bone windows, float32 or bf16 as `precision = "auto"` picks). Every item
a worker makes is drawn from its own seeded generator, so the runs must train identically: the bench
checks that their losses agree to the bit and fails otherwise. A run of a stage starts its workers
once and keeps them for all its steps (1,500 scans or 6,000 batches in the demo), so the bench times
a short and a long run of each setting and divides their difference by the extra steps: the seconds
per step once running, without the start. Settings are interleaved and each measured `--repeats`
times; it prints the medians and the ratio to no workers.

    .venv/bin/python bench/bench_workers.py                    # a 24-scan cohort at the demo's size, made here
    .venv/bin/python bench/bench_workers.py --data data/demo-cohort   # or an existing dataset folder
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ich_study.core import cpu_model, set_torch_threads
from ich_study.model import resolve_precision
from ich_study.reproduce import build_dataset
from ich_study.train import TrainConfig, load_checkpoint, train_stage

DEMO = dict(windows=((40, 80), (600, 2800)), matrix=64, base_width=16, lstm_layers=2, precision="auto")


def small_demo_cohort(root: Path, n_cases: int = 24) -> Path:
    """A cohort of the demo's geometry (128 x 128 x 48-72 voxels), `n_cases` scans, with splits."""
    profile = {"name": "bench-workers", "data": {"source": "synthetic", "n_cases": n_cases, "matrix": 128,
               "slices": [48, 72], "positive_fraction": 0.5, "seed": 0, "workers": 2,
               "fractions": [0.5, 0.25, 0.25]}}
    return build_dataset(profile, "bench-workers", data_root=root)


def timed_run(config: TrainConfig) -> tuple[float, list[float]]:
    """Seconds of one `train_stage` call that stops after `stop_after_steps`, and its training losses."""
    started = time.perf_counter()
    train_stage(config, progress=False)
    seconds = time.perf_counter() - started
    return seconds, list(load_checkpoint(config.run_dir / "last.pt")["pending_losses"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="dataset folder (manifest, splits, slice labels); default: make a small one")
    parser.add_argument("--workers", default="0,1,2", help="worker counts to compare, the first is the reference")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_torch_threads(args.threads)
    worker_counts = [int(w) for w in args.workers.split(",")]
    print(f"CPU: {cpu_model()}; precision 'auto' -> {resolve_precision('auto', 'cpu')}; "
          f"torch {torch.__version__}, {args.threads} threads")
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch_dir = Path(scratch_dir)
        data_dir = Path(args.data) if args.data else small_demo_cohort(scratch_dir / "data")
        runs = scratch_dir / "runs"
        common = dict(DEMO, data_dir=str(data_dir), cache_dir=str(scratch_dir / "cache"), runs_dir=str(runs),
                      n_samples=10**6, eval_interval=10**6)
        # stage settings and the (short, long) run lengths in steps
        stages = {"slice CNN (batches of 25)": (dict(stage="cnn", min_lesion_mm2=30), (20, 80)),
                  "stage 2 (lstm)": (dict(stage="lstm", lr=1e-4), (20, 100)),
                  "end to end (scratch)": (dict(stage="scratch"), (10, 50))}
        # fill the preprocessing cache and train the CNN that stage 2 reads, outside the timings
        warm_cnn = TrainConfig(**common, **stages["slice CNN (batches of 25)"][0], stop_after_steps=20, experiment="warm-cnn")
        timed_run(warm_cnn)
        timed_run(TrainConfig(**common, stage="lstm", stop_after_steps=2, experiment="warm-volumes",
                              init_checkpoint=str(warm_cnn.run_dir / "last.pt")))
        print("| stage: seconds per training step once running (start of a run) | "
              + " | ".join(f"{w} workers" for w in worker_counts) + " | "
              + " | ".join(f"{w} workers against {worker_counts[0]}" for w in worker_counts[1:]) + " |")
        print("| --- " * (2 * len(worker_counts)) + "|")
        for name, (stage, lengths) in stages.items():
            per_step: dict[int, list[float]] = {w: [] for w in worker_counts}
            start: dict[int, list[float]] = {w: [] for w in worker_counts}
            losses: dict[tuple[int, int], list[float]] = {}
            for repeat in range(args.repeats):
                for workers in worker_counts:
                    took = {}
                    for steps in lengths:
                        config = TrainConfig(**common, **stage, num_workers=workers, stop_after_steps=steps,
                                             experiment=f"{stage['stage']}-{workers}-{steps}-{repeat}",
                                             init_checkpoint=str(warm_cnn.run_dir / "last.pt") if stage["stage"] == "lstm" else "")
                        took[steps], run_losses = timed_run(config)
                        if losses.setdefault((workers, steps), run_losses) != run_losses:
                            raise SystemExit(f"{name}: {workers} workers trained differently from one repeat to the next")
                    short, long = lengths
                    per_step[workers].append((took[long] - took[short]) / (long - short))
                    start[workers].append(took[short] - short * per_step[workers][-1])
            reference = worker_counts[0]
            for steps in lengths:
                if any(losses[(w, steps)] != losses[(reference, steps)] for w in worker_counts):
                    raise SystemExit(f"{name}: the worker counts trained differently")
            step_s = {w: statistics.median(per_step[w]) for w in worker_counts}
            start_s = {w: statistics.median(start[w]) for w in worker_counts}
            print(f"| {name} | " + " | ".join(f"{step_s[w]:.3f} s ({start_s[w]:.1f} s)" for w in worker_counts) + " | "
                  + " | ".join(f"{step_s[reference] / step_s[w]:.2f}x" for w in worker_counts[1:]) + " |", flush=True)
        print("The losses of every stage agreed to the bit across worker counts and repeats.")


if __name__ == "__main__":
    main()
