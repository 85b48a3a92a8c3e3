#!/usr/bin/env bash
# Probe: why does the demo's slice CNN learn so slowly, and what speeds it up? Each variant trains
# the stage-1 CNN for 1,500 batches of 25 (Adam 1e-4 unless lr=, 64 x 64 after the 2x2 max filter,
# seed 0) on the 900-scan demo cohort of generator 1.1, and is scored on validation data only:
# the slice AUC on all 2,925 validation slices (sliceauc.py, also by the bleed's area) and the scan
# AUC of the CNN maximum on the 90 validation scans (evalck.py). About 3 min per variant with two
# torch threads; run it alone on the machine. These are the commands that were run (2026-11-29),
# one after another; the scripts were then moved here with their data and output paths made
# PROBE_DATA / PROBE_OUT. Since then sliceauc.py reads each checkpoint's preprocessing (it was fixed
# to 64 x 64, which every checkpoint before the 128 x 128 one had), evalck.py reads the split with
# ich_study's read_manifest / load_splits / assign_split, and cnn_variant.py scores scans with
# evalck.scan_aucs instead of its own copy; rerun on the same checkpoints they print the same numbers. min_area=10 (pixels of 1.6-1.9 mm) became the
# stage's min_lesion_mm2 = 30 (profiles/demo.toml), which reads the area from slice_labels.csv.
# usage: PROBE_DATA=data/demo-cohort probes/slice-cnn/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
py=.venv/bin/python
here=probes/slice-cnn
export PROBE_DATA=${PROBE_DATA:-data/demo-cohort} PROBE_OUT=${PROBE_OUT:-runs/probe-slice-cnn}
$py $here/areas.py
$py $here/cnn_variant.py base 1500
$py $here/cnn_variant.py bn 1500                        # BatchNorm after every convolution
$py $here/cnn_variant.py avg 1500 max_filter=none       # antialiased resize 128 -> 64 instead of the max filter
$py $here/cnn_variant.py area10 1500 min_area=10        # positive slices with under 10 bleed pixels left out
$py $here/cnn_variant.py bn-nodrop 1500 lr=3e-4         # BatchNorm, no dropout, Adam 3e-4
$py $here/cnn_variant.py f32 1500 precision=float32     # float32 instead of bf16 autocast
$py $here/cnn_variant.py area30 1500 min_area=30
runs=$PROBE_OUT/runs
$py $here/evalck.py $runs/cnn-base-1500/last.pt,$runs/cnn-area10-1500/last.pt,$runs/cnn-f32-1500/last.pt
$py $here/sliceauc.py $runs/cnn-base-1500/last.pt $runs/cnn-area10-1500/last.pt $runs/cnn-area30-1500/last.pt
# A demo run's slice CNN (6,000 batches; runs/demo/cnn of the clone that ran `make reproduce`):
# run on the CNN of commit ae44279 (every positive slice) and on that of the committed report
# (min_lesion_mm2 = 30; evalck.py only for this one).
$py $here/sliceauc.py runs/demo/cnn/best.pt runs/demo/cnn/last.pt
$py $here/evalck.py runs/demo/cnn/best.pt,runs/demo/cnn/last.pt
# Later the same day, with min_lesion_mm2 in the code: the committed demo's pre-training settings for
# 1,500 batches at 64 x 64 (2x2 max filter) and at 128 x 128 (no max filter), on the generator-1.2
# cohort of the committed run (PROBE_DATA=/tmp/fresh6/data/demo-cohort then). Slice AUC only: the
# 128 x 128 CNN has no stage-2 counterpart in the chain, so evalck.py's 2x2x2 volumes do not fit it.
for matrix in 64 128; do
  filter=$([ $matrix = 64 ] && echo 2x2 || echo none)
  .venv/bin/papermill nbs/train.ipynb $PROBE_OUT/cnn$matrix.ipynb -p stage cnn -p experiment cnn-$matrix-lesion30 \
    -p data_dir $PROBE_DATA -p runs_dir $runs -p matrix $matrix -p max_filter $filter -p base_width 16 \
    -p n_samples 37500 -p eval_interval 250 -p n_val_slices 500 -p min_lesion_mm2 30 -p precision bf16 \
    -p threads 2 -y 'windows: [[40, 80]]' --no-progress-bar      # the 64 run left max_filter to the stage default, 2x2
done
$py $here/sliceauc.py $runs/cnn-64-lesion30/best.pt $runs/cnn-64-lesion30/last.pt $runs/cnn-128-lesion30/best.pt $runs/cnn-128-lesion30/last.pt
# The same at 64 x 64 for 12,000 batches (twice the demo's 6,000), about 20 min:
.venv/bin/papermill nbs/train.ipynb $PROBE_OUT/cnn64-long.ipynb -p stage cnn -p experiment cnn-64-lesion30-12000 \
  -p data_dir $PROBE_DATA -p runs_dir $runs -p matrix 64 -p max_filter 2x2 -p base_width 16 -p n_samples 300000 \
  -p eval_interval 500 -p n_val_slices 500 -p min_lesion_mm2 30 -p precision bf16 -p threads 2 \
  -y 'windows: [[40, 80]]' --no-progress-bar
