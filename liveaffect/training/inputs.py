"""What a run trains on: its records and splits, class and AU weights, which heads learn."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from liveaffect.bundle import HeadInfo
from liveaffect.data.records import Record
from liveaffect.labels import EXPRESSIONS, NUM_AUS, NUM_EXPRESSIONS
from liveaffect.preprocess import PreprocessSpec
from liveaffect.training.config import DEFAULT_LOSS_WEIGHTS, RunConfig, SourceSpec


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


def _read_source(spec: SourceSpec) -> list[Record]:
    from liveaffect.data.loaders import load_records
    from liveaffect.data.splits import holdout_part

    records = load_records(spec.path, split=spec.split, group_by=spec.group_by)
    if spec.holdout > 0:
        records = holdout_part(records, spec.holdout, spec.seed, spec.part)
    return records


def resolve_records(cfg: RunConfig) -> tuple[list[Record], list[Record]]:
    """Training and validation records for a config (validation never trained on)."""
    sources = [_read_source(spec) for spec in cfg.data.train]
    if any(spec.weak_au > 0 for spec in cfg.data.train):
        sources = _with_weak_au(sources, cfg)
    train: list[Record] = []
    for spec, recs in zip(cfg.data.train, sources, strict=True):
        train.extend(recs * int(spec.repeat))
    val: list[Record] = []
    for spec in cfg.data.validation:
        val.extend(_read_source(spec))
    read = len(train)
    if not cfg.data.validation:
        train, val = _split(train, cfg)
    if not train:
        where = ", ".join(spec.path for spec in cfg.data.train)
        why = (
            f"the {read} labelled images read all went to validation (data.split: "
            f"{cfg.data.split} holds a source's own validation or test split out)"
            if read
            else "no labelled images were read there (no image files, or every label missing)"
        )
        raise TrainingError(f"no training records in {where}: {why}")
    if len(val) > cfg.data.val_max_samples:
        rng = np.random.default_rng(cfg.train.seed)
        val = [val[i] for i in sorted(rng.choice(len(val), cfg.data.val_max_samples, False))]
    return train, val


def _with_weak_au(sources: list[list[Record]], cfg: RunConfig) -> list[list[Record]]:
    """Each source with ``weak_au`` > 0 given weak AU labels from the expression AU rates
    of all training sources' coded faces (:mod:`liveaffect.data.weak_au`)."""
    from liveaffect.data.weak_au import expression_au_rates, with_weak_au

    rates = expression_au_rates([r for recs in sources for r in recs])
    if not rates.any():
        raise TrainingError(
            "data.train: weak_au needs training faces with an expression and all 12 AUs coded "
            "(e.g. ckplus_au) to take each expression's AU rates from; there are none"
        )
    high, low = cfg.data.weak_au_high, cfg.data.weak_au_low
    return [
        with_weak_au(recs, rates, spec.weak_au, high, low, spec.seed) if spec.weak_au else recs
        for spec, recs in zip(cfg.data.train, sources, strict=True)
    ]


def _split(records: list[Record], cfg: RunConfig) -> tuple[list[Record], list[Record]]:
    """Cut validation from the training records as ``data.split`` says."""
    from liveaffect.data.splits import make_split

    if cfg.data.split == "random":
        print(
            "warning: data.split: random puts frames of one recording on both sides; "
            "validation scores will read high (the seed's split, for reproducing it)"
        )
    try:
        return make_split(records, cfg.data.split, cfg.data.val_fraction, cfg.train.seed)
    except ValueError as exc:
        raise TrainingError(f"data.split: {exc}") from exc


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
        if cfg.train.class_weight_max:
            w = min(w, cfg.train.class_weight_max)
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


# A card's ``data`` for a head whose training faces carry none of its labels.
NO_LABELS = {
    "expr": "no expression labels",
    "va": "no valence/arousal labels",
    "au": "no action-unit labels",
}


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

    weights = {**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}
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
            data = NO_LABELS[head]
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


def count_table(train: Sequence[Record], val: Sequence[Record]) -> str:
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
