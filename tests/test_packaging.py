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


def _floor(spec: str) -> tuple[int, ...]:
    """The ``>=`` bound of a requirement such as ``keras>=3.15,<4``, as a version tuple."""
    match = re.search(r">=\s*([0-9.]+)", spec)
    assert match, spec
    return tuple(int(p) for p in match.group(1).split("."))


def test_the_keras_floor_can_read_the_shipped_model():
    """``final_model/model.keras`` saved by Keras 3.15 does not load in 3.14 or older
    (``GlorotUniform`` gained ``input_axes``), and Keras 3.15 needs Python 3.11: a floor
    below the saving version let Python 3.10 install Keras 3.12 and fail at the first start."""
    import json
    import zipfile

    tomllib = pytest.importorskip("tomllib")
    with zipfile.ZipFile(REPO / "final_model" / "model.keras") as archive:
        saved = json.loads(archive.read("metadata.json"))["keras_version"]
    saved_minor = tuple(int(p) for p in saved.split(".")[:2])
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    keras = next(d for d in project["dependencies"] if _name(d) == "keras")
    assert _floor(keras) >= saved_minor, (keras, saved)


def test_readme_python_version_is_requires_python():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    floor = project["requires-python"].removeprefix(">=")
    said = re.search(r"Python (3\.\d+) or newer", (REPO / "README.md").read_text())
    assert said and said.group(1) == floor, (said and said.group(0), project["requires-python"])
