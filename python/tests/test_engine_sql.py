"""``ventral.status``/``run``/``sql`` drive the same engine as the CLI: the same keys, the
same lockfile and store, the same answers."""

from __future__ import annotations

import json

import pytest

import ventral
from conftest import cli

PIPELINE = """
[pipeline]
name = "py"

[vars]
factor = 2

[stages.a]
kind = "cmd"
cmd = "sort ${inputs.raw} > ${out}/sorted.txt"
inputs = { raw = "data/in.txt" }

[stages.b]
kind = "cmd"
cmd = "head -n ${vars.factor} ${inputs.s} > ${out}/head.txt"
inputs = { s = "stage:a/sorted.txt" }
params = { note = "x" }

[stages.c]
kind = "cmd"
cmd = "exit 3"
inputs = { h = "stage:b/head.txt" }
"""


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "p.toml").write_text(PIPELINE)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.txt").write_text("c\nb\na\n")
    return tmp_path


def _keys(statuses):
    return {s["stage"]: (s["status"], s["key"]) for s in statuses}


def test_status_and_run_share_keys_lockfile_and_store(ventral_bin, ws):
    cli_status = json.loads(cli(ventral_bin, "--workspace", ws, "-p", "pipelines/p.toml", "status",
                                "--json").stdout)
    py_status = ventral.status("pipelines/p.toml", workspace=ws)
    assert _keys(py_status) == _keys(cli_status)
    assert {s["status"] for s in py_status} == {"stale", "waiting"}

    report = ventral.run("pipelines/p.toml", ["b"], workspace=ws)
    assert [s["action"] for s in report["stages"]] == ["ran", "ran"]
    assert (ws / "lockfiles" / "py.lock").is_file()
    # The CLI sees what Python ran: a and b are up to date.
    after = json.loads(cli(ventral_bin, "--workspace", ws, "-p", "pipelines/p.toml", "status",
                           "--json").stdout)
    assert {s["stage"]: s["status"] for s in after} == {"a": "up-to-date", "b": "up-to-date",
                                                        "c": "stale"}
    # A failing stage raises, with the report.
    with pytest.raises(ventral.RunError, match="`c` failed") as e:
        ventral.run("pipelines/p.toml", workspace=ws)
    assert e.value.report["stages"][-1]["action"] == "failed"
    # Changing a param in the file makes b stale for both.
    (ws / "pipelines" / "p.toml").write_text(PIPELINE.replace('note = "x"', 'note = "y"'))
    py = {s["stage"]: s["status"] for s in ventral.status("pipelines/p.toml", workspace=ws)}
    assert py["a"] == "up-to-date" and py["b"] == "stale"


def test_kind_identities_are_the_clis(ventral_bin):
    out = json.loads(cli(ventral_bin, "kinds", "--json").stdout)
    cli_ids = {k["kind"]: k["code"] for k in out}
    assert ventral.kind_identities() == cli_ids


def test_bad_pipeline_is_a_value_error(ws):
    (ws / "pipelines" / "bad.toml").write_text('[stages.a]\nkind = "cmd"\ncmd = 3\n')
    with pytest.raises(ValueError, match="bad.toml"):
        ventral.status("pipelines/bad.toml", workspace=ws)
    with pytest.raises(OSError, match="no such pipeline"):
        ventral.status("pipelines/none.toml", workspace=ws)


