#!/usr/bin/env bash
# CORnet-S on CUDA for `make bench-gpu` (issue 6), given prebuilt binaries: ventral (tch) vs
# PyTorch eager in Python on the same model, batch and GPU, fp32 and bf16 + channels-last,
# with each process's peak GPU memory (nvidia-smi, sampled every 20 ms: the CUDA context
# included, the same way for both); then gpu_check (CPU-vs-CUDA parity, training and
# extraction through the real code paths). One round took 113 s on an H100; two (the default) about 4 minutes.
#   gpu.sh BENCH_MODEL GPU_CHECK [--batch 64] [--iters 50]
# The official CORnet-S source: $CORNET_SOURCE, or found through $VENTRAL_CROSSCHECK_PYTHON.
set -euo pipefail
BENCH=${1:?usage: gpu.sh PATH/TO/bench_model PATH/TO/gpu_check [--batch N] [--iters N]}
CHECK=${2:?usage: gpu.sh PATH/TO/bench_model PATH/TO/gpu_check [--batch N] [--iters N]}
shift 2
PY=${VENTRAL_PYTHON:-python3}
if [ -z "${CORNET_SOURCE:-}" ]; then
  XPY=${VENTRAL_CROSSCHECK_PYTHON:?set CORNET_SOURCE or VENTRAL_CROSSCHECK_PYTHON}
  CORNET_SOURCE=$("$XPY" -c "import importlib.util as u; print(u.find_spec('brainscore_vision').submodule_search_locations[0])")/models/ReAlnet/model.py
fi
opts=(--device cuda --batch 64 --iters 50 --warmup 3 "$@")
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

# Run a command while sampling the GPU's used memory; print its RESULT line with
# gpu_peak_mib (the peak over the run minus the memory used before it started).
measure() {
  local log base
  log=$(mktemp)
  base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 20 >"$log" &
  local smi=$!
  local out
  out=$("$@" | sed -n 's/^RESULT //p')
  kill "$smi" 2>/dev/null || true
  wait "$smi" 2>/dev/null || true
  local peak
  peak=$(sort -n "$log" | tail -1)
  rm -f "$log"
  echo "$out gpu_peak_mib=$(( ${peak:-0} - base ))"
}

# Two rounds, ours and PyTorch's runs interleaved, so that clocks and caches treat both
# alike; the summary takes each side's best round. Both sides with cuDNN's defaults (as
# Brain-Score runs) and with cudnn.benchmark (GPU_BENCH_ROUNDS sets the rounds).
results=()
ref=("$PY" "$(dirname "$0")/model_ref.py" "$CORNET_SOURCE")
for round in $(seq "${GPU_BENCH_ROUNDS:-2}"); do
  for mode in "" "--amp bf16 --channels-last"; do
    for tune in "" "--cudnn-benchmark"; do
      # shellcheck disable=SC2086
      results+=("$(measure "$BENCH" "${opts[@]}" $mode $tune)")
      # shellcheck disable=SC2086
      results+=("$(measure "${ref[@]}" "${opts[@]}" $mode $tune)")
    done
  done
done
"$PY" - "${results[@]}" <<'PY'
import sys
def kv(s):
    return dict(x.split("=", 1) for x in s.split())
runs = [kv(s) for s in sys.argv[1:]]
per_round = 8
def best(i):
    rs = runs[i::per_round]
    return {"forward": max(float(r["forward"]) for r in rs),
            "train": max(float(r["train"]) for r in rs),
            "gpu_peak_mib": max(int(r["gpu_peak_mib"]) for r in rs),
            "gpu_mem_mib": max(float(r.get("gpu_mem_mib", 0)) for r in rs),
            "batch": rs[0].get("batch", "?"),
            "rounds": " ".join(f"{float(r['forward']):.0f}/{float(r['train']):.0f}" for r in rs)}
b = [best(i) for i in range(per_round)]
print(f"CORnet-S at 224 px on CUDA, batch {b[0]['batch']}, every area's output copied to the host in forward "
      f"(best of {len(runs) // per_round} interleaved rounds; GPU memory: peak used, nvidia-smi, CUDA context included)")
for m, mode in enumerate(("fp32", "bf16 autocast + channels-last")):
    for t, tune in enumerate(("cuDNN defaults", "cudnn.benchmark")):
        o, r = b[4 * m + 2 * t], b[4 * m + 2 * t + 1]
        print(f"{mode}, {tune}:")
        print(f"  ours           forward {o['forward']:7.1f} images/s   train step {o['train']:7.1f} images/s   "
              f"GPU memory {o['gpu_peak_mib']:6d} MiB   (rounds {o['rounds']})")
        print(f"  PyTorch eager  forward {r['forward']:7.1f} images/s   train step {r['train']:7.1f} images/s   "
              f"GPU memory {r['gpu_peak_mib']:6d} MiB, allocator peak {r['gpu_mem_mib']:.0f}   (rounds {r['rounds']})")
        print(f"  ratio          forward {o['forward'] / r['forward']:.2f}x   train step {o['train'] / r['train']:.2f}x")
print(f"ours bf16 + channels-last vs PyTorch eager fp32 (cuDNN defaults): forward {b[4]['forward'] / b[1]['forward']:.2f}x, "
      f"train step {b[4]['train'] / b[1]['train']:.2f}x")
PY
"$CHECK" --device cuda
