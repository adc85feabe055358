"""Reference outputs of torchvision's own models for the zoo parity test (zoo_parity.rs).

Usage: python zoo_parity.py OUT_DIR ARCH:RESOLUTION:LAYER,LAYER,... [...]

For each architecture: build torchvision.models.<arch>(weights=None) from a fixed seed,
set every batch norm's affine parameters at random and its statistics from a random batch
(so that loading them is tested), and write to OUT_DIR/<arch>/:
  - weights.pth: torch.save(model.state_dict()) (ZIP format). Two variations test the
    importer's renames: resnet18's keys carry DataParallel's `module.` prefix, and
    densenet121's dense layers use the pre-0.3 names (`norm.1`) torchvision's hub files have,
    and mobilenet_v2 is saved in the legacy (pre-1.6, non-ZIP) format.
  - ref.safetensors: `input` (2 x 3 x R x R), `logits`, and `layer/<name>` for every listed
    layer, the output of the module of that name copied in a forward hook (as Brain-Score's
    PyTorch extractor copies it), in eval mode, fp32, CPU.
Fails if a listed layer is not a module of torchvision's model.
"""

import os
import re
import sys

import torch
import torchvision
from safetensors.torch import save_file

torch.set_num_threads(1)
out_dir = sys.argv[1]
for spec in sys.argv[2:]:
    arch, res, layers = spec.split(":")
    layers = layers.split(",")
    torch.manual_seed(0)
    kw = {"weights": None}
    if arch == "inception_v3":
        kw.update(aux_logits=True, transform_input=True, init_weights=True)
    model = getattr(torchvision.models, arch)(**kw)
    g = torch.Generator().manual_seed(1)
    # Batch norms: affine parameters drawn at random, then running statistics set from a
    # random batch (momentum 1), so that every layer's values stay of order one however
    # deep the network, and an absolute tolerance means the same everywhere.
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in norms:
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            m.momentum = 1.0
        aux = getattr(model, "AuxLogits", None)
        if aux is not None:
            model.AuxLogits = None
        model.train()
        model(torch.randn(8, 3, int(res), int(res), generator=g))
        if aux is not None:
            model.AuxLogits = aux
    model.eval()
    modules = dict(model.named_modules())
    outputs = {}

    def hook(name):
        def f(_module, _inp, out):
            outputs[name] = out.detach().clone()

        return f

    for name in layers:
        if name not in modules:
            sys.exit(f"{arch}: `{name}` is not a module of torchvision's {arch}")
        modules[name].register_forward_hook(hook(name))
    x = torch.randn(2, 3, int(res), int(res), generator=g)
    with torch.no_grad():
        logits = model(x)
    tensors = {"input": x, "logits": logits}
    for name in layers:
        tensors[f"layer/{name}"] = outputs[name].contiguous()
    d = os.path.join(out_dir, arch)
    os.makedirs(d, exist_ok=True)
    save_file(tensors, os.path.join(d, "ref.safetensors"))
    state = model.state_dict()
    if arch == "resnet18":
        state = {f"module.{k}": v for k, v in state.items()}
    if arch == "densenet121":
        state = {
            re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
            for k, v in state.items()
        }
    # mobilenet_v2 in the legacy format (PyTorch 0.4-1.5; torchvision's older hub files).
    torch.save(state, os.path.join(d, "weights.pth"),
               _use_new_zipfile_serialization=(arch != "mobilenet_v2"))
    print(arch, len(layers), "layers", tuple(logits.shape))
