"""Open an assembly written by ventral with zarr-python, xarray, pyarrow and DuckDB.

Usage: interop.py STORE ROWS COLS
Values must equal value(r, c) = ((r * 31 + c * 7) % 101) * 0.125, with NaN at (1, 2).
"""
import json
import sys

import duckdb
import numpy as np
import pyarrow.parquet as pq
import xarray as xr
import zarr

store, rows, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = np.arange(rows)[:, None]
c = np.arange(cols)[None, :]
expected = (((r * 31 + c * 7) % 101) * 0.125).astype(np.float32)
expected[1, 2] = np.nan

group = zarr.open_group(store, mode="r")
meta = group.attrs["ventral"]
assert meta["format"] == "ventral-assembly v1", meta
values = group["values"]
assert values.shape == (rows, cols), values.shape
assert values.dtype == np.float32, values.dtype
np.testing.assert_array_equal(values[:], expected)
np.testing.assert_array_equal(values[5:9, 3:11], expected[5:9, 3:11])

ds = xr.open_zarr(store, consolidated=False, zarr_format=3)
da = ds["values"]
assert da.dims == ("presentation", "neuroid"), da.dims
np.testing.assert_array_equal(da.values, expected)

stim = pq.read_table(f"{store}/coords/presentation.parquet")
assert stim.num_rows == rows, stim.num_rows
assert stim.column_names[:2] == ["stimulus_id", "object_name"], stim.column_names
neu = pq.read_table(f"{store}/coords/neuroid.parquet")
assert neu.num_rows == cols

n, objs = duckdb.sql(
    f"SELECT count(*), count(DISTINCT object_name) FROM '{store}/coords/presentation.parquet'"
).fetchall()[0]
assert (n, objs) == (rows, 4), (n, objs)
region = duckdb.sql(f"SELECT max(region) FROM '{store}/coords/neuroid.parquet'").fetchall()[0][0]
assert region == "IT", region
print(json.dumps({"ok": True, "zarr": zarr.__version__, "xarray": xr.__version__, "duckdb": duckdb.__version__}))
