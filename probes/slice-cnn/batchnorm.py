"""Probe: does BatchNorm after every convolution let the demo's slice CNN learn faster?
Trains stage 1 with the demo profile's settings (brain + bone windows, 64 x 64 after the 2x2 max
filter, base width 16, min_lesion_mm2 30, balanced batches of 25, seed 0) for N batches, with and
without BatchNorm, at the given Adam learning rates, then scores every checkpoint it chose and its
last on all validation slices (slice ROC AUC, overall and by the positive slices' bleed area in
mm2 from slice_labels.csv). Validation data only; no test scan is read.
usage: batchnorm.py DATA_DIR OUT_DIR N_BATCHES VARIANT:LR [VARIANT:LR ...]   (VARIANT: base | bn)"""
import dataclasses, sys, time
import numpy as np, pandas as pd, torch, torch.nn as nn
from sklearn.metrics import roc_auc_score
from ich_study.core import set_torch_threads
import ich_study.train as T
from ich_study.preprocess import SliceDataset

def add_batchnorm(model: nn.Module) -> nn.Module:
    """BatchNorm2d after every convolution of the slice CNN (before its ReLU / pooling)."""
    layers = []
    for module in model.cnn.features:
        layers.append(module)
        if isinstance(module, nn.Conv2d): layers.append(nn.BatchNorm2d(module.out_channels))
    model.cnn.features = nn.Sequential(*layers)
    model.cnn.to(memory_format=torch.channels_last)
    return model

def validation_slices(config: T.TrainConfig, data_dir: str) -> tuple[SliceDataset, pd.DataFrame]:
    """Every validation slice (none left out by min_lesion_mm2) and the bleed area of each, read once."""
    validation = T.run_tables(dataclasses.replace(config, min_lesion_mm2=0).resolved())["val_slices"]
    areas = pd.read_csv(f"{data_dir}/slice_labels.csv")[["case_id", "slice_index", "lesion_mm2"]]
    return SliceDataset(validation, config.preprocess_config(), cache_dir=f"{data_dir}/cache"), areas

def slice_aucs(model: nn.Module, dataset: SliceDataset, areas: pd.DataFrame) -> str:
    """Slice AUC on every validation slice, and by bleed area of the positives (mm2) against all negatives."""
    scored = T.predict_slices(model, dataset, np.arange(len(dataset)), "cpu", 50, False).merge(areas, on=["case_id", "slice_index"])
    negatives = scored[scored.label == 0]
    parts = [f"all {roc_auc_score(scored.label, scored.probability):.3f} (n={len(scored)})"]
    for low, high in [(0, 30), (30, 100), (100, 300), (300, 1e9)]:
        positives = scored[(scored.label == 1) & (scored.lesion_mm2 >= low) & (scored.lesion_mm2 < high)]
        both = pd.concat([positives, negatives])
        parts.append(f"{low}-{high:g} mm2 {roc_auc_score(both.label, both.probability):.3f} (n={len(positives)})")
    return "  ".join(parts)

if __name__ == "__main__":
    set_torch_threads(2)
    data_dir, out_dir, n_batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
    make_model = T.initial_model
    validation = None                           # the validation slices, read once for every variant
    for spec in sys.argv[4:]:
        variant, lr = spec.split(":")
        T.initial_model = (lambda config, channels: add_batchnorm(make_model(config, channels))) if variant == "bn" else make_model
        config = T.TrainConfig(stage="cnn", experiment=f"cnn-{variant}-lr{lr}-{n_batches}", data_dir=data_dir,
                               runs_dir=f"{out_dir}/runs", matrix=64, windows=((40, 80), (600, 2800)), base_width=16,
                               n_samples=25 * n_batches, eval_interval=250, n_val_slices=500, min_lesion_mm2=30,
                               lr=float(lr), seed=0, precision="auto")
        started = time.time()
        best = T.train_stage(config, progress=False)
        minutes = (time.time() - started) / 60
        metrics = pd.read_csv(best.with_name("metrics.csv"))
        print(f"{variant} lr {lr}: {minutes:.1f} min; training loss {metrics.train_loss.round(3).tolist()}; "
              f"validation accuracy {metrics.val_metric.round(3).tolist()}", flush=True)
        if validation is None: validation = validation_slices(config, data_dir)
        for name in ("best.pt", "last.pt"):
            checkpoint = T.load_checkpoint(best.with_name(name))
            model = T.initial_model(config.resolved(), len(config.windows))
            model.load_state_dict(checkpoint["model_state"]); model.eval()
            print(f"  {name} (batch {checkpoint['step']}): {slice_aucs(model, *validation)}", flush=True)
