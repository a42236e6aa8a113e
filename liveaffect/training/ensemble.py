"""Ensembles: K members trained on disjoint subsets, one bundle that averages them.

``train_ensemble`` trains member ``i`` in ``RUN_DIR/member_{i}`` (each an ordinary,
resumable run of :func:`liveaffect.training.train.train`) and then writes
``RUN_DIR/bundle``: a functional Keras model holding the members as sub-models whose
outputs ``expr``, ``va`` and ``au`` are the per-head means of the members' outputs, so
the live app, ``evaluate`` and the TFLite export use it like any other bundle.

Members' training records:

* ``data.sampling: seed`` (the seed's recipe, :mod:`liveaffect.data.sampling`): the
  balanced pool is cut into ``K + 2`` class-stratified subsets (at least the recipe's
  ``n_subsets``); member ``i`` trains on subset ``i`` with its class balancer, and the
  recipe's balanced validation subset stops every member early;
* otherwise the training records are dealt into K parts by recording (a recording never
  straddles two members), and every member validates on the same validation records.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from liveaffect.bundle import HEADS, HeadInfo, ModelCard, load_bundle, save_bundle
from liveaffect.data.records import Record
from liveaffect.training.config import RunConfig, load_config
from liveaffect.training.inputs import TrainingError
from liveaffect.training.state import ENSEMBLE_FILE, STATE_FILE


def member_records(
    cfg: RunConfig, train: Sequence[Record], val: Sequence[Record], k: int
) -> list[tuple[list[Record], list[Record]]]:
    """``(train, validation)`` records of each of ``k`` members (see the module doc)."""
    from liveaffect.data.sampling import class_counts, member_splits, members_report

    recipe = cfg.data.seed_recipe() if cfg.data.sampling == "seed" else None
    try:
        parts = member_splits(train, val, k, recipe, cfg.train.seed)
    except ValueError as exc:
        if recipe is None:
            raise TrainingError(str(exc)) from exc
        raise TrainingError(f"the seed recipe cannot be applied: {exc}") from exc
    if recipe is not None:
        print(members_report(class_counts(train), [member for member, _ in parts]))
    return parts


def average_models(models: Sequence, name: str = "liveaffect_ensemble"):
    """One functional model whose ``expr``/``va``/``au`` are the means of ``models``'."""
    import keras
    from keras import layers

    inputs = keras.Input(tuple(models[0].inputs[0].shape[1:]), name="face")
    outs = []
    for i, model in enumerate(models):
        member = keras.Model(model.inputs, model.outputs, name=f"member_{i}")
        outs.append(dict(zip(_head_names(model), member(inputs), strict=True)))
    merged = {h: layers.Average(name=h)([o[h] for o in outs]) for h in HEADS}
    return keras.Model(inputs, merged, name=name)


def _head_names(model) -> list[str]:
    from liveaffect.bundle import map_outputs

    index = map_outputs(model)
    missing = [h for h in HEADS if h not in index]
    if missing:
        raise TrainingError(f"an ensemble member has no {', '.join(missing)} output")
    by_index = {i: h for h, i in index.items()}
    return [by_index[i] for i in range(len(model.outputs))]


def _check_layout(run_dir: Path, k: int, cfg: RunConfig) -> None:
    """Refuse a folder that holds another run (a single model, an ensemble of another
    size or config) before anything in it is written; then mark it as this ensemble's."""
    path = run_dir / ENSEMBLE_FILE
    if (run_dir / "checkpoints" / STATE_FILE).exists():
        raise TrainingError(
            f"{run_dir} holds a single model's run (trained without --members); "
            "use a new --out folder"
        )
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("members") != k:
            raise TrainingError(
                f"{run_dir} holds an ensemble of {saved.get('members')} members, not {k}; "
                "use a new --out folder"
            )
        config = run_dir / "config.yaml"
        if config.exists() and load_config(config).to_dict() != cfg.to_dict():
            raise TrainingError(
                f"{run_dir} holds an ensemble trained with a different config; "
                "use a new --out folder"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"members": k}, indent=2) + "\n")
    cfg.save(run_dir / "config.yaml")


