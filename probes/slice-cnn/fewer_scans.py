"""A copy of a dataset folder whose training split keeps only a fraction of its patients (stratified by label,
seeded); validation and test are unchanged. Images, masks and the preprocessing cache are linked, not copied,
and the cache keys (resolved image paths) stay the same, so nothing is preprocessed again.
usage: fewer_scans.py DATA_DIR OUT_DIR FRACTION [SEED]"""
import shutil, sys
from pathlib import Path
import pandas as pd
from ich_study.core import write_csv
from ich_study.datasets import load_splits, read_manifest

def subset(data_dir: Path, out: Path, fraction: float, seed: int = 0) -> pd.DataFrame:
    manifest = read_manifest(data_dir)
    splits = load_splits(data_dir / "splits.csv", manifest)
    labels = manifest.groupby("patient_id").label.max()
    train = splits[splits.split == "train"].assign(label=lambda s: s.patient_id.map(labels))
    kept = train.groupby("label", group_keys=False).sample(frac=fraction, random_state=seed).patient_id
    keep = set(kept) | set(splits.patient_id[splits.split != "train"])
    out.mkdir(parents=True, exist_ok=True)
    for name in ("images", "masks", "cache"):
        if not (out / name).exists(): (out / name).symlink_to((data_dir / name).resolve())
    shutil.copy(data_dir / "cohort.json", out / "cohort.json")
    for name in ("manifest.csv", "splits.csv", "slice_labels.csv"):
        table = pd.read_csv(data_dir / name, dtype={"patient_id": str, "case_id": str})
        column = "patient_id" if "patient_id" in table.columns else "case_id"
        ids = keep if column == "patient_id" else set(manifest.case_id[manifest.patient_id.isin(keep)])
        write_csv(table[table[column].isin(ids)], out / name)
    return splits[splits.patient_id.isin(keep)]

if __name__ == "__main__":
    kept = subset(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    print(sys.argv[2], kept.split.value_counts().to_dict())
