"""Probe: what a model does with scans whose slices are thicker than any it trained on, the case `ich-predict`'s
spacing warning names. The test scans of a dataset are reconstructed as thicker slices, each the mean of `--factor`
neighbouring slices (as a scanner's thick reconstruction averages thin ones; a last incomplete group is dropped),
written as NIfTI with the slice spacing times the factor, and every scan model of a finished chain scores both
versions: ROC AUC with its DeLong interval, the paired DeLong test between them, and how many thick scans the
checkpoint's recorded range flags (`spacing_warning`), and the sensitivity and specificity at the checkpoint's
operating point (chosen on the chain's validation scans, of the training spacing). Test scans only, as in the chain's report; nothing is chosen
on them. With `--resample-to MM` the thick scans are also resampled along z to MM (linear interpolation) and
scored: whether bringing a scan back to the training spacing undoes the shift.

    .venv/bin/python probes/slice_spacing_shift.py DATASET_DIR RUNS_DIR WORK_DIR OUT_DIR [--factor 2] [--resample-to MM]
    # e.g. data/demo-cohort runs/demo /tmp/thick reports/trials/slice-spacing-shift
WORK_DIR gets the thick scans and their preprocessing cache (not committed); OUT_DIR results.csv and
predictions.csv.
"""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from ich_study.core import set_torch_threads, write_csv
from ich_study.datasets import assign_split, spacing_warning
from ich_study.evaluate import read_dataset
from ich_study.io import read_scan
from ich_study.preprocess import PreprocessConfig
from ich_study.stats import auc_confidence_interval, delong_paired_test
from ich_study.train import load_checkpoint, model_from_checkpoint, predict_scans

MODELS = ("lstm1", "lstm2", "e2e1", "e2e2")


