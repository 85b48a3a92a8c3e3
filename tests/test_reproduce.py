"""The whole chain at smoke size (ich-reproduce --profile smoke), then ich-predict on the three
kinds of scan a user brings: a NIfTI file, a DICOM series folder and a CT-ICH image folder."""
import json
import locale
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from ich_study.core import FLOAT32_ISA_CAPS, ConfigError, ICHStudyError
from ich_study.reproduce import reproduce

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CT_ICH = ROOT.parent / "shared" / "data" / "ct-ich"
CAPS_BEFORE = {name: os.environ.get(name) for name in FLOAT32_ISA_CAPS}   # before any chain of this module ran


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Run the smoke profile once for every test of this module."""
    work = tmp_path_factory.mktemp("smoke")
    report_dir = reproduce("smoke", study="smoke", runs_dir=work / "runs",
                           reports_dir=work / "reports", data_root=work / "data")
    return work, report_dir


def test_chain_writes_every_report_file(smoke):
    work, report_dir = smoke
    for name in ["results.csv", "comparisons.csv", "operating_point.csv", "timing.csv",
                 "report.md", "roc_baselines.png", "roc_lstm.png", "reproduce.json", "localisation.csv",
                 "slice_readings.png"]:
        assert (report_dir / name).is_file(), f"missing {name}"
    for experiment in ["cnn", "lstm1", "lstm2", "e2e1", "e2e2", "scratch2", "evaluate"]:
        assert (report_dir / "notebooks" / f"{experiment}.ipynb").is_file()
    results = pd.read_csv(report_dir / "results.csv")
    assert {"e2e2", "lstm1", "scratch2"} <= set(results["experiment"])
    assert results["auc"].between(0, 1).all()
    timings = json.loads((report_dir / "reproduce.json").read_text(encoding="utf-8"))["seconds"]
    assert timings["total"] > 0 and "e2e2" in timings
    located = pd.read_csv(report_dir / "localisation.csv")
    readings = set(zip(located.experiment, located.reading))
    for experiment in ["lstm1", "lstm2", "e2e1", "e2e2"]:
        assert {(experiment, "slice head P(ICH)"), (experiment, "influence on the scan decision")} <= readings
    assert ("scratch2", "influence on the scan decision") in readings and ("scratch2", "slice head P(ICH)") not in readings
    test_positives = results.set_index("experiment").positives["e2e2"]
    assert (located.scans > 0).all() and (located.scans <= test_positives).all()
    assert located.top_slice_at_random.between(0, 1).all() and "## Where the models look" in (report_dir / "report.md").read_text(encoding="utf-8")


def test_a_float32_chain_runs_its_notebooks_with_the_kernels_capped(smoke):
    """smoke trains in float32: every run's notebook and the evaluation ran with FLOAT32_ISA_CAPS in their environment
    (so not with AVX-512 kernels, on a CPU that has them), and this process's environment is as before."""
    work, report_dir = smoke
    records = [json.loads(path.read_text(encoding="utf-8")) for path in sorted((work / "runs").glob("smoke/*/environment.json"))]
    assert len(records) == 6 and all(record["precision"] == "float32" for record in records)
    expected = {name: CAPS_BEFORE[name] or cap for name, cap in FLOAT32_ISA_CAPS.items()}   # a cap set by hand is kept
    for record in records + [json.loads((report_dir / "evaluation.json").read_text(encoding="utf-8"))["provenance"]]:
        assert record["isa_caps"] == expected
        assert not record["cpu_capability"].startswith("AVX512") or any(CAPS_BEFORE.values())
    assert {name: os.environ.get(name) for name in FLOAT32_ISA_CAPS} == CAPS_BEFORE


