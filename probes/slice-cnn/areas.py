"""Bleed area in pixels of every positive slice of the cohort (from its masks): {PROBE_OUT}/areas.csv."""
import numpy as np, pandas as pd, SimpleITK as sitk
import os; d=os.environ.get("PROBE_DATA", "data/demo-cohort"); out=os.environ.get("PROBE_OUT", "runs/probe-slice-cnn"); os.makedirs(out, exist_ok=True); m=pd.read_csv(f"{d}/manifest.csv"); rows=[]
for r in m[m.label==1].itertuples():
    mask=sitk.GetArrayFromImage(sitk.ReadImage(f"{d}/{r.mask}"))>0
    for k,a in enumerate(mask.sum((1,2))):
        if a: rows.append((r.case_id,k,int(a)))
pd.DataFrame(rows,columns=["case_id","slice_index","area_px"]).to_csv(f"{out}/areas.csv",index=False)
