"""Drop-in replacements for Brain-Score's metric and ceiling classes (brainscore-vision 2.4),
computed by ventral's Rust crates.

Swap the import and keep the call::

    # from brainscore_vision.metrics.regression_correlation.metric import (
    #     CrossRegressedCorrelation, pls_regression, pearsonr_correlation)
    from ventral.brainscore import CrossRegressedCorrelation, pls_regression, pearsonr_correlation

    metric = CrossRegressedCorrelation(regression=pls_regression(), correlation=pearsonr_correlation(),
                                       crossvalidation_kwargs=dict(stratification_coord='object_name'))
    score = metric(source_assembly, target_assembly)   # same number, same attrs

The classes take the same arguments and the same assemblies and return Brain-Score's
``Score`` (from ``brainscore_core``, when it is installed; else :class:`ventral.Score`)
with ``attrs['error']`` and ``attrs['raw']`` as Brain-Score sets them. What ventral does not
implement (another regression, an unstratified split …) is refused with a ``ValueError``
rather than computed differently.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _ventral
from ._coords import coord, coords_on, has_coord, integers, is_xarray, labels, matrix
from .metrics import Score as _VScore

__all__ = [
    "CrossRegressedCorrelation",
    "pls_regression",
    "pearsonr_correlation",
    "InternalConsistency",
    "I2n",
    "OSTCorrelation",
]


def _bs_score(value: float, error: float, raw: Any, **attrs: Any):
    try:
        from brainscore_core.metrics import Score
    except ImportError:
        per = np.asarray(getattr(raw, "values", raw))
        per = per if per.ndim == 1 else np.nanmedian(per, axis=1)
        s = _VScore(value, error, per, raw)
        s.attrs.update(attrs)
        return s
    score = Score(value)
    score.attrs["error"] = error
    score.attrs["raw"] = raw
    score.attrs.update(attrs)
    return score


def _assembly(values: np.ndarray, dims, coords):
    try:
        from brainscore_core.supported_data_standards.brainio.assemblies import DataAssembly
        return DataAssembly(values, coords=coords, dims=dims)
    except ImportError:
        import xarray
        return xarray.DataArray(values, coords=coords, dims=dims)


def _neuroid_coords(target: Any) -> dict:
    if not is_xarray(target):
        return {}
    return {name: ("neuroid", values) for name, values in coords_on(target, "neuroid").items()}


class _Pls:
    def __init__(self, regression_kwargs: Optional[dict]):
        kw = dict(regression_kwargs or {})
        self.n_components = int(kw.pop("n_components", 25))
        if kw.pop("scale", False):
            raise ValueError("pls_regression: scale=True is not implemented by ventral (Brain-Score's default is scale=False)")
        if kw:
            raise ValueError(f"pls_regression: arguments ventral does not implement: {sorted(kw)}")


class _Pearson:
    pass


def pls_regression(regression_kwargs: Optional[dict] = None, xarray_kwargs: Optional[dict] = None) -> _Pls:
    """Brain-Score's ``pls_regression``: sklearn's PLSRegression (NIPALS, ``scale=False``),
    ``n_components`` 25 unless ``regression_kwargs`` says otherwise."""
    if xarray_kwargs:
        raise ValueError(f"pls_regression: xarray_kwargs are not implemented by ventral: {sorted(xarray_kwargs)}")
    return _Pls(regression_kwargs)


def pearsonr_correlation(xarray_kwargs: Optional[dict] = None) -> _Pearson:
    """Brain-Score's ``pearsonr_correlation``: Pearson r per neuroid."""
    if xarray_kwargs:
        raise ValueError(f"pearsonr_correlation: xarray_kwargs are not implemented by ventral: {sorted(xarray_kwargs)}")
    return _Pearson()


