"""Layers one way (pyproject's import-linter contracts): checked on the tree, and shown to
fail when a lower layer imports an upper one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run([str(LINT), "--config", str(tree / "pyproject.toml")], cwd=tree,
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_every_contract():
    res = _lint(ROOT)
    assert res.returncode == 0 and "0 broken" in res.stdout, res.stdout[-3000:]


def test_the_ranker_importing_serving_breaks_the_layers(tmp_path):
    shutil.copytree(ROOT / "src", tmp_path / "src",
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    blend = tmp_path / "src" / "novarank" / "ranking" / "blend.py"
    blend.write_text(blend.read_text() + "\nimport novarank.online.service  # noqa\n")
    res = _lint(tmp_path)
    assert res.returncode != 0, res.stdout[-2000:]
    assert "layers: the CLI on top, the ranker at the bottom, never upwards BROKEN" in res.stdout
    assert "novarank.ranking.blend -> novarank.online.service" in res.stdout
