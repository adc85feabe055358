#!/usr/bin/env bash
# The training loader for `make bench`: ventral's (crates/model/src/loader.rs) vs torchvision's
# ImageFolder + DataLoader, the same augmentation (RandomResizedCrop 224, flip, ToTensor,
# Normalize) on the same generated photo-like JPEGs at ImageNet's sizes, at 1 and 2 threads
# (torchvision: worker processes), one after the other on the same cores.
#   loader.sh PATH/TO/bench_loader [IMAGES]
set -euo pipefail
BIN=${1:?usage: loader.sh PATH/TO/bench_loader [IMAGES]}
N=${2:-2000}
PY=${VENTRAL_PYTHON:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
echo "loader: $("$PY" "$HERE/loader.py" generate "$DIR/train" "$N" 0)"
for t in 1 2; do
  ours=$("$BIN" "$DIR/train" --threads "$t" --batch 64 --size 224 --epochs 2 | sed -n 's/^RESULT //p')
  theirs=$("$PY" "$HERE/loader.py" torchvision "$DIR/train" --workers "$t" --batch 64 --size 224 --epochs 2 | sed -n 's/^RESULT //p')
  "$PY" - "$ours" "$theirs" "$t" <<'PY'
import sys
def kv(s):
    return dict(x.split("=", 1) for x in s.split())
o, t, n = kv(sys.argv[1]), kv(sys.argv[2]), int(sys.argv[3])
a, b = float(o["images_per_s"]), float(t["images_per_s"])
print(f"loader at {n} thread(s), batch 64, 224 px, {o['images']} JPEGs: ventral {a:.0f} images/s "
      f"({a / n:.0f} per core), torchvision ImageFolder + DataLoader ({n} worker(s)) {b:.0f} images/s "
      f"({b / n:.0f} per core), ratio {a / b:.2f}x; crops at least twice 224 px both ways: "
      f"{o['big_crops']} of {o['images']}")
PY
done