class CrossRegressedCorrelation:
    """``CrossRegressedCorrelation(regression, correlation, crossvalidation_kwargs)``: the
    regression fitted on the training stimuli of each split, the correlation per neuroid on
    the test stimuli, the median over neuroids, the mean over splits. ``regression`` must be
    :func:`pls_regression` (or ``None``, as Brain-Score defaults), ``correlation``
    :func:`pearsonr_correlation`. ``crossvalidation_kwargs``: ``splits`` (10),
    ``train_size`` (.9), ``random_state`` (1), ``stratification_coord`` (``object_name``:
    any presentation coordinate), ``split_coord`` (``stimulus_id`` only)."""

    def __init__(self, regression: Any = None, correlation: Any = None,
                 crossvalidation_kwargs: Optional[dict] = None):
        regression = regression if regression is not None else pls_regression()
        if not isinstance(regression, _Pls):
            raise ValueError("CrossRegressedCorrelation: ventral implements the PLS regression only "
                             "(ventral.brainscore.pls_regression())")
        if not isinstance(correlation, _Pearson):
            raise ValueError("CrossRegressedCorrelation: ventral implements Pearson correlation only "
                             "(ventral.brainscore.pearsonr_correlation())")
        kw = {"splits": 10, "train_size": 0.9, "test_size": None, "split_coord": "stimulus_id",
              "stratification_coord": "object_name", "random_state": 1}
        kw.update(crossvalidation_kwargs or {})
        unknown = set(kw) - {"splits", "train_size", "test_size", "split_coord",
                             "stratification_coord", "random_state"}
        if unknown:
            raise ValueError(f"crossvalidation_kwargs: ventral does not implement {sorted(unknown)}")
        if kw["test_size"] is not None:
            raise ValueError("crossvalidation_kwargs: test_size is not implemented (give train_size)")
        if kw["split_coord"] != "stimulus_id":
            raise ValueError(f"crossvalidation_kwargs: split_coord `{kw['split_coord']}`: only stimulus_id")
        if kw["stratification_coord"] is None:
            raise ValueError("crossvalidation_kwargs: unstratified splits are not implemented "
                             "(give a stratification_coord)")
        self.n_components = regression.n_components
        self.kwargs = kw

    def __call__(self, source: Any, target: Any):
        kw = self.kwargs
        src = matrix(source, ("presentation", "neuroid"), "source", np.float32)
        src_ids = labels(coord(source, "stimulus_id", "presentation", "source"), "source: stimulus_id",
                         src.shape[0])
        values = matrix(target, ("presentation", "neuroid"), "target", np.float64)
        n = values.shape[0]
        ids = labels(coord(target, "stimulus_id", "presentation", "target"), "target: stimulus_id", n)
        strat = kw["stratification_coord"]
        objects = labels(coord(target, strat, "presentation", "target"), f"target: {strat}", n)
        d = _ventral.neural_predictivity(
            src, src_ids, values, ids, objects, [0] * n, average=False,
            n_components=self.n_components, n_splits=int(kw["splits"]),
            train_size=float(kw["train_size"]), seed=int(kw["random_state"]),
        )
        raw = _assembly(d["raw"], ["split", "neuroid"],
                        {"split": np.arange(d["raw"].shape[0]), **_neuroid_coords(target)})
        return _bs_score(d["center"], d["error"], raw)


class InternalConsistency:
    """``InternalConsistency()``: split-half consistency over ``repetition`` (10 splits,
    halves of the repetitions), Spearman–Brown corrected, median over neuroids, mean over
    splits."""

    def __init__(self, aggregate: Any = None, split_coord: str = "repetition",
                 cross_validation_kwargs: Optional[dict] = None):
        if aggregate is not None:
            raise ValueError("InternalConsistency: a custom aggregate is not implemented by ventral")
        kw = {"splits": 10, "random_state": 1, "train_size": 0.5}
        kw.update(cross_validation_kwargs or {})
        if kw.pop("train_size") != 0.5 or set(kw) - {"splits", "random_state"}:
            raise ValueError(f"InternalConsistency: cross_validation_kwargs ventral does not implement: {cross_validation_kwargs}")
        self.split_coord = split_coord
        self.kwargs = kw

    def __call__(self, assembly: Any):
        values = matrix(assembly, ("presentation", "neuroid"), "assembly", np.float64)
        n = values.shape[0]
        ids = labels(coord(assembly, "stimulus_id", "presentation", "assembly"), "assembly: stimulus_id", n)
        reps = integers(coord(assembly, self.split_coord, "presentation", "assembly"),
                        f"assembly: {self.split_coord}", n)
        d = _ventral.internal_consistency(values, ids, reps, n_splits=int(self.kwargs["splits"]),
                                          seed=int(self.kwargs["random_state"]))
        raw = _assembly(d["raw"], ["split", "neuroid"],
                        {"split": np.arange(d["raw"].shape[0]), **_neuroid_coords(assembly)})
        return _bs_score(d["center"], d["error"], raw)


