# The two commands a newcomer needs: `make run` and `make test`. Both install the Debian
# packages they need first (.ci/install-deps; apt-get, sudo when not root).
.PHONY: all deps build run test test-deploy test-deb deb test-fast bench bench-cutover bench-database fuzz fuzz-build check format clean

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

# Every test: unit and end-to-end, built with AddressSanitizer + UBSan and warnings as errors,
# the fuzz corpora replayed in that build, then a few seconds of libFuzzer per fuzz target.
test: deps fuzz-build
	@cmake --preset ci >/dev/null
	@cmake --build build/ci -j $(JOBS)
	@ctest --preset ci -j $(JOBS)
	@ctest --preset fuzz -j $(JOBS)

# Every file in deploy/ run for real (root; tests/deploy/run.sh): the container image built
# and run with podman, compose with podman-compose, the systemd unit under systemd in
# systemd-nspawn, the Kubernetes manifests validated and their pod run with podman, the nginx
# configurations in front of two instances. Base images and npm packages are cached in
# /var/cache/mailconfd-tests; one build of mailconfd inside the image per run.
test-deploy: deps
	@tests/deploy/run.sh

# libFuzzer binaries (clang, ASan + UBSan) in build/fuzz.
fuzz-build: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))

# Runs every fuzz target for FUZZ_SECONDS each; new inputs go to build/fuzz/corpus/TARGET,
# crashes to build/fuzz/artifacts/. Add a finding's input to tests/fuzz/corpus/TARGET with its fix.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := email_address query_param http_request config autodiscover session log_line
fuzz: fuzz-build
	@mkdir -p build/fuzz/artifacts
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS)s"; \
	  build/fuzz/tests/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/$$t- \
	    build/fuzz/corpus/$$t tests/fuzz/corpus/$$t >build/fuzz/$$t.log 2>&1; rc=$$?; \
	  grep -E '^#[0-9]+ +DONE|^stat::(number_of_executed_units|peak_rss_mb)' build/fuzz/$$t.log; \
	  [ $$rc -eq 0 ] || { tail -40 build/fuzz/$$t.log; exit 1; }; \
	done

# The Debian package (deploy/debian/, dpkg-buildpackage): build/deb/mailconfd_VERSION_ARCH.deb.
deb: deps
	@.ci/build-deb

# The package tested for real: lintian, then install, upgrade, remove and purge in a Debian 12
# tree booted with systemd-nspawn (tests/deploy/deb_test.sh; README, "The Debian package").
test-deb: deps
	@tests/deploy/deb_test.sh

# Unit tests only, debug build: seconds.
test-fast: deps
	@cmake --preset dev >/dev/null
	@cmake --build build/dev -j $(JOBS)
	@ctest --preset dev -L unit

# mailconfd against nginx serving the same bytes, plus the 1M-domain checks, the cut-off scan
# and the database source (a few minutes each).
# BENCH_SECONDS (per run, default 6), BENCH_ROUNDS (default 1), BENCH_ONLY (regex on the rows),
# BENCH_MILLION=0 (skip the 1M-domain checks) and BENCH_BASELINE=BINARY (another build measured
# in the same run) tune it.
bench: build
	@.ci/install-deps wrk nginx-light python3 procps util-linux sqlite3 postgresql
	@python3 tests/bench/run.py
	@python3 tests/bench/cutover_bench.py build/release/mailconfd
	@python3 -u tests/bench/tls_bench.py build/release/mailconfd
	@python3 tests/bench/database_bench.py build/release/mailconfd

# Only the database source's benchmark: 1M domains and 2M login names from a temporary
# PostgreSQL 15 against the same domains from the file (BENCH_DB_DOMAINS, BENCH_DB_CHANGES,
# BENCH_SECONDS, BENCH_ROUNDS tune it).
bench-database: build
	@.ci/install-deps wrk python3 procps util-linux postgresql
	@python3 tests/bench/database_bench.py build/release/mailconfd

# Only the cut-off scan's benchmark: a generated 5M-line mail log against grep
# (BENCH_CUTOVER_LINES, BENCH_CUTOVER_ROUNDS tune it).
bench-cutover: build
	@.ci/install-deps python3 util-linux
	@python3 tests/bench/cutover_bench.py build/release/mailconfd

# Validates a configuration file: make check CONFIG=/etc/mailconfd/mailconfd.xml
check: build
	./build/release/mailconfd check --config $(CONFIG)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf build
