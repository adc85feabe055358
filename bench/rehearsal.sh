#!/usr/bin/env bash
# The full-size rehearsal of the real profile (`make bench-full`): what a user needs to know
# before running pipelines/paper.toml on the real data — each stage's time, peak memory and
# disk at the real datasets' sizes.
#
#   1. `ventral synth --size full`: the world at the paper's sizes (HvM's 5,760 images, the
#      MajajHong2015 recordings at 50 repetitions × 256 sites, the objectome's 240 test images
#      with ≈ 927k human trials and its 2,160 fitting images, Kar2019's 1,320 images at 40
#      repetitions, …) in the publishers' formats — except ImageNet and CIFAR-100, written as
#      a stated subset (FRACTION of ImageNet's validation split and of CIFAR-100, one training
#      image per ImageNet class, which the real profile never trains on).
#   2. Checkpoints written by torch as their publishers ship them (the official CORnet-S
#      format; torchvision's plain state dicts for AlexNet, ResNet-18, MobileNet-v2) from
#      weights initialised at full size (the scores are meaningless; the sizes are real).
#   3. Source manifests naming those files with their SHA1/MD5, served over HTTP on
#      127.0.0.1 and laid out by `ventral fetch --all`, as a user's would be.
#   4. `--profile real` through every stage, each in its own process (bench/stages.sh).
#   5. The stages that read ImageNet or CIFAR extrapolated linearly to the full sets.
#
# Needs ≈ 35 GB of disk under REHEARSAL_DIR (default: TMPDIR or /tmp) and, on 2 CPU cores,
# ≈ 25 min for the world and ≈ 5 h for the stages (CORnet-S at ≈ 2.2 images/s: its passes dominate).
# Prints the table (also as Markdown, for README.md); never fails on a figure. SIZE=embedded
# and WORLD='{ … }' try the script itself on a small world. KEEP_DATA=DIR keeps the fetched
# data root and manifests in DIR (DIR/real, DIR/manifests); REUSE_DATA=DIR skips steps 1–3
# and runs the stages on what an earlier KEEP_DATA left there.
#   usage: rehearsal.sh PATH/TO/ventral PATH/TO/venv-python
set -euo pipefail
VENTRAL=$(realpath "${1:?usage: rehearsal.sh PATH/TO/ventral PATH/TO/python}")
PY=${2:?usage: rehearsal.sh PATH/TO/ventral PATH/TO/python}
FRACTION=${FRACTION:-10}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WORK=$(mktemp -d "${REHEARSAL_DIR:-${TMPDIR:-/tmp}}/ventral-rehearsal.XXXXXX")
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
VAL=$((50 / FRACTION))
CTRAIN=$((500 / FRACTION))
CTEST=$((100 / FRACTION))
WORLD=${WORLD:-"{ imagenet = [1000, 1, $VAL], cifar = [100, $CTRAIN, $CTEST] }"}
SIZE=${SIZE:-full}
echo "bench/rehearsal.sh: the real profile at $SIZE size in $WORK"
echo "  world: --size $SIZE --world '$WORLD'"
if [ -n "${REUSE_DATA:-}" ]; then
  DATA_DIR=$(realpath "$REUSE_DATA")
  echo "  steps 1-3 skipped: the data root and manifests of $DATA_DIR"
else

# 1. The world.
/usr/bin/time -f "%e %M" -o "$WORK/synth.time" \
  "$VENTRAL" synth --size "$SIZE" --world "$WORLD" -o "$WORK/served" --json > "$WORK/synth.json" 2>/dev/null
read -r SYNTH_S SYNTH_KB < "$WORK/synth.time"
echo "  synth: $SYNTH_S s, peak $((SYNTH_KB / 1024)) MiB, $(du -sm "$WORK/served" | cut -f1) MiB written"

# 2. Checkpoints as their publishers ship them.
for arch in CORnet-S alexnet resnet18 mobilenet_v2; do
  "$VENTRAL" model init -o "$WORK/w-$arch" --arch "$arch" --seed 3 > /dev/null
done
mkdir -p "$WORK/served/models"
# CORnet-S in the official format, as the tests write it; torchvision's plain state dicts.
"$PY" "$ROOT/crates/cli/tests/ingest_fixtures.py" checkpoint \
  "$WORK/w-CORnet-S/weights.safetensors" "$WORK/served/cornet_s_epoch43.pth.tar"
"$PY" - "$WORK" <<'PY'
import sys, torch
from safetensors.torch import load_file
w = sys.argv[1]
for net in ["alexnet", "resnet18", "mobilenet_v2"]:
    torch.save(load_file(f"{w}/w-{net}/weights.safetensors"), f"{w}/served/models/{net}.pth")
PY
rm -rf "$WORK"/w-*
(cd "$WORK/served" && tar czf cifar-100-binary.tar.gz cifar-100-binary && rm -rf cifar-100-binary)
# ILSVRC2012 is placed by hand (it cannot be downloaded without an account).
mkdir -p "$WORK/real" "$WORK/fetch/manifests"
mv "$WORK/served/ILSVRC2012" "$WORK/real/ILSVRC2012"

# 3. Manifests of what the server holds, and `ventral fetch --all`.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$WORK/served" > /dev/null 2>&1 &
SERVER=$!
python3 - "$WORK/served" "http://127.0.0.1:$PORT" "$WORK/fetch/manifests" <<'PY'
import csv, hashlib, os, sys
served, url, out = sys.argv[1:]
def digest(kind, path):
    h = hashlib.new(kind)
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
def head(name, to):
    return (f'[manifest]\nformat = "ventral-sources v1"\nname = "{name}"\n'
            f'description = "bench/rehearsal.sh"\nto = "{to}"\nsource = "the rehearsal\'s server"\n')
