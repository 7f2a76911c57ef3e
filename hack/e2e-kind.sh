#!/usr/bin/env bash
# The e2e suite in real Pods: hack/kind-up.sh (a hub and two edge kind clusters with the
# operator, collector and agents from the chart), then the tests only real kubelets can make
# (tests/kind, marker `kind`) and the data-space suite (tests/e2e/dataspace) against those
# clusters, then hack/kind-down.sh, whatever happened. `make e2e-kind` runs it.
# TRUSTSPACE_KIND_KEEP=1 leaves the clusters up for a look (hack/kind-down.sh removes them).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { printf '[e2e-kind] %s\n' "$*" >&2; }
env_file=$(mktemp)
down() {
  rc=$?
  if ((rc != 0)) && [[ -n "${TRUSTSPACE_E2E_HUB_KUBECONFIG:-}" ]]; then
    say "failed (rc $rc): the state of the clusters, for the log"
    for cfg in "$TRUSTSPACE_E2E_HUB_KUBECONFIG" "$TRUSTSPACE_E2E_EDGE1_KUBECONFIG" "$TRUSTSPACE_E2E_EDGE2_KUBECONFIG"; do
      "$TRUSTSPACE_E2E_KIND_BIN/kubectl" --kubeconfig "$cfg" get pods -A -o wide >&2 || true
      "$TRUSTSPACE_E2E_KIND_BIN/kubectl" --kubeconfig "$cfg" get events -A --sort-by=.lastTimestamp 2>&1 | tail -n 40 >&2 || true
    done
    "$TRUSTSPACE_E2E_KIND_BIN/kubectl" --kubeconfig "$TRUSTSPACE_E2E_HUB_KUBECONFIG" -n "$TRUSTSPACE_E2E_NAMESPACE" get dsn \
      -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{range .status.conditions[*]}{"  "}{.type}={.status} {.reason}: {.message}{"\n"}{end}{end}' >&2 || true
  fi
  if [[ "${TRUSTSPACE_KIND_KEEP:-0}" == 1 ]]; then
    say "TRUSTSPACE_KIND_KEEP=1: clusters left up; 'source $env_file' to use them, hack/kind-down.sh to remove them"
  else
    hack/kind-down.sh || rc=1
    rm -f "$env_file"
  fi
  exit "$rc"
}
trap down EXIT
start=$SECONDS
hack/kind-up.sh >"$env_file"
cat "$env_file"
# shellcheck disable=SC1090 # the variables kind-up printed
source "$env_file"
up=$((SECONDS - start))
say "clusters up in ${up}s; the kind suite (tests/kind), then tests/e2e/dataspace against kind"
read -ra extra <<<"${PYTEST_ARGS:-}"
.venv/bin/pytest -m kind -p no:cacheprovider tests/kind "${extra[@]}"
.venv/bin/pytest -m e2e -p no:cacheprovider tests/e2e/dataspace "${extra[@]}"
say "kind-up ${up}s, tests $((SECONDS - start - up))s; the Pods after the suite (restarts are the tests' own kills):"
for cfg in "$TRUSTSPACE_E2E_HUB_KUBECONFIG" "$TRUSTSPACE_E2E_EDGE1_KUBECONFIG" "$TRUSTSPACE_E2E_EDGE2_KUBECONFIG"; do
  say "$(basename "$cfg" .kubeconfig):"
  "$TRUSTSPACE_E2E_KIND_BIN/kubectl" --kubeconfig "$cfg" get pods -A >&2
done
