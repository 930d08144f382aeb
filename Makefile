# abathur-tools. `make demo` and `make check` work on a fresh Debian 12 machine: run as root,
# they install the Debian packages the build and the tests need.
SWIFT      ?= $(or $(shell command -v swift),/opt/swift/usr/bin/swift)
BUILD_DIR  := .build
TEST_DIR   := .build-test
BIN        := build/bin
# Packages the build needs, then the ones the tests and demo use.
BUILD_DEPS := libsqlite3-dev zlib1g-dev libdeflate-dev libssl-dev pkg-config
TEST_DEPS  := sqlite3 gzip pigz man-db groff-base bash-completion util-linux mount e2fsprogs procps time python3
RELEASE_FLAGS := -c release --static-swift-stdlib -Xlinker -z -Xlinker now

.PHONY: all build test-build check fuzz demo bench bench-quick bench-tools deps clean

all: build

# Installs what is missing (as root), or says what to install.
deps:
	@missing=$$(for p in $(BUILD_DEPS) $(TEST_DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "missing Debian packages (run as root or install them): $$missing"; exit 1; fi; \
	fi

# The shipped build: one static-stdlib multi-call binary, one link per tool name.
build: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product abathur-tools
	$(SWIFT) build -c release --product abathur-demo
	@mkdir -p $(BIN)
	@cp $(BUILD_DIR)/release/abathur-tools $(BUILD_DIR)/release/abathur-demo $(BIN)/
	@# The binary is the one list of tools (ToolMain.commands).
	@for t in $$($(BIN)/abathur-tools --list-tools); do ln -sf abathur-tools $(BIN)/$$t; done

# Tests run an optimised build with fault injection compiled in (never shipped).
test-build: deps
	$(SWIFT) build -c release --scratch-path $(TEST_DIR) --build-tests \
	  -Xswiftc -enable-testing -Xswiftc -DABATHUR_FAULT_INJECTION

# The tests run in parallel, one worker per core: each has its own sandbox. The two that kill
# runs at moments measured from a normal run need the machine as busy while they measure as
# while they kill, so they run alone, after the others.
TIMED_TESTS := RestoreSafetyTests.testSIGKILLAtRandomMoments|CrashSafetyTests.testRealSIGKILLAtRandomMoments
RUN_TESTS   := ABATHUR_TEST_BIN=$(CURDIR)/$(TEST_DIR)/release $(SWIFT) test -c release --scratch-path $(TEST_DIR) --skip-build

# The page-reader fuzz test (Tests/AbathurCoreTests/PageReaderFuzzTests.swift) runs in `check`
# with its fixed seed and iteration count, whatever the environment says: `check` is
# deterministic.
FUZZ_VARS := ABATHUR_FUZZ_SEED ABATHUR_FUZZ_ITERATIONS ABATHUR_FUZZ_CASE ABATHUR_FUZZ_CASE_TIMEOUT

check: test-build
	env $(addprefix -u ,$(FUZZ_VARS)) $(RUN_TESTS) --parallel --skip '$(TIMED_TESTS)'
	$(RUN_TESTS) --filter '$(TIMED_TESTS)'

# The same fuzz test, longer, with a random seed (or ABATHUR_FUZZ_SEED, to replay a run;
# ABATHUR_FUZZ_CASE replays one case). The test prints the seed it used; a failure names the
# case's seed.
FUZZ_ITERATIONS ?= 20000
fuzz: test-build
	@seed=$${ABATHUR_FUZZ_SEED:-0x$$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')}; \
	echo "fuzz: seed $$seed, $${ABATHUR_FUZZ_ITERATIONS:-$(FUZZ_ITERATIONS)} iterations (replay: make fuzz ABATHUR_FUZZ_SEED=$$seed)"; \
	ABATHUR_FUZZ_SEED=$$seed ABATHUR_FUZZ_ITERATIONS=$${ABATHUR_FUZZ_ITERATIONS:-$(FUZZ_ITERATIONS)} \
	  $(RUN_TESTS) --filter 'PageReaderFuzzTests.testReaderAndSalvagerSurviveRandomDamage'

demo: build
	bash scripts/demo.sh $(BIN)

# Issue 14's suite: backup, restore, verify, integrity, and the writer during a backup, each
# against its baseline, alternating, BENCH_RUNS rounds (3); tables on stdout, JSON files in
# BENCH_OUT (build/bench). One database serves every script: BENCH_DB, made once by the first
# script (abathur-demo create is deterministic) and kept for the next run; delete it to make
# it again. `make bench-quick` is the same at 100 MiB.
BENCH_SIZE_MB ?= 1024
BENCH_DB      ?= /var/tmp/abathur-bench-$(BENCH_SIZE_MB)m.db
BENCH_SUITE   := bench.sh bench-restore.sh bench-verify.sh bench-integrity.sh bench-writer.sh
bench: build
	@start=$$(date +%s); \
	for s in $(BENCH_SUITE); do \
	  BENCH_SIZE_MB=$(BENCH_SIZE_MB) BENCH_DB=$(BENCH_DB) bash scripts/$$s $(BIN) || exit 1; echo; \
	done; \
	echo "bench: suite at $(BENCH_SIZE_MB) MiB in $$(( $$(date +%s) - start ))s (issue 14: under 600s at 1024 MiB on 2 cores)"

bench-quick:
	$(MAKE) bench BENCH_SIZE_MB=100

# The other tools' benchmarks (salvage, walfix, diskcheck, migrate), each with its own sizes.
bench-tools: build
	bash scripts/bench-salvage.sh $(BIN)
	bash scripts/bench-walfix.sh $(BIN)
	bash scripts/bench-diskcheck.sh $(BIN)
	bash scripts/bench-migrate.sh $(BIN)

clean:
	rm -rf $(BUILD_DIR) $(TEST_DIR) build dist

# --- Debian package -----------------------------------------------------------------
VERSION := $(shell dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null)
DEB_DEPS := debhelper lintian dpkg-dev fakeroot systemd man-db
INSTALL_TEST_DEPS := debootstrap

.PHONY: deb deb-check install-test deb-deps

deb-deps:
	@missing=$$(for p in $(BUILD_DEPS) $(DEB_DEPS) $(INSTALL_TEST_DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "missing Debian packages (run as root or install them): $$missing"; exit 1; fi; \
	fi

# Builds from a clean copy of the tracked files, so nothing local leaks into the package.
deb: deb-deps
	rm -rf build/deb && mkdir -p build/deb/abathur-tools-$(VERSION) dist
	git ls-files -z | xargs -0 cp --parents -t build/deb/abathur-tools-$(VERSION)
	cd build/deb/abathur-tools-$(VERSION) && PATH="$$PATH:/opt/swift/usr/bin" dpkg-buildpackage -us -uc -b
	rm -f dist/abathur-tools_*
	cp build/deb/abathur-tools_$(VERSION)_*.deb build/deb/abathur-tools_$(VERSION)_*.buildinfo build/deb/abathur-tools_$(VERSION)_*.changes dist/
	@ls -l dist/

deb-check: deb
	bash scripts/deb-check.sh dist/abathur-tools_$(VERSION)_*.deb

install-test: deb build
	bash scripts/install-test.sh dist/abathur-tools_$(VERSION)_*.deb