files = {}
for r in csv.DictReader(open(f"{served}/brainio/lookup.csv")):
    files.setdefault(r["location"], []).append(r)
m = head("brainio", "brainio")
for file, rows in sorted(files.items()):
    r = rows[0]
    ids = ", ".join(f'"{x["identifier"]}"' for x in rows)
    m += (f'\n[[file]]\npath = "{file}"\nurl = "{url}/brainio/{file}"\nsha1 = "{r["sha1"]}"\n'
          f'[file.brainio]\nidentifiers = [{ids}]\npublished_identifier = "{r["identifier"]}"\n'
          f'lookup_type = "{r["lookup_type"]}"\nclass = "{r["class"]}"\n')
    if r["stimulus_set_identifier"]:
        m += f'stimulus_set_identifier = "{r["stimulus_set_identifier"]}"\n'
open(f"{out}/brainio.toml", "w").write(m)
for name, to, names in [("cornet", ".", ["cornet_s_epoch43.pth.tar"]),
                        ("torchvision", "models", ["alexnet.pth", "resnet18.pth", "mobilenet_v2.pth"])]:
    m = head(name, to)
    for f in names:
        at = f if to == "." else f"{to}/{f}"
        m += f'\n[[file]]\npath = "{f}"\nurl = "{url}/{at}"\nsha1 = "{digest("sha1", f"{served}/{at}")}"\n'
    open(f"{out}/{name}.toml", "w").write(m)
m = head("cifar100", ".")
m += (f'\n[[file]]\npath = "cifar-100-binary.tar.gz"\nurl = "{url}/cifar-100-binary.tar.gz"\n'
      f'md5 = "{digest("md5", f"{served}/cifar-100-binary.tar.gz")}"\nunpack = "tar.gz"\n')
open(f"{out}/cifar100.toml", "w").write(m)
PY
BYTES=$(du -sb "$WORK/served" | cut -f1)
t0=$EPOCHREALTIME
(cd "$WORK/fetch" && "$VENTRAL" fetch --all --to "$WORK/real" --json > "$WORK/fetch.json")
t1=$EPOCHREALTIME
kill "$SERVER" 2>/dev/null || true
SERVER=""
rm -rf "$WORK/served"
awk -v a="$t0" -v b="$t1" -v n="$BYTES" 'BEGIN{printf "  fetch --all: %.0f MB in %.1f s from 127.0.0.1 (Python http.server)\n", n/1e6, b-a}'
cp "$ROOT/manifests/ilsvrc2012.toml" "$WORK/fetch/manifests/"
DATA_DIR=$WORK
if [ -n "${KEEP_DATA:-}" ]; then
  mkdir -p "$KEEP_DATA"
  cp -al "$WORK/real" "$KEEP_DATA/real"
  cp -a "$WORK/fetch/manifests" "$KEEP_DATA/manifests"
fi
mv "$WORK/fetch/manifests" "$WORK/manifests"
fi

# 4. Every stage of the real profile, each in its own process.
STAGES_TSV="$WORK/stages.tsv" DATA_REAL="$DATA_DIR/real" MANIFESTS="$DATA_DIR/manifests" KEEP_GOING=1 \
  bash "$HERE/stages.sh" "$VENTRAL" real | tee "$WORK/stages.txt"

# 5. The table, with the ImageNet and CIFAR stages extrapolated to the full sets.
python3 - "$WORK/stages.tsv" "$FRACTION" "$VAL" <<'PY'
import sys
tsv, k, val = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = [l.rstrip("\n").split("\t") for l in open(tsv)]
# The ImageNet validation split and CIFAR-100 were written at 1/k of their size; the index
# also lists one training image per class (1,281,167 in the real split).
imagenet_files = 1000 * 1 + 1000 * val
full_files = 1_281_167 + 50_000
def scale(name):
    """(factor, what was measured) of a stage that reads ImageNet or CIFAR-100."""
    if name == "imagenet":
        f = full_files / imagenet_files
        return f, f"{imagenet_files:,} of {full_files:,} files, time and output x{f:.0f}"
    if name == "top1" or name.startswith("zoo_top1"):
        return float(k), f"{1000 * val:,} of 50,000 images, time x{k}"
    if name == "cifar" or name.startswith("activations_cifar") or name == "cifar_transfer":
        return float(k), f"1/{k} of CIFAR-100, time and output x{k}"
    return 1.0, "full size"
print()
print(f"| stage | time | peak memory | output | measured on |")
print(f"|---|---:|---:|---:|---|")
tot_t = tot_o = 0.0
peak = 0.0
for name, sec, mib, mb, *rest in sorted(rows, key=lambda r: -float(r[1]) * scale(r[0])[0]):
    f, how = scale(name)
    t, o = float(sec) * f, float(mb) * (1.0 if name.startswith(("top1", "zoo_top1")) else f)
    tot_t += t; tot_o += o; peak = max(peak, float(mib))
    state = rest[0] if rest else ""
    t_txt = f"{t / 60:.1f} min" if t >= 60 else f"{t:.1f} s"
    o_txt = f"{o / 1000:.1f} GB" if o >= 1000 else f"{o:.0f} MB"
    flag = "" if state in ("", "ran") else f" ({state})"
    print(f"| `{name}`{flag} | {t_txt} | {float(mib):.0f} MiB | {o_txt} | {how} |")
print(f"| **all {len(rows)} stages** | **{tot_t / 3600:.1f} h** | **{peak:.0f} MiB** (largest) | **{tot_o / 1000:.1f} GB** | |")
PY
