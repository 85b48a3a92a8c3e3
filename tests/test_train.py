"""Tests of ich_study.train: learning, resuming, refusing wrong checkpoints, the papermill notebook."""
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from ich_study.core import CheckpointError, ConfigError
from ich_study.model import ICHNet
from ich_study.preprocess import PreprocessConfig
from ich_study.train import (CHECKPOINT_FORMAT, TrainConfig, initial_model, load_checkpoint,
                             model_from_checkpoint, optimizer_for, predict_scans, run_tables, save_checkpoint,
                             toy_volumes, train_stage, train_step)

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
TINY = dict(base_width=4, hidden_size=16, matrix=32, precision="float32", n_val_slices=20,
            num_workers=0, augment=True)


def write_tiny_cohort(folder: Path, n_cases: int = 12, slices: int = 16, size: int = 64) -> Path:
    """A minimal dataset folder (NIfTI HU scans, manifest, slice labels, splits) with blob lesions."""
    import SimpleITK as sitk
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    head = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (0.4 * size) ** 2
    rows, slice_rows = [], []
    splits = ["train"] * (n_cases // 2) + ["val"] * (n_cases // 4) + ["test"] * (n_cases - n_cases // 2 - n_cases // 4)
    for case in range(n_cases):
        label = case % 2
        volume = np.where(head, 30.0, -1000.0)[None].repeat(slices, 0) + rng.normal(0, 5, (slices, size, size))
        lesion_slices = set()
        if label:
            z, y, x = rng.integers(3, slices - 6), rng.integers(20, size - 28), rng.integers(20, size - 28)
            volume[z:z + 4, y:y + 8, x:x + 8] = 75.0
            lesion_slices = set(range(z, z + 4))
        image = sitk.GetImageFromArray(volume.astype(np.int16))
        image.SetSpacing((0.8, 0.8, 2.0))
        case_id = f"case{case:02d}"
        sitk.WriteImage(image, str(folder / "images" / f"{case_id}.nii.gz"))
        rows.append({"case_id": case_id, "patient_id": f"p{case:02d}", "image": f"images/{case_id}.nii.gz",
                     "label": label, "subtypes": "IPH" if label else "", "source": "synthetic"})
        slice_rows += [{"case_id": case_id, "slice_index": s, "label": int(s in lesion_slices),
                        "cranial_cavity": 1} for s in range(slices)]
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    pd.DataFrame(slice_rows).to_csv(folder / "slice_labels.csv", index=False)
    pd.DataFrame({"patient_id": [r["patient_id"] for r in rows], "split": splits}).to_csv(folder / "splits.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return write_tiny_cohort(tmp_path_factory.mktemp("cohort"))


def test_tiny_model_overfits_eight_volumes():
    torch.manual_seed(0)
    volumes, labels = toy_volumes(n_volumes=8, slices=6, size=32, seed=0)
    model = ICHNet(base_width=4, hidden_size=16, precision="float32")
    optimizer = optimizer_for(model, "scratch", 1e-3)
    losses = [train_step(model, optimizer, "scratch", volumes[i:i + 1], labels[i:i + 1])
              for _ in range(25) for i in range(8)]
    model.eval()
    with torch.no_grad():
        scores = model(volumes).softmax(1)[:, 1]
    assert np.mean(losses[-8:]) < 0.5 * np.mean(losses[:8])
    assert roc_auc_score(labels.numpy(), scores.numpy()) == 1.0


def test_resume_continues_the_same_run(cohort, tmp_path):
    base = TrainConfig(stage="scratch", experiment="whole", data_dir=str(cohort), runs_dir=str(tmp_path),
                       n_samples=6, eval_interval=3, cache_dir=str(tmp_path / "cache"), **TINY)
    whole = train_stage(base, progress=False)
    interrupted = replace(base, experiment="interrupted", stop_after_steps=2)
    train_stage(interrupted, progress=False)
    assert load_checkpoint(tmp_path / "interrupted" / "last.pt")["step"] == 2
    train_stage(replace(interrupted, stop_after_steps=2), progress=False)     # steps 3-4
    assert load_checkpoint(tmp_path / "interrupted" / "last.pt")["step"] == 4
    resumed = train_stage(replace(interrupted, stop_after_steps=0), progress=False)
    a, b = load_checkpoint(tmp_path / "whole" / "last.pt"), load_checkpoint(tmp_path / "interrupted" / "last.pt")
    assert a["step"] == b["step"] == 6
    for key, value in a["model_state"].items():
        torch.testing.assert_close(b["model_state"][key], value, rtol=0, atol=1e-6)
    metrics_a = pd.read_csv(tmp_path / "whole" / "metrics.csv").drop(columns="seconds")
    metrics_b = pd.read_csv(tmp_path / "interrupted" / "metrics.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(metrics_a, metrics_b)
    # the run folder holds everything the contract promises
    for name in ("config.json", "environment.json", "metrics.csv", "best.pt", "last.pt",
                 "predictions_val.csv", "learning_curves.png"):
        assert (tmp_path / "whole" / name).exists(), name
    best = load_checkpoint(whole, expect_stage="scratch")
    assert best["operating_point"]["chosen_on"] == "validation"
    # a finished run returns at once; another configuration in the same folder is refused
    assert train_stage(base, progress=False) == whole
    with pytest.raises(ConfigError, match="another configuration"):
        train_stage(replace(base, n_samples=8), progress=False)
    # a run recorded before a later field existed (here ema_decay) is still the same run
    for name in ("last.pt", "best.pt"):
        checkpoint = load_checkpoint(tmp_path / "whole" / name)
        del checkpoint["config"]["ema_decay"]
        save_checkpoint(checkpoint, tmp_path / "whole" / name)
    assert train_stage(base, progress=False) == whole



def test_weight_average_is_validated_saved_and_resumed(cohort, tmp_path):
    base = TrainConfig(stage="cnn", experiment="whole", data_dir=str(cohort), runs_dir=str(tmp_path),
                       n_samples=100, eval_interval=4, ema_decay=0.5, cache_dir=str(tmp_path / "cache"), **TINY)
    best = load_checkpoint(train_stage(base, progress=False))        # one validation, after the 4th step
    last = load_checkpoint(tmp_path / "whole" / "last.pt")
    assert best["step"] == last["step"] == 4
    average = {k.removeprefix("module."): v for k, v in last["averaged_state"].items() if k.startswith("module.")}
    assert average.keys() == best["model_state"].keys()
    for key, value in best["model_state"].items():                   # best.pt holds the average ...
        assert torch.equal(average[key], value), key
    assert not all(torch.equal(last["model_state"][k], v) for k, v in best["model_state"].items())  # ... not the weights
    model_from_checkpoint(best)
    # an interrupted run continues the same average
    interrupted = replace(base, experiment="interrupted", stop_after_steps=2)
    train_stage(interrupted, progress=False)
    train_stage(replace(interrupted, stop_after_steps=0), progress=False)
    resumed = load_checkpoint(tmp_path / "interrupted" / "last.pt")
    for key, value in last["averaged_state"].items():
        torch.testing.assert_close(resumed["averaged_state"][key], value, rtol=0, atol=1e-6)
    with pytest.raises(ConfigError, match="ema_decay"):
        train_stage(replace(base, experiment="bad", ema_decay=-0.1), progress=False)

def test_cosine_schedule_reaches_zero_and_resumes_along_the_same_curve(cohort, tmp_path):
    base = TrainConfig(stage="cnn", experiment="whole", data_dir=str(cohort), runs_dir=str(tmp_path),
                       n_samples=100, eval_interval=4, lr=1e-3, lr_schedule="cosine",
                       cache_dir=str(tmp_path / "cache"), **TINY)
    train_stage(base, progress=False)                                  # 4 steps of 25 slices
    whole = load_checkpoint(tmp_path / "whole" / "last.pt")
    assert whole["schedule_state"]["last_epoch"] == 4
    assert whole["optimizer_state"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-15)
    interrupted = replace(base, experiment="interrupted", stop_after_steps=2)
    train_stage(interrupted, progress=False)
    halfway = load_checkpoint(tmp_path / "interrupted" / "last.pt")
    assert halfway["optimizer_state"]["param_groups"][0]["lr"] == pytest.approx(1e-3 / 2)   # cos(pi / 2)
    train_stage(replace(interrupted, stop_after_steps=0), progress=False)
    resumed = load_checkpoint(tmp_path / "interrupted" / "last.pt")
    for key, value in whole["model_state"].items():
        torch.testing.assert_close(resumed["model_state"][key], value, rtol=0, atol=1e-6)
    # the constant rate (the paper's) is another configuration, and writes no schedule
    constant = replace(base, experiment="constant", lr_schedule="constant")
    train_stage(constant, progress=False)
    last = load_checkpoint(tmp_path / "constant" / "last.pt")
    assert last["schedule_state"] is None and last["optimizer_state"]["param_groups"][0]["lr"] == 1e-3
    assert not all(torch.equal(last["model_state"][k], v) for k, v in whole["model_state"].items())
    with pytest.raises(ConfigError, match="another configuration"):
        train_stage(replace(base, lr_schedule="constant"), progress=False)


def test_precision_is_recorded_and_emulated_bf16_is_warned_about(cohort, tmp_path, monkeypatch):
    """'auto' trains in float32 on a CPU without native bfloat16 and records what it used; a forced
    'bf16' there still trains, with a warning (emulated bf16 is several times slower than float32)."""
    import warnings
    import ich_study.model, ich_study.train
    for module in (ich_study.model, ich_study.train): monkeypatch.setattr(module, "cpu_has_bf16", lambda: False)
    base = TrainConfig(stage="cnn", data_dir=str(cohort), runs_dir=str(tmp_path), n_samples=50, eval_interval=2,
                       cache_dir=str(tmp_path / "cache"), **{**TINY, "precision": "auto"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                   # no warning for 'auto'
        train_stage(replace(base, experiment="auto"), progress=False)
    environment = json.loads((tmp_path / "auto" / "environment.json").read_text(encoding="utf-8"))
    assert (environment["device"], environment["precision"]) == ("cpu", "float32")
    assert isinstance(environment["cpu_native_bf16"], bool) and environment["cpu"]
    with pytest.warns(UserWarning, match="forced: precision 'bf16' on a CPU without native bfloat16"):
        train_stage(replace(base, experiment="forced", precision="bf16"), progress=False)
    assert json.loads((tmp_path / "forced" / "environment.json").read_text(encoding="utf-8"))["precision"] == "bf16"


def _fake_checkpoint(path: Path, stage: str, base_width: int = 4, windows=((40.0, 80.0),), in_channels: int = 1,
                     stem_stride: int = 1):
    config = TrainConfig(stage=stage, base_width=base_width, windows=windows, **{k: v for k, v in TINY.items()
                                                                                 if k != "base_width"})
    model = ICHNet(in_channels=in_channels, base_width=base_width, hidden_size=16, lstm_layers=2,
                   stem_stride=stem_stride)
    return save_checkpoint({"format": CHECKPOINT_FORMAT, "stage": stage, "experiment": stage,
                            "architecture": model.architecture, "preprocess": asdict(config.preprocess_config()),
                            "model_state": model.state_dict()}, path)


def test_a_strided_stem_takes_the_slices_at_full_matrix():
    """stem_stride 2: the network halves the slice, so the preprocessing keeps the matrix (slice pairs merged
    for volumes), and no max filter that merges slices reaches stage cnn."""
    filters = {stage: TrainConfig(stage=stage, stem_stride=2).resolved().max_filter for stage in ("cnn", "lstm", "e2e", "scratch")}
    assert filters == {"cnn": "none", "lstm": "1x1x2", "e2e": "1x1x2", "scratch": "1x1x2"}
    assert TrainConfig(stage="lstm").resolved().max_filter == "2x2x2"            # the paper's, unchanged
    with pytest.raises(ConfigError, match="stem_stride must be 1 or 2"):
        TrainConfig(stage="cnn", stem_stride=3).resolved()
    with pytest.raises(ConfigError, match="not '1x1x2'"):
        TrainConfig(stage="cnn", max_filter="1x1x2").resolved()


def test_each_stage_refuses_a_wrong_checkpoint(tmp_path):
    cnn = _fake_checkpoint(tmp_path / "cnn.pt", "cnn")
    lstm = _fake_checkpoint(tmp_path / "lstm.pt", "lstm")
    scratch = _fake_checkpoint(tmp_path / "scratch.pt", "scratch")
    wide = _fake_checkpoint(tmp_path / "wide.pt", "cnn", base_width=8)
    two_channel = _fake_checkpoint(tmp_path / "two.pt", "cnn", in_channels=2)
    other_window = _fake_checkpoint(tmp_path / "window.pt", "cnn", windows=((80.0, 200.0),))
    strided = _fake_checkpoint(tmp_path / "strided.pt", "cnn", stem_stride=2)
    lstm_config = TrainConfig(stage="lstm", **TINY)
    e2e_config = TrainConfig(stage="e2e", **TINY)
    # the right checkpoints load
    assert initial_model(replace(lstm_config, init_checkpoint=str(cnn)), 1).cnn_frozen
    initial_model(replace(e2e_config, init_checkpoint=str(lstm)), 1)
    assert not initial_model(TrainConfig(stage="cnn", init_checkpoint=str(cnn), **TINY), 1).cnn_frozen
    # dropout in the CNN is part of pre-training only (the paper's stage 1)
    assert initial_model(TrainConfig(stage="cnn", **TINY), 1).cnn_dropout
    for config in (replace(lstm_config, init_checkpoint=str(cnn)), replace(e2e_config, init_checkpoint=str(lstm)),
                   TrainConfig(stage="scratch", **TINY)):
        model = initial_model(config, 1).train()
        assert not model.cnn_dropout and not any(m.training for m in model.modules() if isinstance(m, torch.nn.Dropout))
    cases = [
        (replace(lstm_config, init_checkpoint=str(tmp_path / "missing.pt")), CheckpointError, "no such checkpoint"),
        (replace(lstm_config, init_checkpoint=""), CheckpointError, "set init_checkpoint"),
        (replace(lstm_config, init_checkpoint=str(scratch)), CheckpointError, "expected stage cnn"),
        (replace(lstm_config, init_checkpoint=str(lstm)), CheckpointError, "expected stage cnn"),
        (replace(lstm_config, init_checkpoint=str(wide)), CheckpointError, "other architecture: base_width"),
        (replace(lstm_config, init_checkpoint=str(two_channel)), CheckpointError, "other architecture: in_channels"),
        (replace(lstm_config, init_checkpoint=str(strided)), CheckpointError, "other architecture: stem_stride=2"),
        (replace(lstm_config, init_checkpoint=str(cnn), stem_stride=2), CheckpointError, "stem_stride=1 in the checkpoint"),
        (replace(lstm_config, init_checkpoint=str(other_window)), CheckpointError, "other inputs: windows"),
        (replace(lstm_config, init_checkpoint=str(cnn), crop_mm=200.0), CheckpointError,
         "other inputs: crop_mm=None in the checkpoint, 200.0 in this run"),
        (replace(e2e_config, init_checkpoint=str(cnn)), CheckpointError, "expected stage lstm"),
        (replace(e2e_config, init_checkpoint=str(lstm), lstm_layers=1), CheckpointError, "other architecture: lstm_layers"),
        (TrainConfig(stage="scratch", init_checkpoint=str(lstm), **TINY), ConfigError, "random initialisation"),
        # stage cnn fine-tunes a pre-trained slice CNN: only a cnn checkpoint of the same inputs
        (TrainConfig(stage="cnn", init_checkpoint=str(lstm), **TINY), CheckpointError, "expected stage cnn"),
        (TrainConfig(stage="cnn", init_checkpoint=str(other_window), **TINY), CheckpointError, "other inputs: windows"),
    ]
    for config, error, message in cases:
        with pytest.raises(error, match=message):
            initial_model(config, 1)
    assert initial_model(replace(lstm_config, init_checkpoint=str(strided), stem_stride=2), 1).cnn.stem_stride == 2
    (tmp_path / "junk.pt").write_text("junk", encoding="utf-8")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_a_strided_stem_trains_on_full_matrix_slices_and_predicts(cohort, tmp_path):
    """The learned reduction end to end at toy size: stage cnn on 64 x 64 slices, stage lstm on volumes with
    slice pairs merged, the checkpoints carrying what prediction needs."""
    tiny = {**TINY, "matrix": 64, "stem_stride": 2}
    common = dict(data_dir=str(cohort), runs_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"), eval_interval=2, **tiny)
    cnn = train_stage(TrainConfig(stage="cnn", experiment="cnn", n_samples=50, **common), progress=False)
    lstm = train_stage(TrainConfig(stage="lstm", experiment="lstm", n_samples=4, init_checkpoint=str(cnn), **common),
                       progress=False)
    checkpoints = load_checkpoint(cnn), load_checkpoint(lstm)
    assert [c["preprocess"]["max_filter"] for c in checkpoints] == ["none", "1x1x2"]
    assert all(c["architecture"]["stem_stride"] == 2 and c["preprocess"]["matrix"] == 64 for c in checkpoints)
    model = model_from_checkpoint(checkpoints[1], precision="float32")
    manifest = pd.read_csv(cohort / "manifest.csv").head(2)
    manifest["image"] = [str(cohort / p) for p in manifest["image"]]
    preprocess = PreprocessConfig.from_dict(checkpoints[1]["preprocess"])
    predictions = predict_scans(model, manifest, preprocess, tmp_path / "cache", "cpu", progress=False)
    assert [len(json.loads(s)) for s in predictions["slice_probabilities"]] == [8, 8]    # 16 slices in pairs


def test_predict_scans(cohort, tmp_path):
    checkpoint = load_checkpoint(_fake_checkpoint(tmp_path / "lstm.pt", "lstm"))
    model = model_from_checkpoint(checkpoint, precision="float32")
    manifest = pd.read_csv(cohort / "manifest.csv").head(3)
    manifest["image"] = [str(cohort / p) for p in manifest["image"]]
    config = TrainConfig(stage="lstm", **TINY).preprocess_config()
    predictions = predict_scans(model, manifest, config, tmp_path / "cache", "cpu", progress=False)
    assert list(predictions.columns) == ["case_id", "label", "probability", "slice_probabilities"]
    assert predictions["probability"].between(0, 1).all()
    assert [len(json.loads(s)) for s in predictions["slice_probabilities"]] == [8, 8, 8]   # 16 slices, 2x2x2
    second = str(manifest.case_id.iloc[1])
    with_influence = predict_scans(model, manifest, config, tmp_path / "cache", "cpu", progress=False,
                                   influence_cases={second})
    pd.testing.assert_frame_equal(with_influence.drop(columns="slice_influence"), predictions)
    assert with_influence.slice_influence.tolist()[0::2] == ["", ""]      # only for the case asked
    influence = json.loads(with_influence.slice_influence.iloc[1])
    assert len(influence) == 8 and any(value != 0 for value in influence)


def test_a_reader_of_ones_own_is_checked_scan_by_scan(cohort, tmp_path):
    """A custom reader's scans are known only once read: a pre-windowed scan among HU scans (here the last
    validation scan) stops the run when it is read, naming it, before any best.pt is written."""
    from ich_study.core import ScanError
    from ich_study.io import Scan, read_scan

    def reader(path: str) -> Scan:
        scan = read_scan(path)
        if "case08" not in path: return scan
        windowed = np.clip(np.stack([scan.volume / 80.0, scan.volume / 2800.0], 1), 0, 1).astype(np.float32)
        return Scan(windowed, scan.spacing_mm, kind="windowed", channel_names=("brain", "bone"), source=path)

    config = TrainConfig(stage="scratch", experiment="mixed", data_dir=str(cohort), runs_dir=str(tmp_path),
                         n_samples=4, eval_interval=4, cache_dir=str(tmp_path / "cache"), **TINY)
    with pytest.raises(ScanError, match=r"case08\.nii\.gz: a scan of kind .*windowed.* whose first scan is of kind \{'kind': 'HU'\}"):
        train_stage(config, reader=reader, progress=False)
    assert not (tmp_path / "mixed" / "best.pt").exists()
    assert train_stage(replace(config, experiment="plain"), reader=read_scan, progress=False).exists()


def test_scan_negatives_reach_the_slice_tables(cohort):
    """scan_negatives = 'all' adds the bleed-free slices of positive training scans as negatives (never a
    bleed slice); the default keeps the paper's negatives from negative scans only; other values are refused."""
    config = TrainConfig(stage="cnn", data_dir=str(cohort), **TINY)
    paper = run_tables(config)["train_slices"]
    every = run_tables(replace(config, scan_negatives="all"))["train_slices"]
    positive_scans = set(pd.read_csv(cohort / "manifest.csv").query("label == 1").case_id)
    assert not set(paper.query("label == 0").case_id) & positive_scans
    added = every.query("label == 0 and case_id in @positive_scans")
    assert len(added) > 0 and len(every) == len(paper) + len(added)
    labels = pd.read_csv(cohort / "slice_labels.csv").set_index(["case_id", "slice_index"])["label"]
    assert (labels.loc[list(zip(added.case_id, added.slice_index))] == 0).all()
    with pytest.raises(ConfigError, match="scan_negatives must be one of"):
        replace(config, scan_negatives="positive").resolved()


def test_papermill_runs_every_stage(cohort, tmp_path):
    from ich_study.reproduce import _run_notebook     # papermill as the chain runs it (Unix-socket kernel)
    runs = tmp_path / "runs"
    common = dict(data_dir=str(cohort), runs_dir=str(runs), cache_dir=str(tmp_path / "cache"),
                  base_width=4, hidden_size=16, matrix=32, precision="float32", eval_interval=2,
                  n_val_slices=20, threads=1)
    chain = [("cnn", "cnn", "", 50), ("lstm", "lstm", runs / "cnn" / "best.pt", 4),
             ("e2e", "e2e", runs / "lstm" / "best.pt", 4), ("scratch", "scratch", "", 4)]
    for stage, experiment, init, n_samples in chain:
        _run_notebook(REPO / "nbs" / "train.ipynb", tmp_path / f"{experiment}.ipynb",
                      dict(common, stage=stage, experiment=experiment, init_checkpoint=str(init), n_samples=n_samples),
                      cwd=REPO)
        best = load_checkpoint(runs / experiment / "best.pt", expect_stage=stage)
        assert best["step"] >= 1
    e2e = load_checkpoint(runs / "e2e" / "best.pt")
    assert e2e["operating_point"]["chosen_on"] == "validation"


def test_crop_mm_of_none_or_zero_reads_the_whole_image():
    """crop_mm: 0 (the notebook's default) or None reads whole slices; a side cuts them around the head; below 0 refused."""
    assert TrainConfig(stage="lstm", crop_mm=None).preprocess_config().crop_mm is None
    assert TrainConfig(stage="lstm").preprocess_config().crop_mm is None
    assert TrainConfig(stage="lstm", crop_mm=220).preprocess_config().crop_mm == 220.0
    with pytest.raises(ConfigError, match="crop_mm must be 0"):
        TrainConfig(stage="lstm", crop_mm=-1).resolved()
