#!/usr/bin/env python3
"""Reference outputs from Brain-Score's own metric code, for cross-checking the Rust port.

Protocol: read ONE JSON request from stdin, write ONE JSON response to stdout, exit 0.
On failure: {"error": "...", "traceback": "..."} on stdout and exit status 1.
Floats are written with 17 significant digits (round-trip exact); NaN and +-inf are written
as null. Everything else (progress bars, warnings) goes to stderr.

Run it with the cross-check venv's python (see crosscheck/README.md):
    echo '{"op":"permutation","seed":1,"n":10}' | ~/.cache/ventral/venv-crosscheck/bin/python reference.py

Ops: permutation, random_sample, randint32, shuffle_split, stratified_shuffle_split, pls,
neural, i2n, ost, versions.
"""
import os

# Without this, brainscore_vision's load_metric()/load_* try to pip-install each plugin's
# requirements.txt (torch, tensorflow, ...) on first use.
os.environ.setdefault('BS_INSTALL_DEPENDENCIES', 'no')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import contextlib
import io
import json
import logging
import math
import sys
import traceback
import warnings

import numpy as np

warnings.filterwarnings('ignore')
logging.basicConfig(stream=sys.stderr, level=logging.WARNING)


# ----------------------------------------------------------------------------------------
# JSON output with exact floats

def _dump(obj, out):
    if obj is None:
        out.append('null')
    elif isinstance(obj, (bool, np.bool_)):
        out.append('true' if obj else 'false')
    elif isinstance(obj, (int, np.integer)):
        out.append(str(int(obj)))
    elif isinstance(obj, (float, np.floating)):
        x = float(obj)
        out.append(format(x, '.17g') if math.isfinite(x) else 'null')
    elif isinstance(obj, str):
        out.append(json.dumps(obj))
    elif isinstance(obj, dict):
        out.append('{')
        for i, (k, v) in enumerate(obj.items()):
            if i:
                out.append(',')
            out.append(json.dumps(str(k)))
            out.append(':')
            _dump(v, out)
        out.append('}')
    elif isinstance(obj, np.ndarray):
        _dump(obj.tolist(), out)
    elif isinstance(obj, (list, tuple)):
        out.append('[')
        for i, v in enumerate(obj):
            if i:
                out.append(',')
            _dump(v, out)
        out.append(']')
    elif hasattr(obj, 'values') and isinstance(getattr(obj, 'values'), np.ndarray):  # xarray
        _dump(obj.values, out)
    elif isinstance(obj, bytes):
        out.append(json.dumps(obj.decode()))
    else:
        raise TypeError(f"cannot serialize {type(obj)}")


def dumps(obj):
    out = []
    _dump(obj, out)
    return ''.join(out)


def _size(value):
    """train_size / test_size as sklearn wants them: int counts stay int, fractions float."""
    if value is None:
        return None
    if isinstance(value, float) and value >= 1 and value.is_integer():
        # JSON "9.0" -> float; sklearn treats floats as fractions and rejects >= 1.0
        return int(value)
    return value


