"""Probe: are bleeds against the skull what the demo's models miss, and what hides them?

A bleed voxel is "near bone" when it lies within 2 voxels (about 3.4 mm at the cohort's 128 x 128
grid) of a voxel above 300 HU. For every positive scan of validation and test, the share of its
labelled blood that is near bone.
1. Slices (validation only), for each slice CNN given as CHECKPOINT (by default the one stages 2 and
   3 read): its slice ROC AUC for the positive slices whose blood is less / at least 25% near bone, each
   against all negative validation slices, overall and for slices with at least 20 bright pixels
   (3x3-smoothed HU >= 55 inside the mask, 128 grid).
2. Scans (test, from the report's predictions/*.csv): each model's ROC AUC for the positive test
   scans whose blood is mostly (>= 50%) near bone and for the others, each against all negative
   test scans.
3. The rim of a normal head: on 10 negative heads drawn by the generator, the share of the first
   3.4 mm inside the skull whose 3x3-smoothed HU is >= 55 (blood-like), with the generator's
   beam hardening and cupping as they are, and with each switched off.

Run on 2026-12-02 on /tmp/fresh38 (the `make reproduce` at 9559704 behind reports/demo, brain and bone
windows; 32 s) and before that on /tmp/fresh31 (at dec4877, the brain window alone): their numbers are
in the study log nbs/11_study_log.ipynb (the bf16 reports, "Where the models miss", and What was tried).

usage: .venv/bin/python probes/near_bone.py [DATA_DIR] [REPORT_DIR] [CHECKPOINT ...]
       (defaults data/demo-cohort, reports/demo, runs/demo/cnn/best.pt)
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

import ich_study.synthetic as synthetic
import ich_study.train as T
from ich_study.core import set_torch_threads
from ich_study.datasets import assign_split, load_splits, read_manifest
from ich_study.preprocess import PreprocessConfig, SliceDataset
from ich_study.stats import roc_auc

BONE_HU, NEAR_VOXELS, BRIGHT_HU = 300, 2, 55

def read(path) -> np.ndarray: return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))

def near_bone(volume_hu: np.ndarray) -> np.ndarray:
    """Voxels within NEAR_VOXELS in-plane of bone, slice by slice."""
    return ndimage.binary_dilation(volume_hu > BONE_HU, structure=np.ones((1, 3, 3), bool), iterations=NEAR_VOXELS)

def against_negatives(positives: pd.Series, negatives: pd.Series) -> str:
    if not len(positives): return "   -  "
    return f"{roc_auc([1] * len(positives) + [0] * len(negatives), [*positives, *negatives]):.3f}"

def measure_positives(data_dir: str, manifest: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per positive val/test scan: share of blood near bone; per positive slice: that share and bright pixels."""
    scans, slices = [], []
    for case in manifest[(manifest.label == 1) & manifest.split.isin(["val", "test"])].itertuples():
        volume = read(case.image).astype(np.float32)
        blood = read(Path(data_dir) / case.mask) > 0
        near = near_bone(volume) & blood
        bright = (ndimage.uniform_filter(volume, size=(1, 3, 3)) >= BRIGHT_HU) & blood
        scans.append({"case_id": case.case_id, "split": case.split, "near_bone": near.sum() / max(1, blood.sum())})
        for index in np.flatnonzero(blood.any(axis=(1, 2))):
            slices.append({"case_id": case.case_id, "slice_index": int(index),
                           "near_bone": near[index].sum() / blood[index].sum(), "bright_px": int(bright[index].sum())})
    return pd.DataFrame(scans), pd.DataFrame(slices)

