"""Shared fixtures of the Python package's tests.

The suite runs in two interpreters (``make test`` does both): the project venv (current
numpy, xarray, pyarrow; the CLI beside it) and Brain-Score's reference venv
(brainscore-vision 2.4.2, numpy < 2, xarray 2022.3), where the metrics are compared with
Brain-Score's own classes in the same process. A test whose resource is missing in one of
them is skipped there, and says why."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _missing(what: str):
    """A missing resource fails the test under CI (as the Rust tests do) and skips it
    elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must have it)")
    pytest.skip(what)


def _target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


@pytest.fixture(scope="session")
def ventral_bin() -> Path:
    """The ``ventral`` CLI built from the same sources ($VENTRAL_BIN, else the cargo target)."""
    p = Path(os.environ.get("VENTRAL_BIN", _target_dir() / "debug" / "ventral"))
    if not p.is_file():
        _missing(f"no ventral binary at {p} (cargo build first)")
    return p


@pytest.fixture(scope="session")
def shared_data() -> Path:
    p = Path(os.environ.get("VENTRAL_SHARED_DATA", ROOT.parent / "shared" / "data"))
    if not (p / "brainio-netcdf").is_dir():
        _missing(f"no ../shared/data at {p}")
    return p


def cli(binary: Path, *args: str, cwd=None, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([str(binary), *map(str, args)], cwd=cwd, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise AssertionError(f"ventral {' '.join(map(str, args))} exited {out.returncode}:\n{out.stderr}")
    return out


def brainscore_or_skip():
    try:
        import brainscore_vision  # noqa: F401
    except ImportError:
        pytest.skip("brainscore-vision is not installed in this venv (it is in the reference venv)")


# ---------------------------------------------------------------------------------------
# Generated Brain-Score-shaped problems (MajajHong2015-like recordings, model features).

def neural_problem(seed: int, n_objects: int = 8, per_object: int = 10, reps: int = 4,
                   n_neuroids: int = 30, n_features: int = 60, nan_fraction: float = 0.0,
                   shuffle: bool = True):
    """(features, recordings with repetitions) as Brain-Score assemblies' parts."""
    rng = np.random.RandomState(seed)
    n_stim = n_objects * per_object
    stimulus_id = np.array([f"im{rng.randint(10**6):06d}_{i:03d}" for i in range(n_stim)], dtype=object)
    object_name = np.array([f"obj{i // per_object}" for i in range(n_stim)], dtype=object)
    latent = rng.randn(n_stim, 12)
    features = (latent @ rng.randn(12, n_features) + 0.5 * rng.randn(n_stim, n_features)).astype(np.float32)
    signal = latent @ rng.randn(12, n_neuroids)
    rows = []
    for r in range(reps):
        rows.append(signal + 1.5 * rng.randn(n_stim, n_neuroids))
    responses = np.concatenate(rows, axis=0)
    if nan_fraction:
        responses[rng.rand(*responses.shape) < nan_fraction] = np.nan
    pres_stim = np.tile(stimulus_id, reps)
    pres_obj = np.tile(object_name, reps)
    repetition = np.repeat(np.arange(reps), n_stim)
    order = rng.permutation(len(pres_stim)) if shuffle else np.arange(len(pres_stim))
    feat_order = rng.permutation(n_stim) if shuffle else np.arange(n_stim)
    return dict(
        features=features[feat_order], feature_stimulus_id=stimulus_id[feat_order],
        feature_object_name=object_name[feat_order],
        responses=responses[order], stimulus_id=pres_stim[order], object_name=pres_obj[order],
        repetition=repetition[order],
        neuroid_id=np.array([f"n{i:04d}" for i in range(n_neuroids)], dtype=object),
    )


def xr_features(p, cls=None):
    import xarray as xr
    cls = cls or xr.DataArray
    n = p["features"].shape[1]
    return cls(p["features"], dims=["presentation", "neuroid"], coords={
        "stimulus_id": ("presentation", p["feature_stimulus_id"]),
        "object_name": ("presentation", p["feature_object_name"]),
        "neuroid_num": ("neuroid", np.arange(n)),
        "neuroid_id": ("neuroid", np.array([f"f{i}" for i in range(n)], dtype=object)),
    })


def xr_recordings(p, cls=None):
    import xarray as xr
    cls = cls or xr.DataArray
    return cls(p["responses"], dims=["presentation", "neuroid"], coords={
        "stimulus_id": ("presentation", p["stimulus_id"]),
        "object_name": ("presentation", p["object_name"]),
        "repetition": ("presentation", p["repetition"].astype(np.int64)),
        "neuroid_id": ("neuroid", p["neuroid_id"]),
        "region": ("neuroid", np.array(["IT"] * len(p["neuroid_id"]), dtype=object)),
    })


def behaviour_problem(seed: int, n_objects: int = 6, per_object: int = 8, trials_per_image: int = 150):
    """(model probabilities, human 2-AFC trials) as Rajalingham2018's assemblies' parts."""
    rng = np.random.RandomState(seed)
    objects = [f"o{i}" for i in range(n_objects)]
    images = [(f"img{k:03d}", objects[k // per_object]) for k in range(n_objects * per_object)]
    difficulty = rng.rand(len(images))
    probs = rng.dirichlet(np.ones(n_objects), size=len(images))
    for k, (_, obj) in enumerate(images):
        probs[k, objects.index(obj)] += 1.0 + difficulty[k]
    probs /= probs.sum(axis=1, keepdims=True)
    t_stim, t_sample, t_dist, t_choice = [], [], [], []
    for k, (img, obj) in enumerate(images):
        others = [o for o in objects if o != obj]
        for t in range(trials_per_image):
            dist = others[t % len(others)]
            correct = rng.rand() < 0.55 + 0.4 * difficulty[k]
            t_stim.append(img)
            t_sample.append(obj)
            t_dist.append(dist)
            t_choice.append(obj if correct else dist)
    order = rng.permutation(len(t_stim))
    arr = lambda v: np.array(v, dtype=object)[order]
    return dict(probabilities=probs, stimulus_id=np.array([i for i, _ in images], dtype=object),
                choices=np.array(objects, dtype=object), trial_stimulus_id=arr(t_stim),
                sample_obj=arr(t_sample), dist_obj=arr(t_dist), choice=arr(t_choice))


def xr_probabilities(b, cls=None):
    import xarray as xr
    cls = cls or xr.DataArray
    return cls(b["probabilities"], dims=["presentation", "choice"], coords={
        "stimulus_id": ("presentation", b["stimulus_id"]),
        "image_id": ("presentation", b["stimulus_id"]),
        "choice": ("choice", b["choices"]),
    })


def xr_trials(b, cls=None):
    import xarray as xr
    cls = cls or xr.DataArray
    a = cls(b["choice"], dims=["presentation"], coords={
        "stimulus_id": ("presentation", b["trial_stimulus_id"]),
        "sample_obj": ("presentation", b["sample_obj"]),
        "dist_obj": ("presentation", b["dist_obj"]),
        "choice": ("presentation", b["choice"]),
        "truth": ("presentation", b["sample_obj"]),
    })
    a["correct"] = a["choice"] == a["sample_obj"]
    return a
