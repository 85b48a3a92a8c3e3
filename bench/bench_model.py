"""Speed and memory of ICHNet: inference per volume, achieved GFLOP/s against the machine's matmul
GFLOP/s, and training-step time and peak memory with and without activation checkpointing.

    .venv/bin/python bench/bench_model.py                      # the paper's size: 160 x 256 x 256, base 16
    .venv/bin/python bench/bench_model.py --slices 32 --size 128 --repeats 2   # quick look

Each training configuration runs in a fresh subprocess so that its peak memory (VmHWM on the
CPU, max_memory_allocated on CUDA) is its own. Prints a Markdown table for the README.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

import torch
import torch.nn.functional as F


def matmul_gflops(dtype: torch.dtype, device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """Measured dense matmul throughput of this machine in GFLOP/s."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats): a @ b
    _sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda": torch.cuda.synchronize()


def forward_gflop(args) -> float:
    """FLOPs of one forward pass (counted on the meta device: nothing is computed)."""
    from torch.utils.flop_counter import FlopCounterMode
    from ich_study.model import ICHNet
    with torch.device("meta"):
        model = ICHNet(in_channels=1, base_width=args.base_width, lstm_layers=args.lstm_layers,
                       precision="float32", channels_last=False).eval()
        volume = torch.empty(1, args.slices, 1, args.size, args.size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad(): model(volume)
    return counter.get_total_flops() / 1e9


def time_inference(args, options: dict, device: torch.device, rounds: int) -> dict:
    """Median seconds of one forward pass over a (1, slices, 1, size, size) volume for each named
    set of ICHNet options; the models take turns round by round, so that a machine whose speed
    drifts during the run affects them alike."""
    from ich_study.model import ICHNet
    torch.manual_seed(0)
    models = {name: ICHNet(in_channels=1, base_width=args.base_width, lstm_layers=args.lstm_layers,
                           **model_options).to(device).eval() for name, model_options in options.items()}
    volume = torch.rand(1, args.slices, 1, args.size, args.size, device=device)
    times = {name: [] for name in options}
    with torch.no_grad():
        for model in models.values(): model(volume)          # warm-up (oneDNN primitive creation)
        for _ in range(rounds):
            for name, model in models.items():
                _sync(device); start = time.perf_counter(); model(volume); _sync(device)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def train_step_child(args) -> None:
    """Run in a subprocess: one e2e training step; prints JSON with seconds and peak memory."""
    from ich_study.model import ICHNet
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ICHNet(in_channels=1, base_width=args.base_width, lstm_layers=args.lstm_layers,
                   precision=args.precision, channels_last=args.channels_last,
                   checkpoint_chunk=args.chunk or None).to(device).train()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4, alpha=0.9, eps=1e-7)
    volume = torch.rand(1, args.slices, 1, args.size, args.size, device=device)
    label = torch.tensor([1], device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(volume), label).backward()
        optimizer.step(); _sync(device)

    start_gb = _current_rss_gb()                                # runtime + model + input
    step()                                                      # warm-up, optimiser state allocated
    if device.type == "cuda": torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter(); step(); times.append(time.perf_counter() - start)
    peak_gb = torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else _peak_rss_gb()
    print(json.dumps({"seconds": statistics.median(times), "peak_gb": peak_gb,
                      "start_gb": start_gb if device.type == "cpu" else 0.0}))


