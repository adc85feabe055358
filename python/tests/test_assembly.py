"""``open_assembly`` on stores ingested from real BrainIO files: the same values and
coordinates as xarray reads from the original file and from ``ventral export``; lazy."""

from __future__ import annotations

import numpy as np
import pytest

import ventral
from conftest import cli

FILES = ["resnet18-objectome240-features.nc", "alexnet-probabilities.nc"]


def _ingest(ventral_bin, shared_data, tmp_path, name):
    out = tmp_path / "store"
    cli(ventral_bin, "ingest", "brainio", shared_data / "brainio-netcdf" / name, "-o", out)
    stores = ventral._ventral.find_assemblies(str(out))
    assert len(stores) == 1, stores
    return stores[0]


def _open_nc(path):
    import xarray as xr
    for engine in ("netcdf4", "h5netcdf", None):
        try:
            with xr.open_dataarray(str(path), engine=engine) as da:
                return da.load()
        except (ValueError, ImportError):
            continue
    raise AssertionError(f"xarray cannot open {path}")


@pytest.mark.parametrize("name", FILES)
def test_values_and_coordinates_round_trip(ventral_bin, shared_data, tmp_path, name):
    store = _ingest(ventral_bin, shared_data, tmp_path, name)
    da = ventral.open_assembly(store)
    assert not da.variable._in_memory, "values must stay on disk until asked for"
    back = tmp_path / "back.nc"
    cli(ventral_bin, "export", "brainio", store, "-o", back)
    for ref in (_open_nc(shared_data / "brainio-netcdf" / name), _open_nc(back)):
        ours = da.transpose(*ref.dims)
        np.testing.assert_array_equal(ours.values, ref.values)
        for dim in ref.dims:
            ref_coords = [c for c in ref.coords if ref[c].dims == (dim,) and c != dim]
            for c in ref_coords:
                want = [str(v) for v in ref[c].values]
                got = [str(v) for v in ours[c].values]
                if ref[c].dtype.kind in "fiu":
                    np.testing.assert_allclose(np.asarray(ours[c].values, dtype=float),
                                               np.asarray(ref[c].values, dtype=float), err_msg=c)
                else:
                    assert got == want, c


def test_lazy_indexing_equals_eager(ventral_bin, shared_data, tmp_path):
    store = _ingest(ventral_bin, shared_data, tmp_path, FILES[0])
    lazy = ventral.open_assembly(store)
    eager = ventral.open_assembly(store, lazy=False)
    assert eager.variable._in_memory
    d0, d1 = lazy.dims
    n0, n1 = lazy.shape
    cases = [
        {d0: slice(3, 17)},
        {d0: slice(None, None, 7), d1: slice(5, 40, 3)},
        {d0: [5, 1, 1, n0 - 1], d1: slice(None, None, -50)},
        {d0: 4},
        {d0: -1, d1: [0, n1 - 1]},
        {d0: slice(10, 10)},
    ]
    for sel in cases:
        np.testing.assert_array_equal(lazy.isel(sel).values, eager.isel(sel).values, err_msg=str(sel))
    # MultiIndex levels select as in Brain-Score.
    if "stimulus_id" in lazy.coords:
        first = lazy["stimulus_id"].values[0]
        np.testing.assert_array_equal(
            lazy.sel(stimulus_id=first).values, eager.sel(stimulus_id=first).values)


def test_coordinates_are_brainscores(ventral_bin, shared_data, tmp_path):
    """Two coordinates of a dimension are the levels of its MultiIndex (as BrainIO's
    gather_indexes makes them) and select as in Brain-Score; the store's identifier and
    kind are attributes."""
    store = _ingest(ventral_bin, shared_data, tmp_path, FILES[0])
    da = ventral.open_assembly(store)
    assert da.attrs["identifier"] == "resnet18-objectome240-features"
    assert "brainio" not in da.attrs
    assert set(da.get_index("neuroid").names) == {"neuroid_id", "layer"}
    picked = da.sel(layer="avgpool")
    assert picked.shape == (2400, 512)
    np.testing.assert_array_equal(da.sel(neuroid_id="7").values,
                                  ventral.open_assembly(store, lazy=False).sel(neuroid_id="7").values)
