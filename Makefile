# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
DVC_VENV := .venv-dvc
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export GEOLOC_ROOT := $(CURDIR)
export DAGSTER_HOME := $(CURDIR)/.dagster
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install demo data test lint ui mlflow-ui status bench rehearsal ablation experiments

# The project environment (dagster needs antlr4 4.13) ...
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]'
	# GeoCLIP's trained location encoder and 100K GPS gallery (model.gps_init / verification.gallery:
	# geoclip). Its wheel pins huggingface-hub<2, which transformers 5 replaced: take its files
	# without its pins; the project imports none of its code (tests compare against it).
	$(BIN)/pip install --no-deps 'geoclip==1.3.0'
	touch $@

# ... and DVC in its own environment (its hydra/omegaconf pin antlr4 4.9), linked into .venv/bin.
$(DVC_VENV)/.installed: dvc-requirements.txt
	$(PYTHON) -m venv $(DVC_VENV)
	$(DVC_VENV)/bin/pip install -r dvc-requirements.txt
	touch $@

# The two environments install side by side (half a minute less on a fresh machine), each
# line of output whole.
install:
	@$(MAKE) --no-print-directory -j2 --output-sync=line $(VENV)/.installed $(DVC_VENV)/.installed
	@ln -sf $(CURDIR)/$(DVC_VENV)/bin/dvc $(BIN)/dvc

# Raw data: the demo world is generated deterministically, so it matches data.dvc byte for byte.
data: install
	geoloc demo-world --if-missing

demo: data
	dvc repro
	@echo "--- dvc status (expect nothing changed) ---"
	dvc status
	dvc metrics show

# Two pytest-xdist workers, each taking whole files (a module's fixtures are built once), the
# files with slow tests first (tests/conftest.py): the suite waits on subprocesses (dvc repro,
# Dagster daemons, servers, Chromium) for much of its time, so a second worker fills the other
# core. PYTEST_PARALLEL= (empty) runs it in one process.
PYTEST_PARALLEL ?= -n 2 --dist loadfile --no-loadscope-reorder
test: install
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_PARALLEL) --durations=30  # the slow cases and how long each takes

lint: install
	$(BIN)/ruff check .

status: install
	geoloc status

# Performance measurements side by side in one run (about 20 min on 2 cores): one table, and
# benchmarks/results.json. BENCH_INSTALL=1 also times `make install` in the fresh clone.
bench: install
	$(BIN)/python benchmarks/run_all.py $(if $(BENCH_INSTALL),--install)

# The full profile rehearsed at MP16's shapes on this machine (opt-in, not part of `make test`;
# docs/performance.md): REHEARSAL_ROWS reference rows, then the index at 1M (index_scale.py).
REHEARSAL_ROWS ?= 100000
rehearsal: install
	nice -n 10 $(BIN)/python benchmarks/rehearsal.py --rows $(REHEARSAL_ROWS)
	nice -n 10 $(BIN)/python benchmarks/index_scale.py --rows 1000000 --clean

# The ablation table (docs/ablation.md): baselines and every variant's stages on the demo's inputs.
ablation: install
	$(BIN)/python benchmarks/ablation.py --lmm g3,dualgeo

# The ablation set as queued DVC experiments (variant x re-rank x verification [x LMM mode]), run
# one at a time; `dvc exp show` lists them, MLflow groups each under a parent named after it.
VARIANTS ?= image-only g3 dualgeo dualgeo+text
RERANKS ?= none dbscan
DECISIONS ?= top1 verify
LMM_MODES ?=
experiments: install
	for v in $(VARIANTS); do for r in $(RERANKS); do for d in $(DECISIONS); do \
	  if [ -z "$(LMM_MODES)" ]; then \
	    dvc exp run --queue -n "$$(echo $$v | tr + -)-$$r-$$d" -S model.variant=$$v \
	      -S rerank.method=$$r -S verification.method=$$d; \
	  else for m in $(LMM_MODES); do \
	    dvc exp run --queue -n "$$(echo $$v | tr + -)-$$r-$$d-lmm-$$m" -S model.variant=$$v \
	      -S rerank.method=$$r -S verification.method=$$d -S lmm.provider=openai -S lmm.mode=$$m; \
	  done; fi; \
	done; done; done
	dvc exp run --run-all --jobs 1
	dvc exp show --only-changed

# The servers run under `geoloc serve`: Ctrl-C or SIGTERM stops them within seconds with every
# process they started (dagster dev alone lingers for over a minute). `make ui` also reloads the
# code location when params.yaml or the code changes, so the automation sensor follows an edit.
DAGSTER_PORT ?= 3000
MLFLOW_PORT ?= 5000
# uvicorn workers of the MLflow UI: one serves a person browsing (mlflow's default is 4)
MLFLOW_WORKERS ?= 1

# `geoloc status` first: it sets up the project's instance (the GPU pool's limit) and shows staleness
ui: install
	geoloc status
	geoloc serve --reload-dagster http://127.0.0.1:$(DAGSTER_PORT) -- dagster dev -h 127.0.0.1 -p $(DAGSTER_PORT)

# job execution (huey consumers) serves MLflow's GenAI jobs, which browsing runs never starts
mlflow-ui: install
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false geoloc serve -- mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) --workers $(MLFLOW_WORKERS) --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db
