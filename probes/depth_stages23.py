"""Probe: do stages 2 and 3 gain from reading every 2.5 mm slice, with the slice CNN held fixed?
The paper's 2x2x2 max filter merges slice pairs before the BiLSTMs (24-36 slices of 64 x 64 in `demo`);
a 2x2 filter keeps every slice (48-72). One finished stage-1 run (a `demo` slice CNN, whose own filter
is 2x2 either way) is copied, as hard links, into two studies per training seed, and lstm2 then e2e2
are trained in each through the chain's own `run_experiment`, with the `demo` profile's settings:
  RUNS_DIR/depth-merged-seedN/{cnn,lstm2,e2e2}     the committed volumes (2x2x2)
  RUNS_DIR/depth-unmerged-seedN/{cnn,lstm2,e2e2}   every slice (2x2)
The seed changes stages 2 and 3 only (initialisation, balanced draws, augmentation). Seeds run in the
order given, merged then unmerged; no seed is started after --start-before (UTC, HH:MM).
Score the chains with independent_cohort.py --pairs (merged as A, unmerged as B).
usage: depth_stages23.py CNN_RUN DATA_DIR RUNS_DIR SEED [SEED ...] [--start-before HH:MM]"""
import argparse, os, shutil, time
from datetime import datetime, timezone
from pathlib import Path
from ich_study.core import load_profile
from ich_study.reproduce import PAPER_EXPERIMENTS, check_profile, run_experiment, with_training_seed

SETTINGS = {"merged": None, "unmerged": "2x2"}     # [train] max_filter; None: the stage defaults (2x2x2 for volumes)

def copy_run(source: Path, target: Path) -> None:
    """A finished run folder copied as hard links (its finished.json too, so later stages start from it)."""
    if target.exists(): return
    shutil.copytree(source, target, copy_function=os.link)

def profile_for(setting: str, seed: int) -> dict:
    """The demo profile with the setting's max filter and training seed `seed`."""
    demo = load_profile("demo")
    if SETTINGS[setting]: demo = {**demo, "train": {**demo["train"], "max_filter": SETTINGS[setting]}}
    return check_profile(with_training_seed(demo, seed))

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cnn_run", type=Path); parser.add_argument("data_dir", type=Path)
    parser.add_argument("runs_dir", type=Path); parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--start-before", help="UTC HH:MM: start no seed after it")
    args = parser.parse_args()
    if not (args.cnn_run / "finished.json").exists(): parser.error(f"{args.cnn_run}: not a finished run folder")
    experiments = {e.name: e for e in PAPER_EXPERIMENTS}
    for seed in args.seeds:
        if args.start_before and datetime.now(timezone.utc).strftime("%H:%M") >= args.start_before:
            print(f"seed {seed} not started: past {args.start_before} UTC", flush=True); break
        for setting in SETTINGS:
            study = f"depth-{setting}-seed{seed}"
            copy_run(args.cnn_run, args.runs_dir / study / "cnn")
            profile = profile_for(setting, seed)
            for name in ("lstm2", "e2e2"):
                started = time.time()
                run_dir, trained = run_experiment(experiments[name], profile, study, args.data_dir,
                                                  args.runs_dir, args.runs_dir / study / "notebooks")
                print(f"{datetime.now(timezone.utc):%H:%M:%S} {run_dir}: "
                      f"{'trained in %.1f min' % ((time.time() - started) / 60) if trained else 'reused'}", flush=True)
