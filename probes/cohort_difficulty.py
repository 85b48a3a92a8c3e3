"""Probe: how hard is the demo cohort itself, apart from any network?

1. A non-learned detector: per scan, the size (voxels) of the largest connected region of
   Gaussian-smoothed (sigma 1 voxel in-plane) values in 55-95 HU inside the cranial cavity
   (`estimate_cranial_cavity`, eroded by 3 voxels), read from the full-resolution scans.
   Its ROC AUC per split, and against all negatives for each bleed-volume group.
2. A ceiling: the test AUC of a detector that ranks every bleed of at least V mL above every
   negative scan and the smaller ones at chance, from manifest.csv alone.

usage: .venv/bin/python probes/cohort_difficulty.py [DATASET_DIR] [OUT_CSV]
       (default data/demo-cohort, whose splits.csv the demo study uses; about 2 min on 2 cores)
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from ich_study.datasets import assign_split, load_splits, read_manifest
from ich_study.evaluate import VOLUME_BINS_ML
from ich_study.io import read_scan
from ich_study.synthetic import estimate_cranial_cavity

def largest_blood_region(volume_hu: np.ndarray, blood_hu=(55, 95), sigma_voxels: float = 1.0) -> int:
    """Voxels of the largest connected region of smoothed blood-range values inside the cavity."""
    cavity = estimate_cranial_cavity(volume_hu, erosion_voxels=3)
    smoothed = ndimage.gaussian_filter(volume_hu.astype(np.float32), (0, sigma_voxels, sigma_voxels))
    regions, count = ndimage.label(cavity & (smoothed >= blood_hu[0]) & (smoothed <= blood_hu[1]))
    return int(np.bincount(regions.ravel())[1:].max()) if count else 0

def main(dataset_dir: str = "data/demo-cohort", out_csv: str | None = None) -> None:
    manifest = read_manifest(dataset_dir)
    manifest = assign_split(manifest, load_splits(Path(dataset_dir) / "splits.csv", manifest))
    scores = [largest_blood_region(read_scan(image).volume) for image in manifest["image"]]
    table = manifest[["case_id", "split", "label", "lesion_volume_ml"]].assign(largest_region=scores)
    if out_csv: table.to_csv(out_csv, index=False)
    print("non-learned detector (largest smoothed 55-95 HU region in the cavity), scan ROC AUC:")
    for split in ("train", "val", "test"):
        rows = table[table.split == split]
        print(f"  {split}: {roc_auc_score(rows.label, rows.largest_region):.3f} ({len(rows)} scans)")
    negatives = table[table.label == 0]
    print("  by bleed volume, positives of all splits against all negatives:")
    for low, high in zip(VOLUME_BINS_ML[:-1], VOLUME_BINS_ML[1:]):       # the report's volume groups
        group = table[(table.label == 1) & (table.lesion_volume_ml >= low) & (table.lesion_volume_ml < high)]
        rows = pd.concat([group, negatives])
        print(f"    {low:g}-{high:g} mL: {roc_auc_score(rows.label, rows.largest_region):.3f} ({len(group)} scans)")
    test_volumes = table.loc[(table.split == "test") & (table.label == 1), "lesion_volume_ml"]
    print(f"ceiling on the test split ({len(test_volumes)} positive scans): every bleed >= V mL ranked above "
          "every negative, smaller ones at chance")
    for volume_ml in (0.5, 1, 2, 5):
        found = float((test_volumes >= volume_ml).mean())
        print(f"  V = {volume_ml} mL: {found:.0%} of positives found, AUC {found + 0.5 * (1 - found):.3f}")

if __name__ == "__main__":
    main(*sys.argv[1:])
