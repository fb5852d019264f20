# numerai-sandbox: `make demo` runs the example model in Numerai's conditions; `make test` runs the tests.
# Both do all set-up on a fresh Debian machine (as root): venv, Docker engine, images (network off).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SANDBOX := $(BIN)/numerai-sandbox
DEMO_PYTHON ?= 3.11
# The images the tests need: 3.11 from Debian's own Python, 3.10 and 3.12 from a local CPython (3.10 also runs
# the pickles of 3.9, which Numerai has no image for).
TEST_PYTHONS ?= 3.10 3.11 3.12
# 1: also the tests that fetch ~3 GB of wheels (numerai-tools and torch models in the auto profile).
TEST_ALL ?= 0

.PHONY: help setup engine browser gvisor registry-tool fetch images examples demo test test-unit test-all test-independence bench bench-images fuzz load soak clean distclean

help:
	@echo "make demo        set everything up and run the example model (prints its verdict)"
	@echo "make test        set everything up and run the test suite (what CI runs)"
	@echo "make test-unit   the fast tests that need no Docker"
	@echo "make gvisor      register gVisor's runsc with the Docker engine (for run --isolation gvisor)"
	@echo "make test-all    also the Python 3.13 and 3.14 images, models needing torch, every corpus case under gVisor (slow: ~3 GB, 3.14 compiles scikit-learn once)"
	@echo "make test-independence  the suite twice: as is, then on a used machine's state (which must survive it)"
	@echo "make bench       measure the runner's overhead; make bench-images: build times and sizes"
	@echo "make fuzz        the nightly-size fuzzing campaign: FUZZ_INPUTS (200,000) inputs, figures in fuzz-figures.json"
	@echo "make load        8 runs and 2 checks at once vs one at a time; make soak: SOAK_RUNS (500) API runs in one process"
	@echo "make clean       remove our containers and temp dirs; distclean: also images and the venv"

$(SANDBOX): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "numerai-sandbox needs Python >= 3.11 (set PYTHON=...)")'
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,html]'
	@touch $@

setup: $(SANDBOX)

engine:
	@bash scripts/ensure-engine.sh

# Debian's chromium and chromium-driver, for the HTML report's browser test.
browser:
	@bash scripts/ensure-browser.sh

# gVisor for `run --isolation gvisor`: Debian's runsc, registered with a SIGHUP reload (never a restart).
gvisor: engine
	@bash scripts/register-runsc.sh

# Debian's docker-registry: the tests start one on a loopback port (the packaged service is not wanted).
registry-tool:
	@command -v docker-registry >/dev/null 2>&1 || { \
	  echo "installing Debian's docker-registry (the tests serve one on 127.0.0.1)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null \
	    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null; }; \
	  /etc/init.d/docker-registry stop >/dev/null 2>&1 || true; }

# The only step that uses the network: base root filesystem and wheels into the local cache.
fetch: setup engine
	$(SANDBOX) images fetch --python $(DEMO_PYTHON)

images: fetch
	$(SANDBOX) images build --python $(DEMO_PYTHON)

examples: images
	$(BIN)/python examples/build_examples.py --python $(DEMO_PYTHON)

demo: examples
	$(SANDBOX) run examples/build/py$(DEMO_PYTHON)/lgbm_1arg.pkl

# GVISOR_CORPUS: the corpus cases that also run under gVisor (reasons: one per reason; all: every case).
GVISOR_CORPUS ?= reasons

test: setup engine browser gvisor registry-tool
	@for v in $(TEST_PYTHONS); do $(SANDBOX) images fetch --python $$v || exit 1; done
	@for v in $(TEST_PYTHONS); do $(SANDBOX) images build --python $$v || exit 1; done
	NUMERAI_SANDBOX_REQUIRE_DOCKER=1 NUMERAI_SANDBOX_REQUIRE_GVISOR=1 NUMERAI_SANDBOX_GVISOR_CORPUS=$(GVISOR_CORPUS) \
		TEST_PYTHONS="$(TEST_PYTHONS)" NUMERAI_SANDBOX_TEST_ALL=$(TEST_ALL) $(BIN)/pytest -q

test-unit: setup
	$(BIN)/pytest -q -m "not docker"

test-all:
	$(MAKE) test TEST_PYTHONS="3.10 3.11 3.12 3.13 3.14" GVISOR_CORPUS=all TEST_ALL=1

# Not part of `make test`: two runs of the suite (~40 min). USED_MACHINE: options of scripts/used_machine.py put.
test-independence: setup engine
	USED_MACHINE="$(USED_MACHINE)" bash scripts/check-independence.sh

bench: examples
	$(BIN)/python scripts/bench.py --python $(DEMO_PYTHON)

bench-images: setup engine
	$(BIN)/python scripts/bench_images.py

# Not part of `make test` (which runs a seeded sample of it): the nightly-size campaign, ~1 hour on 2 cores.
# Needs the Python 3.11 image (whole runs are replayed) and the example pickles (seeds): `examples` makes both.
FUZZ_INPUTS ?= 200000
fuzz: examples
	$(BIN)/python scripts/fuzz.py --inputs $(FUZZ_INPUTS) --out fuzz-figures.json --findings fuzz-findings

# Not part of `make test` (slow): 8 runs + 2 checks alone then at once (~1 min); a long-lived API process, SOAK_RUNS runs (~2.5 s each).
load: examples
	$(BIN)/python scripts/load.py --python $(DEMO_PYTHON) --out load-figures.json

SOAK_RUNS ?= 500
soak: examples
	$(BIN)/python scripts/soak.py --runs $(SOAK_RUNS) --python $(DEMO_PYTHON) --out soak-figures.json

clean:
	-@[ -x $(SANDBOX) ] && $(SANDBOX) clean
	rm -rf examples/build .pytest_cache

distclean: clean
	-@[ -x $(SANDBOX) ] && $(SANDBOX) images rm --all --yes
	rm -rf $(VENV)
