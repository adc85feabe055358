#!/usr/bin/env bash
# Engine figures for `make bench` (issue 2). Prints figures and ratios; never fails on time.
#   1. no-op `ventral status` and no-op `ventral run` on a generated 200-stage pipeline
#      (goal ≤ 100 ms each);
#   2. start-up: `ventral --version` (goal ≤ 10 ms), `ventral sql "SELECT 1"` (goal ≤ 100 ms),
#      beside `ventral-torch --version`, a process that only loads libtorch;
#   3. first hashing of a 2 GB input (goal ≥ 1 GB/s), beside sha1sum and md5sum on the same
#      file, and proof that the second run does not re-read it.
set -euo pipefail
VENTRAL=$(realpath "${1:?usage: engine.sh PATH/TO/ventral}")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ventral-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
mkdir -p pipelines data

now() { echo "$EPOCHREALTIME"; }   # bash's own clock: no process started to read it
ms() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", (b-a)*1000}'; }
median() { sort -n | awk '{v[NR]=$1} END{print (NR%2)? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# --- 1. a 200-stage pipeline: 20 layers of 10, each stage reading two of the layer above.
{
  for l in $(seq 0 19); do
    for s in $(seq 0 9); do
      echo "[stages.l${l}s${s}]"
      echo 'kind = "cmd"'
      if [ "$l" -eq 0 ]; then
        echo "cmd = \"cat \${inputs.seed} > \${out}/o.txt; echo $s >> \${out}/o.txt\""
        echo "inputs = { seed = \"data/seed$s.txt\" }"
      else
        a=$(( (s + 1) % 10 )); p=$((l - 1))
        echo "cmd = \"cat \${inputs.a} \${inputs.b} | sha1sum > \${out}/o.txt\""
        echo "inputs = { a = \"stage:l${p}s${s}/o.txt\", b = \"stage:l${p}s${a}/o.txt\" }"
      fi
      echo "params = { layer = $l, slot = $s }"
      echo
    done
  done
} > pipelines/p200.toml
for s in $(seq 0 9); do echo "seed $s" > "data/seed$s.txt"; done

t0=$(now); "$VENTRAL" -p pipelines/p200.toml run -j 2 >/dev/null; t1=$(now)
echo "200-stage pipeline: first run (200 shell commands, 2 jobs): $(ms "$t0" "$t1") ms"
for cmd in status run; do
  times=()
  for i in $(seq 1 11); do
    a=$(now); "$VENTRAL" -p pipelines/p200.toml $cmd >/dev/null; b=$(now)
    times+=("$(ms "$a" "$b")")
  done
  med=$(printf '%s\n' "${times[@]}" | median)
  min=$(printf '%s\n' "${times[@]}" | sort -n | head -1)
  echo "200-stage pipeline: no-op ventral $cmd: median $med ms, min $min ms over 11 runs (goal <= $([ "$cmd" = status ] && echo 50 || echo 100) ms)"
done

# --- 2. start-up, whole processes, median of 11.
WORKER="$(dirname "$VENTRAL")/ventral-torch"
MED=0
startup() {  # label, goal (may be empty), command...
  local label=$1 goal=$2; shift 2
  local times=()
  for i in $(seq 1 11); do
    a=$(now); "$@" >/dev/null 2>&1; b=$(now)
    times+=("$(ms "$a" "$b")")
  done
  MED=$(printf '%s\n' "${times[@]}" | median)
  echo "start-up: $label: median $MED ms over 11 runs${goal:+ (goal <= $goal ms)}"
}
startup "ventral --version" 10 "$VENTRAL" --version; ver=$MED
startup 'ventral sql "SELECT 1"' 100 "$VENTRAL" -p pipelines/p200.toml sql "SELECT 1"; sql=$MED
startup "ventral-torch --version (a process that only loads libtorch)" "" "$WORKER" --version; torch=$MED
echo "start-up: loading libtorch alone takes $(awk -v t="$torch" -v v="$ver" 'BEGIN{printf "%.0f", t/v}')x as long as ventral --version and $(awk -v t="$torch" -v v="$sql" 'BEGIN{printf "%.1f", t/v}')x as long as ventral sql \"SELECT 1\""

# --- 3. a 2 GB input.
dd if=/dev/urandom of=data/big.bin bs=1M count=2048 status=none
sleep 0.1
cat > pipelines/big.toml <<'TOML'
[stages.big]
kind = "cmd"
cmd = "wc -c < ${inputs.big} > ${out}/size.txt"
inputs = { big = "data/big.bin" }
TOML
cat data/big.bin > /dev/null   # warm the page cache: we measure hashing, not the disk
a=$(now); RUST_LOG=ventral_dag=info "$VENTRAL" -p pipelines/big.toml status > /dev/null 2> first.log; b=$(now)
a2=$(now); RUST_LOG=ventral_dag=info "$VENTRAL" -p pipelines/big.toml status > /dev/null 2> second.log; b2=$(now)
first_ms=$(ms "$a" "$b"); second_ms=$(ms "$a2" "$b2")
gbps=$(awk -v t="$first_ms" 'BEGIN{printf "%.2f", 2.147483648/(t/1000)}')
echo "2 GB input: first status (hashes it): $first_ms ms = $gbps GB/s end to end (goal >= 1 GB/s)"
echo "2 GB input: second status: $second_ms ms; $(grep -o '[0-9]* bytes hashed' second.log || echo '? bytes hashed') (must be 0: not re-read)"
for tool in sha1sum md5sum; do
  a=$(now); $tool data/big.bin > /dev/null; b=$(now)
  t=$(ms "$a" "$b")
  echo "2 GB input: $tool (BrainIO uses SHA1): $t ms; ventral is $(awk -v x="$t" -v y="$first_ms" 'BEGIN{printf "%.1f", x/y}')x faster"
done
