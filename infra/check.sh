#!/usr/bin/env bash
# Offline static check of the Bicep templates with checkov.
#
# The Bicep CLI cannot be installed on our machines, so checkov (which parses Bicep
# with pycep) is the checker. It runs in its own virtual environment, .venv-infra at
# the repository root, because checkov pins many packages that must not leak into the
# app's environment. The environment is created on first use and reused afterwards.
#
# Exit codes: 0 = no finding except those deliberately skipped in the templates
# (`// checkov:skip=CKV_...: reason` inside a resource body); 1 = a failed check or a
# template that does not parse; 3 = checkov could not be installed.
set -euo pipefail

CHECKOV_VERSION="3.3.30"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${INFRA_VENV:-$repo_root/.venv-infra}"

if [ ! -x "$venv/bin/checkov" ] || [ "$("$venv/bin/python" -m pip show checkov 2>/dev/null | sed -n 's/^Version: //p')" != "$CHECKOV_VERSION" ]; then
    echo "infra/check.sh: installing checkov $CHECKOV_VERSION into $venv" >&2
    log="$(mktemp)"
    if ! { python3 -m venv "$venv" && "$venv/bin/python" -m pip install --quiet "checkov==$CHECKOV_VERSION"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "infra/check.sh: could not install checkov $CHECKOV_VERSION" >&2
        exit 3
    fi
    rm -f "$log"
fi

cd "$repo_root"
# --skip-download: no call to the Prisma Cloud API (our machines and CI are offline).
# CKV_PARSE_ERROR_FAIL=true: a template checkov cannot parse fails the run (exit 1)
#   instead of being left out silently (exit 0 with fewer checks). checkov 3.3.30 has
#   no --hard-fail-on-parsing-errors option (argparse rejects it with exit 2); this
#   environment variable is how that version spells it (checkov/common/util/consts.py).
export CKV_PARSE_ERROR_FAIL=true
exec "$venv/bin/checkov" -d infra --framework bicep --skip-download --quiet --compact
