"""What `ICHNet.slice_influence` (the per-slice reading ich-predict prints and the report's *Where the models
look* measures) costs next to classifying the scan: one pass of the whole model against the N shortened
BiLSTM passes, on random inputs, in this machine's `precision = "auto"`, median of 3 after one warm-up.

    .venv/bin/python bench/bench_influence.py                  # demo (30 x 2 x 64 x 64) and the paper's size
    .venv/bin/python bench/bench_influence.py --skip-full      # demo size only (seconds)
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from ich_study.core import cpu_model, set_torch_threads
from ich_study.model import ICHNet, resolve_precision


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter(); function(); times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def measure(slices: int, channels: int, size: int, repeats: int) -> tuple[float, float]:
    """(seconds for the scan's probability from the volume, seconds for its slice influence from the features)."""
    torch.manual_seed(0)
    model = ICHNet(in_channels=channels, base_width=16, lstm_layers=2, hidden_size=512, precision="auto").eval()
    volume = torch.rand(1, slices, channels, size, size)
    with torch.inference_mode():
        features = model.slice_features(volume)
        classify = median_seconds(lambda: model.predict(volume), repeats)
        influence = median_seconds(lambda: model.slice_influence(features), repeats)
    return classify, influence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()
    threads = set_torch_threads()
    print(f"{cpu_model()}, {threads} torch threads, precision auto -> {resolve_precision('auto', 'cpu')}")
    print("| input | classify the scan (s) | slice influence (s) | influence / classify |")
    print("| --- | --- | --- | --- |")
    sizes = [("demo: 30 slices of 2 x 64 x 64", 30, 2, 64)]
    if not args.skip_full: sizes.append(("the paper's: 160 slices of 1 x 256 x 256", 160, 1, 256))
    for name, slices, channels, size in sizes:
        classify, influence = measure(slices, channels, size, args.repeats)
        print(f"| {name} | {classify:.3f} | {influence:.3f} | {influence / classify:.2f}x |")


if __name__ == "__main__":
    main()
