# The two commands of the README, and a few more.
#   make demo        three backends + the lb on the embedded dump (ports: USERKEY_DEMO_*_PORT[S],
#                    see scripts/demo.sh; a taken one stops it with exit status 3)
#   make demo-mongo  the same topology on a local FerretDB seeded from dump/
#   make test        everything CI runs: make check, make test-sanitizers, make fuzz
#   make check       the suite in the default build (unit, integration on FerretDB,
#                    end-to-end, fault battery, packaging, docs, compose)
#   make test-sanitizers  ASan+UBSan: every test but package/docs/docker/compose/bench/deps/demo; TSan: unit + e2e
#   make fuzz        each libFuzzer target for FUZZ_SECONDS (default 60)
#   make bench       the scoreboard (<= 20 min): userkey-lb vs HAProxy vs nginx, the whole stack
#                    vs the seed's, the backend alone, idle memory -> docs/benchmarks.md
#                    (BENCH_QUICK=1: a ~3 minute smoke test that writes into bench/out/ only)
PRESET ?= default
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/.local/bin

.PHONY: all build deps test-deps test check test-sanitizers fuzz demo demo-mongo bench clean

all: build

deps:
	scripts/install-deps.sh

test-deps:
	scripts/install-deps.sh --test

build: deps
	cmake --preset $(PRESET) -DUSERKEY_BUILD_TESTS=OFF >/dev/null
	cmake --build --preset $(PRESET)

# Each stage prints when it ends, so a CI log shows where its minutes went.
STAMP = @echo "== $@ done at $$(date -u +%T) UTC"

test: check test-sanitizers fuzz
	$(STAMP)

check: test-deps
	cmake --preset $(PRESET) -DUSERKEY_BUILD_TESTS=ON >/dev/null
	cmake --build --preset $(PRESET)
	ctest --preset $(PRESET)
	$(STAMP)

test-sanitizers: test-deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan
	ctest --preset asan
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan --target tsan_tests
	ctest --preset tsan
	$(STAMP)

FUZZ_SECONDS ?= 60
fuzz: test-deps
	scripts/run-fuzzers.sh $(FUZZ_SECONDS)
	$(STAMP)

# The demo's ports are checked before the build too, so a taken one is named
# at once (scripts/demo.sh lists the USERKEY_DEMO_*_PORT variables that move them).
demo:
	@scripts/demo.sh --check-ports embedded
	@$(MAKE) --no-print-directory build
	scripts/demo.sh embedded

demo-mongo:
	@scripts/demo.sh --check-ports mongo
	@$(MAKE) --no-print-directory build
	USERKEY_NEED_FERRETDB=1 scripts/install-deps.sh
	scripts/demo.sh mongo

BENCH_QUICK ?= 0
bench:
	BENCH_QUICK=$(BENCH_QUICK) bench/all.sh

clean:
	rm -rf build build-release build-asan build-tsan build-fuzz .demo bench/out
