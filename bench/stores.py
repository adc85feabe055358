"""DuckDB and xarray beside ventral's SQL on the same data (issue 3's figures).

Usage: stores.py DIR RESULT_JSON
"""
import json
import sys
import time

import duckdb
import numpy as np
import xarray as xr

d, ours = sys.argv[1], json.loads(sys.argv[2])


def best(n, f):
    t = float("inf")
    out = None
    for _ in range(n):
        a = time.perf_counter()
        out = f()
        t = min(t, time.perf_counter() - a)
    return t, out


con = duckdb.connect()
con.execute("SET threads TO 2")
q1 = f"""SELECT s.category_name, avg(a.value) FROM '{d}/long/activations.parquet' a
         JOIN '{d}/long/stimuli.parquet' s USING (stimulus_id) GROUP BY 1 ORDER BY 1"""
ids = ", ".join("'%s'" % i for i in ours["ids"])
q2 = f"""SELECT stimulus_id, neuroid, value FROM '{d}/long/activations.parquet'
         WHERE layer = 'IT' AND timestep = 0 AND stimulus_id IN ({ids})"""
t1, r1 = best(3, lambda: con.execute(q1).fetchall())
t2, r2 = best(3, lambda: con.execute(q2).fetchall())


def xr_full():
    ds = xr.open_zarr(f"{d}/acts/IT-t0", consolidated=False, zarr_format=3)
    import pyarrow.parquet as pq
    cats = pq.read_table(f"{d}/acts/IT-t0/coords/stimulus.parquet").column("category_name").to_numpy()
    da = ds["values"].assign_coords(category_name=("stimulus", cats))
    return da.groupby("category_name").mean(...).values


def xr_slice():
    ds = xr.open_zarr(f"{d}/acts/IT-t0", consolidated=False, zarr_format=3)
    import pyarrow.parquet as pq
    sid = pq.read_table(f"{d}/acts/IT-t0/coords/stimulus.parquet").column("stimulus_id").to_numpy()
    want = set(ours["ids"])
    idx = np.array([i for i, s in enumerate(sid) if s in want])
    return ds["values"].isel(stimulus=idx).values


x1, v1 = best(1, xr_full)
x2, v2 = best(3, xr_slice)
print(f"duckdb: full-scan group-by-category mean: {t1:.3f} s (Animals mean {r1[0][1]:.6f}); filtered slice: {t2:.3f} s ({len(r2)} rows)")
print(f"xarray: full-scan group-by-category mean: {x1:.3f} s (Animals mean {v1[0]:.6f}); filtered slice: {x2:.3f} s")
print(f"ratio full scan: ventral is {t1 / ours['sql_full_s']:.2f}x DuckDB's speed (goal >= 1x), {x1 / ours['sql_full_s']:.1f}x xarray's (goal >= 10x)")
print(f"ratio slice:     ventral is {t2 / ours['sql_slice_s']:.2f}x DuckDB's speed (goal >= 1x), {x2 / ours['sql_slice_s']:.1f}x xarray's (goal >= 10x)")
