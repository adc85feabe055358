"""ventral's metrics against brainscore-vision 2.4.2's own classes, in the same process, on
generated Brain-Score assemblies (runs in the reference venv; skipped elsewhere)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import (behaviour_problem, brainscore_or_skip, neural_problem, xr_features,
                      xr_probabilities, xr_recordings, xr_trials)

os.environ.setdefault("BS_INSTALL_DEPENDENCIES", "no")

TOL = 1e-6


@pytest.fixture(scope="module")
def bs():
    brainscore_or_skip()
    from brainscore_core.supported_data_standards.brainio.assemblies import (BehavioralAssembly,
                                                                            NeuroidAssembly)
    from brainscore_vision.benchmark_helpers.neural_common import average_repetition
    from brainscore_vision.metrics.internal_consistency.ceiling import InternalConsistency
    from brainscore_vision.metrics.i1i2.metric import I2n
    from brainscore_vision.metrics.regression_correlation.metric import (
        CrossRegressedCorrelation, pearsonr_correlation, pls_regression)
    return dict(NeuroidAssembly=NeuroidAssembly, BehavioralAssembly=BehavioralAssembly,
                average_repetition=average_repetition, InternalConsistency=InternalConsistency,
                I2n=I2n, CrossRegressedCorrelation=CrossRegressedCorrelation,
                pls_regression=pls_regression, pearsonr_correlation=pearsonr_correlation)


def _raw_by_neuroid(score):
    raw = score.attrs["raw"]
    raw = raw.transpose("split", "neuroid")
    return {str(n): raw.values[:, i] for i, n in enumerate(raw["neuroid_id"].values)}


@pytest.mark.parametrize("seed,kw", [
    (1, {}),
    (2, dict(n_objects=5, per_object=12, n_neuroids=17, n_features=40)),
    (3, dict(nan_fraction=0.02)),
])
def test_cross_regressed_correlation_is_brainscores(bs, seed, kw):
    import ventral.brainscore as vb
    p = neural_problem(seed, **kw)
    source = xr_features(p, bs["NeuroidAssembly"])
    target = bs["average_repetition"](xr_recordings(p, bs["NeuroidAssembly"]))
    cv = dict(stratification_coord="object_name")
    want = bs["CrossRegressedCorrelation"](regression=bs["pls_regression"](),
                                           correlation=bs["pearsonr_correlation"](),
                                           crossvalidation_kwargs=cv)(source, target)
    got = vb.CrossRegressedCorrelation(regression=vb.pls_regression(),
                                       correlation=vb.pearsonr_correlation(),
                                       crossvalidation_kwargs=cv)(source, target)
    assert type(got).__name__ == "Score"
    assert abs(float(got.values) - float(want.values)) < TOL
    assert abs(float(got.attrs["error"]) - float(want.attrs["error"])) < TOL
    w, g = _raw_by_neuroid(want), _raw_by_neuroid(got)
    assert w.keys() == g.keys()
    for n in w:
        np.testing.assert_allclose(g[n], w[n], atol=TOL, rtol=0, equal_nan=True, err_msg=n)


def test_unsorted_averaged_target_splits_like_brainscore(bs):
    """The metric splits the target's rows in their order: a shuffled averaged target must
    give Brain-Score's number, not the sorted one's."""
    import ventral.brainscore as vb
    p = neural_problem(4)
    source = xr_features(p, bs["NeuroidAssembly"])
    target = bs["average_repetition"](xr_recordings(p, bs["NeuroidAssembly"]))
    target = target.isel(presentation=np.random.RandomState(0).permutation(target.sizes["presentation"]))
    args = dict(crossvalidation_kwargs=dict(stratification_coord="object_name"))
    want = bs["CrossRegressedCorrelation"](bs["pls_regression"](), bs["pearsonr_correlation"](), **args)(source, target)
    got = vb.CrossRegressedCorrelation(vb.pls_regression(), vb.pearsonr_correlation(), **args)(source, target)
    assert abs(float(got.values) - float(want.values)) < TOL


@pytest.mark.parametrize("seed", [5, 6])
def test_internal_consistency_is_brainscores(bs, seed):
    import ventral.brainscore as vb
    p = neural_problem(seed, reps=6, nan_fraction=0.01 if seed == 6 else 0.0)
    rec = xr_recordings(p, bs["NeuroidAssembly"])
    want = bs["InternalConsistency"]()(rec)
    got = vb.InternalConsistency()(rec)
    assert abs(float(got.values) - float(want.values)) < TOL
    w, g = _raw_by_neuroid(want), _raw_by_neuroid(got)
    for n in w:
        np.testing.assert_allclose(g[n], w[n], atol=TOL, rtol=0, equal_nan=True, err_msg=n)


def test_benchmark_level_neural_predictivity(bs):
    """``ventral.metrics.neural_predictivity`` on the raw recordings = Brain-Score's
    benchmark: average_repetition, the metric, the InternalConsistency ceiling."""
    import ventral
    p = neural_problem(7)
    rec = xr_recordings(p, bs["NeuroidAssembly"])
    source = xr_features(p, bs["NeuroidAssembly"])
    raw = bs["CrossRegressedCorrelation"](bs["pls_regression"](), bs["pearsonr_correlation"](),
                                          crossvalidation_kwargs=dict(stratification_coord="object_name"))(
        source, bs["average_repetition"](rec))
    ceiling = bs["InternalConsistency"]()(rec)
    got = ventral.metrics.neural_predictivity(source, rec)
    assert abs(got.value - float(raw.values)) < TOL
    assert abs(got.ceiling.value - float(ceiling.values)) < TOL
    assert abs(got.ceiled - float(raw.values) / float(ceiling.values)) < TOL
    got2 = ventral.metrics.neural_predictivity(source, rec, normalisation="r^2/c")
    assert abs(got2.ceiled - float(raw.values) ** 2 / float(ceiling.values)) < TOL


@pytest.mark.parametrize("seed", [11, 12])
def test_i2n_is_brainscores(bs, seed):
    import ventral.brainscore as vb
    b = behaviour_problem(seed)
    probs = xr_probabilities(b, bs["BehavioralAssembly"])
    trials = xr_trials(b, bs["BehavioralAssembly"])
    want = bs["I2n"]()(probs, trials)
    got = vb.I2n()(probs, trials)
    assert abs(float(got.values) - float(want.values)) < TOL
    np.testing.assert_allclose(np.asarray(got.attrs["raw"]), np.asarray(want.raw.values), atol=TOL)
    want_c = bs["I2n"]().ceiling(trials)
    got_c = vb.I2n().ceiling(trials)
    assert abs(float(got_c.values) - float(want_c.values)) < TOL


def test_i2n_ceiling_fails_where_brainscores_does(bs):
    """Four trials per (image, distractor): a random half misses a cell the other half has;
    Brain-Score's ceiling asserts there, ours raises naming the split and the cell."""
    import ventral.brainscore as vb
    trials = xr_trials(behaviour_problem(5, trials_per_image=20), bs["BehavioralAssembly"])
    with pytest.raises(AssertionError):
        bs["I2n"]().ceiling(trials)
    with pytest.raises(ValueError, match=r"split \d of 2 .*the cell"):
        vb.I2n().ceiling(trials)


