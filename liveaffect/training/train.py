"""Training: records -> tf.data -> multi-task model -> per-epoch checkpoints -> bundle.

A run folder holds ``config.yaml`` (resolved), ``log.csv``, ``curves.png``,
``checkpoints/last.keras`` + ``state.json`` (resume), ``checkpoints/best.keras``
and, at the end, ``bundle/`` (model.keras + card.json). Running the same command
again continues after the last finished epoch.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liveaffect.bundle import ModelCard, save_bundle
from liveaffect.data.dataset import EpochClock, decode_readable, label_arrays, make_dataset
from liveaffect.data.records import Record
from liveaffect.hardware import native_bfloat16
from liveaffect.labels import AU_MISSING
from liveaffect.preprocess import PreprocessSpec
from liveaffect.training.config import RunConfig, mixed_precision_policy
from liveaffect.training.inputs import (
    TrainingError,
    au_pos_weights,
    class_weights,
    count_table,
    head_info,
    preprocess_spec,
    resolve_records,
    warn_unlearned_heads,
)
from liveaffect.training.monitor import ValidationSet, epoch_callbacks
from liveaffect.training.state import ENSEMBLE_FILE, STATE_FILE, TrainState


# ---------------------------------------------------------------- training
def _strategy():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(), f"MirroredStrategy over {len(gpus)} GPUs"
    return tf.distribute.get_strategy(), ("1 GPU" if gpus else "CPU")


def _compile(model, cfg: RunConfig, train_records, steps_per_epoch: int) -> None:
    import keras

    from liveaffect.model.losses import MaskedAULoss, MaskedCCCLoss, MaskedExpressionLoss

    total = max(cfg.train.epochs * steps_per_epoch, 1)
    warm = min(int(cfg.train.warmup_epochs * steps_per_epoch), total - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.train.learning_rate * 0.01,
        decay_steps=max(total - warm, 1),
        warmup_target=cfg.train.learning_rate,
        warmup_steps=warm,
    )
    optimizer = keras.optimizers.AdamW(
        schedule,
        weight_decay=cfg.train.weight_decay,
        use_ema=cfg.train.ema > 0,
        ema_momentum=cfg.train.ema or 0.99,
    )
    losses = {
        "expr": MaskedExpressionLoss(
            class_weights(train_records, cfg),
            label_smoothing=cfg.train.label_smoothing,
            distill_weight=cfg.train.distill_weight if cfg.train.distill_from else 0.0,
        ),
        "va": MaskedCCCLoss(),
        "au": MaskedAULoss(au_pos_weights(train_records, cfg)),
    }
    weights = {k: float(cfg.train.loss_weights[k]) for k in losses}  # every head (config)
    model.compile(optimizer=optimizer, loss=losses, loss_weights=weights)


@dataclass
class _Run:
    """One training run's inputs, resolved once: what fitting and the card need."""

    cfg: RunConfig
    run_dir: Path
    state: TrainState
    spec: PreprocessSpec
    train_records: list[Record]
    val_records: list[Record]
    command: str = ""
    device: str = ""
    precision: str = "none"  # the policy trained in: none (float32), bfloat16 or float16
    resuming: bool = False
    clock: EpochClock = field(default_factory=EpochClock)


