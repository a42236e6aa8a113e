"""How predictions shift on degraded copies of a test set: accuracy drop and class shares.

A model that falls apart on video rarely just gets noisier: it drifts towards one class
(a dim, blurred face reads as Sadness). Two numbers catch that: the accuracy drop from
the clean set, and each class's *prediction share* against its *true share* (a ratio far
above 1 is a class that eats the others). Classes the labels never contain (FER2013 has no
Other) get their share alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from liveaffect.evaluation.result import HEADLINE_METRICS, EvaluationResult


def prediction_share(
    expr_labels: np.ndarray, expr_probs: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Per class: share of the labelled faces predicted as it, share truly it, and the ratio.

    Args:
        expr_labels: (N,) class indices, -1 = missing (left out).
        expr_probs: (N, C) probabilities (the argmax is the prediction).
        class_names: the C names in index order.

    Returns:
        ``{"n", "predicted": {name: share}, "true": {name: share}, "ratio": {name: ratio
        or None for a class with no true faces}, "max_ratio", "max_ratio_class",
        "unlabelled_share": share predicted as classes with no true faces}``.
    """
    labels = np.asarray(expr_labels).reshape(-1)
    keep = labels >= 0
    n = int(keep.sum())
    c = len(class_names)
    if n == 0:
        return {"n": 0}
    predicted = np.bincount(np.asarray(expr_probs)[keep].argmax(axis=1), minlength=c) / n
    true = np.bincount(labels[keep], minlength=c) / n
    ratio = [float(p / t) if t > 0 else None for p, t in zip(predicted, true, strict=True)]
    valid = [(r, name) for r, name in zip(ratio, class_names, strict=True) if r is not None]
    worst = max(valid)
    return {
        "n": n,
        "predicted": {name: float(v) for name, v in zip(class_names, predicted, strict=True)},
        "true": {name: float(v) for name, v in zip(class_names, true, strict=True)},
        "ratio": dict(zip(class_names, ratio, strict=True)),
        "max_ratio": worst[0],
        "max_ratio_class": worst[1],
        "unlabelled_share": float(predicted[true == 0].sum()),
    }


def copy_entry(
    kind: str, description: str, clean: EvaluationResult, degraded: EvaluationResult, share
) -> dict[str, Any]:
    """One degraded copy's row: its headline metrics, the change from clean, class shares."""

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else float(a - b)

    return {
        "kind": kind,
        "description": description,
        "expr_accuracy": degraded.expr.accuracy,
        "expr_macro_f1": degraded.expr.macro_f1,
        "accuracy_drop": diff(clean.expr.accuracy, degraded.expr.accuracy),
        "macro_f1_drop": diff(clean.expr.macro_f1, degraded.expr.macro_f1),
        "va_ccc_mean": degraded.va.ccc_mean,
        "au_mean_f1": degraded.au.mean_f1,
        "prediction_share": share,
    }


def drop_interval(
    keys: Sequence[str],
    expr_labels: np.ndarray,
    clean_probs: np.ndarray,
    degraded_probs: np.ndarray,
    n_resamples: int,
    seed: int = 0,
) -> list[float | None] | None:
    """95% bootstrap interval ``[low, high]`` of the accuracy drop from clean to degraded,
    paired: each resample draws the same groups (``keys``, e.g. images) for both, so the
    interval is about the drop, not about two independent accuracies. None when fewer than
    two groups carry an expression label.
    """
    from liveaffect.evaluation.uncertainty import bootstrap_intervals

    labels = np.asarray(expr_labels).reshape(-1)
    right_clean = np.asarray(clean_probs).argmax(axis=1) == labels
    right_degraded = np.asarray(degraded_probs).argmax(axis=1) == labels
    labelled = labels >= 0

    def statistic(idx: np.ndarray) -> dict[str, float | None]:
        keep = idx[labelled[idx]]
        if len(keep) == 0:
            return {"drop": None}
        return {"drop": float(right_clean[keep].mean() - right_degraded[keep].mean())}

    got = bootstrap_intervals(keys, statistic, n_resamples, seed=seed)["metrics"].get("drop")
    return None if got is None else [got["low"], got["high"]]


