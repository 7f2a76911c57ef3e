#!/usr/bin/env bash
# Check the container images' build without a Docker engine: run the pip steps of
# operator/Dockerfile and edge-agent/Dockerfile here, then each image's entrypoint as uid 10001.
#   hack/image-check.sh            both images
#   hack/image-check.sh operator   one image (operator | agent)
#
# 1. builder stage: copy the build context the Dockerfile COPYs (pyproject.toml, README.md,
#    src, operator, edge-agent; no caches), then in a fresh venv the builder's pip commands;
# 2. runtime stage: a second fresh venv, the runtime's `pip install --no-index --find-links`
#    from those wheels only (so a missing dependency wheel fails here as it would in Docker);
# 3. ENTRYPOINT + CMD + --help, `trustspace --version`, as uid:gid 10001:10001 from /, with
#    HOME=/tmp: the venv belongs to root, so a write outside /tmp fails as on a read-only root.
# pip's download cache lives in ${TRUSTSPACE_CACHE:-~/.cache/trustspace}/pip (content-addressed,
# so it never serves a stale resolution); the Dockerfiles build with no cache at all.
# tests/integration/delivery/test_images.py runs this and compares its pip commands with the
# Dockerfiles' (the lines calling builder_pip / runtime_pip below).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${TRUSTSPACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trustspace}
uid=10001

say() { printf '[image-check] %s\n' "$*" >&2; }
die() { printf '[image-check] error: %s\n' "$*" >&2; exit 1; }

case "${1:-all}" in
  all) images=(operator agent) ;;
  operator | agent) images=("$1") ;;
  *) die "unknown image '$1'; use: $0 [operator|agent]" ;;
esac
dockerfile_of() { # IMAGE -> path of its Dockerfile
  case "$1" in operator) echo "$root/operator/Dockerfile" ;; agent) echo "$root/edge-agent/Dockerfile" ;; esac
}

# The Python the base image has: major.minor from `ARG PYTHON_IMAGE=python:X.Y.Z-...`.
base=$(sed -n 's/^ARG PYTHON_IMAGE=//p' "$(dockerfile_of operator)")
want=$(sed -E 's/^python:([0-9]+\.[0-9]+)\..*/\1/' <<<"$base")
[[ "$want" =~ ^[0-9]+\.[0-9]+$ ]] || die "cannot read the Python version from ARG PYTHON_IMAGE=$base in operator/Dockerfile"
# An interpreter of that version; as root, preferably one uid 10001 can run too (a Python under
# /root, e.g. pyenv's, is unreachable for other users).
runs_as_image_user() { setpriv --reuid="$uid" --regid="$uid" --clear-groups "$1" -c pass 2>/dev/null; }
candidates=()
if [[ -n "${PYTHON:-}" ]]; then
  candidates=("$PYTHON")
else
  for name in "python$want" python3; do
    path=$(command -v "$name") && candidates+=("$path")
  done
  candidates+=("/usr/bin/python$want" "/usr/local/bin/python$want")
