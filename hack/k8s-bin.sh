#!/usr/bin/env bash
# Provide kube-apiserver, etcd, kubectl, helm (and kube-controller-manager) at pinned versions.
#
# Sources, in order:
#   1. $TRUSTSPACE_K8S_BIN or $KUBEBUILDER_ASSETS, when it already holds the binaries
#      (envtest users reuse theirs; helm may come from PATH if that directory lacks it);
#   2. the cache, keyed by versions: ${TRUSTSPACE_CACHE:-~/.cache/trustspace}/bin/<key>/;
#   3. a build from pinned Go modules through the Go module proxy (hack/tools/go.mod).
# Release downloads are not attempted: they are unreachable on restricted networks and the
# Go build gives the same binaries from a pinned, checksummed source.
#
# Progress goes to stderr; the last line on stdout is the directory holding the binaries.
set -euo pipefail

K8S_VERSION=1.34.4
ETCD_VERSION=3.6.4 # the etcd server that k8s.io/kubernetes v${K8S_VERSION} itself requires
HELM_VERSION=3.19.5

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${TRUSTSPACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trustspace}
BUILD_REVISION=2 # bump when the build itself changes (flags), so caches rebuild
key="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_r${BUILD_REVISION}"
dest="$cache/bin/$key"
required=(kube-apiserver etcd kubectl helm)
optional=(kube-controller-manager)

say() { printf '[k8s-bin] %s\n' "$*" >&2; }
die() { printf '[k8s-bin] error: %s\n' "$*" >&2; exit 1; }

has_all() { # DIR NAME... -> true when every NAME is an executable file in DIR
  local dir=$1; shift
  local name
  for name in "$@"; do [[ -x "$dir/$name" ]] || return 1; done
}

# 1. An explicit directory from the environment.
for var in TRUSTSPACE_K8S_BIN KUBEBUILDER_ASSETS; do
  dir=${!var:-}
  [[ -n "$dir" ]] || continue
  if has_all "$dir" kube-apiserver etcd kubectl; then
    if [[ ! -x "$dir/helm" ]]; then
      if helm_path=$(command -v helm); then
        say "$var=$dir lacks helm; linking $helm_path into $cache/env-bin"
        mkdir -p "$cache/env-bin"
        for name in kube-apiserver etcd kubectl kube-controller-manager; do
          [[ -x "$dir/$name" ]] && ln -sf "$dir/$name" "$cache/env-bin/$name"
        done
        ln -sf "$helm_path" "$cache/env-bin/helm"
        echo "$cache/env-bin"
        exit 0
      fi
      say "$var=$dir lacks helm and none is on PATH; building the pinned set instead"
    else
      say "using binaries from $var=$dir"
      echo "$dir"
      exit 0
    fi
  else
    say "$var=$dir does not hold kube-apiserver, etcd and kubectl; ignoring it"
  fi
done

# 2. A warm cache.
if has_all "$dest" "${required[@]}" "${optional[@]}"; then
  say "cached: $dest"
  echo "$dest"
  exit 0
fi

# 3. Build from pinned Go modules, one builder at a time: parallel callers (test runs, CI
# steps) wait for the first one's build instead of starting their own.
mkdir -p "$cache/bin"
if command -v flock >/dev/null; then
  exec 9>"$cache/bin/.build.lock"
  if ! flock -n 9; then
    say "another hack/k8s-bin.sh is building; waiting for it"
    flock 9
  fi
  if has_all "$dest" "${required[@]}" "${optional[@]}"; then
    say "built by the other caller: $dest"
    echo "$dest"
    exit 0
  fi
fi
command -v go >/dev/null || die "Go is needed to build the control-plane binaries (Go 1.24+); install it, or point KUBEBUILDER_ASSETS at a directory with kube-apiserver, etcd and kubectl"
export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS='' CGO_ENABLED=0 GOTOOLCHAIN=local
mkdir -p "$dest.partial" "$GOMODCACHE" "$GOCACHE"
start=$SECONDS
say "building Kubernetes v$K8S_VERSION, etcd v$ETCD_VERSION and helm v$HELM_VERSION from the Go module proxy"
say "a cold build takes 10-20 minutes on 2 cores; later calls take seconds (cache: $cache)"

step() { # N TOTAL WHAT CMD... : run one build step with progress and timing
  local n=$1 total=$2 what=$3; shift 3
  local t0=$SECONDS
  say "[$n/$total] $what ..."
  "$@" || die "$what failed; rerun with 'bash -x $0' to see the command, or set KUBEBUILDER_ASSETS to prebuilt binaries"
  say "[$n/$total] $what done in $((SECONDS - t0))s"
}

build_k8s() {
  cd "$here/tools"
  go mod download
  # Stamp the version the way the upstream release build does, so /version, kubectl version
  # and helm's kubeVersion checks see v$K8S_VERSION rather than v0.0.0-master.
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*}"
    ldflags+=" -X $pkg.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION") -X $pkg.gitTreeState=clean"
  done
  go build -trimpath -ldflags "$ldflags" -o "$dest.partial/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl \
    go.etcd.io/etcd/server/v3
}
# Go names a main package after its import path minus the major-version suffix: "server".
rename_etcd() { mv -f "$dest.partial/server" "$dest.partial/etcd"; }
build_helm() {
  local v=helm.sh/helm/v3/internal/version ldflags pkg
  ldflags="-s -w -X $v.version=v$HELM_VERSION -X $v.gitTreeState=clean"
  # The Kubernetes version `helm template` and `helm lint` assume without a cluster, as
  # helm's release build sets it (otherwise 1.20, which fails charts' kubeVersion checks).
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X $pkg.k8sVersionMajor=${K8S_VERSION%%.*}"
    ldflags+=" -X $pkg.k8sVersionMinor=$(cut -d. -f2 <<<"$K8S_VERSION")"
  done
  GOBIN="$dest.partial" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
}

step 1 3 "kube-apiserver, kube-controller-manager, kubectl, etcd (go build)" build_k8s
rename_etcd
step 2 3 "helm (go install)" build_helm
check_versions() {
  "$dest.partial/kube-apiserver" --version >&2
  "$dest.partial/etcd" --version | head -n 1 >&2
  "$dest.partial/kubectl" version --client >&2
  "$dest.partial/helm" version --short >&2
}
step 3 3 "checking versions" check_versions
rm -rf "$dest"
mv "$dest.partial" "$dest"
has_all "$dest" "${required[@]}" || die "build finished but $dest lacks a binary"
say "built in $((SECONDS - start))s: $dest"
echo "$dest"
