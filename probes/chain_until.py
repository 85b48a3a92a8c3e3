"""Probe: train a study's chain as `ich-reproduce` does, but only up to one experiment (`e2e2` by default), with no
`scratch2` and no evaluation: for trials whose rule reads only the scan models on an independent cohort
(`independent_cohort.py`), where `scratch2` (it does not read the slice CNN) and the report would cost 8-9 min a chain.
usage: chain_until.py [--until EXPERIMENT] [--seed N] [--study NAME] PROFILE
  PROFILE: a profile name or TOML path, as for ich-reproduce --profile; the cohort is the profile's (data/{name}-cohort,
           built or reused by the same function); --seed and --study as for ich-reproduce
The run folders go to runs/{study}/ exactly where ich-reproduce puts them, so that `ich-reproduce` with the same
profile, seed and study reuses them (its finished-run check) and trains only the rest and the report. The seconds of
each step are written to runs/{study}/chain_until.json (atomically)."""
import argparse
import time

from ich_study.core import load_profile, provenance, repo_root, set_torch_threads, write_json
from ich_study.reproduce import (PAPER_EXPERIMENTS, build_dataset, check_profile, float32_isa_caps, run_experiment,
                                 study_name, training_precision, with_training_seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--until", default="e2e2", choices=[e.name for e in PAPER_EXPERIMENTS])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--study", default=None)
    args = parser.parse_args()
    set_torch_threads(2)
    started = time.time()
    say = lambda line: print(f"[chain_until {(time.time() - started) / 60:5.1f} min] {line}", flush=True)
    loaded = load_profile(args.profile)
    profile = check_profile(with_training_seed(loaded, args.seed))
    study = study_name(loaded, args.seed, args.study)
    last = [e.name for e in PAPER_EXPERIMENTS].index(args.until)
    experiments = PAPER_EXPERIMENTS[:last + 1]
    runs_dir = repo_root() / "runs"
    seconds: dict[str, float] = {}
    say(f"study {study!r}, profile {profile['profile_path']}, {training_precision(profile)}, "
        f"up to {args.until}: {', '.join(e.name for e in experiments)}")
    with float32_isa_caps(profile):
        step = time.time()
        data_dir = build_dataset(profile, args.study or loaded["name"], say=say)
        seconds["dataset"] = time.time() - step
        for experiment in experiments:
            say(f"{experiment.name}: {experiment.description}")
            step = time.time()
            _, trained = run_experiment(experiment, profile, study, data_dir, runs_dir,
                                        repo_root() / "reports" / study / "notebooks", say=say)
            seconds[experiment.name] = time.time() - step
            if not trained: say(f"{experiment.name}: finished before with the same settings, reused")
    seconds["total"] = time.time() - started
    write_json({"command": f"probes/chain_until.py {args.profile} --until {args.until}"
                           + (f" --seed {args.seed}" if args.seed is not None else "")
                           + (f" --study {args.study}" if args.study else ""),
                "study": study, "profile": profile, "data_dir": str(data_dir),
                "seconds": {k: round(v, 1) for k, v in seconds.items()}, "provenance": provenance()},
               runs_dir / study / "chain_until.json")
    say(f"done: runs in {runs_dir / study}")


if __name__ == "__main__":
    main()