def train(
    cfg: RunConfig,
    run_dir: str | Path,
    command: str = "",
    verbose: str | int = "auto",
    progress: bool = True,
    records: tuple[Sequence[Record], Sequence[Record]] | None = None,
    extra_callbacks: Sequence[Any] = (),
) -> Path:
    """Train (or resume) a run; returns the path of the finished bundle.

    Args:
        cfg: the run's configuration (saved as ``config.yaml``; a resume must match it).
        run_dir: the run folder (created).
        command: the command line, recorded in the card.
        verbose: Keras' ``fit`` verbosity.
        progress: show progress bars while decoding faces.
        records: explicit ``(train, validation)`` records instead of the config's
            sources (an ensemble member's subset); None reads ``cfg.data``.
        extra_callbacks: more Keras callbacks, run after the built-in ones.

    Raises:
        TrainingError: no data, or a resume whose config differs.
    """
    import keras

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise TrainingError(f"{run_dir} is a file, not a run folder")
    if (run_dir / ENSEMBLE_FILE).exists():
        raise TrainingError(
            f"{run_dir} holds an ensemble (trained with --members); run the same command "
            "with --members, or use a new --out folder"
        )
    above = next((p for p in run_dir.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise TrainingError(f"cannot make the run folder {run_dir}: {above} is a file")
    state, resuming = _resume_state(cfg, run_dir)
    if state.finished:
        print(f"{run_dir}: this run already finished; bundle in {run_dir / 'bundle'}")
        return run_dir / "bundle"
    if not resuming:  # before the run folder is made: a wrong path leaves nothing behind
        _check_bundle_paths(cfg)
    keras.utils.set_random_seed(cfg.train.seed + state.epoch_done)
    # the data is read before the run folder is made: bad data leaves no folder behind
    train_records, val_records = _run_records(cfg, run_dir, records)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / "config.yaml")
    print(f"training faces: {len(train_records)}, validation faces: {len(val_records)}")
    warn_unlearned_heads(train_records, cfg)
    print(count_table(train_records, val_records))
    run = _Run(cfg, run_dir, state, preprocess_spec(cfg), train_records, val_records, command)
    run.resuming = resuming
    ds, val = _datasets(run, progress)
    strategy, run.device = _strategy()
    run.precision = choose_precision(cfg.train.mixed_precision, gpu=run.device != "CPU")
    mixed = run.precision != "none"
    try:
        if mixed:
            keras.mixed_precision.set_global_policy(f"mixed_{run.precision}")
        chosen = _fit(run, strategy, ds, val, verbose, extra_callbacks)
        return _save(run, chosen, val)
    finally:
        if mixed:
            keras.mixed_precision.set_global_policy("float32")


def choose_precision(asked: str, gpu: bool) -> str:
    """The mixed-precision policy to train in for ``train.mixed_precision`` ``asked`` on this
    machine (:func:`~liveaffect.training.config.mixed_precision_policy` with this CPU's
    bfloat16 support); prints the choice, and a warning on stderr when it is a bad deal."""
    precision, warning = mixed_precision_policy(asked, gpu, native_bfloat16())
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"precision: {_precision_name(precision)} ({asked} asked)")
    return precision


def _precision_name(policy: str) -> str:
    return "float32" if policy == "none" else f"mixed {policy} (float32 weights)"


def _check_bundle_paths(cfg: RunConfig) -> None:
    """``train.init_from`` and ``train.distill_from`` name a bundle or ``.keras`` file."""
    from liveaffect.bundle import BundleError, resolve_model_path

    for key in ("init_from", "distill_from"):
        path = getattr(cfg.train, key)
        if path:
            try:
                resolve_model_path(path)
            except BundleError as exc:
                raise TrainingError(f"train.{key}: {exc}") from exc


def _trained(heads: dict) -> set[str]:
    """The heads of :func:`head_info`'s ``heads`` that learn (labels in the training data
    and a loss weight above 0)."""
    return {head for head, info in heads.items() if info.trained}


def _file_cache(folder: Path, resuming: bool) -> Path:
    """``data.cache: file``'s folder, emptied unless a resumed run left it whole: a fresh
    start must not read another run's faces, and TensorFlow refuses a cache whose writing
    was cut off (its ``.lockfile`` stays)."""
    if folder.exists() and (not resuming or any(folder.glob("*.lockfile"))):
        shutil.rmtree(folder)
    folder.mkdir(exist_ok=True)
    return folder