def _peak_rss_gb() -> float:
    """This process's peak resident size (VmHWM). Not ru_maxrss: Linux carries that across fork and
    execve, so a child started by a big parent would report the parent's peak as its own."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"): return int(line.split()[1]) * 1024 / 1e9
    raise RuntimeError("no VmHWM in /proc/self/status")


def _current_rss_gb() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle: pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e9


def time_training(args, precision: str, channels_last: bool, chunk: int) -> dict:
    command = [sys.executable, __file__, "--child", "--slices", str(args.slices), "--size", str(args.size),
               "--base-width", str(args.base_width), "--lstm-layers", str(args.lstm_layers),
               "--repeats", str(args.repeats), "--threads", str(args.threads), "--device", args.device,
               "--precision", precision, "--chunk", str(chunk)] + (["--channels-last"] if channels_last else [])
    # a fixed glibc mmap threshold: with the default (dynamic) one, freed activation buffers stay in
    # the heap and the resident size after a few steps reflects fragmentation, not live memory
    environment = {**os.environ, "MALLOC_MMAP_THRESHOLD_": os.environ.get("MALLOC_MMAP_THRESHOLD_", "131072")}
    output = subprocess.run(command, capture_output=True, text=True, check=True, env=environment).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=160)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--base-width", type=int, default=16)
    parser.add_argument("--lstm-layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--chunks", default="16", help="checkpoint chunk sizes to measure, comma-separated")
    parser.add_argument("--inference-chunk", type=int, default=8,
                        help="slices per CNN call at inference on the CPU (ICHNet's default 8; 0: all at once)")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-float32", action="store_true", help="measure only the bf16 + channels_last setting")
    # child-process options
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="bf16", help=argparse.SUPPRESS)
    parser.add_argument("--channels-last", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child: return train_step_child(args)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    settings = [("float32", False), ("float32", True), ("bf16", True)]
    if args.skip_float32: settings = [("bf16", True)]
    print(f"# ICHNet benchmark {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, "
          f"{args.device}, {args.threads} threads")
    print(f"volume 1 x {args.slices} x {args.size} x {args.size}, base width {args.base_width}, "
          f"{args.lstm_layers} BiLSTM layers\n")
    gflop = forward_gflop(args)
    peak = {"float32": matmul_gflops(torch.float32, device), "bf16": matmul_gflops(torch.bfloat16, device)}
    print(f"forward pass: {gflop:.1f} GFLOP; measured matmul: float32 {peak['float32']:.0f} GFLOP/s, "
          f"bf16 {peak['bf16']:.0f} GFLOP/s (floor in bf16: {gflop / peak['bf16']:.2f} s)\n")
    print(f"| setting (median of {args.repeats}, interleaved) | inference s/volume | achieved GFLOP/s | % of matmul peak |")
    print("| --- | --- | --- | --- |")
    options = {(precision, channels_last): dict(precision=precision, channels_last=channels_last,
                                                inference_chunk=args.inference_chunk or None)
               for precision, channels_last in settings}
    for (precision, channels_last), seconds in time_inference(args, options, device, args.repeats).items():
        name = f"{precision}{' + channels_last' if channels_last else ''}"
        print(f"| {name} | {seconds:.2f} | {gflop / seconds:.0f} | {100 * gflop / seconds / peak[precision]:.0f}% |")
    if device.type == "cpu":
        rounds = 6
        options = {chunk: dict(precision="bf16", channels_last=True, inference_chunk=chunk) for chunk in (None, 4, 8, 16)}
        medians = time_inference(args, options, device, rounds)
        print(f"\n| bf16 + channels_last, slices per CNN call (median of {rounds}, interleaved) | inference s/volume | vs one call |")
        print("| --- | --- | --- |")
        for chunk, seconds in medians.items():
            print(f"| {chunk or f'all {args.slices}'} | {seconds:.2f} | {medians[None] / seconds:.2f}x |", flush=True)
    if args.skip_training: return
    print("\n| setting | checkpointing | training step s | peak memory GB | peak above start GB |")
    print("| --- | --- | --- | --- | --- |")
    chunks = [0] + [int(c) for c in args.chunks.split(",") if c]
    for precision, channels_last in settings:
        for chunk in chunks:
            result = time_training(args, precision, channels_last, chunk)
            name = f"{precision}{' + channels_last' if channels_last else ''}"
            print(f"| {name} | {'chunks of %d slices' % chunk if chunk else 'none'} | {result['seconds']:.2f} | "
                  f"{result['peak_gb']:.2f} | {result['peak_gb'] - result['start_gb']:.2f} |", flush=True)
    if device.type == "cpu":
        print("\n(peak memory on the CPU: the process's peak resident set size (VmHWM), including the Python "
              "runtime and libraries; 'above start' subtracts the resident size once the model and the "
              "input exist, leaving activations, gradients and optimiser state)")


if __name__ == "__main__":
    main()
