"""The synthetic cohort (ich_study.synthetic): deterministic, consistent files, ground truth that
agrees with the images, refused bad options, and a cohort that simple thresholds cannot solve."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from ich_study.core import ConfigError
from ich_study.synthetic import (SUBTYPE_CODES, difficulty_scores, generate_case, synth_cli,
                                 synthesize_cohort)

SMALL = dict(matrix=48, slices="16-22")


def digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix == ".gz"}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return synthesize_cohort(tmp_path_factory.mktemp("synth") / "cohort", 6, seed=3, progress=False, **SMALL)


def test_same_seed_same_files_different_seed_differs(cohort, tmp_path):
    again = synthesize_cohort(tmp_path / "again", 6, seed=3, workers=2, progress=False, **SMALL)
    assert digest(again) == digest(cohort)
    for name in ("manifest.csv", "slice_labels.csv"):
        assert (again / name).read_bytes() == (cohort / name).read_bytes()
    other = synthesize_cohort(tmp_path / "other", 6, seed=4, progress=False, **SMALL)
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(cohort / "images/synth-0000.nii.gz")))
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(other / "images/synth-0000.nii.gz")))
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_manifest_and_labels(cohort):
    manifest = pd.read_csv(cohort / "manifest.csv", keep_default_na=False)
    assert list(manifest.columns[:5]) == ["case_id", "patient_id", "image", "mask", "label"]
    assert (manifest.case_id == manifest.patient_id).all() and (manifest.source == "synthetic").all()
    assert manifest.label.sum() == 3                       # exactly round(6 * 0.5)
    slice_labels = pd.read_csv(cohort / "slice_labels.csv")
    for row in manifest.itertuples():
        image = sitk.ReadImage(str(cohort / row.image))
        mask_image = sitk.ReadImage(str(cohort / row.mask))
        volume, mask = sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(mask_image)
        assert volume.dtype == np.int16 and mask.dtype == np.uint8 and volume.shape == mask.shape
        assert volume.shape[0] == row.n_slices and 16 <= row.n_slices <= 22
        # spacing (z,y,x in the manifest; x,y,z in SimpleITK) and orientation round-trip
        spacing = tuple(float(s) for s in row.spacing.split(","))
        np.testing.assert_allclose(image.GetSpacing()[::-1], spacing, rtol=1e-3)
        np.testing.assert_allclose(image.GetDirection(), np.eye(3).ravel())
        assert mask_image.GetSpacing() == image.GetSpacing() and mask_image.GetOrigin() == image.GetOrigin()
        # physical size: the head fills a realistic field of view (~215-235 mm, 140-160 mm covered)
        assert 200 < image.GetSpacing()[0] * 48 < 250 and 135 < spacing[0] * row.n_slices < 165
        if row.label == 0:
            assert not mask.any() and row.subtypes == "" and row.lesion_volume_ml == 0
        else:
            codes = {SUBTYPE_CODES[s] for s in row.subtypes.split(";")}
            assert set(np.unique(mask[mask > 0]).tolist()) == codes
            voxel_ml = np.prod(spacing) / 1000
            assert abs(row.lesion_volume_ml - (mask > 0).sum() * voxel_ml) < 1e-3 * max(1, row.lesion_volume_ml)
        rows = slice_labels[slice_labels.case_id == row.case_id].sort_values("slice_index")
        assert list(rows.slice_index) == list(range(row.n_slices))
        assert list(rows.label) == mask.any(axis=(1, 2)).astype(int).tolist()
        for r in rows[rows.label == 1].itertuples():
            ys, xs = np.nonzero(mask[r.slice_index])
            assert (r.x0, r.y0, r.x1, r.y1) == (xs.min(), ys.min(), xs.max(), ys.max())
            assert abs(r.lesion_mm2 - len(xs) * spacing[1] * spacing[2]) < 0.01 + 1e-4 * len(xs)
        assert (rows[rows.label == 0][["x0", "y0", "x1", "y1"]] == -1).all().all()
        assert (rows[rows.label == 0]["lesion_mm2"] == 0).all()
        # most slices hold brain; the lowest and highest may not
        assert 0.6 < rows.cranial_cavity.mean() <= 1.0


def test_mask_inside_cavity_and_in_blood_range():
    """Blood is where the mask says: 50-90 HU typical (noise, blur and thin layers next to bone
    spread single voxels), inside the cranial cavity, never bone."""
    from ich_study.synthetic import estimate_cranial_cavity
    values_by_code = {}
    for index in range(10):
        volume, mask, spacing, info = generate_case(index, seed=11, matrix=64, slices=(24, 30), positive=True)
        assert info["label"] == 1 and mask.any()
        cavity = np.array(info["cranial_cavity_slices"], bool)
        assert cavity[np.flatnonzero(mask.any(axis=(1, 2)))].all()   # bleeding slices show cranial cavity
        inside = estimate_cranial_cavity(volume, erosion_voxels=0)
        head = (volume > -200)
        assert head[mask > 0].all()                                   # never in the air around the head
        # inside the skull's bone ring (found from the image alone, as a reader would)
        assert (inside & (mask > 0)).sum() >= 0.9 * (mask > 0).sum()
        for code in np.unique(mask[mask > 0]):
            values = volume[mask == code]
            values_by_code.setdefault(int(code), []).append(values)
            assert 35 <= np.median(values) <= 140, (code, np.median(values))
        assert (volume[mask > 0] < 300).mean() > 0.95                  # blood, not bone
    for code, chunks in values_by_code.items():
        assert 45 <= np.median(np.concatenate(chunks)) <= 95, code
        negative = generate_case(index, seed=11, matrix=64, slices=(24, 30), positive=False)
        assert not negative[1].any() and negative[3]["label"] == 0


def test_subtypes_have_their_shapes():
    """Over a few cases every subtype appears; SDH/EDH hug the skull, IVH sits in the posterior half."""
    seen = {}
    for index in range(40):
        volume, mask, spacing, info = generate_case(index, seed=5, matrix=48, slices=(16, 20), positive=True)
        for code in np.unique(mask[mask > 0]):
            seen.setdefault(int(code), []).append((volume, mask == code))
        if len(seen) == 5: break
    assert set(seen) == set(SUBTYPE_CODES.values())
    from scipy import ndimage
    for volume, region in seen[SUBTYPE_CODES["SDH"]] + seen[SUBTYPE_CODES["EDH"]]:
        near_bone = ndimage.binary_dilation(volume > 500, iterations=3)
        assert (region & near_bone).sum() >= 0.5 * region.sum()


def test_bad_options_write_nothing(tmp_path, capsys):
    for argv, message in [(["--n-cases", "0"], "at least one case"), (["--slices", "80-40"], "lowest count first"),
                          (["--slices", "many"], "expected A-B")]:
        with pytest.raises(SystemExit) as exit_info:
            synth_cli(["--out", str(tmp_path / "out"), *argv])
        error = capsys.readouterr().err
        assert exit_info.value.code == 1 and error.startswith("ich-synth: error: ") and message in error
        assert not (tmp_path / "out").exists()
    locked = tmp_path / "locked"; locked.mkdir(); os.chmod(locked, 0o500)
    try:
        if not os.access(locked, os.W_OK):          # (root can write anywhere)
            with pytest.raises(ConfigError, match="cannot write"):
                synthesize_cohort(locked / "cohort", 2, **SMALL)
            assert list(locked.iterdir()) == []
    finally:
        os.chmod(locked, 0o700)
    a_file = tmp_path / "file"; a_file.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a folder"):
        synthesize_cohort(a_file, 2, **SMALL)
    with pytest.raises(ConfigError, match="cannot write"):          # unwritable even for root
        synthesize_cohort(a_file / "cohort", 2, **SMALL)
    assert a_file.read_text(encoding="utf-8") == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["file", "locked"]


def test_resume_and_refuse_other_options(tmp_path):
    out = synthesize_cohort(tmp_path / "c", 3, seed=0, progress=False, **SMALL)
    (out / "images/synth-0001.nii.gz").unlink()
    before = (out / "images/synth-0000.nii.gz").stat().st_mtime_ns
    synthesize_cohort(out, 3, seed=0, progress=False, **SMALL)
    assert (out / "images/synth-0001.nii.gz").exists()
    assert (out / "images/synth-0000.nii.gz").stat().st_mtime_ns == before
    with pytest.raises(ConfigError, match="other options"):
        synthesize_cohort(out, 3, seed=1, progress=False, **SMALL)


def test_cli_writes_a_cohort(tmp_path):
    completed = subprocess.run([sys.executable, "-c", "from ich_study.synthetic import synth_cli; synth_cli()",
                                "--out", str(tmp_path / "d"), "--n-cases", "2", "--matrix", "40", "--slices", "12-14",
                                "--positive-fraction", "1", "--seed", "2"], capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert completed.returncode == 0, completed.stderr
    manifest = pd.read_csv(tmp_path / "d/manifest.csv")
    assert manifest.label.tolist() == [1, 1]


def test_simple_scores_cannot_solve_the_cohort():
    """A 60-case cohort at reduced size: neither threshold score reaches an ROC AUC of 0.80."""
    from sklearn.metrics import roc_auc_score
    labels, counts, maxima = [], [], []
    for index in range(60):
        volume, mask, spacing, info = generate_case(index, seed=0, matrix=64, slices=(24, 36), positive=bool(index % 2))
        scores = difficulty_scores(volume)
        labels.append(info["label"]); counts.append(scores["blood_range_voxels"]); maxima.append(scores["max_smoothed_hu"])
    assert sum(labels) == 30
    assert roc_auc_score(labels, counts) < 0.80
    assert roc_auc_score(labels, maxima) < 0.80


def _blas_threads():
    from threadpoolctl import threadpool_info
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_cohort_workers_run_blas_on_one_thread(tmp_path, monkeypatch):
    """Each worker of synthesize_cohort writes its cases with numpy's BLAS on one thread: a wrapped write_case,
    inherited by the forked workers, records the BLAS threads it runs with."""
    import multiprocessing

    from ich_study import synthetic
    if multiprocessing.get_start_method() != "fork":
        pytest.skip("the wrapped write_case reaches the workers only when they are forked")
    seen = tmp_path / "threads"; seen.mkdir()
    original = synthetic.write_case

    def recording_write_case(out, case_index, *rest):
        (seen / f"{case_index}-{os.getpid()}").write_text(",".join(str(n) for n in _blas_threads()), encoding="utf-8")
        return original(out, case_index, *rest)

    monkeypatch.setattr(synthetic, "write_case", recording_write_case)
    synthesize_cohort(tmp_path / "cohort", 4, seed=3, workers=2, progress=False, **SMALL)
    records = {path.name: path.read_text(encoding="utf-8") for path in seen.iterdir()}
    assert len(records) == 4 and {n for value in records.values() for n in value.split(",")} == {"1"}
    assert all(not name.endswith(f"-{os.getpid()}") for name in records)     # written in the workers
