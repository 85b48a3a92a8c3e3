"""The slice CNN's most confident errors on its validation slices, drawn: the six negative slices it scores
highest, its three most confident true positives and the three positives it scores lowest (bleed outlined in
red, brain window 0-80 HU, z = height in the scan from 0 at the bottom). Reads the run's predictions_val.csv
(the validation slices it was chosen on), so no network is run.
usage: look_errors.py RUN_DIR OUT.png   (PROBE_DATA: the dataset folder)"""
import os, sys
import numpy as np, pandas as pd, SimpleITK as sitk, matplotlib
matplotlib.use("Agg"); import matplotlib.pyplot as plt
from ich_study.datasets import read_manifest, read_slice_labels, resolve_image

data_dir = os.environ.get("PROBE_DATA", "data/demo-cohort")
run_dir, out = sys.argv[1], sys.argv[2]
manifest = read_manifest(data_dir).set_index("case_id")
predictions = pd.read_csv(f"{run_dir}/predictions_val.csv").merge(
    read_slice_labels(data_dir)[["case_id", "slice_index", "lesion_mm2"]], on=["case_id", "slice_index"])
negatives, positives = predictions[predictions.label == 0], predictions[predictions.label == 1]
shown = pd.concat([negatives.nlargest(6, "probability"), positives.nlargest(3, "probability"),
                   positives.nsmallest(3, "probability")])
figure, axes = plt.subplots(2, 6, figsize=(18, 6.5))
for axis, row in zip(axes.flat, shown.itertuples()):
    case = manifest.loc[row.case_id]
    image = sitk.GetArrayFromImage(sitk.ReadImage(case.image))[row.slice_index]
    axis.imshow(np.clip(image / 80, 0, 1), cmap="gray"); axis.axis("off")
    if row.label == 1:
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(resolve_image(case["mask"], data_dir))))[row.slice_index]
        axis.contour(mask > 0, colors="r", linewidths=0.6)
    axis.set_title(f"{'ICH' if row.label else 'no ICH'}  p={row.probability:.2f}  z={row.slice_index / case.n_slices:.2f}"
                   f"  {row.lesion_mm2:.0f} mm2", fontsize=9)
figure.tight_layout(); figure.savefig(out, dpi=55)
print(out)
