"""Probe: score the scan models of several training seeds on an independent synthetic cohort (one the
generator makes with another seed, none of whose scans trains or chooses anything), and compare
the mean of the seeds' probabilities (an ensemble) with the first seed alone (paired DeLong).
usage: independent_cohort.py [--against-first | --pairs] [--models M,M,...] COHORT_DIR OUT_DIR RUNS_DIR [RUNS_DIR ...]
  COHORT_DIR: ich-synth output with a manifest (every scan is scored, whatever its split)
  RUNS_DIR:   a chain's run folders, e.g. runs/demo runs/demo-seed1 runs/demo-seed2 (the first is
              the single model the ensemble is compared with; with one, no ensemble)
  --against-first: no ensemble; each later chain is compared with the first (paired DeLong), e.g.
              chains of other settings (each checkpoint preprocesses the scans as it was trained to)
  --pairs:    no ensemble; the chains come in pairs (setting A, setting B) of the same training seed, e.g.
              runs/demo runs/trial runs/demo-seed1 runs/trial-seed1: each B is compared with its A (paired
              DeLong), and the mean AUC of the Bs with that of the As
  A RUNS_DIR written DIR::N is a chain scored before: column `chain N` of DIR/predictions-{model}.csv (this
  probe's output, e.g. reports/trials/demo-stem2/independent::0), used when its run folders are gone; its
  scans and labels must be the cohort's
  --models:   the scan models to score, comma-separated (default: lstm1,lstm2,e2e1,e2e2)
Writes OUT_DIR/predictions-{model}.csv (one probability column per chain) and prints the AUCs; the scans'
preprocessed copies go to COHORT_DIR/cache, as a training run's go beside its dataset (not into OUT_DIR,
which is often a trial folder to commit)."""
import argparse
from functools import lru_cache
from pathlib import Path
import pandas as pd
from sklearn.metrics import roc_auc_score
from ich_study.core import set_torch_threads
from ich_study.datasets import read_manifest
from ich_study.preprocess import PreprocessConfig
from ich_study.stats import delong_paired_test
from ich_study.train import load_checkpoint, model_from_checkpoint, predict_scans

from compare_independent_reports import auc_with_ci

MODELS = ("lstm1", "lstm2", "e2e1", "e2e2")
SAVED = "::"     # DIR::N, a chain scored before

@lru_cache(maxsize=None)
def _saved_table(path: Path) -> pd.DataFrame:
    """A saved predictions-{model}.csv, read once however many of its chains are asked for."""
    return pd.read_csv(path, index_col="case_id")

def saved_probabilities(reference: str, model_name: str, labels: pd.Series) -> pd.Series:
    """P(ICH) of a chain scored before, by case_id: `reference` is 'DIR::N', column `chain N` of
    DIR/predictions-{model_name}.csv, which must hold the cohort's scans with the cohort's labels."""
    folder, number = reference.split(SAVED)
    path, column = Path(folder) / f"predictions-{model_name}.csv", f"chain {number}"
    saved = _saved_table(path)
    if column not in saved: raise SystemExit(f"{path}: no column {column!r}")
    if set(saved.index) != set(labels.index) or not saved.label.reindex(labels.index).eq(labels).all():
        raise SystemExit(f"{path}: its scans or labels are not those of the cohort")
    return saved[column]

def chain_probabilities(cohort_dir: str, runs_dir: str, model_name: str, cache_dir: str) -> pd.Series:
    """P(ICH) of every scan of the cohort from one chain's `model_name`/best.pt, by case_id."""
    checkpoint = load_checkpoint(Path(runs_dir) / model_name / "best.pt")
    preprocess = PreprocessConfig.from_dict(checkpoint["preprocess"])
    scored = predict_scans(model_from_checkpoint(checkpoint), read_manifest(cohort_dir), preprocess, cache_dir,
                           progress=False)
    return scored.set_index("case_id").probability

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    comparison = parser.add_mutually_exclusive_group()
    comparison.add_argument("--against-first", action="store_true")
    comparison.add_argument("--pairs", action="store_true")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("cohort_dir"); parser.add_argument("out_dir", type=Path); parser.add_argument("runs_dirs", nargs="+")
    args = parser.parse_args()
    set_torch_threads(2)
    cohort_dir, out_dir, runs_dirs, against_first = args.cohort_dir, args.out_dir, args.runs_dirs, args.against_first
    models = args.models.split(",")
    if set(models) - set(MODELS): parser.error(f"--models: one of {', '.join(MODELS)}, not {args.models!r}")
    if args.pairs and len(runs_dirs) % 2: parser.error("--pairs needs an even number of RUNS_DIRs: (A, B) per seed")
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = read_manifest(cohort_dir).set_index("case_id").label
    print(f"{cohort_dir}: {len(labels)} scans, {int(labels.sum())} with a bleed", flush=True)
    for model_name in models:
        table = pd.DataFrame({"label": labels})
        for index, runs_dir in enumerate(runs_dirs):
            table[f"chain {index}"] = (saved_probabilities(runs_dir, model_name, labels) if SAVED in runs_dir else
                                       chain_probabilities(cohort_dir, runs_dir, model_name, str(Path(cohort_dir) / "cache")))
        chains = [f"chain {index}" for index in range(len(runs_dirs))]
        if len(chains) > 1 and not (against_first or args.pairs): table["ensemble"] = table[chains].mean(axis=1)
        table.to_csv(out_dir / f"predictions-{model_name}.csv")
        singles = "; ".join(f"{runs_dir}: {auc_with_ci(table.label, table[column])}" for runs_dir, column in zip(runs_dirs, chains))
        if against_first or args.pairs:          # (A, B) index pairs: every chain against the first, or seed by seed
            pairs = [(0, b) for b in range(1, len(chains))] if against_first else list(zip(range(0, len(chains), 2), range(1, len(chains), 2)))
            versus = "; ".join(f"{runs_dirs[b]} against {runs_dirs[a]}: paired DeLong p = "
                               f"{delong_paired_test(table.label, table[chains[b]], table[chains[a]])[1]:.2g}" for a, b in pairs)
            means = ""
            if args.pairs:
                As, Bs = ([roc_auc_score(table.label, table[chains[pair[side]]]) for pair in pairs] for side in (0, 1))
                means = f"; mean of the As {sum(As) / len(As):.3f}, of the Bs {sum(Bs) / len(Bs):.3f}"
            print(f"{model_name}: {singles}" + (f"; {versus}" if versus else "") + means, flush=True); continue
        if len(chains) == 1:
            print(f"{model_name}: {singles}", flush=True); continue
        p_value = delong_paired_test(table.label, table.ensemble, table["chain 0"])[1]
        print(f"{model_name}: {singles}; mean of the {len(chains)}: {auc_with_ci(table.label, table.ensemble)} "
              f"(against {runs_dirs[0]}, paired DeLong p = {p_value:.3f})", flush=True)
