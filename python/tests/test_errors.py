"""Bad input is a Python exception with the Rust message, never a panic or an abort."""

from __future__ import annotations

import numpy as np
import pytest

import ventral
import ventral.brainscore as vb
from conftest import (behaviour_problem, neural_problem, xr_features, xr_probabilities,
                      xr_recordings, xr_trials)


def test_missing_coordinate_is_named():
    p = neural_problem(1)
    rec = xr_recordings(p).drop_vars("object_name")
    with pytest.raises(ValueError, match="object_name"):
        ventral.metrics.neural_predictivity(xr_features(p), rec)
    with pytest.raises(ValueError, match="repetition"):
        ventral.metrics.internal_consistency(xr_recordings(p).drop_vars("repetition"))


def test_wrong_dimensions_are_named():
    p = neural_problem(1)
    rec = xr_recordings(p).rename({"neuroid": "unit"})
    with pytest.raises(ValueError, match="unit"):
        ventral.metrics.neural_predictivity(xr_features(p), rec)
    three = xr_recordings(p).expand_dims(time_bin=[70, 170]).transpose("presentation", "neuroid", "time_bin")
    with pytest.raises(ValueError, match="time_bin"):
        ventral.metrics.neural_predictivity(xr_features(p), three)


def test_a_single_time_bin_is_squeezed():
    p = neural_problem(2)
    one = xr_recordings(p).expand_dims(time_bin=[70]).transpose("presentation", "neuroid", "time_bin")
    a = ventral.metrics.neural_predictivity(xr_features(p), one)
    b = ventral.metrics.neural_predictivity(xr_features(p), xr_recordings(p))
    assert a.value == b.value and a.ceiling.value == b.ceiling.value


def test_rust_errors_are_value_errors():
    p = neural_problem(3)
    feats = xr_features(p).isel(presentation=slice(0, 10))
    with pytest.raises(ValueError, match="source lacks"):
        ventral.metrics.neural_predictivity(feats, xr_recordings(p))
    rec = xr_recordings(p)
    with pytest.raises(ValueError, match="more than one presentation"):
        vb.CrossRegressedCorrelation(vb.pls_regression(), vb.pearsonr_correlation())(xr_features(p), rec)
    with pytest.raises(ValueError, match="two objects"):
        bad = rec.copy()
        objs = bad["object_name"].values.copy()
        objs[0] = "another"
        bad = bad.assign_coords(object_name=("presentation", objs))
        ventral.metrics.neural_predictivity(xr_features(p), bad)
    with pytest.raises(ValueError, match="component"):
        ventral.metrics.neural_predictivity(xr_features(p), rec, n_components=0)
    with pytest.raises(ValueError, match="missing label"):
        ventral.metrics.neural_predictivity(
            p["features"], p["responses"], source_stimulus_id=p["feature_stimulus_id"],
            stimulus_id=np.where(np.arange(len(p["stimulus_id"])) == 0, None, p["stimulus_id"]),
            object_name=p["object_name"], repetition=p["repetition"])


def test_numpy_inputs_equal_xarray_inputs():
    p = neural_problem(4)
    a = ventral.metrics.neural_predictivity(
        p["features"], p["responses"], source_stimulus_id=p["feature_stimulus_id"],
        stimulus_id=p["stimulus_id"], object_name=p["object_name"], repetition=p["repetition"])
    b = ventral.metrics.neural_predictivity(xr_features(p), xr_recordings(p))
    assert a.value == b.value and a.ceiled == b.ceiled
    # Non-contiguous and float64 features are accepted (copied once).
    c = ventral.metrics.neural_predictivity(
        np.asfortranarray(p["features"].astype(np.float64)), p["responses"],
        source_stimulus_id=p["feature_stimulus_id"], stimulus_id=p["stimulus_id"],
        object_name=p["object_name"], repetition=p["repetition"])
    assert c.value == a.value


def test_unimplemented_options_are_refused():
    with pytest.raises(ValueError, match="scale"):
        vb.pls_regression(dict(scale=True))
    with pytest.raises(ValueError, match="unstratified"):
        vb.CrossRegressedCorrelation(vb.pls_regression(), vb.pearsonr_correlation(),
                                     crossvalidation_kwargs=dict(stratification_coord=None))
    with pytest.raises(ValueError, match="Pearson"):
        vb.CrossRegressedCorrelation(vb.pls_regression(), object())
    with pytest.raises(ValueError, match="normalisation"):
        ventral.metrics.neural_predictivity(None, None, normalisation="r")


def test_bad_stores(tmp_path):
    with pytest.raises(OSError):
        ventral.open_assembly(tmp_path / "nothing-here")
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    with pytest.raises(ValueError, match="fake"):
        ventral.open_assembly(tmp_path / "fake")
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "zarr.json").write_text("{not json")
    with pytest.raises(ValueError, match="garbled"):
        ventral.open_assembly(tmp_path / "garbled")


def test_the_gil_is_released():
    """Two metric calls in two threads overlap (each releases the GIL while Rust works)."""
    import threading
    import time
    p = neural_problem(5, n_objects=10, per_object=20, n_features=300, n_neuroids=80)
    f, r = xr_features(p), xr_recordings(p)
    t0 = time.perf_counter()
    ventral.metrics.neural_predictivity(f, r, ceiling=False)
    one = time.perf_counter() - t0
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    th = threading.Thread(target=ticker)
    th.start()
    ventral.metrics.neural_predictivity(f, r, ceiling=False)
    stop.set()
    th.join()
    # With the GIL held for the whole call the ticker would not run during it.
    assert len(ticks) > max(3, one / 0.01), (len(ticks), one)


def test_a_ceiling_without_enough_trials_names_the_split_and_the_cell():
    # Four trials per (image, distractor): a random half of them misses cells the other has.
    b = behaviour_problem(5, trials_per_image=20)
    probs, trials = xr_probabilities(b), xr_trials(b)
    with pytest.raises(ValueError, match=r"split \d of 2 .*the cell \(image `img\d+`, choice `o\d`\)"):
        vb.I2n().ceiling(trials)
    with pytest.warns(UserWarning, match=r"I2n has no ceiling: split \d of 2"):
        s = ventral.metrics.i2n(probs, trials)
    assert s.ceiling is None and s.ceiled is None
