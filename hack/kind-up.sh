#!/usr/bin/env bash
# A hub and two edge kind clusters running the trustspace images and the samples, for the e2e
# suite and for trying trustspace on real kubelets. Works offline: hack/kind/prepare.sh first
# provides Docker (Debian's engine, started here when none answers), kind and a node image built
# from Go modules and Debian packages, and a local Python base image; nothing is pulled.
#   hack/kind-up.sh        create (or reuse) the clusters, build + load images, install, wait
#   hack/kind-down.sh      delete them again, and stop a Docker engine that prepare.sh started
# Cold (nothing cached) about 20-25 minutes on 2 cores; warm (images and binaries cached) 4-6.
# Settings (environment): TRUSTSPACE_KIND_PREFIX (default trustspace), TRUSTSPACE_IMAGE_TAG
# (default dev-<git sha>), TRUSTSPACE_KIND_DIR (kubeconfigs; default ~/.cache/trustspace/kind),
# TRUSTSPACE_KIND_TIMEOUT (the Ready wait, default 600s), TRUSTSPACE_KIND_EDGE_CREDENTIALS
# (serviceaccount: the edge chart's least-privilege identity, the default; admin: kind's admin).
# At the end it prints the TRUSTSPACE_E2E_*_KUBECONFIG variables the e2e suite reads.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${TRUSTSPACE_KIND_PREFIX:-trustspace}
tag=${TRUSTSPACE_IMAGE_TAG:-dev-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo local)}
dir=${TRUSTSPACE_KIND_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/trustspace/kind}
timeout=${TRUSTSPACE_KIND_TIMEOUT:-600s}
credentials=${TRUSTSPACE_KIND_EDGE_CREDENTIALS:-serviceaccount}
release=trustspace
system_ns=trustspace-system
demo_ns=trustspace-demo
operator_image=ghcr.io/trustspace/trustspace-operator:$tag
agent_image=ghcr.io/trustspace/trustspace-agent:$tag
hub=$prefix-hub
edges=("$prefix-edge-1" "$prefix-edge-2")
# The remote DataSpaceNodes in config/samples/: node, its edge cluster, the kubeconfig Secret
# its placement names and the key in it (th-rayong reads `config`; the rest `kubeconfig`).
placements=(
  "vn-hanoi ${edges[0]} vn-hanoi-kubeconfig kubeconfig"
  "sg-singapore ${edges[0]} sg-singapore-kubeconfig kubeconfig"
  "th-rayong ${edges[1]} th-rayong-kubeconfig config"
  "my-kuantan ${edges[1]} my-kuantan-kubeconfig kubeconfig"
)
# Namespaces the mirror nodes use in the edges: the samples' placement.namespace, and the
# DataSpaceNode's own namespace where a sample names none (sg-singapore).
edge_namespaces="{trustspace-edge,$demo_ns}"
# Every gateway, reachable from the other clusters: node, its cluster, the namespace its agent
# runs in, and a NodePort on that cluster's node (kind's clusters share one docker network).
# The samples' endpoints do not resolve here, so each becomes https://<node address>:<port>;
# the operator then issues the gateway's TLS pair for that address and renders it as peer.
gateways=(
  "cn-nanning $hub $demo_ns 30441"
  "vn-hanoi ${edges[0]} trustspace-edge 30442"
  "sg-singapore ${edges[0]} $demo_ns 30443"
  "th-rayong ${edges[1]} trustspace-edge 30444"
  "my-kuantan ${edges[1]} trustspace-edge 30445"
)

# The hub's audit collector (chart value collector.*): in the samples' namespace beside the
# hub node cn-nanning, reached by every agent (hub and edges) at a NodePort of the hub.
collector_port=30440

# Standard output carries only the export lines at the end (callers source them); everything
# the tools print on the way goes to standard error with the progress.
exec 3>&1 1>&2
step=0
steps=10
started=$SECONDS
say() { printf '[kind-up] %s\n' "$*" >&2; }
die() { printf '[kind-up] error: %s\n' "$*" >&2; exit 1; }
next() { step=$((step + 1)); say "[$step/$steps] $* ($((SECONDS - started))s)"; }

