#!/usr/bin/env bash
# Installs the Debian packages that loghaul's build, tests and benchmarks need.
# Idempotent: does nothing when every package is already installed, and runs
# `apt-get update` only when something is missing.
set -euo pipefail

# Build: compiler, and the -dev packages the C code links against.
BUILD=(build-essential pkg-config
       libuv1-dev libhttp-parser-dev libssl-dev libcurl4-openssl-dev
       libyaml-dev libjansson-dev libzstd-dev libdeflate-dev libisal-dev
       librdkafka-dev libpcre2-dev zlib1g-dev)
# Tests: clang + sanitizer runtimes for fuzzing, real clients for the services,
# and the tools the test scripts call.
TEST=(clang libclang-rt-14-dev kcat curl openssl jq unzip procps psmisc
      iproute2 valgrind python3 python3-venv zstd)
# Benchmarks: plots, timing, reference compressors.
BENCH=(gnuplot-nox hyperfine pigz)

want=("${BUILD[@]}")
case "${1:-all}" in
    build) ;;
    all)   want+=("${TEST[@]}" "${BENCH[@]}") ;;
    *)     echo "usage: $0 [build|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
