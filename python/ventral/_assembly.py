"""``open_assembly``: a ventral assembly store as an ``xarray.DataArray`` with Brain-Score's
coordinates, its values read lazily through xarray's backend-array protocol (nothing is
decoded until values are asked for, then only the chunks that hold them)."""

from __future__ import annotations

import json
import os
from typing import Any, Union

import numpy as np

from . import _ventral


def _backend_classes():
    from xarray.backends import BackendArray
    from xarray.core import indexing

    class LazyValues(BackendArray):
        """The values of one store: ``__getitem__`` reads the bounding block of the index
        from Rust (GIL released) and takes the rest with numpy."""

        def __init__(self, store: Any, shape: tuple, dtype: np.dtype):
            self._store = store
            self.shape = shape
            self.dtype = dtype

        def __getitem__(self, key):
            # Basic and outer keys are read directly (xarray < 2022.6 mis-decomposes
            # negative-step slices); vectorised keys are decomposed by xarray.
            if isinstance(key, (indexing.BasicIndexer, indexing.OuterIndexer)):
                return self._read(tuple(key.tuple))
            return indexing.explicit_indexing_adapter(
                key, self.shape, indexing.IndexingSupport.OUTER, self._read
            )

        def _read(self, key: tuple) -> np.ndarray:
            ranges, picks = [], []
            for k, n in zip(key, self.shape):
                if isinstance(k, (int, np.integer)):
                    i = int(k) + (n if k < 0 else 0)
                    ranges.append((i, i + 1))
                    picks.append(0)
                    continue
                if isinstance(k, slice):
                    idx = np.arange(n)[k]
                else:
                    idx = np.asarray(k, dtype=np.int64)
                    idx = np.where(idx < 0, idx + n, idx)
                if idx.size == 0:
                    ranges.append((0, 0))
                    picks.append(slice(None))
                    continue
                lo, hi = int(idx.min()), int(idx.max()) + 1
                ranges.append((lo, hi))
                rel = idx - lo
                contiguous = rel.size == hi - lo and np.array_equal(rel, np.arange(hi - lo))
                picks.append(slice(None) if contiguous else rel)
            block = self._store.read(ranges)
            # Outer indexing: one axis at a time (integers last, so axes keep their places).
            for axis, p in enumerate(picks):
                if isinstance(p, np.ndarray):
                    block = np.take(block, p, axis=axis)
            ints = tuple(0 if isinstance(p, int) else slice(None) for p in picks)
            return block[ints]

    return LazyValues, indexing


def _column(values: Any) -> np.ndarray:
    """A coordinate column: strings as object arrays (as BrainIO's assemblies hold them)."""
    if isinstance(values, list):
        return np.array(values, dtype=object)
    return values


def open_assembly(path: Union[str, os.PathLike], *, lazy: bool = True):
    """Open the assembly store at ``path`` as an ``xarray.DataArray``.

    Dimensions and coordinates are those Brain-Score's assemblies have: the coordinates of a
    dimension are the levels of that dimension's MultiIndex (``stimulus_id``,
    ``object_name``, ``repetition`` … on ``presentation``; ``neuroid_id``, ``region`` … on
    ``neuroid``), as BrainIO's ``gather_indexes`` makes them. The values stay on disk until
    asked for (``lazy=False`` reads them now). ``attrs`` holds the store's identifier,
    kind, and its other attributes. A store that is not one raises ``ValueError`` naming
    the file at fault; one that cannot be read, ``OSError``.
    """
    import xarray

    if not os.path.isdir(path):
        raise FileNotFoundError(f"{os.fspath(path)}: no such assembly store (a folder with zarr.json)")
    store = _ventral.Assembly(os.fspath(path))
    meta = json.loads(store.meta_json())
    dims = list(meta["dims"])
    shape = tuple(int(n) for n in meta["shape"])
    dtype = np.dtype(meta["dtype"])
    if lazy:
        LazyValues, indexing = _backend_classes()
        data = indexing.LazilyIndexedArray(LazyValues(store, shape, dtype))
    else:
        data = store.read([(0, n) for n in shape])
    coords = {}
    levels = {}
    for dim in dims:
        columns = store.coord_columns(dim)
        names = []
        for name, col in columns:
            if len(col) != shape[dims.index(dim)]:
                raise ValueError(
                    f"{path}: coords/{dim}.parquet: column `{name}` has {len(col)} rows for "
                    f"{shape[dims.index(dim)]} entries of `{dim}`"
                )
            if name == dim:
                # A coordinate named like its dimension is the dimension's plain index.
                coords[dim] = _column(col)
                continue
            coords[name] = (dim, _column(col))
            names.append(name)
        levels[dim] = names
    attrs = {"identifier": meta.get("identifier", ""), "kind": meta.get("kind", "")}
    for k, v in (meta.get("attrs") or {}).items():
        if k == "brainio":  # the source file's layout, kept for `ventral export`
            continue
        attrs[k] = v if isinstance(v, (str, int, float, bool)) else json.dumps(v)
    # The lazy array goes in as is: an ExplicitlyIndexed array is kept unloaded by xarray.
    da = xarray.DataArray(data, dims=dims, coords=coords, attrs=attrs,
                          name=meta.get("identifier") or None)
    for dim, names in levels.items():
        # One coordinate stays a plain coordinate: a one-level index would replace its name
        # by the dimension's in older xarray (Brain-Score's pin), and `da["stimulus_id"]`
        # would be gone.
        if len(names) >= 2 and dim not in coords:
            da = da.set_index({dim: names})
    return da
