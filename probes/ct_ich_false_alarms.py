"""Probe: where the out-of-fold slice CNNs of a CT-ICH runs folder put each scan's highest slice score.

The slice CNNs rank CT-ICH slices above chance (slice AUC 0.66-0.70) and the scans at chance by their
maximum: every negative scan has some slice that scores like a bleed. This looks at that slice, per
scan, out of fold (each scan scored by the fold CNN that did not train on it, as
`compare_fold_cnns.py` scores them): where it lies between skull base and vertex, whether the
cranial-cavity detector of `ich-prepare` counts it inside the cavity, whether the release marks a
fracture on it, and, for positive scans, whether it is one of the scan's bleed slices. Then the scan
AUC of the maximum over subsets of slices; those subsets were chosen after looking at the test
scores, so they describe, they do not select. With --draw PNG, the highest slice of the eight
negative scans that score highest and of the eight positive scans that score lowest, in the brain
window as the release ships it.

usage: .venv/bin/python probes/ct_ich_false_alarms.py DATA_DIR RUNS_DIR CT_ICH_ROOT [--draw PNG]
       e.g. data/ct-ich runs/probe-ct-ich-synthetic128 ../shared/data/ct-ich   (about a minute on 2 cores)
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_fold_cnns import out_of_fold_slice_probabilities   # noqa: E402

from ich_study.datasets import read_slice_labels                  # noqa: E402
from ich_study.stats import auc_confidence_interval               # noqa: E402


def annotated_slices(data_dir: Path, runs_dir: Path, ct_ich_root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Out-of-fold slice probabilities with the slice's relative height (0 skull base, 1 vertex), the
    cavity detector's answer, the release's fracture flag and the scan's label; and the scans' table of
    `out_of_fold_slice_probabilities` (fold, case_id, label, max, p95)."""
    slices, scans = out_of_fold_slice_probabilities(data_dir, runs_dir)
    slices = slices.merge(read_slice_labels(data_dir)[["case_id", "slice_index", "cranial_cavity"]],
                          on=["case_id", "slice_index"], how="left")
    diagnosis = pd.read_csv(ct_ich_root / "hemorrhage_diagnosis.csv", encoding="utf-8-sig")
    diagnosis = pd.DataFrame({"case_id": [f"ctich-{n:03d}" for n in diagnosis["PatientNumber"]],
                              "slice_index": diagnosis["SliceNumber"] - 1, "fracture": diagnosis["Fracture_Yes_No"]})
    slices = slices.merge(diagnosis, on=["case_id", "slice_index"], how="left", validate="one_to_one")
    if slices[["cranial_cavity", "fracture"]].isna().any().any():
        raise ValueError("some scored slices have no cavity answer or fracture flag")
    n_slices = slices.groupby("case_id")["slice_index"].transform("max") + 1
    slices["height"] = slices["slice_index"] / (n_slices - 1)
    return slices.merge(scans[["case_id", "label"]].rename(columns={"label": "scan_label"}), on="case_id"), scans


def top_slices(slices: pd.DataFrame) -> pd.DataFrame:
    """Each scan's highest-scoring slice."""
    return slices.loc[slices.groupby("case_id")["probability"].idxmax()].reset_index(drop=True)


def scan_auc_of_maximum(slices: pd.DataFrame, kept: pd.Series, what: str) -> str:
    """The scan AUC of the maximum over the kept slices (scans with none kept score 0), with its DeLong interval."""
    maxima = slices["probability"].where(kept, 0.0).groupby(slices["case_id"]).max()
    labels = slices.groupby("case_id")["scan_label"].first().loc[maxima.index]
    low, auc, high = auc_confidence_interval(labels.to_numpy(), maxima.to_numpy())
    return f"  {what}: {auc:.3f} [{low:.3f}-{high:.3f}]"


