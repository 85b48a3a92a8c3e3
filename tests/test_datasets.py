"""ich-prepare on every source (real CT-ICH, faithful RSNA/CQ500 DICOM copies), splits, cavity, pre-training slices."""
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk

from ich_study.core import LabelError, ScanError, SplitError
from ich_study.datasets import (assign_split, cranial_cavity_mask, cranial_cavity_slices, field_of_view_range,
                                fields_of_view, load_or_make_splits, load_splits, make_splits, prepare_cli, prepare_dataset, pretraining_counts,
                                pretraining_slices, read_manifest, read_slice_labels, validate_manifest)
from ich_study.io import Scan, read_scan, write_dicom_series

CT_ICH = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ct-ich"
RSNA_TYPES = ["epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any"]


def head(n_slices=5, size=24, brain_hu=35.0):
    """A tiny head: skull ring (1000 HU) around brain (`brain_hu`; another value for another patient) in air."""
    y, x = np.mgrid[:size, :size]
    radius = np.hypot((y - size / 2) / (size * 0.4), (x - size / 2) / (size * 0.35))
    slice_ = np.where(radius < 1, brain_hu, -1000.0)
    slice_[(radius >= 0.8) & (radius < 1)] = 1000
    return np.repeat(slice_[None], n_slices, 0).astype(np.float32)


def toy_manifest(n_patients=40, scans_per_patient=2):
    rows = [{"case_id": f"p{p}_s{s}", "patient_id": f"p{p}", "label": int(p % 3 == 0 and s == 0)}
            for p in range(n_patients) for s in range(scans_per_patient)]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- splits
def test_make_splits_patient_level_stratified_deterministic():
    manifest = toy_manifest()
    splits = make_splits(manifest, seed=1)
    assert splits.patient_id.is_unique and len(splits) == 40
    counts = splits.split.value_counts()
    assert counts["train"] == 30 and counts["test"] == 8 and counts["val"] == 2
    labels = manifest.groupby("patient_id").label.max()
    positives = splits[splits.patient_id.map(labels) == 1].split.value_counts()
    assert positives["train"] == 10 and positives["test"] == 3      # 14 positive patients, 75/5/20
    pd.testing.assert_frame_equal(make_splits(manifest, seed=1), splits)
    assert not make_splits(manifest, seed=2).equals(splits)


def test_folds_and_assign_split():
    manifest = toy_manifest()
    splits = make_splits(manifest, seed=0, n_folds=5)
    labels = manifest.groupby("patient_id").label.max()
    per_fold = splits.assign(y=splits.patient_id.map(labels)).groupby("fold").y.agg(["size", "sum"])
    assert per_fold["size"].tolist() == [8] * 5 and per_fold["sum"].max() - per_fold["sum"].min() <= 1
    seen_test = set()
    for fold in range(5):
        split = assign_split(manifest, splits, fold=fold, val_fraction=0.1)
        assert split.groupby("patient_id").split.nunique().max() == 1
        test_patients = set(split[split.split == "test"].patient_id)
        assert test_patients == set(splits[splits.fold == fold].patient_id)
        assert (split.split == "val").any()
        seen_test |= test_patients
    assert seen_test == set(manifest.patient_id)
    with pytest.raises(SplitError, match="does not exist"):
        assign_split(manifest, splits, fold=5)


def test_split_file_written_once_user_file_wins_and_errors(tmp_path):
    manifest = toy_manifest()
    made = load_or_make_splits(manifest, tmp_path / "splits.csv", seed=0)
    again = load_or_make_splits(manifest, tmp_path / "splits.csv", seed=99)   # read, not re-made
    pd.testing.assert_frame_equal(made, again)
    user = made.assign(split="train"); user.loc[:9, "split"] = "test"
    user.to_csv(tmp_path / "mine.csv", index=False)
    used = load_or_make_splits(manifest, tmp_path / "splits.csv", user_splits=tmp_path / "mine.csv")
    assert (used.split == "test").sum() == 10
    assert (pd.read_csv(tmp_path / "splits.csv").split == "test").sum() == 10
    twice = pd.concat([made, made.head(1).assign(split="test" if made.split[0] != "test" else "train")])
    twice.to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(SplitError, match="two splits"):
        load_splits(tmp_path / "twice.csv")
    made.iloc[1:].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(SplitError, match="have no split"):
        load_splits(tmp_path / "short.csv", manifest)


