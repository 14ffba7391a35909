# The two commands a new machine needs (see README.md), plus the checks CI runs.
PYTHON ?= python3
# `make test-fast` runs the suite without these slow files (training runs, the whole DVC
# pipeline, the families, two-worker training): three quarters of the tests in about
# 1.5 minutes on 2 cores instead of 6-10. CI runs it on Python 3.13.
SLOW_TESTS ?= tests/test_family_training.py tests/test_pipeline.py tests/test_training.py \
	tests/test_families.py tests/test_multi_worker.py

# The offline quick look (README "The first look, offline"): every stage of every variant on
# scikit-learn's bundled digits, at most 4 epochs each (enough for every variant to learn), as an
# experiment of its own (README: its time, measured). Seed repeats are capped at the main run
# (repeats.max_runs=1): their stages run, in about a second each, and train nothing more.
# Batches are capped at 64 (learning rate scaled alike), so that every variant gets at least
# 20 steps per digits epoch (the airbench presets' 512 gave 2).
QUICK_LOOK = data.dataset=digits train.max_epochs=4 repeats.max_runs=1 train.max_batch_size=64

.PHONY: install run quick-look test test-fast lint format

# tensorflow-cpu (the old pin) installs the same `tensorflow` module as tensorflow: remove both
# once, so that pip installs tensorflow's files instead of finding it already "satisfied".
install:
	@if $(PYTHON) -m pip show tensorflow-cpu >/dev/null 2>&1; then \
	  echo "replacing tensorflow-cpu with tensorflow"; \
	  $(PYTHON) -m pip uninstall --yes -qq tensorflow-cpu tensorflow; \
	fi
	$(PYTHON) -m pip install --quiet -r requirements.txt

# The full pipeline, or, when the dataset's download cannot be reached from here (and no copy
# is local), one line saying so and the offline quick look instead.
run: install
	@$(PYTHON) -m stages.prepare --check; status=$$?; \
	if [ $$status -eq 0 ]; then dvc repro; \
	elif [ $$status -eq 3 ]; then \
	  echo "make run: running the offline quick look instead (make quick-look): scikit-learn's digits, 4 epochs"; \
	  $(MAKE) --no-print-directory quick-look; \
	else exit $$status; fi

# The experiment `dvc exp run --name quick-look-digits-<time> -S <each of QUICK_LOOK>` would run, in
# its three steps: set the parameters (DVC's own -S code), `dvc repro`, `dvc exp save`. In one
# `dvc exp run` DVC reloads the pipeline after every stage, about 22 s over these 64 stages.
# Every stage runs, so every entry of dvc.lock is rewritten; DVC rewrites the whole file after each
# stage (1.2 s at its committed size), so a dvc.lock that git holds unchanged is removed first and
# grows from empty. The stages' `python -m` processes start warm, forked from one that imported
# TensorFlow once (scripts/warm_python.py; Linux only, elsewhere they start as usual).
quick-look:
	@if git ls-files --error-unmatch dvc.lock >/dev/null 2>&1 && git diff --quiet HEAD -- dvc.lock; then rm dvc.lock; fi
	$(PYTHON) -c "import sys; from dvc.utils.hydra import apply_overrides; apply_overrides('params.yaml', sys.argv[1:])" \
	  $(QUICK_LOOK)
	$(PYTHON) scripts/warm_python.py dvc repro
	dvc exp save --name quick-look-digits-$$(date +%Y%m%d-%H%M%S)
	@echo "quick look done: report/index.html; params.yaml now reads data.dataset: digits" \
	  "(git checkout params.yaml dvc.lock goes back to CIFAR-10)"

test: install lint
	$(PYTHON) -m pytest

test-fast: install
	$(PYTHON) -m pytest $(addprefix --ignore=,$(SLOW_TESTS))

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

# Apply the linter's safe fixes and the formatter to the tree, then show what is left.
# (The first step leaves long lines alone: the formatter splits them.)
format:
	$(PYTHON) -m ruff check --fix --exit-zero --silent .
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check .
