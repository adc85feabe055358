"""The training loader's benchmark and reference (bench/loader.sh, crates/model/tests/loader.rs).

  loader.py generate DIR N [SEED]     photo-like JPEGs at ImageNet's size distribution, in
                                      torchvision's ImageFolder layout (DIR/<class>/<file>.JPEG)
  loader.py torchvision DIR [--workers W] [--batch B] [--size S] [--epochs E]
                                      torchvision's ImageFolder + DataLoader with the official
                                      CORnet training transforms; prints images/s of the last epoch
  loader.py params W H N [SEED]       N draws of RandomResizedCrop.get_params and the flip for a
                                      W x H image, one "top left height width flip" line each
  loader.py views JOBS                for each line "FILE TOP LEFT HEIGHT WIDTH FLIP SIZE OUT" of the
                                      file JOBS, torchvision's view of FILE for that crop box
                                      (resized_crop, flip, ToTensor, Normalize) as raw float32 to OUT
"""
import sys
import time

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def generate(out, n, seed=0):
    """Photo-like images: a 1/f amplitude spectrum (natural images' statistics) per channel
    with correlated channels, a few hard-edged shapes, at ILSVRC2012's typical sizes (most
    500 px on the long side, 4:3 landscape most often) and JPEG qualities 75-95 (4:2:0)."""
    import os
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    classes = 10
    sizes, total = [], 0
    for i in range(n):
        r = rng.random()
        if r < 0.55:
            w, h = 500, 375
        elif r < 0.65:
            w, h = 500, 333
        elif r < 0.85:
            w, h = 375, 500
        elif r < 0.95:
            w, h = int(rng.integers(200, 501)), int(rng.integers(200, 501))
        else:
            w, h = int(rng.integers(500, 1025)), int(rng.integers(400, 769))
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        amp = np.maximum(np.hypot(fx, fy), 1.0 / max(w, h)) ** -0.8
        base = [np.fft.irfft2(amp * np.exp(2j * np.pi * rng.random(amp.shape)), s=(h, w)) for _ in range(2)]
        mix = rng.normal(size=(3, 2)) + np.array([[1.0, 0.3], [1.0, 0.0], [1.0, -0.3]])
        img = np.stack([mix[c, 0] * base[0] + mix[c, 1] * base[1] for c in range(3)], axis=-1)
        img = (img - img.mean()) / (img.std() + 1e-9)
        img = np.clip(128 + 48 * img + rng.normal(0, 40, size=3), 0, 255).astype(np.uint8)
        pil = Image.fromarray(img, "RGB")
        draw = ImageDraw.Draw(pil)
        for _ in range(int(rng.integers(1, 4))):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            x1, y1 = x0 + int(rng.integers(20, w // 2 + 21)), y0 + int(rng.integers(20, h // 2 + 21))
            colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
        d = os.path.join(out, f"n{i % classes:08d}")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"img_{i:06d}.JPEG")
        pil.save(path, "JPEG", quality=int(rng.integers(75, 96)), subsampling=2)
        sizes.append((w, h))
        total += os.path.getsize(path)
    mw = sum(s[0] for s in sizes) / n
    mh = sum(s[1] for s in sizes) / n
    print(f"generated {n} JPEGs in {classes} classes: mean {mw:.0f} x {mh:.0f} px, mean {total / n / 1024:.0f} KiB")


def transforms(size):
    from torchvision import transforms as T

    return T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])


def torchvision_loader(directory, workers=1, batch=64, size=224, epochs=2):
    import torch
    from torchvision import datasets

    torch.set_num_threads(1)
    ds = datasets.ImageFolder(directory, transforms(size))
    dl = torch.utils.data.DataLoader(
        ds, batch_size=batch, shuffle=True, num_workers=workers,
        pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0,
    )
    rate = 0.0
    for _ in range(epochs):
        t0, n = time.perf_counter(), 0
        for x, _y in dl:
            n += x.shape[0]
        rate = n / (time.perf_counter() - t0)
    print(f"RESULT images_per_s={rate:.1f} workers={workers} batch={batch} images={len(ds)}")


def params(w, h, n, seed=0):
    import torch
    from PIL import Image
    from torchvision import transforms as T

    torch.manual_seed(seed)
    img = Image.new("RGB", (w, h))
    out = []
    for _ in range(n):
        i, j, hh, ww = T.RandomResizedCrop.get_params(img, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))
        flip = int(torch.rand(1) < 0.5)
        out.append(f"{i} {j} {hh} {ww} {flip}")
    print("\n".join(out))


def view(path, top, left, height, width, flip, size, out):
    import numpy as np
    from PIL import Image
    from torchvision import transforms as T
    from torchvision.transforms import functional as F

    with open(path, "rb") as f:
        img = Image.open(f).convert("RGB")
    img = F.resized_crop(img, top, left, height, width, [size, size], T.InterpolationMode.BILINEAR, antialias=True)
    if flip:
        img = F.hflip(img)
    x = F.normalize(F.to_tensor(img), MEAN, STD)
    np.asarray(x.numpy(), dtype="<f4").tofile(out)


def main(argv):
    cmd = argv[0]
    if cmd == "generate":
        generate(argv[1], int(argv[2]), int(argv[3]) if len(argv) > 3 else 0)
    elif cmd == "torchvision":
        opts = {"--workers": 1, "--batch": 64, "--size": 224, "--epochs": 2}
        rest = argv[2:]
        for k, v in zip(rest[::2], rest[1::2]):
            opts[k] = int(v)
        torchvision_loader(argv[1], opts["--workers"], opts["--batch"], opts["--size"], opts["--epochs"])
    elif cmd == "params":
        params(int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4]) if len(argv) > 4 else 0)
    elif cmd == "views":
        with open(argv[1]) as f:
            for line in f:
                a = line.rstrip("\n").split("\t")
                view(a[0], *[int(v) for v in a[1:7]], a[7])
    else:
        sys.exit(f"loader.py: unknown command {cmd!r}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
