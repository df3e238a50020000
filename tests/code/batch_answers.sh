#!/usr/bin/env bash
# Batch answers in src/chain/ are read through the handle each call's add() gave (chain/batch.hpp),
# never by position: adding one call would silently shift every index after it. Fails on
#   - results held as a vector (std::vector<rpc::CallResult>) anywhere but batch.hpp itself,
#   - a subscript of a batch's results (r[0], r[3 * c + 1], results[k], &r[kFixed + 2]),
#   - an offset constant over the fixed calls of a batch (kFixed),
#   - a RpcClient::batch whose results are not taken into Answers (or dropped with (void)).
# Usage: batch_answers.sh [root] (default: this checkout; any tree with src/chain/).
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
dir=$root/src/chain
[[ -d "$dir" ]] || { echo "no $dir"; exit 1; }

held='vector<\s*(rpc::)?CallResult\s*>'
subscript='(^|[^[:alnum:]_.>])(r|res|rs|results|replies|answers)\s*\[|\bkFixed\b'
batch='\.batch\('
# The patterns fire on what they are meant to catch (a grep that matches nothing checks nothing).
for probe in 'std::vector<rpc::CallResult> r;' 'const auto b = r[3 * c + 1].ok();' 'op_fees(&r[kFixed + (d ? 2 : 0)], n);' \
             'if (results[k].error) {}'; do
  grep -Eq "$held|$subscript" <<<"$probe" || { echo "the check does not catch: $probe"; exit 1; }
done
for fine in 'c.params_text[4 + 2 * k] = x;' 'pay_[m.payment].outcome' 'answers.get(calls.chain_id)'; do
  if grep -Eq "$held|$subscript" <<<"$fine"; then echo "the check catches what is fine: $fine"; exit 1; fi
done

files=$(find "$dir" -name '*.cpp' -o -name '*.hpp' | grep -v '/batch\.hpp$' | sort)
found=$(grep -nE "$held|$subscript" $files || true)
unwrapped=$(grep -nE "$batch" $files | grep -vE 'Answers\(co_await|\(void\)co_await' || true)
if [[ -n "$found$unwrapped" ]]; then
  echo "batch answers read by position in src/chain/ (read them through the Answer<T> handle add() gave):"
  [[ -n "$found" ]] && echo "$found" | sed "s|^$root/||"
  [[ -n "$unwrapped" ]] && echo "$unwrapped" | sed "s|^$root/||; s|$| (results not taken into Answers)|"
  exit 1
fi
echo "batch answers: every batch of the $(wc -w <<<"$files") files of src/chain/ is read through its handles"