[[ "$credentials" == serviceaccount || "$credentials" == admin ]] \
  || die "TRUSTSPACE_KIND_EDGE_CREDENTIALS must be serviceaccount or admin, not '$credentials'"

next "Docker, kind and the node image (hack/kind/prepare.sh; cached after the first run)"
prepared=$("$root/hack/kind/prepare.sh") || die "hack/kind/prepare.sh failed; see its output above"
KIND='' KIND_BIN_DIR='' NODE_IMAGE='' PYTHON_IMAGE='' ETCD_IMAGE_TAG='' DOCKER_BUILD=''
eval "$(grep -E '^(KIND|KIND_BIN_DIR|NODE_IMAGE|PYTHON_IMAGE|ETCD_IMAGE_TAG|DOCKER_BUILD)=' <<<"$prepared")"
[[ -x "$KIND" && -n "$NODE_IMAGE" ]] || die "hack/kind/prepare.sh did not name kind and a node image"
k8s_bin=$("$root/hack/k8s-bin.sh" | tail -n 1) || die "hack/k8s-bin.sh failed (kubectl, helm)"
export PATH="$k8s_bin:$KIND_BIN_DIR:$PATH"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer ('docker info' fails)"
mkdir -p "$dir"
kcfg() { echo "$dir/$1.kubeconfig"; }
k() { local cluster=$1; shift; kubectl --kubeconfig "$(kcfg "$cluster")" "$@"; }
# A cluster's node address on the kind docker network: what the other clusters can dial.
address() {
  docker inspect -f '{{(index .NetworkSettings.Networks "kind").IPAddress}}' "$1-control-plane" \
    || die "no address for $1-control-plane on the kind network (docker inspect)"
}

next "kind clusters: $hub ${edges[*]} (node image $NODE_IMAGE)"
# The node image preloads the etcd hack/tools builds; kubeadm must ask for that tag.
cluster_config=$dir/cluster.yaml
cat >"$cluster_config" <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    etcd:
      local:
        imageTag: "$ETCD_IMAGE_TAG"
EOF
for cluster in "$hub" "${edges[@]}"; do
  if "$KIND" get clusters 2>/dev/null | grep -qx "$cluster" \
    && [[ "$(docker inspect -f '{{.State.Running}}' "$cluster-control-plane" 2>/dev/null)" != true ]]; then
    # Left from an engine that was stopped under it (a machine restart, a killed session).
    say "      $cluster exists but its node is not running; deleting it"
    "$KIND" delete cluster --name "$cluster" >&2
  fi
  if "$KIND" get clusters 2>/dev/null | grep -qx "$cluster"; then
    say "      $cluster exists; reusing it"
  else
    say "      creating $cluster (about 30-100 s) ..."
    t0=$SECONDS
    "$KIND" create cluster --name "$cluster" --image "$NODE_IMAGE" --config "$cluster_config" \
      --kubeconfig "$(kcfg "$cluster")" --wait 180s \
      || die "kind could not create $cluster; see the output above, then 'hack/kind-down.sh' and retry"
    say "      $cluster ready in $((SECONDS - t0))s"
  fi
  "$KIND" get kubeconfig --name "$cluster" >"$(kcfg "$cluster")"
done

next "images: $operator_image, $agent_image (base $PYTHON_IMAGE)"
build() { # DOCKERFILE IMAGE
  # shellcheck disable=SC2086 # DOCKER_BUILD is a command with its arguments
  $DOCKER_BUILD -f "$root/$1" -t "$2" --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" "$root"
}
t0=$SECONDS
build operator/Dockerfile "$operator_image" \
  || die "building the operator image failed; 'hack/image-check.sh operator' reproduces its pip steps without Docker"
build edge-agent/Dockerfile "$agent_image" \
  || die "building the agent image failed; 'hack/image-check.sh agent' reproduces its pip steps without Docker"
say "      built in $((SECONDS - t0))s"

next "loading images into the clusters"
"$KIND" load docker-image --name "$hub" "$operator_image" "$agent_image" \
  || die "kind load into $hub failed; is the cluster running? (kind get clusters)"
for cluster in "${edges[@]}"; do
  "$KIND" load docker-image --name "$cluster" "$agent_image" \
    || die "kind load into $cluster failed; is the cluster running? (kind get clusters)"
done

