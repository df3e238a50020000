#!/usr/bin/env bash
# Builds tests/deploy/helmrender offline from Debian's Go packages (golang-go, sprig, yaml.v3).
set -euo pipefail
out=${1:?output path}
here=$(cd "$(dirname "$0")" && pwd)
gp=$(mktemp -d)
trap 'rm -rf "$gp"' EXIT
# Debian ships sprig and semver v3 without the /v3 path element that GOPATH mode needs.
mkdir -p "$gp/src/github.com/Masterminds/sprig" "$gp/src/github.com/Masterminds/semver"
ln -s /usr/share/gocode/src/github.com/Masterminds/sprig "$gp/src/github.com/Masterminds/sprig/v3"
ln -s /usr/share/gocode/src/github.com/Masterminds/semver "$gp/src/github.com/Masterminds/semver/v3"
cd "$here/helmrender"
GO111MODULE=off GOPATH="$gp:/usr/share/gocode" GOCACHE="$gp/cache" GOFLAGS= GOPROXY=off go build -o "$out" .
