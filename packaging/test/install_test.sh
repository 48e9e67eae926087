#!/usr/bin/env bash
# The install test (issue 12), run by scripts/test.sh after the Bazel configs:
# `make install DESTDIR=...`, then a scratch project (project/: its own
# greeter.proto, a plugin and a host) copied outside the source tree and
# built against that install in each way a user would:
#   pkg-config, shared and --static (-static); CMake find_package; another
#   Bazel workspace with the three WORKSPACE lines of docs/using.md;
# each host driving each plugin over gRPC and netrpc, a go-plugin 1.0.1 Go
# host (gohost/) driving the out-of-tree plugins, and the netrpc-only plugin
# checked to link no gRPC core. Prints one line per check,
# "install: PASS name" or "install: FAIL name" (scripts/test.sh counts them),
# and exits non-zero when any failed.
#
# Not a Bazel sh_test: it runs `make install` (Bazel in this workspace) and
# Bazel in another workspace, and a Bazel test cannot call Bazel on the
# workspace that is running it (the output base is locked).
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
BAZEL=${BAZEL:-bazel}
# Kept between runs so the outside workspace's Bazel cache is reused.
OUTER_BASE=${GP_INSTALL_TEST_BAZEL_BASE:-/tmp/goplugin-c-install-test-bazel}
GOCACHE_DIR=/tmp/goplugin-c-gocache

work=$(mktemp -d /tmp/goplugin-install-test.XXXXXX)
D=$work/dest
PREFIX=/usr/local
LIB=$D$PREFIX/lib
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

pass() { echo "install: PASS $1"; passed=$((passed + 1)); }
fail() { echo "install: FAIL $1${2:+: $2}"; failed=$((failed + 1)); }
# check NAME CMD...: one result line for CMD's status; its output in the log.
check() {
  local name=$1; shift
  if "$@" >"$work/out" 2>&1; then pass "$name"; else fail "$name"; sed 's/^/    /' "$work/out" | tail -30 >&2; fi
}

# expect HOST PLUGIN PROTO: the host greets two names through the plugin.
expect_greetings() {
  local host=$1 plugin=$2 proto=$3 out
  out=$(timeout 60 "$host" "$plugin" "$proto" alice bob) || { echo "$out"; return 1; }
  local want
  want=$(printf 'hello, alice (5 bytes) #1\nhello, bob (3 bytes) #2\ngreeted 2 over %s' "$proto")
  [ "$out" = "$want" ] || { printf 'expected:\n%s\ngot:\n%s\n' "$want" "$out"; return 1; }
}

# run_matrix WAY HOST DIR: the host drives the full plugin over both wires
# and the netrpc-only plugin over netrpc.
run_matrix() {
  local way=$1 host=$2 dir=$3
  check "$way: host -> plugin over grpc" expect_greetings "$host" "$dir/greeter-plugin" grpc
  check "$way: host -> plugin over netrpc" expect_greetings "$host" "$dir/greeter-plugin" netrpc
  check "$way: host -> netrpc-only plugin" expect_greetings "$host" "$dir/greeter-plugin-netrpc" netrpc
}

# no_grpc BINARY: nothing of gRPC core linked in or loaded.
no_grpc() {
  if nm "$1" 2>/dev/null | grep -E ' [TtDdBbRr] (grpc_|gpr_)'; then echo "gRPC symbols in $1"; return 1; fi
  if ldd "$1" 2>/dev/null | grep -E 'libgrpc|libgpr|libabsl'; then echo "$1 loads gRPC"; return 1; fi
  return 0
}

project() { # a fresh copy of the scratch project outside the source tree
  rm -rf "${work:?}/$1" && cp -r "$src/packaging/test/project" "$work/$1" &&
    rm -f "$work/$1/WORKSPACE.in" "$work/$1/BUILD.bazel.in" && echo "$work/$1"
}

# ---- make install into DESTDIR ----
echo "== install test: make install DESTDIR=$D" >&2
if ! make -C "$src" --no-print-directory install DESTDIR="$D" PREFIX="$PREFIX" BAZEL="$BAZEL" >"$work/out" 2>&1; then
  fail "make install"; tail -30 "$work/out" >&2
  echo "install: $passed passed, $failed failed"; exit 1
fi
pass "make install"