next "chart into $hub (mode=hub; collector in $demo_ns)"
collector_url="https://$(address "$hub"):$collector_port"
say "      collector: $collector_url (NodePort $collector_port of $hub)"
# The collector runs in the data space's namespace, so that exists first (PodSecurity
# `restricted` enforced, as on the edges). No --wait: the collector starts once the operator
# has provisioned the hub node (its key Secret, the trust ConfigMap, its TLS pair), which
# needs the samples below; the operator is waited for here.
for ns in "$system_ns" "$demo_ns"; do
  k "$hub" create namespace "$ns" --dry-run=client -o yaml | k "$hub" apply -f - >/dev/null
  k "$hub" label namespace "$ns" --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
done
helm upgrade --install "$release" "$root/charts/trustspace" --kubeconfig "$(kcfg "$hub")" \
  -n "$system_ns" --timeout 5m -f "$root/hack/kind/values.yaml" \
  --set image.tag="$tag" --set agentImage="$agent_image" \
  --set collector.dataSpace.namespace="$demo_ns" --set collector.dataSpace.hubNode=cn-nanning \
  --set collector.url="$collector_url" --set collector.service.type=NodePort \
  --set collector.service.nodePort="$collector_port" \
  || die "helm install into $hub failed; see 'kubectl --kubeconfig $(kcfg "$hub") -n $system_ns get pods,events'"
k "$hub" -n "$system_ns" rollout status "deploy/$release-operator" --timeout=5m \
  || die "the operator did not become ready; see 'kubectl --kubeconfig $(kcfg "$hub") -n $system_ns describe pods'"

next "chart into the edges (mode=edge, namespaces $edge_namespaces)"
for cluster in "${edges[@]}"; do
  helm upgrade --install "$release" "$root/charts/trustspace" --kubeconfig "$(kcfg "$cluster")" \
    -n "$system_ns" --create-namespace --wait --timeout 2m \
    --set mode=edge --set "edge.namespaces=$edge_namespaces" \
    || die "helm install into $cluster failed; see the output above"
done

