"""Watching a training run: validation with ABAW metrics after every epoch,
checkpoints (best and last, written atomically), early stopping, training curves."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liveaffect.preprocess import PreprocessSpec, normalize
from liveaffect.training.config import RunConfig
from liveaffect.training.state import TrainState
from liveaffect.tta import TTA


@dataclass
class ValidationSet:
    """Decoded validation faces (uint8) and their labels."""

    images: np.ndarray
    labels: dict[str, np.ndarray]


def validation_engine(model, spec: PreprocessSpec, tta: TTA | bool, batch: int = 256):
    """The Keras engine (:mod:`liveaffect.engines`) for a model being trained, with views."""
    from pathlib import Path

    from liveaffect.bundle import Bundle, ModelCard, map_outputs
    from liveaffect.engines import create_engine

    bundle = Bundle(model=model, card=ModelCard(preprocess=spec), path=Path("."),
                    outputs=map_outputs(model))  # fmt: skip
    views = tta if isinstance(tta, TTA) else TTA(flip=bool(tta))
    return create_engine(bundle, "keras", batch_size=batch, tta=views)


def predict_arrays(
    model, images: np.ndarray, spec: PreprocessSpec, tta: TTA | bool, batch=256, engine=None
):
    """Run the model on uint8 faces; returns dict head -> array, averaged over the
    test-time views ``tta`` (True: face and mirror, as older callers asked). ``engine``:
    one made by :func:`validation_engine` for this model (made here when None)."""
    engine = engine or validation_engine(model, spec, tta, batch)
    outs: dict[str, list[np.ndarray]] = {"expr": [], "va": [], "au": []}
    for i in range(0, len(images), batch):
        x = normalize(images[i : i + batch].astype(np.float32), spec)
        y = engine.predict_heads(x)
        for k in outs:
            outs[k].append(y[k])
    return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in outs.items()}


def evaluate_model(model, val: ValidationSet, spec, tta: TTA | bool, thresholds=None, engine=None):
    """ABAW metrics of ``model`` on the validation set (``engine``: see predict_arrays)."""
    from liveaffect.evaluation.result import evaluate_arrays

    p = predict_arrays(model, val.images, spec, tta, engine=engine)
    lab = val.labels
    return evaluate_arrays(
        lab["expr"], p["expr"], lab["va"], p["va"], lab["au"].astype(np.int64), p["au"], thresholds
    )


HEAD_SCORES = {"va": ("va", "ccc_mean"), "expr": ("expr", "macro_f1"), "au": ("au", "mean_f1")}
"""Head -> (metrics section, the number of it that enters the selection score)."""


def trained_only(metrics: dict[str, Any], trained: set[str]) -> dict[str, Any]:
    """``metrics`` (``EvaluationResult.to_dict()``) without the numbers of heads that were
    not trained (random weights: their scores are noise), each replaced by a note; the
    ABAW sums, which would include them, become None."""
    out = dict(metrics)
    for head in HEAD_SCORES:
        if head not in trained and head in out:
            out[head] = {"not_trained": True, "note": "head not trained: no numbers shown"}
            out["mtl_score"] = out["mtl_partial"] = None
    return out


def selection_score(res, accuracy_weight: float = 0.0, trained: set[str] | None = None) -> float:
    """The validation score that picks epochs: VA mean CCC + expression macro-F1 + AU mean
    F1 over the ``trained`` heads (None: every head) that have validation labels, plus
    ``accuracy_weight`` x expression accuracy; -inf when nothing could be scored. An
    untrained head's score is noise and would steer the choice of epoch.

    The macro-F1 is the one over the classes present in the validation labels
    (``expr.macro_f1``) and the AU F1 the mean over the AUs with labels (``au.mean_f1``),
    not the ABAW terms of ``res.mtl_partial`` (all 8 classes, an absent one counting 0;
    all 12 AUs or none): epochs are picked as they were when the shipped model was
    trained."""
    heads = [h for h in HEAD_SCORES if trained is None or h in trained]
    values = [getattr(getattr(res, HEAD_SCORES[h][0]), HEAD_SCORES[h][1]) for h in heads]
    terms = [t for t in values if t is not None]
    if not terms:
        return -float("inf")
    score = float(sum(terms))
    if accuracy_weight and "expr" in heads and res.expr.accuracy is not None:
        score += accuracy_weight * res.expr.accuracy
    return float(score)


@contextmanager
def held_interrupts() -> Iterator[None]:
    """Ctrl-C (SIGINT) inside the block is held until the block ends, then raised as
    ``KeyboardInterrupt``: an epoch's checkpoints and ``state.json`` are written together or
    not at all (before, a Ctrl-C between them left ``last.keras`` an epoch ahead of the
    state, so a resume trained that epoch twice). Outside the main thread, where Python
    cannot set signal handlers, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def epoch_callbacks(
    cfg: RunConfig,
    run_dir: Path,
    val: ValidationSet,
    spec: PreprocessSpec,
    state: TrainState,
    trained: set[str] | None = None,
):
    """Keras callbacks: validate, log, checkpoint and early-stop after each epoch, scoring
    only the ``trained`` heads (None: every head)."""
    import keras

    ckpt_dir = run_dir / "checkpoints"

    class EpochEnd(keras.callbacks.Callback):
        """Validate, log ``val_*`` metrics, checkpoint, early-stop, plot curves."""

        engine = None
        since = 0.0  # when the time not yet in state.train_seconds began

        def on_train_begin(self, logs=None):
            self.since = time.time()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            _stop_if_diverged(self.model, epoch, logs, run_dir, state, cfg)
            t0 = time.time()
            if self.engine is None:  # one traced function for the whole fit
                self.engine = validation_engine(self.model, spec, cfg.train.select_tta)
            res = evaluate_model(self.model, val, spec, cfg.train.select_tta, engine=self.engine)
            score = selection_score(res, cfg.train.select_accuracy_weight, trained)
            logs.update(_epoch_logs(res, score, self.model, trained))
            eligible = epoch >= cfg.augment.degrade_from  # the robust phase only
            metrics = res.to_dict() if trained is None else trained_only(res.to_dict(), trained)
            improved = state.record_epoch(epoch + 1, score, metrics, eligible)
            with held_interrupts():  # the checkpoints and state.json name the same epoch
                for name, due in (("best", improved), ("last", True)):  # whole or not at all
                    if due:
                        self.model.save(ckpt_dir / f"{name}.keras.tmp.keras")
                        os.replace(ckpt_dir / f"{name}.keras.tmp.keras", ckpt_dir / f"{name}.keras")
                now = time.time()  # saved with the epoch: a session stopped later keeps it
                state.train_seconds += now - self.since
                self.since = now
                state.save(run_dir)
            print(
                f"\nepoch {epoch + 1}: val score {score:.4f} (expr macro-F1 "
                f"{logs['val_expr_macro_f1']:.4f}, acc {logs['val_expr_accuracy']:.4f}, "
                f"VA CCC {logs['val_va_ccc_mean']:.4f}, AU F1 {logs['val_au_mean_f1']:.4f})"
                f"{' *best*' if improved else ''} [{time.time() - t0:.0f}s validation]",
                flush=True,
            )
            if state.wait >= cfg.train.early_stopping_patience:
                print(f"early stopping: no better validation score for {state.wait} epochs")
                self.model.stop_training = True

    class Curves(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            plot_curves(run_dir / "log.csv", run_dir / "curves.png")

    return [
        EpochEnd(),
        keras.callbacks.CSVLogger(str(run_dir / "log.csv"), append=True),
        Curves(),
    ]


def _stop_if_diverged(model, epoch: int, logs: dict, run_dir: Path, state, cfg) -> None:
    """Raise :class:`~liveaffect.training.inputs.TrainingError` when epoch ``epoch`` (0-based)
    left weights that are not finite (the loss went NaN or infinite): before anything of it
    is saved, so the checkpoints, ``state.json`` and ``log.csv`` keep the last good epoch
    and the bundle never holds NaN weights."""
    if all(np.isfinite(np.asarray(v)).all() for v in model.trainable_weights):
        return
    from liveaffect.training.inputs import TrainingError

    kept = (
        f"{run_dir} keeps epoch {state.epoch_done}"
        if state.epoch_done
        else "no epoch of it was saved"
    )
    raise TrainingError(
        f"training diverged in epoch {epoch + 1}: the weights are NaN or infinite (loss "
        f"{logs.get('loss')}); {kept}. Lower train.learning_rate "
        f"({cfg.train.learning_rate}) and train into a new --out folder"
    )


def _epoch_logs(res, score: float, model, trained: set[str] | None = None) -> dict[str, float]:
    """The epoch's ``val_*`` numbers for log.csv and the console; NaN for untrained heads."""
    import keras

    shown = lambda head, v: _nan(v if trained is None or head in trained else None)  # noqa: E731
    return {
        "val_score": score,
        "val_expr_macro_f1": shown("expr", res.expr.macro_f1),
        "val_expr_accuracy": shown("expr", res.expr.accuracy),
        "val_va_ccc_mean": shown("va", res.va.ccc_mean),
        "val_au_mean_f1": shown("au", res.au.mean_f1),
        "lr": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
    }


def _nan(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def plot_curves(log_csv: Path, out_png: Path) -> None:
    """Training curves (losses and validation metrics per epoch) as a PNG."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]

    def series(key):
        return [float(r[key]) if r.get(key) not in (None, "", "nan") else np.nan for r in rows]

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "expr_loss", "va_loss", "au_loss"):
        if key in rows[0]:
            axes[0].plot(epochs, series(key), label=key, marker=".")
    axes[0].set(title="training loss", xlabel="epoch")
    axes[0].legend()
    for key in ("val_expr_macro_f1", "val_expr_accuracy", "val_va_ccc_mean", "val_au_mean_f1"):
        if key in rows[0] and not all(np.isnan(series(key))):
            axes[1].plot(epochs, series(key), label=key[4:], marker=".")
    axes[1].set(title="validation", xlabel="epoch")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
