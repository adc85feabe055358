"""Fixtures and checks for the ingest tests, written with the libraries our users have
(xarray + netCDF4/h5netcdf, zarr-python, pandas, zipfile, Pillow).

    python ingest_fixtures.py netcdf OUT        netCDF cases -> OUT/<case>.nc, OUT/cases.json
    python ingest_fixtures.py check ORIG STORE EXPORTED
                                                our store holds ORIG's values; EXPORTED is
                                                identical to ORIG for xarray
    python ingest_fixtures.py stimuli OUT HVM   HvM stimulus set (CSV + ZIP of real images),
                                                an assembly on it, lookup.csv, bad corpus
    python ingest_fixtures.py brainscore FILE   Brain-Score's loader opens FILE (crosscheck venv)
    python ingest_fixtures.py bench OUT N       a MajajHong-shaped assembly (256 x N x 1)
    python ingest_fixtures.py load FILE         time xarray + netCDF4 reading FILE into memory
    python ingest_fixtures.py gray SRC DST      a one-channel copy of an image
    python ingest_fixtures.py checkpoint W OUT  torch.save an official-format checkpoint of weights W
"""
import hashlib
import json
import os
import sys
import time
import zipfile

import numpy as np


def rng(seed):
    return np.random.default_rng(seed)


def neural_case(seed, n_neuroid, n_pres, dims, name, nan=True, int_ids=False,
                dtype="float32", time_bins=1):
    import xarray as xr
    r = rng(seed)
    objects = ["apple", "bear", "car", "dog"]
    n_img = max(1, n_pres // 2)
    image = [f"img{i:04d}" for i in range(n_img)]
    pres = {
        "stimulus_id": ("presentation", [image[i % n_img] for i in range(n_pres)]),
        "repetition": ("presentation", np.array([i // n_img for i in range(n_pres)], dtype=np.int64)),
        "object_name": ("presentation", [objects[i % len(objects)] for i in range(n_pres)]),
        "variation": ("presentation", np.array([(i * 3) % 9 for i in range(n_pres)], dtype=np.int64)),
    }
    if int_ids:
        neu = {"neuroid_id": ("neuroid", np.arange(100, 100 + n_neuroid, dtype=np.int64))}
    else:
        neu = {"neuroid_id": ("neuroid", [f"A-{i:03d}" for i in range(n_neuroid)])}
    neu["region"] = ("neuroid", ["IT" if i % 3 else "V4" for i in range(n_neuroid)])
    neu["x"] = ("neuroid", r.normal(size=n_neuroid))
    tb = {
        "time_bin_start": ("time_bin", np.arange(70, 70 + 10 * time_bins, 10, dtype=np.int64)),
        "time_bin_end": ("time_bin", np.arange(80, 80 + 10 * time_bins, 10, dtype=np.int64)),
    }
    sizes = {"neuroid": n_neuroid, "presentation": n_pres, "time_bin": time_bins}
    shape = [sizes[d] for d in dims]
    values = r.normal(size=shape).astype(dtype)
    if nan and values.size > 3:
        flat = values.reshape(-1)
        flat[[1, values.size // 2]] = np.nan
    coords = {**pres, **neu}
    if "time_bin" in dims:
        coords.update(tb)
    return xr.DataArray(values, dims=dims, coords=coords, name=name)


def cmd_netcdf(out):
    os.makedirs(out, exist_ok=True)
    cases = {}

    # Current naming `data`, MajajHong's dim order with a time_bin, NaNs, netCDF4 engine.
    da = neural_case(1, 7, 12, ["neuroid", "presentation", "time_bin"], None)
    ds = da.to_dataset(name="data")
    ds.attrs = {"identifier": "test.NeuralTimeBin", "stimulus_set_identifier": "test.stimuli"}
    ds.to_netcdf(f"{out}/neural_tb.nc", engine="netcdf4")
    cases["neural_tb"] = {"dims": ["presentation", "neuroid", "time_bin"], "shape": [12, 7, 1],
                          "identifier": "test.NeuralTimeBin", "nan": 2}

    # Older naming, (presentation, neuroid), integer neuroid ids, float64, h5netcdf engine.
    da = neural_case(2, 5, 9, ["presentation", "neuroid"], None, int_ids=True, dtype="float64")
    da = da.drop_vars("stimulus_id").assign_coords(
        image_id=("presentation", [f"im{i % 4}" for i in range(9)]))
    da.to_netcdf(f"{out}/legacy.nc", engine="h5netcdf")
    cases["legacy"] = {"dims": ["presentation", "neuroid"], "shape": [9, 5],
                       "identifier": "legacy", "nan": 2}

    # Named after the assembly, several 10-ms bins, time_bin first.
    da = neural_case(3, 3, 6, ["time_bin", "presentation", "neuroid"], "dicarlo.Named",
                     nan=False, time_bins=4)
    da.to_netcdf(f"{out}/named.nc")
    cases["named"] = {"dims": ["presentation", "time_bin", "neuroid"], "shape": [6, 4, 3],
                      "identifier": "named", "nan": 0}

    # A dimension coordinate (plain index `choice`), integer data, variable attributes.
    import xarray as xr
    r = rng(4)
    da = xr.DataArray(
        r.integers(0, 50, size=(8, 3)).astype("int16"),
        dims=["presentation", "choice"],
        coords={"choice": ["left", "middle", "right"],
                "stimulus_id": ("presentation", [f"s{i}" for i in range(8)]),
                "truth": ("presentation", ["left", "right"] * 4)},
        attrs={"units": "trials", "note": "counts"},
    )
    da.to_netcdf(f"{out}/choices.nc")
    cases["choices"] = {"dims": ["presentation", "choice"], "shape": [8, 3],
                        "identifier": "choices", "nan": 0}

    with open(f"{out}/cases.json", "w") as f:
        json.dump(cases, f, indent=1)


def cmd_check(orig, store, exported):
    import xarray as xr
    import zarr
    x = xr.open_dataarray(orig).load()
    g = zarr.open_group(store, mode="r")
    meta = g.attrs["ventral"]
    values = g["values"][...]
    expect = x.transpose(*meta["dims"]).values.astype(values.dtype)
    np.testing.assert_array_equal(values, expect)  # NaN == NaN here
    y = xr.open_dataarray(exported).load()
    xr.testing.assert_identical(x, y)
    print(json.dumps({"dims": list(x.dims), "identical": True}))


def cmd_brainscore(path):
    os.environ.setdefault("BS_INSTALL_DEPENDENCIES", "no")
    from brainscore_core.supported_data_standards.brainio import assemblies
    loader = assemblies.AssemblyLoader(cls=assemblies.DataAssembly, file_path=path)
    a = loader.load()
    print(json.dumps({"dims": list(a.dims), "shape": list(a.shape),
                      "coords": sorted(str(c) for c in a.coords)}))


def sha1(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def cmd_stimuli(out, data):
    """`data`: the real HvM folder (../shared/data/hvm: images/ and hvm_metadata.csv)."""
    import pandas as pd
    import xarray as xr
    os.makedirs(out, exist_ok=True)
    imgs = pd.read_csv(f"{data}/images/images.csv")
    meta = pd.read_csv(f"{data}/hvm_metadata.csv")
    meta = meta.rename(columns={"id": "image_id"})
    rows = imgs[["image_id"]].merge(meta, on="image_id", how="left")
    rows = rows.rename(columns={"obj": "object_name", "category": "category_name", "var": "variation"})
    rows["stimulus_id"] = rows["image_id"]
    rows["filename"] = [f"images/{i}.png" for i in rows["image_id"]]
    keep = ["stimulus_id", "filename", "object_name", "category_name", "variation",
            "rxy", "rxz", "ryz", "ty", "tz", "s", "bg_id"]
    rows = rows[keep]
    rows.to_csv(f"{out}/hvm.csv", index=False)
    with zipfile.ZipFile(f"{out}/hvm.zip", "w") as z:
        for sid in rows["stimulus_id"]:
            z.write(f"{data}/images/{sid}.png", arcname=f"images/{sid}.png")
    # An assembly over those stimuli with two repetitions.
    ids = list(rows["stimulus_id"]) * 2
    n = len(ids)
    r = rng(5)
    da = xr.DataArray(
        r.normal(size=(4, n, 1)).astype("float32"),
        dims=["neuroid", "presentation", "time_bin"],
        coords={"neuroid_id": ("neuroid", [f"n{i}" for i in range(4)]),
                "region": ("neuroid", ["IT"] * 4),
                "stimulus_id": ("presentation", ids),
                "repetition": ("presentation", np.repeat([0, 1], n // 2)),
                "time_bin_start": ("time_bin", [70]), "time_bin_end": ("time_bin", [170])},
    )
    ds = da.to_dataset(name="data")
    ds.attrs = {"identifier": "test.HvMNeural", "stimulus_set_identifier": "test.hvm"}
    ds.to_netcdf(f"{out}/assy_test_HvMNeural.nc")
    lookup = pd.DataFrame([
        {"identifier": "test.hvm", "lookup_type": "stimulus_set", "class": "StimulusSet",
         "location_type": "S3", "location": "https://example.invalid/brainio/hvm.csv",
         "sha1": sha1(f"{out}/hvm.csv"), "stimulus_set_identifier": ""},
        {"identifier": "test.hvm", "lookup_type": "stimulus_set", "class": "",
         "location_type": "S3", "location": "https://example.invalid/brainio/hvm.zip",
         "sha1": sha1(f"{out}/hvm.zip"), "stimulus_set_identifier": ""},
        {"identifier": "test.HvMNeural", "lookup_type": "assembly",
         "class": "NeuronRecordingAssembly", "location_type": "S3",
         "location": "https://example.invalid/brainio/assy_test_HvMNeural.nc",
         "sha1": sha1(f"{out}/assy_test_HvMNeural.nc"), "stimulus_set_identifier": "test.hvm"},
    ])
    lookup.to_csv(f"{out}/lookup.csv", index=False)

    # The bad corpus.
    bad = f"{out}/bad"
    os.makedirs(bad, exist_ok=True)
    whole = open(f"{out}/assy_test_HvMNeural.nc", "rb").read()
    open(f"{bad}/truncated.nc", "wb").write(whole[: len(whole) // 2])
    open(f"{bad}/corrupt.nc", "wb").write(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    rows.drop(columns=["filename"]).to_csv(f"{bad}/nofilename.csv", index=False)
    rows.drop(columns=["stimulus_id"]).to_csv(f"{bad}/noid.csv", index=False)
    dup = pd.concat([rows, rows.iloc[:1]])
    dup.to_csv(f"{bad}/dup.csv", index=False)
    os.link(f"{out}/hvm.zip", f"{bad}/dup.zip")
    os.link(f"{out}/hvm.zip", f"{bad}/nofilename.zip")
    os.link(f"{out}/hvm.zip", f"{bad}/noid.zip")
    # A ZIP missing one entry.
    rows.to_csv(f"{bad}/missing.csv", index=False)
    with zipfile.ZipFile(f"{bad}/missing.zip", "w") as z:
        for sid in list(rows["stimulus_id"])[1:]:
            z.write(f"{data}/images/{sid}.png", arcname=f"images/{sid}.png")
    # A ZIP entry escaping its folder, and a CSV filename that does.
    esc = rows.copy()
    esc.loc[0, "filename"] = "../escape.png"
    esc.to_csv(f"{bad}/escape.csv", index=False)
    with zipfile.ZipFile(f"{bad}/escape.zip", "w") as z:
        for i, sid in enumerate(rows["stimulus_id"]):
            z.write(f"{data}/images/{sid}.png", arcname=esc["filename"][i])
    absolute = rows.copy()
    absolute.loc[0, "filename"] = "/etc/passwd"
    absolute.to_csv(f"{bad}/absolute.csv", index=False)
    os.link(f"{out}/hvm.zip", f"{bad}/absolute.zip")
    evil = rows.copy()
    evil.to_csv(f"{bad}/evilzip.csv", index=False)
    with zipfile.ZipFile(f"{bad}/evilzip.zip", "w") as z:
        for sid in rows["stimulus_id"]:
            z.write(f"{data}/images/{sid}.png", arcname=f"images/{sid}.png")
        z.writestr("../../outside.txt", b"never extracted")
    # An unreadable image.
    rows.to_csv(f"{bad}/badimage.csv", index=False)
    with zipfile.ZipFile(f"{bad}/badimage.zip", "w") as z:
        for i, sid in enumerate(rows["stimulus_id"]):
            if i == 2:
                z.writestr(f"images/{sid}.png", b"\x89PNG\r\n\x1a\n not really a png")
            else:
                z.write(f"{data}/images/{sid}.png", arcname=f"images/{sid}.png")
    # Catalogs: a wrong SHA1; an assembly whose stimuli are not all in its set.
    wrong = lookup.copy()
    wrong.loc[2, "sha1"] = "0" * 40
    os.makedirs(f"{bad}/wrongsha", exist_ok=True)
    for f in ["hvm.csv", "hvm.zip", "assy_test_HvMNeural.nc"]:
        os.link(f"{out}/{f}", f"{bad}/wrongsha/{f}")
    wrong.to_csv(f"{bad}/wrongsha/lookup.csv", index=False)
    os.makedirs(f"{bad}/strangers", exist_ok=True)
    da2 = da.assign_coords(stimulus_id=("presentation", ["stranger"] + ids[1:]))
    ds2 = da2.to_dataset(name="data")
    ds2.attrs = ds.attrs
    ds2.to_netcdf(f"{bad}/strangers/assy_test_HvMNeural.nc")
    for f in ["hvm.csv", "hvm.zip"]:
        os.link(f"{out}/{f}", f"{bad}/strangers/{f}")
    st = lookup.copy()
    st.loc[2, "sha1"] = sha1(f"{bad}/strangers/assy_test_HvMNeural.nc")
    st.to_csv(f"{bad}/strangers/lookup.csv", index=False)
    print(json.dumps({"stimuli": len(rows), "presentations": n}))


def cmd_bench(out, n):
    """A MajajHong2015.public-shaped assembly: 256 neuroids x N presentations x 1 bin."""
    import xarray as xr
    n = int(n)
    r = rng(7)
    n_img = max(1, n // 50)
    img = np.array([hashlib.sha1(str(i).encode()).hexdigest() for i in range(n_img)])
    objects = np.array([f"obj{i:02d}" for i in range(64)])
    cats = np.array([f"cat{i}" for i in range(8)])
    idx = np.arange(n) % n_img
    coords = {
        "neuroid_id": ("neuroid", [f"Chabo_L_M_{i // 16}_{i % 16}" for i in range(256)]),
        "arr": ("neuroid", ["M"] * 256), "col": ("neuroid", np.arange(256) % 16),
        "row": ("neuroid", np.arange(256) // 16), "hemisphere": ("neuroid", ["L"] * 256),
        "subregion": ("neuroid", ["cIT"] * 256), "animal": ("neuroid", ["Chabo"] * 256),
        "x": ("neuroid", r.normal(size=256)), "y": ("neuroid", r.normal(size=256)),
        "region": ("neuroid", np.where(np.arange(256) < 88, "V4", "IT")),
        "image_id": ("presentation", img[idx]), "stimulus_id": ("presentation", img[idx]),
        "repetition": ("presentation", np.arange(n) // n_img),
        "variation": ("presentation", (idx % 3) * 3),
        "object_name": ("presentation", objects[idx % 64]),
        "category_name": ("presentation", cats[idx % 8]),
        "tz": ("presentation", r.normal(size=n)), "ty": ("presentation", r.normal(size=n)),
        "s": ("presentation", r.normal(size=n)),
        "background_id": ("presentation", img[(idx + 1) % n_img]),
        "time_bin_start": ("time_bin", [70]), "time_bin_end": ("time_bin", [170]),
    }
    values = r.normal(size=(256, n, 1)).astype("float32")
    da = xr.DataArray(values, dims=["neuroid", "presentation", "time_bin"], coords=coords)
    ds = da.to_dataset(name="data")
    ds.attrs = {"identifier": "dicarlo.MajajHong2015.public",
                "stimulus_set_identifier": "dicarlo.hvm-public"}
    ds.to_netcdf(out)


def cmd_gray(src, dst):
    from PIL import Image
    Image.open(src).convert("L").save(dst, quality=90)


def cmd_checkpoint(weights, out):
    """An official-format CORnet checkpoint, written by torch, from a weights folder's
    safetensors: {'epoch', 'state_dict' (module.-prefixed), 'optimizer'}."""
    import torch
    from safetensors.torch import load_file
    state = {"module." + k: v for k, v in load_file(weights).items()}
    torch.save({"epoch": 43, "arch": "CORnet_S", "state_dict": state,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "momentum": 0.9}]}}, out)


def cmd_load(path):
    import xarray as xr
    t = time.perf_counter()
    x = xr.open_dataarray(path).load()
    for c in x.coords:
        _ = x[c].values
    dt = time.perf_counter() - t
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": dt, "peak_rss": rss, "shape": list(x.shape)}))


def cmd_load_write(path, out):
    """xarray's load into memory, then the loaded values and coordinates written to `out`
    as raw bytes and made durable (fsync of the file and its folder): the least a load must
    add to leave a copy on disk that survives a crash, as an ingest does."""
    import os
    import xarray as xr
    t = time.perf_counter()
    x = xr.open_dataarray(path).load()
    with open(out, "wb") as f:
        f.write(memoryview(x.values).cast("B"))
        for c in x.coords:
            f.write(x[c].values.astype(str).tobytes() if x[c].dtype == object else x[c].values.tobytes())
        f.flush()
        os.fsync(f.fileno())
    d = os.open(os.path.dirname(os.path.abspath(out)), os.O_RDONLY)
    os.fsync(d)
    os.close(d)
    dt = time.perf_counter() - t
    print(json.dumps({"seconds": dt, "bytes": os.path.getsize(out)}))


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"netcdf": cmd_netcdf, "check": cmd_check, "stimuli": cmd_stimuli,
     "brainscore": cmd_brainscore, "bench": cmd_bench, "load": cmd_load, "load_write": cmd_load_write, "gray": cmd_gray, "checkpoint": cmd_checkpoint}[cmd](*args)
