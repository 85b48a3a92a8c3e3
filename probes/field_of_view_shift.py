"""Probe: what a model does with scans of a wider field of view than it trained on. The preprocessing pads every
slice to a square and resizes it to the model's matrix, so a head imaged in a wider field of view reaches the
network smaller. The test scans of a dataset are padded with air around each slice to `--scale` times their width
and height (the same voxels, the same voxel size: a head in a wider field of view), written as NIfTI, and every
scan model of a finished chain scores both versions (ROC AUC with its DeLong interval, paired DeLong test, mean
change of the probabilities, sensitivity and specificity at the checkpoint's operating point). Test scans only;
nothing is chosen on them.

    .venv/bin/python probes/field_of_view_shift.py DATASET_DIR RUNS_DIR WORK_DIR OUT_DIR [--scale 1.5]
    # e.g. data/demo-cohort runs/demo /tmp/fov reports/trials/field-of-view-shift
WORK_DIR gets the padded scans and their preprocessing cache (not committed); OUT_DIR results.csv and
predictions.csv.
"""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from ich_study.core import set_torch_threads, write_csv
from ich_study.io import field_of_view_mm, read_scan
from ich_study.stats import delong_paired_test

from slice_spacing_shift import MODELS, score_versions, test_scans


def wider_version(image: str, scale: float, out: Path) -> tuple[Path, float, float]:
    """Write the scan padded with air (-1024 HU) to `scale` times its in-plane size; returns (path, field of view
    in mm before and after: the larger side of a slice)."""
    scan = read_scan(image)
    slices, rows, columns = scan.volume.shape
    new_rows, new_columns = int(round(rows * scale)), int(round(columns * scale))
    top, left = (new_rows - rows) // 2, (new_columns - columns) // 2
    volume = np.full((slices, new_rows, new_columns), -1024, np.int16)
    volume[:, top:top + rows, left:left + columns] = np.clip(np.rint(scan.volume), -1024, 3071).astype(np.int16)
    spacing_z, spacing_y, spacing_x = scan.spacing_mm
    written = sitk.GetImageFromArray(volume)
    written.SetSpacing((spacing_x, spacing_y, spacing_z))
    path = out / f"{Path(image).name.split('.')[0]}.nii.gz"
    sitk.WriteImage(written, str(path), True)
    return path, field_of_view_mm(rows, columns, scan.spacing_mm), field_of_view_mm(new_rows, new_columns, scan.spacing_mm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("dataset_dir", "runs_dir", "work_dir", "out_dir"): parser.add_argument(name, type=Path)
    parser.add_argument("--scale", type=float, default=1.5)
    args = parser.parse_args()
    set_torch_threads()
    test = test_scans(args.dataset_dir)
    (args.work_dir / "images").mkdir(parents=True, exist_ok=True)
    written = [wider_version(image, args.scale, args.work_dir / "images") for image in test.image]
    wide = test.assign(image=[str(path) for path, _, _ in written])
    original_fov, wide_fov = np.array([w[1] for w in written]), np.array([w[2] for w in written])
    versions = [("original", test, args.dataset_dir / "cache"), ("wide", wide, args.work_dir / "cache")]
    rows, predictions = [], {"case_id": test.case_id, "label": test.label}
    for model_name in MODELS:
        scores, scored, _ = score_versions(args.runs_dir / model_name, test, versions)
        row = {"model": model_name, "n": len(test), "positives": int(test.label.sum()), "scale": args.scale,
               "original_field_of_view_mm": f"{original_fov.min():.0f}-{original_fov.max():.0f}",
               "wide_field_of_view_mm": f"{wide_fov.min():.0f}-{wide_fov.max():.0f}", **scores,
               "paired_delong_p": delong_paired_test(test.label, scored["original"], scored["wide"])[1],
               "mean_probability_change": float(np.mean(scored["wide"] - scored["original"]))}
        predictions.update({f"{model_name}_{version}": np.round(values, 6) for version, values in scored.items()})
        rows.append(row)
        print(f"{model_name}: original {row['original_auc']:.3f} [{row['original_low']:.3f}-{row['original_high']:.3f}], "
              f"field of view x{args.scale:g} {row['wide_auc']:.3f} [{row['wide_low']:.3f}-{row['wide_high']:.3f}], "
              f"p {row['paired_delong_p']:.3g}, mean probability change {row['mean_probability_change']:+.3f}; at the "
              f"saved threshold sensitivity / specificity {row['original_sensitivity']:.3f} / {row['original_specificity']:.3f}"
              f" -> {row['wide_sensitivity']:.3f} / {row['wide_specificity']:.3f}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(pd.DataFrame(rows), args.out_dir / "results.csv")
    write_csv(pd.DataFrame(predictions), args.out_dir / "predictions.csv")


if __name__ == "__main__":
    main()
