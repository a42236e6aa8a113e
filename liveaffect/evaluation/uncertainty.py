"""Bootstrap confidence intervals of the headline metrics, resampling whole groups.

A mean AU F1 from 99 frames of 12 subjects is a rough estimate: two seeds of one training
config differ by 0.046 on it (final_model/MODEL_CARD.md). ``evaluate`` therefore reports
each headline metric with a percentile bootstrap interval. Frames are resampled by group,
not one by one: the group is what holdout splits keep together (the ``--group-by`` column,
e.g. the subject, else the recording; a still image is its own), because three
near-identical frames of one CK+ sequence are not three independent pieces of evidence.

:func:`scipy.stats.bootstrap` draws the resamples and takes the percentiles; this module
only turns a resample of groups into the frames it stands for (:func:`frames_of`) and
collects the metrics.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_RESAMPLES = 1000
"""Resamples per evaluation (``evaluate --bootstrap``); about a second on FER2013's 3,589."""

CONFIDENCE = 0.95

Statistic = Callable[[np.ndarray], Mapping[str, float | None]]
"""Frame indices -> metric name -> value (None: the metric does not exist on them)."""


def group_index(keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, starts, counts)``: the frames of group ``g`` (groups numbered in order of
    first appearance) are ``order[starts[g] : starts[g] + counts[g]]``."""
    _, first, inverse, counts = np.unique(
        np.asarray(keys, dtype=object).astype(str),
        return_index=True,
        return_inverse=True,
        return_counts=True,
    )
    rank = np.empty(len(first), np.int64)  # unique's sorted order -> order of appearance
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    groups = rank[inverse.ravel()]
    order = np.argsort(groups, kind="stable")
    counts = np.bincount(groups, minlength=len(first))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, starts, counts


def frames_of(
    groups: np.ndarray, order: np.ndarray, starts: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """The frame indices of a resample of group numbers (a group drawn twice gives its
    frames twice), from :func:`group_index`'s arrays."""
    groups = np.asarray(groups, np.int64)
    lengths = counts[groups]
    total = int(lengths.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return order[np.repeat(starts[groups], lengths) + offsets]


def bootstrap_intervals(
    keys: Sequence[str],
    statistic: Statistic,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    unit: str = "group",
) -> dict[str, Any]:
    """Percentile bootstrap intervals of every metric ``statistic`` gives on all frames.

    Args:
        keys: each frame's group (frames of one group are drawn together).
        statistic: frame indices -> metric values (:data:`Statistic`).
        n_resamples: bootstrap resamples (at least 1).
        confidence: the intervals' level, e.g. 0.95.
        seed: seeds the resampling, so a rerun gives the same intervals.
        unit: what a group is, for the report (e.g. ``subject``).

    Returns:
        ``{"unit", "groups", "frames", "resamples", "confidence", "seed", "metrics": {name:
        {"value", "low", "high"}}}``; ``metrics`` is empty with fewer than two groups (an
        interval needs variation between groups). A bound is None where resamples left the
        metric undefined (e.g. no frame with that label drawn).

    Raises:
        ValueError: ``n_resamples`` < 1 or ``confidence`` outside (0, 1).
    """
    from scipy.stats import bootstrap

    if n_resamples < 1:
        raise ValueError(f"the bootstrap needs at least 1 resample, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    order, starts, counts = group_index(keys)
    point = {k: v for k, v in statistic(np.arange(len(keys))).items() if v is not None}
    out: dict[str, Any] = {
        "unit": unit,
        "groups": len(counts),
        "frames": len(keys),
        "resamples": int(n_resamples),
        "confidence": float(confidence),
        "seed": int(seed),
        "metrics": {},
    }
    if len(counts) < 2 or not point:
        return out
    names = list(point)

    def values(groups: np.ndarray) -> np.ndarray:
        got = statistic(frames_of(groups, order, starts, counts))
        return np.array([np.nan if got.get(k) is None else got[k] for k in names], np.float64)

    with warnings.catch_warnings():  # a metric that never varies (F1 1.0 in every resample)
        warnings.simplefilter("ignore")
        res = bootstrap(
            (np.arange(len(counts)),),
            values,
            n_resamples=int(n_resamples),
            vectorized=False,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    low, high = (
        np.atleast_1d(res.confidence_interval.low),
        np.atleast_1d(res.confidence_interval.high),
    )
    for i, name in enumerate(names):
        out["metrics"][name] = {
            "value": float(point[name]),
            "low": None if not np.isfinite(low[i]) else float(low[i]),
            "high": None if not np.isfinite(high[i]) else float(high[i]),
        }
    return out


def describe(intervals: Mapping[str, Any]) -> str:
    """One line: ``95% intervals from 1000 resamples of 12 subjects (99 frames)``."""
    if not intervals:
        return ""
    level = round(100 * intervals["confidence"])
    return (
        f"{level}% intervals from {intervals['resamples']} bootstrap resamples of "
        f"{intervals['groups']} {intervals['unit']}(s) ({intervals['frames']} frames)"
    )


LOWER_IS_BETTER_SUFFIX = "_accuracy_drop"
"""Metrics whose names end so are better when lower (a degraded copy's accuracy drop)."""


def verdict(name: str, low: float | None, high: float | None) -> str:
    """``better`` / ``worse`` when the interval of (model - baseline) excludes 0, else
    ``no clear difference``; a drop is better when lower."""
    if low is None or high is None or low <= 0.0 <= high:
        return "no clear difference"
    higher = low > 0.0
    if name.endswith(LOWER_IS_BETTER_SUFFIX):
        higher = not higher
    return "better" if higher else "worse"


def paired_differences(
    keys: Sequence[str],
    model: Statistic,
    baseline: Statistic,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    unit: str = "group",
) -> dict[str, Any]:
    """Model minus baseline on every metric both give, with paired bootstrap intervals:
    each resample draws the same groups for both, so what is shared (the hard faces, the
    easy subjects) cancels and the interval is about the difference itself.

    Returns:
        :func:`bootstrap_intervals`' dict, where each metric's ``value`` is the difference
        and it also holds ``model``, ``baseline`` and ``verdict`` (:func:`verdict`).
    """

    def difference(idx: np.ndarray) -> dict[str, float | None]:
        a, b = model(idx), baseline(idx)
        return {k: None if a.get(k) is None or b.get(k) is None else float(a[k] - b[k]) for k in a}

    out = bootstrap_intervals(keys, difference, n_resamples, confidence, seed, unit)
    everything = np.arange(len(keys))
    a, b = model(everything), baseline(everything)
    for name, entry in out["metrics"].items():
        entry.update(model=float(a[name]), baseline=float(b[name]))
        entry["verdict"] = verdict(name, entry["low"], entry["high"])
    return out
