# The two commands a new machine needs (see README.md).
PYTHON ?= python3

.PHONY: install run test

install:
	$(PYTHON) -m pip install --quiet -r requirements.txt

run: install
	dvc repro

test: install
	$(PYTHON) -m pytest
