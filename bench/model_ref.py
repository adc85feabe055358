"""PyTorch eager CORnet-S (the official definition from the installed brainscore-vision wheel,
as in the parity test), or a torchvision architecture (`--arch resnet50 --layers a,b,…`):
forward with every candidate layer's output copied to the CPU, and train steps, images/s.
Prints `RESULT forward=… train=…`.

    python model_ref.py MODEL_PY [--arch CORnet-S] [--layers …] [--device cpu|cuda] [--batch 16] [--iters 4] [--warmup 1] [--amp bf16] [--channels-last] [--cudnn-benchmark]
"""
import ast
import sys
import time

import torch

args = sys.argv[2:]
def arg(name, default):
    return args[args.index(name) + 1] if name in args else default

device = arg("--device", "cpu")
batch = int(arg("--batch", "16"))
iters = int(arg("--iters", "4"))
warmup = int(arg("--warmup", "1"))
amp = arg("--amp", "")
cl = "--channels-last" in args
torch.backends.cudnn.benchmark = "--cudnn-benchmark" in args
arch = arg("--arch", "CORnet-S")
side = 224
if arch.lower() == "cornet-s":
    src = sys.argv[1]
    tree = ast.parse(open(src).read())
    keep = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))
            and n.name in ("Flatten", "Identity", "CORblock_S", "CORnet_S")]
    ns = {}
    exec("import math\nfrom collections import OrderedDict\nimport torch\nfrom torch import nn\n", ns)
    exec(compile(ast.Module(body=keep, type_ignores=[]), src, "exec"), ns)
    model = ns["CORnet_S"]().to(device)
    hooked = [getattr(model, a).output for a in ["V1", "V2", "V4", "IT"]] + [model.decoder.avgpool]
else:
    import torchvision
    kw = {"aux_logits": True, "transform_input": True, "init_weights": True} if arch == "inception_v3" else {}
    model = getattr(torchvision.models, arch)(weights=None, **kw).to(device)
    side = 299 if arch == "inception_v3" else 224
    modules = dict(model.named_modules())
    hooked = [modules[name] for name in arg("--layers", "").split(",")]
x = torch.randn(batch, 3, side, side, device=device)
if cl:
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
outs = []
recording = [False]  # only in the forward benchmark: train steps must not keep outputs alive
def keep(m, i, o):
    if recording[0]:
        outs.append(o)
for m in hooked:
    m.register_forward_hook(keep)
dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)

def sync():
    if device.startswith("cuda"):
        torch.cuda.synchronize()

def fwd():
    model.eval()
    outs.clear()
    recording[0] = True
    with torch.no_grad(), torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
        model(x)
    recording[0] = False
    for o in outs:
        o.float().cpu()
    outs.clear()

def step():
    model.train()
    with torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
        out = model(x)
        out = out.logits if hasattr(out, "logits") else out
        loss = torch.nn.functional.cross_entropy(out.float(), torch.zeros(batch, dtype=torch.long, device=device))
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 1e-6 * p.grad

for _ in range(warmup):
    fwd()
sync()
t = time.perf_counter()
for _ in range(iters):
    fwd()
sync()
forward = iters * batch / (time.perf_counter() - t)
for _ in range(warmup):
    step()
sync()
t = time.perf_counter()
for _ in range(iters):
    step()
sync()
train = iters * batch / (time.perf_counter() - t)
mem = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else 0
print(f"RESULT forward={forward:.2f} train={train:.2f} threads={torch.get_num_threads()} gpu_mem_mib={mem:.0f} cudnn_benchmark={torch.backends.cudnn.benchmark}")
