"""Probe: how bright the bleeds stay on the network's input when `crop_mm` cuts each slice around the head.

`demo`'s 128 x 128 slices become the 64 x 64 input by the 2x2x2 max filter alone; cut to a 220 mm square (120-131
pixels of 1.68-1.84 mm) they must also be resampled to 64 x 64, and resampling averages. For every positive
validation and test scan of a synthetic cohort, the brightest brain-window value (40/80 HU, in [0, 1]) within the
bleed's footprint on the input, three ways: the whole image (as `demo` reads it), cut then filtered then resampled (as
`crop_mm` does), and cut, resampled to 128 x 128, then filtered (the max filter last). The mask is carried through
the same steps; its footprint is every input pixel it reaches. Validation and test scans only; nothing is chosen.

    .venv/bin/python probes/crop_bleed_peak.py data/demo-cohort OUT.csv [--crop-mm 220]
"""
import argparse

import numpy as np
import pandas as pd
import SimpleITK as sitk

from ich_study.preprocess import apply_windows, crop_to_head, max_filter_3d, resample_inplane

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("cohort"); parser.add_argument("out")
parser.add_argument("--crop-mm", type=float, default=220.0)
args = parser.parse_args()
manifest = pd.read_csv(f"{args.cohort}/manifest.csv").merge(pd.read_csv(f"{args.cohort}/splits.csv"), on="patient_id")
positives = manifest[(manifest.label == 1) & manifest.split.isin(["val", "test"])]
rows = []
for row in positives.itertuples():
    image = sitk.ReadImage(f"{args.cohort}/{row.image}")
    volume = sitk.GetArrayFromImage(image).astype(np.float32)
    bleed = np.where(sitk.GetArrayFromImage(sitk.ReadImage(f"{args.cohort}/{row.mask}")) > 0, 3000.0, -1000.0)
    # the mask rides along below the scan's slices, so that one call cuts both by the head's square
    square, _ = crop_to_head(np.concatenate([volume, bleed.astype(np.float32)]), image.GetSpacing()[::-1], args.crop_mm)
    n = len(volume)
    ways = {"whole image": (max_filter_3d(volume), max_filter_3d(bleed)),
            "cut, filtered, resampled": tuple(resample_inplane(max_filter_3d(part), 64) for part in (square[:n], square[n:])),
            "cut, resampled to 128, filtered": tuple(max_filter_3d(resample_inplane(part, 128)) for part in (square[:n], square[n:]))}
    for way, (network_input, footprint) in ways.items():
        brain = apply_windows(network_input, [(40, 80)])[:, 0]
        rows.append({"case_id": row.case_id, "split": row.split, "lesion_volume_ml": row.lesion_volume_ml, "way": way,
                     "peak_in_bleed": float(brain[footprint > 0].max())})
table = pd.DataFrame(rows)
table.to_csv(args.out, index=False)
table["bleed"] = np.where(table.lesion_volume_ml < 1, "under 1 mL", "1 mL or more")
print(f"{positives.shape[0]} positive validation and test scans; mean peak brain-window value in the bleed:")
print(table.pivot_table(index="way", columns="bleed", values="peak_in_bleed", aggfunc="mean").round(3).to_string())
print(table.groupby("way").peak_in_bleed.mean().round(3).to_string())
