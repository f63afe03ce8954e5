#!/usr/bin/env sh
# Every tracked C++ source follows .clang-format (scripts/format.sh applies it).
cd "$(dirname "$0")/.." || exit 1
command -v clang-format > /dev/null || { echo "FAIL: clang-format is not installed (scripts/setup.sh installs it)"; exit 1; }
bad=$(git ls-files '*.cpp' '*.h' | while read -r f; do
  clang-format --dry-run --Werror "$f" > /dev/null 2>&1 || echo "$f"
done)
if [ -n "$bad" ]; then
  echo "FAIL: not formatted (run scripts/format.sh):"; echo "$bad"; exit 1
fi
echo "PASS: every C++ source is formatted"