# ---------------------------------------------------------------------- label validation
def test_label_errors(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(head()), str(tmp_path / "a.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(head() + 1), str(tmp_path / "b.nii.gz"))      # another scan
    pd.DataFrame({"image": ["a.nii.gz", "b.nii.gz"], "label": [1, 0]}).to_csv(tmp_path / "labels.csv", index=False)
    manifest = prepare_dataset("folder", tmp_path, tmp_path / "out")
    assert manifest.label.tolist() == [1, 0] and Path(manifest.image[0]).is_absolute()
    verified = prepare_dataset("folder", tmp_path, tmp_path / "verified", verify_scans=True, check_heads=False)
    assert manifest.spacing.tolist() == verified.spacing.tolist() == ["1,1,1"] * 2    # from the NIfTI headers alone
    pd.DataFrame({"image": ["a.nii.gz", "c.nii.gz"], "label": [1, 0]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(LabelError, match="c.nii.gz"):
        prepare_dataset("folder", tmp_path, tmp_path / "out2")
    pd.DataFrame({"image": ["a.nii.gz", "b.nii.gz"], "label": [1, "yes"]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(LabelError, match="not 0 or 1"):
        prepare_dataset("folder", tmp_path, tmp_path / "out3")
    good = read_manifest(tmp_path / "out")
    slices = pd.DataFrame({"case_id": ["b", "b"], "slice_index": [0, 1], "label": [0, 1]})
    with pytest.raises(LabelError, match="positive"):
        validate_manifest(good, slices, check_images=False)


def test_a_dataset_of_hu_scans_and_prewindowed_images_is_refused(tmp_path):
    """A folder dataset with a NIfTI (HU) and a stack of PNGs (windowed elsewhere) is refused, with --verify
    (the scans read) and without (told from the paths), by an error naming both kinds and a scan of each;
    either kind alone is prepared."""
    from PIL import Image
    sitk.WriteImage(sitk.GetImageFromArray(head()), str(tmp_path / "a.nii.gz"))
    (tmp_path / "b").mkdir()
    for number in range(1, 6):
        Image.fromarray(np.full((24, 24), 40 * number, np.uint8)).save(tmp_path / "b" / f"{number}.png")
    pd.DataFrame({"image": ["a.nii.gz", "b"], "label": [1, 0]}).to_csv(tmp_path / "labels.csv", index=False)
    for verify_scans in [True, False]:
        with pytest.raises(ScanError, match=r"mixes kinds of scan: HU scans, e.g. 'a'; pre-windowed images \(image\), e.g. 'b'"):
            prepare_dataset("folder", tmp_path, tmp_path / "out", verify_scans=verify_scans, check_heads=False)
        assert not (tmp_path / "out" / "manifest.csv").exists()
    pd.DataFrame({"image": ["a.nii.gz"], "label": [1]}).to_csv(tmp_path / "labels.csv", index=False)
    assert prepare_dataset("folder", tmp_path, tmp_path / "out", verify_scans=True, check_heads=False).case_id.tolist() == ["a"]


def test_skip_bad_reports_and_skips(tmp_path, capsys):
    for offset, name in enumerate(["a", "b", "c"]):          # three scans, not one scan three times
        sitk.WriteImage(sitk.GetImageFromArray(head() + offset), str(tmp_path / f"{name}.nii.gz"))
    data = (tmp_path / "b.nii.gz").read_bytes()
    (tmp_path / "b.nii.gz").write_bytes(data[: len(data) // 2])
    pd.DataFrame({"image": ["a.nii.gz", "b.nii.gz", "c.nii.gz"], "label": [1, 0, 0],
                  "patient_id": ["x", "y", "z"]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(ScanError, match="b.nii.gz"):
        prepare_dataset("folder", tmp_path, tmp_path / "out", verify_scans=True, check_heads=False)
    with pytest.raises(SystemExit) as exit_info:
        prepare_cli(["--source", "folder", "--root", str(tmp_path), "--out", str(tmp_path / "out"), "--verify",
                     "--no-head-check"])
    assert exit_info.value.code == 1
    assert re.match(r"ich-prepare: error: .*b\.nii\.gz.*truncated", capsys.readouterr().err)
    prepare_cli(["--source", "folder", "--root", str(tmp_path), "--out", str(tmp_path / "out"),
                 "--verify", "--skip-bad", "--no-head-check"])
    assert "skipping bad scan b" in capsys.readouterr().err
    manifest = read_manifest(tmp_path / "out")
    assert manifest.case_id.tolist() == ["a", "c"] and manifest.n_slices.tolist() == [5, 5]
    assert set(pd.read_csv(tmp_path / "out/splits.csv").patient_id) == {"x", "z"}


def test_a_scan_that_holds_no_head_is_a_bad_scan(tmp_path, capsys):
    """Read by --verify, a scan of air or of a water phantom is refused as 'no head in this scan', six slices of a head
    as 'part of a head', and a head stored without its rescale (1024 too high) as 'not in Hounsfield units', named;
    --skip-bad leaves them out, --no-head-check keeps them; a head of real size passes."""
    def write(name, volume):
        image = sitk.GetImageFromArray(volume)
        image.SetSpacing((3.0, 3.0, 5.0))                  # 64 x 64 pixels of 3 mm, 24 slices of 5 mm: head-sized
        sitk.WriteImage(image, str(tmp_path / name))
    phantom = np.where(head(24, 64) == 1000, 0.0, head(24, 64)).astype(np.float32)     # soft tissue, no bone
    write("head.nii.gz", head(24, 64)); write("air.nii.gz", np.full((24, 64, 64), -1000, np.float32))
    write("phantom.nii.gz", phantom); write("slab.nii.gz", head(6, 64))                  # 30 mm head to feet
    write("raw.nii.gz", head(24, 64, brain_hu=36) + 1024)                                 # air at +24, brain at 1060
    pd.DataFrame({"image": ["head.nii.gz", "air.nii.gz", "phantom.nii.gz", "slab.nii.gz", "raw.nii.gz"],
                  "label": [0, 0, 0, 0, 0], "patient_id": ["x", "y", "z", "w", "v"]}).to_csv(tmp_path / "labels.csv",
                                                                                           index=False)
    out = str(tmp_path / "out")
    with pytest.raises(ScanError, match=r"air\.nii\.gz.*no head in this scan: 0\.0 mL of soft tissue"):
        prepare_dataset("folder", tmp_path, out, verify_scans=True)
    assert not (tmp_path / "out" / "manifest.csv").exists()
    prepare_cli(["--source", "folder", "--root", str(tmp_path), "--out", out, "--verify", "--skip-bad"])
    err = capsys.readouterr().err
    assert "skipping bad scan air" in err and re.search(r"skipping bad scan phantom: .*0\.0 mL of bone", err)
    assert re.search(r"skipping bad scan slab: .*slab\.nii\.gz: part of a head: its 6 slices, 5 mm apart, span 30\.0 mm", err)
    assert re.search(r"skipping bad scan raw: .*raw\.nii\.gz: not in Hounsfield units: the lowest 1% of its voxels lie at "
                     r"24 or above", err)
    assert read_manifest(out).case_id.tolist() == ["head"]
    prepare_cli(["--source", "folder", "--root", str(tmp_path), "--out", out + "-all", "--verify", "--no-head-check"])
    assert sorted(read_manifest(out + "-all").case_id) == ["air", "head", "phantom", "raw", "slab"]


def test_a_scan_copied_under_another_case_id_is_a_bad_scan(tmp_path, capsys):
    """Read by --verify, a scan whose files are a byte-for-byte copy of an earlier case's (one scan exported twice,
    under two patient ids) is refused, naming both; --skip-bad keeps the first and leaves the copy out."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        image = sitk.GetImageFromArray(rng.integers(-1000, 1000, (6, 16, 16)).astype(np.int16))
        sitk.WriteImage(image, str(tmp_path / f"{name}.nii.gz"))
    shutil.copy(tmp_path / "a.nii.gz", tmp_path / "c.nii.gz")
    pd.DataFrame({"image": ["a.nii.gz", "b.nii.gz", "c.nii.gz"], "label": [0, 1, 0],
                  "patient_id": ["x", "y", "z"]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(ScanError, match=r"c\.nii\.gz: the same scan as case 'a' \(.*a\.nii\.gz\), byte for byte"):
        prepare_dataset("folder", tmp_path, tmp_path / "out", verify_scans=True, check_heads=False)
    prepare_cli(["--source", "folder", "--root", str(tmp_path), "--out", str(tmp_path / "out"), "--verify", "--skip-bad",
                 "--no-head-check"])
    assert "skipping bad scan c" in capsys.readouterr().err
    assert read_manifest(tmp_path / "out").case_id.tolist() == ["a", "b"]


def test_a_scan_exported_again_or_converted_is_a_bad_scan(tmp_path, capsys):
    """Read by --verify, the same scan exported again under another patient id (other headers and file names, so other
    bytes) or converted to NIfTI is refused as the same scan voxel for voxel, naming both; another scan passes."""
    rng = np.random.default_rng(1)
    volume = rng.integers(-1000, 1000, (6, 16, 16)).astype(np.int16)
    write_dicom_series(volume, tmp_path / "first", patient_id="P1")
    write_dicom_series(volume, tmp_path / "again", patient_id="ANON-42", seed=9)           # a second export
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(tmp_path / "converted.nii.gz"))
    other = volume.copy(); other[3, 8, 8] += 1
    write_dicom_series(other, tmp_path / "other", patient_id="P2", seed=5)
    pd.DataFrame({"image": ["first", "again", "converted.nii.gz", "other"], "label": [0, 0, 0, 1],
                  "patient_id": ["P1", "A42", "C", "P2"]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(ScanError, match=r"again: the same scan as case 'first' \(.*first\), voxel for voxel"):
        prepare_dataset("folder", tmp_path, tmp_path / "out", verify_scans=True, check_heads=False)
    prepare_cli(["--source", "folder", "--root", str(tmp_path), "--out", str(tmp_path / "out"), "--verify", "--skip-bad",
                 "--no-head-check"])
    err = capsys.readouterr().err
    assert "skipping bad scan again" in err and "skipping bad scan converted" in err
    assert read_manifest(tmp_path / "out").case_id.tolist() == ["first", "other"]


def test_a_folder_of_dicom_series_gives_its_geometry_from_the_headers(tmp_path):
    """Without --verify, ich-prepare records each DICOM series' number of slices, voxel size and field of view from its
    headers, as for a volume file, and as reading the scans gives them; a series with a missing slice is a bad scan
    already."""
    slices_of_a = write_dicom_series(head(6), tmp_path / "a", spacing_mm=(2.5, 0.45, 0.45), patient_id="a")
    write_dicom_series(head(6, brain_hu=36), tmp_path / "b" / "thin", spacing_mm=(1.25, 0.5, 0.5), patient_id="b",
                       seed=1, study_uid="1.2.3")
    write_dicom_series(head(3, brain_hu=36), tmp_path / "b" / "thick", spacing_mm=(2.5, 0.5, 0.5), patient_id="b",
                       seed=2, study_uid="1.2.3")
    volume = sitk.GetImageFromArray(head(6, brain_hu=37)); volume.SetSpacing((0.6, 0.6, 3.0))
    sitk.WriteImage(volume, str(tmp_path / "c.nii.gz"))
    pd.DataFrame({"image": ["a", "b", "c.nii.gz"], "label": [1, 0, 0]}).to_csv(tmp_path / "labels.csv", index=False)
    manifest = prepare_dataset("folder", tmp_path, tmp_path / "out", check_heads=False)
    assert manifest.n_slices.tolist() == [6, 6, 6]
    assert manifest.spacing.tolist() == ["2.5,0.45,0.45", "1.25,0.5,0.5", "3,0.6,0.6"]   # b: the thin series, as read
    assert manifest.field_of_view_mm.tolist() == pytest.approx([10.8, 12.0, 14.4])     # 24 pixels each
    verified = prepare_dataset("folder", tmp_path, tmp_path / "verified", verify_scans=True, check_heads=False)
    assert verified.spacing.tolist() == manifest.spacing.tolist() and verified.n_slices.tolist() == [6, 6, 6]
    from ich_study.io import volume_fingerprint                               # --verify records the voxels' hash too
    assert read_manifest(tmp_path / "verified").voxel_fingerprint.tolist() == [
        volume_fingerprint(read_scan(image)) for image in read_manifest(tmp_path / "verified").image
    ] and "voxel_fingerprint" not in manifest
    for row in read_manifest(tmp_path / "out").itertuples():                  # b: a list of its thin series' files
        scan = read_scan(row.image)
        assert row.field_of_view_mm == pytest.approx(max(np.multiply(scan.volume.shape[1:], scan.spacing_mm[1:])))
    assert field_of_view_range(read_manifest(tmp_path / "out")) == [10.8, 14.4]
    assert fields_of_view(manifest).round(2).to_dict() == {"a": 10.8, "b": 12.0, "c": 14.4}
    slices_of_a[2].unlink()                                          # the third slice from the feet, lost in the export
    with pytest.raises(ScanError, match=r"bad scan 'a': .*missing slice"):
        prepare_dataset("folder", tmp_path, tmp_path / "lost", check_heads=False)
    assert not (tmp_path / "lost" / "manifest.csv").exists()
    kept = prepare_dataset("folder", tmp_path, tmp_path / "lost", skip_bad=True, check_heads=False)
    assert kept.case_id.tolist() == ["b", "c"]


def test_a_folder_of_studies_with_several_series_reads_one_series_per_scan_everywhere(tmp_path, capsys):
    """A hospital's study folder holds the head twice, in a soft-tissue and a bone kernel: ich-prepare records the
    series read (by default the soft-tissue one, whatever the bone one's number of slices; or the one labels.csv's
    `series` names) and pins it by a list of its files, so that --verify and training read that series; a folder of
    one series stays as given. A scan read from a contrast-enhanced series (a CT angiogram) is named; slice labels
    beyond the slices of the series read (labels of the other series) are refused."""
    write_dicom_series(head(6), tmp_path / "a", spacing_mm=(2.5, 0.45, 0.45), patient_id="a", series_description="Head")
    for name, brain_hu in (("b", 36), ("c", 37)):
        write_dicom_series(head(4, brain_hu=brain_hu), tmp_path / name, spacing_mm=(5.0, 0.5, 0.5), patient_id=name,
                           study_uid=f"1.2.{brain_hu}", series_description="Head 5mm", kernel="H30s", series_number=2)
        write_dicom_series(head(16, brain_hu=brain_hu), tmp_path / name, spacing_mm=(1.25, 0.5, 0.5), patient_id=name,
                           study_uid=f"1.2.{brain_hu}", series_description="Head 1mm bone", kernel="H70h",
                           series_number=3, seed=1)
    sitk.WriteImage(sitk.GetImageFromArray(head(6, brain_hu=38)), str(tmp_path / "d.nii.gz"))
    write_dicom_series(head(8, brain_hu=39), tmp_path / "e", spacing_mm=(2.0, 0.5, 0.5), series_description="CTA Head")
    pd.DataFrame({"image": ["a", "b", "c", "d.nii.gz", "e"], "label": [1, 0, 0, 1, 0],
                  "series": ["", "", "3", "", ""]}).to_csv(tmp_path / "labels.csv", index=False)
    prepare_dataset("folder", tmp_path, tmp_path / "out", check_heads=False)
    printed = capsys.readouterr().out
    assert "1 of 4 DICOM scans hold several series" in printed                # b: chosen for the user; c: named
    assert "1 scan(s) read from a contrast-enhanced series (e.g. 'e': SeriesDescription 'CTA Head')" in printed
    manifest = read_manifest(tmp_path / "out")
    assert manifest.n_slices.tolist() == [6, 4, 16, 6, 8]
    assert manifest.series_description.tolist() == ["Head", "Head 5mm", "Head 1mm bone", "", "CTA Head"]
    assert manifest.image.tolist()[0] == str((tmp_path / "a").resolve())     # one series: the folder as given
    assert [Path(image).name for image in manifest.image] == ["a", "b.txt", "c.txt", "d.nii.gz", "e"]
    for row in manifest.itertuples():                                         # every later read takes that series
        scan = read_scan(row.image)
        assert (scan.n_slices, scan.series or "") == (row.n_slices, row.series)
    verified = prepare_dataset("folder", tmp_path, tmp_path / "verified", verify_scans=True, check_heads=False)
    assert verified.n_slices.tolist() == [6, 4, 16, 6, 8]
    pd.DataFrame({"case_id": ["b", "b"], "slice_index": [2, 10], "label": [0, 0]}).to_csv(tmp_path / "slice_labels.csv",
                                                                                     index=False)
    with pytest.raises(LabelError, match=r"slice 10 of case 'b', whose scan .*b\.txt \(series 'Head 5mm'\) has 4 slices"):
        prepare_dataset("folder", tmp_path, tmp_path / "labelled", check_heads=False)   # labels of the 1 mm bone series
    (tmp_path / "slice_labels.csv").unlink()
    pd.DataFrame({"image": ["a", "d.nii.gz"], "label": [1, 1], "series": ["", "2"]}).to_csv(tmp_path / "labels.csv",
                                                                                        index=False)
    with pytest.raises(LabelError, match=r"series '2' named for .*d.nii.gz, which is not a DICOM series"):
        prepare_dataset("folder", tmp_path, tmp_path / "wrong", check_heads=False)
    pd.DataFrame({"image": ["a", "b"], "label": [1, 0], "series": ["", "lung"]}).to_csv(tmp_path / "labels.csv",
                                                                                     index=False)
    with pytest.raises(ScanError, match=r"bad scan 'b': .*no series matches 'lung'; available: .*Head 1mm bone"):
        prepare_dataset("folder", tmp_path, tmp_path / "wrong", check_heads=False)


# ---------------------------------------------------------------------- sources
@pytest.mark.skipif(not CT_ICH.exists(), reason="CT-ICH copy not present")
def test_ct_ich_real_release(tmp_path):
    manifest = prepare_dataset("ct-ich", CT_ICH, tmp_path, n_folds=5)
    assert len(manifest) == 62 and manifest.label.sum() == 27 and (manifest.label == 0).sum() == 35
    assert all(Path(i).is_absolute() and Path(i).is_dir() for i in manifest.image)
    slices = read_slice_labels(tmp_path)
    diagnosis = pd.read_csv(CT_ICH / "hemorrhage_diagnosis.csv", encoding="utf-8-sig")
    assert len(slices) == len(diagnosis) and slices.slice_index.min() == 0
    assert slices.label.sum() == (diagnosis.No_Hemorrhage == 0).sum()
    assert manifest[manifest.label == 1].subtypes.str.len().gt(0).all()
    assert (manifest[manifest.label == 0].subtypes == "").all()
    splits = pd.read_csv(tmp_path / "splits.csv", dtype={"patient_id": str})
    assert sorted(splits.fold.unique()) == [0, 1, 2, 3, 4] and set(splits.patient_id) == set(manifest.patient_id)
    one = manifest.iloc[0]
    assert read_scan(one.image).n_slices == one.n_slices == (slices.case_id == one.case_id).sum()


def test_ct_ich_nifti_layout(tmp_path):
    (tmp_path / "ct_scans").mkdir(); (tmp_path / "masks").mkdir()
    rows = []
    for number, positive in [(49, True), (50, False)]:
        volume = head(4, 48); volume[0][volume[0] == 35] = -1000           # lowest slice: no brain
        volume[0, 0, 0] = -number                                          # two patients, two scans
        sitk.WriteImage(sitk.GetImageFromArray(volume), str(tmp_path / f"ct_scans/{number:03d}.nii"))
        sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 48, 48), np.uint8)), str(tmp_path / f"masks/{number:03d}.nii"))
        for s in range(1, 5):
            bleed = positive and s == 3
            rows.append({"PatientNumber": number, "SliceNumber": s, "Intraventricular": 0, "Intraparenchymal": int(bleed),
                         "Subarachnoid": 0, "Epidural": 0, "Subdural": 0, "No_Hemorrhage": int(not bleed),
                         "Fracture_Yes_No": 0})
    (tmp_path / "hemorrhage_diagnosis_raw_ct.csv").write_text(pd.DataFrame(rows).to_csv(index=False), encoding="utf-8-sig")
    manifest = prepare_dataset("ct-ich", tmp_path, tmp_path / "out", cavity=True, check_heads=False)
    assert manifest.set_index("case_id").label.to_dict() == {"ctich-049": 1, "ctich-050": 0}
    assert manifest.subtypes.tolist() == ["IPH", ""] and manifest["mask"].str.endswith("049.nii").iloc[0]
    plain = prepare_dataset("ct-ich", tmp_path, tmp_path / "plain", check_heads=False)   # no scan read: the headers'
    assert plain.spacing.tolist() == manifest.spacing.tolist() == ["1,1,1"] * 2
    slices = read_slice_labels(tmp_path / "out")
    assert slices.query("label == 1").slice_index.tolist() == [2]
    assert slices.groupby("slice_index").cranial_cavity.min().tolist() == [0, 1, 1, 1]
    table = pretraining_slices(manifest.assign(split="train"), slices, split="train")
    assert table.query("label == 0").slice_index.tolist() == [1, 2, 3]      # from the negative scan only
    assert table.query("label == 1").case_id.tolist() == ["ctich-049"]


def write_rsna(root, scans):
    """scans: list of (patient_id, n_slices, positive slice index or None, subtype)."""
    rows = []
    (root / "stage_2_train").mkdir(parents=True)
    for number, (patient, n_slices, positive_index, subtype) in enumerate(scans):
        paths = write_dicom_series(head(n_slices, brain_hu=30 + number), root / "tmp" / str(number), patient_id=patient,
                                   seed=number,
                                   feet_first=number % 2 == 1)
        for path in paths:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            index = round((float(ds.ImagePositionPatient[2]) + 40) / 5)
            path.rename(root / "stage_2_train" / f"ID_{ds.SOPInstanceUID}.dcm")
            for kind in RSNA_TYPES:
                rows.append({"ID": f"ID_{ds.SOPInstanceUID}_{kind}",
                             "Label": int(index == positive_index and kind in (subtype, "any"))})
    pd.DataFrame(rows).sample(frac=1, random_state=0).to_csv(root / "stage_2_train.csv", index=False)


def test_rsna_layout(tmp_path):
    write_rsna(tmp_path / "rsna", [("ID_a", 5, 3, "subdural"), ("ID_a", 4, None, None), ("ID_b", 6, 0, "epidural"),
                                   ("ID_c", 5, None, None)])
    manifest = prepare_dataset("rsna", tmp_path / "rsna", tmp_path / "out", verify_scans=True, check_heads=False)
    assert len(manifest) == 4 and sorted(manifest.label) == [0, 0, 1, 1]
    assert sorted(manifest.subtypes) == ["", "", "EDH", "SDH"]
    slices = read_slice_labels(tmp_path / "out").merge(manifest[["case_id", "subtypes"]], on="case_id")
    assert slices.query("label == 1").set_index("subtypes").slice_index.to_dict() == {"SDH": 3, "EDH": 0}
    for row in manifest.itertuples():
        assert row.image.endswith(".txt") and not Path(row.image).is_absolute()
        scan = read_scan(tmp_path / "out" / row.image)
        assert scan.n_slices == row.n_slices and scan.volume.shape[1:] == (24, 24)
    assert manifest.field_of_view_mm.tolist() == [12.0] * 4                  # 24 pixels of 0.5 mm
    splits = pd.read_csv(tmp_path / "out/splits.csv")
    assert sorted(splits.patient_id) == ["ID_a", "ID_b", "ID_c"]


def test_cq500_layout(tmp_path):
    root = tmp_path / "cq500"
    reads = []
    for number, votes in enumerate([(1, 1, 0), (0, 1, 0)]):
        study = root / f"CQ500CT{number} CQ500CT{number}" / "Unknown Study"
        write_dicom_series(head(8, brain_hu=30 + number), study / "CT PLAIN THIN", spacing_mm=(0.625, 0.5, 0.5),
                           patient_id=f"CQ500-CT-{number}",
                           series_description="CT PLAIN THIN", seed=number * 10)
        write_dicom_series(head(2), study / "CT Plain", spacing_mm=(5.0, 0.5, 0.5), series_description="CT Plain",
                           seed=number * 10 + 1)
        write_dicom_series(head(10), study / "CT BONE", spacing_mm=(0.5, 0.5, 0.5), series_description="CT BONE",
                           kernel="BONE", seed=number * 10 + 2)
        write_dicom_series(head(12), study / "CT 0.5mm", spacing_mm=(0.5, 0.5, 0.5), series_description="CT 0.5mm",
                           kernel="H70h", seed=number * 10 + 3)          # sharp kernel, not named 'bone'
        write_dicom_series(head(3), study / "SCOUT", spacing_mm=(0.3, 0.5, 0.5), modality="OT",
                           series_description="SCOUT", seed=number * 10 + 4)
        write_dicom_series(head(14, brain_hu=40 + number), study / "CT POST CONTRAST", spacing_mm=(0.5, 0.5, 0.5),
                           series_description="CT POST CONTRAST THIN", seed=number * 10 + 5)  # thinner, with contrast
        row = {"name": f"CQ500-CT-{number}", "Category": "B1"}
        for k, vote in zip((1, 2, 3), votes):
            row[f"R{k}:ICH"] = vote
            for subtype in ["IPH", "IVH", "SDH", "EDH", "SAH"]:
                row[f"R{k}:{subtype}"] = int(vote and subtype == "SDH")
            row[f"R{k}:Fracture"] = 0
        reads.append(row)
    pd.DataFrame(reads).to_csv(root / "reads.csv", index=False)
    manifest = prepare_dataset("cq500", root, tmp_path / "out", verify_scans=True, check_heads=False)
    assert manifest.set_index("case_id").label.to_dict() == {"CQ500-CT-0": 1, "CQ500-CT-1": 0}   # majority
    assert manifest.subtypes.tolist() == ["SDH", ""]
    assert manifest.field_of_view_mm.tolist() == [12.0, 12.0]           # 24 pixels of 0.5 mm, from the headers
    assert all(image.endswith("CT PLAIN THIN") for image in manifest.image)
    assert manifest.n_slices.tolist() == [8, 8]
    unverified = prepare_dataset("cq500", root, tmp_path / "unverified", check_heads=False)   # headers alone
    assert unverified.spacing.tolist() == manifest.spacing.tolist() == ["0.625,0.5,0.5"] * 2


def test_synthetic_source(tmp_path):
    (tmp_path / "images").mkdir()
    rows, slice_rows = [], []
    for i in range(6):
        sitk.WriteImage(sitk.GetImageFromArray(head(4)), str(tmp_path / f"images/case{i}.nii.gz"))
        rows.append({"case_id": f"case{i}", "patient_id": f"pat{i}", "image": f"images/case{i}.nii.gz",
                     "label": i % 2, "subtypes": "SDH" if i % 2 else "", "source": "synthetic"})
        for s in range(4):
            slice_rows.append({"case_id": f"case{i}", "slice_index": s, "label": int(i % 2 and s == 2),
                               "cranial_cavity": int(s > 0)})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    pd.DataFrame(slice_rows).to_csv(tmp_path / "slice_labels.csv", index=False)
    manifest = prepare_dataset("synthetic", tmp_path, tmp_path)
    assert manifest.image[0] == "images/case0.nii.gz"
    assert (tmp_path / "splits.csv").exists()
    elsewhere = prepare_dataset("synthetic", tmp_path, tmp_path / "elsewhere")
    assert Path(elsewhere.image[0]).is_absolute() and Path(elsewhere.image[0]).exists()
    # pre-training slices: positives labelled, negatives from negative scans with a visible cavity only
    everything = manifest.assign(split="train")
    table = pretraining_slices(everything, read_slice_labels(tmp_path), split="train")
    assert table.query("label == 1").case_id.tolist() == ["case1", "case3", "case5"]
    negatives = table.query("label == 0")
    assert set(negatives.case_id) == {"case0", "case2", "case4"} and 0 not in set(negatives.slice_index)
    counts = pretraining_counts(everything, {"train": table})
    assert counts.loc["train"].tolist() == [3, 3, 3, 9]
    # without the cranial_cavity column, the detector reads the scans
    detected = pretraining_slices(everything, read_slice_labels(tmp_path).drop(columns="cranial_cavity"),
                                  split="train", dataset_dir=tmp_path)
    assert len(detected.query("label == 0")) == 12


# ---------------------------------------------------------------------- cranial cavity
def test_cavity_detector_on_phantom():
    volume = head(6, 48)
    volume[0] = np.where(volume[0] > 100, 1000, -1000)                  # skull base: no brain
    volume[5] = -1000; volume[5, 20:28, 20:28] = 1000                    # vertex cap: bone only
    cavity = cranial_cavity_slices(Scan(volume, (5.0, 1.0, 1.0)))
    assert cavity.tolist() == [False, True, True, True, True, False]
    mask = cranial_cavity_mask(volume)
    assert mask[2, 24, 24] and not mask[2, 0, 0] and not (mask[2] & (volume[2] > 300)).any()
    windowed = np.stack([np.clip((volume - 0) / 80, 0, 1), np.clip((volume + 150) / 1500, 0, 1)], axis=1)
    assert cranial_cavity_slices(Scan(windowed, (5.0, 1.0, 1.0), kind="windowed"))[1:5].all()


@pytest.mark.skipif(not CT_ICH.exists(), reason="CT-ICH copy not present")
def test_cavity_detector_on_real_ct_ich():
    lowest, middle = [], []
    for patient in ["052", "080", "090"]:
        volume = read_scan(CT_ICH / "Patients_CT" / patient).volume
        cavity = cranial_cavity_mask(volume, "windowed").any(axis=(1, 2))
        lowest.append(cavity[:3].mean()); middle.append(cavity[len(cavity) // 2])
    assert all(middle) and np.mean(lowest) < 0.2
