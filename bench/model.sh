#!/usr/bin/env bash
# Model speed for `make bench`: ventral (tch) vs PyTorch eager in Python (the official CORnet-S,
# or torchvision's model for `--arch`), same model, batch and device, run one after the other.
# Forward = activation extraction (every candidate layer's output copied to the CPU); train =
# forward + backward + SGD update.
#   model.sh BENCH_MODEL_BINARY [--arch CORnet-S|resnet50|alexnet|…] [--device cpu|cuda] [--batch 16] [--iters 4] [--amp bf16] [--channels-last]
set -euo pipefail
BIN=${1:?usage: model.sh PATH/TO/bench_model [options]}
shift
PY=${VENTRAL_PYTHON:-python3}
XPY=${VENTRAL_CROSSCHECK_PYTHON:-}
if [ -n "$XPY" ]; then
  SRC=$("$XPY" -c "import importlib.util as u; print(u.find_spec('brainscore_vision').submodule_search_locations[0])")/models/ReAlnet/model.py
else
  SRC=${CORNET_SOURCE:?set VENTRAL_CROSSCHECK_PYTHON or CORNET_SOURCE to the official CORnet-S source}
fi
ARCH=CORnet-S
prev=""
for a in "$@"; do
  if [ "$prev" = "--arch" ]; then ARCH=$a; fi
  prev=$a
done
LAYERS=$("$BIN" "$@" --print-layers)
ours=$("$BIN" "$@" | sed -n 's/^RESULT //p')
theirs=$("$PY" "$(dirname "$0")/model_ref.py" "$SRC" "$@" --layers "$LAYERS" | sed -n 's/^RESULT //p')
"$PY" - "$ours" "$theirs" "$*" "$ARCH" <<'PY'
import sys
def kv(s):
    return dict(x.split("=", 1) for x in s.split())
o, t, opts = kv(sys.argv[1]), kv(sys.argv[2]), sys.argv[3] or "--device cpu"
f = float(o["forward"]) / float(t["forward"])
tr = float(o["train"]) / float(t["train"])
print(f"{sys.argv[4]} at {o['side']} px ({opts}; batch {o['batch']}, {o['threads']} threads): "
      f"forward {o['forward']} images/s (PyTorch eager {t['forward']}, ratio {f:.2f}x); "
      f"train step {o['train']} images/s (PyTorch eager {t['train']}, ratio {tr:.2f}x); "
      f"PyTorch peak GPU memory {t['gpu_mem_mib']} MiB")
PY
