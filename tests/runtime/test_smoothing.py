"""Per-track smoothing: mean of the last N predictions, never mixing two people."""

from __future__ import annotations

import numpy as np
import pytest

from liveaffect.runtime.smoothing import PredictionSmoother, mean_prediction
from liveaffect.types import AffectPrediction, Detection, FaceResult

BOX = Detection(xyxy=(0.0, 0.0, 10.0, 10.0))


def face(track_id, value, with_au=True):
    expr = np.full(8, value, np.float32)
    return FaceResult(
        track_id=track_id,
        detection=BOX,
        prediction=AffectPrediction(
            expr_probs=expr,
            va=np.array([value, -value], np.float32),
            au_probs=np.full(12, value, np.float32) if with_au else None,
        ),
    )


def test_mean_of_last_n():
    smoother = PredictionSmoother(window=3)
    outs = [smoother.update([face(1, v)])[0].prediction.va[0] for v in (0.0, 0.3, 0.6, 0.9)]
    np.testing.assert_allclose(outs, [0.0, 0.15, 0.3, 0.6], atol=1e-6)


def test_window_one_is_off():
    smoother = PredictionSmoother(window=1)
    smoother.update([face(1, 0.2)])
    assert smoother.update([face(1, 0.8)])[0].prediction.va[0] == pytest.approx(0.8)


def test_two_faces_never_mixed():
    smoother = PredictionSmoother(window=5)
    for _ in range(4):
        out = smoother.update([face(1, 0.1), face(2, 0.9)])
    assert [f.track_id for f in out] == [1, 2]
    np.testing.assert_allclose(out[0].prediction.expr_probs, 0.1, atol=1e-6)
    np.testing.assert_allclose(out[1].prediction.expr_probs, 0.9, atol=1e-6)


def test_untrained_head_stays_none():
    smoother = PredictionSmoother(window=3)
    smoother.update([face(1, 0.2, with_au=False)])
    out = smoother.update([face(1, 0.4, with_au=False)])[0].prediction
    assert out.au_probs is None
    assert out.va[0] == pytest.approx(0.3)


def test_state_of_gone_tracks_is_dropped():
    smoother = PredictionSmoother(window=3, max_idle=2)
    smoother.update([face(1, 0.5), face(2, 0.5)])
    for _ in range(3):
        smoother.update([face(2, 0.5)])
    assert smoother.track_ids == {2}
    for _ in range(3):
        smoother.update([])
    assert smoother.track_ids == set()


def test_briefly_missing_track_keeps_history():
    smoother = PredictionSmoother(window=3, max_idle=5)
    smoother.update([face(1, 0.0)])
    smoother.update([])
    assert smoother.update([face(1, 1.0)])[0].prediction.va[0] == pytest.approx(0.5)


def test_mean_prediction_all_none():
    assert mean_prediction([AffectPrediction(), AffectPrediction()]) == AffectPrediction()


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"max_idle": -1}])
def test_bad_options(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        PredictionSmoother(**kwargs)