def _load_npz(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _str(values):
    return np.asarray([str(v) for v in np.asarray(values).tolist()], dtype=object)


# ----------------------------------------------------------------------------------------
# numpy RandomState / sklearn splitters

def op_permutation(req):
    return {'result': np.random.RandomState(req['seed']).permutation(int(req['n']))}


def op_random_sample(req):
    return {'result': np.random.RandomState(req['seed']).random_sample(int(req['n']))}


def op_randint32(req):
    # randint over the full 32-bit range: numpy's legacy bounded-int code returns the raw
    # MT19937 genrand_int32 output when rng == 0xFFFFFFFF (no masking, no rejection).
    rs = np.random.RandomState(req['seed'])
    return {'result': rs.randint(0, 2 ** 32, size=int(req['n']), dtype=np.uint32).astype(np.uint64)}


def _splits(splitter, *args):
    return {'splits': [{'train': train, 'test': test} for train, test in splitter.split(*args)]}


def op_shuffle_split(req):
    from sklearn.model_selection import ShuffleSplit
    splitter = ShuffleSplit(n_splits=req.get('n_splits', 10), train_size=_size(req.get('train_size')),
                            test_size=_size(req.get('test_size')), random_state=req.get('seed'))
    return _splits(splitter, np.zeros(int(req['n'])))


def op_stratified_shuffle_split(req):
    from sklearn.model_selection import StratifiedShuffleSplit
    y = np.asarray(req['y'])
    splitter = StratifiedShuffleSplit(n_splits=req.get('n_splits', 10), train_size=_size(req.get('train_size')),
                                      test_size=_size(req.get('test_size')), random_state=req.get('seed'))
    return _splits(splitter, np.zeros(len(y)), y)


# ----------------------------------------------------------------------------------------
# PLS

def op_pls(req):
    from sklearn.cross_decomposition import PLSRegression
    dtype = np.dtype(req.get('dtype', 'float64'))  # dtype of X / X_test as handed to sklearn
    X = np.asarray(req['X'], dtype=dtype)
    Y = np.asarray(req['Y'], dtype=np.float64)
    kwargs = dict(n_components=req.get('n_components', 25), scale=req.get('scale', False))
    for k in ('max_iter', 'tol'):
        if k in req:
            kwargs[k] = req[k]
    pls = PLSRegression(**kwargs)
    pls.fit(X, Y)
    result = {
        'x_mean': pls._x_mean, 'y_mean': pls._y_mean,
        'x_weights_': pls.x_weights_, 'y_weights_': pls.y_weights_,
        'x_loadings_': pls.x_loadings_, 'y_loadings_': pls.y_loadings_,
        'x_scores_': pls.x_scores_, 'y_scores_': pls.y_scores_,
        'x_rotations_': pls.x_rotations_,
        'coef_': pls.coef_,  # (n_targets, n_features) in scikit-learn >= 1.3
        'coef_shape': list(pls.coef_.shape),
        'intercept_': pls.intercept_,
        'n_iter_': list(pls.n_iter_),
    }
    if 'X_test' in req:
        result['predictions'] = pls.predict(np.asarray(req['X_test'], dtype=dtype))
    return result


# ----------------------------------------------------------------------------------------
# Neural predictivity (MajajHong2015-style) + internal-consistency ceiling

def build_source_assembly(npz):
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
    features = npz['features']
    n_stim, n_feat = features.shape
    coords = {'stimulus_id': ('presentation', _str(npz['stimulus_id'])),
              'object_name': ('presentation', _str(npz['object_name'])),
              'neuroid_num': ('neuroid', np.arange(n_feat)),
              'neuroid_id': ('neuroid', npz['neuroid_id'] if 'neuroid_id' in npz
                             else np.array([f'feature.{i}' for i in range(n_feat)], dtype=object))}
    return NeuroidAssembly(features, coords=coords, dims=['presentation', 'neuroid'])


def build_target_assembly(npz):
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
    responses = npz['responses']
    n_pres, n_neuroid = responses.shape
    neuroid_id = _str(npz['neuroid_id']) if 'neuroid_id' in npz else \
        np.array([f'n{i:05d}' for i in range(n_neuroid)], dtype=object)
    coords = {'stimulus_id': ('presentation', _str(npz['stimulus_id'])),
              'object_name': ('presentation', _str(npz['object_name'])),
              'repetition': ('presentation', np.asarray(npz['repetition']).astype(np.int64)),
              'neuroid_id': ('neuroid', neuroid_id),
              'region': ('neuroid', _str(npz['region']) if 'region' in npz else np.array(['IT'] * n_neuroid, dtype=object))}
    # like MajajHong2015's load_assembly: (presentation, neuroid), time_bin squeezed away
    return NeuroidAssembly(responses, coords=coords, dims=['presentation', 'neuroid'])


def _score_summary(score, aggregate_dim='neuroid'):
    raw = score.attrs['raw']  # (split, neuroid)
    raw = raw.transpose('split', aggregate_dim)
    per_split = raw.median(dim=aggregate_dim)  # xarray median: skips NaN
    return {
        'center': float(score.values),
        'error': float(score.attrs['error']) if 'error' in score.attrs else None,
        'per_split': per_split.values,
        'raw': raw.values,  # (split, neuroid) in raw['neuroid_id'] order
        'neuroid_id': [str(v) for v in raw['neuroid_id'].values],
    }


def op_neural(req):
    from brainscore_vision.metrics.regression_correlation.metric import (
        CrossRegressedCorrelation, pls_regression, pearsonr_correlation)
    from brainscore_vision.metrics.internal_consistency.ceiling import InternalConsistency
    from brainscore_vision.benchmark_helpers.neural_common import average_repetition, explained_variance

    # benchmarks/majajhong2015/benchmark.py:
    #   crossvalidation_kwargs = dict(stratification_coord='object_name')
    # CrossRegressedCorrelation adds train_size=.9, test_size=None; Split.Defaults: splits=10,
    # split_coord='stimulus_id', random_state=1  ->  StratifiedShuffleSplit(10, train_size=.9, random_state=1)
    crossvalidation_kwargs = dict(stratification_coord='object_name')
    crossvalidation_kwargs.update(req.get('crossvalidation_kwargs', {}))
    regression_kwargs = req.get('regression_kwargs')  # default n_components=25, scale=False

    source = build_source_assembly(_load_npz(req['source_npz']))
    target_repetitions = build_target_assembly(_load_npz(req['target_npz']))
    target = average_repetition(target_repetitions)

    result = {'averaged_stimulus_id': [str(v) for v in target['stimulus_id'].values],
              'averaged_responses': target.values if req.get('return_averaged', False) else None}
    if req.get('score', True):
        metric = CrossRegressedCorrelation(regression=pls_regression(regression_kwargs),
                                           correlation=pearsonr_correlation(),
                                           crossvalidation_kwargs=crossvalidation_kwargs)
        score = metric(source, target)
        result['score'] = _score_summary(score)
    if req.get('ceiling', True):
        ceiling = InternalConsistency()(target_repetitions)
        result['ceiling'] = _score_summary(ceiling)
    if 'score' in result and 'ceiling' in result:
        r, c = result['score']['center'], result['ceiling']['center']
        result['ceiled'] = {
            'explained_variance': float(explained_variance(score, ceiling).values),  # r^2/c (current Brain-Score)
            'r_over_c': r / c,  # 2019 paper
            'r_over_c_squared': (r / c) ** 2,
        }
    return result


# ----------------------------------------------------------------------------------------
# Behaviour: Rajalingham2018 I2n

def build_probabilities_assembly(npz):
    from brainscore_core.supported_data_standards.brainio.assemblies import BehavioralAssembly
    stimulus_id = _str(npz['stimulus_id'])
    # two presentation coords as in the shipped *-probabilities.nc files: with a single coord,
    # DataAssembly's gather_indexes would turn it into the plain dimension index and
    # `assembly['stimulus_id']` would no longer exist
    return BehavioralAssembly(np.asarray(npz['probabilities']),
                              coords={'stimulus_id': ('presentation', stimulus_id),
                                      'image_id': ('presentation', stimulus_id),
                                      'choice': ('choice', _str(npz['choice']))},
                              dims=['presentation', 'choice'])


def build_trials_assembly(npz):
    """Human trials: one value per trial = the chosen object (as in Rajalingham2018.private)."""
    from brainscore_core.supported_data_standards.brainio.assemblies import BehavioralAssembly
    choice = _str(npz['choice'])
    sample_obj = _str(npz['sample_obj'])
    truth = _str(npz['truth']) if 'truth' in npz else sample_obj
    coords = {'stimulus_id': ('presentation', _str(npz['stimulus_id'])),
              'sample_obj': ('presentation', sample_obj),
              'dist_obj': ('presentation', _str(npz['dist_obj'])),
              'choice': ('presentation', choice),
              'truth': ('presentation', truth)}
    assembly = BehavioralAssembly(choice, coords=coords, dims=['presentation'])
    # benchmarks/rajalingham2018 load_assembly adds this coord
    assembly['correct'] = assembly['choice'] == assembly['sample_obj']
    return assembly


def op_i2n(req):
    from brainscore_vision.metrics.i1i2.metric import I2n
    if 'probabilities_nc' in req:  # e.g. metrics/i1i2/test_resources/alexnet-probabilities.nc
        from brainscore_core.supported_data_standards.brainio.assemblies import BehavioralAssembly
        probabilities = BehavioralAssembly.from_files(req['probabilities_nc'])
        probabilities = probabilities.load()
    else:
        probabilities = build_probabilities_assembly(_load_npz(req['probabilities_npz']))
    trials = build_trials_assembly(_load_npz(req['trials_npz']))

    metric = I2n()
    score = metric(probabilities, trials)
    result = {
        'score': float(score.values), 'score_error': float(score.attrs['error']),  # error = std over splits
        'raw': score.raw.values,  # per split (2)
    }
    try:
        ceiling = I2n().ceiling(trials)
    except AssertionError:
        # I2n.ceiling correlates the two human halves with skipna=False and asserts that half 1
        # has no NaN cell where half 2 has a value (an (image, object) pair absent from one half)
        result['ceiling'] = None
        result['ceiling_failure'] = 'AssertionError in I2n.correlate: NaN cell in human half 1 ' \
                                    'where half 2 has a value (too few trials per (image, distractor))'
    else:
        # benchmarks/rajalingham2018 ceil_score: per split r / sqrt(ceiling), then mean over splits
        per_split_ceiled = score.raw.values / np.sqrt(ceiling.raw.values)
        result.update({
            'ceiling': float(ceiling.values), 'ceiling_error': float(ceiling.attrs['error']),
            'ceiling_raw': ceiling.raw.values,
            'ceiled': float(np.mean(per_split_ceiled)), 'ceiled_raw': per_split_ceiled,
        })
    if req.get('return_matrices', False):
        # the model's normalised I2n d' matrix (stimulus_id x choice), as the metric builds it
        i2n = I2n()
        i2n.add_source_meta(probabilities, trials)
        m = i2n.dprimes(i2n.target_distractor_scores(probabilities))
        m = m.sortby('stimulus_id').sortby('choice')
        result['model_dprimes'] = {'stimulus_id': [str(s) for s in m['stimulus_id'].values],
                                   'choice': [str(c) for c in m['choice'].values],
                                   'values': m.transpose('presentation', 'choice').values}
    return result


def op_logistic(req):
    """Brain-Score's behavioural readout, as ProbabilitiesMapping.ProbabilitiesClassifier does
    it (brainscore_vision/model_helpers/brain_transformation/behavior.py): StandardScaler, then
    LogisticRegression(multi_class='multinomial', solver='newton-cg', C=c); labels indexed in
    order of first appearance."""
    import sklearn.linear_model
    import sklearn.preprocessing
    from collections import OrderedDict
    npz = _load_npz(req['npz'])
    labels = _str(npz['y'])
    mapping = OrderedDict()
    for l in labels:
        mapping.setdefault(l, len(mapping))
    y = np.array([mapping[l] for l in labels])
    scaler = sklearn.preprocessing.StandardScaler().fit(npz['x'])
    # `tol` defaults to sklearn's (Brain-Score's); a tiny tol gives the converged optimum.
    clf = sklearn.linear_model.LogisticRegression(multi_class='multinomial', solver='newton-cg',
                                                  C=req.get('c', 1e-3), tol=req.get('tol', 1e-4),
                                                  max_iter=req.get('max_iter', 100))
    clf.fit(scaler.transform(npz['x']), y)
    proba = clf.predict_proba(scaler.transform(npz['x_test']))
    return {'classes': list(mapping.keys()), 'proba': proba}


# ----------------------------------------------------------------------------------------
# Object solution times: Kar2019 OST (needs TensorFlow)

def op_ost(req):
    try:
        import tensorflow  # noqa: F401  (OSTCorrelation's TFProbabilitiesClassifier is tf.compat.v1)
    except ImportError as e:
        raise RuntimeError("OSTCorrelation needs TensorFlow (its classifier is a tf.compat.v1 graph: "
                           "one linear layer + softmax, Adam); install tensorflow-cpu into this venv "
                           f"(see crosscheck/README.md): {e}")
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly, DataAssembly
    from brainscore_vision.metrics.ost.metric import OSTCorrelation
    src = _load_npz(req['source_npz'])
    tgt = _load_npz(req['target_npz'])
    features = src['features']  # (n_stim, n_feat, n_bins)
    n_stim, n_feat, n_bins = features.shape
    label = _str(src['image_label'])
    source = NeuroidAssembly(features, coords={
        'stimulus_id': ('presentation', _str(src['stimulus_id'])),
        'image_label': ('presentation', label),
        'truth': ('presentation', label),  # Kar2019 benchmark: stimulus_set['truth'] = image_label
        'neuroid_id': ('neuroid', np.arange(n_feat)),
        'time_bin_start': ('time_bin', np.asarray(src['time_bin_start']).astype(np.int64)),
        'time_bin_end': ('time_bin', np.asarray(src['time_bin_end']).astype(np.int64)),
    }, dims=['presentation', 'neuroid', 'time_bin'])
    tlabel = _str(tgt['image_label'])
    target = DataAssembly(np.asarray(tgt['ost'], dtype=np.float64), coords={
        'stimulus_id': ('presentation', _str(tgt['stimulus_id'])),
        'image_label': ('presentation', tlabel),
        'truth': ('presentation', tlabel),
        'i1': ('presentation', np.asarray(tgt['i1'], dtype=np.float64)),
    }, dims=['presentation'])
    metric = OSTCorrelation()
    splits = []
    compute_osts = metric.compute_osts

    def recording_compute_osts(train_source, test_source, test_osts):  # keep per-image predictions
        predicted = compute_osts(train_source, test_source, test_osts)
        splits.append({'stimulus_id': [str(v) for v in test_osts['stimulus_id'].values],
                       'predicted_ost': predicted, 'target_ost': test_osts.values})
        return predicted

    metric.compute_osts = recording_compute_osts
    score = metric(source, target)
    raw = score.attrs['raw']
    # Kar2019 benchmark: ceil_score(score, Score(.79)) = score / .79
    return {'score': float(score.values), 'error': float(score.attrs['error']),
            'per_split': raw.values, 'ceiled': float(score.values) / .79, 'splits': splits}


# ----------------------------------------------------------------------------------------
# Layer commitment: Brain-Score's own LayerSelection (its LayerScores over every candidate
# layer, each wrapped as a LayerMappedModel and scored by a NeuralBenchmark) on precomputed
# activations; and sklearn's PCA as LayerPCA applies it.

def op_layer_selection(req):
    import importlib.util
    import os
    import types
    os.environ['RESULTCACHING_DISABLE'] = '1'
    # The activation extractor's module imports OpenCV and torch for image loading, which
    # this venv does not have and this op does not use (it feeds activations): stand-ins
    # let the import through; any use of them would fail loudly.
    import sklearn.utils.validation  # noqa: F401  (before any stand-in: sklearn probes for torch)
    for name in ['cv2']:
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = types.ModuleType(name)
    import xarray as xr
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
    from brainscore_vision.model_helpers.brain_transformation.neural import LayerSelection
    from brainscore_vision.benchmark_helpers.neural_common import NeuralBenchmark, average_repetition
    from brainscore_vision.metrics.regression_correlation.metric import (
        CrossRegressedCorrelation, pls_regression, pearsonr_correlation)
    from brainscore_vision.metrics.internal_consistency.ceiling import InternalConsistency

    npz = _load_npz(req['npz'])
    layers = list(req['layers'])
    stimulus_id = _str(npz['feature_stimulus_id'])
    object_name = _str(npz['feature_object_name'])
    feats = {layer: npz[f'layer_{i}'] for i, layer in enumerate(layers)}

    class Activations:  # what LayerMappedModel calls: model(stimuli, layers=[...])
        identifier = 'ventral-crosscheck'

        def __call__(self, stimuli, layers, number_of_trials=1, require_variance=None):
            parts = []
            for layer in layers:
                f = feats[layer]
                parts.append(NeuroidAssembly(f, coords={
                    'stimulus_id': ('presentation', stimulus_id),
                    'object_name': ('presentation', object_name),
                    'neuroid_num': ('neuroid', np.arange(f.shape[1])),
                    'neuroid_id': ('neuroid', np.array([f'{layer}.{j}' for j in range(f.shape[1])], dtype=object)),
                    'layer': ('neuroid', np.array([layer] * f.shape[1], dtype=object)),
                }, dims=['presentation', 'neuroid']))
            return NeuroidAssembly(xr.concat(parts, dim='neuroid'))

    class Stimuli:  # place_on_screen only logs its identifier when the degrees agree
        identifier = 'ventral-crosscheck'

        def __contains__(self, key):
            return False

        def __len__(self):
            return len(stimulus_id)

    result = {'regions': {}}
    target_all = build_target_assembly(npz)
    for region in req['regions']:
        reps = target_all.isel(neuroid=np.flatnonzero(target_all['region'].values == region))
        reps = reps.expand_dims('time_bin_start').expand_dims('time_bin_end')
        reps['time_bin_start'] = [70]
        reps['time_bin_end'] = [170]
        reps = reps.stack(time_bin=['time_bin_start', 'time_bin_end']).squeeze('time_bin')
        reps = NeuroidAssembly(reps)
        ceiling = InternalConsistency()(reps)
        averaged = average_repetition(reps)
        averaged.attrs['stimulus_set'] = Stimuli()
        metric = CrossRegressedCorrelation(regression=pls_regression(), correlation=pearsonr_correlation(),
                                           crossvalidation_kwargs=dict(stratification_coord='object_name'))
        benchmark = NeuralBenchmark(identifier=f'crosscheck.{region}-pls', version=1, assembly=averaged,
                                    similarity_metric=metric, visual_degrees=8, number_of_trials=1,
                                    ceiling_func=lambda c=ceiling: c)
        selection = LayerSelection(model_identifier='ventral-crosscheck', activations_model=Activations(),
                                   layers=layers, visual_degrees=8)
        # _call: LayerSelection's choice without attaching LayerPCA (the activations given are
        # what the PCA hook would have produced).
        scores = selection._layer_scoring(benchmark=benchmark, benchmark_identifier=region, layers=layers, prerun=True)
        best = selection._call(model_identifier='ventral-crosscheck', selection_identifier=region, benchmark=benchmark)
        result['regions'][region] = {
            'best': str(best),
            'layers': [str(v) for v in scores['layer'].values],
            'scores': [float(v) for v in scores.values],
        }
    return result


def op_pca(req):
    from sklearn.decomposition import PCA
    npz = _load_npz(req['npz'])
    pca = PCA(n_components=int(req['n_components']), random_state=0)
    pca.fit(npz['fit'])
    return {'components': pca.components_, 'mean': pca.mean_, 'explained_variance': pca.explained_variance_,
            'transformed': pca.transform(npz['x']), 'solver': pca._fit_svd_solver}


def op_versions(req):
    import importlib.metadata as md
    names = ['numpy', 'scipy', 'scikit-learn', 'pandas', 'xarray', 'brainscore-core', 'brainscore-vision',
             'tensorflow-cpu']
    out = {}
    for n in names:
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:
            out[n] = None
    return {'versions': out, 'python': sys.version}


OPS = {
    'permutation': op_permutation, 'random_sample': op_random_sample, 'randint32': op_randint32,
    'shuffle_split': op_shuffle_split, 'stratified_shuffle_split': op_stratified_shuffle_split,
    'pls': op_pls, 'neural': op_neural, 'layer_selection': op_layer_selection, 'pca': op_pca, 'i2n': op_i2n, 'logistic': op_logistic, 'ost': op_ost, 'versions': op_versions,
}


def main():
    stdout = sys.stdout
    try:
        req = json.loads(sys.stdin.read())
        op = OPS[req['op']] if req.get('op') in OPS else None
        if op is None:
            raise ValueError(f"unknown op {req.get('op')!r}; known: {sorted(OPS)}")
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the one JSON response
            result = op(req)
        stdout.write(dumps(result) + '\n')
        stdout.flush()
        return 0
    except Exception as e:
        stdout.write(dumps({'error': f'{type(e).__name__}: {e}', 'traceback': traceback.format_exc()}) + '\n')
        stdout.flush()
        return 1


if __name__ == '__main__':
    sys.exit(main())
