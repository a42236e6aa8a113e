"""`pip install -e .` gets the same dependency versions as `pip install -r requirements.txt`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEV_ONLY = ("pytest", "pytest-xdist", "ruff")


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ ]", spec, maxsplit=1)[0].strip().lower()


def test_pyproject_pins_every_runtime_requirement_as_requirements_txt_does():
    """A looser lower bound in pyproject.toml lets `pip install -e .` keep an old version
    the code cannot run with (scipy < 1.15 has no ``rng=`` in ``stats.bootstrap``)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {_name(d): d.replace(" ", "") for d in project["dependencies"]}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        spec = line.split("#")[0].strip()
        if not spec or _name(spec) in DEV_ONLY:
            continue
        assert declared.get(_name(spec)) == spec.replace(" ", ""), (spec, declared.get(_name(spec)))
