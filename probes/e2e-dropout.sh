#!/usr/bin/env bash
# Probe: stage 3 (e2e2) with the CNN's dropout off, as the paper has it (dropout is part of pre-training).
# Until 2026-12-02 stage 3 trained with the CNN's two 50% dropouts active, while stage 2 had trained the
# BiLSTMs on the frozen CNN in eval mode (no dropout): at its first step stage 3 fed the BiLSTMs features
# unlike any they had seen. That is a plausible cause of what made the demo lower stage 3's learning rate
# (the paper's RMSprop 1e-4 took e2e2's validation AUC from 0.80 to 0.46-0.67; study log nbs/11_study_log.ipynb, What was tried).
# The fix (ICHNet.use_cnn_dropout, set by train.initial_model) follows the method and is kept whatever
# this probe shows. What the probe decides is stage 3's learning rate in profiles/demo.toml, on validation
# data only, by a rule fixed before the runs: the paper's 1e-4 replaces 1e-5 unless its best validation
# AUC over the 1,500 steps is more than 0.01 below that of 1e-5.
# Each run trains e2e2 for 1,500 steps from the lstm2 of a `make reproduce` (as the chain does), about
# 6 min with two torch threads; run it alone on the machine. Compare both with that chain's own e2e2
# (runs/demo/e2e2/metrics.csv: the same start and steps, with dropout on).
# Run on 2026-12-02 as probes/e2e-dropout.sh /tmp/fresh30/data/demo-cohort /tmp/fresh30/runs/demo (the make
# reproduce of a fresh clone at commit db7e066).
# usage: probes/e2e-dropout.sh [DATA_DIR] [RUNS_OF_A_DEMO_CHAIN]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-data/demo-cohort}; chain=${2:-runs/demo}; out=runs/probe-e2e-dropout
mkdir -p $out/notebooks
for lr in 1e-5 1e-4; do
  .venv/bin/papermill nbs/train.ipynb $out/notebooks/e2e2-nodrop-lr$lr.ipynb -p stage e2e -p experiment e2e2-nodrop-lr$lr \
    -p data_dir $data -p runs_dir $out -p init_checkpoint $chain/lstm2/best.pt -p matrix 64 -p base_width 16 \
    -p lstm_layers 2 -p n_samples 1500 -p eval_interval 100 -p lr $lr -p precision bf16 -p threads 2 \
    -y 'windows: [[40, 80]]' --no-progress-bar
done
for run in $chain/e2e2 $out/e2e2-nodrop-lr1e-5 $out/e2e2-nodrop-lr1e-4; do
  awk -F, -v run=$run 'NR > 1 { printf "%s:%.3f ", $1, $3; if ($3 > best) best = $3 }
    END { printf "<- %s: step:validation AUC, best %.3f\n", run, best }' $run/metrics.csv
done