installed_files() {
  for f in include/goplugin/goplugin.h include/goplugin/supervise.h include/goplugin/store.h lib/libgoplugin.a \
           lib/libgoplugin.so lib/libgoplugin.so.0 lib/libgoplugin-netrpc.a lib/libgoplugin-netrpc.so \
           lib/libgoplugin-netrpc.so.0 lib/pkgconfig/goplugin.pc lib/pkgconfig/goplugin-netrpc.pc \
           lib/cmake/goplugin/goplugin-config.cmake bin/goplugin-protoc bin/protoc-gen-goplugin-c bin/gpctl \
           share/goplugin/wkt.options; do
    [ -e "$D$PREFIX/$f" ] || { echo "missing $f"; return 1; }
  done
  [ "$(readlink "$LIB/libgoplugin.so")" = libgoplugin.so.0 ] || { echo "libgoplugin.so symlink"; return 1; }
  readelf -d "$LIB/libgoplugin.so.0" | grep 'SONAME.*\[libgoplugin.so.0\]' >/dev/null || { echo "SONAME"; return 1; }
  readelf -d "$LIB/libgoplugin-netrpc.so.0" | grep 'SONAME.*\[libgoplugin-netrpc.so.0\]' >/dev/null || { echo "netrpc SONAME"; return 1; }
}
check "installed files, symlinks, SONAMEs" installed_files

# gpctl as installed: a store round trip (docs/store.md).
installed_gpctl() {
  local r=$work/gpctl-root id
  id=$("$D$PREFIX/bin/gpctl" --root "$r" install "$D$PREFIX/bin/goplugin-protoc" tool) || return 1
  "$D$PREFIX/bin/gpctl" --root "$r" ls | grep -qx "tool:latest $id disabled -" || return 1
  "$D$PREFIX/bin/gpctl" --root "$r" rm tool && "$D$PREFIX/bin/gpctl" --root "$r" gc | grep -q '^1 blob, '
}
check "gpctl installed: install, ls, rm, gc" installed_gpctl

# ---- the shared libraries export the public API only ----
exports_public_only() {
  local lib=$1 bad
  # The version node (GOPLUGIN_0, type A) is not a symbol of ours.
  bad=$(nm -D --defined-only "$lib" | awk '$2 != "A" {sub(/@.*/, "", $3); print $3}' |
        grep -vE '^gp_[a-z0-9]' | grep -vx gp__pb_field_callback)
  [ -z "$bad" ] || { echo "exported beyond the public API:"; echo "$bad" | head -20; return 1; }
  nm -D --defined-only "$lib" | grep -E ' (gp__[a-z]|grpc_|gpr_|mbedtls_|json_|pb_)' | grep -v gp__pb_field_callback && return 1
  nm -D --defined-only "$lib" | grep ' T gp_serve@' >/dev/null || { echo "gp_serve not exported"; return 1; }
}
check "libgoplugin.so exports only the public gp_ API" exports_public_only "$LIB/libgoplugin.so.0"
check "libgoplugin-netrpc.so exports only the public gp_ API" exports_public_only "$LIB/libgoplugin-netrpc.so.0"

exports_every_declared_function() {
  local hdrs=("$D$PREFIX"/include/goplugin/*.h) missing
  # Names written "name(" in the headers, less the types ("} gp_x;", casts).
  missing=$(comm -23 \
    <(cat "${hdrs[@]}" | grep -oE '\bgp_[a-z0-9_]+ *\(' | tr -d '( ' | sort -u |
      grep -vxFf <(cat "${hdrs[@]}" | grep -oE '^\} *gp_[a-z0-9_]+;|typedef [a-z_ ]+ gp_[a-z0-9_]+;' |
                   grep -oE 'gp_[a-z0-9_]+' | sort -u)) \
    <(nm -D --defined-only "$LIB/libgoplugin.so.0" | awk '{sub(/@.*/, "", $3); print $3}' | sort -u))
  [ -z "$missing" ] || { echo "declared but not exported: $missing"; return 1; }
}
check "libgoplugin.so exports every function the headers declare" exports_every_declared_function
check "libgoplugin-netrpc.so needs no gRPC core" no_grpc "$LIB/libgoplugin-netrpc.so.0"

