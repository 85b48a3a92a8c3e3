#!/usr/bin/env bash
# Probe (rule: reports/trials/ct-ich-scan-negatives/RULE.md): each CT-ICH fold's slice CNN trained with the
# ct-ich profile's stage-1 settings, but with the bleed-free cavity slices of positive scans as negatives too
# (scan_negatives = "all"; the paper's, "negative", takes negatives from negative scans only), then scored out
# of fold (probes/compare_fold_cnns.py, against the committed report's CNN baselines on the same scans) and
# looked at with probes/ct_ich_false_alarms.py. Every other parameter is the profile's (its windows too: none given,
# the notebook's default, as the chain runs it), so the fold CNNs differ from the chain's in scan_negatives alone.
# usage: probes/ct-ich-scan-negatives.sh [SCAN_NEGATIVES [OUT]]
#   SCAN_NEGATIVES  all (default) or negative (the committed setting, for a baseline on the same host)
#   OUT             runs folder of the probe (default runs/probe-ct-ich-scan-negatives)
# env: CT_ICH_DATA (default data/ct-ich: the ct-ich profile's dataset folder, as `make reproduce-ct-ich` builds it),
#   CT_ICH_ROOT (default ../shared/data/ct-ich: the release, for its fracture flags), THREADS (default 2: alone
#   on the machine), PRECISION (default auto), SAVE (default reports/trials/ct-ich-scan-negatives),
#   LR (default 0: the stage's default, Adam 1e-4, as the profile runs it; the probe ct-ich-cnn-lr3e-4 sets 3e-4).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
scan_negatives=${1:-all}
out=${2:-runs/probe-ct-ich-scan-negatives}
ct_ich=${CT_ICH_DATA:-data/ct-ich}
threads=${THREADS:-2}
precision=${PRECISION:-auto}
save=${SAVE:-reports/trials/ct-ich-scan-negatives}
lr=${LR:-0}
mkdir -p $out/notebooks
ct_ich=$(realpath "$ct_ich"); out=$(realpath "$out")
for fold in 0 1 2 3 4; do
  $bin/papermill --no-progress-bar nbs/train.ipynb $out/notebooks/cnn-fold$fold.ipynb -p stage cnn -p experiment cnn-fold$fold \
    -p data_dir $ct_ich -p runs_dir $out -p fold $fold -p val_fraction 0.2 -p matrix 96 -p max_filter 2x2 \
    -p base_width 16 -p n_samples 25000 -p eval_interval 100 -p n_val_slices 300 -p seed 0 -p precision $precision \
    -p threads $threads -p scan_negatives $scan_negatives -p lr $lr
done
$bin/python probes/compare_fold_cnns.py $ct_ich $out --against reports/ct-ich --save $save
$bin/python probes/ct_ich_false_alarms.py $ct_ich $out ${CT_ICH_ROOT:-../shared/data/ct-ich} --draw $save/$(basename $out)-false-alarms.png
