# The two commands a newcomer needs: `make run` and `make test`. Both install the Debian
# packages they need first (.ci/install-deps; apt-get, sudo when not root).
.PHONY: all deps build run test test-fast bench check format clean

JOBS ?= $(shell nproc)

all: build

deps:
	@.ci/install-deps

# Optimized binary at build/release/mailconfd.
build: deps
	@cmake --preset release >/dev/null
	@cmake --build build/release -j $(JOBS) --target mailconfd

# Serves the built-in example configuration (deploy/example/mailconfd.xml) on 127.0.0.1:8080.
run: build
	./build/release/mailconfd serve --listen 127.0.0.1:8080

# Every test: unit and end-to-end, built with AddressSanitizer + UBSan and warnings as errors.
test: deps
	@cmake --preset ci >/dev/null
	@cmake --build build/ci -j $(JOBS)
	@ctest --preset ci -j $(JOBS)

# Unit tests only, debug build: seconds.
test-fast: deps
	@cmake --preset dev >/dev/null
	@cmake --build build/dev -j $(JOBS)
	@ctest --preset dev -L unit

# mailconfd against nginx serving the same bytes, plus the 1M-domain checks (a few minutes).
# BENCH_SECONDS (per run, default 6) and BENCH_ROUNDS (default 1) tune it.
bench: build
	@.ci/install-deps wrk nginx-light python3 procps util-linux
	@python3 tests/bench/run.py

# Validates a configuration file: make check CONFIG=/etc/mailconfd/mailconfd.xml
check: build
	./build/release/mailconfd check --config $(CONFIG)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf build
