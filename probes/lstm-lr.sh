#!/usr/bin/env bash
# Probe: the learning rate of stage 2 (`lstm`: BiLSTMs on the frozen slice CNN) on the demo cohort.
# At the paper's RMSprop 1e-3 the committed demo's lstm2 did not learn (training loss around chance,
# 0.67-0.75 per 100 steps from step 1,000 on; validation AUC 0.41-0.59 over 3,000 steps: runs/demo/lstm2/metrics.csv of the
# run behind reports/demo at commit 669cb82). This trains lstm2 for 1,500 steps from the same slice CNN at lower rates and reads only the
# validation AUC (runs/probe-lstm-lr/lstm2-lr*/metrics.csv). About 4 min per rate with two threads,
# alone on the machine. Needs data/demo-cohort and runs/demo/cnn/best.pt from `make reproduce`.
# Run on 2026-11-29 as probes/lstm-lr.sh /tmp/fresh6/data/demo-cohort /tmp/fresh6/runs/demo/cnn/best.pt (that
# fresh clone's make reproduce), with its output folder then /tmp/s5/runs.
# usage: probes/lstm-lr.sh [DATA_DIR] [CNN_CHECKPOINT]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-data/demo-cohort}; cnn=${2:-runs/demo/cnn/best.pt}; out=runs/probe-lstm-lr
mkdir -p $out/notebooks
for lr in 1e-4 3e-5; do
  .venv/bin/papermill nbs/train.ipynb $out/notebooks/lstm2-lr$lr.ipynb -p stage lstm -p experiment lstm2-lr$lr \
    -p data_dir $data -p runs_dir $out -p init_checkpoint $cnn -p matrix 64 -p base_width 16 -p lstm_layers 2 \
    -p n_samples 1500 -p eval_interval 100 -p lr $lr -p precision bf16 -p threads 2 -y 'windows: [[40, 80]]' \
    --no-progress-bar
  awk -F, -v lr=$lr 'NR > 1 { printf "%s:%.3f ", $1, $3 } END { print "<- lr " lr ": step:validation AUC" }' \
    $out/lstm2-lr$lr/metrics.csv
done
# Then stage 3 (e2e2, 1,500 steps) from the lstm2 that stage 2 at 1e-4 gave in `make reproduce` (runs/demo/lstm2),
# at RMSprop 3e-5 instead of the demo profile's 1e-5 (run on /tmp/fresh7's runs; 4.9 min):
.venv/bin/papermill nbs/train.ipynb $out/notebooks/e2e2-lr3e-5.ipynb -p stage e2e -p experiment e2e2-lr3e-5 \
  -p data_dir $data -p runs_dir $out -p init_checkpoint $(dirname $(dirname $cnn))/lstm2/best.pt -p matrix 64 \
  -p base_width 16 -p lstm_layers 2 -p n_samples 1500 -p eval_interval 100 -p lr 3e-5 -p precision bf16 -p threads 2 \
  -y 'windows: [[40, 80]]' --no-progress-bar
awk -F, 'NR > 1 { printf "%s:%.3f ", $1, $3 } END { print "<- e2e2 at 3e-5: step:validation AUC" }' $out/e2e2-lr3e-5/metrics.csv
