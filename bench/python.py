"""`make bench` figures for the Python package: ``ventral.metrics.neural_predictivity`` against
Brain-Score's own metric, called from the same Python process on the same assemblies, and the
cost of the Python layer over the bare Rust call.

Run with the Brain-Score reference venv's Python (it has brainscore-vision 2.4.2 and the
ventral wheel). Sizes: MajajHong2015's IT problem (2,560 stimuli × 25,088 features → 168
neuroids, 50 repetitions). Brain-Score takes about 22 minutes on it, so by default it is
timed side by side on a smaller problem (the figure says which); BENCH_REFERENCE=1 runs it
at full size too.

Usage: python bench/python.py [STIMULI FEATURES NEUROIDS REPS]
"""

from __future__ import annotations

import os
import sys
import time
import warnings

os.environ.setdefault("BS_INSTALL_DEPENDENCIES", "no")
warnings.filterwarnings("ignore")

import numpy as np


def problem(n, p, q, reps, seed=7):
    rng = np.random.RandomState(seed)
    stim = np.array([f"{(i + 1) * 0x9E3779B97F4A7C15:040x}" for i in range(n)], dtype=object)
    objects = np.array([f"obj{i % 64:02d}" for i in range(n)], dtype=object)
    features = np.maximum(rng.randn(n, p), 0).astype(np.float32)
    latent = rng.randn(n, 64)
    w = rng.randn(64, q) / 8.0
    signal = latent @ w
    values = np.concatenate([signal + 2.0 * rng.randn(n, q) for _ in range(reps)])
    return dict(features=features, stim=stim, objects=objects, values=values,
                pres_stim=np.tile(stim, reps), pres_obj=np.tile(objects, reps),
                rep=np.repeat(np.arange(reps), n).astype(np.int64),
                neuroid_id=np.array([f"n{i:03d}" for i in range(q)], dtype=object))


def assemblies(d):
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
    p = d["features"].shape[1]
    source = NeuroidAssembly(d["features"], dims=["presentation", "neuroid"], coords={
        "stimulus_id": ("presentation", d["stim"]), "object_name": ("presentation", d["objects"]),
        "neuroid_id": ("neuroid", np.arange(p)), "neuroid_num": ("neuroid", np.arange(p))})
    target = NeuroidAssembly(d["values"], dims=["presentation", "neuroid"], coords={
        "stimulus_id": ("presentation", d["pres_stim"]), "object_name": ("presentation", d["pres_obj"]),
        "repetition": ("presentation", d["rep"]), "neuroid_id": ("neuroid", d["neuroid_id"]),
        "region": ("neuroid", np.array(["IT"] * len(d["neuroid_id"]), dtype=object))})
    return source, target


def timed(f, repeat=1):
    best, out = None, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    return best, out


def brainscore_metric(source, target):
    from brainscore_vision.benchmark_helpers.neural_common import average_repetition
    from brainscore_vision.metrics.internal_consistency.ceiling import InternalConsistency
    from brainscore_vision.metrics.regression_correlation.metric import (
        CrossRegressedCorrelation, pearsonr_correlation, pls_regression)
    metric = CrossRegressedCorrelation(regression=pls_regression(), correlation=pearsonr_correlation(),
                                       crossvalidation_kwargs=dict(stratification_coord="object_name"))
    raw = metric(source, average_repetition(target))
    ceiling = InternalConsistency()(target)
    return float(raw.values), float(ceiling.values)


def main():
    import ventral
    from ventral import _ventral

    args = [int(a) for a in sys.argv[1:]]
    n, p, q, reps = (args + [2560, 25088, 168, 50][len(args):])[:4]
    reference = os.environ.get("BENCH_REFERENCE") == "1"

    # 1. The Python layer's cost: the full call on assemblies vs the bare extension call on
    #    arrays already prepared, same process, same data, best of 3.
    d = problem(n, p, q, reps)
    source, target = assemblies(d)
    t_py, s_py = timed(lambda: ventral.metrics.neural_predictivity(source, target), 3)
    stim_l, obj_l, rep_l = list(d["pres_stim"]), list(d["pres_obj"]), [int(r) for r in d["rep"]]
    src_l = list(d["stim"])

    def bare():
        r = _ventral.neural_predictivity(d["features"], src_l, d["values"], stim_l, obj_l, rep_l)
        c = _ventral.internal_consistency(d["values"], stim_l, rep_l)
        return r["center"], c["center"]

    t_rs, s_rs = timed(bare, 3)
    assert abs(s_rs[0] - s_py.value) < 1e-12 and abs(s_rs[1] - s_py.ceiling.value) < 1e-12
    print(f"python: neural_predictivity + ceiling, {n} stimuli x {p} features -> {q} neuroids, "
          f"{reps} repetitions: {t_py:.2f} s from xarray assemblies, {t_rs:.2f} s as a bare extension "
          f"call: the Python layer costs {100 * (t_py - t_rs) / t_rs:+.1f} % (best of 3 each)")

    # 2. Brain-Score's metric vs ours, same process, same assemblies.
    if reference:
        sizes = (n, p, q, reps)
    else:
        sizes = (min(n, 640), min(p, 2048), q, min(reps, 10))
    d2 = problem(*sizes)
    src2, tgt2 = assemblies(d2)
    t_bs, (r_bs, c_bs) = timed(lambda: brainscore_metric(src2, tgt2))
    t_v, s_v = timed(lambda: ventral.metrics.neural_predictivity(src2, tgt2))
    agree = max(abs(s_v.value - r_bs), abs(s_v.ceiling.value - c_bs))
    what = "full size" if reference else "a smaller problem; BENCH_REFERENCE=1 for full size (about 22 min)"
    print(f"python: Brain-Score 2.4.2's CrossRegressedCorrelation + InternalConsistency vs "
          f"ventral.metrics.neural_predictivity on {sizes[0]} x {sizes[1]} -> {sizes[2]}, {sizes[3]} "
          f"repetitions ({what}): {t_bs:.2f} s vs {t_v:.3f} s: {t_bs / t_v:.0f}x; "
          f"scores agree to {agree:.1e}")


if __name__ == "__main__":
    main()