def test_i2n_on_a_real_probabilities_file(bs, shared_data):
    """Brain-Score's own AlexNet probabilities (a real BrainIO file) against generated
    trials on its 240 images and 24 objects."""
    import ventral.brainscore as vb
    probs = bs["BehavioralAssembly"].from_files(str(shared_data / "brainio-netcdf" / "alexnet-probabilities.nc")).load()
    rng = np.random.RandomState(3)
    images = [str(s) for s in probs["stimulus_id"].values]
    choices = [str(c) for c in probs["choice"].values]
    truth = {s: choices[int(np.argmax(probs.values[i]))] if rng.rand() < 0.3 else choices[i % len(choices)]
             for i, s in enumerate(images)}
    b = {"trial_stimulus_id": [], "sample_obj": [], "dist_obj": [], "choice": []}
    for s in images:
        for t in range(30):
            dist = choices[(choices.index(truth[s]) + 1 + t % (len(choices) - 1)) % len(choices)]
            b["trial_stimulus_id"].append(s)
            b["sample_obj"].append(truth[s])
            b["dist_obj"].append(dist)
            b["choice"].append(truth[s] if rng.rand() < 0.8 else dist)
    b = {k: np.array(v, dtype=object) for k, v in b.items()}
    trials = xr_trials(b, bs["BehavioralAssembly"])
    want = bs["I2n"]()(probs, trials)
    got = vb.I2n()(probs, trials)
    assert abs(float(got.values) - float(want.values)) < TOL


