#!/usr/bin/env bash
# Time comes from one Clock (include/keymaster/common/clock.hpp): only src/common/clock.cpp reads
# std::chrono's clocks. Fails listing every other place in src/ or include/ that reads the time
# itself: a clock's now(), an alias of a std clock (whose now() would escape the first pattern),
# time(), gettimeofday, clock_gettime, or the old unix_now().
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}  # a source tree (default: this one)
own='^(src/common/clock\.cpp|include/keymaster/common/clock\.hpp):'
patterns=(
  '(system|steady|high_resolution)_clock::now'
  'using +[A-Za-z_][A-Za-z0-9_]* *= *(std::)?(chrono::)?(system|steady|high_resolution)_clock *;'
  '(^|[^A-Za-z0-9_:.>])(std::)?time *\( *(nullptr|NULL|0) *\)'
  '\b(gettimeofday|clock_gettime|unix_now)\b'
)
cd "$root"
[[ -d src && -d include ]] || { echo "no src/ and include/ under $root"; exit 1; }
found=""
for p in "${patterns[@]}"; do
  hits=$(grep -rnE --include='*.cpp' --include='*.hpp' --include='*.h' "$p" src include | grep -Ev "$own" || true)
  [[ -n "$hits" ]] && found+="$hits"$'\n'
done
if [[ -n "$found" ]]; then
  echo "time read outside the Clock (hand a keymaster::Clock in instead):"
  printf '%s' "$found" | sort -u
  exit 1
fi
# The check itself sees what it looks for: the clock's own file reads both clocks.
grep -qE 'system_clock::now' src/common/clock.cpp && grep -qE 'steady_clock::now' src/common/clock.cpp ||
  { echo "src/common/clock.cpp reads no std clock: cannot check"; exit 1; }
echo "one clock: only src/common/clock.cpp reads std::chrono's clocks"
