"""A run whose weights go NaN stops with one error, before that epoch is saved anywhere."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic import write_synthetic_set

from liveaffect.data.dataset import AugmentConfig
from liveaffect.model.mtl import HeadConfig, ModelConfig
from liveaffect.training.config import DataConfig, RunConfig, SourceSpec, TrainConfig
from liveaffect.training.train import TrainingError, train

HEAD = HeadConfig(attention_heads=1, attention_key_dim=8, shared_units=16, branch_units=0)


def _cfg(folder, **train_options) -> RunConfig:
    source = [SourceSpec(path=str(folder / "labels.csv"))]
    return RunConfig(
        name="divergence-test",
        model=ModelConfig(backbone="tiny", input_size=32, widths=(8, 8, 8, 8), head=HEAD),
        data=DataConfig(train=source, validation=source),
        train=TrainConfig(**{"epochs": 2, "batch_size": 8, "tta_flip": False, **train_options}),
        augment=AugmentConfig(
            flip=False, rotation_deg=0, zoom=0, shift=0, brightness=0.02, contrast=0
        ),
    )


@pytest.mark.parametrize("bundle_epoch", ["last", "best"])
def test_nan_weights_stop_the_run_with_one_error_and_no_bundle(tmp_path, bundle_epoch):
    """Before, the bundle was written with NaN weights and exit status 0: the last epoch's
    (bundle_epoch last), or the first epoch's, NaN already but scored (best); and when every
    epoch scored NaN, the run ended in a traceback (best.keras not found)."""
    write_synthetic_set(tmp_path / "set", n=24, size=32, seed=0)
    cfg = _cfg(tmp_path / "set", learning_rate=1e12, warmup_epochs=0, bundle_epoch=bundle_epoch)
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"^training diverged in epoch 1: .*learning_rate"):
        train(cfg, run_dir, verbose=0, progress=False)
    assert not (run_dir / "bundle").exists()
    checkpoints = run_dir / "checkpoints"
    assert not (checkpoints / "last.keras").exists() and not (checkpoints / "best.keras").exists()
    assert not (checkpoints / "state.json").exists()


def test_a_finite_run_is_not_stopped(tmp_path):
    write_synthetic_set(tmp_path / "set", n=24, size=32, seed=0)
    run_dir = tmp_path / "run"
    train(_cfg(tmp_path / "set", epochs=1), run_dir, verbose=0, progress=False)
    state = json.loads((run_dir / "checkpoints" / "state.json").read_text())
    assert state["finished"] and np.isfinite(state["best_score"])
