"""Probe: train a study's chain only up to one experiment (`e2e2` by default), with no `scratch2` and no evaluation:
for trials whose rule reads only the scan models on an independent cohort (`independent_cohort.py`), where
`scratch2` (it does not read the slice CNN) and the report would cost 8-9 min a chain. Since 2026-12-08 it is
`ich-reproduce --until` (`reproduce(until=...)`), which this keeps as the command the trial
reports/trials/demo128-cnn6000 ran.
usage: chain_until.py [--until EXPERIMENT] [--seed N] [--study NAME] PROFILE
  PROFILE: a profile name or TOML path, as for ich-reproduce --profile; --seed and --study as for ich-reproduce
The run folders go to runs/{study}/ exactly where ich-reproduce puts them, so that `ich-reproduce` with the same
profile, seed and study reuses them and trains only the rest and the report; the command and the seconds of each
step go to runs/{study}/chain_until.json."""
import argparse

from ich_study.reproduce import PAPER_EXPERIMENTS, reproduce_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--until", default="e2e2", choices=[e.name for e in PAPER_EXPERIMENTS])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--study", default=None)
    args = parser.parse_args()
    reproduce_cli(["--profile", args.profile, "--until", args.until,
                   *(["--seed", str(args.seed)] if args.seed is not None else []),
                   *(["--study", args.study] if args.study else [])])


if __name__ == "__main__":
    main()
