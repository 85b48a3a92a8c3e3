"""Tests of ich_study.evaluate: the report's files and numbers, the operating point's split, folds,
and the run-folder path with tiny real checkpoints."""
import json
import math
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ich_study.core import LabelError
from ich_study.evaluate import (PAPER_RESULTS, ExampleSlice, apply_operating_point, comparisons_table,
                                demo_predictions, evaluate_predictions, evaluate_study, normalise_runs,
                                operating_point_table, results_table, run_fold, subgroups_table)
from ich_study.stats import threshold_at_sensitivity

ALL = ("cnn-max", "cnn-p95", "svm", "lstm1", "lstm2", "e2e1", "e2e2", "scratch2")


def numbers_in_csvs(folder: Path) -> tuple[set[str], set[str]]:
    """Every numeric cell of the report's CSVs at 3 decimals and as integers; paper values at 2 decimals."""
    three, two = set(), set()
    for path in folder.rglob("*.csv"):
        three.update(re.findall(r"\d+\.\d+", path.read_text(encoding="utf-8")))   # numbers written as text (the paper's 'P < 0.0001')
        table = pd.read_csv(path)
        for column in table.columns:
            values = pd.to_numeric(table[column], errors="coerce").dropna()
            for value in values:
                three.add(f"{value:.3f}")
                if float(value).is_integer(): three.add(str(int(value)))
                if path.name == "paper_results.csv": two.add(f"{value:.2f}"); two.add(f"{value:.1f}")
    return three, two


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    predictions = demo_predictions(ALL, n_test=40, n_val=20, folds=(0, 1), seed=3)
    test = predictions["e2e2"]
    manifest = pd.DataFrame({"case_id": test.case_id,
                             "subtypes": np.where(test.label == 1, np.where(np.arange(len(test)) % 4 == 1, "IPH", "SDH;SAH"), ""),
                             "lesion_volume_ml": np.where(test.label == 1, np.arange(len(test)) % 37 * 1.3, np.nan)})
    timings = pd.DataFrame({"experiment": "e2e2", "device": "cpu", "case_id": list("abcd"),
                            "reading_s": [0.11, 0.2, 0.3, 0.4], "preprocessing_s": [0.01, 0.02, 0.06, 0.01],
                            "model_s": [1.0, 1.5, 4.0, 2.0]})
    svm_selection = pd.concat([pd.DataFrame({"C": [1e-4, 0.01, 1.0], "val_auc": [0.612, 0.705, 0.598], "n_val": 20,
                                             "chosen": [False, True, False], "fold": fold}) for fold in (0, 1)])
    path = evaluate_predictions("t", predictions, folder, "SYNTHETIC test tables", manifest=manifest, n_boot=100,
                                timings=timings, load_slice=lambda case_id: ExampleSlice(np.zeros((32, 32)), 0, 1),
                                svm_selection=svm_selection)
    return folder, path.read_text(encoding="utf-8"), predictions


def test_every_file_exists(report):
    folder, _, _ = report
    for name in ("report.md", "results.csv", "comparisons.csv", "operating_point.csv", "timing.csv",
                 "subgroups.csv", "svm_selection.csv", "roc_baselines.png", "roc_lstm.png", "examples.png",
                 "paper_results.csv", "evaluation.json", *[f"predictions/{e}.csv" for e in ALL]):
        assert (folder / name).exists() and (folder / name).stat().st_size > 0, name


def test_every_number_in_report_comes_from_a_csv(report):
    folder, text, _ = report
    body = text.split("## Provenance")[0]
    three, two = numbers_in_csvs(folder)
    decimals = re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", body)
    assert len(decimals) > 100
    for token in decimals:
        places = len(token.split(".")[1])
        if places == 3: assert token in three, token
        else: assert token in two or token in three, token   # the paper's, from paper_results.csv / comparisons.csv
    # integer table cells (n, positives, counts) appear in a CSV too
    for line in body.splitlines():
        if line.startswith("| ") and not line.startswith("| experiment"):
            for cell in line.strip("|").split("|"):
                if re.fullmatch(r"\d+", cell.strip()): assert cell.strip() in three, (cell, line)
    # and the paper's numbers are labelled as the paper's, ours with our data
    assert "paper: private clinical data, test n=386" in text and "ours: SYNTHETIC test tables" in text
    assert "0.96 [0.93-0.97]" in text and "pool the out-of-fold predictions of 2 folds" in text
    assert "| 1 | 0.01 | 20 | 0.705 | yes |" in text        # the SVM's C, per fold


