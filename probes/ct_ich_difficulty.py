"""Probe: is there a bleed signal in the CT-ICH scans that needs no learning?

The non-learned detector of `probes/cohort_difficulty.py`, carried to CT-ICH's pre-windowed JPGs at about the
demo cohort's voxel size: each slice's brain window block-averaged 5 x 5 (650 -> 130 pixels, near the demo
cohort's 128 x 128), the cranial cavity of `cranial_cavity_mask` (brain + bone windows) reduced
the same way and eroded by 3 voxels, then per scan the size of the largest connected region of
Gaussian-smoothed (sigma 1 voxel in-plane) values in 55-95 HU (the JPGs' brain window is level 40, width
120: 0.625-0.958 of its range). Nothing is fitted, so all 62 scans are scored; ROC AUC with its DeLong
interval, and against the negatives for each subtype. The definition was fixed before any scan was scored.

usage: .venv/bin/python probes/ct_ich_difficulty.py CT_ICH_ROOT DATASET_DIR [OUT_CSV]
       (DATASET_DIR: where `ich-prepare --source ct-ich` writes the manifest, or has written it)
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ich_study.datasets import cranial_cavity_mask, prepare_dataset, read_manifest
from ich_study.io import read_scan
from ich_study.stats import auc_confidence_interval, roc_auc

BRAIN_WINDOW = (40.0, 120.0)        # level, width of the CT-ICH JPGs' brain window (profiles/ct-ich.toml)
BLOOD_HU = (55.0, 95.0)             # as probes/cohort_difficulty.py
BLOCK = 5                           # 650 -> 130 pixels

def hu_to_window(hu: float, window=BRAIN_WINDOW) -> float:
    level, width = window
    return (hu - (level - width / 2)) / width

def block_mean(images: np.ndarray, factor: int) -> np.ndarray:
    slices, height, width = images.shape
    height, width = height // factor * factor, width // factor * factor
    return images[:, :height, :width].reshape(slices, height // factor, factor, width // factor, factor).mean(axis=(2, 4))

def largest_blood_region(volume: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Voxels (130 x 130 grid) of the largest connected region of smoothed blood-range values in the eroded
    cavity, that region (bool) and the smoothed block-averaged brain window it was found in."""
    cavity = block_mean(cranial_cavity_mask(volume, "windowed").astype(np.float32), BLOCK) > 0.5
    in_plane = np.zeros((3, 3, 3), bool); in_plane[1] = ndimage.generate_binary_structure(2, 1)
    cavity = ndimage.binary_erosion(cavity, structure=in_plane, iterations=3)
    brain = ndimage.gaussian_filter(block_mean(volume[:, 0], BLOCK), (0, 1.0, 1.0))
    low, high = (hu_to_window(hu) for hu in BLOOD_HU)
    regions, count = ndimage.label(cavity & (brain >= low) & (brain <= high))
    if not count: return 0, np.zeros_like(cavity), brain
    sizes = np.bincount(regions.ravel())[1:]
    return int(sizes.max()), regions == int(np.argmax(sizes)) + 1, brain

def draw_regions(table: pd.DataFrame, views: dict, path: Path) -> None:
    """The largest region's middle slice for the two highest-scored scans of each label; `views`: case_id ->
    (slice index, brain window, region) of that slice."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    chosen = pd.concat([table[table.label == label].nlargest(2, "largest_region") for label in (1, 0)])
    figure, axes = plt.subplots(1, len(chosen), figsize=(3.2 * len(chosen), 3.6))
    for axis, row in zip(axes, chosen.itertuples()):
        index, brain, region = views[row.case_id]
        axis.imshow(brain, cmap="gray", vmin=0, vmax=1)
        axis.contour(region, levels=[0.5], colors="red", linewidths=0.8)
        axis.set_title(f"{row.case_id} ({'bleed' if row.label else 'no bleed'}: {row.subtypes or '-'})\n"
                       f"slice {index}, region {row.largest_region} voxels", fontsize=8)
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=100, bbox_inches="tight")

def main(root: str, dataset_dir: str, out_csv: str | None = None) -> None:
    dataset = Path(dataset_dir)
    if not (dataset / "manifest.csv").exists(): prepare_dataset("ct-ich", root, dataset)
    manifest = read_manifest(dataset)
    sizes, heights, views = [], [], {}
    for case_id, image in zip(manifest["case_id"], manifest["image"]):
        size, region, brain = largest_blood_region(read_scan(image).volume)
        slices = np.nonzero(region.any(axis=(1, 2)))[0]
        sizes.append(size)          # where the region lies: 0 the lowest slice of the scan, 1 the highest
        heights.append(float(np.median(slices)) / (len(region) - 1) if len(slices) else np.nan)
        if len(slices):
            index = int(np.median(slices))
            views[case_id] = (index, brain[index], region[index])
    table = manifest[["case_id", "label", "subtypes"]].assign(largest_region=sizes, region_height=heights)
    if out_csv:
        table.to_csv(out_csv, index=False)
        draw_regions(table, views, Path(out_csv).with_name("regions.png"))
    low, _, high = auc_confidence_interval(table.label, table.largest_region)
    print(f"non-learned detector on {len(table)} CT-ICH scans ({int(table.label.sum())} with a bleed): "
          f"ROC AUC {roc_auc(table.label, table.largest_region):.3f} [{low:.3f}-{high:.3f}]")
    for label, rows in table.groupby("label"):
        print(f"  {'with' if label else 'without'} a bleed: largest region median {rows.largest_region.median():.0f} voxels, "
              f"in the top quarter of the scan's slices in {int((rows.region_height > 0.75).sum())} of {len(rows)}")
    negatives = table[table.label == 0]
    for subtype in ("EDH", "IPH", "IVH", "SAH", "SDH"):
        group = table[(table.label == 1) & table.subtypes.fillna("").str.contains(subtype)]
        if len(group): print(f"  {subtype}: {roc_auc(pd.concat([group, negatives]).label, pd.concat([group, negatives]).largest_region):.3f} ({len(group)} scans)")

if __name__ == "__main__":
    main(*sys.argv[1:])