def _resume_state(cfg: RunConfig, run_dir: Path) -> tuple[TrainState, bool]:
    """The saved state when ``run_dir`` holds a resumable run of this config."""
    resuming = (run_dir / "checkpoints" / STATE_FILE).exists() and (
        run_dir / "checkpoints" / "last.keras"
    ).exists()
    if not resuming:
        return TrainState(), False
    import yaml

    config_file = run_dir / "config.yaml"
    saved = yaml.safe_load(config_file.read_text()) if config_file.exists() else None
    if saved is not None and not _same_config(saved, cfg):
        raise TrainingError(
            f"{run_dir} holds a run with a different config; use a new --out folder"
        )
    return TrainState.load(run_dir), True


def _run_records(cfg: RunConfig, run_dir: Path, records) -> tuple[list[Record], list[Record]]:
    """The run's training and validation records (the seed recipe's sampling applied)."""
    if records is not None:
        train_records, val_records = list(records[0]), list(records[1])
        if not train_records:
            raise TrainingError("no training records given")
        return train_records, val_records
    train_records, val_records = resolve_records(cfg)
    if cfg.data.sampling != "seed":
        return train_records, val_records
    from liveaffect.data.sampling import class_counts, count_report, member_splits, members_report

    before = class_counts(train_records)
    try:
        recipe = cfg.data.seed_recipe()
        parts = member_splits(train_records, val_records, 1, recipe, cfg.train.seed)
    except ValueError as exc:
        raise TrainingError(f"the seed recipe cannot be applied: {exc}") from exc
    print(members_report(before, [parts[0][0]]))
    train_records, val_records = parts[0]
    report = count_report(before, class_counts(train_records))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "sampling_report.txt").write_text(report + "\n")
    print("class counts before and after the seed recipe's sampling:\n" + report)
    return train_records, val_records


def _datasets(run: _Run, progress: bool):
    """The training ``tf.data`` pipeline and the decoded validation set."""
    cfg, spec = run.cfg, run.spec
    workers = max(os.cpu_count() or 2, 2)
    cache = None if cfg.data.cache == "none" else "memory"
    limit = cfg.data.max_unreadable
    # Unreadable images are skipped (named in warnings) before training starts; the run
    # stops only when more than data.max_unreadable of them are unreadable.
    images, run.train_records = decode_readable(
        run.train_records, spec, workers, progress, limit, keep_images=cfg.data.cache == "memory"
    )
    val_images, run.val_records = decode_readable(run.val_records, spec, workers, progress, limit)
    if cfg.data.cache == "file":
        cache = str(_file_cache(run.run_dir / "cache", run.resuming) / "train")
    soft = None
    if cfg.train.distill_from:
        from liveaffect.training.distill import teacher_targets

        soft = teacher_targets(cfg.train.distill_from, images, run.train_records, spec)
        print(
            f"teacher {cfg.train.distill_from}: soft targets for {int((soft[:, 0] >= 0).sum())} "
            f"of {len(soft)} training faces"
        )
    ds = make_dataset(
        run.train_records,
        spec,
        cfg.train.batch_size,
        training=True,
        augment=cfg.augment,
        cache=cache,
        images=images,
        seed=cfg.train.seed,
        clock=run.clock,
        expr_teacher=soft,
    )
    return ds, ValidationSet(val_images, label_arrays(run.val_records))