def test_ost_is_brainscores(bs):
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        pytest.skip("Brain-Score's OSTCorrelation needs TensorFlow, which this venv lacks")
    from brainscore_core.supported_data_standards.brainio.assemblies import DataAssembly
    from brainscore_vision.metrics.ost.metric import OSTCorrelation
    import ventral.brainscore as vb
    # As crates/metrics/tests/crosscheck_ost.rs: each image's object signal switches on at
    # its own latency; the monkey's OST follows it (10 % never solved).
    rng = np.random.RandomState(21)
    n, k, p = 200, 5, 24
    bins = np.arange(70, 190, 20)
    ids = np.array([f"img{i:05d}" for i in range(n)], dtype=object)
    label = np.array([f"obj{i % k}" for i in range(n)], dtype=object)
    latency = 100 + 100 * rng.rand(n)
    dirs = rng.randn(k, p)
    on = 1 / (1 + np.exp(-(bins[None, :] + 5 - latency[:, None]) / 8))  # (n, bins)
    feats = (1.5 * on[:, None, :] * dirs[np.arange(n) % k][:, :, None]
             + rng.randn(n, p, len(bins))).astype(np.float32)
    monkey = np.where(rng.rand(n) < 0.1, np.nan, latency + 15 * rng.randn(n))
    source = bs["NeuroidAssembly"](feats, coords={
        "stimulus_id": ("presentation", ids), "image_label": ("presentation", label),
        "truth": ("presentation", label), "neuroid_id": ("neuroid", np.arange(p)),
        "time_bin_start": ("time_bin", bins.astype(np.int64)),
        "time_bin_end": ("time_bin", bins.astype(np.int64) + 10)},
        dims=["presentation", "neuroid", "time_bin"])
    target = DataAssembly(monkey, coords={
        "stimulus_id": ("presentation", ids), "image_label": ("presentation", label),
        "truth": ("presentation", label), "i1": ("presentation", 0.8 + 1.2 * rng.rand(n))},
        dims=["presentation"])
    want = OSTCorrelation()(source, target)
    got = vb.OSTCorrelation()(source, target)
    w, g = float(want.values), float(got.values)
    # The readouts agree to ~1e-7; an image whose I1 lands that close to its threshold can
    # flip its OST by a bin, so the score is held to the Rust cross-check's .02.
    assert abs(g - w) < 0.02, (g, w)


def test_average_repetition_is_brainscores(bs):
    import ventral
    p = neural_problem(8, nan_fraction=0.05)
    rec = xr_recordings(p, bs["NeuroidAssembly"])
    want = bs["average_repetition"](rec)
    got = ventral.metrics.average_repetition(rec)
    assert [str(s) for s in got["stimulus_id"].values] == [str(s) for s in want["stimulus_id"].values]
    np.testing.assert_allclose(got.values, want.transpose("presentation", "neuroid").values,
                               rtol=0, atol=1e-12, equal_nan=True)
