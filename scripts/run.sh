#!/usr/bin/env bash
# Runs Aula: builds the release binary and starts `aula serve` (the embedded single-node default).
# Arguments go to `aula serve`, e.g.  bash scripts/run.sh --listen 0.0.0.0:8080
#
# Run as root on a fresh Debian machine, it first installs the C build dependencies when they are
# missing (a C compiler, pkg-config and OpenSSL's headers, which the SFU's DTLS/SRTP needs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/build-deps.sh
install_build_deps
exec cargo run --release --bin aula -- serve "$@"
