# backup-fleet: the two commands that matter are `make demo` and `make test`.
#
# Cargo's target directory lives outside the clone (override with CARGO_TARGET_DIR) so that
# repeated CI runs and fresh clones build incrementally: the AWS SDK crates take many minutes cold.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/backup-fleet/target
export CARGO_TERM_COLOR ?= never
export MOTO_PORT ?= 4566
CARGO ?= cargo

.PHONY: all build test tests fmt-check lint unit integration infra-check demo demo-check bench bench-dump soak emulator-start emulator-stop schemas realism-check

all: build

# Every step selects the whole workspace with all its targets, so cargo resolves one feature set
# (test-only features such as tokio's test-util included) and compiles each AWS SDK crate once
# for build and test alike; clippy's check pass is the only other one.
build:
	$(CARGO) build --workspace --all-targets --locked

## make test: formatting, clippy (warnings are errors), unit tests, Terraform and IAM checks, the
## realism layer's own tests, the integration tests against the local emulators (plain moto for the
## runtime, producer and CLI; moto with the realism layer for every backup, copy, prune, verify and
## restore path and the chaos test; started if none answers, stopped afterwards), and the demo on a
## small estate (realism on), which asserts its own report.
test: fmt-check lint infra-check realism-check tests demo-check

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## The unit and integration tests of every crate in one cargo run, with the emulators up.
tests: build
	bash scripts/browser.sh install
	bash scripts/postgres.sh install
	bash scripts/with-emulator.sh $(CARGO) test --workspace --locked -- --test-threads=$${TEST_THREADS:-6}

unit:
	$(CARGO) test --workspace --locked --exclude backup-tests

infra-check: build
	bash scripts/check-terraform.sh

integration: build
	bash scripts/browser.sh install
	bash scripts/postgres.sh install
	bash scripts/with-emulator.sh $(CARGO) test -p backup-tests --locked -- --test-threads=$${TEST_THREADS:-6}

## Regenerate the checked-in JSON Schema files from the Rust types.
schemas:
	$(CARGO) run -q -p backup-schemas --example gen-json-schema

## make demo: a full backup cycle against the local emulator, with a report.
demo: build
	bash scripts/demo.sh

demo-check: build
	DEMO_SMALL=1 bash scripts/demo.sh

## make bench: coordination cost, CPU, memory and throughput of the fleet (not part of make test).
bench:
	bash scripts/bench.sh

## make bench-dump: a worker's memory while it streams a ~1 GB pg_dump into S3, at 16, 5 and 64 MiB
## parts (not part of make test; uses the binaries already built, no cargo; see docs/BENCHMARKS.md).
bench-dump:
	bash scripts/bench_dump.sh

## make soak: an hour of steady, mixed work with injected faults; fails if worker memory grows or
## any task ends in the wrong place (not part of make test; see docs/BENCHMARKS.md).
soak:
	BENCH_PHASES=soak bash scripts/bench.sh

## make realism-check: the tests of the emulator's speed-ups and realism layer (scripts/emulator_*.py). They
## start their own moto server on a free port and stop it afterwards (~50 s).
realism-check:
	bash scripts/emulator.sh install
	.venv/bin/python scripts/test_emulator_speedups.py
	.venv/bin/python scripts/test_emulator_realism.py

emulator-start:
	bash scripts/emulator.sh start

emulator-stop:
	bash scripts/emulator.sh stop