def test_results_match_predictions(report):
    folder, _, predictions = report
    from sklearn.metrics import roc_auc_score
    results = pd.read_csv(folder / "results.csv").set_index("experiment")
    written = pd.read_csv(folder / "predictions" / "e2e2.csv")
    test = written[written.split == "test"]
    assert results.loc["e2e2", "auc"] == pytest.approx(roc_auc_score(test.label, test.probability))
    assert results.loc["e2e2", "n"] == 80 and results.loc["e2e2", "n_folds"] == 2
    comparisons = pd.read_csv(folder / "comparisons.csv")
    assert len(comparisons) == len(PAPER_RESULTS["comparisons"])


def test_operating_point_is_chosen_on_validation():
    rng = np.random.default_rng(0)
    rows = []
    for split, shift in (("val", 0.0), ("test", 0.3)):        # test positives score higher than validation
        for i in range(100):
            label = i % 2
            rows.append({"case_id": f"{split}{i}", "label": label, "split": split, "fold": -1,
                         "probability": float(np.clip(0.3 * label + shift * label + rng.random() * 0.5, 0, 1))})
    table = pd.DataFrame(rows)
    val, test = table[table.split == "val"], table[table.split == "test"]
    decided = apply_operating_point(table, 0.9)
    chosen_on_val = threshold_at_sensitivity(val.label, val.probability, 0.9)
    chosen_on_test = threshold_at_sensitivity(test.label, test.probability, 0.9)
    assert chosen_on_val != pytest.approx(chosen_on_test)
    assert set(decided.threshold) == {chosen_on_val}
    assert set(decided.split) == {"test"} and len(decided) == 100
    # changing test scores never moves the threshold; changing validation scores does
    moved_test = table.assign(probability=np.where(table.split == "test", table.probability * 0.5, table.probability))
    assert set(apply_operating_point(moved_test, 0.9).threshold) == {chosen_on_val}
    moved_val = table.assign(probability=np.where(table.split == "val", table.probability * 0.5, table.probability))
    assert set(apply_operating_point(moved_val, 0.9).threshold) != {chosen_on_val}
    metrics = operating_point_table({"m": table}, 0.9).iloc[0]
    assert metrics.tp == int(((test.probability >= chosen_on_val) & (test.label == 1)).sum())
    assert metrics.chosen_on == "validation"


def test_folds_get_their_own_thresholds():
    table = demo_predictions(("e2e2",), n_test=30, n_val=20, folds=(0, 1, 2), seed=1)["e2e2"]
    decided = apply_operating_point(table, 0.95)
    for fold, rows in table.groupby("fold"):
        val = rows[rows.split == "val"]
        assert set(decided[decided.fold == fold].threshold) == {threshold_at_sensitivity(val.label, val.probability, 0.95)}
    result = results_table({"e2e2": table}, "x", n_boot=20).iloc[0]
    assert result.n == 90 and result.n_folds == 3


def test_comparisons_need_the_same_cases():
    tables = demo_predictions(("e2e1", "e2e2"), n_test=30, n_val=10)
    tables["e2e1"] = tables["e2e1"].iloc[:-1]          # one test case missing
    with pytest.raises(LabelError, match="same test cases"):
        comparisons_table(tables)
    assert comparisons_table({"e2e2": tables["e2e2"]}).empty


