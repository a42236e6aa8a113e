"""Training: records -> tf.data -> multi-task model -> per-epoch checkpoints -> bundle.

A run folder holds ``config.yaml`` (resolved), ``log.csv``, ``curves.png``,
``checkpoints/last.keras`` + ``state.json`` (resume), ``checkpoints/best.keras``
and, at the end, ``bundle/`` (model.keras + card.json). Running the same command
again continues after the last finished epoch.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from liveaffect.bundle import HeadInfo, ModelCard, save_bundle
from liveaffect.data.pipeline import decode_all, label_arrays, make_dataset
from liveaffect.data.records import Record
from liveaffect.labels import AU_MISSING, EXPRESSIONS, NUM_AUS, NUM_EXPRESSIONS
from liveaffect.preprocess import PreprocessSpec
from liveaffect.training.config import RunConfig, SourceSpec
from liveaffect.training.monitor import ValidationSet, epoch_callbacks, write_state


class TrainingError(Exception):
    """A training run cannot start or continue (bad data, mismatched resume...)."""


def preprocess_spec(cfg: RunConfig) -> PreprocessSpec:
    """The card's preprocessing for this config: the model normalises inside."""
    size = int(cfg.model.input_size)
    return PreprocessSpec(
        input_size=(size, size),
        color=cfg.model.color,
        normalization="none",
        crop_margin=cfg.crop_margin,
    )


# ---------------------------------------------------------------- data
def _read_source(spec: SourceSpec) -> list[Record]:
    from liveaffect.data.sources import load_records
    from liveaffect.data.splits import holdout_part

    records = load_records(spec.path, split=spec.split, group_by=spec.group_by)
    if spec.holdout > 0:
        records = holdout_part(records, spec.holdout, spec.seed, spec.part)
    return records


def resolve_records(cfg: RunConfig) -> tuple[list[Record], list[Record]]:
    """Training and validation records for a config (validation never trained on)."""
    from liveaffect.data.splits import split_by_recording

    train: list[Record] = []
    for spec in cfg.data.train:
        recs = _read_source(spec)
        train.extend(recs * int(spec.repeat))
    val: list[Record] = []
    for spec in cfg.data.validation:
        val.extend(_read_source(spec))
    if not cfg.data.validation:
        official = [r for r in train if r.split == "validation"]
        if official:
            val = official
            train = [r for r in train if r.split != "validation"]
        elif any(r.split == "test" for r in train):
            val = [r for r in train if r.split == "test"]
            train = [r for r in train if r.split != "test"]
        else:
            train, val = split_by_recording(train, cfg.data.val_fraction, cfg.train.seed)
    if not train:
        raise TrainingError("no training records found in the given data")
    if len(val) > cfg.data.val_max_samples:
        rng = np.random.default_rng(cfg.train.seed)
        val = [val[i] for i in sorted(rng.choice(len(val), cfg.data.val_max_samples, False))]
    return train, val


def class_weights(records: Sequence[Record], cfg: RunConfig) -> list[float]:
    """Per-class loss weights from the training counts (unseen classes get 0).

    With ``data.sampling: seed`` they are the recipe's ``(balanced + boost_add) *
    boost_mul``; otherwise ``train.class_weights`` normalised to mean 1 plus
    ``train.class_boost``.
    """
    counts = Counter(r.expr for r in records if r.has_expr)
    if cfg.data.sampling == "seed":
        from liveaffect.data.sampling import class_counts
        from liveaffect.data.sampling import class_weights as recipe_weights

        table = recipe_weights(class_counts(records), cfg.data.seed_recipe())
        return [table[name] if counts.get(c, 0) else 0.0 for c, name in enumerate(EXPRESSIONS)]
    seen = [c for c in range(NUM_EXPRESSIONS) if counts.get(c, 0) > 0]
    weights = [0.0] * NUM_EXPRESSIONS
    total = sum(counts.values())
    for c in seen:
        if cfg.train.class_weights == "none":
            w = 1.0
        else:
            w = total / (len(seen) * counts[c])
            w = math.sqrt(w) if cfg.train.class_weights == "balanced_sqrt" else w
        weights[c] = w
    if seen:
        mean = sum(weights[c] for c in seen) / len(seen)
        weights = [w / mean for w in weights]
    for name, boost in cfg.train.class_boost.items():
        if name not in EXPRESSIONS:
            raise TrainingError(f"class_boost names unknown class {name!r}")
        idx = EXPRESSIONS.index(name)
        if weights[idx] > 0:
            weights[idx] += float(boost)
    return weights


