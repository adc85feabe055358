#!/usr/bin/env bash
# Synthetic-world figures for `make bench` (issue 5): generating the embedded world.
set -euo pipefail
BIN=${1:?usage: synth.sh PATH/TO/ventral}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ventral-bench-synth.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
"$BIN" synth -o "$WORK/world" --json 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
n = sum(c for _, c in s["images"])
t = s["seconds"]
print(f"synthetic world (embedded): {n} images and {len(s[\"assemblies\"])} assemblies, "
      f"{s[\"bytes\"] / 1e6:.0f} MB in {t:.1f} s = {n / t:.0f} images/s, {s[\"bytes\"] / 1e6 / t:.1f} MB/s "
      f"(goal: the embedded world in <= 60 s)")
'