$py $here/sliceauc.py $runs/cnn-64-lesion30-12000/best.pt $runs/cnn-64-lesion30-12000/last.pt
$py $here/evalck.py $runs/cnn-64-lesion30-12000/best.pt,$runs/cnn-64-lesion30-12000/last.pt
# Session of 2026-11-29 evening. pretrain64 NAME DATA WINDOWS: the committed 64 x 64 pre-training (1,500 batches,
# min_lesion_mm2 30) as experiment cnn-64-lesion30-NAME, then its slice AUC on all validation slices.
pretrain64() {   # an optional 4th argument replaces the 2x2 max filter ('none': antialiased resizing to 64)
  .venv/bin/papermill nbs/train.ipynb $PROBE_OUT/cnn64-$1.ipynb -p stage cnn -p experiment cnn-64-lesion30-$1 \
    -p data_dir $2 -p runs_dir $runs -p matrix 64 -p max_filter ${4:-2x2} -p base_width 16 -p n_samples 37500 \
    -p eval_interval 250 -p n_val_slices 500 -p min_lesion_mm2 30 -p precision bf16 -p threads 2 \
    -y "windows: $3" --no-progress-bar
  $py $here/sliceauc.py $runs/cnn-64-lesion30-$1/best.pt $runs/cnn-64-lesion30-$1/last.pt
}
# Other HU windows, one channel each (level, width): brain + a wider "subdural" window, brain + bone (as ct-ich),
# and one wider window alone, in which blood (50-90 HU) stays apart from calcification and bone (the brain window
# 40/80 saturates at 80 HU); compare the 64 x 64 run above.
pretrain64 bsd $PROBE_DATA "[[40, 80], [80, 200]]"
pretrain64 bbone $PROBE_DATA "[[40, 80], [600, 2800]]"
pretrain64 wide $PROBE_DATA "[[50, 130]]"
# Does the slice CNN need more training scans? The same on a quarter and on half of the 630 training patients
# (stratified by label; validation unchanged), to compare with all of them (cnn-64-lesion30 above).
for fraction in 0.25 0.5; do
  $py $here/fewer_scans.py $PROBE_DATA $PROBE_OUT/data-train$fraction $fraction
  pretrain64 train$fraction $PROBE_OUT/data-train$fraction "[[40, 80]]"
done
# The committed CNN's most confident errors on its 500 validation slices, drawn from its predictions_val.csv
# (no network is run; run on /tmp/fresh7's runs/demo/cnn, the CNN of the committed report):
$py $here/look_errors.py runs/demo/cnn $PROBE_OUT/errors.png
# 2026-12-02: do the 2x2 max filter (it widens the bright rim inside the skull) or the windows decide how the
# CNN scores bleeds against the skull? ../near_bone.py (part 1: slice AUC for the positive slices whose blood is
# less / at least 25% within 2 voxels of bone) on the brain-window run above (cnn-64-lesion30), on antialiased
# resizing from 128 instead of the max filter, on brain + bone (the run above) and on brain + a subdural window
# 75/215 (the window of ../draw_rim_bleeds.py; the probe above used 80/200). Run on /tmp/fresh31, the clone
# behind reports/demo then, as separately named runs of these same settings (runs/probe-filter/cnn-64-{2x2,
# none,bbone,bsd}; the 2x2 and bone runs repeated the slice AUCs above; 11.6 min in all).
pretrain64 resize $PROBE_DATA "[[40, 80]]" none
pretrain64 sd215 $PROBE_DATA "[[40, 80], [75, 215]]"
$py probes/near_bone.py $PROBE_DATA reports/demo $(for name in "" -resize -bbone -sd215; do
  echo $runs/cnn-64-lesion30$name/best.pt $runs/cnn-64-lesion30$name/last.pt; done)
# 2026-12-04: does the 128 x 128 input (no 2x2 max filter) teach a slice CNN of base width 8 more than 64 x 64 does,
# over the demo's 6,000 batches? (Width 8 at 128 x 128 took 19.7 min here, the committed width-16 CNN at 64 x 64 25.1
# min on another float32 host: about the same cost.) Run with
# PROBE_DATA=/tmp/fresh58/data/demo-cohort (the committed cohort, made again by the width-8 trial's clone) and
# PROBE_OUT=/tmp/probe128/score; the 64 x 64 CNN is that clone's runs/demo/cnn (trial reports/trials/demo-width8/auc,
# same settings but the input). The rule, written before the result was read: a whole chain at 128 x 128 only if the
# 128 x 128 CNN's chosen checkpoint beat the 64 x 64 one's slice AUC on all validation slices by 0.03 or more.
$py $here/width8_128.py                                          # 19.7 min
$py $here/sliceauc.py /tmp/fresh58/runs/demo/cnn/best.pt /tmp/fresh58/runs/demo/cnn/last.pt \
  $PROBE_OUT/runs/cnn-128-w8/best.pt $PROBE_OUT/runs/cnn-128-w8/last.pt
# 2026-12-04 evening, on the cohort and runs of `make reproduce` at 29e86ad (PROBE_DATA=/tmp/fresh78/data/demo-cohort),
# an Intel Xeon with AMX (bf16). BatchNorm after every convolution against the plain CNN, 1,500 batches each, with the
# demo's stage-1 settings (about 2 min each). The rule, written before: a whole chain with BatchNorm only if its last
# checkpoint beat the plain one's slice AUC on all validation slices by 0.03 (it did not: 0.704 and 0.664 against 0.715).
$py $here/batchnorm.py $PROBE_DATA /tmp/bnprobe 1500 base:1e-4 bn:1e-3 bn:1e-4
# The CNN maximum and 95th percentile on the volumes stages 2 and 3 read (2x2x2) and on every slice (2x2), the CNN
# of the bf16 chain at 35d1700 (/tmp/fresh72, same cohort):
$py $here/evalck.py /tmp/fresh72/runs/demo/cnn/best.pt val 2x2x2
$py $here/evalck.py /tmp/fresh72/runs/demo/cnn/best.pt val 2x2
