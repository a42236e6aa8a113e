"""Bootstrap intervals by group (liveaffect.evaluation.uncertainty, Predictions.intervals)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from liveaffect.data.records import Record
from liveaffect.evaluation.predict import Predictions
from liveaffect.evaluation.uncertainty import bootstrap_intervals, frames_of, group_index


def test_group_index_keeps_order_of_appearance_and_frames_of_repeats_groups():
    keys = ["b", "a", "b", "c", "a", "b"]
    order, starts, counts = group_index(keys)
    assert counts.tolist() == [3, 2, 1]  # b, a, c as they first appear
    assert sorted(frames_of(np.array([0]), order, starts, counts)) == [0, 2, 5]
    drawn = frames_of(np.array([1, 1, 2]), order, starts, counts)
    assert sorted(drawn.tolist()) == [1, 1, 3, 4, 4]


def _mean_of(values):
    return lambda idx: {"mean": float(np.mean(values[idx]))}


def test_interval_contains_the_value_and_is_reproducible():
    values = np.random.default_rng(0).normal(size=200)
    keys = [str(i) for i in range(200)]
    a = bootstrap_intervals(keys, _mean_of(values), n_resamples=300, seed=3)
    b = bootstrap_intervals(keys, _mean_of(values), n_resamples=300, seed=3)
    m = a["metrics"]["mean"]
    assert m["low"] < m["value"] < m["high"] and a == b
    # about +-1.96 standard errors for a mean of 200 unit normals
    assert 0.15 < m["high"] - m["low"] < 0.4
    assert (a["groups"], a["frames"], a["resamples"]) == (200, 200, 300)


def test_whole_groups_are_resampled_so_duplicates_do_not_narrow_the_interval():
    rng = np.random.default_rng(1)
    per_group = rng.normal(size=10)
    values = np.repeat(per_group, 20)  # 10 subjects, 20 identical frames each
    by_subject = [f"S{i // 20}" for i in range(200)]
    by_frame = [str(i) for i in range(200)]
    grouped = bootstrap_intervals(by_subject, _mean_of(values), n_resamples=400)["metrics"]
    naive = bootstrap_intervals(by_frame, _mean_of(values), n_resamples=400)["metrics"]
    width = lambda m: m["mean"]["high"] - m["mean"]["low"]  # noqa: E731
    assert width(grouped) > 3 * width(naive)


def test_one_group_gives_no_interval_and_bad_arguments_raise():
    out = bootstrap_intervals(["S1"] * 5, _mean_of(np.arange(5.0)), n_resamples=10)
    assert out["groups"] == 1 and out["metrics"] == {}
    with pytest.raises(ValueError, match="at least 1 resample"):
        bootstrap_intervals(["a", "b"], _mean_of(np.arange(2.0)), n_resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_intervals(["a", "b"], _mean_of(np.arange(2.0)), confidence=1.5)


def test_predictions_intervals_cover_every_headline_metric_per_subject():
    rng = np.random.default_rng(2)
    n = 60
    au = rng.integers(0, 2, (n, 12))
    records = [
        Record(
            path=f"{i}.png", expr=int(i % 7), au=tuple(int(v) for v in au[i]), group=f"S{i // 6}"
        )
        for i in range(n)
    ]
    expr = rng.random((n, 8))
    au_probs = np.clip(au * 0.6 + rng.random((n, 12)) * 0.5, 0, 1)
    preds = Predictions(records=records, expr_probs=expr, au_probs=au_probs, n_total=n)
    got = preds.intervals(au_thresholds=0.5, n_resamples=200, unit="subject")
    assert (got["unit"], got["groups"], got["frames"]) == ("subject", 10, n)
    m = got["metrics"]
    assert {"expr_accuracy", "expr_macro_f1", "au_mean_f1", "au_f1_AU12"} <= set(m)
    assert "va_ccc_mean" not in m  # no valence/arousal predicted
    # the point value is the plain metric (scikit-learn as the cross-check)
    sk = np.mean([f1_score(au[:, j], au_probs[:, j] >= 0.5) for j in range(12)])
    assert m["au_mean_f1"]["value"] == pytest.approx(sk)
    for v in m.values():
        assert v["low"] <= v["value"] + 1e-12 and v["value"] <= v["high"] + 1e-12


def test_drop_interval_is_paired_over_the_same_images():
    from liveaffect.evaluation.robustness import drop_interval

    rng = np.random.default_rng(4)
    n = 300
    labels = rng.integers(0, 7, n)
    clean = rng.random((n, 8))
    keys = [str(i) for i in range(n)]
    # the same answers on the copy: the drop is 0 in every resample, so is its interval
    assert drop_interval(keys, labels, clean, clean.copy(), 200) == [0.0, 0.0]
    # the copy gets 30 right answers wrong: drop 0.1 at most, and never negative
    right = np.flatnonzero(clean.argmax(axis=1) == labels)[:30]
    degraded = clean.copy()
    degraded[right] = np.roll(degraded[right], 1, axis=1)
    degraded[right, labels[right]] = -1.0
    low, high = drop_interval(keys, labels, clean, degraded, 400)
    assert 0.0 < low < 30 / n < high < 0.2
    assert drop_interval(["a"] * n, labels, clean, degraded, 50) is None  # one group


def test_paired_differences_cancel_what_both_models_share():
    from liveaffect.evaluation.uncertainty import paired_differences, verdict

    rng = np.random.default_rng(5)
    per_subject = rng.normal(size=12)  # subjects differ a lot ...
    values = np.repeat(per_subject, 8)
    keys = [f"S{i // 8}" for i in range(96)]
    model = lambda idx: {"score": float(values[idx].mean() + 0.05)}  # noqa: E731
    base = lambda idx: {"score": float(values[idx].mean())}  # noqa: E731
    got = paired_differences(keys, model, base, n_resamples=300, unit="subject")
    m = got["metrics"]["score"]
    # ... but both models share that: the paired difference is exactly 0.05 every time
    assert m["value"] == pytest.approx(0.05) and m["low"] == pytest.approx(0.05)
    assert m["high"] == pytest.approx(0.05) and m["verdict"] == "better"
    assert m["model"] == pytest.approx(values.mean() + 0.05)
    same = paired_differences(keys, base, base, n_resamples=50)["metrics"]["score"]
    assert (same["low"], same["high"], same["verdict"]) == (0.0, 0.0, "no clear difference")
    # a lower accuracy drop is the better one
    assert verdict("blur_accuracy_drop", 0.01, 0.03) == "worse"
    assert verdict("blur_accuracy_drop", -0.03, -0.01) == "better"
    assert verdict("expr_accuracy", -0.03, -0.01) == "worse"
    assert verdict("expr_accuracy", -0.01, 0.02) == "no clear difference"


def test_with_copies_adds_each_copys_accuracy_and_drop():
    from liveaffect.evaluation.robustness import with_copies

    clean = lambda idx: {"expr_accuracy": 0.7, "expr_macro_f1": 0.6, "au_mean_f1": None}  # noqa: E731
    blur = lambda idx: {"expr_accuracy": 0.65}  # noqa: E731
    got = with_copies(clean, {"blur": blur})(np.arange(3))
    assert got["expr_accuracy"] == 0.7 and got["au_mean_f1"] is None
    assert got["blur_expr_accuracy"] == 0.65
    assert got["blur_accuracy_drop"] == pytest.approx(0.05)
