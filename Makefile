# Everything a new machine needs, from a fresh clone: `make demo`, `make analyze CLIP=...` or
# `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= $(abspath ../shared)
export LIFTWATCH_MODEL_DIR ?= $(SHARED)/models
export LIFTWATCH_CLIPS ?= $(SHARED)/clips
CLIP ?= $(LIFTWATCH_CLIPS)/deadlift-coach-good015.mp4
OUT ?= out
PORT ?= 8080
PHASES ?= 1
DATA ?= demo-data

.PHONY: venv demo analyze eval test lint models clean

$(BIN)/liftwatch-edge: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all]'
	touch $@

venv: $(BIN)/liftwatch-edge

models: venv
	$(BIN)/liftwatch-edge models

# The simulated cameras need no model; a missing one only keeps DEMO_VIDEOS from running.
demo: venv
	-@$(BIN)/liftwatch-edge models || echo "(models missing: the simulated demo runs without them)"
	$(BIN)/liftwatch-dashboard demo --port $(PORT) --data $(DATA)

analyze: venv
	$(BIN)/liftwatch-edge models --require movenet_multipose movenet_lightning yolox_nano blazepose_full
	$(BIN)/liftwatch-edge analyze "$(CLIP)" --out $(OUT)/$(notdir $(basename $(CLIP))).poses.jsonl \
		--render $(OUT)/$(notdir $(basename $(CLIP))).overlay.mp4

eval: venv
	$(BIN)/liftwatch-edge eval --labels "$(LIFTWATCH_CLIPS)/labels.csv" --clips "$(LIFTWATCH_CLIPS)" \
		--phases $(PHASES) --json $(OUT)/eval.json

lint: venv
	$(BIN)/ruff check edge dashboard bench tests
	$(BIN)/ruff format --check edge dashboard bench tests

test: venv lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache .mypy_cache
