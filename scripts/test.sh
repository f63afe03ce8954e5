#!/usr/bin/env bash
# Sets everything up (packages, Release build) and runs every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
cd "${ATTNSCOPE_BUILD:-build}"
ctest --output-on-failure -j"$(nproc)"
