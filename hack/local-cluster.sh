#!/usr/bin/env bash
# Local Kubernetes control planes for humans: etcd + kube-apiserver (+ controller manager).
#   hack/local-cluster.sh up NAME          start NAME in the background
#   hack/local-cluster.sh down NAME        stop it (add --purge to delete its data)
#   hack/local-cluster.sh kubeconfig NAME  print its kubeconfig path (last line)
#   hack/local-cluster.sh list             list clusters
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
if [[ ! -x "$python" ]]; then
  echo "local-cluster: $python not found; run 'make venv' first (or set PYTHON)" >&2
  exit 1
fi
if [[ "${1:-}" == up ]]; then
  # Build or find the binaries here so their progress shows before the cluster starts.
  TRUSTSPACE_K8S_BIN=${TRUSTSPACE_K8S_BIN:-$("$root/hack/k8s-bin.sh" | tail -n 1)}
  export TRUSTSPACE_K8S_BIN
fi
exec "$python" -m trustspace.cli cluster "$@"
