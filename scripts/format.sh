#!/usr/bin/env bash
# Applies the house style (.clang-format) to every C++ source the repository tracks. The `format` test checks it.
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files '*.cpp' '*.h' | xargs clang-format -i