# ---- installed headers, C11 and C++17, pedantic ----
headers_compile() {
  local h
  for h in "$D$PREFIX"/include/goplugin/*.h; do
    printf '#include <goplugin/%s>\n' "$(basename "$h")" >"$work/h.c"
    cp "$work/h.c" "$work/h.cc"
    cc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$D$PREFIX/include" "$work/h.c" || return 1
    c++ -std=c++17 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$D$PREFIX/include" "$work/h.cc" || return 1
  done
}
check "headers compile alone as C11 and C++17 (-Wall -Wextra -Werror -pedantic)" headers_compile

# ---- goplugin-protoc on its own ----
protoc_options_override() {
  local d=$work/protoc
  mkdir -p "$d/proto" && cp "$src/packaging/test/project/proto/greeter.proto" "$d/proto/"
  "$D$PREFIX/bin/goplugin-protoc" --out "$d/gen" "$d/proto/greeter.proto" || return 1
  grep -q 'char \*name;' "$d/gen/greeter.pb.h" || { echo "generated options not applied"; return 1; }
  printf '%s\n' '* include:"goplugin/method.h" callback_function:"gp__pb_field_callback" fallback_type:FT_POINTER' \
    'greeter.GreetRequest.name max_size:40 type:FT_STATIC' >"$d/proto/greeter.options"
  rm -rf "$d/gen"
  "$D$PREFIX/bin/goplugin-protoc" --out "$d/gen" -I "$d" "$d/proto/greeter.proto" || return 1
  grep -q 'char name\[40\];' "$d/gen/proto/greeter.pb.h" || { echo "greeter.options beside the proto not used"; return 1; }
}
check "goplugin-protoc: generated options, or FILE.options beside FILE.proto" protoc_options_override
protoc_bad_input() {
  printf 'syntax = "proto3";\nmessage {\n' >"$work/bad.proto"
  if "$D$PREFIX/bin/goplugin-protoc" --out "$work/badgen" "$work/bad.proto"; then echo "accepted a bad proto"; return 1; fi
  if "$D$PREFIX/bin/goplugin-protoc" "$work/bad.proto"; then echo "ran without --out"; return 1; fi
  return 0
}
check "goplugin-protoc: fails on a bad proto and on a bad command line" protoc_bad_input

# ---- pkg-config, shared ----
export PKG_CONFIG_PATH=$LIB/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D

# nanopb: the runtime inside libgoplugin is 32-bit (PB_FIELD_32BIT), and the
# flags users compile generated code with say so, in pkg-config and CMake.
nanopb_32bit() {
  local l
  for l in goplugin goplugin-netrpc; do
    # (grep -q would stop reading early: nm's SIGPIPE fails the pipe.)
    [ "$(nm "$LIB/lib$l.a" 2>/dev/null | grep -c ' T pb_decode$')" = 1 ] || { echo "no pb_decode in lib$l.a"; return 1; }
    # shellcheck disable=SC2046
    printf '#include <pb.h>\n_Static_assert(sizeof(pb_size_t) == 4, "32-bit");\n' |
      cc -std=c11 -fsyntax-only $(pkg-config --cflags $l) -x c - || { echo "$l.pc: pb_size_t not 32-bit"; return 1; }
  done
  grep -q 'PB_FIELD_32BIT=1' "$LIB/cmake/goplugin/goplugin-config.cmake" || { echo "CMake: no PB_FIELD_32BIT"; return 1; }
}
check "nanopb runtime inside libgoplugin{,-netrpc}.a, 32-bit in pkg-config and CMake flags" nanopb_32bit
p=$(project pkgconfig-shared)
# (pkg-config's output is split into words on purpose in this block.)
# shellcheck disable=SC2046
if check "pkg-config shared: build" make -C "$p" --no-print-directory; then
  LD_LIBRARY_PATH=$LIB run_matrix "pkg-config shared" "$p/greeter-host" "$p"
  check "pkg-config shared: netrpc-only plugin links no gRPC core" env LD_LIBRARY_PATH="$LIB" bash -c "$(declare -f no_grpc); no_grpc $p/greeter-plugin-netrpc"
  # The generated headers are usable from C++ too.
  check "pkg-config shared: generated headers compile as C++17" \
    c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -I"$p/gen" $(pkg-config --cflags goplugin) -x c++ "$p/greeter.h"
  # libgoplugin-netrpc has the host side too: a netrpc-only host is built,
  # run, and free of gRPC core.
  check "pkg-config shared: netrpc-only host: build" \
    cc -O2 -Wall -Wextra -Werror -I"$p/gen" $(pkg-config --cflags goplugin-netrpc) -o "$p/greeter-host-netrpc" \
      "$p/greeter-host.c" "$p/gen/proto/greeter.pb.c" "$p/gen/proto/greeter.gp.c" \
      "$p/gen/google/protobuf/empty.pb.c" $(pkg-config --libs goplugin-netrpc)
  LD_LIBRARY_PATH=$LIB check "pkg-config shared: netrpc-only host -> netrpc-only plugin" \
    expect_greetings "$p/greeter-host-netrpc" "$p/greeter-plugin-netrpc" netrpc
  check "pkg-config shared: netrpc-only host links no gRPC core" env LD_LIBRARY_PATH="$LIB" bash -c "$(declare -f no_grpc); no_grpc $p/greeter-host-netrpc"
fi
shared_dir=$p

# ---- pkg-config, --static (a fully static program) ----
p=$(project pkgconfig-static)
if check "pkg-config --static: build (-static)" make -C "$p" --no-print-directory STATIC=1; then
  run_matrix "pkg-config --static" "$p/greeter-host" "$p"
  check "pkg-config --static: netrpc-only plugin links no gRPC core" no_grpc "$p/greeter-plugin-netrpc"
  check "pkg-config --static: plugin is static" bash -c "file '$p/greeter-plugin' | grep 'statically linked' >/dev/null"
fi
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

# ---- CMake find_package(goplugin CONFIG) ----
p=$(project cmake)
if check "cmake: configure and build" bash -c "cmake -S '$p' -B '$p/build' -DCMAKE_PREFIX_PATH='$D$PREFIX' && cmake --build '$p/build'"; then
  run_matrix "cmake" "$p/build/greeter-host" "$p/build"
  check "cmake: netrpc-only plugin links no gRPC core" no_grpc "$p/build/greeter-plugin-netrpc"
fi

# ---- another Bazel workspace: the three WORKSPACE lines, no .bazelrc ----
p=$work/bazel
cp -r "$src/packaging/test/project" "$p" && rm -f "$p/Makefile" "$p/CMakeLists.txt"
# (In the source tree they are *.in: this workspace must not see a package
# that loads @goplugin.)
sed "s|@GOPLUGIN_SRC@|$src|" "$p/WORKSPACE.in" >"$p/WORKSPACE" && rm "$p/WORKSPACE.in"
mv "$p/BUILD.bazel.in" "$p/BUILD.bazel"
for mode in fastbuild opt; do
  if check "bazel workspace -c $mode: build" bash -c "cd '$p' && '$BAZEL' --output_base='$OUTER_BASE' build -c $mode --jobs=2 //:all"; then
    bin=$(cd "$p" && "$BAZEL" --output_base="$OUTER_BASE" info -c $mode bazel-bin 2>/dev/null)
    run_matrix "bazel -c $mode" "$bin/greeter-host" "$bin"
    check "bazel -c $mode: netrpc-only plugin links no gRPC core" no_grpc "$bin/greeter-plugin-netrpc"
  fi
done
# Our own server: stop it (its cache on disk stays for the next run).
(cd "$p" && "$BAZEL" --output_base="$OUTER_BASE" shutdown) >/dev/null 2>&1

# ---- a go-plugin 1.0.1 Go host runs the out-of-tree plugins ----
build_go_host() {
  local gp=$work/gopath
  mkdir -p "$gp/src/greeter" "$gp/src/greeterhost" "$GOCACHE_DIR"
  cp "$src/packaging/test/gohost/main.go" "$gp/src/greeterhost/"
  protoc --plugin=protoc-gen-go=/usr/bin/protoc-gen-go -I"$src/packaging/test/project/proto" -I/usr/include \
    --go_out=plugins=grpc:"$gp/src/greeter" "$src/packaging/test/project/proto/greeter.proto" || return 1
  (cd "$gp/src/greeterhost" &&
   env -i PATH=/usr/bin:/bin HOME="$gp" GOPATH="$gp:/usr/share/gocode" GO111MODULE=off GOFLAGS= \
     GOPROXY=off CGO_ENABLED=0 GOCACHE="$GOCACHE_DIR" go build -o "$work/greeter-go-host" .)
}
if check "go host: build (go-plugin 1.0.1, GOPATH mode)" build_go_host; then
  LD_LIBRARY_PATH=$LIB run_matrix "go host, pkg-config shared plugins" "$work/greeter-go-host" "$shared_dir"
  run_matrix "go host, cmake plugins" "$work/greeter-go-host" "$work/cmake/build"
fi

# ---- docs/using.md shows these very files ----
docs_match_project() {
  python3 - "$src/docs/using.md" "$src/packaging/test/project" <<'PY'
import os, sys
doc = open(sys.argv[1]).read()
bad = []
for f in ["greeter.h", "greeter-plugin.c", "greeter-host.c", "Makefile", "CMakeLists.txt", "BUILD.bazel.in"]:
    if open(os.path.join(sys.argv[2], f)).read() not in doc:
        bad.append(f)
if bad:
    sys.exit("docs/using.md does not show the current " + ", ".join(bad))
PY
}
check "docs/using.md shows the project's current files" docs_match_project

# ---- make uninstall removes every file ----
uninstall_clean() {
  make -C "$src" --no-print-directory uninstall DESTDIR="$D" PREFIX="$PREFIX" || return 1
  local left
  left=$(find "$D" -type f -o -type l)
  [ -z "$left" ] || { echo "left behind:"; echo "$left"; return 1; }
}
check "make uninstall removes every installed file" uninstall_clean

echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