# A kubeconfig for the hub's operator to reach an edge: the API server's address on the
# docker network (kind get kubeconfig --internal), with the edge chart's ServiceAccount token.
edge_kubeconfig() { # CLUSTER OUT
  local cluster=$1 out=$2 internal server ca token
  internal=$(mktemp) ca=$(mktemp)
  "$KIND" get kubeconfig --internal --name "$cluster" >"$internal"
  if [[ "$credentials" == admin ]]; then
    mv "$internal" "$out"
    rm -f "$ca"
    return
  fi
  server=$(kubectl --kubeconfig "$internal" config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
  kubectl --kubeconfig "$internal" config view --raw --minify \
    -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$ca"
  token=$(k "$cluster" -n "$system_ns" create token "$release-hub-operator" --duration=24h) \
    || die "could not get a token for $system_ns/$release-hub-operator in $cluster; is the edge chart installed?"
  rm -f "$out"
  kubectl --kubeconfig "$out" config set-cluster "$cluster" --server="$server" \
    --certificate-authority="$ca" --embed-certs=true >/dev/null
  kubectl --kubeconfig "$out" config set-credentials hub-operator --token="$token" >/dev/null
  kubectl --kubeconfig "$out" config set-context "$cluster" --cluster="$cluster" \
    --user=hub-operator --namespace=trustspace-edge >/dev/null
  kubectl --kubeconfig "$out" config use-context "$cluster" >/dev/null
  rm -f "$internal" "$ca"
}

next "wiring the edges to the hub: kubeconfig Secrets in $hub/$demo_ns ($credentials credentials)"
for cluster in "${edges[@]}"; do
  edge_kubeconfig "$cluster" "$dir/$cluster.internal.kubeconfig"
done
for entry in "${placements[@]}"; do
  read -r node cluster secret key <<<"$entry"
  say "      $node -> $cluster (Secret $secret, key $key)"
  k "$hub" -n "$demo_ns" create secret generic "$secret" \
    --from-file="$key=$dir/$cluster.internal.kubeconfig" --dry-run=client -o yaml \
    | k "$hub" apply -f - >/dev/null
done
# The health policy's pseudonymisation key (config/samples/README.md), in every namespace a
# node's agent runs in: agents mount it from their own cluster, the operator never copies it.
pseudonym_key=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
for entry in "${gateways[@]}"; do
  read -r node cluster ns _ <<<"$entry"
  k "$cluster" create namespace "$ns" --dry-run=client -o yaml | k "$cluster" apply -f - >/dev/null
  k "$cluster" -n "$ns" create secret generic health-pseudonym-key \
    --from-literal=sm3-hmac-key="$pseudonym_key" --dry-run=client -o yaml \
    | k "$cluster" apply -f - >/dev/null
done

next "samples into $hub/$demo_ns (agents sized for small nodes: hack/kind/small-agents.yaml)"
# The samples ask for production-sized agents; a kind node offers this machine's cores to
# three clusters at once, so each agent asks for little here (same limits). The nodes are
# patched before they are applied, so no agent is ever rendered at the larger size.
for sample in "$root"/config/samples/dataspacenode_*.yaml; do
  k "$hub" patch --local -f "$sample" --type merge --patch-file "$root/hack/kind/small-agents.yaml" -o yaml \
    | k "$hub" -n "$demo_ns" apply -f - >/dev/null \
    || die "applying $sample failed; are the CRDs installed? (kubectl get crd | grep trustspace.io)"
done
for sample in "$root"/config/samples/{transferpolicy,mirrorlink}_*.yaml; do
  k "$hub" -n "$demo_ns" apply -f "$sample" >/dev/null || die "applying $sample failed"
done

next "gateway endpoints: a NodePort per node on its cluster's address in the kind network"
for entry in "${gateways[@]}"; do
  read -r node cluster ns port <<<"$entry"
  address=$(address "$cluster")
  say "      $node: https://$address:$port ($cluster, namespace $ns)"
  k "$cluster" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata:
  name: $node-gateway-nodeport
  namespace: $ns
  labels: {app.kubernetes.io/part-of: trustspace}
spec:
  type: NodePort
  selector: {app.kubernetes.io/name: trustspace-agent, trustspace.io/node: $node}
  ports:
    - {name: gateway, port: 8443, targetPort: gateway, nodePort: $port, protocol: TCP}
EOF
  k "$hub" -n "$demo_ns" patch dsn "$node" --type merge \
    -p "{\"spec\":{\"endpoint\":\"https://$address:$port\"}}" >/dev/null \
    || die "could not set the endpoint of DataSpaceNode $node"
done

next "waiting up to $timeout for the collector, then for every DataSpaceNode to be Ready"
# Agents report Ready through the collector (heartbeats, audit): it comes first.
k "$hub" -n "$demo_ns" rollout status "deploy/$release-collector" --timeout="$timeout" || {
  k "$hub" -n "$demo_ns" describe pods -l app.kubernetes.io/component=collector >&2 || true
  die "the collector did not become ready: it needs Secret cn-nanning-sm2-key, ConfigMap trustspace-trust-bundle and Secret trustspace-collector-tls in $demo_ns (the operator makes them); 'kubectl --kubeconfig $(kcfg "$hub") -n $demo_ns logs deploy/$release-collector' shows its view"
}
if ! k "$hub" -n "$demo_ns" wait --for=condition=Ready dsn --all --timeout="$timeout"; then
  k "$hub" -n "$demo_ns" get dsn -o wide >&2 || true
  die "not every DataSpaceNode became Ready: 'kubectl --kubeconfig $(kcfg "$hub") -n $demo_ns describe dsn' shows their conditions, 'kubectl --kubeconfig $(kcfg "$hub") -n $system_ns logs deploy/$release-operator' the operator's view"
fi
k "$hub" -n "$demo_ns" get dsn >&2
say "ready in $((SECONDS - started))s. For the e2e suite:"
{
  echo "export TRUSTSPACE_E2E_HUB_KUBECONFIG=$(kcfg "$hub")"
  echo "export TRUSTSPACE_E2E_EDGE1_KUBECONFIG=$(kcfg "${edges[0]}")"
  echo "export TRUSTSPACE_E2E_EDGE2_KUBECONFIG=$(kcfg "${edges[1]}")"
  echo "export TRUSTSPACE_E2E_NAMESPACE=$demo_ns"
  echo "export TRUSTSPACE_E2E_KIND_BIN=$KIND_BIN_DIR"
} >&3
