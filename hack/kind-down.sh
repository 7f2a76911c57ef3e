#!/usr/bin/env bash
# Delete the kind clusters hack/kind-up.sh created (missing ones are fine) and their kubeconfigs.
set -euo pipefail

prefix=${TRUSTSPACE_KIND_PREFIX:-trustspace}
dir=${TRUSTSPACE_KIND_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/trustspace/kind}
say() { printf '[kind-down] %s\n' "$*" >&2; }
die() { printf '[kind-down] error: %s\n' "$*" >&2; exit 1; }

command -v kind >/dev/null || die "kind is not on PATH; install it, or delete the containers '$prefix-*-control-plane' with docker rm -f"
existing=$(kind get clusters 2>/dev/null || true)
failed=0
for cluster in "$prefix-hub" "$prefix-edge-1" "$prefix-edge-2"; do
  if grep -qx "$cluster" <<<"$existing"; then
    say "deleting $cluster ..."
    kind delete cluster --name "$cluster" || { say "could not delete $cluster (see above)"; failed=1; }
  else
    say "$cluster does not exist"
  fi
  rm -f "$dir/$cluster.kubeconfig" "$dir/$cluster.internal.kubeconfig"
done
((failed == 0)) || die "some clusters remain: 'docker ps -a --filter label=io.x-k8s.kind.cluster' lists them; retry hack/kind-down.sh"
say "done"
