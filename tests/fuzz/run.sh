#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and runs each for a short
# fixed time from the seeds kept in tests/fuzz/corpus (copied: the repository is not modified).
# FUZZ_SECONDS (default 20) per target. (No debug info: clang 14 cannot emit it for these coroutines.)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${FUZZ_SECONDS:-20}
build="$root/build-fuzz"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DKEYMASTER_TESTS=OFF -DKEYMASTER_FUZZ=ON -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g0" \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
fi
cmake --build "$build" -j2 --target fuzz_config fuzz_rlp fuzz_rpc_reply
for t in config rlp rpc_reply; do
  work=$(mktemp -d)
  cp -r "$root/tests/fuzz/corpus/$t/." "$work/"
  echo "fuzz_$t: ${seconds}s"
  artifacts=$(mktemp -d)
  status=0
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$work" > "$artifacts/log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|stat::new_units_added)" "$artifacts/log" || true
  if [[ $status -ne 0 ]]; then
    grep -E "ERROR|SUMMARY|what\(\)|#[0-9]+ " "$artifacts/log" | head -40
    echo "fuzz_$t found a failure (exit $status); input kept in $artifacts"
    exit 1
  fi
  rm -rf "$work" "$artifacts"
done
echo "fuzzing: no failures"
