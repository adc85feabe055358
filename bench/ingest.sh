#!/usr/bin/env bash
# Ingest figures for `make bench` (issue 4): a MajajHong2015.public-shaped assembly
# (256 neuroids x 148,480 presentations x 1 bin, float32, its coordinates), written by
# xarray + netCDF4; `ventral ingest brainio` into our store vs xarray + netCDF4 reading the
# same file into memory, and against that load followed by writing the loaded bytes durably
# (fsync), as an ingest leaves them. Median of 3 runs each, page cache warm; peak RSS of each
# process. The Python figures are timed inside the process (imports and start-up excluded);
# ours is the whole `ventral` process.
set -euo pipefail
BIN=${1:?usage: ingest.sh PATH/TO/ventral}
PY=${VENTRAL_PYTHON:-python3}
N=${VENTRAL_BENCH_PRESENTATIONS:-148480}
FIX="$(dirname "$0")/../crates/cli/tests/ingest_fixtures.py"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ventral-bench-ingest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
"$PY" "$FIX" bench "$WORK/majajhong.nc" "$N"
size=$(stat -c %s "$WORK/majajhong.nc")
ours=()
ours_rss=()
for i in 1 2 3; do
  rm -rf "$WORK/store"
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$BIN" ingest brainio "$WORK/majajhong.nc" -o "$WORK/store" >/dev/null
  read -r t rss <"$WORK/time"
  ours+=("$t"); ours_rss+=("$rss")
done
theirs=()
theirs_rss=()
for i in 1 2 3; do
  line=$(/usr/bin/time -f "%e %M" -o "$WORK/time" "$PY" "$FIX" load "$WORK/majajhong.nc")
  read -r _ rss <"$WORK/time"
  t=$(echo "$line" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  theirs+=("$t"); theirs_rss+=("$rss")
done
written=()
for i in 1 2 3; do
  rm -f "$WORK/copy.bin"
  line=$("$PY" "$FIX" load_write "$WORK/majajhong.nc" "$WORK/copy.bin")
  written+=("$(echo "$line" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')")
done
"$PY" - "$size" "${ours[*]}" "${ours_rss[*]}" "${theirs[*]}" "${theirs_rss[*]}" "${written[*]}" <<'PY'
import statistics as st, sys
size = int(sys.argv[1])
ours = [float(x) for x in sys.argv[2].split()]
ours_rss = max(int(x) for x in sys.argv[3].split()) / 1024
theirs = [float(x) for x in sys.argv[4].split()]
theirs_rss = max(int(x) for x in sys.argv[5].split()) / 1024
written = [float(x) for x in sys.argv[6].split()]
o, t, w = st.median(ours), st.median(theirs), st.median(written)
print(f"ingest 256 x 148,480 float32 netCDF ({size / 1e6:.0f} MB): "
      f"ventral ingest {o:.2f} s (whole process: read, write the Zarr store, digest; "
      f"peak RSS {ours_rss:.0f} MiB); xarray + netCDF4 load into memory {t:.2f} s "
      f"(peak RSS of the Python process {theirs_rss:.0f} MiB): ratio {t / o:.2f}x; "
      f"xarray load + writing the loaded bytes durably (fsync) {w:.2f} s: ratio {w / o:.2f}x (goal >= 1x)")
PY
