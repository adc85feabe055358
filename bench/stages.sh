#!/usr/bin/env bash
# Per-stage figures of pipelines/paper.toml for `make bench`: every stage run in a process of
# its own (`--executor process`, one stage at a time so that the figures are the stage's),
# in a fresh store, then each stage's wall time, peak resident memory (the process and its
# children, from the run record) and output size (from `ventral show --json`). Prints a
# table and the totals; never fails on time.
#   usage: stages.sh PATH/TO/ventral [PROFILE]
# WORLD='{ seed = 0, imagenet = [10, 240, 40] }' replaces the embedded world's `world` table
# (bench/scaling.sh); STAGES_TSV=FILE also writes the rows as tab-separated values.
# DATA_REAL=DIR is the real profile's data root (default: the workspace's data/real) and
# MANIFESTS=DIR holds source manifests replacing manifests/'s (bench/rehearsal.sh);
# KEEP_GOING=1 prints the table even when a stage fails (its row says so).
set -euo pipefail
VENTRAL=$(realpath "${1:?usage: stages.sh PATH/TO/ventral [PROFILE]}")
PROFILE=${2:-embedded}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ventral-stages.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# The workspace's inputs, without its store or lockfiles.
mkdir -p "$WORK/ws"
(cd "$ROOT" && tar cf - pipelines manifests data/published data/brainscore lockfiles/requirements.txt Cargo.lock) | (cd "$WORK/ws" && tar xf -)
rm -f "$WORK"/ws/lockfiles/*.lock
if [ -n "${MANIFESTS:-}" ]; then cp "$MANIFESTS"/*.toml "$WORK/ws/manifests/"; fi
if [ -n "${WORLD:-}" ]; then
  python3 - "$WORK/ws/pipelines/paper.toml" "$WORLD" <<'PY'
import sys
path, world = sys.argv[1], sys.argv[2]
text = open(path).read()
old = "world = { seed = 0 }"
assert text.count(old) == 1, "the world stage's `world` line moved"
open(path, "w").write(text.replace(old, "world = " + world))
PY
fi
# The real profile reads the workspace's data/real/ (what `ventral fetch` laid out).
if [ -n "${DATA_REAL:-}" ]; then
  ln -s "$(realpath "$DATA_REAL")" "$WORK/ws/data/real"
elif [ -e "$ROOT/data/real" ]; then
  ln -s "$ROOT/data/real" "$WORK/ws/data/real"
fi
cd "$WORK/ws"
t0=$EPOCHREALTIME
if [ -n "${KEEP_GOING:-}" ]; then
  "$VENTRAL" run -p pipelines/paper.toml --profile "$PROFILE" --executor process -j 1 >/dev/null ||
    echo "bench/stages.sh: ventral run exited $? (its failures: in the table)"
else
  "$VENTRAL" run -p pipelines/paper.toml --profile "$PROFILE" --executor process -j 1 >/dev/null
fi
t1=$EPOCHREALTIME
stages=$("$VENTRAL" dag -p pipelines/paper.toml --profile "$PROFILE" --json |
  python3 -c 'import json, sys; print("\n".join(n["stage"] for n in json.load(sys.stdin)))')
echo "bench/stages.sh: pipelines/paper.toml ($PROFILE), each stage in its own process, one at a time"
printf '  %-40s %9s %12s %12s\n' stage seconds "peak MiB" "output MB"
for s in $stages; do
  "$VENTRAL" show -p pipelines/paper.toml --profile "$PROFILE" "$s" --json
done | python3 -c '
import json, sys
dec = json.JSONDecoder()
text = sys.stdin.read()
i, rows = 0, []
while i < len(text):
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    d, i = dec.raw_decode(text, i)
    run = d.get("run") or {}
    size = sum(f["size"] for f in d.get("files") or [])
    rows.append((d["stage"], run.get("duration_s", 0.0), (run.get("peak_rss_bytes") or 0) / 2**20, size / 1e6, "ran" if run else "not run"))
for name, sec, peak, mb, state in sorted(rows, key=lambda r: -r[1]):
    print(f"  {name:<40} {sec:9.2f} {peak:12.1f} {mb:12.2f}{'' if state == 'ran' else '  (' + state + ')'}")
import os
if os.environ.get("STAGES_TSV"):
    with open(os.environ["STAGES_TSV"], "w") as f:
        for name, sec, peak, mb, state in rows:
            f.write(f"{name}\t{sec}\t{peak}\t{mb}\t{state}\n")
print(f"  {len(rows)} stages: {sum(r[1] for r in rows):.1f} s in all, the largest peak {max(r[2] for r in rows):.1f} MiB, {sum(r[3] for r in rows):.1f} MB of outputs")
'
awk -v a="$t0" -v b="$t1" 'BEGIN{printf "  the whole run: %.1f s\n", b-a}'
