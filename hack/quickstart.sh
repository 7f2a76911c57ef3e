#!/usr/bin/env bash
# The quickstart behind `make run`: builds what is missing, then runs `trustspace quickstart`.
# Non-interactive (CI): TRUSTSPACE_QUICKSTART_EXIT=1 make run
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
[[ -x "$python" ]] || { echo "quickstart: $python not found; run 'make run' (it sets up .venv)" >&2; exit 1; }
TRUSTSPACE_K8S_BIN=${TRUSTSPACE_K8S_BIN:-$("$root/hack/k8s-bin.sh" | tail -n 1)}
export TRUSTSPACE_K8S_BIN
exec "$python" -m trustspace.cli quickstart "$@"
