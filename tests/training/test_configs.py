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


@pytest.mark.parametrize(
    "data, message",
    [
        ({"train": {"early_stopping_patience": 0}}, "early_stopping_patience must be >= 1"),
        ({"train": {"label_smoothing": 2}}, r"label_smoothing must be in \[0, 1\)"),
        ({"train": {"warmup_epochs": -1}}, "warmup_epochs must be >= 0"),
        ({"data": {"val_fraction": 1.5}}, r"val_fraction must be in \(0, 1\)"),
        ({"data": {"val_max_samples": 0}}, "val_max_samples must be >= 1"),
        ({"crop_margin": -1}, "crop_margin must be >= 0"),
        ({"train": {"epochs": "2"}}, "train.epochs must be int, got '2'"),
        ({"train": {"loss_weights": {"expr": 1, "vaa": 1}}}, r"unknown head\(s\) \['vaa'\]"),
        ({"train": {"loss_weights": {"va": -1}}}, "loss_weights must be numbers >= 0"),
        ({"train": {"learning_rate": "1e-3"}}, "train.learning_rate must be float"),
        ({"train": {"learning_rate": float("nan")}}, "learning_rate must be > 0 and finite"),
        ({"train": {"learning_rate": float("inf")}}, "learning_rate must be > 0 and finite"),
        ({"train": {"weight_decay": -1e-4}}, "weight_decay must be >= 0 and finite"),
        ({"train": {"weight_decay": float("nan")}}, "weight_decay must be >= 0 and finite"),
        ({"train": {"warmup_epochs": float("nan")}}, "warmup_epochs must be >= 0"),
        ({"train": {"loss_weights": {"au": float("nan")}}}, "loss_weights must be numbers >= 0"),
        ({"train": {"loss_weights": {"au": float("inf")}}}, "loss_weights must be numbers >= 0"),
        ({"train": {"tta_flip": "no"}}, "train.tta_flip must be bool, got 'no'"),
        ({"train": {"epochs": True}}, "train.epochs must be int, got True"),
        ({"data": {"train": "/data/fer"}}, r"data.train must be a list of sources"),
        ({"data": {"train": [{"path": "x", "holdut": 0.1}]}}, r"data.train\[0\]: unknown key"),
        (
            {"data": {"train": [{"path": "x", "repeat": 1.5}]}},
            r"data.train\[0\].repeat must be int",
        ),
        # optional fields: None or the type (group_by: 5 was a traceback in the CSV reader)
        (
            {"data": {"train": [{"path": "ck.csv", "group_by": 5, "holdout": 0.2}]}},
            r"data.train\[0\].group_by must be str \| None, got 5",
        ),
        ({"train": {"init_from": 1}}, r"train.init_from must be str \| None, got 1"),
        ({"model": {"trainable_layers": "all"}}, r"model.trainable_layers must be int \| None"),
        # lists and mappings: "'int' object is not iterable" named no key
        ({"model": {"widths": 16}}, r"model.widths must be Sequence\[int\], got 16"),
        ({"model": {"widths": [16, "x"]}}, r"model.widths must be Sequence\[int\]"),
        ({"train": {"tta_scales": 1.0}}, r"train.tta_scales must be list\[float\], got 1.0"),
        ({"train": {"select_scales": 1}}, r"train.select_scales must be list\[float\] \| None"),
        ({"train": {"loss_weights": [1, 2]}}, r"train.loss_weights must be dict\[str, float\]"),
        ({"train": {"class_boost": {"Fear": "x"}}}, r"train.class_boost must be dict\[str, float"),
        ({"augment": {"degrade_kinds": ["blur"]}}, r"augment.degrade_kinds must be dict"),
        # found only after the faces were decoded, without the names it takes
        (
            {"train": {"class_boost": {"happy": 0.5}}},
            r"train.class_boost: unknown class\(es\) \['happy'\]; the classes are Neutral, ",
        ),
        # read mid-run by the loader, whose message named neither the key nor the source
        (
            {"data": {"train": [{"path": "fer", "split": "val"}]}},
            r"split must be train, validation or test .*got 'val' for fer",
        ),
        (
            {"data": {"validation": [{"path": "ck.csv", "split": 3}]}},
            r"data.validation\[0\].split must be str \| None, got 3",
        ),
    ],
)
def test_values_that_would_fail_mid_run_are_refused_when_the_config_is_read(data, message):
    from liveaffect.training.config import config_from_dict

    with pytest.raises(ValueError, match=message):
        config_from_dict(data)


def test_a_config_that_is_not_a_mapping_is_named():
    from liveaffect.training.config import config_from_dict

    with pytest.raises(ValueError, match="a config is a mapping of sections"):
        config_from_dict(["model", "data"])


def test_a_head_left_out_of_loss_weights_keeps_its_default_weight():
    from liveaffect.training.config import DEFAULT_LOSS_WEIGHTS, config_from_dict

    cfg = config_from_dict({"train": {"loss_weights": {"expr": 2.0}}})
    assert cfg.train.loss_weights == {**DEFAULT_LOSS_WEIGHTS, "expr": 2.0}
    assert cfg.train.loss_weights["au"] == 5.0  # not the 1.0 a missing key used to get
