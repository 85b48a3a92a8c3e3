"""Tests of ich_study.preprocess: max filters, windows, resampling, cache, augmentation, sampling, datasets."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from ich_study.core import ConfigError, LabelError, ScanError
from ich_study.io import Scan, read_scan
from ich_study.preprocess import (AUGMENTATIONS, Draw, PreprocessConfig, SliceDataset, VolumeDataset,
                                  apply_windows, augment, balanced_sampler, cache_path,
                                  collate_volumes, load_preprocessed, max_filter_2d, max_filter_3d,
                                  preprocess_scan, preprocessed_spacing_mm, resample_inplane, rotate_array,
                                  sample_rng, shift_array)

torch.set_num_threads(1)
CT_ICH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ct-ich"


def reference_max_filter(volume: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """Plain numpy: pad each axis with -inf up to a multiple of its size, reshape, max over blocks."""
    padded = np.pad(volume.astype(np.float64), [(0, -n % k) for n, k in zip(volume.shape, sizes)],
                    constant_values=-np.inf)
    shape = [v for n, k in zip(padded.shape, sizes) for v in (n // k, k)]
    return padded.reshape(shape).max(axis=tuple(range(1, 2 * volume.ndim, 2)))


def head(slices: int = 10, size: int = 32) -> np.ndarray:
    """Small HU head: air, skull ellipse, brain, a bright spot."""
    _, y, x = np.mgrid[:slices, :size, :size].astype(np.float32)
    radius = np.hypot((y - size / 2) / (0.42 * size), (x - size / 2) / (0.36 * size))
    volume = np.full((slices, size, size), -1000.0, np.float32)
    volume[radius < 1] = 1000.0
    volume[radius < 0.9] = 35.0
    volume[:, size // 3, size // 3] = 80.0
    return volume




def write_nifti(volume: np.ndarray, path: Path, spacing_zyx=(5.0, 0.5, 0.5)) -> Path:
    image = sitk.GetImageFromArray(volume.astype(np.int16))
    image.SetSpacing(tuple(reversed(spacing_zyx)))
    sitk.WriteImage(image, str(path))
    return path


# ---------------------------------------------------------------- config and windows
def test_config_round_trip_and_errors():
    config = PreprocessConfig(windows=[[40, 80], [80, 200]], max_filter="2x2", matrix=128)
    assert config.windows == ((40.0, 80.0), (80.0, 200.0))
    assert PreprocessConfig.from_dict(json.loads(json.dumps(asdict(config)))) == config
    assert config.channels_for("HU") == 2 and config.channels_for("windowed", 3) == 3
    for bad in [dict(max_filter="4x4"), dict(windows=()), dict(windows=((40, -1),)), dict(matrix=3.5),
                dict(cache_dtype="int8")]:
        with pytest.raises(ConfigError):
            PreprocessConfig(**bad)
    with pytest.raises(ConfigError, match="unknown keys"):
        PreprocessConfig.from_dict({"window": [[40, 80]]})


def test_windows_clip_and_scale():
    hu = np.array([[[-1000.0, 0.0, 20.0, 40.0, 60.0, 80.0, 3000.0]]], np.float32)
    out = apply_windows(hu, [(40, 80), (80, 200)])
    assert out.shape == (1, 2, 1, 7) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0, 0], [0, 0, 0.25, 0.5, 0.75, 1, 1], atol=1e-6)
    np.testing.assert_allclose(out[0, 1, 0], np.clip((hu[0, 0] + 20) / 200, 0, 1), atol=1e-6)
    already = np.random.default_rng(0).random((2, 3, 4, 4), dtype=np.float32)
    assert apply_windows(already, [(40, 80)]) is already or np.array_equal(apply_windows(already, [(40, 80)]), already)


# ---------------------------------------------------------------- max filters
@pytest.mark.parametrize("shape", [(8, 10, 12), (7, 9, 11), (1, 3, 5), (5, 2, 6, 7)])
@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_max_filters_match_numpy_reference(shape, size, dtype):
    volume = np.random.default_rng(size).integers(-1024, 3000, shape).astype(dtype)
    spatial3 = (size, 1, size, size) if len(shape) == 4 else (size,) * 3
    spatial2 = (1,) * (len(shape) - 2) + (size, size)
    out3, out2 = max_filter_3d(volume, size), max_filter_2d(volume, size)
    assert out3.dtype == dtype and out2.dtype == dtype
    np.testing.assert_array_equal(out3, reference_max_filter(volume, spatial3).astype(dtype))
    np.testing.assert_array_equal(out2, reference_max_filter(volume, spatial2).astype(dtype))
    assert out3.shape[0] == -(-shape[0] // size)   # ceil: the trailing partial block is kept


def test_max_filter_keeps_a_single_bright_voxel_and_commutes_with_windowing():
    volume = np.full((9, 11, 13), 30.0, np.float32)
    volume[8, 10, 12] = 75.0                      # in the trailing partial block of every axis
    assert max_filter_3d(volume)[4, 5, 6] == 75.0
    np.testing.assert_array_equal(apply_windows(max_filter_3d(volume), [(40, 80)])[:, 0],
                                  max_filter_3d(apply_windows(volume, [(40, 80)])[:, 0]))


# ---------------------------------------------------------------- preprocess_scan and resampling
def test_preprocess_scan_shapes_spacing_and_range():
    scan = Scan(volume=head(11, 40), spacing_mm=(5.0, 0.45, 0.45), kind="HU", source="toy")
    out = preprocess_scan(scan, PreprocessConfig(windows=((40, 80), (40, 380))))
    assert out.shape == (6, 2, 20, 20) and out.dtype == np.float32 and out.flags.c_contiguous
    assert out.min() >= 0 and out.max() <= 1
    assert preprocess_scan(scan, PreprocessConfig(max_filter="2x2")).shape == (11, 1, 20, 20)
    assert preprocess_scan(scan, PreprocessConfig(max_filter="none", matrix=16)).shape == (11, 1, 16, 16)
    assert preprocessed_spacing_mm(scan, PreprocessConfig(matrix=10)) == pytest.approx((10.0, 1.8, 1.8))
    windowed = Scan(volume=np.random.default_rng(0).random((4, 2, 8, 8), dtype=np.float32),
                               spacing_mm=(5, 1, 1), kind="windowed", source="jpg")
    np.testing.assert_array_equal(preprocess_scan(windowed, PreprocessConfig(max_filter="none")), windowed.volume)
    with pytest.raises(ScanError, match="bad.nii"):
        preprocess_scan(Scan(volume=np.zeros((4, 4)), spacing_mm=(1, 1, 1), kind="HU", source="bad.nii"), PreprocessConfig())


def test_resample_inplane_keeps_constants_and_aspect():
    constant = np.full((2, 30, 30), 35.0, np.float32)
    np.testing.assert_allclose(resample_inplane(constant, 17), 35.0, atol=1e-4)
    wide = np.zeros((1, 10, 20), np.float32)
    wide[:, :, :10] = 1.0                        # left half bright: stays the left half after square padding
    out = resample_inplane(wide, 20)
    assert out.shape == (1, 20, 20)
    assert out[0, :5].max() == 0 and out[0, 15:].max() == 0       # air padding above and below
    assert out[0, 10, 2] > 0.9 and out[0, 10, 17] < 0.1


# ---------------------------------------------------------------- cache
def test_cache_identical_arrays_and_invalidation(tmp_path):
    nifti = write_nifti(head(8, 32), tmp_path / "case.nii.gz")
    cache = tmp_path / "cache"
    config = PreprocessConfig(cache_dtype="float32")
    first = load_preprocessed(nifti, config, cache)
    np.testing.assert_array_equal(first, load_preprocessed(nifti, config))
    calls = []
    def counting_reader(path):
        calls.append(path)
        return read_scan(path)
    second = load_preprocessed(nifti, config, cache, reader=counting_reader)
    assert calls == [] and second.dtype == np.float32
    np.testing.assert_array_equal(first, second)
    half = load_preprocessed(nifti, PreprocessConfig(), cache)        # float16 on disk
    np.testing.assert_allclose(half, first, atol=3e-4)
    assert half.dtype == np.float32
    assert len(list(cache.glob("*.npy"))) == 2
    load_preprocessed(nifti, PreprocessConfig(max_filter="2x2", cache_dtype="float32"), cache, reader=counting_reader)
    assert len(calls) == 1                                                               # config change: new entry
    old = cache_path(nifti, config, cache)
    write_nifti(head(8, 32) + 10, nifti)                                                 # edited scan
    os.utime(nifti, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    assert cache_path(nifti, config, cache) != old
    third = load_preprocessed(nifti, config, cache, reader=counting_reader)
    assert len(calls) == 2 and not np.array_equal(third, first)
    assert not [p for p in cache.iterdir() if ".partial" in p.name]                      # no debris
    mapped, spacing = load_preprocessed(nifti, config, cache, with_spacing=True, mmap=True)
    assert isinstance(mapped, np.memmap) and spacing == (10.0, 1.0, 1.0)


def test_the_cache_of_a_listed_series_follows_its_files(tmp_path):
    """A scan given as a .txt list of a series' files (`ich-prepare` writes them for study folders of several series)
    is cached under a key of the list and of every file it lists: a DICOM file edited or lost is seen."""
    from ich_study.io import write_dicom_series
    paths = write_dicom_series(head(8, 32), tmp_path / "study", spacing_mm=(5.0, 1.0, 1.0))
    listed = tmp_path / "case.txt"
    listed.write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
    config = PreprocessConfig(cache_dtype="float32")
    first = cache_path(listed, config, tmp_path / "cache")
    assert cache_path(listed, config, tmp_path / "cache") == first
    os.utime(paths[3], ns=(time.time_ns(), time.time_ns() + 2 * 10**9))                # one slice written again
    assert cache_path(listed, config, tmp_path / "cache") != first
    paths[5].unlink()
    with pytest.raises(ScanError, match=rf"{paths[5].name}: no such file \(listed in .*case.txt\)"):
        load_preprocessed(listed, config, tmp_path / "cache")


def test_missing_source_is_a_scan_error(tmp_path):
    with pytest.raises(ScanError, match="missing.nii.gz"):
        load_preprocessed(tmp_path / "missing.nii.gz", PreprocessConfig(), tmp_path / "cache")


# ---------------------------------------------------------------- augmentation
def windowed_head(slices=12, size=32) -> np.ndarray:
    return apply_windows(head(slices, size), [(40, 80), (40, 380)])


def test_augmentation_choices_are_equally_likely_and_keep_shape():
    volume = windowed_head()
    counts = dict.fromkeys(AUGMENTATIONS, 0)
    for seed in range(200):
        out, choice = augment(volume, np.random.default_rng(seed), (5.0, 0.5, 0.5), return_choice=True)
        assert out.shape == volume.shape and out.dtype == np.float32
        assert out.min() >= volume.min() - 1e-6 and out.max() <= volume.max() + 1e-6
        counts[choice["augmentation"]] += 1
        if choice["augmentation"] == "original":
            np.testing.assert_array_equal(out, volume)
        elif choice["augmentation"] == "mirror":
            np.testing.assert_array_equal(out, volume[..., ::-1])       # exact flip over the vertical axis
        elif choice["augmentation"] == "rotate":
            assert -25 <= choice["degrees"] <= 25 and choice["axis"] in (0, 1, 2)
        else:
            shifts = choice["shift_voxels"]
            assert set(shifts) == {0, 2, 3} and abs(shifts[2]) <= 3 and abs(shifts[0]) <= 1   # 10% of 32 / 12
    assert all(30 <= n <= 70 for n in counts.values()), counts


def test_shift_fills_with_minimum_not_reflection():
    image = windowed_head()[6] + 0.1                              # (C, H, W), min 0.1 (no exact zeros)
    out = shift_array(image, {1: 4, 2: -5}, image.min(axis=(1, 2)))
    np.testing.assert_array_equal(out[:, 4:, :-5], image[:, :-4, 5:])
    for channel in range(2):
        assert np.all(out[channel, :4] == image[channel].min()) and np.all(out[channel, :, -5:] == image[channel].min())
    big = np.arange(2 * 3 * 40 * 40, dtype=np.float32).reshape(2, 3, 40, 40)
    rng_shifted = [augment(big[0], np.random.default_rng(s), return_choice=True) for s in range(40)]
    for out, choice in rng_shifted:
        if choice["augmentation"] == "shift":
            dy, dx = choice["shift_voxels"][1], choice["shift_voxels"][2]
            assert abs(dy) <= 4 and abs(dx) <= 4
            if dy > 0:
                assert np.all(out[:, :dy] == big[0].min(axis=(1, 2))[:, None, None])


def test_rotation_is_a_rotation_and_fills_with_air():
    volume = np.random.default_rng(0).random((16, 2, 16, 16), dtype=np.float32) + 0.5
    quarter = rotate_array(volume, 90.0, axis=0)                              # about z: in-plane
    assert any(np.allclose(quarter, np.rot90(volume, k, axes=(2, 3)), atol=1e-4) for k in (1, -1))
    quarter_x = rotate_array(volume, 90.0, axis=2)                            # about x: the (z, y) plane turns
    assert any(np.allclose(quarter_x, np.rot90(volume, k, axes=(0, 2)), atol=1e-4) for k in (1, -1))
    tilted = rotate_array(volume, 25.0, axis=0)
    assert np.all(tilted[:, :, 0, 0] == volume.min(axis=(0, 2, 3)))          # corners come from outside: air
    # physical space: with 4 mm slices and 1 mm pixels a tilt about x moves rows across far fewer slices
    thin = np.zeros((9, 1, 33, 33), np.float32)
    thin[4, 0, :, :] = 1.0                                                    # one axial plane
    voxel = rotate_array(thin, 20.0, axis=2)
    physical = rotate_array(thin, 20.0, axis=2, spacing_mm=(4.0, 1.0, 1.0))
    assert (physical[:, 0, 16, 16] > 0.5).sum() == 1 and physical[4, 0, 16, 16] > 0.9
    # +-16 mm in y tilted by 20 degrees is +-5.8 mm in z: about 3 of the 4 mm slices, not all 9 as in voxel space
    assert (physical[:, 0].max(axis=(1, 2)) > 0.3).sum() <= 5 and (voxel[:, 0].max(axis=(1, 2)) > 0.3).sum() == 9
    slice_out = rotate_array(volume[3], 90.0)
    assert any(np.allclose(slice_out, np.rot90(volume[3], k, axes=(1, 2)), atol=1e-4) for k in (1, -1))


def test_augmentation_is_seeded():
    volume = windowed_head()
    for seed in range(8):
        a = augment(volume, sample_rng(3, 5, seed))
        b = augment(volume, sample_rng(3, 5, seed))
        np.testing.assert_array_equal(a, b)
    assert sample_rng(0, Draw(5, 7)).random() == sample_rng(0, 5, 7).random()


# ---------------------------------------------------------------- sampling
def test_balanced_sampler_draws_half_positives_and_is_seeded():
    labels = np.array([1] * 7 + [0] * 193)
    sampler = balanced_sampler(labels, 4000, seed=11)
    epoch0 = list(sampler)
    assert len(epoch0) == len(sampler) == 4000
    assert abs(labels[np.array(epoch0)].mean() - 0.5) < 0.04
    assert len(set(int(i) for i in epoch0 if labels[i] == 1)) == 7              # with replacement, all used
    assert [int(i) for i in balanced_sampler(labels, 4000, seed=11)] == [int(i) for i in epoch0]
    assert [int(i) for i in balanced_sampler(labels, 4000, seed=12)] != [int(i) for i in epoch0]
    epoch1 = list(sampler)
    assert [int(i) for i in epoch1] != [int(i) for i in epoch0]
    sampler.set_epoch(1)
    assert [int(i) for i in sampler] == [int(i) for i in epoch1]
    assert len({d.draw for d in epoch0 + epoch1}) == 8000
    with pytest.raises(LabelError):
        balanced_sampler([1, 1], 4, seed=0)
    with pytest.raises(LabelError):
        balanced_sampler([0, 2], 4, seed=0)


# ---------------------------------------------------------------- datasets
@pytest.fixture
def cohort(tmp_path):
    rows = []
    for number, slices in enumerate([8, 11, 9, 10]):
        path = write_nifti(head(slices, 32), tmp_path / f"case{number}.nii.gz")
        rows.append({"case_id": f"c{number}", "image": str(path), "label": number % 2})
    return pd.DataFrame(rows), tmp_path / "cache"


def test_volume_dataset_items_and_worker_determinism(cohort):
    manifest, cache = cohort
    dataset = VolumeDataset(manifest, PreprocessConfig(), augment=True, cache_dir=cache, seed=5)
    item = dataset[1]
    assert item["volume"].shape == (6, 1, 16, 16) and item["volume"].dtype == torch.float32
    assert item["label"].shape == () and item["label"].dtype == torch.float32 and item["label"].item() == 1.0
    assert item["case_id"] == "c1"

    def run(workers):
        loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=workers, collate_fn=collate_volumes,
                                             sampler=balanced_sampler(dataset.labels, 8, seed=2))
        return [(b["case_id"][0], b["volume"]) for b in loader]
    serial, parallel = run(0), run(2)
    assert [c for c, _ in serial] == [c for c, _ in parallel]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(serial, parallel))
    assert serial[0][1].shape[:2] == (1, len(dataset[int(manifest.index[manifest.case_id == serial[0][0]][0])]["volume"]))
    plain = VolumeDataset(manifest, PreprocessConfig(), cache_dir=cache)
    torch.testing.assert_close(plain[0]["volume"], torch.from_numpy(load_preprocessed(manifest.image[0], PreprocessConfig(), cache)))


def test_slice_dataset_items(cohort):
    manifest, cache = cohort
    table = pd.DataFrame([{"case_id": r.case_id, "image": r.image, "slice_index": s, "label": int(s > 3)}
                          for r in manifest.itertuples() for s in range(8)])
    config = PreprocessConfig(max_filter="2x2")
    for cache_dir in (None, cache):
        dataset = SliceDataset(table, config, augment=False, cache_dir=cache_dir)
        item = dataset[13]
        assert item["image"].shape == (1, 16, 16) and item["image"].dtype == torch.float32
        assert (item["case_id"], item["slice_index"], item["label"].item()) == ("c1", 5, 1.0)
        expected = preprocess_scan(read_scan(manifest.image[1]), config)[5]
        torch.testing.assert_close(item["image"], torch.from_numpy(expected), atol=3e-4, rtol=0)
    augmented = SliceDataset(table, config, augment=True, cache_dir=cache, seed=1)
    batch = next(iter(torch.utils.data.DataLoader(augmented, batch_size=25,
                                                  sampler=balanced_sampler(augmented.labels, 50, seed=0))))
    assert batch["image"].shape == (25, 1, 16, 16) and batch["label"].shape == (25,)
    for merges_slices in ("2x2x2", "1x1x2"):
        with pytest.raises(ConfigError, match="per-slice max filter"):
            SliceDataset(table, PreprocessConfig(max_filter=merges_slices))
    out_of_range = table.assign(slice_index=99)
    with pytest.raises(LabelError, match="slice_index 99"):
        SliceDataset(out_of_range, config)[0]
    with pytest.raises(LabelError):
        SliceDataset(table.assign(label=2), config)
    with pytest.raises(ScanError, match="nowhere.nii.gz"):
        SliceDataset(table.assign(image="/nowhere.nii.gz"), config)
    with pytest.raises(ScanError, match="do not exist"):
        VolumeDataset(manifest.assign(image="relative/case.nii.gz"), config)


def test_collate_volumes(cohort):
    manifest, cache = cohort
    dataset = VolumeDataset(manifest, PreprocessConfig(), cache_dir=cache)
    batch = collate_volumes([dataset[0]])
    assert batch["volume"].shape == (1, 4, 1, 16, 16) and batch["label"].shape == (1,) and batch["case_id"] == ["c0"]
    with pytest.raises(ConfigError, match="batch_size=1"):
        collate_volumes([dataset[0], dataset[1]])


def test_real_ct_ich_scan_through_io(tmp_path):
    patients = sorted((CT_ICH / "Patients_CT").glob("*")) if CT_ICH.exists() else []
    if not patients:
        pytest.skip("CT-ICH data not available")
    config = PreprocessConfig(matrix=128)
    array = load_preprocessed(patients[0], config, tmp_path)
    scan = read_scan(patients[0])
    assert array.shape == (-(-len(scan.volume) // 2), config.channels_for(scan.kind, scan.volume.shape[1]), 128, 128)
    assert array.dtype == np.float32 and 0 <= array.min() and array.max() <= 1