def test_subgroups_count_positives_per_subtype_and_volume():
    table = demo_predictions(("e2e2",), n_test=40, n_val=20)["e2e2"]
    decided = apply_operating_point(table)
    positives = decided[decided.label == 1]
    manifest = pd.DataFrame({"case_id": positives.case_id, "subtypes": ["IPH;SAH", "EDH"] * (len(positives) // 2),
                             "lesion_volume_ml": [0.5, 40.0] * (len(positives) // 2)})
    groups = subgroups_table({"e2e2": decided}, manifest).set_index("group")
    assert groups.loc["IPH", "positives"] == 10 and groups.loc["EDH", "positives"] == 10
    assert groups.loc[">= 30 ml", "detected"] == int(positives.detected.iloc[1::2].sum())
    assert groups.loc["0-1 ml", "sensitivity"] == pytest.approx(positives.detected.iloc[::2].mean())


def test_runs_parameter_forms():
    assert normalise_runs({"e2e2": "a/e2e2", "cnn": ["a/cnn-fold0", "a/cnn-fold1"]}) == \
        {"e2e2": [Path("a/e2e2")], "cnn": [Path("a/cnn-fold0"), Path("a/cnn-fold1")]}
    assert normalise_runs(json.dumps({"x": []})) == {}
    assert run_fold("runs/s/lstm1-fold4", 0, 5) == 4


def _tiny_checkpoint(path: Path, stage: str, lstm_layers: int, seed: int, fold: int = -1):
    import torch
    from ich_study.model import ICHNet
    from ich_study.preprocess import PreprocessConfig
    torch.manual_seed(seed)
    architecture = dict(in_channels=1, base_width=2, lstm_layers=lstm_layers, hidden_size=8)
    model = ICHNet(**architecture)
    config = PreprocessConfig(max_filter="2x2" if stage == "cnn" else "2x2x2", matrix=32)
    path.mkdir(parents=True)
    torch.save({"format": "ich-study/1", "stage": stage, "experiment": path.name, "architecture": architecture,
                "preprocess": asdict(config), "model_state": model.state_dict(), "step": 0, "best_metric": 0.5},
               path / "best.pt")
    (path / "config.json").write_text(json.dumps({"fold": fold, "stage": stage}), encoding="utf-8")


def _tiny_dataset(data: Path, n_cases: int, n_folds: int = 0, seed: int = 0, slice_labels: bool = False,
                  slice_mm: float = 5.0):
    import SimpleITK as sitk
    (data / "images").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    rows, splits, labelled = [], [], []
    for i in range(n_cases):
        label = i % 2
        volume = rng.normal(30, 10, (6 + i % 3, 64, 64)).astype(np.int16)
        if label: volume[2:4, 20:30, 20:30] = 70
        image = sitk.GetImageFromArray(volume); image.SetSpacing((0.8, 0.8, slice_mm))
        sitk.WriteImage(image, str(data / "images" / f"c{i:02d}.nii.gz"))
        rows.append({"case_id": f"c{i:02d}", "patient_id": f"p{i:02d}", "image": f"images/c{i:02d}.nii.gz",
                     "label": label, "subtypes": "IPH" if label else "", "source": "synthetic",
                     "lesion_volume_ml": 3.2 if label else "", "spacing": f"{slice_mm:g},0.8,0.8"})
        split = "train" if i < n_cases // 2 else ("val" if i < n_cases * 2 // 3 else "test")
        splits.append({"patient_id": f"p{i:02d}", "split": split, **({"fold": (i // 2) % n_folds} if n_folds else {})})
        labelled += [{"case_id": f"c{i:02d}", "slice_index": k, "label": int(label and k in (2, 3))} for k in range(len(volume))]
    pd.DataFrame(rows).to_csv(data / "manifest.csv", index=False)
    pd.DataFrame(splits).to_csv(data / "splits.csv", index=False)
    if slice_labels: pd.DataFrame(labelled).to_csv(data / "slice_labels.csv", index=False)


def test_evaluate_study_from_tiny_runs(tmp_path):
    """The run-folder path end to end: untrained tiny models, real files, baselines, SVM, timing."""
    pytest.importorskip("ich_study.datasets")
    import torch
    torch.set_num_threads(1)
    _tiny_dataset(tmp_path / "data", 24)
    runs = tmp_path / "runs"
    _tiny_checkpoint(runs / "cnn", "cnn", 2, 0)
    _tiny_checkpoint(runs / "lstm2", "lstm", 2, 1)
    _tiny_checkpoint(runs / "e2e2", "e2e", 2, 2)
    report = evaluate_study("tiny", tmp_path / "data", {"cnn": [str(runs / "cnn")], "lstm2": str(runs / "lstm2"),
                                                        "e2e2": [str(runs / "e2e2")]},
                            tmp_path / "report", n_boot=20, target_sensitivity=0.98, device="cpu", n_timing=2,
                            cache_dir=tmp_path / "cache")
    folder = report.parent
    results = pd.read_csv(folder / "results.csv").set_index("experiment")
    assert set(results.index) == {"cnn-max", "cnn-p95", "svm", "lstm2", "e2e2"}
    assert (results.n == 8).all() and (results.positives == 4).all()
    assert pd.read_csv(folder / "timing.csv").query("step == 'total'").n.item() == 2
    assert (folder / "examples.png").exists() and (folder / "subgroups.csv").exists()
    assert set(pd.read_csv(folder / "comparisons.csv").experiment_b) == {"lstm2", "svm"}
    selection = pd.read_csv(folder / "svm_selection.csv")          # the SVM's C, chosen on the validation scans
    assert selection.chosen.sum() == 1 and (selection.n_val == 4).all() and "The SVM's C" in report.read_text(encoding="utf-8")


def test_evaluate_study_pools_folds(tmp_path):
    """Cross-validation: one run per fold; every scan is scored once, by its fold's models."""
    pytest.importorskip("ich_study.datasets")
    import torch
    torch.set_num_threads(1)
    _tiny_dataset(tmp_path / "data", 40, n_folds=2)
    runs = tmp_path / "runs"
    for fold in (0, 1):
        _tiny_checkpoint(runs / f"cnn-fold{fold}", "cnn", 1, fold, fold)
        _tiny_checkpoint(runs / f"e2e2-fold{fold}", "e2e", 1, 10 + fold, fold)
    report = evaluate_study("folds", tmp_path / "data",
                            {"cnn": [str(runs / "cnn-fold0"), str(runs / "cnn-fold1")],
                             "e2e2": [str(runs / "e2e2-fold0"), str(runs / "e2e2-fold1")]},
                            tmp_path / "report", n_boot=20, device="cpu", n_timing=1, cache_dir=tmp_path / "cache")
    folder = report.parent
    predictions = pd.read_csv(folder / "predictions" / "e2e2.csv", dtype={"case_id": str})
    test = predictions[predictions.split == "test"]
    assert len(test) == 40 and test.case_id.is_unique                 # every scan scored exactly once
    splits = pd.read_csv(tmp_path / "data" / "splits.csv", dtype={"patient_id": str})
    fold_of = dict(zip("c" + splits.patient_id.str[1:], splits.fold))
    assert all(fold_of[c] == f for c, f in zip(test.case_id, test.fold))   # scored by the fold that held it out
    results = pd.read_csv(folder / "results.csv").set_index("experiment")
    assert (results.n_folds == 2).all() and (results.n == 40).all()
    assert "out-of-fold predictions of 2 folds" in report.read_text(encoding="utf-8")
    assert len(pd.read_csv(folder / "operating_point.csv").thresholds.iloc[0].split(";")) == 2
    selection = pd.read_csv(folder / "svm_selection.csv")          # one C per fold, each on its own validation scans
    assert sorted(selection.fold.unique()) == [0, 1] and selection.groupby("fold").chosen.sum().eq(1).all()


def test_evaluate_study_tests_fold_runs_on_another_dataset(tmp_path):
    """Cross-validation runs tested on another dataset: every fold's model scores every one of its scans, and each
    scan gets one test row, the mean of the folds' probabilities, decided against the mean of the folds' thresholds,
    which the validation rows of the study's own report chose; the slice readings are averaged alike."""
    import torch
    from ich_study.datasets import read_manifest
    from ich_study.evaluate import FOLD_MEAN
    from ich_study.preprocess import PreprocessConfig
    from ich_study.train import load_checkpoint, model_from_checkpoint, predict_scans
    torch.set_num_threads(1)
    _tiny_dataset(tmp_path / "data", 40, n_folds=2)
    _tiny_dataset(tmp_path / "other", 10, seed=1, slice_labels=True, slice_mm=1.0)     # slices 1 mm apart, not 5
    runs = tmp_path / "runs"
    for fold in (0, 1):
        _tiny_checkpoint(runs / f"cnn-fold{fold}", "cnn", 1, fold, fold)
        _tiny_checkpoint(runs / f"e2e2-fold{fold}", "e2e", 1, 10 + fold, fold)
    folds = {name: [str(runs / f"{name}-fold{fold}") for fold in (0, 1)] for name in ("cnn", "e2e2")}
    common = dict(n_boot=20, device="cpu", n_timing=1, cache_dir=tmp_path / "cache")
    own = evaluate_study("folds", tmp_path / "data", folds, tmp_path / "own", **common).parent
    tested = evaluate_study("folds-on-other", tmp_path / "data", folds, tmp_path / "tested",
                            test_data_dir=tmp_path / "other", test_cache_dir=tmp_path / "other-cache", **common).parent
    for cache, dataset in ((tmp_path / "cache", "data"), (tmp_path / "other-cache", "other")):   # each dataset's copies apart
        sources = {Path(json.loads(sidecar.read_text(encoding="utf-8"))["source"]).parent.parent.name
                   for sidecar in cache.glob("*.json")}
        assert sources == {dataset}, (cache, sources)
    other = read_manifest(tmp_path / "other")
    for name in ("e2e2", "cnn-max", "svm"):
        predictions, own_predictions = (pd.read_csv(folder / "predictions" / f"{name}.csv", dtype={"case_id": str})
                                        for folder in (tested, own))
        test = predictions[predictions.split == "test"]
        assert sorted(test.case_id) == sorted("other:" + other.case_id) and set(test.fold) == {FOLD_MEAN}
        pd.testing.assert_frame_equal(predictions[predictions.split == "val"].reset_index(drop=True),
                                      own_predictions[own_predictions.split == "val"].reset_index(drop=True))
    by_fold = []                                         # what each fold's full model gives each scan, on its own
    for fold in (0, 1):
        checkpoint = load_checkpoint(runs / f"e2e2-fold{fold}" / "best.pt")
        by_fold.append(predict_scans(model_from_checkpoint(checkpoint), other, PreprocessConfig.from_dict(checkpoint["preprocess"]),
                                     None, progress=False).set_index("case_id").probability)
    e2e2 = pd.read_csv(tested / "predictions" / "e2e2.csv", dtype={"case_id": str})
    test = e2e2[e2e2.split == "test"].set_index("case_id")
    expected = ((by_fold[0] + by_fold[1]) / 2)[[case.split(":", 1)[1] for case in test.index]]
    assert test.probability.to_numpy() == pytest.approx(expected.to_numpy(), abs=1e-6)
    assert not np.allclose(by_fold[0], by_fold[1])          # two models that disagree, so the mean is not either one
    points, own_points = (pd.read_csv(folder / "operating_point.csv").set_index("experiment") for folder in (tested, own))
    assert points.thresholds.equals(own_points.thresholds)            # chosen on the same validation scans
    threshold = points.threshold["e2e2"]
    assert threshold == pytest.approx(np.mean([float(t) for t in points.thresholds["e2e2"].split(";")]), abs=1e-5)
    assert points.tp["e2e2"] == int(((test.probability >= threshold) & (test.label == 1)).sum())
    assert points.fp["e2e2"] == int(((test.probability >= threshold) & (test.label == 0)).sum())
    results = pd.read_csv(tested / "results.csv").set_index("experiment")
    assert (results.n == 10).all() and (results.n_folds == 2).all()
    text = (tested / "report.md").read_text(encoding="utf-8")
    assert "each test scan's probability is the mean of the 2 fold models' probabilities" in text
    assert "out-of-fold" not in text and "pooled" not in text
    assert ("Slice spacing: the test scans' is 1 mm, that of the dataset the runs trained on 5 mm; 10 of the 10 test "
            "scans lie outside it by more than 10% of its ends (e.g. other:c00, 1 mm)") in text
    localisation = pd.read_csv(tested / "localisation.csv")
    assert set(localisation.experiment) == {"e2e2"} and (localisation.scans == 5).all()   # the 5 bleeds, once each
    from ich_study.stats import roc_auc                # each fold's model alone, beside the mean
    alone = pd.read_csv(tested / "fold_results.csv").set_index(["experiment", "fold"])
    labels = test.label.to_numpy()
    for fold in (0, 1):
        assert alone.auc["e2e2", fold] == pytest.approx(roc_auc(labels, by_fold[fold][[c.split(":", 1)[1] for c in test.index]].to_numpy()), abs=1e-6)
    assert set(alone.index.get_level_values("experiment")) == set(results.index) and (alone.n == 10).all()
    assert "### Each fold's model alone" in text and f"{alone.auc['e2e2', 1]:.3f} [" in text
    assert not (own / "fold_results.csv").exists() and "Each fold's model alone" not in (own / "report.md").read_text(encoding="utf-8")
    three, two = numbers_in_csvs(tested)               # every 3-decimal number of the report is in one of its CSVs
    for token in re.findall(r"(?<![\w.])[-+]?\d+\.\d{3}(?![\w.])", text.split("## Provenance")[0]):
        assert token.lstrip("+") in three, token
