#!/usr/bin/env bash
# How each stage of pipelines/paper.toml grows with the data (`make bench-scaling`): the
# embedded profile run twice by bench/stages.sh — the embedded world, then the same world
# with K times the images of every set (HvM, objectome, its fitting set, ImageNet's train and
# validation splits, the COCO-like set, CIFAR) — and per stage the wall time, peak memory and
# output at both sizes with their growth exponent log(after / before) / log(K): 1 is linear,
# 0 flat. A stage whose time grows faster than linearly (exponent > 1.2) or whose peak memory
# grows with the data (exponent > 0.5, and more than 64 MiB at K×) is marked; small stages
# are dominated by start-up and show exponents near 0. Never fails on a figure.
#   usage: scaling.sh PATH/TO/ventral [K]
set -euo pipefail
VENTRAL=$(realpath "${1:?usage: scaling.sh PATH/TO/ventral [K]}")
K=${2:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d "${TMPDIR:-/tmp}/ventral-scaling.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
# The embedded world's sizes (crates/synth's WorldConfig::embedded), K times the images.
WORLD=$(python3 - "$K" <<'PY'
import sys
k = int(sys.argv[1])
print("{ seed = 0, hvm_per_object = [%d, %d, %d], objectome_per_object = %d, "
      "objectome_fitting_per_object = %d, imagenet = [10, %d, %d], coco = [10, %d], "
      "cifar = [100, %d, %d] }" % (2 * k, 4 * k, 4 * k, 10 * k, 20 * k, 120 * k, 20 * k,
                                   16 * k, 20 * k, 5 * k))
PY
)
STAGES_TSV="$OUT/1.tsv" bash "$HERE/stages.sh" "$VENTRAL" embedded > "$OUT/1.txt"
STAGES_TSV="$OUT/k.tsv" WORLD="$WORLD" bash "$HERE/stages.sh" "$VENTRAL" embedded > "$OUT/k.txt"
echo "bench/scaling.sh: pipelines/paper.toml (embedded), each stage in its own process, at the embedded world and at ${K}x its images"
echo "  the ${K}x world: $WORLD"
python3 - "$OUT/1.tsv" "$OUT/k.tsv" "$K" <<'PY'
import math, sys
def rows(p):
    out = {}
    for line in open(p):
        name, sec, peak, mb = line.rstrip("\n").split("\t")[:4]
        out[name] = (float(sec), float(peak), float(mb))
    return out
a, b, k = rows(sys.argv[1]), rows(sys.argv[2]), float(sys.argv[3])
def exp(x, y):
    return math.log(y / x) / math.log(k) if x > 0 and y > 0 else float("nan")
print(f"  {'stage':<36} {'s @1x':>8} {'s @Kx':>8} {'exp':>5}  {'MiB @1x':>8} {'MiB @Kx':>8} {'exp':>5}  {'MB @Kx':>8}")
marked = []
for name in sorted(a, key=lambda n: -b.get(n, a[n])[0]):
    if name not in b:
        continue
    (s1, m1, _), (s2, m2, o2) = a[name], b[name]
    et, em = exp(s1, s2), exp(m1, m2)
    flag = ""
    if et > 1.2 and s2 > 1.0:
        flag += " time"
    if em > 0.5 and m2 > 64:
        flag += " memory"
    if flag:
        marked.append(name + ":" + flag)
    print(f"  {name:<36} {s1:8.2f} {s2:8.2f} {et:5.2f}  {m1:8.1f} {m2:8.1f} {em:5.2f}  {o2:8.2f}{'  <-' + flag if flag else ''}")
t1 = sum(r[0] for r in a.values()); t2 = sum(r[0] for r in b.values())
print(f"  all {len(a)} stages: {t1:.1f} s at 1x, {t2:.1f} s at {k:g}x (exponent {exp(t1, t2):.2f}); "
      f"largest peak {max(r[1] for r in a.values()):.1f} MiB at 1x, {max(r[1] for r in b.values()):.1f} MiB at {k:g}x")
print("  marked: " + ("; ".join(marked) if marked else "none"))
PY
