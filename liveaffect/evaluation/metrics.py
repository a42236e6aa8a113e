"""ABAW metrics in pure NumPy: expression F1, AU F1, valence/arousal CCC, the MTL score.

Conventions follow AFFWILD2.md. Missing labels are masked, never scored: expression
``-1``, action unit ``-1`` (per cell), valence/arousal ``-5`` (or NaN). Every metric is
computed only on the frames that carry its label; a metric whose labels are absent
is ``None`` (``null`` in JSON), never 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liveaffect.labels import AU_MISSING, AUS, EXPR_MISSING, EXPRESSIONS, VA_MISSING

DEFAULT_AU_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)
"""Thresholds tried by :func:`tune_au_thresholds` by default: 0.05, 0.10, ..., 0.95."""


def _opt(value: float | None) -> float | None:
    return None if value is None else float(value)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (scikit-learn's ``zero_division=0``)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


# --------------------------------------------------------------------------- expressions


@dataclass
class ExprMetrics:
    """Expression classification metrics over the frames with a label.

    Attributes:
        n: number of frames with a valid label.
        accuracy: fraction of correct predictions, or None when ``n == 0``.
        macro_precision, macro_recall, macro_f1: unweighted means over the classes
            present in the labels (a class only predicted does not enter them): the
            macro-F1 the card quotes for sets that lack classes (FER2013 has no Other).
        abaw_macro_f1: ABAW's ``P_EXPR``: the unweighted mean F1 over all C classes
            (scikit-learn's ``f1_score(labels=range(C), average="macro",
            zero_division=0)``); a class absent from the labels counts 0, so it equals
            ``macro_f1`` only when every class occurs in the labels.
        per_class: class name -> ``precision``, ``recall``, ``f1`` (None for a class
            absent from the labels), ``support`` (labelled frames) and ``predicted``.
        confusion: (C, C) counts, rows = true class, columns = predicted class.
        class_names: names in index order.
    """

    n: int = 0
    accuracy: float | None = None
    macro_precision: float | None = None
    macro_recall: float | None = None
    macro_f1: float | None = None
    abaw_macro_f1: float | None = None
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    confusion: np.ndarray | None = None
    class_names: tuple[str, ...] = EXPRESSIONS

    @property
    def classes_present(self) -> list[str]:
        return [c for c, v in self.per_class.items() if v["support"] > 0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": _opt(self.accuracy),
            "macro_precision": _opt(self.macro_precision),
            "macro_recall": _opt(self.macro_recall),
            "macro_f1": _opt(self.macro_f1),
            "abaw_macro_f1": _opt(self.abaw_macro_f1),
            "classes_present": self.classes_present,
            "per_class": self.per_class,
            "confusion": None if self.confusion is None else self.confusion.tolist(),
            "class_names": list(self.class_names),
        }


NO_PREDICTION = -1
"""An expression prediction that was not made (no face found): counted as wrong."""


def expression_metrics(
    labels: Sequence[int] | np.ndarray,
    predictions: np.ndarray,
    class_names: Sequence[str] = EXPRESSIONS,
) -> ExprMetrics:
    """Per-class and macro precision/recall/F1, accuracy and the confusion matrix.

    Two macro-F1s: ``macro_f1`` over the classes present in the labels, and
    ``abaw_macro_f1`` (ABAW's ``P_EXPR``) over all C classes, an absent class counting 0.

    Args:
        labels: (N,) int class indices; ``-1`` marks a missing label (ignored).
        predictions: (N, C) probabilities (argmax is taken) or (N,) predicted ints;
            ``-1`` is no prediction (e.g. no face found): wrong for its frame, and a false
            positive for no class.
        class_names: the C class names in index order.

    Returns:
        The metrics; all values None (and ``n == 0``) when no frame has a label.

    Raises:
        ValueError: shapes disagree, or a label or prediction is outside 0..C-1.
    """
    names = tuple(class_names)
    num = len(names)
    y, p = _labelled_classes(labels, predictions, num)
    made = p != NO_PREDICTION
    confusion = np.bincount(y[made] * num + p[made], minlength=num * num).reshape(num, num)
    tp = np.diag(confusion).astype(np.float64)
    support = np.bincount(y, minlength=num)
    predicted = confusion.sum(axis=0)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    present = support > 0
    per_class = {
        name: {
            "precision": float(precision[i]) if present[i] else None,
            "recall": float(recall[i]) if present[i] else None,
            "f1": float(f1[i]) if present[i] else None,
            "support": int(support[i]),
            "predicted": int(predicted[i]),
        }
        for i, name in enumerate(names)
    }
    n = len(y)
    if n == 0:
        return ExprMetrics(n=0, per_class=per_class, confusion=confusion, class_names=names)
    return ExprMetrics(
        n=n,
        accuracy=float(tp.sum() / n),
        macro_precision=float(precision[present].mean()),
        macro_recall=float(recall[present].mean()),
        macro_f1=float(f1[present].mean()),
        abaw_macro_f1=float(f1.mean()),  # _safe_div: 0 for a class never labelled
        per_class=per_class,
        confusion=confusion,
        class_names=names,
    )


def _labelled_classes(labels, predictions, num: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predicted classes of the frames with a label, checked to lie in 0..num-1
    (a prediction may also be -1: none made)."""
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    p = np.asarray(predictions)
    if p.ndim == 2:
        if p.shape[1] != num:
            raise ValueError(f"expression probabilities need {num} columns, got {p.shape[1]}")
        p = np.argmax(p, axis=1)
    p = p.astype(np.int64).reshape(-1)
    if len(p) != len(y):
        raise ValueError(f"{len(y)} expression labels but {len(p)} predictions")
    valid = y != EXPR_MISSING
    y, p = y[valid], p[valid]
    if np.any((y < 0) | (y >= num)):
        raise ValueError(f"expression labels must be -1 or 0..{num - 1}")
    if np.any((p < NO_PREDICTION) | (p >= num)):
        raise ValueError(f"expression predictions must be 0..{num - 1} (or -1: none)")
    return y, p


# --------------------------------------------------------------------------- action units


@dataclass
class AUMetrics:
    """Action-unit detection metrics (binary F1 of the positive class per AU).

    Attributes:
        n: number of frames with at least one valid AU label.
        mean_f1: mean F1 over the AUs that have labels, or None when none has (the AU
            mean F1 the card quotes).
        abaw_mean_f1: ABAW's ``P_AU``: the mean F1 over all K AUs, None unless every AU
            has labels (never a mean over fewer AUs); then equal to ``mean_f1``.
        aus_labelled: how many of the K AUs have at least one valid label.
        per_au: AU name -> ``f1``, ``precision``, ``recall`` (None when the AU has no
            label), ``n`` (labelled frames), ``positives`` and ``threshold``.
        thresholds: the per-AU decision thresholds used (positive if prob >= t).
    """

    n: int = 0
    mean_f1: float | None = None
    abaw_mean_f1: float | None = None
    aus_labelled: int = 0
    per_au: dict[str, dict[str, Any]] = field(default_factory=dict)
    thresholds: tuple[float, ...] = (0.5,) * len(AUS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean_f1": _opt(self.mean_f1),
            "abaw_mean_f1": _opt(self.abaw_mean_f1),
            "aus_labelled": self.aus_labelled,
            "per_au": self.per_au,
            "thresholds": [float(t) for t in self.thresholds],
        }


def _check_au(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    p = np.asarray(probs, np.float64)
    if y.ndim != 2 or y.shape != p.shape:
        raise ValueError(f"AU labels {y.shape} and probabilities {p.shape} must be the same (N, K)")
    y = y.astype(np.int64)
    if np.any((y != AU_MISSING) & (y != 0) & (y != 1)):
        raise ValueError("AU labels must be 0, 1 or -1 (missing)")
    return y, p


def _binary_counts(
    y: np.ndarray, p: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column TP, FP, FN over the valid cells of (N, K) labels."""
    valid = y != AU_MISSING
    pred = p >= thresholds[None, :]
    true = y == 1
    tp = np.sum(valid & pred & true, axis=0)
    fp = np.sum(valid & pred & ~true, axis=0)
    fn = np.sum(valid & ~pred & true, axis=0)
    return tp, fp, fn


def au_metrics(
    labels: np.ndarray,
    probs: np.ndarray,
    thresholds: float | Sequence[float] | None = None,
    au_names: Sequence[str] = AUS,
) -> AUMetrics:
    """Per-AU binary F1, its mean over the AUs that carry labels (``mean_f1``) and over
    all of them (``abaw_mean_f1``, ABAW's ``P_AU``: None unless every AU has labels).

    An AU with labels but neither a positive label nor a positive prediction has
    F1 0 (scikit-learn's ``zero_division=0``), as in the ABAW reference code.

    Args:
        labels: (N, K) of 0/1, ``-1`` = missing (per cell, ignored).
        probs: (N, K) probabilities.
        thresholds: one threshold for all AUs or K per-AU thresholds; default 0.5.
        au_names: the K AU names.

    Raises:
        ValueError: shapes disagree or labels are not 0/1/-1.
    """
    y, p = _check_au(labels, probs)
    k = y.shape[1]
    if len(au_names) != k:
        raise ValueError(f"{len(au_names)} AU names for {k} columns")
    t = np.broadcast_to(np.asarray(0.5 if thresholds is None else thresholds, np.float64), (k,))
    valid = y != AU_MISSING
    n_valid = valid.sum(axis=0)
    tp, fp, fn = _binary_counts(y, p, t)
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    has = n_valid > 0
    per_au = {
        name: {
            "f1": float(f1[j]) if has[j] else None,
            "precision": float(precision[j]) if has[j] else None,
            "recall": float(recall[j]) if has[j] else None,
            "n": int(n_valid[j]),
            "positives": int(tp[j] + fn[j]),
            "threshold": float(t[j]),
        }
        for j, name in enumerate(au_names)
    }
    return AUMetrics(
        n=int(valid.any(axis=1).sum()),
        mean_f1=float(f1[has].mean()) if has.any() else None,
        abaw_mean_f1=float(f1.mean()) if has.all() else None,
        aus_labelled=int(has.sum()),
        per_au=per_au,
        thresholds=tuple(float(v) for v in t),
    )


def tune_au_thresholds(
    probs: np.ndarray, labels: np.ndarray, grid: Sequence[float] | None = None
) -> np.ndarray:
    """Pick, per AU, the threshold from ``grid`` that maximises its F1 on this data.

    Ties go to the threshold closest to 0.5; an AU without labels keeps 0.5. Tune on
    validation data, then save the result with the model (card ``au_thresholds``).

    Args:
        probs: (N, K) probabilities.
        labels: (N, K) of 0/1, ``-1`` = missing.
        grid: candidate thresholds in [0, 1]; default 0.05, 0.10, ..., 0.95.

    Returns:
        (K,) float64 thresholds.
    """
    y, p = _check_au(labels, probs)
    candidates = np.asarray(DEFAULT_AU_GRID if grid is None else grid, np.float64).reshape(-1)
    if candidates.size == 0 or np.any((candidates < 0) | (candidates > 1)):
        raise ValueError("grid must hold thresholds in [0, 1]")
    k = y.shape[1]
    scores = np.empty((candidates.size, k))
    for i, t in enumerate(candidates):
        tp, fp, fn = _binary_counts(y, p, np.full(k, t))
        scores[i] = _safe_div(2 * tp, 2 * tp + fp + fn)
    best = np.full(k, 0.5)
    has = (y != AU_MISSING).any(axis=0)
    for j in np.flatnonzero(has):
        top = np.flatnonzero(scores[:, j] >= scores[:, j].max() - 1e-12)
        best[j] = candidates[top[np.argmin(np.abs(candidates[top] - 0.5))]]
    return best


# --------------------------------------------------------------------------- valence/arousal


def ccc(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """Concordance correlation coefficient with population (co)variances.

    ``2 cov(x, y) / (var x + var y + (mean x - mean y)^2)``, as in the ABAW reference.

    Returns:
        The CCC in [-1, 1], or None when fewer than 2 values are given or it is
        undefined (both series constant and equal).
    """
    a = np.asarray(x, np.float64).reshape(-1)
    b = np.asarray(y, np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"ccc needs equal lengths, got {a.size} and {b.size}")
    if a.size < 2:
        return None
    ma, mb = a.mean(), b.mean()
    cov = np.mean((a - ma) * (b - mb))
    den = a.var() + b.var() + (ma - mb) ** 2
    return None if den <= 0 else float(2.0 * cov / den)


@dataclass
class VAMetrics:
    """Valence/arousal CCC pooled over all valid frames.

    Attributes:
        n: frames with at least one valid value; ``n_valence`` / ``n_arousal`` per axis.
        ccc_valence, ccc_arousal: CCC per axis, or None without labels.
        ccc_mean: their mean (ABAW ``P_VA``), None unless both exist.
        labels, preds: (n, 2) values of the counted frames (NaN = missing), kept for
            plots and not written to JSON.
    """

    n: int = 0
    n_valence: int = 0
    n_arousal: int = 0
    ccc_valence: float | None = None
    ccc_arousal: float | None = None
    ccc_mean: float | None = None
    labels: np.ndarray | None = field(default=None, repr=False, compare=False)
    preds: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "n_valence": self.n_valence,
            "n_arousal": self.n_arousal,
            "ccc_valence": _opt(self.ccc_valence),
            "ccc_arousal": _opt(self.ccc_arousal),
            "ccc_mean": _opt(self.ccc_mean),
        }


def va_metrics(labels: np.ndarray, preds: np.ndarray) -> VAMetrics:
    """CCC of valence and arousal over the frames whose label is not ``-5``/NaN.

    Args:
        labels: (N, 2) valence, arousal; ``-5`` or NaN = missing (per value).
        preds: (N, 2) predictions.
    """
    y = np.asarray(labels, np.float64)
    p = np.asarray(preds, np.float64)
    if y.ndim != 2 or y.shape[1] != 2 or y.shape != p.shape:
        raise ValueError(f"VA labels {y.shape} and predictions {p.shape} must both be (N, 2)")
    valid = np.isfinite(y) & (y != VA_MISSING)
    cccs = [ccc(p[valid[:, k], k], y[valid[:, k], k]) for k in range(2)]
    rows = valid.any(axis=1)
    kept = np.where(valid, y, np.nan)[rows]
    mean = None if None in cccs else (cccs[0] + cccs[1]) / 2.0
    return VAMetrics(
        n=int(rows.sum()),
        n_valence=int(valid[:, 0].sum()),
        n_arousal=int(valid[:, 1].sum()),
        ccc_valence=cccs[0],
        ccc_arousal=cccs[1],
        ccc_mean=mean,
        labels=kept,
        preds=p[rows],
    )
