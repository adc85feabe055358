"""ventral from Python: the stores, the metrics, SQL and the pipeline engine, from the same
Rust crates as the ``ventral`` command.

>>> import ventral
>>> da = ventral.open_assembly("store/assemblies/dicarlo.MajajHong2015.public")  # xarray
>>> ventral.sql("SELECT benchmark, model, score FROM scores", workspace=".").to_pandas()
>>> ventral.metrics.neural_predictivity(features, recordings)                   # a Score
>>> ventral.run("pipelines/paper.toml", stages=["table1"])

``ventral.brainscore`` holds drop-in replacements for Brain-Score's metric and ceiling
classes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

from . import _ventral, metrics
from ._assembly import open_assembly
from .metrics import Score

__version__ = _ventral.__version__

__all__ = [
    "open_assembly",
    "open_workspace",
    "sql",
    "run",
    "status",
    "metrics",
    "Score",
    "Workspace",
    "RunError",
    "kind_identities",
]

PathLike = Union[str, os.PathLike]


class RunError(RuntimeError):
    """A stage failed (or was skipped because one upstream failed). ``report`` is the run's
    report, as ``ventral run --json`` prints it."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


def _strs(stages: Union[None, str, Sequence[str]]) -> List[str]:
    if stages is None:
        return []
    if isinstance(stages, str):
        return [stages]
    return [str(s) for s in stages]


def status(
    pipeline: PathLike = "pipelines/paper.toml",
    stages: Union[None, str, Sequence[str]] = None,
    *,
    workspace: PathLike = ".",
    store: Optional[PathLike] = None,
    profile: Optional[str] = None,
) -> List[dict]:
    """Each stage's status and why, as ``ventral status --json`` gives it: ``stage``,
    ``kind``, ``status`` (``up-to-date``, ``restorable``, ``stale``, ``waiting``),
    ``reasons``, ``key`` and ``output``. The keys are the CLI's: the same kind registry
    and code identities."""
    text = _ventral.status(
        os.fspath(workspace), os.fspath(pipeline), _strs(stages),
        store=None if store is None else os.fspath(store), profile=profile,
    )
    return json.loads(text)


def run(
    pipeline: PathLike = "pipelines/paper.toml",
    stages: Union[None, str, Sequence[str]] = None,
    *,
    workspace: PathLike = ".",
    store: Optional[PathLike] = None,
    profile: Optional[str] = None,
    jobs: Optional[int] = None,
    force: bool = False,
    check: bool = True,
    lock_timeout: float = 60.0,
) -> dict:
    """Bring ``stages`` (default: all) and what they need up to date, in this process, as
    ``ventral run`` does with the local executor: the same keys, lockfile and store. Returns
    the report (``stages``: one outcome each, ``seconds``). With ``check``, a failed stage
    raises :class:`RunError`; a bad param or pipeline raises ``ValueError``. Model stages
    run in the ``ventral-torch`` worker and netCDF is read by ``ventral-netcdf``: named by
    ``$VENTRAL_TORCH`` and ``$VENTRAL_NETCDF``, else found on ``PATH``."""
    text = _ventral.run(
        os.fspath(workspace), os.fspath(pipeline), _strs(stages),
        store=None if store is None else os.fspath(store), profile=profile, jobs=jobs,
        force=force, lock_timeout_s=lock_timeout,
    )
    report = json.loads(text)
    failed = [s for s in report["stages"] if s["action"] in ("failed", "skipped")]
    if failed and check:
        first = failed[0]
        msg = f"stage `{first['stage']}` {first['action']}"
        if first.get("error"):
            msg += f": {first['error']}"
        if any(s.get("bad_param") for s in failed):
            raise ValueError(msg)
        raise RunError(msg, report)
    return report


def sql(
    query: str,
    workspace: PathLike = ".",
    *,
    store: Optional[PathLike] = None,
    paths: Sequence[PathLike] = (),
    remote: Optional[str] = None,
):
    """Run a read-only SQL query over the workspace's stores (the tables of ``ventral
    sql``: ``assemblies``, ``stimuli``, ``neuroids``, ``activations``, ``scores``,
    ``runs``); the answer as a ``pyarrow.Table`` (``.to_pandas()`` for a DataFrame).
    ``paths`` adds store folders outside the pipeline, as ``ventral sql --path``;
    ``remote`` names a remote of the workspace's ``ventral.toml`` where the outputs missing
    from the local store are read in place, as ``ventral sql --remote``."""
    return _ventral.sql(
        query, os.fspath(workspace),
        store=None if store is None else os.fspath(store),
        paths=[os.fspath(p) for p in paths],
        remote=remote,
    )


def kind_identities() -> dict:
    """The code identity of every stage kind of this build (kind → identity): equal to the
    CLI's when both are built from the same sources."""
    return json.loads(_ventral.kind_identities())


class Workspace:
    """A ventral workspace: its pipeline's stages, its stores and its scores."""

    def __init__(self, root: PathLike = ".", pipeline: PathLike = "pipelines/paper.toml", *,
                 store: Optional[PathLike] = None, profile: Optional[str] = None):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"{root}: no such workspace folder")
        self.pipeline = Path(pipeline)
        self.store = None if store is None else Path(store)
        self.profile = profile

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r}, pipeline={str(self.pipeline)!r})"

    def stages(self, stages: Union[None, str, Sequence[str]] = None) -> List[dict]:
        """Each stage's status (:func:`ventral.status`)."""
        return status(self.pipeline, stages, workspace=self.root, store=self.store,
                      profile=self.profile)

    def sql(self, query: str, paths: Sequence[PathLike] = (), remote: Optional[str] = None):
        """A read-only query (:func:`ventral.sql`)."""
        return sql(query, self.root, store=self.store, paths=paths, remote=remote)

    def stores(self):
        """The assembly stores of the stages' outputs (the ``assemblies`` table)."""
        return self.sql("SELECT * FROM assemblies ORDER BY stage, assembly")

    def scores(self):
        """Every score of the stages' outputs (the ``scores`` table)."""
        return self.sql("SELECT * FROM scores")

    def open(self, assembly: str, *, lazy: bool = True):
        """Open the assembly named ``assembly`` (its identifier, or a path) from the
        ``assemblies`` table."""
        if os.path.isdir(assembly):
            return open_assembly(assembly, lazy=lazy)
        t = self.sql("SELECT assembly, identifier, path FROM assemblies").to_pylist()
        hits = [r for r in t if assembly in (r["assembly"], r["identifier"])]
        if not hits:
            raise KeyError(f"no assembly `{assembly}` in {self.root} "
                           f"(have: {', '.join(sorted({r['assembly'] for r in t}))})")
        return open_assembly(hits[0]["path"], lazy=lazy)

    def run(self, stages: Union[None, str, Sequence[str]] = None, **kwargs: Any) -> dict:
        """Bring stages up to date (:func:`ventral.run`)."""
        return run(self.pipeline, stages, workspace=self.root, store=self.store,
                   profile=self.profile, **kwargs)


def open_workspace(root: PathLike = ".", pipeline: PathLike = "pipelines/paper.toml", *,
                   store: Optional[PathLike] = None, profile: Optional[str] = None) -> Workspace:
    """Open the workspace at ``root`` (its pipeline file relative to it)."""
    return Workspace(root, pipeline, store=store, profile=profile)
