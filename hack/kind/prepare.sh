#!/usr/bin/env bash
# Everything kind needs, on a machine without a registry: a Docker engine, kind itself and a
# node image, all built here from Debian packages and pinned Go modules (no release downloads,
# no image pulls). hack/kind-up.sh runs it first; alone it prepares without creating clusters.
#
#   1. Debian packages (docker.io, containerd, runc, mmdebstrap, nftables, jq, gcc)
#   2. a Docker engine: the one that answers, or Debian's dockerd started here, with a runc
#      wrapper when this machine's capability bounding set lacks CAP_SYS_RESOURCE
#   3. binaries from Go modules: kubeadm, kubelet, kube-* and etcd (hack/tools, shared build
#      cache with hack/k8s-bin.sh), CoreDNS, local-path-provisioner, kube-router, kind;
#      pause from its C source
#   4. Debian root filesystems (mmdebstrap): the node's base and a small networking image
#   5. the kind base image   6. component images   7. the node image (images preloaded)
#   8. a local Python base image for the project's Dockerfiles
# Every step is skipped when its output exists; the cache lives outside the repository in
# ${TRUSTSPACE_CACHE:-~/.cache/trustspace}/kind-offline. Progress goes to stderr; the last lines on
# stdout are shell assignments (KIND, NODE_IMAGE, PYTHON_IMAGE, DOCKER_BUILD) for the caller.
#
# Settings: TRUSTSPACE_KIND_MIRROR (Debian mirror; default: the one apt uses, else deb.debian.org),
# TRUSTSPACE_DOCKER_DATA_ROOT (default <cache>/docker-data).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${TRUSTSPACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trustspace}
work=$cache/kind-offline

K8S_VERSION=1.34.4
ETCD_VERSION=3.6.4 # the etcd hack/tools pins (k8s.io/kubernetes v1.34.4 requires it); kind-up patches kubeadm's imageTag
COREDNS_VERSION=1.12.1
LPP_VERSION=0.0.30 # v0.0.34 is refused by the Go module proxy
# The NetworkPolicy enforcement: kube-router's firewall (iptables + ipset) alone, without its
# routing or service proxy. kube-network-policies (what kindnetd embeds) needs the nftables
# `queue` expression, which kernels without CONFIG_NFT_QUEUE (this machine's) lack; v2.1.0 is
# the only kube-router the Go module proxy serves here.
KUBE_ROUTER_VERSION=2.1.0
KIND_VERSION=0.33.0
PAUSE_VERSION=3.10.1
BUILD_REVISION=1 # bump when a build changes, so caches rebuild
bin=$work/bin-k8s$K8S_VERSION-kind$KIND_VERSION-r$BUILD_REVISION
# Images named by what goes into them, so a changed manifest or script makes a new one.
node_key=$(cat "$here/cni.yaml" "$here/tinynet.sh" "$here/runc-nosysres" "$here/storage_manifest.py" | sha256sum | cut -c1-10)
NODE_IMAGE=local/kind-node:v$K8S_VERSION-r$BUILD_REVISION-$node_key
BASE_IMAGE=local/kind-base:bookworm-r$BUILD_REVISION
PYTHON_IMAGE=local/python:3.11-bookworm-r$BUILD_REVISION
NET_IMAGE=local/kind-tinynet:r$BUILD_REVISION-$(sha256sum "$here/tinynet.sh" | cut -c1-10)
NETPOL_IMAGE=local/kube-router:v$KUBE_ROUTER_VERSION-r$BUILD_REVISION
LPP_IMAGE=docker.io/kindest/local-path-provisioner:v20260820-69b56db7 # the tags kind v0.33.0 names
LPH_IMAGE=docker.io/kindest/local-path-helper:v20260131-7181c60a
ETCD_IMAGE=registry.k8s.io/etcd:$ETCD_VERSION-0

step=0
steps=8
started=$SECONDS
say() { printf '[kind-prepare] %s\n' "$*" >&2; }
die() { printf '[kind-prepare] error: %s\n' "$*" >&2; exit 1; }
next() { step=$((step + 1)); say "[$step/$steps] $* ($((SECONDS - started))s)"; }
timed() { # WHAT CMD...: run, print how long it took
  local what=$1 t0=$SECONDS; shift
  say "      $what ..."
  "$@" || die "$what failed; rerun with 'bash -x $0' to see the command"
  say "      $what: $((SECONDS - t0))s"
}