def _fit(run: _Run, strategy, ds, val: ValidationSet, verbose, extra_callbacks):
    """Build (or resume) the model, fit the remaining epochs; returns the model of the
    epoch the bundle holds (``train.bundle_epoch``: the best or the last)."""
    import keras

    from liveaffect.model import custom_objects
    from liveaffect.model.mtl import build_mtl_model

    cfg, state, ckpt = run.cfg, run.state, run.run_dir / "checkpoints"
    with strategy.scope():
        if run.resuming:
            model = keras.saving.load_model(
                ckpt / "last.keras", compile=True, custom_objects=custom_objects()
            )
            print(f"resuming after epoch {state.epoch_done} from {ckpt}")
        else:
            model = build_mtl_model(cfg.model)
            if cfg.train.init_from:
                _init_weights(model, cfg)
            steps = math.ceil(len(run.train_records) / cfg.train.batch_size)
            _compile(model, cfg, run.train_records, steps)
        _build_step_state(model, ds)

    def clock(epoch, logs=None):  # what the input pipeline reads (augment.degrade_from)
        run.clock.epoch = epoch

    if state.epoch_done < cfg.train.epochs and state.wait < cfg.train.early_stopping_patience:
        trained = _trained(head_info(run.train_records, cfg.train.loss_weights))
        model.fit(
            ds,
            epochs=cfg.train.epochs,
            initial_epoch=state.epoch_done,
            shuffle=False,  # ds shuffles itself; Keras' default True only prints a warning
            callbacks=[
                keras.callbacks.LambdaCallback(on_epoch_begin=clock),
                *_ema_callbacks(run),
                *epoch_callbacks(cfg, run.run_dir, val, run.spec, state, trained),
                *extra_callbacks,
            ],
            verbose=verbose,
        )
    chosen = keras.saving.load_model(
        ckpt / f"{cfg.train.bundle_epoch}.keras", compile=False, custom_objects=custom_objects()
    )
    if run.precision != "none":  # ship a plain float32 model (TFLite, CPUs)
        keras.mixed_precision.set_global_policy("float32")
        plain = build_mtl_model(cfg.model)
        plain.set_weights(chosen.get_weights())
        chosen = plain
    return chosen


def _build_step_state(model, ds) -> None:
    """Create the optimizer's slots and the loss trackers before ``fit`` traces its step.

    Under the default distribution strategy Keras creates them while it traces the training
    step, and a ``tf.function`` that creates variables is traced a second time: the same
    step traced twice, about 4 s of every run on a 2-core AVX2 CPU. One zero-filled sample
    shaped like ``ds``'s elements builds the loss trackers eagerly (``fit`` resets them at
    each epoch, so the zeros count nowhere)."""
    import tensorflow as tf

    def one(spec):
        return tf.zeros([1, *spec.shape[1:]], spec.dtype)

    x, y = (tf.nest.map_structure(one, part) for part in ds.element_spec[:2])
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.compute_loss(x=x, y=y, y_pred=model(x, training=False), training=False)


def _ema_callbacks(run: _Run) -> list:
    """With ``train.ema``: put the averaged weights into the model at each epoch's end, for
    validation and the checkpoints, and the trained ones back at the next epoch's start."""
    import keras

    if not run.cfg.train.ema:
        return []
    swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    # A checkpoint was saved swapped (averaged weights in the model, trained ones in the
    # optimizer's average slots), so a resumed run starts swapped. Keras keeps this flag
    # private; without it the resumed run would train on from the averaged weights.
    swap._ema_weights_in_model = run.resuming
    return [swap]


def _save(run: _Run, model, val: ValidationSet) -> Path:
    """Write the bundle (the chosen epoch's model and its card) and mark the run finished."""
    bundle = save_bundle(model, _card(run, model, val), run.run_dir / "bundle")
    run.state.finished = True
    run.state.save(run.run_dir)
    print(f"bundle written to {bundle} (epoch {_bundle_epoch(run)}, best {run.state.best_epoch})")
    return bundle


def _bundle_epoch(run: _Run) -> int:
    """The 1-based epoch whose weights the bundle holds."""
    return run.state.epoch_done if run.cfg.train.bundle_epoch == "last" else run.state.best_epoch


