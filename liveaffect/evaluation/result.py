"""Every ABAW metric of one evaluation together: the result object (printable, JSON-ready,
with the multi-task score) and :func:`evaluate_arrays`, which fills it from label and
prediction arrays using the per-task metrics in :mod:`liveaffect.evaluation.metrics`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liveaffect.evaluation.metrics import (
    AUMetrics,
    ExprMetrics,
    VAMetrics,
    au_metrics,
    expression_metrics,
    va_metrics,
)
from liveaffect.labels import AUS, EXPRESSIONS


@dataclass
class EvaluationResult:
    """All metrics of one evaluation, printable and serialisable.

    Attributes:
        expr, va, au: per-task metrics (``n == 0`` and None values when absent).
        meta: free-form facts about the run (model, data, images read, misses ...).
        notes: human-readable caveats, printed and written to the report.
        robustness: ``clean``: the expression prediction share per class
            (:func:`liveaffect.evaluation.robustness.prediction_share`); ``copies``: one
            entry per degraded copy scored (``evaluate --degrade``).
        intervals: bootstrap confidence intervals of the headline metrics
            (:func:`liveaffect.evaluation.uncertainty.bootstrap_intervals`); empty when
            not computed.
        comparison: this model against a baseline on the same images (``evaluate
            --baseline``): :func:`liveaffect.evaluation.uncertainty.paired_differences`
            plus ``baseline`` (its path); empty when not asked for.
    """

    expr: ExprMetrics = field(default_factory=ExprMetrics)
    va: VAMetrics = field(default_factory=VAMetrics)
    au: AUMetrics = field(default_factory=AUMetrics)
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    robustness: dict[str, Any] = field(default_factory=dict)
    intervals: dict[str, Any] = field(default_factory=dict)
    comparison: dict[str, Any] = field(default_factory=dict)

    @property
    def mtl_terms(self) -> dict[str, float | None]:
        """ABAW terms: P_VA (mean CCC), P_EXPR (macro F1 over all classes, an absent class
        counting 0: ``expr.abaw_macro_f1``), P_AU (mean F1 over all 12 AUs, None unless
        each has labels: ``au.abaw_mean_f1``)."""
        return {
            "va": self.va.ccc_mean,
            "expr": self.expr.abaw_macro_f1,
            "au": self.au.abaw_mean_f1,
        }

    @property
    def mtl_score(self) -> float | None:
        """``P_MTL = P_VA + P_EXPR + P_AU``; None unless all three terms exist."""
        terms = self.mtl_terms.values()
        return None if None in terms else float(sum(terms))

    @property
    def mtl_partial(self) -> float | None:
        """Sum of the ABAW terms that exist (None if none does); equals mtl_score when
        complete. Training picks epochs by its own sum (``training.monitor.selection_score``)."""
        terms = [t for t in self.mtl_terms.values() if t is not None]
        return float(sum(terms)) if terms else None

    def to_dict(self) -> dict[str, Any]:
        """Nested JSON-ready dict: ``expr.macro_f1``, ``va.ccc_mean``, ``mtl_score`` ..."""
        terms = self.mtl_terms
        return {
            "expr": self.expr.to_dict(),
            "va": self.va.to_dict(),
            "au": self.au.to_dict(),
            "mtl_score": self.mtl_score,
            "mtl_partial": self.mtl_partial,
            "mtl_terms": [k for k, v in terms.items() if v is not None],
            "meta": self.meta,
            "notes": list(self.notes),
            "robustness": self.robustness,
            "intervals": self.intervals,
            "comparison": self.comparison,
        }

    def summary_rows(self) -> list[tuple[str, str, str]]:
        """(metric, value, frames) rows of the headline numbers."""

        def fmt(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.4f}"

        e, v, a = self.expr, self.va, self.au
        return [
            ("EXPR macro F1", fmt(e.macro_f1), str(e.n)),
            (f"EXPR P_EXPR ({len(e.class_names)} classes)", fmt(e.abaw_macro_f1), str(e.n)),
            ("EXPR accuracy", fmt(e.accuracy), str(e.n)),
            ("AU mean F1", fmt(a.mean_f1), str(a.n)),
            (f"AU P_AU ({len(a.thresholds)} AUs)", fmt(a.abaw_mean_f1), str(a.n)),
            ("VA CCC valence", fmt(v.ccc_valence), str(v.n_valence)),
            ("VA CCC arousal", fmt(v.ccc_arousal), str(v.n_arousal)),
            ("VA CCC mean", fmt(v.ccc_mean), str(v.n)),
            ("MTL score", fmt(self.mtl_score), ""),
            ("MTL partial sum", fmt(self.mtl_partial), ",".join(self.to_dict()["mtl_terms"])),
        ]

    def __str__(self) -> str:
        rows = [("metric", "value", "frames"), *self.summary_rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}" for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        if "tta" in self.meta:
            lines.append(f"test-time views: {self.meta['tta']}")
        lines.extend(self._interval_lines())
        for kind, e in (self.robustness.get("copies") or {}).items():
            share = e["prediction_share"]
            acc = "n/a" if e["expr_accuracy"] is None else f"{e['expr_accuracy']:.4f}"
            drop = "n/a" if e["accuracy_drop"] is None else f"{e['accuracy_drop']:+.4f}"
            span = e.get("accuracy_drop_interval")
            if span and None not in span:
                drop += f", 95% interval {signed_span(*span)}"
            ratio, worst = share.get("max_ratio"), share.get("max_ratio_class")
            worst = "" if ratio is None else f", max share ratio {ratio:.2f} ({worst})"
            lines.append(f"degraded '{kind}': accuracy {acc} (drop {drop}){worst}")
        lines.extend(self._comparison_lines())
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def _comparison_lines(self) -> list[str]:
        from liveaffect.evaluation.uncertainty import describe

        metrics = (self.comparison or {}).get("metrics") or {}
        if not metrics:
            return []
        lines = [f"against {self.comparison['baseline']} ({describe(self.comparison)}):"]
        for key, v in metrics.items():
            lines.append(
                f"  {comparison_label(key):<24} {v['model']:.4f} vs {v['baseline']:.4f}: "
                f"{v['value']:+.4f} [{signed_span(v['low'], v['high'])}] {v['verdict']}"
            )
        return lines

    def _interval_lines(self) -> list[str]:
        from liveaffect.evaluation.uncertainty import describe

        metrics = (self.intervals or {}).get("metrics") or {}
        shown = [(k, v) for k, v in metrics.items() if k in HEADLINE_METRICS]
        if not shown:
            return []
        lines = [describe(self.intervals) + ":"]
        for key, v in shown:
            if v["low"] is None or v["high"] is None:
                span = "undefined in some resamples"
            else:
                span = f"{v['low']:.4f} .. {v['high']:.4f}"
            lines.append(f"  {HEADLINE_METRICS[key]:<16} {v['value']:.4f}  [{span}]")
        return lines


HEADLINE_METRICS = {
    "expr_accuracy": "EXPR accuracy",
    "expr_macro_f1": "EXPR macro F1",
    "au_mean_f1": "AU mean F1",
    "va_ccc_mean": "VA CCC mean",
}
"""Interval keys printed in the summary (per-AU ones go to the report and the plot)."""


def signed_span(low: float | None, high: float | None) -> str:
    """An interval of a difference, ``+0.0012 .. +0.0200``; ``n/a`` without both ends."""
    return "n/a" if low is None or high is None else f"{low:+.4f} .. {high:+.4f}"


def comparison_label(key: str) -> str:
    """``blur_accuracy_drop`` -> ``blur: accuracy drop``; headline keys by their names."""
    if key in HEADLINE_METRICS:
        return HEADLINE_METRICS[key]
    for suffix, text in (("_expr_accuracy", "accuracy"), ("_accuracy_drop", "accuracy drop")):
        if key.endswith(suffix):
            return f"{key.removesuffix(suffix)}: {text}"
    return key


def evaluate_arrays(
    expr_labels: np.ndarray | None = None,
    expr_probs: np.ndarray | None = None,
    va_labels: np.ndarray | None = None,
    va_preds: np.ndarray | None = None,
    au_labels: np.ndarray | None = None,
    au_probs: np.ndarray | None = None,
    au_thresholds: float | Sequence[float] | None = None,
    class_names: Sequence[str] = EXPRESSIONS,
) -> EvaluationResult:
    """Compute every metric whose labels and predictions are both given.

    Any pair may be None; that task then has ``n == 0`` and None metrics.

    Args:
        expr_labels: (N,) ints, -1 = missing. expr_probs: (N, C) or (N,) ints.
        va_labels: (N, 2), -5 = missing. va_preds: (N, 2).
        au_labels: (N, 12), -1 = missing. au_probs: (N, 12).
        au_thresholds: one or 12 thresholds; default 0.5.
        class_names: expression class names in index order.
    """
    result = EvaluationResult()
    if expr_labels is not None and expr_probs is not None:
        result.expr = expression_metrics(expr_labels, expr_probs, class_names)
    else:
        result.expr = ExprMetrics(class_names=tuple(class_names))
    if va_labels is not None and va_preds is not None:
        result.va = va_metrics(va_labels, va_preds)
    if au_labels is not None and au_probs is not None:
        result.au = au_metrics(au_labels, au_probs, au_thresholds)
        au = result.au
        if au.n and au.abaw_mean_f1 is None:
            result.notes.append(
                f"Only {au.aus_labelled} of the {len(au.per_au)} AUs have labels: AU mean F1 "
                "averages those, and ABAW's P_AU (and with it the MTL score) is n/a."
            )
    elif au_thresholds is not None:
        t = np.broadcast_to(np.asarray(au_thresholds, np.float64), (len(AUS),))
        result.au = AUMetrics(thresholds=tuple(float(v) for v in t))
    return result
