#!/usr/bin/env bash
# Lint the GitHub Actions workflows with actionlint, built from its Go module at a pinned
# version and cached under ${TRUSTSPACE_CACHE:-~/.cache/trustspace}/bin/actionlint-<version>/.
#   hack/actionlint.sh              lint .github/workflows/*.yaml (and *.yml)
#   hack/actionlint.sh FILE...      lint the given workflow files
#   hack/actionlint.sh --print-path build or find actionlint, print its path (last line)
# actionlint also runs shellcheck on `run:` blocks when shellcheck is on PATH.
set -euo pipefail

ACTIONLINT_VERSION=1.7.12

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${TRUSTSPACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trustspace}
dest="$cache/bin/actionlint-$ACTIONLINT_VERSION"
bin="$dest/actionlint"

say() { printf '[actionlint] %s\n' "$*" >&2; }
die() { printf '[actionlint] error: %s\n' "$*" >&2; exit 1; }

if [[ -x "$bin" ]]; then
  say "cached: $bin"
else
  command -v go >/dev/null \
    || die "Go is needed to build actionlint v$ACTIONLINT_VERSION; install Go (actionlint needs 1.25+; an older go fetches that toolchain from the module proxy) or put a prebuilt actionlint at $bin"
  export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS='' CGO_ENABLED=0
  mkdir -p "$dest.partial" "$GOMODCACHE" "$GOCACHE"
  say "building actionlint v$ACTIONLINT_VERSION from the Go module proxy (first time only, about a minute) ..."
  start=$SECONDS
  GOBIN="$dest.partial" go install -trimpath -ldflags "-s -w" \
    "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION" \
    || die "go install of actionlint v$ACTIONLINT_VERSION failed; check that the Go module proxy is reachable (go env GOPROXY) and rerun"
  rm -rf "$dest"
  mv "$dest.partial" "$dest"
  say "built in $((SECONDS - start))s: $bin"
fi

if [[ "${1:-}" == --print-path ]]; then
  echo "$bin"
  exit 0
fi

if command -v shellcheck >/dev/null; then
  say "shellcheck $(shellcheck --version | sed -n 's/^version: //p') checks the run: blocks too"
else
  say "shellcheck is not on PATH: run: blocks are not checked (apt-get install shellcheck)"
fi

cd "$root"
if (($# == 0)); then
  shopt -s nullglob
  set -- .github/workflows/*.yaml .github/workflows/*.yml
  (($# > 0)) || die "no workflow files under $root/.github/workflows"
fi
say "linting: $*"
"$bin" -no-color "$@" || die "actionlint found problems (above); fix the workflow and rerun hack/actionlint.sh"
say "ok"
