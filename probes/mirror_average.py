"""Probe: test-time mirroring. Every model of a finished chain that reads the slice CNN scores each scan twice,
as it is and mirrored left to right (the last array axis, the mirror of the paper's training augmentation,
`preprocess.augment`), and the two probabilities are averaged: the scan models lstm1, lstm2, e2e1 and e2e2 average
their scan probabilities, the CNN baselines (maximum and 95th percentile of the slice probabilities) average each
slice's probability before they take the maximum or percentile. Nothing is trained. For the validation and test
scans of the chain's dataset, and for the scans of `--external` (another cohort, every scan, whatever its split):
ROC AUC of each version with its DeLong interval and the paired DeLong test between them.

    .venv/bin/python probes/mirror_average.py DATASET_DIR RUNS_DIR OUT_DIR [--external COHORT_DIR]
    # e.g. data/demo-cohort runs/demo reports/trials/demo-mirror-average --external /tmp/indep600s11

The unmirrored probabilities are checked against the chain's own predictions (`reports/{study}/predictions`,
given with `--report`) where they exist: the probe must score the scans as the chain did. Writes
OUT_DIR/results.csv (a row per model and scan set) and OUT_DIR/predictions.csv (both versions per model).
"""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ich_study.core import set_torch_threads, write_csv
from ich_study.datasets import assign_split, read_manifest
from ich_study.evaluate import read_dataset
from ich_study.preprocess import PreprocessConfig, load_preprocessed
from ich_study.stats import auc_confidence_interval, delong_paired_test
from ich_study.train import load_checkpoint, model_from_checkpoint

SCAN_MODELS = ("lstm1", "lstm2", "e2e1", "e2e2")
BASELINES = {"cnn-max": lambda p: float(np.max(p)), "cnn-p95": lambda p: float(np.percentile(p, 95))}


def score_both_ways(run_dir: Path, rows: pd.DataFrame, cache_dirs: pd.Series) -> pd.DataFrame:
    """Each scan of `rows` scored by a run's best.pt as it is and mirrored: columns case_id, label, scans (which set),
    model, original, mirrored, averaged (scan probabilities for a scan model; for the stage-1 CNN one row per baseline
    of BASELINES). Rows keep their scan set: another cohort's case_ids may repeat the chain's own."""
    checkpoint = load_checkpoint(run_dir / "best.pt")
    model = model_from_checkpoint(checkpoint).eval()
    config = PreprocessConfig.from_dict(checkpoint["preprocess"])
    is_cnn = checkpoint["stage"] == "cnn"
    scored = []
    for row, cache_dir in zip(rows.itertuples(), cache_dirs):
        volume = load_preprocessed(row.image, config, cache_dir)
        versions = {"original": volume, "mirrored": np.ascontiguousarray(volume[..., ::-1])}
        results = {}
        with torch.no_grad():
            for version, array in versions.items():
                features = model.slice_features(torch.from_numpy(np.ascontiguousarray(array))[None])
                scan_probability, slice_probabilities = model.predict_from_features(features)
                results[version] = (float(scan_probability[0]), slice_probabilities[0].float().numpy())
        if is_cnn:
            for name, summary in BASELINES.items():
                scored.append({"case_id": str(row.case_id), "label": int(row.label), "scans": row.scans, "model": name,
                               "original": summary(results["original"][1]), "mirrored": summary(results["mirrored"][1]),
                               "averaged": summary((results["original"][1] + results["mirrored"][1]) / 2)})
        else:
            scored.append({"case_id": str(row.case_id), "label": int(row.label), "scans": row.scans, "model": run_dir.name,
                           "original": results["original"][0],
                           "mirrored": results["mirrored"][0],
                           "averaged": (results["original"][0] + results["mirrored"][0]) / 2})
    return pd.DataFrame(scored)


