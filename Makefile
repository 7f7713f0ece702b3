# weft — the two commands a newcomer needs are `make demo` and `make test`.
# Everything is built by CMake in build/<flavour>/; this file only drives it.

JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX  ?= /usr/local
FILTER  ?= .
CMAKE   ?= cmake
CTEST   ?= ctest
WERROR  ?= OFF
CMAKE_FLAGS ?=

define configure
	@$(CMAKE) -S . -B build/$(1) -DWEFT_WERROR=$(WERROR) $(2) $(CMAKE_FLAGS) > build/$(1).log 2>&1 || { cat build/$(1).log; exit 1; }
	@$(CMAKE) --build build/$(1) -j $(JOBS)
endef

define run_tests
	cd build/$(1) && $(2) $(CTEST) --output-on-failure -j $(JOBS) --label-exclude long $(3)
endef

.PHONY: all build demo test stress bench bench-report bench-peers test-asan test-tsan \
        test-aarch64 test-ucontext test-poll test-clang test-valgrind test-guard-fallback install format check-format clean \
        fuzz

all: build

build:
	@mkdir -p build
	$(call configure,default,-DCMAKE_BUILD_TYPE=RelWithDebInfo)

demo: build
	./build/default/examples/tour

test: build
	$(call run_tests,default)

# Long stress runs (a minute each); `make test` runs the same programs briefly.
stress: build
	$(call run_tests,default,WEFT_STRESS_SECONDS=60,-L stress --timeout 600)

# Benchmarks, printed in Go's benchmark format, with the peers that are
# installed measured in the same run. FILTER=<regex> picks benchmarks.
bench:
	@mkdir -p build
	$(call configure,release,-DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF)
	@bench/run.sh build/release '$(FILTER)'

# The benchmarks as one page of plots, docs/bench/README.md: runs them
# (FILTER=<regex> picks) and saves the run to docs/bench/run.txt, or, with
# SAVED=<file>, draws a saved run again. Needs python3-matplotlib.
bench-report:
	@mkdir -p build
ifeq ($(SAVED),)
	$(call configure,release,-DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF)
endif
	@bench/report.sh build/release '$(FILTER)' '$(SAVED)'

# Installs the peers' Debian packages (as root).
bench-peers:
	bench/install-peers.sh

test-asan:
	@mkdir -p build
	$(call configure,asan,-DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=address -DWEFT_TEST_TIMEOUT_MULTIPLIER=4)
	$(call run_tests,asan,ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)

# ThreadSanitizer cannot map its shadow memory under the high-entropy
# address randomization of recent kernels; setarch -R turns it off for the
# run. atexit_sleep_ms=0: TSan otherwise sleeps a second at every exit,
# which the daemon-thread tests would see as the process outliving them.
test-tsan:
	@mkdir -p build
	$(call configure,tsan,-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_SANITIZE=thread -DWEFT_TEST_TIMEOUT_MULTIPLIER=6)
	$(call run_tests,tsan,TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 atexit_sleep_ms=0 suppressions=$(CURDIR)/tests/tsan.supp" setarch -R)

# Valgrind's memcheck over the test programs, built without sanitizers
# (tests/valgrind.supp says what it is told to overlook, and why).
# test-proc and test-cluster are left out: Valgrind 3.19 knows neither
# pidfd_open nor a true vfork (weft falls back to SIGCHLD, and an exec's
# errno is not seen), and test-shm's children and watcher make Valgrind warn
# of pidfd_open and futex_waitv, which it does not know (weft falls back
# without them). test-accept counts its threads' wake-ups, which Valgrind's
# serialized threads multiply. The overflow cases overflow on purpose, and
# 100,000 live stacks, a million timers, or thousands of threads spinning on
# short timeouts take Valgrind minutes, so those are left out.
test-valgrind: build
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-core -guard_faults
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-gen -overflow -hundred_thousand
	WEFT_TEST_GEN_COPIED=1 WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-gen -overflow -hundred_thousand
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-copied -hundred_thousand
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-timer -a_million
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-poller
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-hub -sleepers -ten_thousand
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-io
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-io-ops
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-signal
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-sync
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-thread -joins_race
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-shm
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-listen
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-cpus
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-deadline
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-idle
	WEFT_TEST_TIMEOUT_MULTIPLIER=8 valgrind -q --error-exitcode=9 --suppressions=tests/valgrind.supp build/default/tests/test-spin

# The tests again with the stack guards of kernels without guard regions:
# mprotect guard pages, then canaries only.
test-guard-fallback: build
	cd build/default && WEFT_STACK_GUARD=page $(CTEST) --output-on-failure -j $(JOBS) -R '^(core|gen|idle)$$'
	cd build/default && WEFT_STACK_GUARD=page WEFT_STACK_GUARD_BUDGET=0 $(CTEST) --output-on-failure -j $(JOBS) -R '^(core|gen|idle)$$'

test-aarch64:
	@mkdir -p build
	$(call configure,aarch64,-DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/toolchain-aarch64-linux-gnu.cmake -DWEFT_BUILD_BENCH=OFF -DWEFT_TEST_TIMEOUT_MULTIPLIER=10)
	$(call run_tests,aarch64)

# The same tests built by clang, so that weft stays clean with both
# compilers users have.
test-clang:
	@mkdir -p build
	$(call configure,clang,-DCMAKE_C_COMPILER=clang -DWEFT_BUILD_BENCH=OFF)
	$(call run_tests,clang)

# The portable poll() poller in place of epoll.
test-poll:
	@mkdir -p build
	$(call configure,poll,-DWEFT_POLLER=poll -DWEFT_BUILD_BENCH=OFF)
	$(call run_tests,poll)

test-ucontext:
	@mkdir -p build
	$(call configure,ucontext,-DWEFT_CONTEXT=ucontext -DWEFT_TEST_TIMEOUT_MULTIPLIER=2)
	$(call run_tests,ucontext)

# libFuzzer on httpd's request handling (tests/fuzz), built by clang with
# ASan and UBSan, for FUZZ_SECONDS. What it finds new goes to
# build/fuzz/corpus; the seeds in tests/fuzz/corpus/http are only read. A
# crash leaves its input in build/fuzz/ (replay: the binary with the file).
FUZZ_SECONDS ?= 300
FUZZ_FLAGS ?=
fuzz:
	@mkdir -p build/fuzz/corpus
	@$(CMAKE) -S . -B build/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_SANITIZE=address -DWEFT_FUZZ=ON -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_BENCH=OFF -DWEFT_WERROR=$(WERROR) $(CMAKE_FLAGS) > build/fuzz.log 2>&1 || { cat build/fuzz.log; exit 1; }
	@$(CMAKE) --build build/fuzz -j $(JOBS) --target fuzz-http
	cd build/fuzz && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ./tests/fuzz/fuzz-http -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=4096 -max_len=8192 -print_final_stats=1 \
	  -dict=$(CURDIR)/tests/fuzz/http.dict $(FUZZ_FLAGS) corpus $(CURDIR)/tests/fuzz/corpus/http

install:
	@mkdir -p build
	$(call configure,install,-DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_EXAMPLES=OFF)
	$(CMAKE) --install build/install

# New files count before they are added: git's untracked, not ignored.
SOURCES = $$(git ls-files --cached --others --exclude-standard '*.c' '*.h')

format:
	clang-format -i $(SOURCES)

check-format:
	clang-format --dry-run -Werror $(SOURCES)

clean:
	rm -rf build
