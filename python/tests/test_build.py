"""The wheel and the workspace share one build: maturin compiles `ventral-python` alone, so
its dependency graph must ask for the same features of every shared crate as the workspace
build does, or cargo compiles those crates (DataFusion among them) twice."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import ROOT


def _features(*args: str) -> dict:
    out = subprocess.run(["cargo", "tree", "--offline", "-f", "{p} {f}", "--prefix", "none", *args],
                         cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cargo tree failed: {out.stderr.strip()[:200]}")
    feats: dict = {}
    for line in out.stdout.splitlines():
        parts = line.replace(" (*)", "").split(" ")
        if len(parts) < 2:
            continue
        key = f"{parts[0]} {parts[1]}"
        f = set(parts[2].split(",")) if len(parts) > 2 and parts[2] and not parts[2].startswith("(") else set()
        feats.setdefault(key, set()).update(f)
    return feats


def test_the_wheel_asks_for_the_workspaces_features():
    if shutil.which("cargo") is None:
        pytest.skip("no cargo on PATH")
    workspace = _features("--workspace", "--exclude", "ventral-python", "-e", "normal,build,dev")
    wheel = _features("-p", "ventral-python", "-e", "normal,build")
    drift = {k: (sorted(wheel[k] - workspace[k]), sorted(workspace[k] - wheel[k]))
             for k in wheel if k in workspace and wheel[k] != workspace[k]}
    assert not drift, f"features only the wheel / only the workspace asks for (see python/Cargo.toml): {drift}"