def _card(run: _Run, model, val: ValidationSet) -> ModelCard:
    """The card of the finished run: heads, test-time views, metrics, how it was trained."""
    import tensorflow as tf

    from liveaffect.training.monitor import evaluate_model, trained_only

    cfg, state = run.cfg, run.state
    heads = head_info(run.train_records, cfg.train.loss_weights)
    trained = _trained(heads)
    if cfg.train.bundle_epoch == "last":  # scored again: the state keeps the best epoch's
        picked = evaluate_model(model, val, run.spec, cfg.train.select_tta).to_dict()
        note = "metrics of the last epoch (train.bundle_epoch: last) on the validation set"
    else:
        picked = state.best_metrics
        note = "metrics of the selected epoch on the validation set used for early stopping"
    metrics = {"validation_during_training": trained_only(picked, trained), "note": note}
    if cfg.train.select_tta != cfg.train.tta:  # epochs were scored on fewer views
        metrics["note"] += f" ({cfg.train.select_tta.describe()})"
        again = evaluate_model(model, val, run.spec, cfg.train.tta).to_dict()
        metrics["validation"] = trained_only(again, trained)
        metrics["validation_note"] = (
            f"the bundle's epoch on the same validation set, {cfg.train.tta.describe()}"
        )
    return ModelCard(
        name=cfg.name,
        backbone=cfg.model.backbone,
        preprocess=run.spec,
        heads=heads,
        tta=cfg.train.tta.card_entry(),
        metrics=metrics,
        training={
            "command": run.command,
            "config": cfg.to_dict(),
            "best_epoch": state.best_epoch,
            "bundle_epoch": _bundle_epoch(run),
            "epochs_run": state.epoch_done,
            "train_seconds": round(state.train_seconds, 1),
            "device": run.device,
            "precision": _precision_name(run.precision),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU threads",
            "tensorflow": tf.__version__,
            "faces": {"train": len(run.train_records), "validation": len(run.val_records)},
        },
    )


def _init_weights(model, cfg: RunConfig) -> None:
    """Copy the weights of the bundle ``train.init_from`` into ``model``: a model of the same
    architecture, or a ``cnn`` whose stages are narrower, widened first without changing its
    outputs (:mod:`liveaffect.model.widen`; the new channels' filters drawn with
    ``train.seed``)."""
    from liveaffect.bundle import BundleError, load_bundle
    from liveaffect.model.widen import WidenError, widen
    from liveaffect.training.config import config_from_dict

    source = cfg.train.init_from
    try:
        bundle = load_bundle(source)
    except BundleError as exc:
        raise TrainingError(f"train.init_from: {exc}") from exc
    init, how = bundle.model, ""
    shapes = [w.shape for w in model.get_weights()]
    if [w.shape for w in init.get_weights()] != shapes and cfg.model.backbone == "cnn":
        saved = bundle.card.training.get("config")
        narrow = config_from_dict(saved).model if saved else None
        if narrow is not None and narrow.backbone == "cnn" and narrow.widths != cfg.model.widths:
            try:
                init, _, _ = widen(init, narrow, cfg.model.widths, seed=cfg.train.seed)
            except WidenError as exc:
                raise TrainingError(f"train.init_from: cannot widen {source}: {exc}") from exc
            how = (
                f", its cnn stages widened from {list(narrow.widths)} to "
                f"{list(cfg.model.widths)} (same outputs; new channels untrained)"
            )
    if [w.shape for w in init.get_weights()] != shapes:
        raise TrainingError(
            f"train.init_from: {source} is not a model of this config (weight shapes differ)"
        )
    model.set_weights(init.get_weights())
    print(f"starting from the weights of {source}{how}")


def _same_config(saved: dict[str, Any], cfg: RunConfig) -> bool:
    """True when a saved config.yaml means ``cfg`` (keys added since take their defaults)."""
    import yaml

    from liveaffect.training.config import config_from_dict

    try:
        old = config_from_dict(saved).to_dict()
    except (TypeError, ValueError):
        return False
    return yaml.safe_load(yaml.safe_dump(old)) == yaml.safe_load(yaml.safe_dump(cfg.to_dict()))


def command_line() -> str:
    return "python -m liveaffect " + " ".join(sys.argv[1:])


__all__ = ["AU_MISSING", "TrainingError", "resolve_records", "train"]
