"""The score that picks epochs (``training.monitor.selection_score``), and an epoch's
checkpoints and state written together even when Ctrl-C comes between them."""

from __future__ import annotations

import numpy as np
import pytest

from liveaffect.evaluation.result import evaluate_arrays
from liveaffect.training.monitor import selection_score, trained_only


def test_selection_keeps_the_macro_f1_over_the_classes_present():
    rng = np.random.default_rng(0)
    n = 200
    expr = rng.integers(0, 7, n)  # no Other in the validation labels
    va = rng.uniform(-1, 1, (n, 2))
    au = rng.integers(0, 2, (n, 12))
    res = evaluate_arrays(
        expr, rng.random((n, 8)), va, rng.uniform(-1, 1, (n, 2)), au, rng.random((n, 12))
    )
    picked = res.va.ccc_mean + res.expr.macro_f1 + res.au.mean_f1
    assert selection_score(res) == pytest.approx(picked)
    # the ABAW score counts Other as 0: lower, and not what selection uses
    assert res.mtl_partial < picked
    assert selection_score(res, 0.5) == pytest.approx(picked + 0.5 * res.expr.accuracy)


def test_selection_over_the_heads_with_labels_and_nothing_scored():
    res = evaluate_arrays(np.array([0, 1, 1]), np.array([0, 1, 0]))
    assert selection_score(res) == pytest.approx(res.expr.macro_f1)
    assert selection_score(evaluate_arrays()) == -float("inf")


def test_an_untrained_head_neither_picks_epochs_nor_shows_numbers():
    rng = np.random.default_rng(1)
    n = 100
    res = evaluate_arrays(
        rng.integers(0, 8, n), rng.random((n, 8)), rng.uniform(-1, 1, (n, 2)),
        rng.uniform(-1, 1, (n, 2)), rng.integers(0, 2, (n, 12)), rng.random((n, 12)),
    )  # fmt: skip
    trained = {"va", "au"}
    assert selection_score(res, 0.5, trained) == pytest.approx(res.va.ccc_mean + res.au.mean_f1)
    shown = trained_only(res.to_dict(), trained)
    assert shown["expr"] == {"not_trained": True, "note": "head not trained: no numbers shown"}
    assert shown["va"] == res.to_dict()["va"] and shown["mtl_score"] is None
    assert trained_only(res.to_dict(), {"expr", "va", "au"}) == res.to_dict()


def test_ctrl_c_while_saving_an_epoch_waits_for_the_save_to_end():
    """A SIGINT inside held_interrupts() lets the block finish, then stops; the handler
    that was there before is back afterwards."""
    import signal

    from liveaffect.training.monitor import held_interrupts

    before = signal.getsignal(signal.SIGINT)
    written = []
    with pytest.raises(KeyboardInterrupt), held_interrupts():
        written.append("last.keras")
        signal.raise_signal(signal.SIGINT)
        written.append("state.json")
    assert written == ["last.keras", "state.json"]
    assert signal.getsignal(signal.SIGINT) is before
    with held_interrupts():  # no signal: nothing raised
        written.append("again")
    assert written[-1] == "again"


def test_ctrl_c_between_the_checkpoints_and_the_state_keeps_them_in_step(tmp_path, monkeypatch):
    """A training run interrupted while its first epoch is being saved: state.json still
    says epoch 1 is done, next to that epoch's last.keras (before, state.json was never
    written, so a resume would have trained epoch 1 again on top of its own weights)."""
    import json
    import signal

    from synthetic import write_synthetic_set

    from liveaffect.data.dataset import AugmentConfig
    from liveaffect.model.mtl import HeadConfig, ModelConfig
    from liveaffect.training.config import DataConfig, RunConfig, SourceSpec, TrainConfig
    from liveaffect.training.state import TrainState
    from liveaffect.training.train import train

    write_synthetic_set(tmp_path / "set", n=16, size=32, seed=0)
    source = [SourceSpec(path=str(tmp_path / "set" / "labels.csv"))]
    cfg = RunConfig(
        name="interrupt-test",
        model=ModelConfig(
            backbone="tiny",
            input_size=32,
            widths=(8, 8, 8, 8),
            head=HeadConfig(attention_heads=0, shared_units=8, branch_units=0),
        ),
        data=DataConfig(train=source, validation=source),
        train=TrainConfig(epochs=2, batch_size=8, tta_flip=False),
        augment=AugmentConfig(
            flip=False, rotation_deg=0, zoom=0, shift=0, brightness=0, contrast=0
        ),
    )
    save = TrainState.save

    def interrupted_save(self, run_dir):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C after the checkpoints, before the state
        save(self, run_dir)

    monkeypatch.setattr(TrainState, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run", verbose=0, progress=False)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert (checkpoints / "last.keras").exists()
    assert json.loads((checkpoints / "state.json").read_text())["epoch_done"] == 1
