#!/usr/bin/env bash
# Installs the Debian packages goplugin-c builds and tests with. Idempotent and
# quiet when everything is there; needs root (or sudo) only when something is
# missing.
set -euo pipefail

PKGS=(
  bazel-bootstrap build-essential pkg-config clang clang-format libclang-rt-14-dev
  libgrpc-dev libnanopb-dev nanopb libmbedtls-dev libjansson-dev
  protobuf-compiler protobuf-compiler-grpc
  cmake golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev
  golang-golang-x-net-dev golang-github-golang-protobuf-1-3-dev
  golang-goprotobuf-dev golang-github-hashicorp-yamux-dev
  python3-grpcio python3-protobuf openssl
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
