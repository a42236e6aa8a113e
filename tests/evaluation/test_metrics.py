"""ABAW metrics: hand-computed values, scikit-learn cross-checks, masking, absent labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from liveaffect.evaluation.metrics import (
    au_metrics,
    ccc,
    expression_metrics,
    tune_au_thresholds,
    va_metrics,
)
from liveaffect.evaluation.result import EvaluationResult, evaluate_arrays
from liveaffect.labels import AUS, EXPRESSIONS


def dotted(d: dict, path: str):
    for key in path.split("."):
        d = d[key]
    return d


# --------------------------------------------------------------------------- expressions


def test_expression_hand_computed():
    # classes 0,1,2 present; class 3 predicted once but never labelled.
    labels = [0, 0, 1, 1, 2, 2, -1]
    preds = [0, 1, 1, 1, 3, 2, 5]
    m = expression_metrics(labels, np.array(preds))
    assert m.n == 6
    assert m.accuracy == pytest.approx(4 / 6)
    # class 0: P 1/1, R 1/2, F1 2/3; class 1: P 2/3, R 1, F1 0.8; class 2: P 1, R 1/2, F1 2/3
    assert m.per_class["Neutral"]["f1"] == pytest.approx(2 / 3)
    assert m.per_class["Anger"]["precision"] == pytest.approx(2 / 3)
    assert m.per_class["Anger"]["f1"] == pytest.approx(0.8)
    assert m.macro_f1 == pytest.approx((2 / 3 + 0.8 + 2 / 3) / 3)
    assert m.macro_precision == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert m.macro_recall == pytest.approx((0.5 + 1 + 0.5) / 3)
    # the class only predicted does not enter the macro average and has no F1
    assert m.per_class["Fear"] == {
        "precision": None,
        "recall": None,
        "f1": None,
        "support": 0,
        "predicted": 1,
    }
    assert m.classes_present == ["Neutral", "Anger", "Disgust"]
    # ABAW's P_EXPR averages all 8 classes: Fear (only predicted) and the 4 classes never
    # labelled nor predicted count 0
    assert m.abaw_macro_f1 == pytest.approx((2 / 3 + 0.8 + 2 / 3) / 8)
    assert m.confusion.shape == (8, 8)
    assert m.confusion[2, 3] == 1 and m.confusion.sum() == 6
    # the masked frame predicted 5 is not counted anywhere
    assert m.confusion[:, 5].sum() == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expression_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 500
    labels = rng.integers(0, 7, n)  # FER-style: 7 classes present, "Other" absent
    labels[rng.random(n) < 0.1] = -1
    probs = rng.random((n, 8))
    probs[:, 0] += 0.3 * (labels == 0)  # some signal so classes differ
    m = expression_metrics(labels, probs)
    valid = labels >= 0
    y, p = labels[valid], probs[valid].argmax(1)
    present = sorted(set(y.tolist()))
    pr, rc, f1, sup = precision_recall_fscore_support(
        y, p, labels=present, zero_division=0, average=None
    )
    assert m.n == valid.sum()
    assert m.accuracy == pytest.approx(accuracy_score(y, p))
    assert m.macro_f1 == pytest.approx(f1_score(y, p, labels=present, average="macro"))
    every = f1_score(y, p, labels=range(8), average="macro", zero_division=0)
    assert m.abaw_macro_f1 == pytest.approx(every) and m.abaw_macro_f1 < m.macro_f1
    for i, c in enumerate(present):
        pc = m.per_class[EXPRESSIONS[c]]
        assert pc["precision"] == pytest.approx(pr[i])
        assert pc["recall"] == pytest.approx(rc[i])
        assert pc["f1"] == pytest.approx(f1[i])
        assert pc["support"] == sup[i]
    macro = precision_recall_fscore_support(y, p, labels=present, average="macro", zero_division=0)
    assert m.macro_precision == pytest.approx(macro[0])
    assert m.macro_recall == pytest.approx(macro[1])
    np.testing.assert_array_equal(m.confusion, confusion_matrix(y, p, labels=range(8)))
    assert m.per_class["Other"]["f1"] is None


def test_expression_all_eight_classes_match_plain_sklearn_macro():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 8, 300)
    p = rng.integers(0, 8, 300)
    m = expression_metrics(y, p)
    assert m.macro_f1 == pytest.approx(f1_score(y, p, average="macro"))
    assert m.abaw_macro_f1 == pytest.approx(m.macro_f1)  # every class present: the same


def test_expression_rejects_bad_input():
    with pytest.raises(ValueError, match="labels"):
        expression_metrics([0, 9], np.array([0, 1]))
    with pytest.raises(ValueError, match="columns"):
        expression_metrics([0, 1], np.zeros((2, 7)))
    with pytest.raises(ValueError, match="predictions"):
        expression_metrics([0, 1, 2], np.array([0, 1]))


def test_expression_all_missing_gives_none():
    m = expression_metrics([-1, -1], np.array([0, 1]))
    assert m.n == 0 and m.macro_f1 is None and m.accuracy is None and m.abaw_macro_f1 is None


# --------------------------------------------------------------------------- action units


def test_au_hand_computed_and_threshold():
    labels = np.array([[1, 0], [1, -1], [0, -1], [0, -1]])
    probs = np.array([[0.9, 0.7], [0.4, 0.99], [0.6, 0.99], [0.1, 0.99]])
    m = au_metrics(labels, probs, au_names=("A", "B"))
    # A: pred 1,0,1,0 vs 1,1,0,0 -> TP1 FP1 FN1 -> F1 0.5. B: one valid cell, pred 1, true 0 -> 0
    assert m.per_au["A"]["f1"] == pytest.approx(0.5)
    assert m.per_au["B"]["f1"] == 0.0 and m.per_au["B"]["n"] == 1
    assert m.mean_f1 == pytest.approx(0.25)
    assert m.n == 4
    m2 = au_metrics(labels, probs, thresholds=[0.3, 0.8], au_names=("A", "B"))
    # A at 0.3: pred 1,1,1,0 -> TP2 FP1 FN0 -> F1 0.8; B at 0.8: pred 0 on the valid cell -> 0
    assert m2.per_au["A"]["f1"] == pytest.approx(0.8)
    assert m2.thresholds == (0.3, 0.8)


def test_au_matches_sklearn_and_skips_unlabelled_aus():
    rng = np.random.default_rng(3)
    n = 400
    labels = (rng.random((n, 12)) < 0.3).astype(int)
    labels[rng.random((n, 12)) < 0.2] = -1
    labels[:, 7] = -1  # AU15 never labelled
    probs = np.clip(0.35 * labels + rng.random((n, 12)) * 0.7, 0, 1)
    m = au_metrics(labels, probs)
    expected = []
    for j, name in enumerate(AUS):
        valid = labels[:, j] >= 0
        if not valid.any():
            assert m.per_au[name]["f1"] is None
            continue
        f = f1_score(labels[valid, j], probs[valid, j] >= 0.5, zero_division=0)
        assert m.per_au[name]["f1"] == pytest.approx(f)
        expected.append(f)
    assert len(expected) == 11
    assert m.mean_f1 == pytest.approx(np.mean(expected))
    # ABAW's P_AU is over all 12 AUs: with AU15 unlabelled it is not computed at all
    assert m.abaw_mean_f1 is None and m.aus_labelled == 11
    labels[::2, 7] = (rng.random(n // 2) < 0.3).astype(int)  # now AU15 has labels too
    m = au_metrics(labels, probs)
    assert m.aus_labelled == 12 and m.abaw_mean_f1 == pytest.approx(m.mean_f1)
    assert m.abaw_mean_f1 == pytest.approx(
        np.mean(
            [f1_score(labels[v, j], probs[v, j] >= 0.5, zero_division=0)
             for j in range(12) for v in [labels[:, j] >= 0]]
        )
    )  # fmt: skip


def test_tune_au_thresholds_improves_and_picks_best():
    rng = np.random.default_rng(7)
    n = 600
    labels = (rng.random((n, 12)) < 0.1).astype(int)
    labels[:, 11] = -1
    # positives score around 0.3, negatives around 0.1: 0.5 misses them all
    probs = np.clip(0.1 + 0.2 * labels + rng.normal(0, 0.03, (n, 12)), 0, 1)
    grid = np.linspace(0.05, 0.95, 19)
    t = tune_au_thresholds(probs, labels, grid)
    assert t.shape == (12,)
    assert t[11] == 0.5  # no labels: untouched
    assert np.all((t[:11] > 0.1) & (t[:11] < 0.35))
    before = au_metrics(labels, probs).mean_f1
    after = au_metrics(labels, probs, t).mean_f1
    assert after > before + 0.5
    for j in range(11):  # nothing in the grid does better
        valid = labels[:, j] >= 0
        best = max(f1_score(labels[valid, j], probs[valid, j] >= g, zero_division=0) for g in grid)
        assert au_metrics(labels, probs, t).per_au[AUS[j]]["f1"] == pytest.approx(best)


def test_tune_rejects_bad_grid():
    with pytest.raises(ValueError, match="grid"):
        tune_au_thresholds(np.zeros((2, 12)), np.zeros((2, 12)), [1.5])


# --------------------------------------------------------------------------- valence/arousal


def test_ccc_hand_computed():
    x = np.array([0.1, -0.4, 0.7, 0.2, -0.9])
    assert ccc(x, x) == pytest.approx(1.0)
    x0 = x - x.mean()  # negation gives exactly -1 only for a zero-mean series
    assert ccc(x0, -x0) == pytest.approx(-1.0)
    assert -1.0 < ccc(x, -x) < -0.9
    assert ccc(x, x + 0.5) < ccc(x, x + 0.1) < 1.0
    # x = [1,2,3], y = [2,2,4]: means 2, 8/3; var 2/3, 8/9; cov 2/3
    # CCC = (4/3) / (2/3 + 8/9 + 4/9) = (4/3) / 2 = 2/3
    assert ccc([1, 2, 3], [2, 2, 4]) == pytest.approx(2 / 3)
    assert ccc([1.0], [1.0]) is None
    assert ccc([0.3, 0.3], [0.3, 0.3]) is None
    with pytest.raises(ValueError):
        ccc([1, 2], [1, 2, 3])


def test_ccc_matches_formula_with_population_moments():
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=200), rng.normal(size=200) * 0.5 + 0.2
    cov = np.cov(x, y, bias=True)[0, 1]
    ref = 2 * cov / (np.var(x) + np.var(y) + (x.mean() - y.mean()) ** 2)
    assert ccc(x, y) == pytest.approx(ref)
    # Pearson correlation is an upper bound of |CCC|
    assert abs(ccc(x, y)) <= abs(np.corrcoef(x, y)[0, 1]) + 1e-12


def test_va_metrics_masks_minus_five_per_axis():
    labels = np.array([[0.1, 0.2], [0.5, -5], [-0.3, 0.4], [-5, -5], [0.9, -0.8]])
    preds = np.array([[0.0, 0.1], [0.4, 0.9], [-0.2, 0.5], [0.9, 0.9], [0.8, -0.7]])
    m = va_metrics(labels, preds)
    assert (m.n, m.n_valence, m.n_arousal) == (4, 4, 3)
    assert m.ccc_valence == pytest.approx(ccc(preds[[0, 1, 2, 4], 0], labels[[0, 1, 2, 4], 0]))
    assert m.ccc_arousal == pytest.approx(ccc(preds[[0, 2, 4], 1], labels[[0, 2, 4], 1]))
    assert m.ccc_mean == pytest.approx((m.ccc_valence + m.ccc_arousal) / 2)


# --------------------------------------------------------------------------- leak and absence


def _random_task_arrays(seed: int, n: int = 120):
    rng = np.random.default_rng(seed)
    expr = rng.integers(0, 8, n)
    expr[::5] = -1
    va = rng.uniform(-1, 1, (n, 2))
    va[::4] = -5
    au = rng.integers(0, 2, (n, 12))
    au[::3, :6] = -1
    return (
        rng,
        dict(
            expr_labels=expr,
            expr_probs=rng.random((n, 8)),
            va_labels=va,
            va_preds=rng.uniform(-1, 1, (n, 2)),
            au_labels=au,
            au_probs=rng.random((n, 12)),
        ),
    )


def test_changing_predictions_of_masked_frames_changes_nothing():
    rng, arrays = _random_task_arrays(0)
    before = json.dumps(evaluate_arrays(**arrays).to_dict(), sort_keys=True)
    changed = {k: v.copy() for k, v in arrays.items()}
    changed["expr_probs"][::5] = rng.random((len(changed["expr_probs"][::5]), 8))
    changed["va_preds"][::4] = rng.uniform(-1, 1, (len(changed["va_preds"][::4]), 2))
    changed["au_probs"][::3, :6] = 1.0 - changed["au_probs"][::3, :6]
    after = json.dumps(evaluate_arrays(**changed).to_dict(), sort_keys=True)
    assert before == after
    # and the test can fail: changing a labelled frame does change the metrics
    changed["au_probs"][1, :6] = 1.0 - changed["au_probs"][1, :6]
    changed["va_preds"][1] = -changed["va_preds"][1]
    assert json.dumps(evaluate_arrays(**changed).to_dict(), sort_keys=True) != after


def test_full_result_mtl_score_and_json_keys():
    _, arrays = _random_task_arrays(1)
    r = evaluate_arrays(**arrays)
    d = json.loads(json.dumps(r.to_dict()))
    for key in (
        "expr.macro_f1",
        "expr.accuracy",
        "au.mean_f1",
        "va.ccc_valence",
        "va.ccc_arousal",
        "va.ccc_mean",
        "mtl_score",
    ):
        assert isinstance(dotted(d, key), float), key
    assert dotted(d, "expr.n") == 96 and dotted(d, "va.n") == 90 and dotted(d, "au.n") == 120
    assert d["mtl_score"] == pytest.approx(
        d["va"]["ccc_mean"] + d["expr"]["abaw_macro_f1"] + d["au"]["abaw_mean_f1"]
    )
    assert d["au"]["abaw_mean_f1"] == pytest.approx(d["au"]["mean_f1"])
    assert d["au"]["aus_labelled"] == 12 and d["notes"] == []
    assert d["mtl_partial"] == pytest.approx(d["mtl_score"])
    assert d["mtl_terms"] == ["va", "expr", "au"]
    text = str(r)
    assert "EXPR macro F1" in text and "MTL score" in text


def test_absent_labels_are_null_not_zero():
    _, arrays = _random_task_arrays(2)
    arrays["va_labels"] = np.full_like(arrays["va_labels"], -5.0)
    r = evaluate_arrays(**{**arrays, "au_labels": None})
    d = json.loads(json.dumps(r.to_dict()))
    assert d["va"]["ccc_valence"] is None and d["va"]["ccc_mean"] is None and d["va"]["n"] == 0
    assert d["au"]["mean_f1"] is None and d["au"]["n"] == 0
    assert d["mtl_score"] is None
    assert d["mtl_partial"] == pytest.approx(d["expr"]["abaw_macro_f1"])
    assert d["mtl_terms"] == ["expr"]
    assert "n/a" in str(r)


def test_mtl_score_is_undefined_when_an_au_has_no_labels():
    _, arrays = _random_task_arrays(5)
    arrays["au_labels"][:, [8, 9, 10]] = -1  # three AUs never coded
    r = evaluate_arrays(**arrays)
    assert r.au.mean_f1 is not None and r.au.aus_labelled == 9
    assert r.au.abaw_mean_f1 is None and r.mtl_score is None
    assert r.mtl_partial == pytest.approx(r.va.ccc_mean + r.expr.abaw_macro_f1)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["au"]["abaw_mean_f1"] is None and d["mtl_terms"] == ["va", "expr"]
    assert any("Only 9 of the 12 AUs have labels" in n for n in d["notes"])


def test_mtl_score_takes_p_expr_over_all_eight_classes():
    _, arrays = _random_task_arrays(4)
    arrays["expr_labels"][arrays["expr_labels"] == 7] = -1  # no Other, as in FER2013
    r = evaluate_arrays(**arrays)
    e = r.expr
    y = arrays["expr_labels"][arrays["expr_labels"] >= 0]
    p = arrays["expr_probs"][arrays["expr_labels"] >= 0].argmax(1)
    every = f1_score(y, p, labels=range(8), average="macro", zero_division=0)
    assert e.abaw_macro_f1 == pytest.approx(every)
    assert e.macro_f1 == pytest.approx(f1_score(y, p, labels=range(7), average="macro"))
    assert e.abaw_macro_f1 < e.macro_f1
    assert r.mtl_score == pytest.approx(r.va.ccc_mean + every + r.au.abaw_mean_f1)
    assert r.mtl_partial == pytest.approx(r.mtl_score)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["expr"]["abaw_macro_f1"] == pytest.approx(every)
    assert "EXPR P_EXPR (8 classes)" in str(r)


def test_nothing_given():
    d = EvaluationResult().to_dict()
    assert d["expr"]["macro_f1"] is None and d["mtl_score"] is None and d["mtl_partial"] is None
    assert d["expr"]["n"] == d["va"]["n"] == d["au"]["n"] == 0
    assert json.dumps(d)
