"""Write an :class:`EvaluationResult` as JSON, a Markdown report and PNG plots.

Plots sit next to the report as ``<report stem>_confusion.png``, ``_f1.png``,
``_au_f1.png``, ``_va.png`` and ``_shares.png`` and are linked from it; a plot whose labels are
absent is not drawn.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from liveaffect.evaluation.result import (
    HEADLINE_METRICS,
    EvaluationResult,
    comparison_label,
    signed_span,
)
from liveaffect.evaluation.robustness import markdown_section, plot_shares

MAX_SCATTER_POINTS = 20_000
"""The valence/arousal scatter draws a fixed random sample of at most this many frames."""


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def write_json(result: EvaluationResult, path: str | os.PathLike) -> Path:
    """Write ``result.to_dict()`` as indented JSON (absent metrics are ``null``)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
    return out


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(result: EvaluationResult, path: Path) -> Path | None:
    """Row-normalised confusion matrix, each cell annotated with its count."""
    expr = result.expr
    if expr.n == 0 or expr.confusion is None:
        return None
    plt = _pyplot()
    counts = np.asarray(expr.confusion)
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    names = list(expr.class_names)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(names)):
        for j in range(len(names)):
            if rows[i, 0] == 0:
                continue
            colour = "white" if norm[i, j] > 0.5 else "black"
            text = f"{norm[i, j]:.2f}\n({counts[i, j]})"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
    ax.set_title(f"Expression confusion (n={expr.n}, macro F1 {_fmt(expr.macro_f1, 3)})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bar_chart(
    names: list[str],
    values: list[float | None],
    title: str,
    path: Path,
    spans: list[tuple[float, float] | None] | None = None,
) -> Path:
    """Bars of ``values``; ``spans`` (low, high) per bar draw interval whiskers."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(names) + 2), 4.0))
    heights = [0.0 if v is None else v for v in values]
    bars = ax.bar(range(len(names)), heights, color="#4c72b0")
    for i, span in enumerate(spans or []):
        if span is not None and values[i] is not None:
            low, high = span
            err = [[max(heights[i] - low, 0.0)], [max(high - heights[i], 0.0)]]
            ax.errorbar(i, heights[i], yerr=err, color="black", capsize=3, lw=1)
    tops = [bar.get_height() for bar in bars]
    for i, span in enumerate(spans or []):  # a label goes above its whisker, not through it
        if span is not None and values[i] is not None:
            tops[i] = max(tops[i], span[1])
    for bar, top, v in zip(bars, tops, values, strict=True):
        label = "n/a" if v is None else f"{v:.2f}"
        ax.text(bar.get_x() + bar.get_width() / 2, top + 0.01, label, ha="center", va="bottom")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylim(0.0, 1.12)
    ax.set_ylabel("F1")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_expr_f1(result: EvaluationResult, path: Path) -> Path | None:
    """Bar chart of per-class F1 (classes absent from the labels read n/a)."""
    expr = result.expr
    if expr.n == 0:
        return None
    names = list(expr.per_class)
    values = [expr.per_class[c]["f1"] for c in names]
    return _bar_chart(names, values, f"Per-class F1 (macro {_fmt(expr.macro_f1, 3)})", path)


def plot_au_f1(result: EvaluationResult, path: Path) -> Path | None:
    """Bar chart of per-AU F1 (AUs without labels read n/a)."""
    au = result.au
    if au.n == 0:
        return None
    names = list(au.per_au)
    values = [au.per_au[a]["f1"] for a in names]
    metrics = (result.intervals or {}).get("metrics") or {}
    spans = [_span(metrics.get(f"au_f1_{a}")) for a in names]
    title = f"Per-AU F1 (mean {_fmt(au.mean_f1, 3)})"
    if any(spans):
        level = round(100 * result.intervals["confidence"])
        title += f", {level}% bootstrap intervals over {result.intervals['unit']}s"
    return _bar_chart(names, values, title, path, spans if any(spans) else None)


def _span(entry: dict[str, Any] | None) -> tuple[float, float] | None:
    if not entry or entry["low"] is None or entry["high"] is None:
        return None
    return entry["low"], entry["high"]


def plot_va_scatter(result: EvaluationResult, path: Path) -> Path | None:
    """Two panels, valence and arousal: prediction against label, with the diagonal.

    At most :data:`MAX_SCATTER_POINTS` frames are drawn per panel (a fixed sample).
    """
    va = result.va
    if va.n == 0 or va.labels is None or va.preds is None:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.8))
    for k, (ax, name, score) in enumerate(
        zip(axes, ("valence", "arousal"), (va.ccc_valence, va.ccc_arousal), strict=True)
    ):
        ok = np.flatnonzero(np.isfinite(va.labels[:, k]))
        shown = ok
        if len(ok) > MAX_SCATTER_POINTS:  # a readable plot; the CCC uses every frame
            shown = np.random.default_rng(0).choice(ok, MAX_SCATTER_POINTS, replace=False)
        alpha = 0.4 if len(shown) < 2000 else 0.1
        ax.scatter(va.labels[shown, k], va.preds[shown, k], s=5, alpha=alpha, color="#4c72b0")
        ax.plot([-1, 1], [-1, 1], color="grey", lw=1, ls="--")
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-1.05, 1.05)
        ax.set_aspect("equal")
        ax.set_xlabel(f"label {name}")
        ax.set_ylabel(f"predicted {name}")
        ax.set_title(f"{name}: CCC {_fmt(score, 3)} (n={len(ok)})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(result: EvaluationResult, report_path: str | os.PathLike) -> dict[str, Path]:
    """Draw every plot whose labels exist next to ``report_path``; returns kind -> file."""
    base = Path(report_path)
    base.parent.mkdir(parents=True, exist_ok=True)
    makers = {
        "confusion": plot_confusion,
        "f1": plot_expr_f1,
        "au_f1": plot_au_f1,
        "va": plot_va_scatter,
        "shares": lambda result, path: plot_shares(result.robustness, path),
    }
    written = {}
    for kind, make in makers.items():
        out = make(result, base.with_name(f"{base.stem}_{kind}.png"))
        if out is not None:
            written[kind] = out
    return written


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return [*lines, ""]


NO_FACE_TEXT = {
    "skip": "they are excluded from every metric above.",
    "error": "they count as errors in every metric above (no expression predicted, "
    "valence/arousal 0, no AU active).",
    "whole": "the whole image was scored as the face instead.",
}


def _meta_lines(meta: dict[str, Any]) -> list[str]:
    if not meta:
        return []
    lines = ["## Run", ""]
    for key, value in meta.items():
        if isinstance(value, list | tuple) and len(value) > 10:
            value = f"{len(value)} items, first: {', '.join(map(str, value[:5]))}"
        lines.append(f"- **{key}**: {value}")
    return [*lines, ""]


def markdown(
    result: EvaluationResult, plots: dict[str, Path] | None = None, title: str = ""
) -> str:
    """The Markdown report text; ``plots`` (kind -> file) are linked by file name."""
    plots = plots or {}
    out = [f"# {title or 'liveaffect evaluation'}", ""]
    out += _summary_section(result)
    out += _interval_section(result)
    out += _comparison_section(result)
    out += _expression_section(result)
    out += _plot_links(plots, (("confusion", "confusion matrix"), ("f1", "per-class F1")))
    out += _au_section(result)
    out += _plot_links(plots, (("au_f1", "per-AU F1"),))
    out += _va_section(result)
    out += _plot_links(plots, (("va", "valence and arousal"),))
    out += markdown_section(result.robustness)
    out += _plot_links(plots, (("shares", "prediction share per class"),))
    return "\n".join(out)


def _plot_links(plots: dict[str, Path], kinds) -> list[str]:
    out = []
    for kind, alt in kinds:
        if kind in plots:
            out += [f"![{alt}]({Path(plots[kind]).name})", ""]
    return out


def _summary_section(result: EvaluationResult) -> list[str]:
    out = ["## Summary", ""]
    out += _table(["metric", "value", "frames"], [list(r) for r in result.summary_rows()])
    out.append(
        "The multi-task score is P_VA + P_EXPR + P_AU (mean CCC + macro F1 + mean AU F1), "
        "each on the frames that carry that label; it is n/a unless all three exist, and the "
        "partial sum adds the terms that do."
    )
    out.append("")
    out.append(
        f"EXPR macro F1 averages the classes present in the labels; P_EXPR (ABAW) averages "
        f"all {len(result.expr.class_names)}, a class absent from the labels counting 0. "
        "AU mean F1 averages the AUs with labels; P_AU (ABAW) averages all 12 and is n/a "
        "unless every AU has labels."
    )
    out.append("")
    meta = dict(result.meta)
    misses = meta.get("detection_misses")
    if misses is not None:
        out += [
            "## Face detection",
            "",
            f"The face detector found no face in **{misses}** image(s) (detection rate "
            f"{meta.get('detection_rate', float('nan')):.3f}); "
            + NO_FACE_TEXT.get(meta.get("no_face", "skip"), ""),
            "",
        ]
    if result.notes:
        out += ["## Notes", "", *(f"- {n}" for n in result.notes), ""]
    return out + _meta_lines(meta)


def _interval_section(result: EvaluationResult) -> list[str]:
    from liveaffect.evaluation.uncertainty import describe

    metrics = (result.intervals or {}).get("metrics") or {}
    if not metrics:
        return []
    rows = []
    for key, v in metrics.items():
        name = HEADLINE_METRICS.get(key) or f"{key.removeprefix('au_f1_')} F1"
        rows.append([name, _fmt(v["value"]), _fmt(v["low"]), _fmt(v["high"])])
    unit = result.intervals["unit"]
    out = ["## How sure these numbers are", ""]
    out += _table(["metric", "value", "low", "high"], rows)
    drawn = f"the {unit}s are drawn with replacement"
    if result.intervals["groups"] < result.intervals["frames"]:
        drawn += ", each with all of its frames"
    out.append(
        f"{describe(result.intervals)}: {drawn} (percentile intervals, scipy.stats.bootstrap, "
        f"seed {result.intervals['seed']}). They describe how much the number would move on "
        f"other {unit}s like these; they do not cover thresholds tuned on this same data."
    )
    return [*out, ""]


def _comparison_section(result: EvaluationResult) -> list[str]:
    from liveaffect.evaluation.uncertainty import describe

    metrics = (result.comparison or {}).get("metrics") or {}
    if not metrics:
        return []
    rows = [
        [
            comparison_label(key),
            _fmt(v["model"]),
            _fmt(v["baseline"]),
            f"{v['value']:+.4f}",
            signed_span(v["low"], v["high"]),
            v["verdict"],
        ]
        for key, v in metrics.items()
    ]
    out = [f"## Against the baseline `{result.comparison['baseline']}`", ""]
    out += _table(["metric", "this model", "baseline", "difference", "interval", "verdict"], rows)
    out.append(
        f"Both models scored the same images, each with its own card's views and AU thresholds. "
        f"{describe(result.comparison)}, paired: each resample draws the same "
        f"{result.comparison['unit']}s for both models, so the interval is about the "
        "difference itself. 'better' / 'worse' only where the interval excludes 0 (a lower "
        "accuracy drop is better)."
    )
    return [*out, ""]


def _expression_section(result: EvaluationResult) -> list[str]:
    expr = result.expr
    out = ["## Expressions", ""]
    if expr.n == 0:
        return [*out, "No expression labels.", ""]
    rows = [
        [name, _fmt(v["precision"]), _fmt(v["recall"]), _fmt(v["f1"]), str(v["support"])]
        for name, v in expr.per_class.items()
    ]
    macro = [_fmt(expr.macro_precision), _fmt(expr.macro_recall), _fmt(expr.macro_f1)]
    rows.append(["**macro** (classes present)", *macro, str(expr.n)])
    every = f"**macro F1, all {len(expr.class_names)}** (P_EXPR)"
    rows.append([every, "", "", _fmt(expr.abaw_macro_f1), str(expr.n)])
    out += _table(["class", "precision", "recall", "F1", "support"], rows)
    return [*out, f"Accuracy: {_fmt(expr.accuracy)} over {expr.n} frames.", ""]


def _au_section(result: EvaluationResult) -> list[str]:
    au = result.au
    out = ["## Action units", ""]
    if au.n == 0:
        return [*out, "No action-unit labels.", ""]
    rows = [
        [
            name,
            _fmt(v["f1"]),
            _fmt(v["precision"]),
            _fmt(v["recall"]),
            f"{v['threshold']:.2f}",
            str(v["positives"]),
            str(v["n"]),
        ]
        for name, v in au.per_au.items()
    ]
    rows.append(["**mean** (AUs with labels)", _fmt(au.mean_f1), "", "", "", "", str(au.n)])
    every = f"**mean, all {len(au.per_au)}** (P_AU)"
    rows.append([every, _fmt(au.abaw_mean_f1), "", "", "", "", str(au.n)])
    return out + _table(["AU", "F1", "precision", "recall", "threshold", "positives", "n"], rows)


def _va_section(result: EvaluationResult) -> list[str]:
    va = result.va
    out = ["## Valence and arousal", ""]
    if va.n == 0:
        return [*out, "No valence/arousal labels.", ""]
    rows = [
        ["valence", _fmt(va.ccc_valence), str(va.n_valence)],
        ["arousal", _fmt(va.ccc_arousal), str(va.n_arousal)],
        ["mean (P_VA)", _fmt(va.ccc_mean), str(va.n)],
    ]
    out += _table(["", "CCC", "frames"], rows)
    return [*out, "CCC is pooled over all valid frames (population moments, as in ABAW).", ""]


def write_report(
    result: EvaluationResult,
    path: str | os.PathLike,
    title: str = "",
    plots: bool = True,
) -> dict[str, Path]:
    """Write the Markdown report (and its plots next to it).

    Returns:
        ``{"report": path, "confusion": ..., ...}`` for every file written.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    drawn = write_plots(result, out) if plots else {}
    out.write_text(markdown(result, drawn, title) + "\n")
    return {"report": out, **drawn}
