"""Slice AUC of CNN checkpoints on every validation slice, overall and by the positive slices' bleed area (pixels)."""
import os, sys, numpy as np, pandas as pd
d = os.environ.get("PROBE_DATA", "data/demo-cohort"); out = os.environ.get("PROBE_OUT", "runs/probe-slice-cnn")
from sklearn.metrics import roc_auc_score
from ich_study.core import set_torch_threads
import ich_study.train as T
from ich_study.preprocess import PreprocessConfig, SliceDataset
set_torch_threads(2)
a = pd.read_csv(f"{out}/areas.csv")
val = T.run_tables(T.TrainConfig(stage="cnn", data_dir=d).resolved())["val_slices"]   # every validation slice
for path in sys.argv[1:]:
    checkpoint = T.load_checkpoint(path); model = T.model_from_checkpoint(checkpoint)
    preprocess = checkpoint["preprocess"]                 # the inputs this CNN was trained on
    ds = SliceDataset(val, PreprocessConfig(windows=tuple(tuple(w) for w in preprocess["windows"]),
                                            max_filter=preprocess["max_filter"], matrix=preprocess["matrix"]),
                      cache_dir=f"{d}/cache")
    p = T.predict_slices(model, ds, np.arange(len(ds)), "cpu", 50, False).merge(a, on=["case_id", "slice_index"], how="left").fillna({"area_px": 0})
    neg = p[p.label == 0]; parts = [f"all {roc_auc_score(p.label, p.probability):.3f}"]
    for lo, hi in [(1, 10), (10, 30), (30, 100), (100, 1e9)]:
        pos = p[(p.label == 1) & (p.area_px >= lo) & (p.area_px < hi)]
        parts.append(f"{lo}-{hi}: {roc_auc_score([1]*len(pos)+[0]*len(neg), list(pos.probability)+list(neg.probability)):.3f}")
    print(path, len(p), " ".join(parts), flush=True)
