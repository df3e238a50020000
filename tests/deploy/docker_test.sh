#!/usr/bin/env bash
# The Dockerfile's runtime stage installs the Debian packages that provide every shared library the
# keymaster binary links (and nothing the build stage needs), runs as non-root, and is multi-stage.
# (No Docker engine runs on these machines, so the image itself is not built here.)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${KEYMASTER_BIN:?}
df="$root/Dockerfile"
declared=$(grep '^# runtime-packages:' "$df" | cut -d: -f2-)
[ "$(grep -c '^FROM ' "$df")" -ge 2 ] || { echo "not multi-stage"; exit 1; }
grep -q '^USER [1-9]' "$df" || { echo "runs as root"; exit 1; }
owner() {  # the package owning a library path (usrmerge: dpkg may know it under /lib)
  local path=$1 real
  real=$(readlink -f "$path")
  for p in "$path" "$real" "${path#/usr}" "${real#/usr}"; do
    dpkg -S "$p" 2>/dev/null | cut -d: -f1 && return 0
  done
  echo "UNKNOWN:$path"
}
needed=$(ldd "$bin" | awk '$3 ~ /^\// {print $3}' | while read -r lib; do owner "$lib"; done | sort -u)
status=0
for p in $needed; do
  case "$p" in libc6|libgcc-s1|libstdc++6) continue ;; esac   # in every Debian image
  grep -qw -- "$p" <<<"$declared" || { echo "runtime stage lacks $p"; status=1; }
done
for p in $declared; do
  grep -q -- "$p" <<<"$(sed -n '/^FROM debian:12-slim/,$p' "$df")" || { echo "$p declared but not installed"; status=1; }
  case "$p" in *-dev) echo "development package $p in the runtime stage"; status=1 ;; esac
done
[ $status -eq 0 ] && echo "Dockerfile runtime packages OK: $needed"
exit $status
