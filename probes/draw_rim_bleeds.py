"""Probe: how do bleeds against the skull look at the network's input? Draws four validation
slices of the demo cohort with an epidural or subdural (picked from a random sample of positive
validation slices with at least 100 mm2 of bleed, seed 1) at 128 x 128 and after the 2x2 max filter
(64 x 64), in the brain window (40/80, the network's) and a subdural window (75/215), and prints the
HU of each slice's labelled blood (10th, 50th, 90th percentile). No network is run.
Run on 2026-12-02 on /tmp/fresh31/data/demo-cohort (the `make reproduce` behind reports/demo):
the epidural of synth-0388 has median 91 HU and, in the brain window, is as white as the skull.
usage: .venv/bin/python probes/draw_rim_bleeds.py [DATA_DIR] [OUT_PNG]"""
import sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import SimpleITK as sitk

from ich_study.datasets import read_manifest
from ich_study.preprocess import apply_windows, max_filter_2d

data_dir = sys.argv[1] if len(sys.argv) > 1 else "data/demo-cohort"
out = sys.argv[2] if len(sys.argv) > 2 else "runs/probe-rim-bleeds.png"
SLICES = [("synth-0381", 36), ("synth-0897", 46), ("synth-0388", 36), ("synth-0008", 24)]
manifest = read_manifest(data_dir).set_index("case_id")      # image paths made absolute, masks not
figure, axes = plt.subplots(len(SLICES), 4, figsize=(16, 4 * len(SLICES)))
for row, (case_id, index) in enumerate(SLICES):
    case = manifest.loc[case_id]
    volume = sitk.GetArrayFromImage(sitk.ReadImage(str(case["image"])))[index:index + 1]
    blood = sitk.GetArrayFromImage(sitk.ReadImage(str(Path(data_dir) / case["mask"])))[index] > 0
    print(f"{case_id} slice {index} ({case['subtypes']}): blood HU 10/50/90th percentile",
          np.percentile(volume[0][blood], [10, 50, 90]).round(1))
    filtered = max_filter_2d(volume, 2)
    panels = [(volume, (40, 80), "128 brain"), (filtered, (40, 80), "64 max filter, brain"),
              (filtered, (75, 215), "64 max filter, subdural"), (volume, (75, 215), "128 subdural")]
    for column, (image, window, title) in enumerate(panels):
        axis = axes[row, column]
        axis.imshow(apply_windows(image, [window])[0, 0], cmap="gray", vmin=0, vmax=1)
        if column == 0: axis.contour(blood, [0.5], colors="r", linewidths=0.5)
        axis.set_title(f"{case_id} s{index} {title}"); axis.axis("off")
figure.tight_layout(); figure.savefig(out, dpi=50)
print("figure:", out)
