#!/usr/bin/env bash
# The ledger's interface stays split by concern (include/keymaster/ledger/): every public header
# compiles alone (a file that includes only it, `$CXX -std=c++20 -fsyntax-only`), and a concern's
# header (journal, leases, audit, burn_history, reader) includes of the project only types.hpp and
# keymaster/common/ headers, so each can be read alone; ledger.hpp, which offers them all, includes
# them. Fails naming each header that breaks this. Argument: a source tree (default: this one).
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cxx=${CXX:-g++}
flags=(-std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -Wshadow -Werror -I include)
concerns=(journal leases audit burn_history reader)
dir=include/keymaster/ledger
cd "$root"
[[ -d $dir ]] || { echo "no $dir under $root"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The check itself sees what it looks for: a file that uses a ledger type it does not include fails.
printf 'keymaster::ledger::Entry e;\n' >"$tmp/probe.cpp"
if "$cxx" "${flags[@]}" "$tmp/probe.cpp" >/dev/null 2>&1; then
  echo "$cxx accepts a file that includes nothing it uses: cannot check"
  exit 1
fi
found=""
for h in "$dir"/*.hpp; do
  printf '#include "%s"\n' "${h#include/}" >"$tmp/alone.cpp"
  if ! out=$("$cxx" "${flags[@]}" "$tmp/alone.cpp" 2>&1); then
    found+="$h does not compile alone:"$'\n'"$(grep -m 3 'error' <<<"$out")"$'\n'
  fi
done
for c in "${concerns[@]}"; do
  h=$dir/$c.hpp
  if [[ ! -f $h ]]; then
    found+="$h: missing"$'\n'
    continue
  fi
  other=$(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$h" |
    grep -vE '"keymaster/(ledger/types|common/[a-z_]+)\.hpp"' || true)
  [[ -n $other ]] && found+="$h includes more than types.hpp and common headers:"$'\n'"$other"$'\n'
done
if [[ -n $found ]]; then
  echo "the ledger's headers by concern:"
  printf '%s' "$found"
  exit 1
fi
n=$(find "$dir" -name '*.hpp' | wc -l)
echo "ledger headers: the $n of $dir compile alone; each concern's needs no other concern's"
