# ventral — one-command setup, build, test and reproduction.
#
#   make reproduce-paper   set up, build, run pipelines/paper.toml on the embedded default
#   make test              set up, build, run every test
#   make bench             print performance figures (no test fails on time)
#   make lint              cargo fmt --check and clippy -D warnings
#   make fuzz              fuzz the parsers of outside input (nightly; FUZZ_SECONDS each)
#   make faults            the whole fault campaign (disk full, SIGKILL, damage, read-only,
#                          concurrency); rewrites RELIABILITY.md's table
#
# Everything is idempotent: a second run skips finished setup in seconds.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# In CI (CI set), keep the venv and the cargo target outside the clone so that they
# survive between runs; elsewhere, keep them in the checkout.
ifdef CI
CACHE_DIR ?= $(HOME)/.cache/ventral
VENV ?= $(CACHE_DIR)/venv
XVENV ?= $(CACHE_DIR)/venv-crosscheck
S3VENV ?= $(CACHE_DIR)/venv-s3
CARGO_TARGET_DIR ?= $(CACHE_DIR)/target
else
VENV ?= $(CURDIR)/.venv
XVENV ?= $(CURDIR)/.venv-crosscheck
S3VENV ?= $(CURDIR)/.venv-s3
CARGO_TARGET_DIR ?= $(CURDIR)/target
endif
export CARGO_TARGET_DIR
export PATH := $(VENV)/bin:$(HOME)/.cargo/bin:$(PATH)
# tch builds against the venv's torch (libtorch from the PyPI wheel).
export LIBTORCH_USE_PYTORCH := 1
# Tests that check interop with zarr-python, xarray, pyarrow and DuckDB use this Python.
export VENTRAL_PYTHON := $(VENV)/bin/python
# Brain-Score's own metrics (brainscore-vision 2.4.2, numpy<2, sklearn 1.5) live in a venv of
# their own; the cross-check tests call crosscheck/reference.py with it.
export VENTRAL_CROSSCHECK_PYTHON := $(XVENV)/bin/python
# The Python package's extension (python/, crate ventral-python) is compiled by maturin
# alone (`make python`), in the same target folder and profile as everything else. maturin
# sets PYTHON_SYS_EXECUTABLE, which our model-spec build script reads: every cargo call sees
# the same value, so nothing is compiled once for cargo and again for maturin.
export PYTHON_SYS_EXECUTABLE := $(VENV)/bin/python
EXCLUDE_PY := --exclude ventral-python

VENTRAL := $(CARGO_TARGET_DIR)/debug/ventral
APT_PACKAGES := libhdf5-dev pkg-config fonts-dejavu-core chromium slurm-wlm munge curl
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
REQ := lockfiles/requirements.txt
VENV_STAMP := $(VENV)/.ventral-$(shell sha256sum $(REQ) | cut -c1-16)
XREQ := lockfiles/requirements-crosscheck.txt lockfiles/requirements-brainscore.txt
XVENV_STAMP := $(XVENV)/.ventral-$(shell cat $(XREQ) | sha256sum | cut -c1-16)
S3REQ := lockfiles/requirements-s3.txt
S3VENV_STAMP := $(S3VENV)/.ventral-$(shell sha256sum $(S3REQ) | cut -c1-16)
# The S3 server of the remote-cache tests (moto) runs from this venv's Python.
export VENTRAL_S3_PYTHON := $(S3VENV)/bin/python
APT_STAMP := $(CARGO_TARGET_DIR)/.ventral-apt-$(shell echo $(APT_PACKAGES) | sha256sum | cut -c1-12)

.PHONY: help setup apt venv xvenv s3venv build python test lint bench bench-gpu bench-scaling bench-full crosscheck fuzz faults reproduce-paper clean

help:
	@sed -n '2,13p' Makefile | sed 's/^# \{0,1\}//'

setup: apt venv xvenv s3venv

# Debian packages, installed only when missing.
apt: $(APT_STAMP)
$(APT_STAMP):
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@mkdir -p $(dir $@) && touch $@

# The Python venv (torch 2.11.0 for libtorch, and the tools the tests use), from a
# hash-locked requirements file; reinstalled only when that file changes.
venv: $(VENV_STAMP)
$(VENV_STAMP): $(REQ)
	@echo "setup: Python venv at $(VENV) from $(REQ)"
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes -r $(REQ)
	@rm -f $(VENV)/.ventral-* && touch $@

