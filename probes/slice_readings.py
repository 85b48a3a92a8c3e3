"""Where a chain's scan models look, on the positive scans of one split: the report's localisation table
(`ich_study.evaluate.localisation_table`) for the validation scans, which the report does not score this way.

    probes/slice_readings.py DATA_DIR RUNS_DIR [--split val] [--experiments lstm1 lstm2 e2e1 e2e2 scratch2]

DATA_DIR: the chain's dataset (manifest.csv, splits.csv, slice_labels.csv, cache/); RUNS_DIR: its runs folder
(one subfolder per experiment, each with best.pt). Single-split chains only (not the folds of ct-ich).
Prints the table, then where in the scan each model's most influential slice lies (the image vector reads the
forward LSTM at the last slice and the backward one at the first); nothing is written."""
import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ich_study.core import set_torch_threads
from ich_study.datasets import read_slice_labels
from ich_study.evaluate import localisation_table, read_dataset, score_lstm_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("--split", default="val", choices=["train", "val", "test"])
    parser.add_argument("--experiments", nargs="+", default=["lstm1", "lstm2", "e2e1", "e2e2", "scratch2"])
    args = parser.parse_args()
    set_torch_threads()
    manifest, splits = read_dataset(args.data_dir)
    rows = manifest.assign(case_id=manifest.case_id.astype(str)).merge(splits, on="patient_id")
    rows = rows[rows.split == args.split]
    slice_labels = read_slice_labels(args.data_dir)
    positives = set(rows.case_id[rows.label == 1]) & set(slice_labels.case_id.astype(str))
    scored = [score_lstm_run(args.runs_dir / name, rows, args.data_dir / "cache", "cpu", positives)
              .query("case_id in @positives").assign(experiment=name) for name in args.experiments]
    table = localisation_table(pd.concat(scored, ignore_index=True), slice_labels)
    print(f"{args.split} split, {len(positives)} positive scans with slice labels")
    print(table.round(3).to_string(index=False))
    for part in scored:
        influences = [np.asarray(json.loads(text)) for text in part.slice_influence]
        where = np.array([np.argmax(values) / max(len(values) - 1, 1) for values in influences])
        print(f"{part.experiment.iloc[0]}: most influential slice in the first tenth of the scan in "
              f"{np.mean(where <= 0.1):.2f} of the scans, in the last tenth in {np.mean(where >= 0.9):.2f}")


if __name__ == "__main__":
    main()