def thick_version(image: str, factor: int, out: Path) -> tuple[Path, float]:
    """Write the scan with each `factor` neighbouring slices averaged into one; returns (path, slice spacing mm)."""
    scan = read_scan(image)
    usable = scan.n_slices // factor * factor
    volume = scan.volume[:usable].reshape(usable // factor, factor, *scan.volume.shape[1:]).mean(axis=1)
    spacing_z, spacing_y, spacing_x = scan.spacing_mm
    written = sitk.GetImageFromArray(np.clip(np.rint(volume), -1024, 3071).astype(np.int16))
    written.SetSpacing((spacing_x, spacing_y, spacing_z * factor))
    path = out / f"{Path(image).name.split('.')[0]}.nii.gz"
    sitk.WriteImage(written, str(path), True)
    return path, spacing_z * factor


def resampled_version(thick_path: Path, slice_mm: float, out: Path) -> Path:
    """Write a thick scan resampled along z to `slice_mm` (linear interpolation over the same extent), as a user
    might bring a scan to the spacing a model trained on."""
    image = sitk.ReadImage(str(thick_path))
    (spacing_x, spacing_y, spacing_z), (size_x, size_y, size_z) = image.GetSpacing(), image.GetSize()
    n_slices = int(np.floor(spacing_z * (size_z - 1) / slice_mm)) + 1
    resampled = sitk.Resample(image, [size_x, size_y, n_slices], sitk.Transform(), sitk.sitkLinear, image.GetOrigin(),
                              (spacing_x, spacing_y, slice_mm), image.GetDirection(), -1024.0, sitk.sitkInt16)
    path = out / thick_path.name
    sitk.WriteImage(resampled, str(path), True)
    return path


def score_versions(run_dir: Path, test: pd.DataFrame, versions) -> tuple[dict, dict, dict]:
    """Each version of the test scans ((name, manifest rows, cache folder)) scored by a run's best.pt: (a row of
    ROC AUC with its DeLong interval and the sensitivity and specificity at the checkpoint's operating point, per
    version; the probabilities by version; the checkpoint)."""
    checkpoint = load_checkpoint(run_dir / "best.pt")
    model = model_from_checkpoint(checkpoint)
    config = PreprocessConfig.from_dict(checkpoint["preprocess"])
    scored = {version: predict_scans(model, rows, config, cache, progress=False).probability.to_numpy()
              for version, rows, cache in versions}
    threshold = checkpoint["operating_point"]["threshold"]          # chosen on the chain's validation scans
    row = {}
    for version, probabilities in scored.items():
        low, auc, high = auc_confidence_interval(test.label, probabilities)
        detected = probabilities >= threshold
        row.update({f"{version}_auc": auc, f"{version}_low": low, f"{version}_high": high,
                    f"{version}_sensitivity": float(detected[test.label == 1].mean()),
                    f"{version}_specificity": float(1 - detected[test.label == 0].mean())})
    return row, scored, checkpoint


def test_scans(dataset_dir: Path) -> pd.DataFrame:
    """The test split of a dataset folder."""
    manifest, splits = read_dataset(dataset_dir)
    return assign_split(manifest, splits).query("split == 'test'").reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("dataset_dir", "runs_dir", "work_dir", "out_dir"): parser.add_argument(name, type=Path)
    parser.add_argument("--factor", type=int, default=2)
    parser.add_argument("--resample-to", type=float, default=None, help="also score the thick scans resampled "
                        "along z to this slice spacing (mm)")
    args = parser.parse_args()
    set_torch_threads()
    test = test_scans(args.dataset_dir)
    (args.work_dir / "images").mkdir(parents=True, exist_ok=True)
    thick = test.copy()
    written = [thick_version(image, args.factor, args.work_dir / "images") for image in test.image]
    thick["image"] = [str(path) for path, _ in written]
    thick["slice_spacing_mm"] = [spacing for _, spacing in written]
    original_mm = [read_scan(image).spacing_mm[0] for image in test.image]
    versions = [("original", test, args.dataset_dir / "cache"), ("thick", thick, args.work_dir / "cache")]
    if args.resample_to:
        folder = args.work_dir / f"resampled-{args.resample_to:g}mm"
        (folder / "images").mkdir(parents=True, exist_ok=True)
        resampled = thick.assign(image=[str(resampled_version(Path(path), args.resample_to, folder / "images"))
                                        for path in thick.image])
        versions.append(("resampled", resampled, folder / "cache"))
    rows, predictions = [], {"case_id": test.case_id, "label": test.label}
    for model_name in MODELS:
        scores, scored, checkpoint = score_versions(args.runs_dir / model_name, test, versions)
        trained_mm = (checkpoint.get("geometry") or {}).get("slice_spacing_mm")
        def flagged(spacings) -> int | str:
            return "" if trained_mm is None else sum(spacing_warning(s, trained_mm) is not None for s in spacings)
        row = {"model": model_name, "n": len(test), "positives": int(test.label.sum()), "factor": args.factor,
               "trained_slice_spacing_mm": "" if trained_mm is None else f"{trained_mm[0]:g}-{trained_mm[1]:g}",
               "thick_slice_spacing_mm": f"{thick.slice_spacing_mm.min():.2f}-{thick.slice_spacing_mm.max():.2f}",
               "original_flagged": flagged(original_mm), "thick_flagged": flagged(thick.slice_spacing_mm), **scores}
        predictions.update({f"{model_name}_{version}": np.round(values, 6) for version, values in scored.items()})
        row["paired_delong_p"] = delong_paired_test(test.label, scored["original"], scored["thick"])[1]
        row["mean_probability_change"] = float(np.mean(scored["thick"] - scored["original"]))
        if "resampled" in scored:
            row["resampled_slice_spacing_mm"] = args.resample_to
            row["resampled_vs_original_p"] = delong_paired_test(test.label, scored["original"], scored["resampled"])[1]
            row["resampled_vs_thick_p"] = delong_paired_test(test.label, scored["thick"], scored["resampled"])[1]
            row["resampled_mean_probability_change"] = float(np.mean(scored["resampled"] - scored["original"]))
        rows.append(row)
        print(f"{model_name}: original {row['original_auc']:.3f} [{row['original_low']:.3f}-{row['original_high']:.3f}], "
              f"thick {row['thick_auc']:.3f} [{row['thick_low']:.3f}-{row['thick_high']:.3f}], p {row['paired_delong_p']:.3g}, "
              f"mean probability change {row['mean_probability_change']:+.3f}, flagged {row['original_flagged']} / {row['thick_flagged']} of {len(test)}; "
              f"at the saved threshold sensitivity / specificity {row['original_sensitivity']:.3f} / "
              f"{row['original_specificity']:.3f} -> {row['thick_sensitivity']:.3f} / {row['thick_specificity']:.3f}"
              + (f"; resampled to {args.resample_to:g} mm {row['resampled_auc']:.3f} [{row['resampled_low']:.3f}-"
                 f"{row['resampled_high']:.3f}] (against original p {row['resampled_vs_original_p']:.3g}, against thick p "
                 f"{row['resampled_vs_thick_p']:.3g}), mean probability change {row['resampled_mean_probability_change']:+.3f}, "
                 f"sensitivity / specificity {row['resampled_sensitivity']:.3f} / {row['resampled_specificity']:.3f}"
                 if "resampled" in scored else ""))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(pd.DataFrame(rows), args.out_dir / "results.csv")
    write_csv(pd.DataFrame(predictions), args.out_dir / "predictions.csv")


if __name__ == "__main__":
    main()
