# Two entry points for a newcomer: `make run` (the whole workflow on the synthetic default) and
# `make test`. Both create .venv and install everything on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: run predict test lint dry-run clean system-deps

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch is pinned in pyproject.toml to the CPU build (2.13.0); see README for GPU machines.
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# open3d needs Debian's libusb-1.0-0 at import time; install it when we can (root), else say so.
system-deps:
	@if ! /sbin/ldconfig -p | grep -q 'libusb-1.0.so.0'; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing libusb-1.0-0 (needed by open3d)"; \
	    apt-get install -y -q libusb-1.0-0 >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q libusb-1.0-0 >/dev/null); \
	  else \
	    echo "error: open3d needs libusb-1.0: run 'sudo apt-get install libusb-1.0-0'" >&2; exit 1; \
	  fi; \
	fi

run: $(BIN)/snakemake system-deps
	$(BIN)/snakemake --profile profiles/local --cores $(CORES)
	@echo
	@echo "Results are in $(CURDIR)/results:"
	@echo "  metrics  results/metrics/per_patient.csv, results/metrics/summary.csv"
	@echo "  masks    results/masks/<patient>.nii.gz   model  results/model/model.pt"
	@echo "  visuals  results/videos/*.mp4, results/montages/*.png, results/meshes/*.stl, results/viewers/*.html"
	@echo "  report   $(CURDIR)/results/report.html   (open it in a browser)"
	@$(BIN)/python -c "import pandas as pd; s = pd.read_csv('results/metrics/summary.csv', index_col=0); print(s.loc[['dice', 'hd95_mm', 'volume_pred_ml', 'volume_true_ml'], ['mean', 'sd', 'n']].round(3).to_string())"

# Segment every scan under IN (NIfTI, NRRD, MHA, DICOM series in any subfolder) with the shipped model, no
# training: make predict IN=<folder> [OUT=<dir>]. Results (masks, volumes, videos, meshes, report) go to OUT.
OUT ?= predictions
# IN and OUT may hold spaces, quotes and any non-ASCII character: make's abspath would split them at spaces, so a
# relative path is prefixed with the working directory instead; each value is quoted for YAML (snakemake parses
# --config values as YAML) and then for the shell.
comma := ,
absolute = $(if $(filter /%,$(firstword $(1))),$(1),$(CURDIR)/$(1))
yaml_string = '$(subst ','',$(1))'
shell_word = '$(subst ','\'',$(1))'
predict: $(BIN)/snakemake system-deps
	@test -n $(call shell_word,$(IN)) || { echo "usage: make predict IN=<folder of scans> [OUT=<results folder>]" >&2; exit 2; }
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) --configfile config/predict.yaml \
	    --directory $(call shell_word,$(OUT)) \
	    --config $(call shell_word,data={source: folder$(comma) path: $(call yaml_string,$(call absolute,$(IN)))}) \
	    $(call shell_word,predict={checkpoint: $(call yaml_string,$(CURDIR)/models/la_unet.pt)})
	@echo Report: $(call shell_word,$(call absolute,$(OUT))/results/report.html)

# Style first (seconds), then the suite: ruff for Python, snakefmt and snakemake's own linter for the rules.
lint: $(BIN)/snakemake
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint

test: $(BIN)/snakemake system-deps lint
	$(BIN)/python -m pytest -q -ra --strict-markers

dry-run: $(BIN)/snakemake
	$(BIN)/snakemake -n --profile profiles/local

clean:
	rm -rf results logs benchmarks resources/synthetic
