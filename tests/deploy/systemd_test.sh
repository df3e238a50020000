#!/usr/bin/env bash
# systemd/keymaster.service: `systemd-analyze verify` passes and the offline security exposure is 2.0 or better.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${KEYMASTER_BIN:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify checks that ExecStart exists: point it at the freshly built binary.
sed "s|/usr/local/bin/keymaster|$bin|" "$root/systemd/keymaster.service" > "$tmp/keymaster.service"
systemd-analyze verify "$tmp/keymaster.service"
out=$(systemd-analyze security --offline=yes "$tmp/keymaster.service")
level=$(grep -o 'Overall exposure level for keymaster.service: [0-9.]*' <<<"$out" | awk '{print $NF}')
echo "exposure level: $level"
awk -v l="$level" 'BEGIN { exit !(l != "" && l <= 2.0) }' || { echo "exposure $level is above 2.0"; exit 1; }
grep -q '^LoadCredential=' "$root/systemd/keymaster.service"
grep -q '^StateDirectory=keymaster' "$root/systemd/keymaster.service"
echo "systemd unit OK"
