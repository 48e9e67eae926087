# goplugin-c. Quick start on a fresh Debian machine: `make demo`, `make test`.
# Both install what is missing (apt-get, see scripts/deps.sh), then run Bazel.

BAZEL ?= bazel

.PHONY: all deps build demo test test-quick fuzz soak bench format clean install uninstall

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
# copy of its seed corpus. Prints a coverage table (libFuzzer's final cov/ft
# per target, functions reached in nanopb and jansson) and ends with
# "fuzz: N targets, M crashes".
fuzz: deps
	@scripts/fuzz.sh

# 8 callers on each wire against KV plugins killed at random and restarted
# by gp_supervisor, for SOAK_SECONDS (default 600): deadlines, leftover fds,
# threads and children, flat RSS (soak/soak.c). Exit status non-zero on any
# violation.
SOAK_SECONDS ?= 600
soak: deps
	@SOAK_SECONDS=$(SOAK_SECONDS) scripts/soak.sh

# Format every C file as .clang-format says (make test checks it).
format: deps
	@scripts/format.sh

bench: deps
	@bench/run.sh --proto both

# make install [PREFIX=/usr/local] [DESTDIR=...] [LIBDIR=...]: headers,
# libgoplugin{,-netrpc}.{a,so}, goplugin-protoc and protoc-gen-goplugin-c,
# pkg-config and CMake files (docs/using.md). Built with -c opt.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
DESTDIR ?=
GP_VERSION = 0.1.0
INSTALL_ENV = PREFIX="$(PREFIX)" LIBDIR="$(LIBDIR)" INCLUDEDIR="$(INCLUDEDIR)" \
	BINDIR="$(BINDIR)" DATADIR="$(DATADIR)" DESTDIR="$(DESTDIR)" VERSION="$(GP_VERSION)"

install: deps
	$(BAZEL) build -c opt //packaging:install
	@$(INSTALL_ENV) packaging/install.sh install "$$($(BAZEL) info -c opt bazel-bin 2>/dev/null)"

uninstall:
	@$(INSTALL_ENV) packaging/install.sh uninstall

clean:
	$(BAZEL) clean
