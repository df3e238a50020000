#!/usr/bin/env bash
# No function in src/ is longer than 60 lines (a coroutine longer than a screen is a sequence of
# named steps): clang-tidy's readability-function-size over every source file of src/, compiled as
# the build compiles it (build/compile_commands.json). Lists each function over the limit.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
limit=${FUNCTION_LINES_LIMIT:-60}
check=(-checks='-*,readability-function-size')
[[ -f "$build/compile_commands.json" ]] || { echo "no $build/compile_commands.json: build first"; exit 1; }
# The tool itself runs and sees functions: at a limit of 1 line, a known file has some over it.
# (Output captured first: grep -q would end the pipe early, and pipefail would call that a failure.)
probe=$(clang-tidy -p "$build" "${check[@]}" -config='{CheckOptions: [{key: readability-function-size.LineThreshold, value: 1}]}' \
  "$root/src/common/hex.cpp" 2>/dev/null || true)
grep -q "exceeds recommended size" <<<"$probe" || { echo "clang-tidy reports nothing: cannot check"; exit 1; }
out=$(run-clang-tidy -p "$build" -j 2 -quiet "${check[@]}" \
  -config="{CheckOptions: [{key: readability-function-size.LineThreshold, value: $limit}]}" \
  "$root/src/.*\.cpp$" 2>/dev/null | sed -E 's/\x1b\[[0-9;]*m//g' || true)
over=$(grep -E "warning: function '.*' exceeds recommended size" <<<"$out" | sort -u || true)
if [[ -n "$over" ]]; then
  echo "functions in src/ over $limit lines:"
  echo "$over"
  exit 1
fi
n=$(find "$root/src" -name '*.cpp' | wc -l)
echo "function size: every function of the $n files of src/ is at most $limit lines"
