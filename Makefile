# goplugin-c. Quick start on a fresh Debian machine: `make demo`, `make test`.
# Both install what is missing (apt-get, see scripts/deps.sh), then run Bazel.

BAZEL ?= bazel

.PHONY: all deps build demo test test-quick fuzz bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(BAZEL) build //...

# The C KV host drives the C KV plugin over gRPC: puts, gets, plugin logs.
demo: deps
	@scripts/demo.sh

# Every test (unit, bad input, interop with Go and Python peers), plain and
# under ASan+UBSan. Ends with "N passed, N failed, N skipped".
test: deps
	@scripts/test.sh

# Plain build only, no sanitizers and no fuzzing (faster while developing).
test-quick: deps
	@GP_TEST_CONFIGS=plain GP_TEST_FUZZ_SECONDS=0 scripts/test.sh

# Every libFuzzer target (clang) for FUZZ_SECONDS each (default 30) from a
# copy of its seed corpus. Ends with "fuzz: N targets, M crashes".
fuzz: deps
	@scripts/fuzz.sh

bench: deps
	@bench/run.sh

clean:
	$(BAZEL) clean
