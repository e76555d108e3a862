# redcloud: `make demo` sets everything up and runs the main job; `make test` runs the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY ?= python3.11
RUN := .run
UV := $(RUN)/bootstrap/bin/uv
UV_VERSION := 0.13.8
VENV := $(RUN)/venv
PIPE := $(VENV)/pipeline/bin
SCALE ?= 10000
SEED ?= 20251231
export PYTHONUNBUFFERED := 1

.PHONY: help setup demo test bench up down venvs jars secrets requirements clean-lake clean system-packages

help:
	@echo "make demo   - install everything, start services, generate the city, run the pipeline"
	@echo "make test   - set up (if needed), start services, run the test suite"
	@echo "make up     - start the project's services (PostgreSQL, web reference server)"
	@echo "make down   - stop every process the project started"
	@echo "make clean  - stop everything and remove the run folder (lake, databases, virtualenvs)"

$(UV):
	$(PY) -m venv $(RUN)/bootstrap
	$(RUN)/bootstrap/bin/pip install -q uv==$(UV_VERSION)

# One virtualenv per requirements file; rebuilt only when its requirements change.
$(VENV)/%/.stamp: requirements/%.txt | $(UV)
	rm -rf $(VENV)/$*
	$(UV) venv -q --seed --python $(PY) $(VENV)/$*
	VIRTUAL_ENV=$(VENV)/$* $(UV) pip install -q -r $<
	touch $@

$(VENV)/pipeline/.editable: $(VENV)/pipeline/.stamp pyproject.toml
	VIRTUAL_ENV=$(VENV)/pipeline $(UV) pip install -q --no-deps -e .
	touch $@

venvs: $(VENV)/pipeline/.editable $(VENV)/airflow/.stamp $(VENV)/superset/.stamp

# Delta Lake and JDBC jars, fetched once with Maven into the cache folder.
$(RUN)/jars/.stamp: infra/maven/pom.xml
	rm -rf $(RUN)/jars
	cd infra/maven && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
	  -DoutputDirectory=$(CURDIR)/$(RUN)/jars
	touch $@

jars: $(RUN)/jars/.stamp

# Demo secrets, generated once per checkout; never committed.
$(RUN)/secrets.env:
	mkdir -p $(RUN)
	umask 077; $(PY) infra/scripts/gen_secrets.py > $@

secrets: $(RUN)/secrets.env

# Debian packages (PostgreSQL, MariaDB for the MySQL source path, Maven): only what is missing.
system-packages:
	bash infra/scripts/install_system_packages.sh

setup: system-packages venvs jars secrets

up: setup
	$(PIPE)/redcloud-demo up --all --scale $(SCALE) --seed $(SEED)

demo: setup
	$(PIPE)/redcloud-demo demo --scale $(SCALE) --seed $(SEED)
	$(PIPE)/python -m redcloud.marts docs

# Benchmarks (figures, not tests): SCALES=10000,30000 by default; larger scales by the same flag.
bench: setup
	$(PIPE)/redcloud services up
	$(PIPE)/python -m benchmarks.run --scales $(or $(SCALES),10000,30000)

test: setup
	$(PIPE)/ruff check .
	$(PIPE)/redcloud services up
	$(PIPE)/python -m pytest $(PYTEST_ARGS)

down:
	@if [ -x $(PIPE)/redcloud ]; then $(PIPE)/redcloud services down; else echo "nothing to stop"; fi

# Re-pin dependencies (names and exact versions only).
requirements: | $(UV)
	for v in pipeline airflow superset; do \
	  $(UV) pip compile -q --python-version 3.11 --no-header --no-annotate requirements/$$v.in -o requirements/$$v.txt; \
	done

# Everything `make setup` and the runs created: the run folder and, for a clone PostgreSQL's user
# cannot reach, the cluster folder under /var/tmp its `.run/pg` link points to.
clean: down
	@pg=$$(readlink -f $(RUN)/pg 2>/dev/null); case "$$pg" in /var/tmp/redcloud-pg-*) echo "rm -rf $$pg"; rm -rf "$$pg";; esac
	rm -rf $(RUN)

clean-lake:
	rm -rf $(RUN)/lake $(RUN)/landing $(RUN)/synth
