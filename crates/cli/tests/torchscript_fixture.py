"""A model defined only here (not in torchvision) for the TorchScript test in model_cli.rs.

    python torchscript_fixture.py make OUT      # OUT/model.pt (via tools/torchscript_layers.py), OUT/input.npy
    python torchscript_fixture.py check OUT ACTS  # ACTS (ventral's extraction of input.npy) vs PyTorch
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tools"))
from torchscript_layers import export  # noqa: E402


class TwoPath(torch.nn.Module):
    """A stem, two branches added together, a squeeze-and-excite gate, a classifier."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                                        torch.nn.ReLU(inplace=True))
        self.left = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.right = torch.nn.Sequential(torch.nn.Conv2d(8, 4, 1), torch.nn.GELU(), torch.nn.Conv2d(4, 8, 1))
        self.gate = torch.nn.Linear(8, 8)
        self.head = torch.nn.Linear(8, 7)

    def forward(self, x):
        h = self.stem(x)
        h = torch.relu(self.left(h) + self.right(h))
        g = torch.sigmoid(self.gate(h.mean(dim=(2, 3))))
        h = h * g[:, :, None, None]
        return self.head(h.amax(dim=(2, 3)))


LAYERS = ["stem.2", "right", "gate", "head"]


def model():
    torch.manual_seed(5)
    m = TwoPath()
    with torch.no_grad():
        bn = m.stem[1]
        bn.running_mean.normal_(0, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
    return m.eval()


if sys.argv[1] == "make":
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    export(model(), LAYERS, os.path.join(out, "model.pt"), resolution=32)
    g = torch.Generator().manual_seed(9)
    np.save(os.path.join(out, "input.npy"), torch.randn(6, 3, 32, 32, generator=g).numpy())
elif sys.argv[1] == "check":
    import zarr

    out, acts = sys.argv[2], sys.argv[3]
    x = torch.from_numpy(np.load(os.path.join(out, "input.npy")))
    m = model()
    seen = {}
    modules = dict(m.named_modules())
    for name in LAYERS:
        modules[name].register_forward_hook(lambda _m, _i, o, name=name: seen.__setitem__(name, o.clone()))
    with torch.no_grad():
        m(x)
    worst = 0.0
    for name in LAYERS:
        ours = zarr.open_group(os.path.join(acts, name), mode="r")["values"][:]
        ref = seen[name].reshape(x.shape[0], -1).numpy()
        assert ours.shape == ref.shape, (name, ours.shape, ref.shape)
        worst = max(worst, float(np.abs(ours - ref).max()))
    assert worst < 1e-5, f"max abs difference {worst}"
    print(f"max abs difference {worst:.2e} over {len(LAYERS)} layers")