mirror=${TRUSTSPACE_KIND_MIRROR:-$(grep -rhoE '^(deb +|URIs: +)[^ ]+debian/?$|^(deb +|URIs: +)[^ ]+debian ' \
  /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | awk '{print $2}' | head -n 1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$work/rootfs" "$bin"

next "Debian packages"
need_pkgs=()
command -v docker >/dev/null || need_pkgs+=(docker.io)
docker info >/dev/null 2>&1 || {
  command -v dockerd >/dev/null || need_pkgs+=(docker.io containerd runc)
}
for tool in mmdebstrap jq nft gcc iptables; do
  command -v "$tool" >/dev/null || need_pkgs+=("$tool")
done
[[ -e /usr/include/stdio.h ]] || need_pkgs+=(libc6-dev)
# mmdebstrap checks the Debian archive's signatures (Ubuntu runners lack Debian's keyring).
[[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || need_pkgs+=(debian-archive-keyring)
if ((${#need_pkgs[@]})); then
  pkgs=$(printf '%s\n' "${need_pkgs[@]}" | sed 's/^nft$/nftables/' | sort -u | tr '\n' ' ')
  say "      installing $pkgs"
  sudo=; ((EUID == 0)) || sudo=sudo
  $sudo apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $pkgs >/dev/null \
    || die "apt-get could not install $pkgs"
else
  say "      all present"
fi

next "Docker engine"
if docker info >/dev/null 2>&1; then
  say "      the engine answers; using it"
else
  ((EUID == 0)) || die "no Docker engine answers and starting one needs root: start Docker, then rerun"
  data=${TRUSTSPACE_DOCKER_DATA_ROOT:-$cache/docker-data}
  wrapper=$work/runc-nosysres
  install -D -m0755 "$here/runc-nosysres" "$wrapper"
  args=(--data-root "$data" --pidfile "$work/dockerd.pid")
  # Only where the bounding set lacks CAP_SYS_RESOURCE (bit 24), as on some VMs.
  bnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
  if (((16#$bnd >> 24 & 1) == 0)); then
    say "      CAP_SYS_RESOURCE is not in the bounding set: runc wrapper $wrapper as default runtime"
    args+=(--add-runtime "nosysres=$wrapper" --default-runtime nosysres)
  fi
  nohup dockerd "${args[@]}" >"$work/dockerd.log" 2>&1 &
  # hack/kind-down.sh stops it again by this PID (only an engine this script started).
  echo $! >"$work/dockerd.started-by-trustspace"
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || die "dockerd did not start; see $work/dockerd.log"
  say "      dockerd started (pid $(cat "$work/dockerd.started-by-trustspace"), data $data)"
fi
# Image builds need BuildKit (RUN --mount). A client with buildx has it; Debian's 20.10 client
# has it built in with DOCKER_BUILDKIT=1, while a newer client without buildx falls back to
# the legacy builder, which rejects RUN --mount.
if docker buildx version >/dev/null 2>&1; then
  docker_build="docker build"
elif [[ -x /usr/bin/docker ]]; then
  docker_build="env DOCKER_BUILDKIT=1 /usr/bin/docker build"
else
  docker_build="env DOCKER_BUILDKIT=1 docker build"
fi

export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS=-modcacherw CGO_ENABLED=0 GOTOOLCHAIN=local
command -v go >/dev/null || die "Go (1.24+) is needed to build kind and the node's binaries"
kind_src=$(go mod download -json "sigs.k8s.io/kind@v$KIND_VERSION" | jq -r .Dir)
[[ -d "$kind_src/images/base/files" ]] || die "kind's module source lacks images/base/files ($kind_src)"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
debstrap() { # OUT VARIANT PACKAGES: a bookworm root filesystem (dir or .tar) from the mirror
  mmdebstrap --quiet --variant="$2" --include="$3" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' bookworm "$1" "$mirror"
}

next "Debian root filesystems (mmdebstrap from $mirror)"
net_tar=$work/rootfs/debian-net-ipset.tar
if [[ ! -f "$net_tar" ]]; then
  # mmdebstrap picks the output format by the file name: the partial file ends in .tar too.
  timed "networking rootfs" debstrap "${net_tar%.tar}.partial.tar" minbase iptables,ipset,nftables,conntrack,iproute2,ca-certificates
  mv "${net_tar%.tar}.partial.tar" "$net_tar"
fi
base_tar=$work/rootfs/kind-base.tar
if ! image_exists "$BASE_IMAGE" && [[ ! -s "$base_tar" ]]; then
  base=$work/rootfs/kind-base
  rm -rf "$base"
  pkgs=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz
  pkgs+=,fuse-overlayfs,e2fsprogs,bash,ca-certificates,curl,jq,procps
  pkgs+=,containerd,runc,containernetworking-plugins
  timed "node base rootfs (systemd, containerd, runc, CNI plugins)" debstrap "$base" apt "$pkgs"
  f=$kind_src/images/base/files
  # kind's own files for its base image (entrypoint, kubelet unit, containerd config).
  install -m0755 "$f"/usr/local/bin/* "$base/usr/local/bin/"
  mkdir -p "$base/kind/bin" "$base/etc/containerd" "$base/etc/systemd/system/kubelet.service.d"
  install -m0644 "$f/kind/README.txt" "$base/kind/"
  install -m0755 "$f"/kind/bin/* "$base/kind/bin/"
  install -m0644 "$f/etc/crictl.yaml" "$base/etc/"
  install -m0644 "$f/etc/containerd/config.toml" "$base/etc/containerd/"
  install -m0644 "$f/etc/default/kubelet" "$base/etc/default/"
  install -m0644 "$f"/etc/sysctl.d/* "$base/etc/sysctl.d/"
  install -m0644 "$f"/etc/systemd/system/*.service "$f"/etc/systemd/system/*.slice "$base/etc/systemd/system/"
  install -m0644 "$f"/etc/systemd/system/kubelet.service.d/* "$base/etc/systemd/system/kubelet.service.d/"
  # Debian puts containerd in /usr/bin and runc in /usr/sbin; kind's units expect /usr/local.
  for b in containerd ctr containerd-shim-runc-v2; do ln -sf "/usr/bin/$b" "$base/usr/local/bin/$b"; done
  # The same runc wrapper inside the node: /usr/local/sbin comes first in PATH.
  install -m0755 "$here/runc-nosysres" "$base/usr/local/sbin/runc"
  # Without CAP_SYS_RESOURCE, oom_score_adj cannot go below the inherited minimum: clamp.
  sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$base/etc/containerd/config.toml"
  mkdir -p "$base/opt/cni/bin"
  for p in host-local loopback ptp portmap bridge; do cp -a "$base/usr/lib/cni/$p" "$base/opt/cni/bin/"; done
  chroot "$base" ctr oci spec \
    | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
    | jq 'del(.process.rlimits)' >"$base/etc/containerd/cri-base.json"
  # What kind's base Dockerfile does in its RUN steps.
  chroot "$base" sh -euc '
    find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/*
    rm -f /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev*
    rm -f /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
    echo "ReadKMsg=no" >> /etc/systemd/journald.conf
    ln -sf /usr/lib/systemd/systemd /sbin/init
    systemctl enable kubelet.service containerd.service undo-mount-hacks.service
    systemctl mask systemd-binfmt.service
    mkdir -p /etc/kubernetes/manifests
    apt-get clean; rm -rf /var/lib/apt/lists/* /var/log/*.log /tmp/* /var/tmp/*
    : > /etc/machine-id
  '
  tar -C "$base" --numeric-owner -cf "$base_tar.partial" . && mv "$base_tar.partial" "$base_tar"
  rm -rf "$base"
fi

py_tar=$work/rootfs/python.tar
if ! image_exists "$PYTHON_IMAGE" && [[ ! -f "$py_tar" ]]; then
  timed "Python rootfs" debstrap "${py_tar%.tar}.partial.tar" minbase python3,python3-pip,ca-certificates,passwd
  mv "${py_tar%.tar}.partial.tar" "$py_tar"
fi

next "binaries from Go modules into $bin"
have() { local b; for b in "$@"; do [[ -x "$bin/$b" ]] || return 1; done; }
k8s_bins=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd)
if ! have "${k8s_bins[@]}"; then
  # hack/k8s-bin.sh builds most of the same packages from the same module with the same flags
  # and cache: let it finish (or find its output) first, then only the node's own binaries remain.
  "$root/hack/k8s-bin.sh" >/dev/null
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*}"
    ldflags+=" -X $pkg.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION") -X $pkg.gitTreeState=clean"
  done
  say "      Kubernetes v$K8S_VERSION node binaries: 5-10 minutes cold, seconds with the build cache of hack/k8s-bin.sh"
  (cd "$root/hack/tools" && timed "go build kubeadm kubelet kubectl kube-* etcd" \
    go build -trimpath -ldflags "$ldflags" -o "$bin/" \
    k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy go.etcd.io/etcd/server/v3)
  mv -f "$bin/server" "$bin/etcd" # Go names the main package after its path: server
fi
have coredns || GOBIN=$bin timed "CoreDNS v$COREDNS_VERSION" \
  go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@v$COREDNS_VERSION"
have local-path-provisioner || GOBIN=$bin timed "local-path-provisioner v$LPP_VERSION" \
  go install -trimpath -ldflags "-s -w" "github.com/rancher/local-path-provisioner@v$LPP_VERSION"
have kube-router || GOBIN=$bin timed "kube-router v$KUBE_ROUTER_VERSION (NetworkPolicy firewall)" \
  go install -trimpath -ldflags "-s -w" "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@v$KUBE_ROUTER_VERSION"
have kind || GOBIN=$bin timed "kind v$KIND_VERSION" go install -trimpath "sigs.k8s.io/kind@v$KIND_VERSION"
if ! have pause; then
  pause_c=$(cd "$root/hack/tools" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
  timed "pause $PAUSE_VERSION (gcc -static)" \
    gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION" -o "$bin/pause" "$pause_c"
  strip "$bin/pause"
fi

next "kind base image $BASE_IMAGE"
if ! image_exists "$BASE_IMAGE"; then
  docker import -c 'ENV container=docker' \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' "$base_tar" "$BASE_IMAGE-nostop" >/dev/null
  # docker import cannot set STOPSIGNAL; a one-line local build can (no pull).
  printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$BASE_IMAGE-nostop" \
    | DOCKER_BUILDKIT=0 docker build -q -t "$BASE_IMAGE" - >/dev/null
  docker rmi "$BASE_IMAGE-nostop" >/dev/null
fi
say "      $BASE_IMAGE"

ENVPATH='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
image_from() { # BASE-TAR-or-"static" IMAGE ENTRYPOINT-JSON-or-"" FILE[:DEST]...
  local from=$1 image=$2 entry=$3; shift 3
  image_exists "$image" && return 0
  local d spec src dest
  d=$(mktemp -d "$work/rootfs/img.XXXX")
  if [[ "$from" == static ]]; then # a distroless-like root: users, CA bundle, tmp
    mkdir -p "$d"/{etc/ssl/certs,tmp,usr/local/bin,var/run,root,home/nonroot}
    chmod 1777 "$d/tmp"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$d/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$d/etc/group"
    echo 'hosts: files dns' >"$d/etc/nsswitch.conf"
    cp /etc/ssl/certs/ca-certificates.crt "$d/etc/ssl/certs/"
  fi
  for spec in "$@"; do
    src=${spec%%:*} dest=${spec#*:}
    [[ "$dest" == "$spec" ]] && dest=/usr/local/bin/$(basename "$src")
    install -D -m0755 "$src" "$d$dest"
  done
  local args=(-c "$ENVPATH")
  [[ -n "$entry" ]] && args+=(-c "ENTRYPOINT $entry")
  if [[ "$from" == static ]]; then
    tar -C "$d" --numeric-owner -c . | docker import "${args[@]}" - "$image" >/dev/null
  else # the Debian tarball with the files appended
    cp "$from" "$d.tar"
    (cd "$d" && find . -type f -print0 | tar --numeric-owner --null --no-recursion -T - -rf "$d.tar")
    docker import "${args[@]}" "$d.tar" "$image" >/dev/null
    rm -f "$d.tar"
  fi
  rm -rf "$d"
  say "      built $image"
}

next "component images (static binaries, docker import)"
image_from static "registry.k8s.io/kube-apiserver:v$K8S_VERSION" '' "$bin/kube-apiserver"
image_from static "registry.k8s.io/kube-controller-manager:v$K8S_VERSION" '' "$bin/kube-controller-manager"
image_from static "registry.k8s.io/kube-scheduler:v$K8S_VERSION" '' "$bin/kube-scheduler"
image_from static "$ETCD_IMAGE" '' "$bin/etcd"
image_from static "registry.k8s.io/coredns/coredns:v$COREDNS_VERSION" '["/coredns"]' "$bin/coredns:/coredns"
image_from static "registry.k8s.io/pause:$PAUSE_VERSION" '["/pause"]' "$bin/pause:/pause"
image_from static "$LPP_IMAGE" '["/usr/local/bin/local-path-provisioner"]' "$bin/local-path-provisioner"
image_from "$net_tar" "registry.k8s.io/kube-proxy:v$K8S_VERSION" '' "$bin/kube-proxy"
image_from "$net_tar" "$LPH_IMAGE" ''
image_from "$net_tar" "$NET_IMAGE" '["/usr/local/bin/tinynet"]' "$bin/kubectl" "$here/tinynet.sh:/usr/local/bin/tinynet"
image_from "$net_tar" "$NETPOL_IMAGE" '["/usr/local/bin/kube-router"]' "$bin/kube-router"

next "node image $NODE_IMAGE"
if ! image_exists "$NODE_IMAGE"; then
  id=trustspace-kind-build-$$
  docker run -d --name "$id" --entrypoint=sleep --security-opt seccomp=unconfined "$BASE_IMAGE" infinity >/dev/null
  trap 'docker rm -f -v "$id" >/dev/null 2>&1 || true' EXIT
  x() { docker exec -i "$id" "$@"; }
  for b in kubeadm kubelet kubectl; do
    docker cp "$bin/$b" "$id:/usr/bin/$b"
    x chown root:root "/usr/bin/$b"
    x chmod 0755 "/usr/bin/$b"
  done
  x sh -c "echo -n v$K8S_VERSION > /kind/version"
  x sed -i "s#sandbox_image = .*#sandbox_image = \"registry.k8s.io/pause:$PAUSE_VERSION\"#" /etc/containerd/config.toml
  x mkdir -p /kind/manifests
  # kind applies /kind/manifests/default-cni.yaml as the cluster's network: tinynet (routes)
  # plus kube-router's firewall (NetworkPolicy enforcement).
  sed -e "s#@NET_IMAGE@#$NET_IMAGE#" -e "s#@NETPOL_IMAGE@#$NETPOL_IMAGE#" "$here/cni.yaml" \
    | x sh -c 'cat > /kind/manifests/default-cni.yaml'
  # kind's own storage manifest (local-path-provisioner), as its node-image build writes it.
  python3 "$here/storage_manifest.py" "$kind_src/pkg/build/nodeimage/const_storage.go" \
    | x sh -c 'cat > /kind/manifests/default-storage.yaml'
  x bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &'
  for _ in $(seq 1 30); do x ctr version >/dev/null 2>&1 && break; sleep 1; done
  images=("registry.k8s.io/kube-apiserver:v$K8S_VERSION" "registry.k8s.io/kube-controller-manager:v$K8S_VERSION"
    "registry.k8s.io/kube-scheduler:v$K8S_VERSION" "registry.k8s.io/kube-proxy:v$K8S_VERSION" "$ETCD_IMAGE"
    "registry.k8s.io/coredns/coredns:v$COREDNS_VERSION" "registry.k8s.io/pause:$PAUSE_VERSION"
    "$LPP_IMAGE" "$LPH_IMAGE" "$NET_IMAGE" "$NETPOL_IMAGE")
  n=0
  for img in "${images[@]}"; do
    n=$((n + 1))
    docker save "$img" | x ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
      --all-platforms --no-unpack --digests - >/dev/null || die "preloading $img into the node image failed"
    say "      preloaded $n/${#images[@]} $img"
  done
  x pkill containerd || true
  sleep 2
  x rm -rf /tmp/containerd.log
  docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' "$id" "$NODE_IMAGE" >/dev/null
  docker rm -f -v "$id" >/dev/null
  trap - EXIT
fi
say "      $NODE_IMAGE"

next "Python base image $PYTHON_IMAGE"
if ! image_exists "$PYTHON_IMAGE"; then
  d=$(mktemp -d "$work/rootfs/py.XXXX")
  # The package index is reached the way this machine reaches it (its CA bundle and pip
  # settings); pip may install into the image's own Python (Debian marks it externally managed).
  mkdir -p "$d/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$d/etc/ssl/certs/ca-certificates.crt"
  if [[ -f /etc/pip.conf ]]; then cp /etc/pip.conf "$d/etc/pip.conf"; fi
  cp "$py_tar" "$d.tar"
  # Replace, not duplicate, what Debian's ca-certificates wrote (docker import refuses duplicates).
  (cd "$d" && find . -type f -print0 | xargs -0 tar --delete -f "$d.tar" 2>/dev/null || true)
  (cd "$d" && find . -type f -print0 | tar --numeric-owner --null --no-recursion -T - -rf "$d.tar")
  docker import -c "$ENVPATH" -c 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' -c 'CMD ["python3"]' \
    "$d.tar" "$PYTHON_IMAGE" >/dev/null
  rm -rf "$d" "$d.tar"
fi
say "      $PYTHON_IMAGE"
say "ready in $((SECONDS - started))s"

echo "KIND=$bin/kind"
echo "KIND_BIN_DIR=$bin"
echo "NODE_IMAGE=$NODE_IMAGE"
echo "PYTHON_IMAGE=$PYTHON_IMAGE"
echo "ETCD_IMAGE_TAG=$ETCD_VERSION-0"
echo "DOCKER_BUILD='$docker_build'"