def slice_part(data_dir: str, checkpoint_path: str, slices: pd.DataFrame) -> None:
    checkpoint = T.load_checkpoint(checkpoint_path)
    model = T.model_from_checkpoint(checkpoint)
    table = T.run_tables(T.TrainConfig(stage="cnn", data_dir=data_dir).resolved())["val_slices"]
    dataset = SliceDataset(table, PreprocessConfig.from_dict(checkpoint["preprocess"]), cache_dir=f"{data_dir}/cache")
    predictions = T.predict_slices(model, dataset, np.arange(len(dataset)), "cpu", 50, False)
    predictions = predictions.merge(slices, on=["case_id", "slice_index"], how="left")
    negatives = predictions.loc[predictions.label == 0, "probability"]
    positives = predictions[predictions.label == 1]
    print(f"1. slice CNN {checkpoint_path}, validation slices: {len(negatives)} negative, {len(positives)} positive, "
          f"slice AUC {roc_auc(predictions.label, predictions.probability):.3f}")
    for name, group in [("blood < 25% near bone ", positives[positives.near_bone < 0.25]),
                        ("blood >= 25% near bone", positives[positives.near_bone >= 0.25])]:
        visible = group[group.bright_px >= 20]
        print(f"   {name}: {len(group):4d} slices, AUC {against_negatives(group.probability, negatives)}; "
              f"with >= 20 bright pixels {len(visible):4d}, AUC {against_negatives(visible.probability, negatives)}")

def scan_part(report_dir: str, scans: pd.DataFrame) -> None:
    test = scans[scans.split == "test"]
    mostly = set(test.loc[test.near_bone >= 0.5, "case_id"])
    print(f"2. test scans: {len(test)} positive, {len(mostly)} with >= 50% of their blood near bone; "
          "AUC against all negative test scans (mostly near bone / the others):")
    for path in sorted(Path(report_dir, "predictions").glob("*.csv")):
        predictions = pd.read_csv(path)
        predictions = predictions[predictions.split == "test"]
        negatives = predictions.loc[predictions.label == 0, "probability"]
        positives = predictions[predictions.label == 1]
        near = positives.case_id.isin(mostly)
        print(f"   {path.stem:9s} {against_negatives(positives.loc[near, 'probability'], negatives)} / "
              f"{against_negatives(positives.loc[~near, 'probability'], negatives)}")

def rim_part(n_heads: int = 10) -> None:
    acquire, switched_off = synthetic._acquire, []
    def patched(slab_hu, case, rng, petrous_slices, first_slice):
        case = {**case, "acquisition": {**case["acquisition"], **{name: 0.0 for name in switched_off}}}
        return acquire(slab_hu, case, rng, petrous_slices, first_slice)
    synthetic._acquire = patched
    variants = {"as generated": [], "no beam hardening": ["beam_hardening_hu"], "no cupping": ["cupping_hu"],
                "neither": ["beam_hardening_hu", "cupping_hu"]}
    shares = {name: [] for name in variants}
    try:
        for index in range(n_heads):
            rim = None
            for name, off in variants.items():
                switched_off[:] = off
                volume = synthetic.generate_case(index, 0, positive=False)[0].astype(np.float32)
                if rim is None:                     # the rim of the head as generated, for every variant
                    inside = synthetic.estimate_cranial_cavity(volume, BONE_HU, erosion_voxels=0)
                    depth = np.stack([ndimage.distance_transform_edt(k) for k in inside])
                    rim = inside & (depth <= NEAR_VOXELS)
                smoothed = ndimage.uniform_filter(volume, size=(1, 3, 3))
                shares[name].append((smoothed[rim] >= BRIGHT_HU).mean())
    finally:
        synthetic._acquire = acquire
    print(f"3. rim (first {NEAR_VOXELS} voxels inside the skull) of {n_heads} negative heads, "
          f"share at >= {BRIGHT_HU} HU (3x3-smoothed):")
    for name, values in shares.items(): print(f"   {name:18s} {np.mean(values):.3f}")

def main(data_dir: str = "data/demo-cohort", report_dir: str = "reports/demo", *checkpoint_paths: str) -> None:
    set_torch_threads(2)
    manifest = read_manifest(data_dir)
    manifest = assign_split(manifest, load_splits(Path(data_dir) / "splits.csv", manifest))
    scans, slices = measure_positives(data_dir, manifest)
    for checkpoint_path in checkpoint_paths or ["runs/demo/cnn/best.pt"]: slice_part(data_dir, checkpoint_path, slices)
    scan_part(report_dir, scans)
    rim_part()

if __name__ == "__main__":
    main(*sys.argv[1:])