def with_copies(
    clean: Callable[[np.ndarray], Mapping[str, float | None]],
    copies: Mapping[str, Callable[[np.ndarray], Mapping[str, float | None]]],
) -> Callable[[np.ndarray], dict[str, float | None]]:
    """One statistic from the clean images' and each degraded copy's (frame indices ->
    metrics, e.g. :meth:`Predictions.statistic`): the clean headline metrics, then per copy
    ``<kind>_expr_accuracy`` and ``<kind>_accuracy_drop`` (clean minus copy)."""

    def statistic(idx: np.ndarray) -> dict[str, float | None]:
        got = clean(idx)
        out = {k: got.get(k) for k in HEADLINE_METRICS}
        for kind, copy in copies.items():
            acc = copy(idx).get("expr_accuracy")
            out[f"{kind}_expr_accuracy"] = acc
            base = out["expr_accuracy"]
            out[f"{kind}_accuracy_drop"] = None if acc is None or base is None else base - acc
        return out

    return statistic


def markdown_section(robustness: dict[str, Any]) -> list[str]:
    """Report lines: one row per copy, then predicted share per class per copy."""
    copies = robustness.get("copies") or {}
    clean = robustness.get("clean") or {}
    if not copies and not clean.get("n"):
        return []

    def f(v, digits=3):
        return "n/a" if v is None else f"{v:.{digits}f}"

    out = ["## Prediction share and robustness", ""]
    if copies:
        out += [
            "Degraded copies of every image (`evaluate --degrade`); the drop is from the clean "
            "images (in brackets its 95% bootstrap interval, the same images drawn for both), "
            "the share ratio is the most over-predicted class's predicted share over its true "
            "share.",
            "",
            "| copy | what | accuracy | drop | macro F1 | max share ratio | AU F1 | VA CCC |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for kind, e in copies.items():
            share = e["prediction_share"]
            ratio = f(share.get("max_ratio"), 2)
            if share.get("max_ratio") is not None:
                ratio += f" ({share.get('max_ratio_class', '')})"
            drop = f(e["accuracy_drop"])
            span = e.get("accuracy_drop_interval")
            if span and None not in span:
                drop += f" [{f(span[0])}, {f(span[1])}]"
            out.append(
                f"| {kind} | {e['description']} | {f(e['expr_accuracy'])} | "
                f"{drop} | {f(e['expr_macro_f1'])} | {ratio} | "
                f"{f(e['au_mean_f1'])} | {f(e['va_ccc_mean'])} |"
            )
        out.append("")
    if clean.get("n"):
        names = list(clean["predicted"])
        header = ["class", "true share", "clean", *copies]
        out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name in names:
            cells = [name, f(clean["true"][name]), f(clean["predicted"][name])]
            cells += [f(_predicted(e).get(name)) for e in copies.values()]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return out


def _predicted(entry: dict[str, Any]) -> dict[str, float]:
    """A copy's predicted share per class; empty when no face of it was scored (with
    ``--detect`` the detector can find none in a degraded copy)."""
    return entry["prediction_share"].get("predicted") or {}


def plot_shares(robustness: dict[str, Any], path) -> Any:
    """Grouped bars: true share and predicted share per class, clean and each copy."""
    clean = robustness.get("clean") or {}
    if not clean.get("n"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(clean["predicted"])
    series = {"true": clean["true"], "clean": clean["predicted"]}
    for kind, e in (robustness.get("copies") or {}).items():
        if _predicted(e):  # a copy with no face scored (--detect found none) has no bars
            series[kind] = _predicted(e)
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(names)), 3.6))
    x = np.arange(len(names))
    for i, (label, values) in enumerate(series.items()):
        hatch = "//" if label == "true" else None
        ax.bar(x + i * width, [values[n] for n in names], width, label=label, hatch=hatch)
    ax.set_xticks(x + width * (len(series) - 1) / 2, names, rotation=20)
    ax.set(ylabel="share of faces", title="predicted share per class (true share hatched)")
    tallest = max(max(values.values(), default=0.0) for values in series.values())
    rows = -(-len(series) // 6)
    ax.set_ylim(0.0, max(tallest, 0.01) * (1.25 + 0.12 * rows))  # room for the legend
    ax.legend(fontsize=8, ncol=min(len(series), 6), loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
