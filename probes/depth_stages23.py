"""Probe: stages 2 and 3 (lstm2, e2e2) trained for several seeds on one slice CNN held fixed; first asked
whether they gain from reading every 2.5 mm slice, then whether BiLSTMs of 128 units do as well as the paper's 512.
The paper's 2x2x2 max filter merges slice pairs before the BiLSTMs (24-36 slices of 64 x 64 in `demo`);
a 2x2 filter keeps every slice (48-72). One finished stage-1 run (a `demo` slice CNN, whose own filter
is 2x2 either way) is copied, as hard links, into two studies per training seed, and lstm2 then e2e2
are trained in each through the chain's own `run_experiment`, with the `demo` profile's settings:
  RUNS_DIR/depth-merged-seedN/{cnn,lstm2,e2e2}     the committed volumes (2x2x2)
  RUNS_DIR/depth-unmerged-seedN/{cnn,lstm2,e2e2}   every slice (2x2)
  RUNS_DIR/depth-hidden128-seedN/{cnn,lstm2,e2e2}  BiLSTMs of 128 units per direction (with --settings)
  RUNS_DIR/depth-wd1e-3-seedN/{cnn,lstm2,e2e2}     weight decay 1e-3 (or wd1e-2: 1e-2), with --settings
The seed changes stages 2 and 3 only (initialisation, balanced draws, augmentation). Seeds run in the
order given, each seed's settings in the order of --settings; no seed is started after --start-before (UTC, HH:MM).
Score the chains with independent_cohort.py --pairs (merged as A, unmerged as B).
With --profile NAME the settings apply to that profile instead of `demo` (profiles/NAME.toml), --settings
picks some of them, --prefix replaces `depth` in the study names, and --train-cnn first trains CNN_RUN
with the profile's own stage 1 (its seed, not the SEEDs, unless --cnn-seed) if it has not finished: the trial
reports/trials/demo-cnn128 runs `--profile demo-cnn128 --settings merged --prefix cnn128 --train-cnn`.
usage: depth_stages23.py CNN_RUN DATA_DIR RUNS_DIR SEED [SEED ...] [--profile NAME] [--settings A,B]
                         [--prefix P] [--train-cnn [--cnn-seed N]] [--start-before HH:MM]"""
import argparse, os, shutil, time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from ich_study.core import load_profile
from ich_study.reproduce import PAPER_EXPERIMENTS, check_profile, run_experiment, with_training_seed

SETTINGS = {"merged": {},                          # the profile as it is (2x2x2 volumes for stages 2 and 3)
            "unmerged": {"max_filter": "2x2"},     # every slice in stages 2 and 3
            "hidden128": {"hidden_size": 128},     # BiLSTMs of 128 units per direction instead of the paper's 512
            "wd1e-3": {"weight_decay": 1e-3},      # an L2 penalty on the weights of stages 2 and 3 (the paper names none)
            "wd1e-2": {"weight_decay": 1e-2}}

def copy_run(source: Path, target: Path) -> None:
    """A finished run folder copied as hard links (its finished.json too, so later stages start from it)."""
    if target.exists(): return
    shutil.copytree(source, target, copy_function=os.link)

def profile_for(setting: str, seed: int | None, name: str = "demo") -> dict:
    """Profile `name` with the setting's [train] values and training seed `seed` (None: the profile's own)."""
    profile = load_profile(name)
    for key, value in SETTINGS[setting].items():
        per_stage = [stage for stage, table in profile["stages"].items() if key in table]
        if per_stage:   # a [stages.*] value would win over the setting's [train] one, silently
            raise SystemExit(f"profile {name}: [stages.{', '.join(per_stage)}] set {key}, "
                             f"so setting {setting!r} ([train] {key} = {value!r}) would not apply")
        profile = {**profile, "train": {**profile["train"], key: value}}
    return check_profile(with_training_seed(profile, seed))

def deadline(hh_mm: str, now: datetime | None = None) -> datetime:
    """The first UTC moment at HH:MM from `now` on (today's, or tomorrow's once today's has passed)."""
    try: hour, minute = (int(part) for part in hh_mm.split(":"))
    except ValueError: raise argparse.ArgumentTypeError(f"{hh_mm!r}: expected HH:MM") from None
    now = now or datetime.now(timezone.utc)
    try: moment = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    except ValueError: raise argparse.ArgumentTypeError(f"{hh_mm!r}: not a time of day") from None
    return moment if moment > now else moment + timedelta(days=1)

def say_trained(run_dir: Path, trained: bool, started: float) -> None:
    """One progress line: the run folder and how long it trained (or that it was reused)."""
    print(f"{datetime.now(timezone.utc):%H:%M:%S} {run_dir}: "
          f"{'trained in %.1f min' % ((time.time() - started) / 60) if trained else 'reused'}", flush=True)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cnn_run", type=Path); parser.add_argument("data_dir", type=Path)
    parser.add_argument("runs_dir", type=Path); parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--start-before", type=deadline, help="UTC HH:MM: start no seed after it (the next such time "
                        "from the launch, so 00:30 given at 23:00 is the coming midnight's)")
    parser.add_argument("--profile", default="demo", help="the profile the settings change (profiles/NAME.toml)")
    parser.add_argument("--settings", default="merged,unmerged", help=f"some of {', '.join(SETTINGS)} (default: "
                        "merged,unmerged), trained in that order for each seed")
    parser.add_argument("--prefix", default="depth", help="study names: PREFIX-SETTING-seedN")
    parser.add_argument("--train-cnn", action="store_true", help="train CNN_RUN first if it has not finished")
    parser.add_argument("--cnn-seed", type=int, help="with --train-cnn: stage 1's training seed (default: the profile's)")
    args = parser.parse_args()
    settings = args.settings.split(",")
    if unknown := [s for s in settings if s not in SETTINGS]: parser.error(f"unknown setting(s) {unknown}")
    if args.cnn_seed is not None and not args.train_cnn: parser.error("--cnn-seed needs --train-cnn")
    if args.train_cnn and args.cnn_run.name != "cnn": parser.error(f"{args.cnn_run}: a stage-1 run folder is named cnn")
    experiments = {e.name: e for e in PAPER_EXPERIMENTS}
    if args.train_cnn and not (args.cnn_run / "finished.json").exists():
        started = time.time()
        run_dir, trained = run_experiment(experiments["cnn"], profile_for("merged", args.cnn_seed, args.profile),
                                          args.cnn_run.parent.name, args.data_dir, args.cnn_run.parent.parent,
                                          args.cnn_run.parent / "notebooks")
        say_trained(run_dir, trained, started)
    if not (args.cnn_run / "finished.json").exists(): parser.error(f"{args.cnn_run}: not a finished run folder")
    for seed in args.seeds:
        if args.start_before and datetime.now(timezone.utc) >= args.start_before:
            print(f"seed {seed} not started: past {args.start_before:%Y-%m-%d %H:%M} UTC", flush=True); break
        for setting in settings:
            study = f"{args.prefix}-{setting}-seed{seed}"
            copy_run(args.cnn_run, args.runs_dir / study / "cnn")
            profile = profile_for(setting, seed, args.profile)
            for name in ("lstm2", "e2e2"):
                started = time.time()
                run_dir, trained = run_experiment(experiments[name], profile, study, args.data_dir,
                                                  args.runs_dir, args.runs_dir / study / "notebooks")
                say_trained(run_dir, trained, started)