def au_pos_weights(records: Sequence[Record], cfg: RunConfig) -> list[float]:
    """negatives/positives per AU, clipped to [1, 20] (1 where unknown)."""
    if cfg.train.au_pos_weight == "none":
        return [1.0] * NUM_AUS
    pos = np.zeros(NUM_AUS)
    neg = np.zeros(NUM_AUS)
    for r in records:
        if r.au is not None:
            a = np.asarray(r.au)
            pos += a == 1
            neg += a == 0
    out = np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)
    return [float(v) for v in np.clip(out, 1.0, 20.0)]


def head_info(
    records: Sequence[Record], loss_weights: dict[str, float] | None = None
) -> dict[str, HeadInfo]:
    """Which heads learned, and from which sources.

    A head is trained when the training records carry its labels *and* its loss weight
    is above 0: a head with labels but weight 0 gets no gradient and keeps its random
    weights (an AU head left so outputs about 0.5 everywhere, which reads as "every AU
    active" at a 0.5 threshold).
    """

    def sources(pred) -> str:
        c = Counter(r.source or "data" for r in records if pred(r))
        return ", ".join(f"{k} ({v} faces)" for k, v in sorted(c.items()))

    weights = {"expr": 1.0, "va": 1.0, "au": 1.0, **(loss_weights or {})}
    counts = Counter(r.expr for r in records if r.has_expr)
    seen = [EXPRESSIONS[c] for c in range(NUM_EXPRESSIONS) if counts.get(c, 0)]
    labelled = {
        "expr": bool(seen),
        "va": any(r.has_va for r in records),
        "au": any(r.has_au for r in records),
    }
    has = {"expr": lambda r: r.has_expr, "va": lambda r: r.has_va, "au": lambda r: r.has_au}
    info = {}
    for head, present in labelled.items():
        if not present:
            data = "no action-unit labels" if head == "au" else sources(has[head])
        elif weights[head] <= 0:
            data = f"{sources(has[head])}; loss weight 0, so not trained"
        else:
            data = sources(has[head])
        trained = present and weights[head] > 0
        info[head] = HeadInfo(
            trained=trained, data=data, classes_seen=seen if head == "expr" else None
        )
    return info


