"""bfloat16 against float32 at the demo's size on this machine's CPU: a slice-CNN training step
(25 slices, 2 channels, 64 x 64, Adam) and the prediction of one volume (30 slices), each with
channels_last as the profiles train. Tells whether this CPU computes bf16 natively (AVX512-BF16 or
AMX); where it does not, torch emulates bf16 and `precision = "auto"` (the profiles' setting)
trains in float32.

    .venv/bin/python bench/bench_precision.py            # median of 5 after one warm-up
    .venv/bin/python bench/bench_precision.py --size 128 --slices 60   # the 128 x 128 trial's inputs
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from ich_study.core import cpu_has_bf16, cpu_model, set_torch_threads
from ich_study.model import ICHNet, resolve_precision


def step_seconds(precision: str, repeats: int, slices: int = 25, size: int = 64) -> float:
    """Median seconds of one slice-CNN training step (forward, backward, Adam) in `precision`."""
    torch.manual_seed(0)
    model = ICHNet(in_channels=2, base_width=16, lstm_layers=2, hidden_size=512, precision=precision)
    model.use_cnn_dropout(True).train()
    optimizer = torch.optim.Adam(model.cnn.parameters(), 1e-4)
    images, labels = torch.rand(slices, 2, size, size), torch.arange(slices) % 2
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model._cnn(images, head=True), labels)
        loss.backward(); optimizer.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def predict_seconds(precision: str, repeats: int, slices: int = 30, size: int = 64) -> float:
    """Median seconds to predict one volume (scan and slice probabilities) in `precision`."""
    torch.manual_seed(0)
    model = ICHNet(in_channels=2, base_width=16, lstm_layers=2, hidden_size=512, precision=precision).eval()
    volume = torch.rand(1, slices, 2, size, size)
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter(); model.predict(volume); times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=64, help="in-plane pixels of the network's input")
    parser.add_argument("--slices", type=int, default=30, help="slices of the predicted volume")
    args = parser.parse_args()
    set_torch_threads(args.threads)
    print(f"CPU: {cpu_model()}; native bf16 (AVX512-BF16 or AMX): {cpu_has_bf16()}; "
          f"precision 'auto' -> {resolve_precision('auto', 'cpu')}; torch {torch.__version__}, {args.threads} threads")
    step = {p: step_seconds(p, args.repeats, size=args.size) for p in ("float32", "bf16")}
    predict = {p: predict_seconds(p, args.repeats, slices=args.slices, size=args.size) for p in ("float32", "bf16")}
    print(f"| what ({args.size} x {args.size}) | float32 | bf16 | bf16 / float32 |")
    print("| --- | --- | --- | --- |")
    print(f"| slice-CNN training step, 25 slices | {step['float32']:.3f} s | {step['bf16']:.3f} s | "
          f"{step['bf16'] / step['float32']:.2f}x |")
    print(f"| prediction of one volume, {args.slices} slices | {predict['float32']:.3f} s | {predict['bf16']:.3f} s | "
          f"{predict['bf16'] / predict['float32']:.2f}x |")


if __name__ == "__main__":
    main()
