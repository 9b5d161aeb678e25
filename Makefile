# snapcourier: every install step is here, pinned, so a fresh machine (Rust, Python 3.11,
# Node 20) needs nothing else.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-emulator test-asl test-cdk lint fmt emulator bench build clean cdk-schema templates

setup: $(STAMP) statemachine/node_modules/.installed cdk/node_modules/.installed

cdk/node_modules/.installed: cdk/package-lock.json
	cd cdk && npm ci --no-audit --no-fund --loglevel=error
	touch $@

statemachine/node_modules/.installed: statemachine/package-lock.json
	cd statemachine && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(STAMP): tests/emulator/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/emulator/requirements.txt
	touch $(STAMP)

## Always the whole workspace: building one package alone resolves other features and compiles
## the AWS SDK a second time (see "One build" in crates/aws/Cargo.toml).
build:
	cargo build --workspace --bins

## The main job against the embedded emulator: in-process with the CLI, then as deployed
## (both state machines, the real Lambda binaries under cargo lambda watch).
demo: setup build
	scripts/demo.sh
	@echo
	@echo "== the same job as deployed: Step Functions state machines and Lambda functions"
	target/debug/demo-state-machines

## Every test: domain, adapters, handlers, runs over the emulator, and the emulator itself.
test: setup
	cargo build --workspace --all-targets
	cargo test --workspace --no-fail-fast
	$(MAKE) test-emulator
	$(MAKE) test-asl
	$(MAKE) test-cdk

## asl-validator on both state machines (schema, dangling Next, path syntax).
test-asl: setup
	cd statemachine && npx --no-install asl-validator --json-path source.asl.json --json-path destination.asl.json --json-path drill.asl.json

test-emulator: setup
	cd tests/emulator && ../../$(PY) -m unittest -v test_emulator 2>&1 | tail -n 25

## Refresh cdk/config.schema.json, the checked-in copy of `snapcourier schema` that the CDK app
## validates configs against (a cargo test fails when it drifts).
cdk-schema:
	cargo run -q -p snapcourier-cli -- schema > cdk/config.schema.json

CDK_TESTS := test/config.test.ts test/stacks.test.ts test/iam.test.ts test/kms.test.ts test/nag.test.ts test/monitoring.test.ts test/keys.test.ts test/vault.test.ts test/drill.test.ts test/elasticache.test.ts test/engine-table.test.ts

## The CDK app: TypeScript type check, then the Node test runner over the synthesized stacks
## (the config checks need the snapcourier binary, which prints each schedule's input).
test-cdk: setup
	cargo build -q --workspace --bins
	cd cdk && npx --no-install tsc --noEmit
	cd cdk && node --import tsx --test $(CDK_TESTS) 2>&1 | tail -n 12
	@# cfn-lint (pinned with moto in tests/emulator/requirements.txt) on the synthesized templates,
	@# with stand-in Lambda binaries; W3005 (redundant DependsOn) is CDK's own output.
	tmp=$$(mktemp -d) && for f in take share copy_in_destination cross_region_copy delete drill; do \
	  mkdir -p $$tmp/lambda/$$f && echo stand-in > $$tmp/lambda/$$f/bootstrap; done && \
	  (cd cdk && SNAPCOURIER_LAMBDA_DIR=$$tmp/lambda npx --no-install cdk synth -q -o $$tmp/out >/dev/null) && \
	  $(VENV)/bin/cfn-lint --ignore-checks W3005 -- $$tmp/out/*.template.json && echo "cfn-lint: no findings" && rm -rf $$tmp

## Deploying without CDK: the Lambda functions as arm64 release zips (cargo lambda, zig from
## the venv) and the synthesized templates, which take the code from the LambdaBucket and
## LambdaPrefix parameters and need no CDK bootstrap, in dist/; plus the statements the source
## account's database keys need (dist/source-key-policy.json). CONFIG=path picks the config.
CONFIG ?= examples/snapcourier.yaml
LAMBDAS := take share copy_in_destination cross_region_copy delete drill
templates: setup
	rustup target add aarch64-unknown-linux-gnu
	cargo build -q --workspace --bins
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 --output-format zip -p snapcourier-lambdas
	rm -rf dist && mkdir -p dist/lambda
	for f in $(LAMBDAS); do cp target/lambda/$$f/bootstrap.zip dist/lambda/$$f.zip; done
	cd cdk && SNAPCOURIER_CONFIG="$(abspath $(CONFIG))" SNAPCOURIER_TEMPLATES=1 \
	  SNAPCOURIER_KEY_POLICY_OUT=../dist/source-key-policy.json \
	  SNAPCOURIER_SCP_OUT=../dist/scp-destinations.json \
	  npx --no-install cdk synth -q -o ../dist/cdk.out >/dev/null
	cp dist/cdk.out/*.template.json dist/ && rm -rf dist/cdk.out
	$(VENV)/bin/cfn-lint --ignore-checks W3005 -- dist/*.template.json
	@echo "dist/: $$(cd dist && ls *.template.json lambda/*.zip source-key-policy.json scp-destinations.json | tr '\n' ' ')"

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cd cdk && npx --no-install tsc --noEmit

fmt:
	cargo fmt --all

## Benchmarks (never part of make test), printed as one table: steady-state AWS calls at 5,000
## snapshots per side and engine, 1,000 new databases at 30 ms per call, and the largest schedule
## one execution per side handles in about ten minutes (SNAPCOURIER_BENCH_CLUSTERS).
bench: setup
	cargo build -q --workspace --bins
	cargo test -p snapcourier-e2e --test bench -- --ignored --nocapture

## The emulator in the foreground with the demo world (state in .emulator/state.json).
emulator: setup
	mkdir -p .emulator
	PYTHONPATH=tests/emulator $(PY) -m snapcourier_emulator serve --port 0 --seed demo --state-file .emulator/state.json

clean:
	cargo clean
	rm -rf $(VENV) .emulator statemachine/node_modules cdk/node_modules cdk/cdk.out