def warn_unlearned_heads(records: Sequence[Record], cfg: RunConfig) -> None:
    """Say so before training when a head has labels but loss weight 0."""
    for head, info in head_info(records, cfg.train.loss_weights).items():
        if not info.trained and "loss weight 0" in info.data:
            print(
                f"warning: the {head} head has labels ({info.data.split(';')[0]}) but loss "
                f"weight 0 in train.loss_weights: it will not learn and the card will say so"
            )


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
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=cfg.train.weight_decay)
    losses = {
        "expr": MaskedExpressionLoss(
            class_weights(train_records, cfg), label_smoothing=cfg.train.label_smoothing
        ),
        "va": MaskedCCCLoss(),
        "au": MaskedAULoss(au_pos_weights(train_records, cfg)),
    }
    weights = {k: float(cfg.train.loss_weights.get(k, 1.0)) for k in losses}
    model.compile(optimizer=optimizer, loss=losses, loss_weights=weights)


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
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    state_file = run_dir / "checkpoints" / "state.json"
    config_file = run_dir / "config.yaml"
    state = {"epoch_done": 0, "best_score": -float("inf"), "best_epoch": 0, "wait": 0}
    resuming = state_file.exists() and (run_dir / "checkpoints" / "last.keras").exists()
    if resuming:
        state.update(json.loads(state_file.read_text()))
        import yaml

        saved = yaml.safe_load(config_file.read_text()) if config_file.exists() else None
        if saved is not None and not _same_config(saved, cfg):
            raise TrainingError(
                f"{run_dir} holds a run with a different config; use a new --out folder"
            )
        if state.get("finished"):
            print(f"{run_dir}: this run already finished; bundle in {run_dir / 'bundle'}")
            return run_dir / "bundle"
    cfg.save(config_file)
    keras.utils.set_random_seed(cfg.train.seed + state["epoch_done"])

    spec = preprocess_spec(cfg)
    if records is None:
        train_records, val_records = resolve_records(cfg)
        if cfg.data.sampling == "seed":
            from liveaffect.data.sampling import class_counts, count_report
            from liveaffect.training.ensemble import member_records

            before = class_counts(train_records)
            train_records, val_records = member_records(cfg, train_records, val_records, 1)[0]
            report = count_report(before, class_counts(train_records))
            (run_dir / "sampling_report.txt").write_text(report + "\n")
            print("class counts before and after the seed recipe's sampling:\n" + report)
    else:
        train_records, val_records = list(records[0]), list(records[1])
        if not train_records:
            raise TrainingError("no training records given")
    print(f"training faces: {len(train_records)}, validation faces: {len(val_records)}")
    warn_unlearned_heads(train_records, cfg)
    print(_count_table(train_records, val_records))
    workers = max(os.cpu_count() or 2, 2)
    cache = None if cfg.data.cache == "none" else "memory"
    images = None
    if cfg.data.cache == "memory":
        images = decode_all(train_records, spec, workers, progress)
    elif cfg.data.cache == "file":
        cache = str(run_dir / "cache" / "train")
        (run_dir / "cache").mkdir(exist_ok=True)
    ds = make_dataset(
        train_records,
        spec,
        cfg.train.batch_size,
        training=True,
        augment=cfg.augment,
        cache=cache,
        images=images,
        seed=cfg.train.seed,
    )
    val = ValidationSet(decode_all(val_records, spec, workers, progress), label_arrays(val_records))
    steps = math.ceil(len(train_records) / cfg.train.batch_size)
    strategy, device = _strategy()
    mixed = cfg.train.mixed_precision != "none"
    try:
        if mixed:
            keras.mixed_precision.set_global_policy(f"mixed_{cfg.train.mixed_precision}")
        return _fit_and_save(
            cfg, run_dir, state, strategy, device, resuming, ds, val, spec, steps,
            train_records, val_records, command, verbose, extra_callbacks,
        )  # fmt: skip
    finally:
        if mixed:
            keras.mixed_precision.set_global_policy("float32")


