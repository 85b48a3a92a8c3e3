"""Benchmark of the synthetic cohort generator (ich_study.synthetic), not a test.

Writes small cohorts with `synthesize_cohort` into a temporary folder and prints cases per
minute and the peak resident memory of a worker process (resource.getrusage, RUSAGE_CHILDREN:
the largest child), at the demo size (matrix 128, 48-72 slices) and at the paper's size
(matrix 512, 280-450 slices; only a few cases).

    python bench/bench_synthetic.py                   # demo: 20 cases, full: 2 cases, 2 workers
    python bench/bench_synthetic.py --demo-cases 300  # the demo profile's whole cohort
    python bench/bench_synthetic.py --blas            # demo cases with one BLAS thread per worker (as
                                                      # synthesize_cohort does) against the BLAS default
"""
import argparse
import hashlib
import json
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ich_study import synthetic
from ich_study.synthetic import synthesize_cohort


def measure(n_cases: int, matrix: int, slices: str, workers: int, blas_default: bool = False) -> dict:
    """Write `n_cases` cases in a fresh process pool; cases/minute, worker peak memory (MiB) and a digest of
    the images and masks written. `blas_default`: leave numpy's BLAS threads in the workers at their default
    (one per core) instead of the one thread `synthesize_cohort` sets."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        # a separate parent process, so RUSAGE_CHILDREN measures the workers of this run only
        with ProcessPoolExecutor(max_workers=1) as runner:
            peak_kib = runner.submit(_run, folder, n_cases, matrix, slices, workers, blas_default).result()
        seconds = time.perf_counter() - started
        cohort = json.loads((Path(folder) / "cohort" / "cohort.json").read_text(encoding="utf-8"))
        digest = hashlib.sha256()
        for path in sorted((Path(folder) / "cohort").glob("[im]*/*.nii.gz")): digest.update(path.read_bytes())
    return {"matrix": matrix, "slices": slices, "cases": n_cases, "workers": workers,
            "blas_threads": "default" if blas_default else 1, "seconds": round(seconds, 1),
            "cases_per_minute": round(60 * n_cases / seconds, 1),
            "seconds_per_case_in_worker": round(cohort["case_seconds"] / n_cases, 2),
            "peak_worker_memory_mib": round(peak_kib / 1024), "sha256_of_scans": digest.hexdigest()[:16]}


def _run(folder: str, n_cases: int, matrix: int, slices: str, workers: int, blas_default: bool = False) -> int:
    if blas_default:
        synthetic._one_blas_thread = lambda: None       # the worker initializer, looked up when the pool starts
    synthesize_cohort(Path(folder) / "cohort", n_cases, matrix=matrix, slices=slices, seed=0, workers=workers, progress=False)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return children if workers > 1 else own


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-cases", type=int, default=20)
    parser.add_argument("--full-cases", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--blas", action="store_true", help="only the demo cases, BLAS default against one thread")
    args = parser.parse_args(argv)
    if args.blas:
        default, one = (measure(args.demo_cases, 128, "48-72", args.workers, blas_default=flag) for flag in (True, False))
        print(json.dumps(default)); print(json.dumps(one))
        print(json.dumps({"speed_ratio_one_blas_thread_over_default": round(default["seconds"] / one["seconds"], 2),
                          "same_scans": default["sha256_of_scans"] == one["sha256_of_scans"]}))
        return
    results = [measure(args.demo_cases, 128, "48-72", args.workers)]
    if args.full_cases:
        results.append(measure(args.full_cases, 512, "280-450", min(args.workers, args.full_cases)))
    for result in results:
        print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
