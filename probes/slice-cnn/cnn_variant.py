"""Probe: one slice-CNN variant on the demo cohort, then the CNN maximum's scan AUC on the validation scans.
usage: cnn_variant.py VARIANT N_BATCHES [min_area=PIXELS] [lr=..] [max_filter=..] [precision=..]
VARIANT: base | bn (BatchNorm after every conv) | bn-nodrop (and no dropout) | any other name; see run.sh."""
import os, sys, time, json
import numpy as np, torch, torch.nn as nn, pandas as pd
from ich_study.core import set_torch_threads
import ich_study.train as T
from ich_study.train import TrainConfig, train_stage, load_checkpoint
from evalck import scan_aucs                          # the scan AUCs, as evalck.py computes them
set_torch_threads(2)
variant, n_batches = sys.argv[1], int(sys.argv[2])
extra = dict(a.split("=") for a in sys.argv[3:])
data = os.environ.get("PROBE_DATA", "data/demo-cohort")   # the 900-scan demo cohort (generator 1.1)
out = os.environ.get("PROBE_OUT", "runs/probe-slice-cnn")

def add_bn(model):
    layers = []
    for m in model.cnn.features:
        layers.append(m)
        if isinstance(m, nn.Conv2d): layers.append(nn.BatchNorm2d(m.out_channels))
    if "nodrop" in variant:
        for m in model.cnn.dense:
            if isinstance(m, nn.Dropout): m.p = 0.0
    model.cnn.features = nn.Sequential(*layers)
    model.cnn.to(memory_format=torch.channels_last)
    return model

orig = T.initial_model
min_area = int(extra.pop("min_area", 0))
if min_area:
    areas = pd.read_csv(f"{out}/areas.csv")
    big = set(zip(areas.case_id[areas.area_px >= min_area], areas.slice_index[areas.area_px >= min_area]))
    orig_tables = T.run_tables
    def run_tables_filtered(config):
        tables = orig_tables(config)
        for name in ("train_slices",) + (("val_slices",) if "valf" in variant else ()):
            t = tables[name]
            keep = (t.label == 0).to_numpy() | np.array([(c, i) in big for c, i in zip(t.case_id, t.slice_index)])
            tables[name] = t[keep].reset_index(drop=True)
            print(name, len(t), "->", len(tables[name]), flush=True)
        return tables
    T.run_tables = run_tables_filtered
if "bn" in variant:
    T.initial_model = lambda config, c: add_bn(orig(config, c))
config = TrainConfig(stage="cnn", experiment=f"cnn-{variant}-{n_batches}" + "".join(f"-{k}{v}" for k, v in extra.items() if k in ("lr",)), data_dir=data, runs_dir=f"{out}/runs",
                     matrix=int(extra.get("matrix", 64)), windows=json.loads(extra.get("windows", "[[40,80]]")),
                     max_filter=extra.get("max_filter", ""), base_width=16,
                     n_samples=25 * n_batches, eval_interval=250, n_val_slices=500, lr=float(extra.get("lr", 1e-4)),
                     seed=0, precision=extra.get("precision", "bf16"))
t0 = time.time()
best = train_stage(config, progress=False)
train_s = time.time() - t0
checkpoint_path = best.with_name("last.pt") if "last" in variant else best
ck = load_checkpoint(checkpoint_path)
model = orig(config, len(config.windows)) if "bn" not in variant else add_bn(orig(config, len(config.windows)))
model.load_state_dict(ck["model_state"]); model.eval()
tables = T.run_tables(config.resolved())
pp = config.preprocess_config()
pp2 = type(pp)(**{**pp.__dict__, "max_filter": "2x2x2" if pp.max_filter == "2x2" else pp.max_filter})
auc_max, auc_p95 = scan_aucs(model, tables["val"], pp2, f"{data}/cache")
m = pd.read_csv(f"{out}/runs/{config.experiment}/metrics.csv")
print(json.dumps({"variant": variant, "extra": extra, "batches": n_batches, "train_s": round(train_s),
      "best_step": ck["step"], "val_acc": m.val_metric.round(3).tolist(), "loss": m.train_loss.round(3).tolist(),
      "val_scan_auc_max": round(auc_max, 3), "val_scan_auc_p95": round(auc_p95, 3)}))
