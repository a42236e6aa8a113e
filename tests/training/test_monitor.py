"""The score that picks epochs (``training.monitor.selection_score``)."""

from __future__ import annotations

import numpy as np
import pytest

from liveaffect.evaluation.result import evaluate_arrays
from liveaffect.training.monitor import selection_score, trained_only


def test_selection_keeps_the_macro_f1_over_the_classes_present():
    rng = np.random.default_rng(0)
    n = 200
    expr = rng.integers(0, 7, n)  # no Other in the validation labels
    va = rng.uniform(-1, 1, (n, 2))
    au = rng.integers(0, 2, (n, 12))
    res = evaluate_arrays(
        expr, rng.random((n, 8)), va, rng.uniform(-1, 1, (n, 2)), au, rng.random((n, 12))
    )
    picked = res.va.ccc_mean + res.expr.macro_f1 + res.au.mean_f1
    assert selection_score(res) == pytest.approx(picked)
    # the ABAW score counts Other as 0: lower, and not what selection uses
    assert res.mtl_partial < picked
    assert selection_score(res, 0.5) == pytest.approx(picked + 0.5 * res.expr.accuracy)


def test_selection_over_the_heads_with_labels_and_nothing_scored():
    res = evaluate_arrays(np.array([0, 1, 1]), np.array([0, 1, 0]))
    assert selection_score(res) == pytest.approx(res.expr.macro_f1)
    assert selection_score(evaluate_arrays()) == -float("inf")


def test_an_untrained_head_neither_picks_epochs_nor_shows_numbers():
    rng = np.random.default_rng(1)
    n = 100
    res = evaluate_arrays(
        rng.integers(0, 8, n), rng.random((n, 8)), rng.uniform(-1, 1, (n, 2)),
        rng.uniform(-1, 1, (n, 2)), rng.integers(0, 2, (n, 12)), rng.random((n, 12)),
    )  # fmt: skip
    trained = {"va", "au"}
    assert selection_score(res, 0.5, trained) == pytest.approx(res.va.ccc_mean + res.au.mean_f1)
    shown = trained_only(res.to_dict(), trained)
    assert shown["expr"] == {"not_trained": True, "note": "head not trained: no numbers shown"}
    assert shown["va"] == res.to_dict()["va"] and shown["mtl_score"] is None
    assert trained_only(res.to_dict(), {"expr", "va", "au"}) == res.to_dict()
