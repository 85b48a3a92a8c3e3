#!/usr/bin/env bash
# Probe: does a slice CNN pre-trained on the synthetic cohort help the slice CNNs of CT-ICH?
# Pre-trains one CNN on the 300-scan synthetic cohort (generator 1.1, seed 0) rendered with the
# windows of the CT-ICH JPGs as two channels, fine-tunes each CT-ICH fold's CNN from it with the
# ct-ich profile's stage-1 settings, and compares them out of fold with the CNNs of the committed
# ct-ich study (README, Results so far; study log nbs/11_study_log.ipynb). Needs data/ct-ich and runs/ct-ich/cnn-fold*/ from
# `make reproduce-ct-ich`. About 30 min with one torch thread; run it alone on the machine.
# usage: probes/ct-ich-synthetic-pretraining.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
cohort=data/probe-synthetic-300
out=runs/probe-ct-ich-synthetic
windows='windows: [[40, 120], [700, 3200]]'   # brain and bone windows (level, width) in HU
$bin/ich-synth --out $cohort --n-cases 300 --matrix 128 --slices 48-72 --seed 0 --workers 2
$bin/ich-prepare --source synthetic --root $cohort --out $cohort --seed 0 --fractions 0.70 0.10 0.20
mkdir -p $out/notebooks
$bin/papermill nbs/train.ipynb $out/notebooks/pretrain.ipynb -p stage cnn -p experiment synthetic-cnn \
  -p data_dir $PWD/$cohort -p runs_dir $PWD/$out -p matrix 96 -p max_filter none -p base_width 16 \
  -p n_samples 50000 -p eval_interval 250 -p n_val_slices 500 -p precision bf16 -p threads 1 -y "$windows"
for fold in 0 1 2 3 4; do
  $bin/papermill nbs/train.ipynb $out/notebooks/cnn-fold$fold.ipynb -p stage cnn -p experiment cnn-fold$fold \
    -p data_dir $PWD/data/ct-ich -p runs_dir $PWD/$out -p fold $fold -p matrix 96 -p max_filter 2x2 \
    -p base_width 16 -p n_samples 25000 -p eval_interval 100 -p n_val_slices 300 -p precision bf16 -p threads 1 \
    -p init_checkpoint $PWD/$out/synthetic-cnn/best.pt -y "$windows"
done
$bin/python probes/compare_fold_cnns.py data/ct-ich runs/ct-ich $out
