"""Where the evaluation step of a chain spends its time: `evaluate_study` over a finished chain's runs
under cProfile, the 40 calls of most cumulative time printed (the study log's *Time taken* cites it:
the slice CNN over every scan for the baselines, the scan models over the validation and test scans,
the SVM's fits for C). Writes the report into OUT_DIR, not into reports/.

    .venv/bin/python probes/profile_evaluate.py DATASET_DIR RUNS_DIR OUT_DIR
    # e.g. data/demo-cohort runs/demo runs/probe-profile-evaluate
"""
import cProfile
import pstats
import sys

from ich_study.core import set_torch_threads
from ich_study.evaluate import evaluate_study, normalise_runs
from ich_study.reproduce import PAPER_EXPERIMENTS

if __name__ == "__main__":
    dataset_dir, runs_dir, out_dir = sys.argv[1:4]
    set_torch_threads()
    runs = normalise_runs({e.name: [f"{runs_dir}/{e.name}"] for e in PAPER_EXPERIMENTS})
    profiler = cProfile.Profile()
    profiler.runcall(evaluate_study, "profile", dataset_dir, runs, out_dir, n_boot=2000, target_sensitivity=0.98,
                     seed=0, level=0.95, device="auto", cache_dir=None, n_timing=10, command="probes/profile_evaluate.py")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
