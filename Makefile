# sysprune — every target creates or refreshes .venv itself. `make help` lists them.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SYSPRUNE := $(BIN)/sysprune
STORAGE ?= sqlite:///results/sysprune.db
STUDIES := $(sort $(basename $(notdir $(wildcard studies/*.toml))))
GRID := $(filter-out digits_mlp rq2_%,$(STUDIES))
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv study studies grid lint test test-fast test-faults bench-overhead bench-pruners bench-big bench-budget bench-load bench-scale bench-dry-run dashboard clean $(addprefix study-,$(STUDIES))
.PHONY: results bench-replay $(addprefix compare-,$(STUDIES)) $(addprefix report-,$(STUDIES))

help: ## list the targets (and one study-<name> target per file in studies/)
	@echo "usage: make TARGET   (STORAGE=$(STORAGE); data from SYSPRUNE_DATA_DIR, see README)"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-20s %s\n", $$1, $$2}'
	@for s in $(STUDIES); do printf "  %-20s %s\n" "study-$$s" "run (or resume) studies/$$s.toml"; done
	@printf "  %-20s %s\n" "compare-<name>" "compare every pruning policy on studies/<name>.toml (5 seeds; COMPARE_ARGS=...)"
	@printf "  %-20s %s\n" "report-<name>" "RQ1 report of the stored study <name> (results/<name>/rq1.md)"

# Every extra, from the locked set in constraints.txt (torch 2.14.1 + torchvision 0.29.1 among it).
$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing sysprune and every extra into $(VENV) from constraints.txt (the first time: torch and ray, a few minutes)"
	@$(BIN)/pip install -q --upgrade pip
	@set -o pipefail; $(BIN)/pip install --progress-bar off -c constraints.txt \
		-e '.[torch,dashboard,pmlb,postgres,ray,results,lightning,optunahub,dev]' 2>&1 \
		| { grep --line-buffered -E '^(Collecting|Installing|Successfully|Building|ERROR|error|  ×)' || true; } \
		| sed -u -E 's/^Collecting ([^ ]+).*/  collecting \1/; s/^Successfully installed .*/  installed/' || \
		{ echo "pip failed; run: $(BIN)/pip install -c constraints.txt -e '.[...]' to see why" >&2; exit 1; }
	@touch $@

venv: $(VENV)/.installed ## create or refresh the virtual environment (.venv)

study: study-digits_mlp ## run the default study (torch MLP on scikit-learn digits, offline)

# A static pattern rule (a plain pattern rule would never apply: make skips implicit rules for .PHONY targets).
$(addprefix study-,$(STUDIES)): study-%: $(VENV)/.installed
	$(SYSPRUNE) run studies/$*.toml --storage $(STORAGE)

studies: $(VENV)/.installed ## list the study files (model, dataset, steps, budgets)
	@$(SYSPRUNE) studies

grid: $(VENV)/.installed ## run the research grid: every study file except the default (about an hour here)
	@for s in $(GRID); do $(SYSPRUNE) run studies/$$s.toml --storage $(STORAGE) || exit $$?; done

lint: $(VENV)/.installed ## static checks: ruff (names, syntax, formatting), mypy over sysprune/, the import layers
	$(BIN)/ruff check sysprune tests benchmarks examples tools
	$(BIN)/ruff format --check sysprune tests benchmarks examples tools
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_architecture.py

test: $(VENV)/.installed ## run the whole test suite, as CI does (real data from SYSPRUNE_DATA_DIR or ../shared/data)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.installed ## the unit and in-process tests only (-m "not slow"; ~2.5 min here): the loop while you work
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-faults: $(VENV)/.installed ## the fault suite alone (tests/faults/; `make test` runs it too): ends with faults injected, survived, trials lost, processes left
	$(BIN)/python -m pytest tests/faults $(PYTEST_ARGS)

dashboard: $(VENV)/.installed ## serve optuna-dashboard with per-step system metrics on $(STORAGE) (127.0.0.1:8080; Ctrl-C stops)
	$(SYSPRUNE) dashboard --storage $(STORAGE) $(DASHBOARD_ARGS)

bench-pruners: $(VENV)/.installed ## benchmark: pruner decision time with 10,000 finished trials (SQLite), beside MedianPruner; its readers
	$(BIN)/python benchmarks/bench_pruners.py

bench-big: $(VENV)/.installed ## benchmark: a 10,000-trial study's readers (load_step_metrics, compare, replay, report, dashboard) vs trials_dataframe(); worker RSS over 500 trials (~10 min)
	$(BIN)/python benchmarks/bench_big.py $(BENCH_ARGS)

bench-budget: $(VENV)/.installed ## benchmark: digits study under a latency budget, policy budget vs none (compute, best)
	$(BIN)/python benchmarks/bench_budget_live.py

bench-overhead: $(VENV)/.installed ## benchmark: trial start, monitor per step, rejection at step -1, a search's measurement overhead
	$(BIN)/python benchmarks/bench_overhead.py

results: $(VENV)/.installed ## regenerate results/RESULTS.md (resumes; RESULTS_ARGS=--estimate: plan time; the full plan took 87-106 min here); RESULTS_QUICK=1: a few min, into results/quick/
	$(BIN)/python -m sysprune.analysis._results $(RESULTS_ARGS)

$(addprefix compare-,$(STUDIES)): compare-%: $(VENV)/.installed
	$(SYSPRUNE) compare studies/$*.toml --storage $(STORAGE) $(COMPARE_ARGS)

$(addprefix report-,$(STUDIES)): report-%: $(VENV)/.installed
	$(SYSPRUNE) report $* --storage $(STORAGE)

bench-replay: $(VENV)/.installed ## benchmark: replay 6 policies x 21 orders over a 200-trial recording (synthetic)
	cd benchmarks && ../$(BIN)/python bench_replay.py

clean: ## remove the study databases, artifacts and caches under results/ (keeps .venv and the committed RESULTS.md)
	rm -rf results/*.db results/*.db-* results/*.lock results/artifacts .pytest_cache

bench-load: $(VENV)/.installed ## benchmark: trials/min with 1, 2, 4 workers (SQLite, PostgreSQL; local, Ray); 2 workers vs alone
	$(BIN)/python benchmarks/bench_load.py

bench-dry-run: $(VENV)/.installed ## benchmark: budget vs none/threshold on time and memory budgets decided by a dry run, paired over 10 seeds (~20 min; BENCH_ARGS=--budget peak_rss_delta_mb=33.5)
	$(BIN)/python benchmarks/bench_dry_run.py $(BENCH_ARGS)

bench-scale: $(VENV)/.installed ## benchmark: trials/min at 1-32 workers vs plain Optuna in the same run, CPU per trial (BENCH_ARGS=--quick)
	$(BIN)/python benchmarks/bench_scale.py $(BENCH_ARGS)
