"""Brain-Score's metrics, computed by ventral's Rust crates (the same code as ``ventral run``).

Each function takes Brain-Score-shaped assemblies (``xarray.DataArray`` or one of
Brain-Score's ``NeuroidAssembly``/``BehavioralAssembly``, MultiIndex levels or plain
coordinates), or numpy arrays with their coordinates passed as keywords, and returns a
:class:`Score`. The GIL is released while Rust computes.

===========================  ===================================================
``neural_predictivity``      ``CrossRegressedCorrelation(pls_regression(), pearsonr_correlation())``
                             with MajajHong2015's ``stratification_coord='object_name'``
``internal_consistency``     ``InternalConsistency()`` (the neural ceiling)
``i2n``                      ``I2n()`` and its split-half ceiling (Rajalingham2018)
``ost``                      ``OSTCorrelation()`` (Kar2019), ceiling .79
===========================  ===================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence
import warnings

import numpy as np

from . import _ventral
from ._coords import coord, coords_on, has_coord, integers, is_xarray, labels, matrix

__all__ = [
    "Score",
    "neural_predictivity",
    "internal_consistency",
    "average_repetition",
    "i2n",
    "ost",
    "NORMALISATIONS",
]

#: How a raw score ``r`` is normalised by its ceiling ``c``: the 2019 paper's ``r/c``,
#: ``(r/c)^2``, and Brain-Score's current explained variance ``r^2/c``.
NORMALISATIONS = {
    "r/c": lambda r, c: r / c,
    "(r/c)^2": lambda r, c: (r / c) ** 2,
    "r^2/c": lambda r, c: r * r / c,
}


@dataclass(frozen=True)
class Score:
    """A cross-validated score, with what Brain-Score's ``Score`` carries.

    ``value`` is the score (Brain-Score's ``score.values``), ``error`` its error
    (``score.attrs['error']``), ``per_split`` the value of each split, ``raw`` the
    per-split values before aggregation (``score.attrs['raw']``: split × neuroid for the
    neural metrics), ``ceiling`` the ceiling's own :class:`Score` when one was computed,
    and ``ceiled`` the score normalised by it.
    """

    value: float
    error: float
    per_split: np.ndarray
    raw: Any = None
    ceiling: Optional["Score"] = None
    ceiled: Optional[float] = None
    attrs: dict = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        s = f"Score({self.value:.6g} ± {self.error:.3g}, {len(self.per_split)} splits"
        if self.ceiling is not None:
            s += f", ceiling {self.ceiling.value:.6g}"
        if self.ceiled is not None:
            s += f", ceiled {self.ceiled:.6g}"
        return s + ")"


def _neuroid_ids(target: Any, n: int) -> np.ndarray:
    if is_xarray(target) and has_coord(target, "neuroid_id"):
        return np.asarray(target["neuroid_id"].values)
    return np.arange(n)


def _raw(values: np.ndarray, neuroid_id: np.ndarray) -> Any:
    try:
        import xarray
    except ImportError:  # pragma: no cover
        return values
    return xarray.DataArray(
        values,
        dims=["split", "neuroid"],
        coords={"split": np.arange(values.shape[0]), "neuroid_id": ("neuroid", neuroid_id)},
    )


def _score(d: dict, neuroid_id: Optional[np.ndarray] = None) -> Score:
    raw = d.get("raw")
    if raw is not None and neuroid_id is not None:
        raw = _raw(raw, neuroid_id)
    return Score(value=d["center"], error=d["error"], per_split=d["per_split"], raw=raw)


def _recordings(target: Any, what: str, stimulus_id=None, object_name=None, repetition=None,
                need_objects: bool = True):
    values = matrix(target, ("presentation", "neuroid"), what, np.float64)
    n = values.shape[0]
    if is_xarray(target):
        if stimulus_id is None:
            stimulus_id = coord(target, "stimulus_id", "presentation", what)
        if object_name is None and need_objects:
            object_name = coord(target, "object_name", "presentation", what)
        if repetition is None and has_coord(target, "repetition"):
            repetition = coord(target, "repetition", "presentation", what)
    ids = labels(stimulus_id, f"{what}: stimulus_id", n)
    objects = labels(object_name, f"{what}: object_name", n) if need_objects else [""] * n
    reps = integers(repetition, f"{what}: repetition", n) if repetition is not None else [0] * n
    return values, ids, objects, reps


def neural_predictivity(
    source: Any,
    target: Any,
    *,
    ceiling: Optional[bool] = None,
    normalisation: str = "r/c",
    n_components: int = 25,
    n_splits: int = 10,
    train_size: float = 0.9,
    seed: int = 1,
    source_stimulus_id: Optional[Sequence] = None,
    stimulus_id: Optional[Sequence] = None,
    object_name: Optional[Sequence] = None,
    repetition: Optional[Sequence] = None,
) -> Score:
    """PLS neural predictivity of ``source`` (model features, presentation × neuroid) for
    ``target`` (recordings, presentation × neuroid), as Brain-Score's MajajHong2015
    benchmarks compute it.

    Repetitions of a stimulus in ``target`` are averaged first (``average_repetition``).
    The splits are ``StratifiedShuffleSplit(n_splits, train_size, random_state=seed)`` over
    the stimuli, stratified by ``object_name``; per split, PLS with ``n_components``
    components fitted on the training stimuli, Pearson r per neuroid on the test stimuli and
    the median over neuroids; the score is the mean over splits.

    With ``ceiling`` (default: when ``target`` has two or more repetitions), the
    internal-consistency ceiling of ``target`` is computed too and the score normalised by
    it (``normalisation``: ``r/c`` as the paper did, ``(r/c)^2``, or ``r^2/c``).
    Numpy inputs take their labels from the keyword arguments.
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation `{normalisation}`: one of {', '.join(NORMALISATIONS)}")
    src = matrix(source, ("presentation", "neuroid"), "source", np.float32)
    if source_stimulus_id is None:
        if not is_xarray(source):
            raise ValueError("source: numpy features need source_stimulus_id=")
        source_stimulus_id = coord(source, "stimulus_id", "presentation", "source")
    src_ids = labels(source_stimulus_id, "source: stimulus_id", src.shape[0])
    values, ids, objects, reps = _recordings(target, "target", stimulus_id, object_name, repetition)
    d = _ventral.neural_predictivity(
        src, src_ids, values, ids, objects, reps,
        n_components=n_components, n_splits=n_splits, train_size=train_size, seed=seed,
    )
    score = _score(d, _neuroid_ids(target, values.shape[1]))
    if ceiling is None:
        ceiling = len(set(reps)) >= 2
    if not ceiling:
        return score
    c = _score(_ventral.internal_consistency(values, ids, reps, n_splits=10, seed=1),
               _neuroid_ids(target, values.shape[1]))
    ceiled = NORMALISATIONS[normalisation](score.value, c.value)
    return Score(score.value, score.error, score.per_split, score.raw, c, ceiled,
                 {"normalisation": normalisation})


def internal_consistency(
    recordings: Any,
    *,
    n_splits: int = 10,
    seed: int = 1,
    stimulus_id: Optional[Sequence] = None,
    repetition: Optional[Sequence] = None,
) -> Score:
    """Brain-Score's ``InternalConsistency`` ceiling of ``recordings`` (presentation ×
    neuroid, with ``stimulus_id`` and ``repetition``): ``ShuffleSplit(n_splits,
    train_size=.5, random_state=seed)`` over the repetitions, each half averaged per
    stimulus, Pearson r per neuroid, Spearman–Brown, median over neuroids, mean over splits.
    """
    values, ids, _, reps = _recordings(recordings, "recordings", stimulus_id, None, repetition,
                                       need_objects=False)
    if repetition is None and not (is_xarray(recordings) and has_coord(recordings, "repetition")):
        raise ValueError("recordings: no coordinate `repetition` on dimension `presentation`")
    d = _ventral.internal_consistency(values, ids, reps, n_splits=n_splits, seed=seed)
    return _score(d, _neuroid_ids(recordings, values.shape[1]))


def average_repetition(recordings: Any, *, stimulus_id=None, object_name=None, repetition=None):
    """Average ``recordings`` over repetitions per stimulus (NaN-skipping), rows in ascending
    ``stimulus_id``: an ``xarray.DataArray`` (presentation × neuroid) with ``stimulus_id``
    and ``object_name``, and the neuroid coordinates of the input."""
    import xarray

    values, ids, objects, reps = _recordings(recordings, "recordings", stimulus_id, object_name,
                                             repetition)
    d = _ventral.average_repetition(values, ids, objects, reps)
    coords = {"stimulus_id": ("presentation", np.array(d["stimulus_id"], dtype=object)),
              "object_name": ("presentation", np.array(d["object_name"], dtype=object))}
    if is_xarray(recordings):
        for name, values in coords_on(recordings, "neuroid").items():
            coords[name] = ("neuroid", values)
    return xarray.DataArray(d["values"], dims=["presentation", "neuroid"], coords=coords)


def i2n(
    probabilities: Any,
    trials: Any,
    *,
    repetitions: int = 2,
    seed: int = 0,
) -> Score:
    """Rajalingham2018's I2n of a model's ``probabilities`` (presentation × choice, with
    ``stimulus_id`` and ``choice`` coordinates) against 2-AFC ``trials`` (one per
    presentation, with ``stimulus_id``, ``sample_obj``, ``dist_obj``, ``choice`` and
    optionally ``truth``, else ``sample_obj``).

    ``value`` is the mean over the ``repetitions`` split halves of the model–human
    correlation (``raw``, one per repetition); ``ceiling`` the humans' split-half
    correlation (``None`` when a half lacks a cell, where Brain-Score's assertion fails:
    a warning then names the split and the cell); ``ceiled`` the mean over repetitions of
    r / √ceiling.
    """
    p = matrix(probabilities, ("presentation", "choice"), "probabilities", np.float64)
    if is_xarray(probabilities):
        p_ids = coord(probabilities, "stimulus_id", "presentation", "probabilities")
        choices = coord(probabilities, "choice", "choice", "probabilities")
    else:
        raise ValueError("probabilities: an xarray assembly with `stimulus_id` and `choice` is needed")
    if not is_xarray(trials):
        raise ValueError("trials: an xarray assembly with one trial per presentation is needed")
    n = trials.sizes.get("presentation")
    if n is None:
        raise ValueError(f"trials: a `presentation` dimension is needed; it has {tuple(trials.dims)}")
    get = lambda name: labels(coord(trials, name, "presentation", "trials"), f"trials: {name}", n)
    truth = get("truth") if has_coord(trials, "truth") else get("sample_obj")
    d = _ventral.i2n(
        p, labels(p_ids, "probabilities: stimulus_id", p.shape[0]),
        labels(choices, "probabilities: choice", p.shape[1]),
        get("stimulus_id"), get("sample_obj"), get("dist_obj"), get("choice"), truth,
        repetitions=repetitions, seed=seed,
    )
    c = None
    if d["ceiling"] is not None:
        raw = np.asarray(d["ceiling_raw"])
        c = Score(d["ceiling"], float(np.std(raw)), raw, raw)
    else:
        warnings.warn(f"I2n has no ceiling: {d['ceiling_error']}", stacklevel=2)
    return Score(d["score"], d["score_error"], np.asarray(d["raw"]), np.asarray(d["raw"]), c,
                 d["ceiled"])


def ost(
    source: Any,
    target: Any,
    *,
    n_splits: int = 10,
    seed: int = 1,
    readout: str = "brain-score",
) -> Score:
    """Kar2019's object solution times: ``source`` is the model's features (presentation ×
    neuroid × time_bin, with ``stimulus_id``, ``image_label`` or ``truth``, and
    ``time_bin_start``); ``target`` the monkeys' OST per image (presentation, with
    ``stimulus_id`` and ``i1``). ``readout="converged"`` trains the readout to
    convergence instead of Brain-Score's 40 Adam epochs. The ceiling is fixed at .79.
    """
    if not (is_xarray(source) and is_xarray(target)):
        raise ValueError("ost: source and target must be xarray assemblies")
    t_ids = labels(coord(target, "stimulus_id", "presentation", "target"), "target: stimulus_id")
    s_ids = labels(coord(source, "stimulus_id", "presentation", "source"), "source: stimulus_id")
    index = {s: i for i, s in enumerate(s_ids)}
    if len(index) != len(s_ids):
        raise ValueError("source: a stimulus_id appears twice")
    missing = [s for s in t_ids if s not in index]
    if missing:
        raise ValueError(f"source lacks {len(missing)} of the {len(t_ids)} target stimuli "
                         f"(first: `{missing[0]}`)")
    label_name = "image_label" if has_coord(source, "image_label") else "truth"
    feats = matrix(source, ("time_bin", "presentation", "neuroid"), "source", np.float64)
    order = np.array([index[s] for s in t_ids])
    feats = np.ascontiguousarray(feats[:, order, :])
    lab = labels(coord(source, label_name, "presentation", "source"), f"source: {label_name}")
    lab = [lab[i] for i in order]
    starts = np.asarray(coord(source, "time_bin_start", "time_bin", "source"), dtype=np.float64)
    target_values = np.asarray(target.values, dtype=np.float64)
    i1 = np.asarray(coord(target, "i1", "presentation", "target"), dtype=np.float64)
    d = _ventral.ost(feats, [float(s) for s in starts], lab, target_values.tolist(), i1.tolist(),
                     n_splits=n_splits, seed=seed, readout=readout)
    ceiling = Score(d["ceiling"], 0.0, np.array([d["ceiling"]]))
    per = np.asarray(d["per_split"])
    return Score(d["score"], d["error"], per, per, ceiling, d["ceiled"],
                 {"model_ost": np.asarray(d["model_ost"]), "pairs": list(d["pairs"])})
