"""The state of a training run that a resume needs: epochs done, the best epoch, patience.

Saved as ``RUN_DIR/checkpoints/state.json`` after every epoch (atomically), next to
``last.keras`` and ``best.keras``; :meth:`TrainState.load` reads it back.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
ENSEMBLE_FILE = "ensemble.json"  # in the run folder of an ensemble (training.ensemble)


@dataclass
class TrainState:
    """Where a run stands.

    Attributes:
        epoch_done: epochs finished.
        best_score: the best validation score so far (-inf before the first epoch).
        best_epoch: the 1-based epoch that scored it.
        wait: epochs since the last improvement (early stopping counts these).
        best_metrics: the validation metrics of the best epoch.
        train_seconds: time spent in ``fit`` over all sessions of the run, counted at each
            finished epoch's end (training, validation, checkpoints; an epoch cut short by
            a stop is run again, and counted then).
        finished: the bundle was written.
    """

    epoch_done: int = 0
    best_score: float = -float("inf")
    best_epoch: int = 0
    wait: int = 0
    best_metrics: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    finished: bool = False

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> TrainState:
        """The saved state of ``run_dir`` (a fresh one when there is none)."""
        path = Path(run_dir) / "checkpoints" / STATE_FILE
        if not path.exists():
            return cls()
        known = {f.name for f in fields(cls)}
        data = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, run_dir: str | os.PathLike) -> None:
        """Write ``checkpoints/state.json`` atomically."""
        folder = Path(run_dir) / "checkpoints"
        tmp = folder / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, folder / STATE_FILE)

    def record_epoch(
        self, epoch: int, score: float, metrics: dict[str, Any], eligible: bool = True
    ) -> bool:
        """Count finished epoch ``epoch`` (1-based) with its score; True when it is the best.

        An epoch that is not ``eligible`` (trained before the recipe's last phase, e.g.
        before degradations start) is counted as done but can neither be the best nor use
        up patience.
        """
        if not eligible:
            self.epoch_done = epoch
            return False
        improved = score > self.best_score
        if improved:
            self.best_score, self.best_epoch, self.wait = score, epoch, 0
            self.best_metrics = metrics
        else:
            self.wait += 1
        self.epoch_done = epoch
        return improved
