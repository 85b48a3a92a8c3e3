#!/usr/bin/env bash
# Probe: does a slice CNN pre-trained on the synthetic cohort help the slice CNNs of CT-ICH?
# Pre-trains one CNN on a synthetic cohort rendered with the windows of the CT-ICH JPGs as two
# channels, fine-tunes each CT-ICH fold's CNN from it with the ct-ich profile's stage-1 settings at
# the in-plane matrix MATRIX, and scores the fold CNNs out of fold (probes/compare_fold_cnns.py:
# slice AUC, scan AUC of the maximum and the 95th percentile), beside any other runs folders given
# in COMPARE (e.g. runs/ct-ich of `make reproduce-ct-ich`). Study log: nbs/11_study_log.ipynb.
# usage: probes/ct-ich-synthetic-pretraining.sh [MATRIX [COHORT [PRETRAIN_SAMPLES [OUT]]]]
#   MATRIX            in-plane size of every CNN here (default 96, the ct-ich profile's); the synthetic
#                     128 x 128 slices are read without a max filter, the 650 x 650 JPGs with the 2x2 one
#   COHORT            a prepared synthetic cohort (e.g. data/demo128-cohort of `make reproduce PROFILE=demo128`);
#                     default: generate the 300-scan cohort of the first run (generator seed 0) in data/probe-synthetic-300
#   PRETRAIN_SAMPLES  synthetic slices of pre-training (default 50000: 2,000 batches of 25)
#   OUT               runs folder of the probe (default runs/probe-ct-ich-synthetic)
# env: CT_ICH_DATA (default data/ct-ich: the ct-ich profile's dataset folder), COMPARE, THREADS (default 1),
#   PRECISION (default auto: bf16 where the CPU computes it natively), VAL_FRACTION (default 0.2, the ct-ich
#   profile's since 2026-12-02; the first run used 0.1).
# The first run (2026-12-02, all defaults) took about 30 min with one torch thread; run it alone on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
matrix=${1:-96}
cohort=${2:-data/probe-synthetic-300}
pretrain_samples=${3:-50000}
out=${4:-runs/probe-ct-ich-synthetic}
ct_ich=${CT_ICH_DATA:-data/ct-ich}
threads=${THREADS:-1}
precision=${PRECISION:-auto}
val_fraction=${VAL_FRACTION:-0.2}
windows='windows: [[40, 120], [700, 3200]]'   # brain and bone windows (level, width) in HU
if [ ! -f "$cohort/manifest.csv" ]; then
  [ "$#" -ge 2 ] && { echo "$cohort: no manifest.csv (not a prepared cohort)" >&2; exit 1; }
  $bin/ich-synth --out $cohort --n-cases 300 --matrix 128 --slices 48-72 --seed 0 --workers 2
  $bin/ich-prepare --source synthetic --root $cohort --out $cohort --seed 0 --fractions 0.70 0.10 0.20
fi
mkdir -p $out/notebooks
cohort=$(realpath "$cohort"); ct_ich=$(realpath "$ct_ich"); out=$(realpath "$out")
$bin/papermill nbs/train.ipynb $out/notebooks/pretrain.ipynb -p stage cnn -p experiment synthetic-cnn \
  -p data_dir $cohort -p runs_dir $out -p matrix $matrix -p max_filter none -p base_width 16 \
  -p n_samples $pretrain_samples -p eval_interval 250 -p n_val_slices 500 -p precision $precision -p threads $threads -y "$windows"
for fold in 0 1 2 3 4; do
  $bin/papermill nbs/train.ipynb $out/notebooks/cnn-fold$fold.ipynb -p stage cnn -p experiment cnn-fold$fold \
    -p data_dir $ct_ich -p runs_dir $out -p fold $fold -p val_fraction $val_fraction -p matrix $matrix -p max_filter 2x2 \
    -p base_width 16 -p n_samples 25000 -p eval_interval 100 -p n_val_slices 300 -p precision $precision -p threads $threads \
    -p init_checkpoint $out/synthetic-cnn/best.pt -y "$windows"
done
$bin/python probes/compare_fold_cnns.py $ct_ich ${COMPARE:-} $out