def compare(table: pd.DataFrame, scan_set: str) -> list[dict]:
    """Per model: AUC of the original and of the averaged probabilities, DeLong intervals, paired p."""
    rows = []
    for model_name, group in table.groupby("model", sort=False):
        labels = group.label.to_numpy()
        low, auc, high = auc_confidence_interval(labels, group.original.to_numpy())
        mlow, mauc, mhigh = auc_confidence_interval(labels, group.averaged.to_numpy())
        rows.append({"scans": scan_set, "model": model_name, "n": len(group), "positives": int(labels.sum()),
                     "original_auc": auc, "original_low": low, "original_high": high,
                     "averaged_auc": mauc, "averaged_low": mlow, "averaged_high": mhigh,
                     "change": mauc - auc,
                     "paired_delong_p": delong_paired_test(labels, group.original.to_numpy(), group.averaged.to_numpy())[1],
                     "mirrored_alone_auc": auc_confidence_interval(labels, group.mirrored.to_numpy())[1]})
    return rows


def check_against_report(table: pd.DataFrame, report_dir: Path) -> None:
    """The unmirrored probabilities must be the chain's own (its report's predictions, rounded to 6 digits)."""
    for model_name, group in table[table.scans != "external"].groupby("model"):
        path = report_dir / "predictions" / f"{model_name}.csv"
        if not path.exists(): continue
        own = pd.read_csv(path, dtype={"case_id": str}).set_index("case_id").probability
        ours = group.set_index("case_id").original
        difference = float(np.max(np.abs(own.reindex(ours.index).to_numpy() - ours.to_numpy())))
        print(f"{model_name}: largest difference from the chain's own probabilities {difference:.2e}")
        if not difference < 1e-5: raise SystemExit(f"{model_name}: the probe does not score the scans as the chain did")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("dataset_dir", "runs_dir", "out_dir"): parser.add_argument(name, type=Path)
    parser.add_argument("--external", type=Path, default=None, help="a cohort folder whose every scan is scored too")
    parser.add_argument("--report", type=Path, default=None, help="the chain's report folder, to check against")
    args = parser.parse_args()
    set_torch_threads()
    manifest, splits = read_dataset(args.dataset_dir)
    own = assign_split(manifest, splits).query("split in ('val', 'test')").reset_index(drop=True)
    own = own.assign(scans=own.split, cache=str(args.dataset_dir / "cache"))
    scan_sets = [own]
    if args.external:
        external = read_manifest(args.external)
        scan_sets.append(external.assign(scans="external", cache=str(args.external / "cache")))
    rows = pd.concat(scan_sets, ignore_index=True)
    tables = []
    for run_name in ("cnn",) + SCAN_MODELS:
        tables.append(score_both_ways(args.runs_dir / run_name, rows, rows.cache))
        print(f"{run_name}: scored {len(rows)} scans both ways", flush=True)
    table = pd.concat(tables, ignore_index=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(table.round({"original": 6, "mirrored": 6, "averaged": 6}), args.out_dir / "predictions.csv")
    if args.report: check_against_report(table, args.report)
    results = []
    for scan_set in ("val", "test", "external"):
        if (table.scans == scan_set).any(): results += compare(table[table.scans == scan_set], scan_set)
    results = pd.DataFrame(results)
    for row in results.itertuples():
        print(f"{row.scans:8s} {row.model:8s} original {row.original_auc:.3f} [{row.original_low:.3f}-{row.original_high:.3f}]"
              f"  averaged {row.averaged_auc:.3f} [{row.averaged_low:.3f}-{row.averaged_high:.3f}]  change {row.change:+.3f}"
              f"  p {row.paired_delong_p:.3g}  mirrored alone {row.mirrored_alone_auc:.3f}")
    val = results[(results.scans == "val") & results.model.isin(SCAN_MODELS)]
    print(f"validation, mean change of lstm1..e2e2: {val.change.mean():+.4f}; smallest {val.change.min():+.4f}")
    write_csv(results, args.out_dir / "results.csv")


if __name__ == "__main__":
    main()
