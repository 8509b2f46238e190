# The two commands of the README, and a few more.
#   make demo        three backends + the lb on the embedded dump
#   make demo-mongo  the same topology on a local FerretDB seeded from dump/
#   make test        every test (unit, integration on FerretDB, end-to-end)
PRESET ?= default
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/.local/bin

.PHONY: all build deps test-deps test demo demo-mongo bench clean

all: build

deps:
	scripts/install-deps.sh

test-deps:
	scripts/install-deps.sh --test

build: deps
	cmake --preset $(PRESET) -DUSERKEY_BUILD_TESTS=OFF >/dev/null
	cmake --build --preset $(PRESET)

test: test-deps
	cmake --preset $(PRESET) -DUSERKEY_BUILD_TESTS=ON >/dev/null
	cmake --build --preset $(PRESET)
	ctest --preset $(PRESET)

demo: build
	scripts/demo.sh embedded

demo-mongo: build
	USERKEY_NEED_FERRETDB=1 scripts/install-deps.sh
	scripts/demo.sh mongo

clean:
	rm -rf build build-release .demo
