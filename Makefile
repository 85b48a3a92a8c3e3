# ich-study: every set-up and run step a user needs. `make reproduce` and `make test` are the two
# commands of the README; each creates .venv on a fresh clone first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ich-study-installed
PROFILE ?= demo
# the CT-ICH scans for reproduce-ct-ich: make reproduce-ct-ich CT_ICH=/path/to/ct-ich
CT_ICH ?= ../shared/data/ct-ich
# another precision than the profile's for reproduce, reproduce-ct-ich and seeds: make reproduce PRECISION=float32
# writes the float32 report of a CPU without native bf16 on one with it (ich-reproduce --precision)
PRECISION ?=
PRECISION_OPTION = $(if $(PRECISION),--precision $(PRECISION))
# other training seeds of a profile for make seeds (the profile's own seed is always included)
SEEDS ?= 1 2
export PYTHONHASHSEED := 0
# UTF-8 whatever the locale (CI may have none): progress bars and messages are Unicode
export PYTHONUTF8 := 1
export LC_ALL := C.UTF-8

.PHONY: setup test reproduce reproduce-ct-ich seeds lab export readme bench clean-runs

setup: $(STAMP)

$(STAMP): settings.ini setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name ich-study --display-name 'Python (ich-study)' >/dev/null
	@touch $(STAMP)

test: setup
	$(BIN)/nbdev_test --n_workers 1 --timing
	$(BIN)/python -m pytest -q --durations=15 tests

reproduce: setup
	$(BIN)/ich-reproduce --profile $(PROFILE) $(PRECISION_OPTION)

reproduce-ct-ich: setup
	$(BIN)/ich-reproduce --profile ct-ich --data $(CT_ICH) $(PRECISION_OPTION)

# the study of PROFILE with its own training seed and with each of SEEDS (same data and splits),
# then each model's test AUC over the seeds: reports/$(PROFILE)-seeds/seed_spread.md
SEED_DATA = $(if $(filter ct-ich,$(PROFILE)),--data $(CT_ICH))
seeds: setup
	$(BIN)/ich-reproduce --profile $(PROFILE) $(SEED_DATA) $(PRECISION_OPTION)
	for seed in $(SEEDS); do $(BIN)/ich-reproduce --profile $(PROFILE) $(SEED_DATA) $(PRECISION_OPTION) --seed $$seed || exit 1; done
	$(BIN)/ich-seed-spread --out reports/$(PROFILE)-seeds reports/$(PROFILE) $(foreach seed,$(SEEDS),reports/$(PROFILE)-seed$(seed))

lab: setup
	$(BIN)/jupyter lab nbs/

export: setup
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(MAKE) readme

readme: setup
	$(BIN)/python -m ich_study.core readme nbs/index.ipynb README.md

bench: setup
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean-runs:
	rm -rf runs data/synthetic-* data/cache
