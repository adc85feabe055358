"""Turning Brain-Score-shaped assemblies (or numpy arrays with coordinate arrays) into the
plain arrays and labels the Rust metrics take. Every refusal is a ``ValueError`` that names
the argument, the dimension and the coordinate at fault."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np


def is_xarray(x: Any) -> bool:
    """Whether ``x`` is an ``xarray.DataArray`` (Brain-Score's assemblies are subclasses)."""
    try:
        import xarray
    except ImportError:  # pragma: no cover - xarray is a dependency
        return False
    return isinstance(x, xarray.DataArray)


def coords_on(da: Any, dim: str) -> dict:
    """Every coordinate along ``dim`` but the dimension's own index, MultiIndex levels
    included (older xarray keeps levels out of ``da.coords``), as ``{name: values}``."""
    out = {}
    if dim in da.dims:
        try:
            index = da.get_index(dim)
        except KeyError:
            index = None
        names = getattr(index, "names", None) or []
        if len(names) > 1 or (names and names[0] not in (None, dim)):
            for n in names:
                if n is not None:
                    out[str(n)] = np.asarray(da[n].values)
    for name, c in da.coords.items():
        if c.dims == (dim,) and name != dim and name not in out:
            if getattr(c.to_index(), "nlevels", 1) > 1:
                continue
            out[str(name)] = np.asarray(c.values)
    return out


def has_coord(da: Any, name: str) -> bool:
    """Whether ``da`` has coordinate (or MultiIndex level) ``name``."""
    if name in da.coords:
        return True
    try:
        da[name]
    except KeyError:
        return False
    return True


def coord(da: Any, name: str, dim: str, what: str) -> np.ndarray:
    """The values of coordinate ``name`` along ``dim`` of ``da`` (a MultiIndex level or a
    plain coordinate)."""
    if not has_coord(da, name):
        have = sorted(coords_on(da, dim)) if dim in da.dims else []
        raise ValueError(
            f"{what}: no coordinate `{name}` on dimension `{dim}` "
            f"(it has: {', '.join(have) if have else 'none'})"
        )
    c = da[name]
    if c.dims != (dim,):
        raise ValueError(f"{what}: coordinate `{name}` lies on {c.dims}, not on `{dim}`")
    return np.asarray(c.values)


def labels(values: Any, what: str, n: Optional[int] = None) -> list:
    """Strings of a label array (ids may be numbers in BrainIO files)."""
    if values is None:
        raise ValueError(f"{what} is required")
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what}: one label per row is needed; got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"{what}: {len(arr)} labels for {n} rows")
    out = []
    for v in arr.tolist():
        if isinstance(v, bytes):
            v = v.decode()
        if v is None or (isinstance(v, float) and v != v):
            raise ValueError(f"{what}: a missing label (None or NaN)")
        out.append(str(v))
    return out


def integers(values: Any, what: str, n: int) -> list:
    arr = np.asarray(values)
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"{what}: {arr.size} values for {n} rows")
    if arr.dtype.kind not in "iub":
        try:
            as_int = arr.astype(np.int64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{what}: integers are needed ({e})") from None
        if arr.dtype.kind == "f" and not np.array_equal(as_int, arr):
            raise ValueError(f"{what}: integers are needed; got {arr.dtype} values")
        arr = as_int
    return [int(v) for v in arr.tolist()]


def matrix(da: Any, dims: Sequence[str], what: str, dtype: Any) -> np.ndarray:
    """``da``'s values as a C-contiguous array in ``dims`` order; a length-1 ``time_bin`` is
    squeezed away (as Brain-Score's MajajHong2015 loader does)."""
    if is_xarray(da):
        extra = [d for d in da.dims if d not in dims]
        for d in extra:
            if da.sizes[d] != 1:
                raise ValueError(
                    f"{what}: dimension `{d}` has {da.sizes[d]} entries; dimensions "
                    f"{tuple(dims)} are expected (select one `{d}` first)"
                )
            da = da.squeeze(d, drop=True)
        missing = [d for d in dims if d not in da.dims]
        if missing:
            raise ValueError(f"{what}: dimensions {tuple(dims)} are expected; it has {tuple(da.dims)}")
        values = da.transpose(*dims).values
    else:
        values = np.asarray(da)
        if values.ndim != len(dims):
            raise ValueError(f"{what}: a {len(dims)}-d array {tuple(dims)} is expected; got shape {values.shape}")
    if values.dtype.kind not in "fiub":
        raise ValueError(f"{what}: numbers are needed; got {values.dtype}")
    return np.ascontiguousarray(values, dtype=dtype)
