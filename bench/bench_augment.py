"""Benchmark: our augmentation (SimpleITK Resample) against TorchIO's RandomAffine, and the max filters.

Usage:  .venv/bin/python bench/bench_augment.py [--threads 1] [--repeats 3]

TorchIO is not a dependency of the study. If it is importable the script compares against it;
otherwise it says so and compares against torch `affine_grid` + `grid_sample` instead. To run
the comparison without touching the study's environment, install TorchIO into a separate
folder and put it on the path only for this script:

    .venv/bin/python -m pip install --no-deps --target /tmp/torchio_site torchio nibabel \
        deprecated humanize wrapt typer rich einops jaxtyping wadler_lindig
    PYTHONPATH=/tmp/torchio_site .venv/bin/python bench/bench_augment.py

Every number printed is the best of `--repeats` runs, all measured in this one run; the ratios
compare timings of the same job on the same volume (256 x 256 x 160 for augmentation,
512 x 512 x 320 int16 for the max filters).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from ich_study.preprocess import (apply_windows, augment, max_filter_2d, max_filter_3d, rotate_array,
                                  shift_array)


def best_of(function, repeats: int) -> float:
    """Smallest wall time in seconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def head_volume(slices: int, size: int, seed: int = 0) -> np.ndarray:
    """A (slices, size, size) HU volume: air, skull ellipse, brain with noise."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[:slices, :size, :size]
    radius = np.sqrt(((y - size / 2) / (0.42 * size)) ** 2 + ((x - size / 2) / (0.36 * size)) ** 2
                     + ((z - slices / 2) / (0.6 * slices)) ** 2)
    volume = np.full((slices, size, size), -1000.0, np.float32)
    volume[radius < 1.0] = 1000.0
    brain = radius < 0.9
    volume[brain] = 35.0 + 5.0 * rng.standard_normal(int(brain.sum())).astype(np.float32)
    return volume


def torch_rotate(volume: np.ndarray, degrees: float) -> np.ndarray:
    """Rotation about the slice axis with torch affine_grid + grid_sample (zeros padding = air for [0, 1])."""
    angle = np.deg2rad(degrees)
    theta = torch.tensor([[[np.cos(angle), -np.sin(angle), 0, 0], [np.sin(angle), np.cos(angle), 0, 0],
                           [0, 0, 1, 0]]], dtype=torch.float32)
    tensor = torch.from_numpy(volume)[None].permute(0, 2, 1, 3, 4).contiguous()        # (1, C, S, H, W)
    grid = F.affine_grid(theta, tensor.shape, align_corners=False)
    out = F.grid_sample(tensor, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.permute(0, 2, 1, 3, 4)[0].numpy()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and SimpleITK threads (default 1)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(args.threads)
    print(f"threads: {args.threads}, repeats: {args.repeats} (best of), torch {torch.__version__}, "
          f"SimpleITK {sitk.Version_VersionString()}")

    # ------------------------------------------------ augmentation on 256 x 256 x 160
    volume = apply_windows(head_volume(160, 256), [(40, 80)])                        # (160, 1, 256, 256)
    print(f"\naugmentation, volume (S, C, H, W) = {volume.shape}")
    ours_rotate = best_of(lambda: rotate_array(volume, 20.0, axis=0), args.repeats)
    ours_rotate_x = best_of(lambda: rotate_array(volume, 20.0, axis=2, spacing_mm=(1.0, 0.86, 0.86)), args.repeats)
    ours_shift = best_of(lambda: shift_array(volume, {0: 7, 2: -11, 3: 13}, 0.0), args.repeats)
    ours_mirror = best_of(lambda: np.ascontiguousarray(volume[..., ::-1]), args.repeats)
    rng = np.random.default_rng(0)
    ours_random = best_of(lambda: [augment(volume, rng) for _ in range(8)], 1) / 8
    print(f"  ours  rotate 20 deg about z (SimpleITK Euler3D, linear): {ours_rotate:.3f} s")
    print(f"  ours  rotate 20 deg about x, physical spacing:           {ours_rotate_x:.3f} s")
    print(f"  ours  shift (integer voxels, exact):                     {ours_shift:.3f} s")
    print(f"  ours  mirror (exact flip):                               {ours_mirror:.3f} s")
    print(f"  ours  augment, mean of 8 random draws:                   {ours_random:.3f} s")
    torch_time = best_of(lambda: torch_rotate(volume, 20.0), args.repeats)
    print(f"  torch affine_grid + grid_sample rotate about z:          {torch_time:.3f} s"
          f"  (ours is {torch_time / ours_rotate:.1f}x faster)")
    try:
        import torchio as tio
    except ImportError:
        print("  TorchIO is not installed: compared against torch affine_grid + grid_sample only "
              "(see this script's docstring to install TorchIO outside the study's environment)")
    else:
        subject = tio.ScalarImage(tensor=torch.from_numpy(volume[:, 0]).permute(2, 1, 0)[None].contiguous(),
                                  affine=np.diag([1.0, 1.0, 1.0, 1.0]))
        fixed = tio.Affine(scales=(1, 1, 1), degrees=(0, 0, 20), translation=(0, 0, 0),
                           image_interpolation="linear", default_pad_value="minimum")
        random_affine = tio.RandomAffine(scales=0, degrees=(0, 0, 0, 0, -25, 25), translation=0,
                                         image_interpolation="linear", default_pad_value="minimum")
        tio_fixed = best_of(lambda: fixed(subject), args.repeats)
        tio_random = best_of(lambda: random_affine(subject), args.repeats)
        print(f"  TorchIO {tio.__version__} Affine rotate 20 deg about z:            {tio_fixed:.3f} s"
              f"  (ours is {tio_fixed / ours_rotate:.1f}x faster)")
        print(f"  TorchIO RandomAffine (rotation in [-25, 25] about z):    {tio_random:.3f} s"
              f"  (ours is {tio_random / ours_rotate:.1f}x faster)")

    # ------------------------------------------------ max filters on 512 x 512 x 320 int16
    hu = np.random.default_rng(1).integers(-1024, 3000, (320, 512, 512)).astype(np.int16)
    print(f"\nmax filter 2x2x2, volume {hu.shape} int16")
    slices, height, width = hu.shape

    def reshape_max():
        return hu.reshape(slices // 2, 2, height // 2, 2, width // 2, 2).max(axis=(1, 3, 5))

    def torch_amax():
        return torch.from_numpy(hu).view(slices // 2, 2, height // 2, 2, width // 2, 2).amax(dim=(1, 3, 5)).numpy()

    def sitk_maximum():
        parts = [sitk.GetImageFromArray(np.ascontiguousarray(hu[i::2, j::2, k::2]))
                 for i in (0, 1) for j in (0, 1) for k in (0, 1)]
        out = parts[0]
        for part in parts[1:]: out = sitk.Maximum(out, part)
        return sitk.GetArrayFromImage(out)

    def torch_max_pool():
        return F.max_pool3d(torch.from_numpy(hu.astype(np.float32))[None, None], 2, 2, ceil_mode=True)[0, 0].numpy()

    reference = reshape_max()
    rows = [("numpy reshape + max", reshape_max), ("torch amax on a view", torch_amax),
            ("SimpleITK Maximum of 8 strided sub-images", sitk_maximum), ("torch max_pool3d (float32)", torch_max_pool),
            ("ours: per-axis strided np.maximum (max_filter_3d)", lambda: max_filter_3d(hu, 2))]
    timings = {}
    for name, function in rows:
        assert np.array_equal(function(), reference), name
        timings[name] = best_of(function, args.repeats)
    ours = timings[rows[-1][0]]
    for name, seconds in timings.items():
        print(f"  {name:<52s} {seconds:.3f} s  ({seconds / ours:.1f}x ours)")
    as_float = hu.astype(np.float32)
    print(f"  ours on float32:                                     {best_of(lambda: max_filter_3d(as_float), args.repeats):.3f} s")
    print(f"  ours 2x2 per slice (max_filter_2d), int16:           {best_of(lambda: max_filter_2d(hu), args.repeats):.3f} s")


if __name__ == "__main__":
    main()
