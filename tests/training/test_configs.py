"""Every config the repository ships parses into a RunConfig (unknown keys, bad values fail)."""

from __future__ import annotations

import pytest
from conftest import REPO

from liveaffect.training.config import load_config

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def test_the_repository_ships_configs():
    assert any(p.name == "default_model.yaml" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_each_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.name and cfg.train.epochs >= 1 and cfg.data.train