def train_ensemble(
    cfg: RunConfig,
    run_dir: str | Path,
    members: int,
    command: str = "",
    verbose: str | int = "auto",
    progress: bool = True,
) -> Path:
    """Train (or resume) ``members`` ensemble members and save the averaging bundle.

    Args:
        cfg: the run configuration, shared by every member.
        run_dir: the ensemble's folder; member ``i`` trains in ``run_dir/member_{i}``.
        members: number of members K (>= 1).
        command: the command line, recorded in the cards.
        verbose: Keras' ``fit`` verbosity.
        progress: show progress bars while decoding faces.

    Returns:
        The ensemble bundle's folder (``run_dir/bundle``).

    Raises:
        TrainingError: K < 1, too little data for K members, or a resume with a
            different config or K.
    """
    from liveaffect.training.inputs import resolve_records
    from liveaffect.training.train import train

    if members < 1:
        raise TrainingError(f"an ensemble needs at least 1 member, got {members}")
    run_dir = Path(run_dir)
    train_records, val_records = resolve_records(cfg)  # first: bad data makes no folder
    parts = member_records(cfg, train_records, val_records, members)
    _check_layout(run_dir, members, cfg)
    bundles = []
    for i, records in enumerate(parts):
        print(f"--- ensemble member {i + 1}/{members}: {len(records[0])} training faces")
        bundles.append(
            train(cfg, run_dir / f"member_{i}", command, verbose, progress, records=records)
        )
    return _save_ensemble(cfg, run_dir, bundles, parts, command)


def _save_ensemble(cfg, run_dir: Path, bundles: list[Path], parts, command: str) -> Path:
    from liveaffect.training.inputs import preprocess_spec
    from liveaffect.training.monitor import ValidationSet, evaluate_model

    loaded = [load_bundle(path) for path in bundles]
    model = average_models([b.model for b in loaded])
    spec = preprocess_spec(cfg)
    val_records = parts[0][1]
    metrics: dict = {"members": [b.card.metrics for b in loaded]}
    if val_records:
        from liveaffect.data.dataset import decode_all, label_arrays

        images = decode_all(val_records, spec, progress=False)
        val = ValidationSet(images, label_arrays(val_records))
        metrics["validation"] = evaluate_model(model, val, spec, cfg.train.tta).to_dict()
        metrics["note"] = "the averaged model on the members' validation set"
    heads = {}
    for head in HEADS:
        infos = [b.card.heads.get(head, HeadInfo(trained=False)) for b in loaded]
        seen = sorted({c for i in infos for c in (i.classes_seen or [])}, key=_class_order)
        heads[head] = HeadInfo(
            trained=any(i.trained for i in infos),
            data="; ".join(f"member_{k}: {i.data}" for k, i in enumerate(infos)),
            classes_seen=seen if head == "expr" else None,
        )
    card = ModelCard(
        name=cfg.name,
        backbone=cfg.model.backbone,
        preprocess=spec,
        heads=heads,
        metrics=metrics,
        tta=cfg.train.tta.card_entry(),
        training={
            "command": command,
            "config": cfg.to_dict(),
            "ensemble": {
                "members": [
                    {
                        "path": str(path.parent.relative_to(run_dir)),
                        "faces": len(records[0]),
                        "best_epoch": b.card.training.get("best_epoch"),
                        "train_seconds": b.card.training.get("train_seconds"),
                    }
                    for path, b, records in zip(bundles, loaded, parts, strict=True)
                ],
                "sampling": cfg.data.sampling,
                "combine": "mean of the members' outputs per head",
            },
            "train_seconds": _total_seconds(loaded),
            "faces": {"train": [len(r[0]) for r in parts], "validation": len(val_records)},
        },
        notes=f"Ensemble of {len(bundles)} members (averaged outputs).",
    )
    bundle = save_bundle(model, card, run_dir / "bundle")
    print(f"ensemble bundle written to {bundle}")
    return bundle


def _total_seconds(loaded) -> float | None:
    """The members' training time added up; None when a member's card does not say."""
    seconds = [b.card.training.get("train_seconds") for b in loaded]
    return None if None in seconds else round(sum(seconds), 1)


def _class_order(name: str) -> int:
    from liveaffect.labels import EXPRESSIONS

    return EXPRESSIONS.index(name) if name in EXPRESSIONS else len(EXPRESSIONS)
