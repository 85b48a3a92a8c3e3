"""Scan AUC (maximum and 95th percentile of slice probabilities) of CNN checkpoints on one split."""
import os, sys, json, numpy as np, pandas as pd
from ich_study.core import set_torch_threads
from ich_study.train import load_checkpoint, model_from_checkpoint, predict_scans, safe_auc
from ich_study.preprocess import PreprocessConfig
set_torch_threads(2)
d = os.environ.get("PROBE_DATA", "data/demo-cohort")
m = pd.read_csv(f"{d}/manifest.csv"); s = pd.read_csv(f"{d}/splits.csv")
split = sys.argv[2] if len(sys.argv) > 2 else "val"
rows = m[m.patient_id.isin(s.patient_id[s.split == split])].assign(image=lambda t: d + "/" + t.image)
for path in sys.argv[1].split(","):
    ck = load_checkpoint(path); model = model_from_checkpoint(ck)
    pp = PreprocessConfig(windows=tuple(tuple(w) for w in ck["preprocess"]["windows"]), max_filter="2x2x2", matrix=ck["preprocess"]["matrix"])
    pred = predict_scans(model, rows, pp, f"{d}/cache", progress=False)
    sl = pred.slice_probabilities.map(json.loads)
    print(path, ck["step"], split, "scan max AUC", round(safe_auc(pred.label, sl.map(max)), 3), "p95", round(safe_auc(pred.label, sl.map(lambda v: np.percentile(v, 95))), 3), flush=True)
