#!/usr/bin/env bash
# Probe: the whole demo chain with the slice CNN's checkpoint chosen by its validation slice ROC AUC
# (cnn_selection = "auc") instead of the paper's accuracy at 0.5; everything else as profiles/demo.toml.
# The profile is written from profiles/demo.toml with two lines added: name = "demo" (so it shares
# data/demo-cohort) and cnn_selection under [stages.cnn]. Run on 2026-11-29 in /tmp/fresh7 after its
# `make reproduce`, alone on the machine: 32.9 min (the cohort reused, every training rerun). Its report,
# reports/demo-cnnauc/, was not committed; the study log (nbs/11_study_log.ipynb), What was tried, gives its numbers.
# usage: probes/cnn-selection-auc.sh
set -euo pipefail
cd "$(dirname "$0")/.."
profile=runs/demo-cnnauc.toml
mkdir -p runs
sed -e 's/^description = /name = "demo"\ndescription = /' -e 's/^\[stages.cnn\]$/[stages.cnn]\ncnn_selection = "auc"/' \
  profiles/demo.toml > $profile
.venv/bin/ich-reproduce --profile $profile --study demo-cnnauc
