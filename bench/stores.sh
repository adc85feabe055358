#!/usr/bin/env bash
# Store and SQL figures for `make bench` (issue 3): ventral vs DuckDB vs xarray, one run.
set -euo pipefail
BIN=${1:?usage: stores.sh PATH/TO/bench_sql}
PY=${VENTRAL_PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ventral-bench-sql.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
out=$("$BIN" "$WORK")
echo "$out" | grep -v '^RESULT '
"$PY" "$(dirname "$0")/stores.py" "$WORK" "$(echo "$out" | sed -n 's/^RESULT //p')"