# The reference venv for the cross-checks: Brain-Score's metrics without torch.
xvenv: $(XVENV_STAMP)
$(XVENV_STAMP): $(XREQ)
	@echo "setup: Brain-Score reference venv at $(XVENV)"
	@test -x $(XVENV)/bin/python || python3 -m venv $(XVENV)
	$(XVENV)/bin/pip install --quiet --require-hashes -r lockfiles/requirements-crosscheck.txt
	$(XVENV)/bin/pip install --quiet --no-deps --require-hashes -r lockfiles/requirements-brainscore.txt
	@rm -f $(XVENV)/.ventral-* && touch $@

# The S3-compatible test server (moto), in a venv of its own.
s3venv: $(S3VENV_STAMP)
$(S3VENV_STAMP): $(S3REQ)
	@echo "setup: S3 test server venv at $(S3VENV)"
	@test -x $(S3VENV)/bin/python || python3 -m venv $(S3VENV)
	$(S3VENV)/bin/pip install --quiet --require-hashes -r $(S3REQ)
	@rm -f $(S3VENV)/.ventral-* && touch $@

build: setup
	cargo build --workspace --all-targets $(EXCLUDE_PY)

# The Python package: a wheel built by maturin from python/ (the workspace's target folder and
# profile: after `build`, only the extension's own crate is linked again), installed into
# the project venv and Brain-Score's reference venv.
WHEELS := $(CARGO_TARGET_DIR)/wheels
python: build
	@rm -f $(WHEELS)/ventral-*.whl
	@set -o pipefail; cd python && maturin build --profile dev --compatibility linux --strip \
	  --interpreter $(VENV)/bin/python --out $(WHEELS) 2>&1 | tee $(CARGO_TARGET_DIR)/maturin.log | grep -E '^(error|warning)|Built wheel' || true
	@test -f $(WHEELS)/ventral-*.whl || { echo "make python: maturin built no wheel (see $(CARGO_TARGET_DIR)/maturin.log)"; exit 1; }
	@others=$$(grep -E '^ *Compiling ' $(CARGO_TARGET_DIR)/maturin.log | grep -vE ' (ventral-python|pyo3|pyo3-ffi|pyo3-macros|pyo3-macros-backend|pyo3-build-config|numpy|arrow-pyarrow) ' | sed 's/^ *Compiling //'); \
	  [ -z "$$others" ] || echo "make python: the wheel's build compiled crates the workspace build had compiled (feature or environment drift; see python/Cargo.toml): $$others"
	$(VENV)/bin/pip install --quiet --force-reinstall --no-deps $(WHEELS)/ventral-*.whl
	$(XVENV)/bin/pip install --quiet --force-reinstall --no-deps $(WHEELS)/ventral-*.whl

test: build python
	@rm -f $(CARGO_TARGET_DIR)/skipped.log
	@set -o pipefail; VENTRAL_SKIP_LOG=$(CARGO_TARGET_DIR)/skipped.log cargo test --workspace $(EXCLUDE_PY) --no-fail-fast 2>&1 | tee $(CARGO_TARGET_DIR)/test.log
	@awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($$(i+1) ~ /^passed/) p += $$i; if ($$(i+1) ~ /^failed/) f += $$i; if ($$(i+1) ~ /^ignored/) s += $$i } } \
	  END { printf "tests: %d passed, %d failed, %d ignored\n", p, f, s }' $(CARGO_TARGET_DIR)/test.log
	@n=$$(cat $(CARGO_TARGET_DIR)/skipped.log 2>/dev/null | wc -l); echo "tests: $$n passed without running for a missing resource (a venv, ../shared/data)$$( [ $$n -gt 0 ] && echo ':' )"; \
	  cat $(CARGO_TARGET_DIR)/skipped.log 2>/dev/null | sed 's/^/  /' || true
	@# The Python package's tests, in the project venv and beside Brain-Score 2.4.2.
	@set -o pipefail; VENTRAL_BIN=$(VENTRAL) VENTRAL_TORCH=$(CARGO_TARGET_DIR)/debug/ventral-torch VENTRAL_NETCDF=$(CARGO_TARGET_DIR)/debug/ventral-netcdf \
	  $(VENV)/bin/python -m pytest -q -p no:cacheprovider -p no:warnings -rs python/tests 2>&1 | tee $(CARGO_TARGET_DIR)/pytest.log
	@set -o pipefail; VENTRAL_BIN=$(VENTRAL) VENTRAL_TORCH=$(CARGO_TARGET_DIR)/debug/ventral-torch VENTRAL_NETCDF=$(CARGO_TARGET_DIR)/debug/ventral-netcdf \
	  $(XVENV)/bin/python -m pytest -q -p no:cacheprovider -p no:warnings -rs python/tests 2>&1 | tee $(CARGO_TARGET_DIR)/pytest-brainscore.log
	@echo "python tests (project venv): $$(grep -E '[0-9]+ (passed|failed)' $(CARGO_TARGET_DIR)/pytest.log | tail -1)"
	@echo "python tests (beside Brain-Score 2.4.2): $$(grep -E '[0-9]+ (passed|failed)' $(CARGO_TARGET_DIR)/pytest-brainscore.log | tail -1)"

lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# Our metrics against Brain-Score's own code on generated problems (also part of `make test`).
crosscheck: build
	cargo test --workspace $(EXCLUDE_PY) --test 'crosscheck*' -- --nocapture

bench: build python
	bash bench/engine.sh $(VENTRAL)
	bash bench/synth.sh $(VENTRAL)
	bash bench/ingest.sh $(VENTRAL)
	bash bench/model.sh $(CARGO_TARGET_DIR)/debug/examples/bench_model --device cpu --batch 16 --iters 4
	bash bench/model.sh $(CARGO_TARGET_DIR)/debug/examples/bench_model --arch resnet50 --device cpu --batch 16 --iters 4
	bash bench/model.sh $(CARGO_TARGET_DIR)/debug/examples/bench_model --arch alexnet --device cpu --batch 16 --iters 4
	bash bench/loader.sh $(CARGO_TARGET_DIR)/debug/examples/bench_loader
	$(CARGO_TARGET_DIR)/debug/examples/bench_commit
	$(CARGO_TARGET_DIR)/debug/examples/bench_slurm $(VENTRAL)
	$(CARGO_TARGET_DIR)/debug/examples/bench_remote $(VENTRAL)
	$(CARGO_TARGET_DIR)/debug/examples/bench_fetch $(VENTRAL)
	bash bench/stages.sh $(VENTRAL)
	bash bench/stores.sh $(CARGO_TARGET_DIR)/debug/examples/bench_sql
	$(CARGO_TARGET_DIR)/debug/examples/bench_neural
	$(CARGO_TARGET_DIR)/debug/examples/bench_ost
	$(XVENV)/bin/python bench/python.py

