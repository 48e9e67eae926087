#!/usr/bin/env bash
# Installs the Debian packages goplugin-c builds and tests with, and unpacks
# the Debian source packages of nanopb and jansson (Bazel builds their C
# from source: bazel/debian_source.bzl). Idempotent and quiet when
# everything is there; needs root (or sudo) only when a package or the
# deb-src entry is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  bazel-bootstrap build-essential dpkg-dev pkg-config clang clang-format libclang-rt-14-dev
  libgrpc-dev libnanopb-dev nanopb libmbedtls-dev libjansson-dev
  protobuf-compiler protobuf-compiler-grpc
  cmake golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev
  golang-golang-x-net-dev golang-github-golang-protobuf-1-3-dev
  golang-goprotobuf-dev golang-github-hashicorp-yamux-dev
  python3-grpcio python3-protobuf openssl libssl-dev
  lld
)

# Source packages: name, and the installed binary package whose version the
# source must have (nanopb's generator writes headers for its own runtime).
SRC_PKGS=("nanopb:nanopb" "jansson:libjansson-dev")
# Where they are unpacked (gitignored; .bazelignore keeps Bazel out of it).
SRC_DIR=$PWD/.cache/debian-src
SRC_LIST=/etc/apt/sources.list.d/goplugin-c-src.sources

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
updated=0

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -ne 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  updated=1
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A deb-src line for the suite the system's own sources name, unless one
# is there already.
have_deb_src() {
  # Only the files apt reads (*.list, *.sources), not ones set aside.
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -qsE '^(Types:.*deb-src|deb-src )' "$f" && return 0
  done
  return 1
}
add_deb_src() {
  local suite
  suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$suite" ] || { echo "deps: no VERSION_CODENAME in /etc/os-release" >&2; exit 1; }
  echo "deps: adding $SRC_LIST (deb-src for $suite)" >&2
  printf '%s\n' \
    "# Added by goplugin-c's scripts/deps.sh: Debian's nanopb and jansson" \
    "# sources, which goplugin-c builds (apt-get source)." \
    "Types: deb-src" \
    "URIs: http://deb.debian.org/debian" \
    "Suites: $suite $suite-updates" \
    "Components: main" \
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" | $SUDO tee "$SRC_LIST" >/dev/null
}

for entry in "${SRC_PKGS[@]}"; do
  src=${entry%%:*} bin=${entry#*:}
  ver=$(dpkg-query -W -f='${Version}' "$bin")
  # The stamp holds the version unpacked; anything else is redone.
  if [ "$(cat "$SRC_DIR/$src.version" 2>/dev/null)" = "$ver" ] && [ -d "$SRC_DIR/$src" ]; then
    continue
  fi
  if ! have_deb_src; then
    add_deb_src
    updated=0
  fi
  if [ "$updated" -eq 0 ]; then
    $SUDO apt-get update -qq
    updated=1
  fi
  echo "deps: apt-get source $src=$ver into $SRC_DIR/$src" >&2
  mkdir -p "$SRC_DIR"
  tmp=$(mktemp -d "$SRC_DIR/.get.XXXXXX")
  if ! (cd "$tmp" && apt-get source -qq "$src=$ver" >/dev/null 2>"$tmp.log"); then
    cat "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    echo "deps: 'apt-get source $src=$ver' failed (a deb-src entry for this suite? see $SRC_LIST)" >&2
    exit 1
  fi
  rm -rf "${SRC_DIR:?}/$src" "$tmp.log"
  # The unpacked tree (Debian's patches applied) is the one directory.
  mv "$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n 1)" "$SRC_DIR/$src"
  # Inert for Bazel: the tree's own BUILD and WORKSPACE files would make
  # packages of it (bazel/*.BUILD describe what is built).
  find "$SRC_DIR/$src" \( -name 'BUILD' -o -name 'BUILD.bazel' -o -name 'WORKSPACE' \
    -o -name 'WORKSPACE.bazel' \) -type f -delete
  rm -rf "$tmp"
  echo "$ver" >"$SRC_DIR/$src.version"
done
exit 0
