#!/usr/bin/env bash
# Remove what hack/kind-up.sh started: its kind clusters and their kubeconfigs, then the Docker
# engine hack/kind/prepare.sh started (by the PID it recorded; an engine that already ran, as
# on a CI runner, is left alone). Cached images and binaries stay for the next kind-up.
set -euo pipefail

prefix=${TRUSTSPACE_KIND_PREFIX:-trustspace}
cache=${TRUSTSPACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trustspace}
dir=${TRUSTSPACE_KIND_DIR:-$cache/kind}
started_engine=$cache/kind-offline/dockerd.started-by-trustspace
say() { printf '[kind-down] %s\n' "$*" >&2; }
die() { printf '[kind-down] error: %s\n' "$*" >&2; exit 1; }

# The kind prepare.sh built, else one on PATH.
kind_bin=$(compgen -G "$cache/kind-offline/bin-*/kind" | tail -n 1 || true)
[[ -n "$kind_bin" ]] || kind_bin=$(command -v kind || true)
failed=0
if [[ -n "$kind_bin" ]] && docker info >/dev/null 2>&1; then
  existing=$("$kind_bin" get clusters 2>/dev/null || true)
  for cluster in "$prefix-hub" "$prefix-edge-1" "$prefix-edge-2"; do
    if grep -qx "$cluster" <<<"$existing"; then
      say "deleting $cluster ..."
      "$kind_bin" delete cluster --name "$cluster" || { say "could not delete $cluster (see above)"; failed=1; }
    else
      say "$cluster does not exist"
    fi
  done
elif [[ -z "$kind_bin" ]]; then
  say "no kind binary (hack/kind/prepare.sh builds one): no clusters to delete"
else
  say "no Docker engine answers: no clusters to delete"
fi
for cluster in "$prefix-hub" "$prefix-edge-1" "$prefix-edge-2"; do
  rm -f "$dir/$cluster.kubeconfig" "$dir/$cluster.internal.kubeconfig"
done

if [[ -f "$started_engine" ]]; then
  pid=$(cat "$started_engine")
  if [[ "$pid" =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]]; then
    if ((failed == 0)); then
      say "stopping the Docker engine kind-up started (pid $pid) ..."
      kill "$pid"
      for _ in $(seq 1 30); do [[ -e "/proc/$pid" ]] || break; sleep 1; done
      [[ -e "/proc/$pid" ]] && die "dockerd (pid $pid) did not stop within 30 s; kill it by hand"
    else
      say "leaving the Docker engine (pid $pid) running: clusters remain"
    fi
  fi
  ((failed == 0)) && rm -f "$started_engine"
fi
((failed == 0)) || die "some clusters remain: 'docker ps -a --filter label=io.x-k8s.kind.cluster' lists them; retry hack/kind-down.sh"
say "done"