# CORnet-S on a CUDA machine: fp32, then bf16 + channels-last, ours vs PyTorch eager (images/s
# and GPU memory), then the CUDA paths of training and extraction checked against the CPU.
# Fuzz the parsers of outside input (cargo-fuzz on a nightly toolchain), FUZZ_SECONDS each.
# New inputs go to a scratch corpus; a crash's input is left under fuzz/artifacts/ — commit
# it under fuzz/regressions/TARGET/ with the fix (`make test` replays both folders); one
# inside a C library that cannot be fixed here goes under fuzz/findings/TARGET/ (not replayed).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := pipeline lockfile sources checkpoint sql cifar coco stimulus_set zarr_assembly netcdf
FUZZ_LOG := $(CARGO_TARGET_DIR)/fuzz.jsonl
fuzz:
	@rustup toolchain list 2>/dev/null | grep -q '^nightly' || { echo "make fuzz: needs a nightly toolchain (rustup toolchain install nightly); nothing fuzzed"; exit 1; }
	@cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked
	@rm -f $(FUZZ_LOG)
	@crashed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(CARGO_TARGET_DIR)/fuzz-corpus/$$t fuzz/regressions/$$t; \
	  opts=""; env=""; \
	  if [ $$t = netcdf ]; then opts="-detect_leaks=0 -malloc_limit_mb=1048576 -timeout=10"; env="allocator_may_return_null=1"; fi; \
	  (cd fuzz && ASAN_OPTIONS=$$env CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/fuzz cargo +nightly fuzz run $$t $(CARGO_TARGET_DIR)/fuzz-corpus/$$t corpus/$$t regressions/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$opts 2>&1) > $(CARGO_TARGET_DIR)/fuzz-$$t.log; rc=$$?; \
	  runs=$$(grep -o 'stat::number_of_executed_units: *[0-9]*' $(CARGO_TARGET_DIR)/fuzz-$$t.log | grep -o '[0-9]*$$'); \
	  where=$$(grep -o 'SUMMARY: AddressSanitizer: [A-Za-z-]*.*' $(CARGO_TARGET_DIR)/fuzz-$$t.log | grep -o ' in [A-Za-z_0-9]*$$' | head -1); \
	  lib=$$(grep -q 'SUMMARY: AddressSanitizer.*libhdf5' $(CARGO_TARGET_DIR)/fuzz-$$t.log && echo ' inside libhdf5'); \
	  echo "fuzz $$t: $${runs:-0} executions in $(FUZZ_SECONDS) s, $$( [ $$rc -eq 0 ] && echo 'no crash' || echo "CRASH (exit $$rc)$$lib$$where: see $(CARGO_TARGET_DIR)/fuzz-$$t.log")"; \
	  echo "{\"target\": \"$$t\", \"seconds\": $(FUZZ_SECONDS), \"executions\": $${runs:-0}, \"result\": \"$$( [ $$rc -eq 0 ] && echo 'no crash' || echo "crash$$lib$$where (exit $$rc)")\"}" >> $(FUZZ_LOG); \
	  [ $$rc -eq 0 ] || crashed="$$crashed $$t"; \
	done; \
	$(VENV)/bin/python tools/reliability.py fuzz $(FUZZ_LOG) RELIABILITY.md; \
	[ -z "$$crashed" ] || { echo "make fuzz: crashes in$$crashed (inputs under fuzz/artifacts/)"; exit 1; }

# The fault campaign of crates/cli/tests/faults.rs at full size (`make test` runs a few cases
# of each class): every case's tally goes to a log, from which RELIABILITY.md's table is
# written. Needs root (tmpfs and read-only mounts), as `make test` does.
FAULTS_LOG := $(CARGO_TARGET_DIR)/faults.jsonl
faults: build
	@rm -f $(FAULTS_LOG)
	@set -o pipefail; VENTRAL_FAULTS=full VENTRAL_FAULTS_LOG=$(FAULTS_LOG) cargo test --workspace $(EXCLUDE_PY) --test faults --test security -- --test-threads=1 2>&1 | tee $(CARGO_TARGET_DIR)/faults.log | grep -E '^test |cases not handled' ; \
	  rc=$$?; $(VENV)/bin/python tools/reliability.py faults $(FAULTS_LOG) RELIABILITY.md; exit $$rc

# How each stage's time and peak memory grow with the data: the embedded profile at the
# embedded world and at twice its images (about 17 minutes on 2 cores).
bench-scaling: build
	bash bench/scaling.sh $(VENTRAL) 2

# The full-size rehearsal of the real profile (bench/rehearsal.sh): the world at the real
# datasets' sizes (ImageNet and CIFAR-100 as a stated tenth), checkpoints written by torch,
# `ventral fetch` from a local server, then every stage of `--profile real` in its own
# process; the world ≈ 25 min, then ≈ 5 h of stages on 2 CPU cores (the model passes), and
# 35 GB of disk under REHEARSAL_DIR (default /tmp).
bench-full: build
	bash bench/rehearsal.sh $(VENTRAL) $(VENV)/bin/python

bench-gpu: build
	bash bench/gpu.sh $(CARGO_TARGET_DIR)/debug/examples/bench_model $(CARGO_TARGET_DIR)/debug/examples/gpu_check

reproduce-paper: build
	@start=$$(date +%s); \
	$(VENTRAL) run -p pipelines/paper.toml && \
	echo && echo "report: results/report/report.md (and report.html, table1.csv), in $$(( $$(date +%s) - start )) s"

clean:
	rm -rf $(CARGO_TARGET_DIR) .ventral results
