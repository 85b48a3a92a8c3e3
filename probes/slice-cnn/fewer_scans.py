"""A copy of a dataset folder whose training split keeps only a fraction of its patients (stratified by label,
seeded); validation and test are unchanged. Images, masks and the preprocessing cache are linked, not copied,
and the cache keys (resolved image paths) stay the same, so nothing is preprocessed again.
usage: fewer_scans.py DATA_DIR OUT_DIR FRACTION [SEED]"""
import shutil, sys
from pathlib import Path
import pandas as pd
from ich_study.core import write_csv
from ich_study.datasets import load_splits, patient_labels, read_manifest, read_slice_labels

def subset(data_dir: Path, out: Path, fraction: float, seed: int = 0) -> pd.DataFrame:
    manifest = read_manifest(data_dir, absolute=False)         # written back as it was, paths relative
    splits = load_splits(data_dir / "splits.csv", manifest)
    train = splits[splits.split == "train"].assign(label=lambda s: s.patient_id.map(patient_labels(manifest)))
    kept = train.groupby("label", group_keys=False).sample(frac=fraction, random_state=seed).patient_id
    keep = set(kept) | set(splits.patient_id[splits.split != "train"])
    out.mkdir(parents=True, exist_ok=True)
    for name in ("images", "masks", "cache"):
        if not (out / name).exists(): (out / name).symlink_to((data_dir / name).resolve())
    shutil.copy(data_dir / "cohort.json", out / "cohort.json")
    manifest = manifest[manifest.patient_id.isin(keep)]
    slice_labels = read_slice_labels(data_dir)
    write_csv(manifest, out / "manifest.csv")
    write_csv(splits[splits.patient_id.isin(keep)], out / "splits.csv")
    write_csv(slice_labels[slice_labels.case_id.isin(manifest.case_id)], out / "slice_labels.csv")
    return splits[splits.patient_id.isin(keep)]

if __name__ == "__main__":
    kept = subset(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    print(sys.argv[2], kept.split.value_counts().to_dict())
