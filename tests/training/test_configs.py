"""Every config the repository ships parses into a RunConfig (unknown keys, bad values fail)."""

from __future__ import annotations

import pytest
from conftest import REPO, recipe_stages

from liveaffect.training.config import load_config

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def test_the_repository_ships_configs():
    assert any(p.name == "default_model.yaml" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_each_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.name and cfg.train.epochs >= 1 and cfg.data.train


def test_the_from_scratch_recipe_chains_its_stages():
    """final_model/train_progressive.sh: each stage starts from the previous stage's bundle
    (the path its config names is the folder the script trains the previous stage into)."""
    out, stages = recipe_stages()
    assert len(stages) >= 2
    previous = None
    for name, config in stages:
        cfg = load_config(REPO / config)
        if previous is None:
            assert cfg.train.init_from is None, name
        else:
            assert cfg.train.init_from == f"{out}/{previous[0]}/bundle", name
            before = previous[1].model
            assert all(n >= o for n, o in zip(cfg.model.widths, before.widths, strict=True))
        previous = (name, cfg)
