"""TrainState: what a resume reads back, and how an epoch is counted."""

from __future__ import annotations

import json

import pytest

from liveaffect.training.state import TrainState


def test_state_round_trips_and_ignores_unknown_keys(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    assert TrainState.load(tmp_path) == TrainState()  # nothing saved yet: a fresh run
    state = TrainState()
    assert state.record_epoch(1, 0.5, {"m": 1}) and state.best_epoch == 1
    assert not state.record_epoch(2, 0.4, {"m": 2}) and state.wait == 1
    assert state.record_epoch(3, 0.6, {"m": 3}) and state.wait == 0
    state.train_seconds = 12.5
    state.save(tmp_path)
    saved = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert saved["epoch_done"] == 3 and saved["best_metrics"] == {"m": 3}
    saved["from_a_newer_version"] = True
    (tmp_path / "checkpoints" / "state.json").write_text(json.dumps(saved))
    assert TrainState.load(tmp_path) == state


def test_an_epoch_that_is_not_eligible_is_counted_but_never_best():
    state = TrainState()
    assert not state.record_epoch(1, 0.9, {"m": 1}, eligible=False)
    assert state.epoch_done == 1 and state.best_epoch == 0 and state.wait == 0
    assert state.record_epoch(2, 0.1, {"m": 2}) and state.best_epoch == 2
    assert state.best_metrics == {"m": 2}


def test_a_fresh_state_saves_minus_infinity(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    TrainState().save(tmp_path)
    assert TrainState.load(tmp_path).best_score == -float("inf")


def test_data_split_is_checked_and_random_warns(tmp_path, capsys):
    from liveaffect.training.config import RunConfig, SourceSpec, config_from_dict
    from liveaffect.training.inputs import resolve_records

    with pytest.raises(ValueError, match=r"data\.split"):
        config_from_dict({"data": {"split": "by_magic"}})
    rows = ["path,expression"] + [f"f{i}.png,{i % 3}" for i in range(40)]
    for i in range(40):
        (tmp_path / f"f{i}.png").write_bytes(b"not decoded here")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    cfg = RunConfig()
    cfg.data.train = [SourceSpec(path=str(tmp_path / "labels.csv"))]
    cfg.data.split = "random"
    train, val = resolve_records(cfg)
    assert len(train) + len(val) == 40 and len(val) == 4
    assert "warning: data.split: random" in capsys.readouterr().out
