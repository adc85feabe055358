"""Reference outputs of CORnet-S for the parity test, computed with a CORnet-S definition we
did not write: the one the installed brainscore-vision wheel carries (models/ReAlnet/model.py,
the official dicarlolab/CORnet code), loaded from the installed package at run time.

    python parity.py MODEL_PY OUT_DIR [S|Z]

(Z: CORnet-Z, from a module that defines CORblock_Z and CORnet_Z — the installed wheel's
hmax_v3_adj/local_timm/models/cornet.py carries the official one.)

writes OUT_DIR/checkpoint.pth.tar (as torch.save writes official checkpoints: {'epoch',
'state_dict' with `module.` keys, 'optimizer'}; for Z in the legacy non-ZIP format), OUT_DIR/images.npy (2 x 3 x 224 x 224) and
OUT_DIR/outputs.safetensors (every `<area>.output-t<k>`, `decoder.avgpool-t0`, `logits`).
"""
import ast
import sys

import numpy as np
import torch
from safetensors.torch import save_file

model_py, out = sys.argv[1], sys.argv[2]
arch = sys.argv[3] if len(sys.argv) > 3 else "S"
wanted = ("Flatten", "Identity", f"CORblock_{arch}", f"CORnet_{arch}")
tree = ast.parse(open(model_py).read())
keep = [n for n in tree.body
        if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name in wanted]
assert {n.name for n in keep} == set(wanted), [n.name for n in keep]
ns = {}
exec("import math\nfrom collections import OrderedDict\nimport torch\nfrom torch import nn\n", ns)
exec(compile(ast.Module(body=keep, type_ignores=[]), model_py, "exec"), ns)

torch.manual_seed(0)
model = ns[f"CORnet_{arch}"]()
g = torch.Generator().manual_seed(1)
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
            m.weight.normal_(1, 0.1, generator=g)
            m.bias.normal_(0, 0.1, generator=g)
        if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
            m.bias.normal_(0, 0.1, generator=g)
    model.decoder.linear.bias.normal_(0, 0.1, generator=g)

# One SGD step so the optimizer state holds momentum buffers, as real checkpoints do.
opt = torch.optim.SGD(model.parameters(), lr=1e-9, momentum=0.9, weight_decay=1e-4)
model.train()
x = torch.randn(2, 3, 64, 64, generator=g)
model(x).sum().backward()
opt.step()
model.eval()

state = {"module." + k: v for k, v in model.state_dict().items()}
# CORnet-Z in the legacy (pre-1.6, non-ZIP) format, as the official 2018 checkpoints are.
torch.save({"epoch": 43, "arch": f"CORnet_{arch}", "state_dict": state,
            "optimizer": opt.state_dict()}, f"{out}/checkpoint.pth.tar",
           _use_new_zipfile_serialization=(arch != "Z"))

images = torch.randn(2, 3, 224, 224, generator=g)
np.save(f"{out}/images.npy", images.numpy())

outputs = {}
counts = {}

def hook(name):
    def f(module, inp, output):
        k = counts.get(name, 0)
        counts[name] = k + 1
        outputs[f"{name}-t{k}"] = output.detach().clone().contiguous()
    return f

for area in ["V1", "V2", "V4", "IT"]:
    getattr(model, area).output.register_forward_hook(hook(f"{area}.output"))
model.decoder.avgpool.register_forward_hook(hook("decoder.avgpool"))
with torch.no_grad():
    logits = model(images)
outputs["decoder.avgpool-t0"] = outputs["decoder.avgpool-t0"].flatten(1).contiguous()
outputs["logits"] = logits.contiguous()
save_file(outputs, f"{out}/outputs.safetensors")
print(sum(p.numel() for p in model.parameters()))