def test_sql_answers_equal_the_clis(ventral_bin, ws, shared_data):
    pa = pytest.importorskip("pyarrow")
    ventral.run("pipelines/p.toml", ["b"], workspace=ws)
    store = ws / "ingested"
    cli(ventral_bin, "ingest", "brainio", shared_data / "brainio-netcdf" / "alexnet-probabilities.nc",
        "-o", store)
    queries = [
        "SELECT stage, kind, key, output FROM runs ORDER BY stage",
        "SELECT assembly, identifier, kind, dims, shape, n_values FROM assemblies ORDER BY assembly",
        "SELECT stimulus_id FROM stimuli ORDER BY stimulus_id LIMIT 5",
        "SELECT count(*) AS n FROM stimuli",
    ]
    for q in queries:
        table = ventral.sql(q, workspace=ws, paths=[store])
        assert isinstance(table, pa.Table)
        want = json.loads(cli(ventral_bin, "--workspace", ws, "sql", "--path", store, "--format",
                              "json", q).stdout)
        assert table.to_pylist() == want, q
    df = ventral.open_workspace(ws, "pipelines/p.toml").sql("SELECT stage FROM runs ORDER BY stage").to_pandas()
    assert list(df["stage"]) == ["a", "b"]
    with pytest.raises(ValueError, match="read-only"):
        ventral.sql("CREATE TABLE x AS SELECT 1", workspace=ws)
    with pytest.raises(ValueError):
        ventral.sql("SELECT nope FROM runs", workspace=ws)


def test_sql_reads_a_remote_where_the_stores_lie(ventral_bin, tmp_path, shared_data):
    """A workspace with the lockfile of another and an empty store queries the other's
    results in their shared remote: the answers of the workspace that computed them."""
    pytest.importorskip("pyarrow")
    src = tmp_path / "src"
    cli(ventral_bin, "ingest", "brainio", shared_data / "brainio-netcdf" / "alexnet-probabilities.nc",
        "-o", src / "probabilities")
    pipeline = f'''
[stages.copy]
kind = "cmd"
cmd = "cp -r {src}/. ${{out}}/"
'''
    config = f'[remote.lab]\nurl = "{tmp_path / "remote"}"\ndefault = true\n'
    roots = []
    for name in ("computed", "empty"):
        root = tmp_path / name
        (root / "pipelines").mkdir(parents=True)
        (root / "pipelines" / "p.toml").write_text(pipeline)
        (root / "ventral.toml").write_text(config)
        roots.append(root)
    cli(ventral_bin, "--workspace", roots[0], "-p", "pipelines/p.toml", "run")
    (roots[1] / "lockfiles").mkdir()
    for lock in (roots[0] / "lockfiles").iterdir():
        (roots[1] / "lockfiles" / lock.name).write_bytes(lock.read_bytes())
    queries = [
        "SELECT identifier, kind, shape, stage FROM assemblies ORDER BY identifier",
        "SELECT count(*) AS n FROM stimuli",
        "SELECT stage, kind, key, output FROM runs ORDER BY stage",
    ]
    for q in queries:
        here = ventral.sql(q, workspace=roots[0]).to_pylist()
        assert here and ventral.sql(q, workspace=roots[1], remote="lab").to_pylist() == here, q
    assert ventral.sql("SELECT count(*) AS n FROM stimuli", workspace=roots[1]).to_pylist() == [{"n": 0}]
    with pytest.raises(ValueError, match="no remote `elsewhere`"):
        ventral.sql("SELECT 1", workspace=roots[1], remote="elsewhere")


def test_python_and_cli_runs_write_the_same_lockfile(ventral_bin, tmp_path):
    """The same pipeline run from Python in one workspace and by the CLI in another gives
    byte-identical lockfiles (keys, params, digests)."""
    import shutil
    roots = []
    for name in ("py", "cli"):
        root = tmp_path / name
        (root / "pipelines").mkdir(parents=True)
        (root / "pipelines" / "p.toml").write_text(PIPELINE)
        (root / "data").mkdir()
        (root / "data" / "in.txt").write_text("c\nb\na\n")
        roots.append(root)
    ventral.run("pipelines/p.toml", ["b"], workspace=roots[0])
    cli(ventral_bin, "--workspace", roots[1], "-p", "pipelines/p.toml", "run", "b")
    a = (roots[0] / "lockfiles" / "py.lock").read_bytes()
    b = (roots[1] / "lockfiles" / "py.lock").read_bytes()
    assert a == b
    shutil.rmtree(tmp_path)