fi
python='' as_root_reason=''
for candidate in "${candidates[@]}"; do
  [[ -x "$candidate" ]] || continue
  [[ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" == "$want" ]] || continue
  [[ -n "$python" ]] || python=$candidate
  if ((EUID != 0)) || runs_as_image_user "$candidate"; then python=$candidate; break; fi
done
[[ -n "$python" ]] || die "no Python $want among: ${candidates[*]}; the images use $base: install Python $want or set PYTHON=/path/to/python$want"
if ((EUID != 0)); then
  as_root_reason="not root, so setpriv cannot switch to uid $uid"
elif ! runs_as_image_user "$python"; then
  as_root_reason="uid $uid cannot run $python (a directory on its path is private); set PYTHON to a world-readable Python $want"
fi

start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/trustspace-image-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work" # uid 10001 must be able to read the runtime venv
ctx="$work/src" wheels="$work/wheels"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CACHE_DIR="$cache/pip" PYTHONDONTWRITEBYTECODE=1

say "[1/3] builder stage ($base -> Python $("$python" -c 'import platform; print(platform.python_version())') here)"
mkdir -p "$ctx" "$wheels"
# The Dockerfiles' COPY lines; .dockerignore keeps caches out, so this copy does too.
tar -C "$root" --exclude=__pycache__ --exclude='*.pyc' --exclude=.mypy_cache \
  --exclude=.pytest_cache --exclude=.ruff_cache -cf - pyproject.toml README.md src operator edge-agent \
  | tar -C "$ctx" -xf -
"$python" -m venv "$work/builder"
builder_pip() { (cd "$ctx" && "$work/builder/bin/python" -m pip --quiet "$@"); }
t0=$SECONDS
builder_pip wheel --no-deps . -w "$wheels"
project_wheel=$(find "$wheels" -name 'trustspace-*.whl')
# Dependency wheels are cached, keyed by what decides them: the dependency list, the Python
# version and platform, and the builder's pip commands. TRUSTSPACE_IMAGE_CHECK_FRESH=1 re-runs
# the step regardless (a new upstream release within the same ranges is not in the key).
key=$( { sed -n '/^dependencies = \[/,/^\]/p; /^postgres = /p' "$root/pyproject.toml"; echo "$want $(uname -m)";
  grep -h 'pip wheel' "$root/operator/Dockerfile" "$0"; } | sha256sum | cut -c1-16)
dep_cache="$cache/wheels/$key"
if [[ -f "$dep_cache/.complete" && -z "${TRUSTSPACE_IMAGE_CHECK_FRESH:-}" ]]; then
  cp "$dep_cache"/*.whl "$wheels"/
  say "      dependency wheels from the cache: $dep_cache (TRUSTSPACE_IMAGE_CHECK_FRESH=1 rebuilds)"
else
  builder_pip wheel "$(ls "$wheels"/trustspace-*.whl)[postgres]" -w "$wheels"
  rm -rf "$dep_cache" && mkdir -p "$dep_cache"
  find "$wheels" -name '*.whl' ! -path "$project_wheel" -exec cp {} "$dep_cache"/ \;
  touch "$dep_cache/.complete"
fi
say "      $(find "$wheels" -name '*.whl' | wc -l) wheels in $((SECONDS - t0))s"

say "[2/3] runtime stage: install from the wheels only (--no-index)"
"$python" -m venv "$work/runtime"
runtime_pip() { "$work/runtime/bin/python" -m pip --quiet "$@"; }
t0=$SECONDS
runtime_pip install --no-index --find-links "$wheels" 'trustspace[postgres]'
"$work/runtime/bin/python" -m pip check >&2 || die "the installed wheels are inconsistent (pip check above); fix the dependency pins in pyproject.toml"
if [[ -n "$(find "$work/runtime" -path '*/site-packages/*' \( -name '*.c' -o -name '*.o' \) -print -quit)" ]]; then
  die "the runtime install left C sources or objects: a dependency was built in the runtime stage"
fi
say "      installed in $((SECONDS - t0))s"

as_image_user() { # CMD... : run as the images' USER, from /, with the image's environment
  local env=(env -i "PATH=$work/runtime/bin:/usr/local/bin:/usr/bin:/bin" HOME=/tmp
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LANG=C.UTF-8)
  if [[ -z "$as_root_reason" ]]; then
    (cd / && setpriv --reuid="$uid" --regid="$uid" --clear-groups "${env[@]}" "$@")
  else
    (cd / && "${env[@]}" "$@")
  fi
}

version=$(sed -nE 's/^version = "([^"]+)"/\1/p' "$root/pyproject.toml")
if [[ -z "$as_root_reason" ]]; then
  say "[3/3] entrypoints as uid:gid $uid:$uid"
else
  say "[3/3] entrypoints as $(id -un), not uid $uid: $as_root_reason"
fi
for image in "${images[@]}"; do
  dockerfile=$(dockerfile_of "$image")
  # ENTRYPOINT and CMD are JSON arrays; the check runs them with --help appended.
  mapfile -t argv < <("$python" - "$dockerfile" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
def last(keyword):
    found = [l[len(keyword):].strip() for l in lines if l.startswith(keyword + " ")]
    if not found:
        sys.exit(f"{sys.argv[1]}: no {keyword} instruction")
    return json.loads(found[-1])
for arg in last("ENTRYPOINT") + last("CMD"):
    print(arg)
PY
  )
  ((${#argv[@]} > 1)) || die "$dockerfile: could not read ENTRYPOINT and CMD as JSON arrays"
  exe="$work/runtime/bin/${argv[0]}"
  [[ -x "$exe" ]] || die "$image: the entrypoint '${argv[0]}' is not installed by the wheel (check [project.scripts] in pyproject.toml)"
  got=$(as_image_user "$exe" --version) || die "$image: '${argv[0]} --version' failed as uid $uid"
  [[ "$got" == *"$version"* ]] || die "$image: '${argv[0]} --version' printed '$got', expected version $version"
  say "      $image: ${argv[0]} --version -> $got"
  help=$(as_image_user "$exe" "${argv[@]:1}" --help) \
    || die "$image: '${argv[*]} --help' failed as uid $uid (output above); the image's CMD would fail the same way"
  [[ "$help" == Usage:* ]] || die "$image: '${argv[*]} --help' printed no usage"
  say "      $image: ${argv[*]} --help -> ok"
done
say "ok: ${images[*]} in $((SECONDS - start))s"