def test_every_number_in_the_report_comes_from_a_csv(smoke):
    """report.md types no number: each decimal in it is found in one of the report's tables."""
    _, report_dir = smoke
    tables = "\n".join(p.read_text(encoding="utf-8") for p in report_dir.rglob("*.csv"))
    table_numbers = {float(n) for n in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", tables)}
    report = (report_dir / "report.md").read_text(encoding="utf-8")
    body = report.split("## Provenance")[0]       # versions and commands aside
    # decimals shown in the report; "< 0.001" is a display bound for tiny p-values, not data
    numbers = [n for n in re.findall(r"(?<![\w.])(?<!< )-?\d+\.\d+(?![\w.])", body)]
    assert numbers, "the report shows no numbers at all"
    def shown_as(number: str, value: float) -> bool:     # `value` rounded as the report shows it
        decimals = len(number.split(".")[1])
        return abs(round(value, decimals) - float(number)) <= 0.5 * 10 ** -decimals + 1e-12
    missing = [n for n in numbers if not any(shown_as(n, t) for t in table_numbers)]
    assert not missing, f"numbers in report.md that no CSV holds: {missing[:10]}"


def test_rerun_reuses_finished_experiments(smoke):
    """A second ich-reproduce does not train again: the run folders are untouched. It names the profile's own
    precision (`--precision float32`), which changes no setting, and is recorded."""
    work, _ = smoke
    best = work / "runs" / "smoke" / "e2e2" / "best.pt"
    before = best.stat().st_mtime_ns
    report_dir = reproduce("smoke", study="smoke", runs_dir=work / "runs", reports_dir=work / "reports",
                           data_root=work / "data", precision="float32")
    assert best.stat().st_mtime_ns == before
    record = json.loads((report_dir / "reproduce.json").read_text(encoding="utf-8"))
    assert record["precision_override"] == "float32" and "--precision float32" in record["command"]
    assert record["reused"] == ["cnn", "lstm1", "lstm2", "e2e1", "e2e2", "scratch2"]
    assert not set(record["reused"]) & set(record["seconds"])     # no training time claimed for them


def test_the_examples_figure_is_redrawn_from_a_written_report(smoke, tmp_path):
    """redraw_examples writes examples.png again from the report's predictions and the dataset's scans, and
    refuses a dataset that does not hold the report's scans; no table changes."""
    from ich_study.core import ConfigError
    from ich_study.evaluate import redraw_examples
    _, report_dir = smoke
    copy = tmp_path / "report"
    shutil.copytree(report_dir, copy, ignore=shutil.ignore_patterns("notebooks"))
    (copy / "examples.png").unlink()
    tables = {path.name: path.read_bytes() for path in copy.rglob("*.csv")}
    data_dir = json.loads((copy / "evaluation.json").read_text(encoding="utf-8"))["data_dir"]
    assert redraw_examples(copy, data_dir) == copy / "examples.png"
    assert (copy / "examples.png").stat().st_size > 10_000
    assert tables == {path.name: path.read_bytes() for path in copy.rglob("*.csv")}
    primary = copy / "predictions" / "e2e2.csv"                 # a report of other scans than the dataset's
    predictions = pd.read_csv(primary, dtype={"case_id": str})
    predictions.assign(case_id="elsewhere-" + predictions.case_id).to_csv(primary, index=False)
    with pytest.raises(ConfigError, match="not in the dataset"):
        redraw_examples(copy, data_dir)



def test_another_training_seed_and_the_spread_over_seeds(smoke, tmp_path, capfd):
    """`--seed N` trains the whole chain again with training seed N into {profile}-seedN, on the same
    cohort and splits; ich-seed-spread then tables the two reports' test AUCs side by side. The chain is trained
    first `--until lstm1`, which stops before the evaluation and leaves the report folder alone; the whole chain
    then reuses those two runs."""
    from ich_study.seeds import demo_seed_report
    work, report_dir = smoke
    places = dict(runs_dir=work / "runs", reports_dir=work / "reports", data_root=work / "data")
    runs = reproduce("smoke", seed=5, until="lstm1", **places)
    assert runs == work / "runs" / "smoke-seed5" and sorted(p.name for p in runs.iterdir()) == [
        "chain_until.json", "cnn", "lstm1"]
    assert all((runs / name / "best.pt").exists() for name in ("cnn", "lstm1"))
    assert not (work / "reports" / "smoke-seed5" / "report.md").exists()
    until = json.loads((runs / "chain_until.json").read_text(encoding="utf-8"))
    assert "--seed 5" in until["command"] and "--until lstm1" in until["command"]
    assert set(until["seconds"]) == {"dataset", "cnn", "lstm1", "total"} and until["reused"] == []
    seeded = reproduce("smoke", seed=5, **places)
    assert seeded.name == "smoke-seed5"
    printed, warnings = capfd.readouterr()     # how far each training got, as it trained: at least its last line
    assert "without encryption" not in warnings   # the notebooks' kernels talk over Unix sockets, not TCP
    for name in ["cnn", "lstm1", "lstm2", "e2e1", "e2e2", "scratch2"]:
        assert re.search(rf"\] {name}: step ([\d,]+)/\1 \(100%\), validation \w+ [\d.]+ \(best [\d.]+\), "
                         r"finished after [\d.]+ min of training", printed), printed[-3000:]
    # and every step of the evaluation, in order, though each lasts less than the 15 s between two looks
    scored = [int(k) for k in re.findall(r"\] evaluate: scoring [^\n]* \(run (\d) of 6\)", printed)]
    assert scored == [1, 2, 3, 4, 5, 6], printed[-3000:]
    assert re.search(r"\] evaluate: bootstrap intervals \(\d+ resamples\), DeLong tests, figures and the report", printed), printed[-3000:]
    assert json.loads((work / "runs" / "smoke-seed5" / "cnn" / "config.json").read_text(encoding="utf-8"))["seed"] == 5
    record = json.loads((seeded / "reproduce.json").read_text(encoding="utf-8"))
    assert "--seed 5" in record["command"] and "--until" not in record["command"]
    assert record["reused"] == ["cnn", "lstm1"] and record["profile"]["train"]["seed"] == 5
    first, second = (pd.read_csv(folder / "predictions" / "e2e2.csv").sort_values("case_id").reset_index(drop=True)
                     for folder in (report_dir, seeded))
    assert first[["case_id", "label", "split"]].equals(second[["case_id", "label", "split"]])   # same scans
    assert not np.allclose(first.probability, second.probability)                              # another training

    out = tmp_path / "spread"
    result = subprocess.run([str(BIN / "ich-seed-spread"), "--out", str(out), str(report_dir), str(seeded)],
                            capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert result.returncode == 0, result.stderr
    aucs = pd.read_csv(out / "seed_aucs.csv").set_index("experiment")
    for folder, label in ((report_dir, "seed 0"), (seeded, "seed 5")):
        results = pd.read_csv(folder / "results.csv").set_index("experiment").auc
        assert aucs[label].to_dict() == pytest.approx(results[aucs.index].to_dict(), abs=1e-12)
    orderings = pd.read_csv(out / "seed_orderings.csv")
    assert set(orderings.seed) == {"seed 0", "seed 5"} and orderings.p.between(0, 1).all()
    assert "seed 5" in (out / "seed_spread.md").read_text(encoding="utf-8") and (out / "seed_spread.png").stat().st_size > 0

    # a report of other test scans is refused, by name, and nothing is written
    stranger = demo_seed_report(tmp_path / "stranger", 1, models=("e2e2",))
    result = subprocess.run([str(BIN / "ich-seed-spread"), "--out", str(tmp_path / "none"), str(report_dir), str(stranger)],
                            capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "seed 1: e2e2 was scored on other test scans than seed 0's" in result.stderr, result.stderr
    assert not (tmp_path / "none").exists()

@pytest.mark.parametrize("external", [False, True])
def test_a_failed_experiment_stops_the_chain_and_keeps_its_notebook(smoke, tmp_path, external):
    """An experiment whose notebook fails (here lstm1, whose upstream slice CNN was never trained) stops the chain
    at once: the error names the experiment and the kept `*.failed.ipynb`, which shows the error; nothing after it
    runs, and no report, `reproduce.json` or `finished.json` is written. With --test-data the notebook of a run
    trained on the way is the study's, kept with its other runs' notebooks, not in the external report."""
    from ich_study.reproduce import PAPER_EXPERIMENTS
    from ich_study.synthetic import synthesize_cohort
    work, _ = smoke
    chosen = tuple(e for e in PAPER_EXPERIMENTS if e.name in ("lstm1", "e2e1"))
    other = tmp_path / "other"
    if external:                          # another dataset, checked before the runs
        synthesize_cohort(other, n_cases=2, matrix=64, slices=(24, 32), positive_fraction=0.5, seed=9, workers=1,
                          progress=False)
    with pytest.raises(ICHStudyError) as error:
        reproduce("smoke", study="broken", runs_dir=tmp_path / "runs", reports_dir=tmp_path / "reports",
                  data_root=work / "data", experiments=chosen,        # the smoke cohort, reused
                  test_data=other if external else None)
    assert not (tmp_path / "reports" / "broken-on-other").exists()
    notebooks = tmp_path / "reports" / "broken" / "notebooks"
    failed = notebooks / "lstm1.failed.ipynb"
    assert str(error.value).startswith("experiment lstm1 failed: PapermillExecutionError")
    assert str(error.value).endswith(f"its notebook is kept: {failed}")
    assert "cnn/best.pt" in failed.read_text(encoding="utf-8")                  # the traceback names the missing checkpoint
    assert [path.name for path in notebooks.iterdir()] == ["lstm1.failed.ipynb"]   # no e2e1, no evaluation
    assert not (tmp_path / "reports" / "broken" / "reproduce.json").exists()
    assert not (tmp_path / "runs" / "broken" / "lstm1" / "finished.json").exists()

def test_an_evaluation_that_writes_no_report_stops_the_chain(smoke, tmp_path):
    """A chain whose evaluation writes no report (here nothing was trained, and the notebook only says so) ends with
    an error naming the notebook, which shows why, instead of "done" and a reproduce.json."""
    work, _ = smoke
    with pytest.raises(ICHStudyError) as error:
        reproduce("smoke", study="empty", runs_dir=tmp_path / "runs", reports_dir=tmp_path / "reports",
                  data_root=work / "data", experiments=())
    notebook = tmp_path / "reports" / "empty" / "notebooks" / "evaluate.ipynb"
    assert str(error.value).startswith("the evaluation failed: ICHStudyError: evaluate.ipynb finished but wrote no ")
    assert str(error.value).endswith(f"its notebook is kept: {notebook}")
    assert "Nothing to evaluate" in notebook.read_text(encoding="utf-8")
    assert not (tmp_path / "reports" / "empty" / "reproduce.json").exists()

def test_evaluate_the_runs_on_another_dataset(smoke, tmp_path):
    """The chain's runs tested on a second synthetic cohort (another generator seed) by the evaluation notebook
    with test_data_dir: the test rows are that cohort's scans (ids prefixed), each scored as its model scores it,
    while the validation rows, the SVM's C and every operating point are those of the chain's own report, chosen
    on its validation scans, the SVM's input included: the cohort's scans have 41 slices, more than any training scan
    (at most 32), and are cut to 32; padded to 41, the training scans would have moved by 4 or 5 slices, and the SVM
    with them. The report names the data it tested and how, and its examples figure is redrawn from it alone.
    One run given twice for an experiment is refused."""
    from ich_study.core import ConfigError
    from ich_study.datasets import read_manifest
    from ich_study.evaluate import evaluate_study, redraw_examples
    from ich_study.core import load_profile
    from ich_study.reproduce import _run_notebook, float32_isa_caps
    from ich_study.synthetic import synthesize_cohort
    from ich_study.train import load_checkpoint, model_from_checkpoint, predict_scans
    from ich_study.preprocess import PreprocessConfig
    work, own_report = smoke
    other = synthesize_cohort(tmp_path / "cohort7", n_cases=8, matrix=64, slices=(41, 41), positive_fraction=0.5,
                              seed=7, workers=1, progress=False)
    runs = {name: [str(work / "runs" / "smoke" / name)] for name in ("cnn", "lstm1", "lstm2", "e2e1", "e2e2", "scratch2")}
    report = tmp_path / "report"
    with float32_isa_caps(load_profile("smoke")):      # as the chain ran its own evaluation: float32, kernels capped
        _run_notebook(ROOT / "nbs" / "evaluate.ipynb", tmp_path / "evaluate.ipynb",
                      dict(study="smoke-on-cohort7", data_dir=str(work / "data" / "smoke-cohort"), test_data_dir=str(other),
                           runs=json.dumps(runs), report_dir=str(report), n_boot=50, n_timing=1, device="cpu"), cwd=ROOT)
    cohort = read_manifest(other)
    checkpoint = load_checkpoint(work / "runs" / "smoke" / "e2e2" / "best.pt")
    expected = predict_scans(model_from_checkpoint(checkpoint), cohort, PreprocessConfig.from_dict(checkpoint["preprocess"]),
                             None, progress=False).set_index("case_id").probability
    for name in ("e2e2", "svm", "cnn-max", "lstm1"):
        tested, own = (pd.read_csv(folder / "predictions" / f"{name}.csv", dtype={"case_id": str}) for folder in (report, own_report))
        test = tested[tested.split == "test"]
        assert sorted(test.case_id) == sorted("cohort7:" + cohort.case_id) and test.label.tolist() == [
            int(cohort.set_index("case_id").label[c.split(":", 1)[1]]) for c in test.case_id]
        pd.testing.assert_frame_equal(tested[tested.split == "val"].reset_index(drop=True),
                                      own[own.split == "val"].reset_index(drop=True))
        if name == "e2e2":   # float32 in both; this process's ATen kernels were capped at AVX2 when the smoke chain's
            # provenance first asked for them, the notebook's kernel is not: a few 1e-6 apart (scans lie 1e-3 apart)
            assert test.probability.to_numpy() == pytest.approx(expected[[c.split(":", 1)[1] for c in test.case_id]].to_numpy(), abs=2e-5)
    tested_points, own_points = (pd.read_csv(folder / "operating_point.csv") for folder in (report, own_report))
    assert tested_points.thresholds.tolist() == own_points.thresholds.tolist()       # chosen on the same validation scans
    assert pd.read_csv(report / "svm_selection.csv").equals(pd.read_csv(own_report / "svm_selection.csv"))
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "synthetic data 'cohort7' (external test of models trained on 'smoke-cohort')" in text
    assert f"External test: the test scans are every scan of {other.resolve()}" in text
    assert "Slice spacing: the test scans' is " in text            # against the smoke cohort's, both manifests give it
    assert "Field of view: the test scans' is " in text            # both datasets NIfTI files, whose headers give it
    def cached(cache: Path) -> set[str]:          # the folders of the scans whose preprocessed copies a cache holds
        return {Path(json.loads(sidecar.read_text(encoding="utf-8"))["source"]).parent.parent.name
                for sidecar in cache.glob("*.json")}
    assert cached(other / "cache") == {"cohort7"}               # the other cohort's copies in its own folder,
    assert "cohort7" not in cached(work / "data" / "smoke-cohort" / "cache")      # none among the own scans'
    assert "8 validation or test scans (e.g. cohort7:synth-0000) have more slices for the CNN than the longest training scan, 32" in text
    (report / "examples.png").unlink()          # redrawn with the other dataset that evaluation.json records
    assert redraw_examples(report, work / "data" / "smoke-cohort") == report / "examples.png"
    assert (report / "examples.png").stat().st_size > 0
    with pytest.raises(ConfigError, match="e2e2: 2 runs of the same holdout split"):      # one run given twice
        evaluate_study("x", work / "data" / "smoke-cohort", {"e2e2": runs["e2e2"] * 2}, tmp_path / "x", test_data_dir=other)


def _predict(*arguments, cwd=None):
    result = subprocess.run([str(BIN / "ich-predict"), *map(str, arguments)], capture_output=True,
                            text=True, encoding="utf-8", timeout=300, cwd=cwd)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.returncode, lines, result.stderr


def _wider(scan: Path, path: Path) -> Path:
    """The scan's head in a field of view half as wide again: each slice padded with air (-1024 HU) around it."""
    image = sitk.ReadImage(str(scan))
    volume = sitk.GetArrayFromImage(image)
    n = volume.shape[-1]
    padded = np.full((volume.shape[0], n * 3 // 2, n * 3 // 2), -1024, volume.dtype)
    padded[:, n // 4:n // 4 + n, n // 4:n // 4 + n] = volume
    wide = sitk.GetImageFromArray(padded); wide.SetSpacing(image.GetSpacing())
    sitk.WriteImage(wide, str(path))
    return path


def test_predict_nifti_and_a_bad_scan(smoke, tmp_path):
    work, _ = smoke
    model = work / "runs" / "smoke" / "e2e2" / "best.pt"
    manifest = pd.read_csv(work / "data" / "smoke-cohort" / "manifest.csv")
    scan = work / "data" / "smoke-cohort" / manifest["image"].iloc[0]
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a nifti at all")
    code, lines, _ = _predict("--model", model, "--figures", tmp_path / "figures", scan, broken)
    assert code != 0, "a bad scan must make the exit status non-zero"
    good, bad = lines
    assert 0.0 <= good["probability"] <= 1.0 and good["decision"] in ("ICH", "no ICH")
    assert good["seconds"] > 0 and "broken.nii.gz" in bad["error"]
    assert [p.name for p in (tmp_path / "figures").iterdir()] == [f"001-{scan.name}.png"] and "figure" not in bad
    from PIL import Image                                  # the classified scan's picture, 4 slices wide; none for the bad one
    with Image.open(good["figure"]) as picture: assert (picture.format, picture.size[0]) == ("PNG", 920)
    (tmp_path / "a file").write_text("not a folder", encoding="utf-8")
    code, _, stderr = _predict("--model", model, "--figures", tmp_path / "a file" / "figures", scan)
    assert code == 2 and "--figures" in stderr and "cannot make the folder" in stderr
    # two readings for each of the scan's slices; the smoke models merge slice pairs (2x2x2), which share a value
    image = sitk.ReadImage(str(scan))
    n_slices = image.GetDepth()
    assert good["slices_per_score"] == 2 and "note" not in good
    assert good["field_of_view_mm"] == pytest.approx(max(image.GetWidth() * image.GetSpacing()[0],
                                                         image.GetHeight() * image.GetSpacing()[1]), abs=0.05)
    from ich_study.train import load_checkpoint           # the smoke cohort's NIfTI headers gave a range of fields of view
    trained = load_checkpoint(model)["geometry"]["field_of_view_mm"]
    assert good["trained_field_of_view_mm"] == trained and trained[0] <= good["field_of_view_mm"] <= trained[1]
    assert good["warning"] is None
    assert good["crop_mm"] is None                         # the whole image, padded to a square, as the paper
    code, (line,), stderr = _predict("--model", model, "--no-influence", _wider(scan, tmp_path / "wide.nii.gz"))
    assert code == 0, stderr
    assert line["warning"].startswith(f"field of view {line['field_of_view_mm']:g} mm, outside the ") and "slice" not in line["warning"]
    for values, top in ((good["slice_scores"], good["top_slices"]), (good["slice_influence"], good["top_influence_slices"])):
        assert len(values) == n_slices and values[0::2][:n_slices // 2] == values[1::2][:n_slices // 2]
        assert values[top[0]] == max(values) and len(top) == 5


def test_predict_gives_the_reports_probabilities(smoke):
    """ich-predict reads and preprocesses a test scan itself and gives the probability the chain's evaluation wrote
    for it, to every digit it prints: its array passes through the cache's float16 as the evaluation's did
    (`prepare_scan`; without, 1.2e-6 away), and the smoke models are float32, so it caps the kernels as the chain
    did (`scores_in_float32_on_cpu`, `kernels_capped`)."""
    work, report_dir = smoke
    written = pd.read_csv(report_dir / "predictions" / "e2e2.csv", dtype={"case_id": str})
    written = written[written.split == "test"].head(3)
    manifest = pd.read_csv(work / "data" / "smoke-cohort" / "manifest.csv", dtype={"case_id": str}).set_index("case_id")
    scans = [work / "data" / "smoke-cohort" / manifest.image[case_id] for case_id in written.case_id]
    code, lines, stderr = _predict("--model", work / "runs" / "smoke" / "e2e2" / "best.pt", "--no-influence", *scans)
    assert code == 0, stderr
    assert [line["probability"] for line in lines] == written.probability.round(6).tolist()
    verbose = subprocess.run([str(BIN / "ich-predict"), "--model", str(work / "runs" / "smoke" / "e2e2" / "best.pt"),
                              "--no-influence", str(scans[0])], capture_output=True, text=True, encoding="utf-8",
                             timeout=300, env={**os.environ, "ONEDNN_VERBOSE": "1"})
    isa = re.search(r"onednn_verbose,.*,cpu,isa:(.*)", verbose.stdout + verbose.stderr)
    assert isa, "oneDNN says which instructions it uses"
    assert "AVX-512" not in isa.group(1) or any(CAPS_BEFORE.values())   # uncapped, an AVX-512 CPU's oneDNN said so
    from ich_study.reproduce import scores_in_float32_on_cpu
    from ich_study.train import load_checkpoint
    assert load_checkpoint(work / "runs" / "smoke" / "e2e2" / "best.pt")["trained_precision"] == "float32"
    checkpoint = {"config": {"precision": "float32"}}
    assert scores_in_float32_on_cpu([checkpoint], "cpu") and not scores_in_float32_on_cpu([checkpoint], "cuda")
    assert not scores_in_float32_on_cpu([checkpoint, {"config": {"precision": "bf16"}}], "cpu")


def test_a_model_that_crops_to_the_head_reads_a_wider_field_of_view_alike(smoke, tmp_path):
    """With crop_mm each slice is cut to a square around the head before resizing: the checkpoint says so and
    records no field of view to check, and ich-predict gives the same head padded to a field of view half as wide
    again the same probability, without a warning."""
    from ich_study.train import TrainConfig, load_checkpoint, train_stage
    work, _ = smoke
    data = work / "data" / "smoke-cohort"
    model = train_stage(TrainConfig(stage="scratch", experiment="cropped", data_dir=str(data), runs_dir=str(tmp_path),
                                    cache_dir=str(tmp_path / "cache"), crop_mm=200.0, matrix=32, base_width=4,
                                    hidden_size=32, n_samples=4, eval_interval=4, precision="float32"), progress=False)
    checkpoint = load_checkpoint(model)
    assert checkpoint["preprocess"]["crop_mm"] == 200.0 and checkpoint["geometry"]["field_of_view_mm"] is None
    scan = data / pd.read_csv(data / "manifest.csv")["image"].iloc[0]
    code, (line, wide), stderr = _predict("--model", model, "--no-influence", scan, _wider(scan, tmp_path / "wide.nii.gz"))
    assert code == 0, stderr
    assert line["crop_mm"] == 200.0 and line["trained_field_of_view_mm"] is None
    assert wide["field_of_view_mm"] == pytest.approx(1.5 * line["field_of_view_mm"], rel=0.02)
    assert wide["probability"] == line["probability"] and wide["slice_scores"] == line["slice_scores"]
    assert line["warning"] is None and wide["warning"] is None


def test_reproduce_tests_the_study_on_another_dataset(smoke, tmp_path, capsys):
    """ich-reproduce --test-data DIR reuses the study's finished runs and writes reports/{study}-on-{DIR's name}:
    its test rows are that dataset's scans, its validation rows the study's own; it says how much room their
    preprocessing caches need, in DIR/cache. A folder without a manifest is refused before anything runs."""
    from ich_study.core import ConfigError, LabelError
    from ich_study.datasets import read_manifest
    from ich_study.synthetic import synthesize_cohort
    work, own_report = smoke
    other = synthesize_cohort(tmp_path / "cohort9", n_cases=6, matrix=64, slices=(24, 32), positive_fraction=0.5,
                              seed=9, workers=1, progress=False)
    places = dict(study="smoke", runs_dir=work / "runs", reports_dir=work / "reports", data_root=work / "data")
    report = reproduce("smoke", **places, test_data=other)
    assert report == work / "reports" / "smoke-on-cohort9"
    assert "--test-data: 6 scans, " in capsys.readouterr().out and any((other / "cache").glob("*.npy"))
    record = json.loads((report / "reproduce.json").read_text(encoding="utf-8"))
    assert len(record["reused"]) == 6 and f"--test-data {other.resolve()}" in record["command"]
    tested, own = (pd.read_csv(folder / "predictions" / "e2e2.csv", dtype={"case_id": str}) for folder in (report, own_report))
    assert sorted(tested.case_id[tested.split == "test"]) == sorted("cohort9:" + read_manifest(other).case_id)
    pd.testing.assert_frame_equal(tested[tested.split == "val"].reset_index(drop=True),
                                  own[own.split == "val"].reset_index(drop=True))
    with pytest.raises(ConfigError, match="no manifest.csv there"):
        reproduce("smoke", **places, test_data=tmp_path)
    broken = tmp_path / "broken"                   # a manifest whose scans are missing: refused before any run
    broken.mkdir(); shutil.copy(other / "manifest.csv", broken)
    with pytest.raises(LabelError, match=f"{broken / 'manifest.csv'}: case 'synth-0000' names image"):
        reproduce("smoke", **places, test_data=broken)
    assert not (work / "reports" / "smoke-on-broken").exists()


def test_predict_at_another_target_sensitivity(smoke, tmp_path):
    """Each line gives the sensitivity and specificity its threshold found on the run's validation scans
    (predictions_val.csv); --target-sensitivity chooses the threshold again on those scans, from the checkpoint
    alone. A checkpoint that keeps no validation scores, and a target outside (0, 1], are refused."""
    from ich_study.stats import operating_point_metrics, threshold_at_sensitivity
    from ich_study.train import load_checkpoint, save_checkpoint
    work, _ = smoke
    run = work / "runs" / "smoke" / "e2e2"
    validation = pd.read_csv(run / "predictions_val.csv")
    manifest = pd.read_csv(work / "data" / "smoke-cohort" / "manifest.csv")
    scan = work / "data" / "smoke-cohort" / manifest["image"].iloc[0]
    code, (saved,), _ = _predict("--model", run / "best.pt", "--no-influence", scan)
    assert code == 0
    code, (moved,), _ = _predict("--model", run / "best.pt", "--no-influence", "--target-sensitivity", 0.5, scan)
    assert code == 0
    for line, target in ((saved, 0.98), (moved, 0.5)):
        threshold = threshold_at_sensitivity(validation.label, validation.probability, target)
        found = operating_point_metrics(validation.label, validation.probability, threshold)
        assert line["target_sensitivity"] == target and line["threshold"] == pytest.approx(threshold)
        assert line["validation_sensitivity"] == pytest.approx(found["sensitivity"])
        assert line["validation_specificity"] == pytest.approx(found["specificity"])
        assert line["decision"] == ("ICH" if line["probability"] >= line["threshold"] else "no ICH")
    assert moved["threshold"] > saved["threshold"] and moved["probability"] == saved["probability"]
    old = load_checkpoint(run / "best.pt")
    del old["operating_point"]["validation_scores"]                  # as checkpoints written before 2026-12-06
    save_checkpoint(old, tmp_path / "old.pt")
    code, lines, _ = _predict("--model", tmp_path / "old.pt", "--target-sensitivity", 0.5, scan)
    assert code == 2 and "keeps no validation scores" in lines[0]["error"] and "probability" not in lines[0]
    code, _, stderr = _predict("--model", run / "best.pt", "--target-sensitivity", 1.5, scan)
    assert code == 2 and "--target-sensitivity 1.5: give a share of the bleeds" in stderr


def test_the_mean_of_several_models_checks_the_spacing_against_their_widest_range():
    """Models trained on slightly different scans (fold models) record different ranges of slice spacing: the mean's
    line gives the range spanning them, and warns only for a scan outside it; a model without a range leaves none."""
    from ich_study.reproduce import mean_prediction
    def line(trained_mm, spacing_mm=2.5):
        return {"path": "scan.nii.gz", "series": None, "series_description": None, "contrast": None,
                "gantry_tilt_degrees": 0.0, "head_check": True,
                "slice_spacing_mm": spacing_mm,
                "field_of_view_mm": 230.0, "trained_field_of_view_mm": [215.0, 235.0], "crop_mm": None,
                "trained_slice_spacing_mm": trained_mm, "probability": 0.4, "threshold": 0.3, "target_sensitivity": 0.98,
                "validation_sensitivity": 1.0, "validation_specificity": 0.2, "slice_scores": [0.1, 0.2],
                "slice_influence": [0.0, 0.1], "slices_per_score": 1, "seconds": 0.1}
    from ich_study.datasets import spacing_warning
    assert spacing_warning(2.5, [2.0, 2.2]) and spacing_warning(2.5, [2.8, 3.0])      # 2.5 mm: outside each one's range,
    mean = mean_prediction([line([2.0, 2.2]), line([2.8, 3.0])], ["a", "b"])
    assert mean["trained_slice_spacing_mm"] == [2.0, 3.0] and mean["warning"] is None    # inside the range spanning both
    thick = mean_prediction([line([2.0, 2.2], 5.0), line([2.8, 3.0], 5.0)], ["a", "b"])
    assert thick["warning"].startswith("slice spacing 5 mm, outside the 2-3 mm of the scans")
    unknown = mean_prediction([line([2.0, 2.2], 5.0), line(None, 5.0)], ["a", "b"])
    assert unknown["trained_slice_spacing_mm"] is None and unknown["warning"] is None
    wide = mean_prediction([{**line([2.0, 3.0]), "field_of_view_mm": 330.0}] * 2, ["a", "b"])   # and the field of view
    assert wide["trained_field_of_view_mm"] == [215.0, 235.0]
    assert wide["warning"].startswith("field of view 330 mm, outside the 215-235 mm of the scans")


def test_predict_with_several_models_prints_their_mean(smoke):
    """--model given once per model (fold models of a cross-validation; here e2e1 and e2e2 of the smoke chain, which
    read scans alike): one line per scan whose probability, threshold, validation sensitivity and slice readings are
    the means of each model's own line, decided by the mean probability against the mean threshold. A model that reads
    scans otherwise (the stage-1 cnn: in-plane filter only, no trained scan head) and one given twice are refused
    before any scan is read."""
    work, _ = smoke
    runs = work / "runs" / "smoke"
    manifest = pd.read_csv(work / "data" / "smoke-cohort" / "manifest.csv")
    scan = work / "data" / "smoke-cohort" / manifest["image"].iloc[3]
    models = [runs / name / "best.pt" for name in ("e2e1", "e2e2")]
    singles = [_predict("--model", model, scan)[1][0] for model in models]
    code, (line,), stderr = _predict("--model", models[0], "--model", models[1], scan)
    assert code == 0, stderr
    assert line["models"] == [str(model) for model in models] and "the mean of 2 models" in line["note"]
    for key in ("probability", "threshold", "validation_sensitivity", "validation_specificity"):
        assert line[key] == pytest.approx((singles[0][key] + singles[1][key]) / 2, abs=1e-6), key
    assert singles[0]["probability"] != pytest.approx(singles[1]["probability"], abs=1e-4)    # two models that differ
    assert line["decision"] == ("ICH" if line["probability"] >= line["threshold"] else "no ICH")
    for key in ("slice_scores", "slice_influence"):
        assert line[key] == pytest.approx([(a + b) / 2 for a, b in zip(singles[0][key], singles[1][key])], abs=1e-4), key
    assert line["slice_scores"][line["top_slices"][0]] == max(line["slice_scores"])
    for pattern in (runs / "e2e?" / "best.pt", runs / "e2e?"):          # a quoted pattern, of checkpoints or run folders
        code, (matched,), stderr = _predict("--model", pattern, scan)
        assert code == 0 and {**matched, "seconds": 0} == {**line, "seconds": 0}, stderr
    code, (error,), _ = _predict("--model", runs / "lstm*-fold*" / "best.pt", scan)
    assert code == 2 and "no checkpoint matches this pattern" in error["error"]
    code, (error,), _ = _predict("--model", runs / "cnn" / "best.pt", "--model", models[1], scan)
    assert code == 2 and "its preprocess and stage differ from" in error["error"] and "cnn" in error["error"]
    code, (error,), _ = _predict("--model", models[1], "--model", models[1], scan)
    assert code == 2 and "given twice" in error["error"]


def test_predict_says_what_a_stage_1_or_scratch_checkpoint_cannot_give(smoke):
    """The slice CNN of stage 1 has no trained BiLSTM: slice scores, but no scan probability or decision (it printed
    the untrained head's output before); `scratch2` never trained its slice head: no slice scores, only influence."""
    work, _ = smoke
    scan = work / "data" / "smoke-cohort" / pd.read_csv(work / "data" / "smoke-cohort" / "manifest.csv")["image"].iloc[0]
    code, [slice_cnn], stderr = _predict("--model", work / "runs" / "smoke" / "cnn" / "best.pt", scan)
    assert code == 0, stderr
    assert slice_cnn["probability"] is None and slice_cnn["decision"] is None and slice_cnn["slice_influence"] is None
    assert len(slice_cnn["slice_scores"]) == sitk.ReadImage(str(scan)).GetDepth() and "no scan probability" in slice_cnn["note"]
    code, [scratch], stderr = _predict("--model", work / "runs" / "smoke" / "scratch2" / "best.pt", scan)
    assert code == 0, stderr
    assert 0 <= scratch["probability"] <= 1 and scratch["slice_scores"] is None and scratch["top_slices"] is None
    assert len(scratch["slice_influence"]) == len(slice_cnn["slice_scores"]) and "no slice scores" in scratch["note"]
    code, [quick], _ = _predict("--model", work / "runs" / "smoke" / "scratch2" / "best.pt", "--no-influence", scan)
    assert quick["slice_influence"] is None and quick["probability"] == scratch["probability"]


def test_the_checkpoint_alone_is_enough_to_predict(smoke, tmp_path):
    """best.pt copied alone into an empty folder, away from its run folder, dataset and repository (another working
    directory), classifies a scan exactly as it does in place: architecture, preprocessing, windows and the
    operating point all travel inside it."""
    work, _ = smoke
    model = work / "runs" / "smoke" / "e2e2" / "best.pt"
    scan = work / "data" / "smoke-cohort" / pd.read_csv(work / "data" / "smoke-cohort" / "manifest.csv")["image"].iloc[2]
    alone = tmp_path / "elsewhere" / "model.pt"
    alone.parent.mkdir()
    shutil.copy(model, alone)
    _, [in_place], _ = _predict("--model", model, scan)
    code, [travelled], _ = _predict("--model", alone, scan, cwd=tmp_path)
    assert code == 0 and sorted(path.name for path in alone.parent.iterdir()) == ["model.pt"]
    for key in ("probability", "decision", "threshold", "slice_scores", "top_slices", "slice_influence"):
        assert travelled[key] == in_place[key], key

def test_predict_a_manifest_of_scans(smoke, tmp_path):
    """--manifest: the scans of a CSV's `image` column, relative paths read from the CSV's folder, each classified,
    each line repeating the row's `case_id` (as written, 007 not 7; its figure named by it); a listed scan that is
    missing gets its error line and a non-zero exit; an unreadable manifest stops at once."""
    work, _ = smoke
    model = work / "runs" / "smoke" / "e2e2" / "best.pt"
    cohort = work / "data" / "smoke-cohort"
    images = pd.read_csv(cohort / "manifest.csv")["image"]
    (tmp_path / "scans").mkdir()
    shutil.copy(cohort / images.iloc[0], tmp_path / "scans" / "first.nii.gz")
    listing = tmp_path / "listing.csv"
    pd.DataFrame({"image": ["scans/first.nii.gz", str(cohort / images.iloc[1]), "scans/missing.nii.gz"],
                  "case_id": ["007", "second", "gone"]}).to_csv(listing, index=False)
    code, lines, _ = _predict("--model", model, "--manifest", listing, "--figures", tmp_path / "figures")
    assert code == 1, "a missing scan must make the exit status non-zero"
    first, second, missing = lines
    assert first["path"] == str(tmp_path / "scans" / "first.nii.gz") and 0.0 <= first["probability"] <= 1.0
    assert second["path"] == str(cohort / images.iloc[1]) and 0.0 <= second["probability"] <= 1.0
    assert "missing.nii.gz" in missing["error"] and "probability" not in missing
    assert [line["case_id"] for line in lines] == ["007", "second", "gone"]
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["001-007.png", "002-second.png"]
    for name, text, expected in (("empty.csv", "", "cannot read"), ("other.csv", "path\nx.nii.gz\n", "no 'image' column")):
        (tmp_path / name).write_text(text, encoding="utf-8")
        code, lines, stderr = _predict("--model", model, "--manifest", tmp_path / name)
        assert code == 2 and not lines and f"{name}: {expected}" in stderr, stderr

def test_predict_dicom_series(smoke, tmp_path):
    """A DICOM series written here (shuffled file names, rescale intercept) is classified."""
    work, _ = smoke
    model = work / "runs" / "smoke" / "e2e2" / "best.pt"
    manifest = pd.read_csv(work / "data" / "smoke-cohort" / "manifest.csv")
    image = sitk.ReadImage(str(work / "data" / "smoke-cohort" / manifest["image"].iloc[1]))
    array = sitk.GetArrayFromImage(image)
    series = tmp_path / "series"
    series.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    order = np.random.default_rng(0).permutation(array.shape[0])
    # GDCM's DICOM writer sets this process's LC_CTYPE to "C", and with it Python's default text encoding to
    # ASCII for every later test of the session (README.md and the notebooks hold UTF-8): put it back after
    ctype = locale.setlocale(locale.LC_CTYPE)
    for index in range(array.shape[0]):
        slice_image = sitk.GetImageFromArray(array[index:index + 1].astype(np.int16))  # GDCM stores HU + 1024 as the intercept says
        slice_image.SetSpacing(image.GetSpacing())
        slice_image.SetOrigin(image.TransformIndexToPhysicalPoint((0, 0, index)))
        for tag, value in {"0008|0060": "CT", "0028|1052": "-1024", "0028|1053": "1",
                           "0020|000d": "1.2.826.0.1.3680043.2.1125.1", "0020|000e": "1.2.826.0.1.3680043.2.1125.2",
                           "0020|0013": str(index + 1), "0020|0037": "1\\0\\0\\0\\1\\0",
                           "0020|0032": "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, index))))}.items():
            slice_image.SetMetaData(tag, value)
        writer.SetFileName(str(series / f"IM{order[index]:04d}.dcm"))
        writer.Execute(slice_image)
    locale.setlocale(locale.LC_CTYPE, ctype)
    nifti = work / "data" / "smoke-cohort" / manifest["image"].iloc[1]
    code, lines, stderr = _predict("--model", model, series, nifti)
    assert code == 0, stderr + str(lines)
    from_dicom, from_nifti = lines
    assert len(from_dicom["slice_scores"]) == array.shape[0] and from_dicom["slices_per_score"] == 2   # the 2x2x2 filter
    # the same voxels, HU and orientation whichever way they were stored
    assert from_dicom["probability"] == pytest.approx(from_nifti["probability"], abs=1e-3)
    assert from_dicom["slice_scores"] == pytest.approx(from_nifti["slice_scores"], abs=1e-3)
    assert from_dicom["gantry_tilt_degrees"] == from_nifti["gantry_tilt_degrees"] == 0.0    # no tilt to undo


def _two_channel_checkpoint(path, learned_from):
    """An untrained two-channel model (plumbing only) whose checkpoint says what kind of scan it learned from."""
    from dataclasses import asdict
    import torch
    from ich_study.model import ICHNet
    from ich_study.preprocess import PreprocessConfig
    from ich_study.train import CHECKPOINT_FORMAT, save_checkpoint
    torch.manual_seed(0)
    model = ICHNet(in_channels=2, base_width=4, lstm_layers=1, hidden_size=16)
    save_checkpoint({"format": CHECKPOINT_FORMAT, "stage": "e2e", "experiment": "test",
                     "architecture": model.architecture, "model_state": model.state_dict(),
                     "preprocess": asdict(PreprocessConfig(windows=((40, 80), (600, 2800)), max_filter="2x2", matrix=32)),
                     "input": learned_from, "geometry": {"slice_spacing_mm": [1.0, 1.0]},   # not 5 mm
                     "operating_point": {"threshold": 0.5, "target_sensitivity": 0.98,
                                         "chosen_on": "validation"}}, path)
    return path


@pytest.mark.skipif(not CT_ICH.exists(), reason="CT-ICH data not present")
def test_predict_ct_ich_folder(smoke, tmp_path):
    """A CT-ICH patient folder (brain + bone JPGs) is classified by a two-channel model that learned
    from such images; a two-channel model that learned from HU scans (brain and bone windows of its
    own, like `demo`'s) refuses it, and so does the one-channel HU smoke model, each with a clear line."""
    windowed = _two_channel_checkpoint(tmp_path / "windowed.pt", {"kind": "windowed", "channels": ["brain", "bone"]})
    patient = CT_ICH / "Patients_CT" / "049"
    code, lines, stderr = _predict("--model", windowed, patient)
    assert code == 0, stderr
    n_slices = len(list((patient / "brain").glob("*.jpg")))
    assert len(lines[0]["slice_scores"]) == n_slices          # no max filter across 5 mm slices
    assert lines[0]["decision"] in ("ICH", "no ICH")
    assert lines[0]["slice_spacing_mm"] is None and lines[0]["warning"] is None      # JPGs carry no geometry
    assert lines[0]["field_of_view_mm"] is None
    from_hu = _two_channel_checkpoint(tmp_path / "hu.pt", {"kind": "HU"})
    code, lines, stderr = _predict("--model", from_hu, patient)
    assert code == 1 and "Traceback" not in stderr
    assert "049" in lines[0]["error"] and "pre-windowed images (brain, bone)" in lines[0]["error"]
    assert "learned from HU scans" in lines[0]["error"] and "40/80 and 600/2800 HU" in lines[0]["error"]
    code, lines, stderr = _predict("--model", smoke[0] / "runs" / "smoke" / "e2e2" / "best.pt", patient)
    assert code == 1 and "Traceback" not in stderr
    assert "learned from HU scans" in lines[0]["error"] and "049" in lines[0]["error"]


def test_predict_refuses_the_other_kind_of_scan(smoke, tmp_path):
    """The smoke model learned from HU scans and says so in its checkpoint: a folder of pre-windowed
    PNGs (one channel, as many as the model reads) is refused by name, not classified; a model that
    learned from pre-windowed images refuses a HU NIfTI file; the other scans are still classified."""
    from PIL import Image
    from ich_study.train import load_checkpoint
    work, _ = smoke
    model = work / "runs" / "smoke" / "e2e2" / "best.pt"
    assert load_checkpoint(model)["input"] == {"kind": "HU"}
    stack = tmp_path / "windowed-stack"
    stack.mkdir()
    for number in range(1, 13):
        Image.fromarray(np.full((32, 32), 10 * number, np.uint8)).save(stack / f"{number}.png")
    manifest = pd.read_csv(work / "data" / "smoke-cohort" / "manifest.csv")
    nifti = work / "data" / "smoke-cohort" / manifest["image"].iloc[0]
    code, lines, stderr = _predict("--model", model, stack, nifti)
    assert code == 1 and "Traceback" not in stderr
    refused, classified = lines
    assert "windowed-stack" in refused["error"] and "learned from HU scans" in refused["error"]
    assert 0.0 <= classified["probability"] <= 1.0
    windowed = _two_channel_checkpoint(tmp_path / "windowed.pt", {"kind": "windowed", "channels": ["brain", "bone"]})
    code, lines, stderr = _predict("--model", windowed, nifti)
    assert code == 1 and "learned from pre-windowed images (brain, bone)" in lines[0]["error"], lines


def test_predict_refuses_a_scan_without_a_head(smoke, tmp_path):
    """A NIfTI of air and one of a water cylinder (no bone), with a head scan's geometry, are refused by
    name with the soft tissue and bone found, and the head stored without its rescale (every voxel 1024 too high) as
    not in Hounsfield units; the head beside them is classified."""
    work, _ = smoke
    model = work / "runs" / "smoke" / "e2e2" / "best.pt"
    manifest = pd.read_csv(work / "data" / "smoke-cohort" / "manifest.csv")
    head = work / "data" / "smoke-cohort" / manifest["image"].iloc[0]
    image = sitk.ReadImage(str(head))
    array = sitk.GetArrayFromImage(image)
    _, rows, columns = np.indices(array.shape)
    inside = (rows - array.shape[1] / 2) ** 2 + (columns - array.shape[2] / 2) ** 2 < (array.shape[1] / 3) ** 2
    fakes = {"air.nii.gz": np.full(array.shape, -1000, np.int16), "water.nii.gz": np.where(inside, 0, -1000).astype(np.int16),
             "raw.nii.gz": (array + 1024).astype(np.int16)}
    for name, values in fakes.items():
        fake = sitk.GetImageFromArray(values)
        fake.CopyInformation(image)
        sitk.WriteImage(fake, str(tmp_path / name))
    code, lines, stderr = _predict("--model", model, tmp_path / "air.nii.gz", head, tmp_path / "water.nii.gz",
                                   tmp_path / "raw.nii.gz")
    assert code == 1 and "Traceback" not in stderr
    air, classified, water, raw = lines
    assert "raw.nii.gz" in raw["error"] and "not in Hounsfield units" in raw["error"]
    assert "air.nii.gz" in air["error"] and "no head in this scan: 0.0 mL of soft tissue" in air["error"]
    assert "water.nii.gz" in water["error"] and "0.0 mL of bone" in water["error"]
    assert "probability" not in air and "probability" not in water
    assert 0.0 <= classified["probability"] <= 1.0


def test_predict_refuses_part_of_a_head(smoke, tmp_path):
    """A DICOM series holding only the first 6 slices of a head, as an interrupted copy leaves it (evenly spaced,
    no gap between them), is refused by name with the span its slices cover; the whole series beside it is classified."""
    from ich_study.io import read_scan, write_dicom_series
    work, _ = smoke
    model = work / "runs" / "smoke" / "e2e2" / "best.pt"
    manifest = pd.read_csv(work / "data" / "smoke-cohort" / "manifest.csv")
    scan = read_scan(work / "data" / "smoke-cohort" / manifest["image"].iloc[0])
    write_dicom_series(scan.volume, tmp_path / "whole", spacing_mm=scan.spacing_mm)
    write_dicom_series(scan.volume[:6], tmp_path / "interrupted", spacing_mm=scan.spacing_mm)
    code, lines, stderr = _predict("--model", model, tmp_path / "interrupted", tmp_path / "whole")
    assert code == 1 and "Traceback" not in stderr
    partial, whole = lines
    assert partial["error"].startswith(f"{tmp_path / 'interrupted'}: part of a head: its 6 slices")
    assert f"span {6 * scan.spacing_mm[0]:.1f} mm head to feet" in partial["error"] and "probability" not in partial
    assert 0.0 <= whole["probability"] <= 1.0 and len(whole["slice_scores"]) == scan.n_slices and whole["head_check"] is True
    code, (partial,), stderr = _predict("--model", model, "--no-head-check", tmp_path / "interrupted")   # on purpose
    assert code == 0, stderr
    assert partial["head_check"] is False and 0.0 <= partial["probability"] <= 1.0 and len(partial["slice_scores"]) == 6


def test_predict_reads_the_series_named_in_a_folder_of_several(smoke, tmp_path):
    """A DICOM folder holding two axial series of one head, every slice ("HEAD SOFT") and every other slice ("HEAD
    THICK"), as scanners export thin and thick reconstructions together, and a CT angiogram ("CTA HEAD") with more
    slices still: the non-contrast one with the most slices is read unless --series names another, by description or
    SeriesInstanceUID, and each line says which was read (the angiogram with a warning of its contrast); a --series that
    matches none is an error line listing the series there; in a --manifest a row's 'series' names it. The thick
    series' slices are twice as far apart as any scan the model trained on, which the checkpoint records and its
    line's warning names; the thin one's are not."""
    from ich_study.datasets import spacing_warning
    from ich_study.io import read_scan, write_dicom_series
    from ich_study.train import load_checkpoint
    work, _ = smoke
    model = work / "runs" / "smoke" / "e2e2" / "best.pt"
    manifest = pd.read_csv(work / "data" / "smoke-cohort" / "manifest.csv")
    scan = read_scan(work / "data" / "smoke-cohort" / manifest["image"].iloc[0])
    folder = tmp_path / "study"
    spacing = scan.spacing_mm
    write_dicom_series(scan.volume, folder, spacing_mm=spacing, study_uid="1.2.3", series_uid="1.2.3.1",
                       series_description="HEAD SOFT", series_number=2)
    write_dicom_series(scan.volume[::2], folder, spacing_mm=(2 * spacing[0], *spacing[1:]), study_uid="1.2.3",
                       series_uid="1.2.3.2", series_description="HEAD THICK", series_number=3, seed=1)
    n_thick = len(scan.volume[::2])
    write_dicom_series(np.repeat(scan.volume, 2, axis=0), folder, spacing_mm=(spacing[0] / 2, *spacing[1:]),
                       study_uid="1.2.3", series_uid="1.2.3.3", series_description="CTA HEAD", series_number=4, seed=2)
    trained_mm = load_checkpoint(model)["geometry"]["slice_spacing_mm"]
    assert spacing[0] < 1.2 * trained_mm[1] < 2 * spacing[0]
    for arguments, uid, n_slices in (((), "1.2.3.1", scan.n_slices), (("--series", "thick"), "1.2.3.2", n_thick),
                                     (("--series", "1.2.3.2"), "1.2.3.2", n_thick)):
        code, (line,), stderr = _predict("--model", model, "--no-influence", *arguments, folder)
        assert code == 0, stderr
        assert line["series"] == uid and len(line["slice_scores"]) == n_slices, (arguments, line["series"])
        assert line["trained_slice_spacing_mm"] == trained_mm
        thick = uid == "1.2.3.2"
        assert line["slice_spacing_mm"] == pytest.approx(spacing[0] * (2 if thick else 1), abs=1e-3)
        assert line["warning"] == (spacing_warning(line["slice_spacing_mm"], trained_mm) if thick else None)
        assert (line["warning"] is not None) == thick and line["decision"] in ("ICH", "no ICH")
    code, (line,), stderr = _predict("--model", model, "--no-influence", "--series", "cta", folder)  # most slices,
    assert code == 0 and line["contrast"] == "SeriesDescription 'CTA HEAD'", stderr      # read only by name
    assert "contrast-enhanced (SeriesDescription 'CTA HEAD')" in line["warning"]
    code, (line,), _ = _predict("--model", model, "--series", "bone", folder)
    assert code == 1 and "no series matches 'bone'" in line["error"] and "'HEAD THICK'" in line["error"]
    pd.DataFrame({"image": ["study", "study"], "series": ["", "HEAD THICK"]}).to_csv(tmp_path / "scans.csv", index=False)
    code, lines, stderr = _predict("--model", model, "--no-influence", "--manifest", tmp_path / "scans.csv")
    assert code == 0, stderr
    assert [line["series"] for line in lines] == ["1.2.3.1", "1.2.3.2"]            # a manifest's row names its series
    assert [line["series_description"] for line in lines] == ["HEAD SOFT", "HEAD THICK"]


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "profiles").glob("*.toml")))
def test_every_shipped_profile_passes_its_check(name):
    """Every profile in profiles/ (demo, demo128, ct-ich, full, smoke) has only keys something reads, and
    every experiment's settings resolve to a TrainConfig: `full`, which no CI machine can run, too."""
    from ich_study.core import load_profile
    from ich_study.reproduce import check_profile
    check_profile(load_profile(name))


def test_demo128_is_demo_but_for_the_slice_resolution():
    """profiles/demo128.toml says "everything else as in demo", the length and learning rate of every stage included
    (since reports/trials/demo128-cuts) and the slice CNN's 6,000 batches (demo since reports/trials/demo-cnn6000,
    demo128 since reports/trials/demo128-cnn6000). A setting changed in one profile and not the other fails here,
    instead of comparing the two reports across an unnoticed difference."""
    from ich_study.core import load_profile
    def flat(table, prefix=""):
        for key, value in table.items():
            if isinstance(value, dict): yield from flat(value, f"{prefix}{key}.")
            elif key not in ("name", "profile_path", "description", "extends"): yield f"{prefix}{key}", value
    demo, demo128 = dict(flat(load_profile("demo"))), dict(flat(load_profile("demo128")))
    differing = {key for key in demo.keys() | demo128.keys() if demo.get(key) != demo128.get(key)}
    assert differing == {"train.matrix", "stages.cnn.max_filter", "stages.lstm.max_filter",
                         "stages.e2e.max_filter", "stages.scratch.max_filter"}, differing
    assert demo128["train.matrix"] == 128 and demo128["stages.cnn.max_filter"] == "none"
    assert (demo128["stages.cnn.n_samples"], demo128["stages.cnn.lr"]) == (150_000, 3e-4)


@pytest.mark.parametrize("name", sorted(path.stem for path in (ROOT / "profiles").glob("*.toml")))
def test_scratch_trains_as_stage_3_in_every_profile(name):
    """The paper trains the model from random initialisation "as e2e" (its table of stages): as many scans at
    the same input. A profile that shortens stage 3 and not `scratch` (or the other way) compares the full model
    with a baseline trained for another length, and fails here."""
    from ich_study.core import load_profile
    stages = load_profile(name)["stages"]
    for key in ("n_samples", "max_filter"):
        assert stages["scratch"].get(key) == stages["e2e"].get(key), (name, key)


@pytest.mark.parametrize("study", sorted(path.parent.name for path in (ROOT / "reports").glob("*/reproduce.json")))
def test_each_committed_report_was_made_by_the_profile_as_shipped(study):
    """reports/{study}/reproduce.json records the profile its chain ran with: a setting changed in
    profiles/ since (in the profile itself or, through `extends`, in its base) leaves the committed
    report describing other settings than the file a reader opens, and fails here. Each experiment's
    training settings are compared as the chain resolves them (a stage's default learning rate written
    out in the file is the same setting), every other table as written; a precision given on the command line
    (`--precision`, recorded as `precision_override`) is applied to the shipped profile first."""
    from ich_study.core import LOADED_KEYS, load_profile
    from ich_study.reproduce import with_precision
    record = json.loads((ROOT / "reports" / study / "reproduce.json").read_text(encoding="utf-8"))
    ran = record["profile"]
    ignored = (*LOADED_KEYS, "extends")
    shipped = {k: v for k, v in with_precision(load_profile(study), record.get("precision_override")).items()
               if k not in ignored}
    ran, shipped = _as_run(ran, ignored), _as_run(shipped, ignored)
    differing = sorted(key for key in ran.keys() | shipped.keys() if ran.get(key) != shipped.get(key))
    assert ran == shipped, f"reports/{study} ran other settings of {differing} than profiles/ gives"


def _as_run(profile: dict, ignored: tuple) -> dict:
    """A profile as its chain runs it: each experiment's resolved TrainConfig (and any other notebook
    parameter of its stage) in place of the [train] and [stages.*] tables; the other tables as they are."""
    from dataclasses import asdict
    from ich_study.reproduce import PAPER_EXPERIMENTS, experiment_config, stage_parameters
    settings = {k: v for k, v in profile.items() if k not in (*ignored, "train", "stages")}
    for experiment in PAPER_EXPERIMENTS:
        config = asdict(experiment_config(profile, experiment).resolved())
        others = {k: v for k, v in stage_parameters(profile, experiment).items() if k not in config}
        settings[experiment.name] = [config, others]
    return json.loads(json.dumps(settings))


def test_an_extending_profile_overlays_its_base_key_by_key(tmp_path):
    """A profile of one's own outside the checkout: `extends` by name reaches profiles/, by path its own
    folder; only the keys it names change, and `extends` stays as the record."""
    from ich_study.core import load_profile
    from ich_study.reproduce import check_profile
    (tmp_path / "mine.toml").write_text('extends = "smoke"\ndescription = "mine"\n[stages.cnn]\nn_samples = 7\n', encoding="utf-8")
    (tmp_path / "mine2.toml").write_text('extends = "mine.toml"\n[train]\nseed = 3\n', encoding="utf-8")
    smoke, mine2 = load_profile("smoke"), check_profile(load_profile(tmp_path / "mine2.toml"))
    assert mine2["name"] == "mine2" and mine2["extends"] == "mine.toml" and mine2["description"] == "mine"
    assert mine2["stages"]["cnn"] == {**smoke["stages"]["cnn"], "n_samples": 7}
    assert mine2["train"] == {**smoke["train"], "seed": 3} and mine2["data"] == smoke["data"]


@pytest.mark.parametrize("files, expected", [
    ({"a.toml": 'extends = "b.toml"\n', "b.toml": 'extends = "a.toml"\n'}, "which extends it in turn"),
    ({"a.toml": 'extends = "a.toml"\n'}, "which extends it in turn"),
    ({"a.toml": 'extends = "gone.toml"\n'}, "gone.toml does not exist"),
    ({"a.toml": 'extends = "no-such-profile"\n'}, "no-such-profile.toml does not exist"),
    ({"a.toml": 'extends = 3\n'}, "extends must name a profile"),
])
def test_a_broken_extends_is_refused(tmp_path, files, expected):
    from ich_study.core import ConfigError, load_profile
    for name, text in files.items(): (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error: load_profile(tmp_path / "a.toml")
    assert str(tmp_path / "a.toml") in str(error.value) and expected in str(error.value), str(error.value)


def test_a_bad_key_in_a_base_profile_is_refused_naming_both_files(tmp_path):
    """check_profile sees the resolved profile: an error there names the file given and its base."""
    from ich_study.core import ConfigError, load_profile
    from ich_study.reproduce import check_profile
    smoke = (ROOT / "profiles" / "smoke.toml").read_text(encoding="utf-8")
    (tmp_path / "base.toml").write_text(smoke.replace("[stages.cnn]\n", "[stages.cnn]\nn_smaples = 5\n", 1), encoding="utf-8")
    (tmp_path / "mine.toml").write_text('extends = "base.toml"\n[train]\nseed = 3\n', encoding="utf-8")
    with pytest.raises(ConfigError) as error: check_profile(load_profile(tmp_path / "mine.toml"))
    message = str(error.value)
    assert str(tmp_path / "mine.toml") in message and "extends = 'base.toml'" in message and "n_smaples" in message, message


def _with_line(tmp_path, table, line):
    """A copy of the smoke profile with `line` added at the top of `table`."""
    text = (ROOT / "profiles" / "smoke.toml").read_text(encoding="utf-8")
    assert table in text
    path = tmp_path / "typo.toml"
    path.write_text(text.replace(table, f"{table}\n{line}", 1), encoding="utf-8")
    return path


@pytest.mark.parametrize("table, line, expected", [
    ("[stages.lstm]", "n_sample = 300", "unknown key(s) in [stages.lstm]: 'n_sample' (did you mean 'n_samples'?)"),
    ("[train]", "matrx = 64", "unknown key(s) in [train]: 'matrx' (did you mean 'matrix'?)"),
    ("[train]", "init_checkpoint = 'x.pt'", "unknown key(s) in [train]: 'init_checkpoint'"),
    ("[data]", "n_fold = 5", "unknown key(s) in [data]: 'n_fold' (did you mean 'n_folds'?)"),
    ("[evaluate]", "n_boots = 10", "unknown key(s) in [evaluate]: 'n_boots' (did you mean 'n_boot'?)"),
    ("[evaluate]", "test_data_dir = 'data/mine'", "[evaluate] test_data_dir: another dataset is tested with ich-reproduce --test-data"),
    ("[stages.e2e]", "ema_decay = 1.5", "[train] + [stages.e2e] of e2e1: ema_decay must be in [0, 1)"),
    ("[stages.cnn]", "max_filter = '3x3'", "[train] + [stages.cnn] of cnn: max_filter: '3x3' is not one of"),
])
def test_a_profile_typo_is_refused(tmp_path, table, line, expected):
    """A misspelt key or a bad value is an error naming the file, the table and the key (papermill
    alone would only warn, and the notebook would run with its default)."""
    from ich_study.core import ConfigError, load_profile
    from ich_study.reproduce import check_profile
    path = _with_line(tmp_path, table, line)
    with pytest.raises(ConfigError) as error: check_profile(load_profile(path))
    assert str(path) in str(error.value) and expected in str(error.value), str(error.value)


def test_a_cohort_the_disk_cannot_hold_stops_the_chain_before_it_starts(tmp_path):
    """A synthetic cohort larger than the free space is refused before a scan is generated, naming the folder."""
    from ich_study.core import ConfigError
    profile = tmp_path / "huge.toml"
    smoke = (ROOT / "profiles" / "smoke.toml").read_text(encoding="utf-8")
    profile.write_text(smoke.replace("n_cases = 24", "n_cases = 1000000000", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"huge-cohort: the 1000000000-scan cohort of profile 'huge' .* GB free"):
        reproduce(str(profile), runs_dir=tmp_path / "runs", reports_dir=tmp_path / "reports", data_root=tmp_path / "data")
    assert not (tmp_path / "data").exists() and not (tmp_path / "runs").exists()


def test_until_names_an_experiment_of_the_chain_and_no_test_data(tmp_path):
    """`--until` must name an experiment, and with `--test-data` (read only by the evaluation it skips) is refused;
    both before anything is built."""
    places = dict(runs_dir=tmp_path / "runs", reports_dir=tmp_path / "reports", data_root=tmp_path / "data")
    chain = r"\(cnn, lstm1, lstm2, e2e1, e2e2, scratch2\)"
    with pytest.raises(ConfigError, match=rf"--until lstm3: not an experiment of the chain {chain}"):
        reproduce("smoke", until="lstm3", **places)
    with pytest.raises(ConfigError, match=r"--until e2e2 stops before the evaluation, so --test-data"):
        reproduce("smoke", until="e2e2", test_data=tmp_path, **places)
    assert not any(tmp_path.iterdir())


def test_a_profile_typo_stops_the_chain_before_it_starts(tmp_path):
    """ich-reproduce refuses such a profile within seconds, with one error line and nothing written."""
    bad = _with_line(tmp_path, "[stages.scratch]", "n_sample = 3")
    result = subprocess.run([str(BIN / "ich-reproduce"), "--profile", str(bad), "--runs-dir", str(tmp_path / "runs"),
                             "--reports-dir", str(tmp_path / "reports")], capture_output=True, text=True,
                            encoding="utf-8", timeout=120, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"ich-reproduce: error: {bad}: unknown key(s) in [stages.scratch]"), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()


def test_models_saved_before_crop_mm_average_with_those_after():
    """A checkpoint saved before the preprocessing had crop_mm reads scans as one saved with crop_mm None: the two
    average; one that crops to the head does not."""
    from ich_study.core import CheckpointError
    from ich_study.reproduce import check_ensemble
    preprocess = {"windows": [[40.0, 80.0]], "max_filter": "2x2x2", "matrix": 64, "cache_dtype": "float16"}
    before = {"path": "a.pt", "stage": "e2e", "input": {"kind": "HU"}, "preprocess": preprocess}
    after = {**before, "path": "b.pt", "preprocess": {**preprocess, "crop_mm": None}}
    check_ensemble([before, after])
    with pytest.raises(CheckpointError, match="b.pt: its preprocess differ from a.pt"):
        check_ensemble([before, {**after, "preprocess": {**preprocess, "crop_mm": 200.0}}])
