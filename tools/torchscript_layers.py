"""Make any PyTorch model scoreable by ventral: a TorchScript file whose forward returns the
chosen layers' outputs by name, for `ventral model import --torchscript FILE -o WEIGHTS`.

    from torchscript_layers import export
    export(my_model, ["layer1", "layer2.0", "fc"], "my_model.pt", resolution=224)

or from a shell, for a torchvision model:

    python tools/torchscript_layers.py resnet50 layer1,layer2,layer3,layer4,avgpool resnet50.pt

The file's forward takes a batch of images preprocessed as Brain-Score preprocesses them
(resized to `resolution` × `resolution`, ImageNet mean and std) and returns a
`Dict[str, Tensor]`: every chosen layer's output, in the order given — taken where a forward
hook on the module of that name sees it, as Brain-Score's PyTorch extractor takes it — and
the model's own output under `output`. It is made by tracing (`torch.jit.trace`), so the
model's forward must not branch on the input's values; the file also records the resolution
it was traced at (`ventral_resolution`) and the layer order (`ventral_layers`).

TorchScript is what libtorch runs without Python, so ventral (Rust, libtorch) runs the file
as it is. PyTorch now points new work to `torch.export`, whose files libtorch cannot load
directly (they need AOTInductor compilation); for scoring, TorchScript is the stable bridge.
"""

import sys
from typing import Dict, List

import torch


class _Layers(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, layers: List[str]):
        super().__init__()
        self.model = model
        self.names = list(layers)
        self._seen: Dict[str, torch.Tensor] = {}
        modules = dict(model.named_modules())
        missing = [n for n in layers if n not in modules]
        if missing:
            raise ValueError(f"not modules of the model: {missing} (named modules: {list(modules)[:20]}…)")
        if "output" in layers:
            raise ValueError("`output` is reserved for the model's own output")
        for name in layers:
            modules[name].register_forward_hook(self._hook(name))

    def _hook(self, name):
        def keep(_module, _inputs, out):
            # A copy: a later in-place operation (ReLU(inplace=True)) must not change it.
            self._seen[name] = out.clone()
        return keep

    def forward(self, x):
        self._seen = {}
        out = self.model(x)
        if hasattr(out, "logits"):
            out = out.logits
        result = {name: self._seen[name] for name in self.names}
        result["output"] = out
        return result


def export(model: torch.nn.Module, layers: List[str], path: str, resolution: int = 224) -> None:
    """Trace `model` (in eval mode, on the CPU) into `path`: forward returns `layers`' outputs
    and the model's output (`output`) by name."""
    model = model.eval().cpu()
    wrapper = _Layers(model, layers).eval()
    example = torch.zeros(1, 3, resolution, resolution)
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, example, strict=False, check_trace=False)
    extra = {"ventral_resolution": str(resolution), "ventral_layers": ",".join(layers)}
    torch.jit.save(traced, path, _extra_files=extra)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: torchscript_layers.py TORCHVISION_ARCH LAYER,LAYER,… OUT.pt")
    import torchvision

    arch, names, out = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    export(getattr(torchvision.models, arch)(weights=None), names, out,
           resolution=299 if arch == "inception_v3" else 224)
