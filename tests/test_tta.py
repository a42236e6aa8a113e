"""Test-time views: the views themselves, the card entry, and the engine that averages them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from liveaffect.bundle import BundleError, ModelCard
from liveaffect.engines import TTAEngine
from liveaffect.tta import TTA, card_tta, parse_scales, zoom
from liveaffect.types import AffectPrediction


def square_faces(n: int = 3, size: int = 24) -> np.ndarray:
    """Dark images, each with a bright square of a different size, off centre to the left."""
    out = np.zeros((n, size, size, 1), np.float32)
    for i in range(n):
        out[i, 8 : 16 + i, 2 : 10 + i] = 200.0
    return out


def test_views_are_view_major_zooms_then_mirrors():
    faces = square_faces()
    tta = TTA(flip=True, scales=(1.0, 0.5))
    views = tta.views(faces)
    assert tta.n_views == 4 and views.shape == (12, 24, 24, 1)
    np.testing.assert_array_equal(views[:3], faces)
    np.testing.assert_array_equal(views[6:9], faces[:, :, ::-1])
    np.testing.assert_array_equal(views[9:], views[3:6][:, :, ::-1])
    # zooming out to half size: the centre holds the whole face at half size, the
    # border is the reflection of it
    smooth = cv2.GaussianBlur(np.random.default_rng(0).uniform(0, 255, (24, 24)), (5, 5), 2)
    half = tta.views(smooth.astype(np.float32)[None, ..., None])[1, ..., 0]
    want = cv2.resize(smooth, (12, 12), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(half[6:18, 6:18], want, atol=0.5)
    np.testing.assert_allclose(half[5, 6:18], half[6, 6:18], atol=1e-4)  # reflected edge
    assert tta.views(faces[:0]).shape == (0, 24, 24, 1)


def test_zoom_in_cuts_and_keeps_centre():
    face = np.zeros((1, 20, 20, 3), np.float32)
    face[0, 9:11, 9:11] = 255.0
    big = zoom(face, 2.0)
    assert big.shape == face.shape and big.dtype == np.float32
    assert (big[0, ..., 0] > 100).sum() > (face[0, ..., 0] > 100).sum()
    assert big[0, 10, 10, 0] > 200 and big[0, 0, 0, 0] == 0.0


def test_merge_averages_each_face_over_its_views():
    tta = TTA(flip=True, scales=(1.0, 0.9))
    values = np.arange(8, dtype=np.float32).reshape(8, 1)  # 4 views x 2 faces
    np.testing.assert_allclose(tta.merge(values, 2), [[3.0], [4.0]])
    with pytest.raises(ValueError, match="8 rows"):
        tta.merge(values[:6], 2)


@pytest.mark.parametrize("scales", [(), (0.2,), (1.0, 1.0), (3.0,)])
def test_bad_scales_rejected(scales):
    with pytest.raises(ValueError, match="scales"):
        TTA(scales=scales)


def test_parse_and_describe():
    assert parse_scales("1, 0.9,") == (1.0, 0.9)
    with pytest.raises(ValueError, match="comma-separated"):
        parse_scales("1;0.9")
    assert TTA().describe() == "none (1 view)" and not TTA().active
    assert TTA(scales=(0.9,)).active  # one view, but not the face as given
    assert TTA(flip=True, scales=(1.0, 0.92)).describe() == "flip x scales 1/0.92 (4 views)"


def test_card_entry_round_trip_and_legacy_flip():
    card = ModelCard(tta={"flip": True, "scales": [1.0, 0.9]})
    again = ModelCard.from_dict(card.to_dict())
    assert card_tta(again) == TTA(flip=True, scales=(1.0, 0.9))
    assert "tta" not in ModelCard().to_dict()
    assert card_tta(ModelCard(training={"tta_flip": True})) == TTA(flip=True)
    assert card_tta(ModelCard(training={"train": {"tta_flip": True}})) == TTA(flip=True)
    assert card_tta(ModelCard()) == TTA()
    with pytest.raises(BundleError, match="scales"):
        ModelCard.from_dict({**card.to_dict(), "tta": {"scales": [7]}})


class MeanEngine:
    """Fake engine: expression = softmax-free stand-in from left/right brightness."""

    name = "fake"
    input_shape = (24, 24, 1)  # square_faces()'s (the Engine protocol's attribute)

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict_heads(self, crops):
        self.calls.append(len(crops))
        w = crops.shape[2]
        left = crops[:, :, : w // 2].mean(axis=(1, 2, 3))
        right = crops[:, :, w // 2 :].mean(axis=(1, 2, 3))
        return {
            "expr": np.stack([left, right], axis=1).astype(np.float32),
            "va": np.stack([left - right, np.zeros_like(left)], axis=1),
        }

    def predict(self, crops):
        heads = self.predict_heads(crops)
        return [
            AffectPrediction(expr_probs=e, va=v)
            for e, v in zip(heads["expr"], heads["va"], strict=True)
        ]


def test_tta_engine_scores_all_views_in_one_call_and_keeps_face_order():
    faces = square_faces(3)
    inner = MeanEngine()
    engine = TTAEngine(inner, TTA(flip=True, scales=(1.0, 0.8)))
    preds = engine.predict(faces)
    assert inner.calls == [12] and len(preds) == 3
    direct = MeanEngine().predict(TTA(flip=True, scales=(1.0, 0.8)).views(faces))
    for k, p in enumerate(preds):
        want = np.mean([d.expr_probs for d in direct[k::3]], axis=0)
        np.testing.assert_allclose(p.expr_probs, want, rtol=1e-6)
        assert p.au_probs is None  # untrained heads stay None
        # mirror views cancel the left/right difference: left-heavy faces average to ~0
        assert abs(p.va[0]) < 1e-5 < abs(direct[k].va[0])
    assert engine.predict(faces[:0]) == [] and engine.name == "fake+tta4"


def test_tta_engine_refuses_an_inner_engine_built_for_other_views():
    inner = MeanEngine()
    inner.rows_per_face = 2
    with pytest.raises(ValueError, match="rows_per_face=4"):
        TTAEngine(inner, TTA(flip=True, scales=(1.0, 0.8)))