def draw_top_slices(tops: pd.DataFrame, data_dir: Path, out: Path, per_row: int = 8) -> None:
    """The top slice of the `per_row` highest-scoring negative and lowest-scoring positive scans."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ich_study.datasets import read_manifest
    from ich_study.io import image_stack_files
    from PIL import Image
    images = read_manifest(data_dir).set_index("case_id")["image"]
    rows = [("negative, highest", tops[tops.scan_label == 0].nlargest(per_row, "probability")),
            ("positive, lowest", tops[tops.scan_label == 1].nsmallest(per_row, "probability"))]
    figure, axes = plt.subplots(2, per_row, figsize=(2 * per_row, 4.6))
    for axis_row, (title, chosen) in zip(axes, rows):
        for axis, top in zip(axis_row, chosen.itertuples()):
            path = image_stack_files(Path(images[top.case_id]) / "brain")[top.slice_index]
            axis.imshow(np.asarray(Image.open(path).convert("L")), cmap="gray")
            axis.set_title(f"{top.case_id} s{top.slice_index}\n{title}: {top.probability:.2f}"
                           f"{' bleed' if top.label else ''}", fontsize=7)
        for axis in axis_row: axis.axis("off")
    figure.tight_layout(); figure.savefig(out, dpi=60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("ct_ich_root", type=Path)
    parser.add_argument("--draw", type=Path, help="PNG of the top slices of the highest negatives and lowest positives")
    arguments = parser.parse_args()
    data_dir, runs_dir, ct_ich_root, draw = arguments.data_dir, arguments.runs_dir, arguments.ct_ich_root, arguments.draw
    torch.set_num_threads(1)
    slices, scans = annotated_slices(data_dir, runs_dir, ct_ich_root)
    tops = top_slices(slices)
    fractured = slices.groupby("case_id")["fracture"].max()
    tops["scan_has_fracture"] = tops["case_id"].map(fractured)
    print(f"{runs_dir}: {len(tops)} scans, {len(slices)} slices, out of fold")
    for label, group in tops.groupby("scan_label"):
        name = "positive" if label else "negative"
        thirds = np.histogram(group["height"], bins=[0, 1 / 3, 2 / 3, 1.0001])[0]
        line = (f"{name} scans ({len(group)}): top slice in the lowest / middle / highest third of the scan "
                f"{thirds[0]} / {thirds[1]} / {thirds[2]}; inside the cavity {int(group['cranial_cavity'].sum())}; "
                f"on a fracture slice {int(group['fracture'].sum())}; median top score {group['probability'].median():.3f}")
        if label: line += f"; on one of the scan's bleed slices {int(group['label'].sum())}"
        print(line)
    high = slices.assign(high=slices["probability"] > 0.9).groupby("case_id").agg(
        label=("scan_label", "first"), high=("high", "mean"), low=("probability", lambda p: (p < 0.01).mean()))
    for label, group in high.groupby("label"):
        print(f"  {'positive' if label else 'negative'} scans with over half of their slices above 0.9: "
              f"{int((group['high'] > 0.5).sum())}, below 0.01: {int((group['low'] > 0.5).sum())}")
    negatives = tops[tops["scan_label"] == 0]
    for has, group in negatives.groupby("scan_has_fracture"):
        print(f"  negative scans {'with' if has else 'without'} a fracture ({len(group)}): median top score "
              f"{group['probability'].median():.3f}")
    print("scan AUC of the maximum over (subsets chosen after looking: descriptive only):")
    print(scan_auc_of_maximum(slices, slices["probability"] >= 0, "every slice"))
    print(scan_auc_of_maximum(slices, slices["cranial_cavity"] == 1, "slices inside the cavity"))
    print(scan_auc_of_maximum(slices, slices["height"] >= 1 / 3, "the upper two thirds of each scan"))
    print(scan_auc_of_maximum(slices, slices["fracture"] == 0, "slices without a fracture"))
    for name, summary in (("maximum", "max"), ("95th percentile", "p95")):
        per_fold = [roc_auc_score(g["label"], g[summary]) for _, g in scans.groupby("fold")]
        print(f"scan AUC of the {name} in each fold's own test scans: {', '.join(f'{a:.3f}' for a in per_fold)} "
              f"(mean {np.mean(per_fold):.3f}); pooled over the folds {roc_auc_score(scans['label'], scans[summary]):.3f}")
    if draw:
        draw_top_slices(tops, data_dir, draw)
        print(f"drawn: {draw}")