def _fit_and_save(
    cfg, run_dir, state, strategy, device, resuming, ds, val, spec, steps,
    train_records, val_records, command, verbose, extra_callbacks,
) -> Path:  # fmt: skip
    import keras
    import tensorflow as tf

    from liveaffect.model import custom_objects
    from liveaffect.model.mtl import build_mtl_model

    with strategy.scope():
        if resuming:
            model = keras.saving.load_model(
                run_dir / "checkpoints" / "last.keras",
                compile=True,
                custom_objects=custom_objects(),
            )
            print(f"resuming after epoch {state['epoch_done']} from {run_dir / 'checkpoints'}")
        else:
            model = build_mtl_model(cfg.model)
            if cfg.train.init_from:
                _init_weights(model, cfg.train.init_from)
            _compile(model, cfg, train_records, steps)
    started = time.time()
    if state["epoch_done"] < cfg.train.epochs and state["wait"] < cfg.train.early_stopping_patience:
        model.fit(
            ds,
            epochs=cfg.train.epochs,
            initial_epoch=state["epoch_done"],
            callbacks=[*epoch_callbacks(cfg, run_dir, val, spec, state), *extra_callbacks],
            verbose=verbose,
        )
    state["train_seconds"] = state.get("train_seconds", 0.0) + (time.time() - started)
    best = keras.saving.load_model(
        run_dir / "checkpoints" / "best.keras", compile=False, custom_objects=custom_objects()
    )
    if cfg.train.mixed_precision != "none":  # ship a plain float32 model (TFLite, CPUs)
        keras.mixed_precision.set_global_policy("float32")
        plain = build_mtl_model(cfg.model)
        plain.set_weights(best.get_weights())
        best = plain
    metrics = {
        "validation_during_training": state.get("best_metrics", {}),
        "note": "metrics of the selected epoch on the validation set used for early stopping",
    }
    if cfg.train.select_tta != cfg.train.tta:  # epochs were picked on fewer views
        from liveaffect.training.monitor import evaluate_model

        metrics["note"] += f" ({cfg.train.select_tta.describe()})"
        metrics["validation"] = evaluate_model(best, val, spec, cfg.train.tta).to_dict()
        metrics["validation_note"] = (
            f"the selected epoch on the same validation set, {cfg.train.tta.describe()}"
        )
    card = ModelCard(
        name=cfg.name,
        backbone=cfg.model.backbone,
        preprocess=spec,
        heads=head_info(train_records, cfg.train.loss_weights),
        tta=cfg.train.tta.card_entry(),
        metrics=metrics,
        training={
            "command": command,
            "config": cfg.to_dict(),
            "best_epoch": state["best_epoch"],
            "epochs_run": state["epoch_done"],
            "train_seconds": round(state["train_seconds"], 1),
            "device": device,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU threads",
            "tensorflow": tf.__version__,
            "tta_flip": cfg.train.tta_flip,
            "faces": {"train": len(train_records), "validation": len(val_records)},
        },
    )
    bundle = save_bundle(best, card, run_dir / "bundle")
    state["finished"] = True
    write_state(run_dir, state)
    print(f"bundle written to {bundle} (best epoch {state['best_epoch']})")
    return bundle


def _init_weights(model, source: str) -> None:
    """Copy the weights of the bundle at ``source`` into ``model`` (same architecture)."""
    from liveaffect.bundle import BundleError, load_bundle

    try:
        init = load_bundle(source).model
    except BundleError as exc:
        raise TrainingError(f"train.init_from: {exc}") from exc
    shapes = [w.shape for w in model.get_weights()]
    if [w.shape for w in init.get_weights()] != shapes:
        raise TrainingError(
            f"train.init_from: {source} is not a model of this config (weight shapes differ)"
        )
    model.set_weights(init.get_weights())
    print(f"starting from the weights of {source}")


def _same_config(saved: dict[str, Any], cfg: RunConfig) -> bool:
    """True when a saved config.yaml means ``cfg`` (keys added since take their defaults)."""
    import yaml

    from liveaffect.training.config import config_from_dict

    try:
        old = config_from_dict(saved).to_dict()
    except (TypeError, ValueError):
        return False
    return yaml.safe_load(yaml.safe_dump(old)) == yaml.safe_load(yaml.safe_dump(cfg.to_dict()))


def _count_table(train: Sequence[Record], val: Sequence[Record]) -> str:
    ct = Counter(r.expr for r in train)
    cv = Counter(r.expr for r in val)
    lines = [f"{'class':<10} {'train':>8} {'val':>8}"]
    for i, name in enumerate(EXPRESSIONS):
        lines.append(f"{name:<10} {ct.get(i, 0):>8} {cv.get(i, 0):>8}")
    lines.append(f"{'(no expr)':<10} {ct.get(-1, 0):>8} {cv.get(-1, 0):>8}")
    va_t, va_v = sum(r.has_va for r in train), sum(r.has_va for r in val)
    au_t, au_v = sum(r.has_au for r in train), sum(r.has_au for r in val)
    lines.append(f"{'VA labels':<10} {va_t:>8} {va_v:>8}")
    lines.append(f"{'AU labels':<10} {au_t:>8} {au_v:>8}")
    return "\n".join(lines)


def command_line() -> str:
    return "python -m liveaffect " + " ".join(sys.argv[1:])


__all__ = ["AU_MISSING", "TrainingError", "resolve_records", "train"]
