#!/usr/bin/env bash
# Sets everything up (packages, Release build) and opens attnscope on the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec "${ATTNSCOPE_BUILD:-build}/attnscope" "$@"