def _trial_labels(trials: Any):
    if not is_xarray(trials) or "presentation" not in trials.dims:
        raise ValueError("trials: an assembly with one trial per presentation is needed")
    n = trials.sizes["presentation"]
    get = lambda name: labels(coord(trials, name, "presentation", "trials"), f"trials: {name}", n)
    truth = get("truth") if has_coord(trials, "truth") else get("sample_obj")
    return get("stimulus_id"), get("sample_obj"), get("dist_obj"), get("choice"), truth


class I2n:
    """``I2n()``: ``metric(probabilities, trials)`` gives the mean over two split halves of the
    model–human correlation of normalised image-by-distractor d′ (``attrs['raw']``: per
    half); ``metric.ceiling(trials)`` the humans' split-half correlation."""

    def __init__(self, repetitions: int = 2, seed: int = 0):
        self.repetitions = repetitions
        self.seed = seed

    def _call(self, probabilities: Any, trials: Any) -> dict:
        p = matrix(probabilities, ("presentation", "choice"), "probabilities", np.float64)
        ids = labels(coord(probabilities, "stimulus_id", "presentation", "probabilities"),
                     "probabilities: stimulus_id", p.shape[0])
        choices = labels(coord(probabilities, "choice", "choice", "probabilities"),
                         "probabilities: choice", p.shape[1])
        return _ventral.i2n(p, ids, choices, *_trial_labels(trials),
                            repetitions=self.repetitions, seed=self.seed)

    def __call__(self, source: Any, target: Any):
        d = self._call(source, target)
        raw = np.asarray(d["raw"])
        return _bs_score(d["score"], d["score_error"],
                         _assembly(raw, ["split"], {"split": np.arange(len(raw))}))

    def ceiling(self, assembly: Any):
        """The split-half consistency of ``assembly``'s trials. Raises ``ValueError`` where
        a half lacks an (image, distractor) cell the other has (Brain-Score's assertion)."""
        stim, sample, dist, choice, truth = _trial_labels(assembly)
        images = sorted(set(stim))
        objects = sorted(set(sample) | set(dist) | set(truth))
        # The ceiling depends on the trials alone; any model will do for the call.
        p = np.full((len(images), len(objects)), 1.0 / len(objects))
        d = _ventral.i2n(p, images, objects, stim, sample, dist, choice, truth,
                         repetitions=self.repetitions, seed=self.seed)
        if d["ceiling"] is None:
            raise ValueError("I2n ceiling: a half of the trials lacks an (image, distractor) cell "
                             f"the other half has (too few trials per cell): {d['ceiling_error']}")
        raw = np.asarray(d["ceiling_raw"])
        return _bs_score(d["ceiling"], float(np.std(raw)),
                         _assembly(raw, ["split"], {"split": np.arange(len(raw))}))


class OSTCorrelation:
    """``OSTCorrelation()``: Kar2019's object solution times (a softmax readout per time bin
    trained as Brain-Score's TensorFlow one is, step for step), Spearman ρ against the
    monkeys' OSTs, mean over 10 splits. ``readout="converged"`` is ventral's own option."""

    def __init__(self, n_splits: int = 10, seed: int = 1, readout: str = "brain-score"):
        self.n_splits, self.seed, self.readout = n_splits, seed, readout

    def __call__(self, source: Any, target: Any):
        from .metrics import ost

        s = ost(source, target, n_splits=self.n_splits, seed=self.seed, readout=self.readout)
        return _bs_score(s.value, s.error,
                         _assembly(np.asarray(s.per_split), ["split"],
                                   {"split": np.arange(len(s.per_split))}))
