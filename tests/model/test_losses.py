"""Masked multi-task losses against NumPy by hand: a missing label adds nothing.

Checks per loss: the value equals a NumPy re-computation (class weights, label
smoothing, positive weights included); changing the prediction of a masked row
changes neither the loss nor any gradient; a batch without labels gives loss 0 and
zero (finite) gradients; ``get_config`` round-trips through Keras serialisation.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from liveaffect.labels import NUM_AUS, NUM_EXPRESSIONS
from liveaffect.model.losses import MaskedAULoss, MaskedCCCLoss, MaskedExpressionLoss

RNG = np.random.default_rng(0)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def loss_and_grad(loss, y_true, y_pred):
    """Loss value and d loss / d y_pred (NumPy)."""
    pred = tf.Variable(np.asarray(y_pred, np.float32))
    with tf.GradientTape() as tape:
        value = loss(tf.constant(y_true), pred)
    return float(value), tape.gradient(value, pred).numpy()


# ------------------------------------------------------------------ expression
EXPR_TRUE = np.array([0, 3, -1, 7, 3, -1], np.int32)
EXPR_PRED = softmax(RNG.normal(size=(6, NUM_EXPRESSIONS))).astype(np.float32)
CLASS_W = [1.0, 2.0, 0.5, 3.0, 1.0, 1.0, 1.0, 0.25]


def expr_by_hand(y, p, weights, smoothing):
    total, n = 0.0, 0
    for label, probs in zip(y, p, strict=True):
        if label < 0:
            continue
        target = np.full(NUM_EXPRESSIONS, smoothing / NUM_EXPRESSIONS)
        target[label] += 1.0 - smoothing
        total += weights[label] * -np.sum(target * np.log(probs))
        n += 1
    return total / max(n, 1)


@pytest.mark.parametrize(
    ("weights", "smoothing"), [(None, 0.0), (CLASS_W, 0.0), (None, 0.2), (CLASS_W, 0.1)]
)
def test_expression_loss_by_hand(weights, smoothing):
    loss = MaskedExpressionLoss(weights, label_smoothing=smoothing)
    value, _ = loss_and_grad(loss, EXPR_TRUE, EXPR_PRED)
    expected = expr_by_hand(EXPR_TRUE, EXPR_PRED, weights or [1.0] * 8, smoothing)
    assert value == pytest.approx(expected, rel=1e-5)


def test_expression_loss_with_a_teacher_by_hand():
    """Distillation: 9 columns (class, teacher's 8 probabilities, -1 = no teacher); the
    target is (1 - w) * smoothed one-hot + w * teacher, the class weight still the label's."""
    from liveaffect.data.dataset import expression_targets

    soft = np.full((len(EXPR_TRUE), NUM_EXPRESSIONS), -1.0, np.float32)
    soft[::2] = RNG.dirichlet(np.ones(NUM_EXPRESSIONS), size=len(soft[::2]))
    loss = MaskedExpressionLoss(CLASS_W, label_smoothing=0.1, distill_weight=0.3)
    value, _ = loss_and_grad(loss, expression_targets(EXPR_TRUE, soft), EXPR_PRED)
    total, n = 0.0, 0
    for label, teacher, probs in zip(EXPR_TRUE, soft, EXPR_PRED, strict=True):
        if label < 0:
            continue
        target = np.full(NUM_EXPRESSIONS, 0.1 / NUM_EXPRESSIONS)
        target[label] += 0.9
        if teacher[0] >= 0:
            target = 0.7 * target + 0.3 * teacher
        total += CLASS_W[label] * -np.sum(target * np.log(probs))
        n += 1
    assert value == pytest.approx(total / n, rel=1e-5)
    hard_only = loss_and_grad(MaskedExpressionLoss(CLASS_W, 0.1), EXPR_TRUE, EXPR_PRED)[0]
    assert value != pytest.approx(hard_only, rel=1e-3)
    no_teacher = expression_targets(EXPR_TRUE, np.full_like(soft, -1.0))
    assert loss_and_grad(loss, no_teacher, EXPR_PRED)[0] == pytest.approx(hard_only, rel=1e-5)


def test_expression_weights_and_smoothing_change_the_value():
    plain = loss_and_grad(MaskedExpressionLoss(), EXPR_TRUE, EXPR_PRED)[0]
    weighted = loss_and_grad(MaskedExpressionLoss(CLASS_W), EXPR_TRUE, EXPR_PRED)[0]
    smoothed = loss_and_grad(MaskedExpressionLoss(label_smoothing=0.2), EXPR_TRUE, EXPR_PRED)[0]
    assert len({round(plain, 5), round(weighted, 5), round(smoothed, 5)}) == 3


# ------------------------------------------------------------------ valence/arousal
VA_TRUE = np.array(
    [[0.5, -0.2], [-0.4, 0.1], [-5.0, -5.0], [0.9, -5.0], [0.0, 0.7], [-5.0, 0.3]], np.float32
)
VA_PRED = RNG.uniform(-0.9, 0.9, size=(6, 2)).astype(np.float32)


def ccc_by_hand(x, y):
    mx, my = x.mean(), y.mean()
    cov = np.mean((x - mx) * (y - my))
    return 2 * cov / (x.var() + y.var() + (mx - my) ** 2)


def va_by_hand(y, p, mse_weight):
    terms, cells = [], []
    for k in range(2):
        valid = y[:, k] > -2
        if valid.sum() >= 2:
            terms.append(1.0 - ccc_by_hand(y[valid, k].astype(np.float64), p[valid, k]))
        cells.extend((y[valid, k] - p[valid, k]) ** 2)
    ccc_part = np.mean(terms) if terms else 0.0
    return ccc_part + mse_weight * (np.mean(cells) if cells else 0.0)


@pytest.mark.parametrize("mse_weight", [0.0, 0.5, 2.0])
def test_ccc_loss_by_hand(mse_weight):
    value, _ = loss_and_grad(MaskedCCCLoss(mse_weight), VA_TRUE, VA_PRED)
    assert value == pytest.approx(va_by_hand(VA_TRUE, VA_PRED, mse_weight), rel=1e-5)


def test_ccc_loss_of_a_perfect_prediction_is_zero():
    value, _ = loss_and_grad(MaskedCCCLoss(), VA_TRUE, np.where(VA_TRUE < -2, 0.3, VA_TRUE))
    assert value == pytest.approx(0.0, abs=1e-6)


def test_ccc_column_with_one_label_adds_no_ccc_term():
    y = np.array([[0.5, 0.2], [-0.5, -5.0], [0.1, -5.0]], np.float32)
    p = np.array([[0.4, 0.9], [-0.3, 0.0], [0.0, 0.0]], np.float32)
    value, _ = loss_and_grad(MaskedCCCLoss(0.0), y, p)
    assert value == pytest.approx(1.0 - ccc_by_hand(y[:, 0].astype(np.float64), p[:, 0]), rel=1e-5)


# ------------------------------------------------------------------ action units
AU_TRUE = RNG.choice([0, 1, -1], size=(6, NUM_AUS), p=[0.5, 0.3, 0.2]).astype(np.float32)
AU_TRUE[2] = -1  # one row without any AU label
AU_PRED = RNG.uniform(0.02, 0.98, size=(6, NUM_AUS)).astype(np.float32)
POS_W = list(np.linspace(1.0, 6.0, NUM_AUS))


def au_by_hand(y, p, pos_w):
    valid = y >= 0
    t = np.maximum(y, 0)
    bce = -(np.asarray(pos_w) * t * np.log(p) + (1 - t) * np.log(1 - p))
    return bce[valid].sum() / valid.sum()


@pytest.mark.parametrize("pos_w", [None, POS_W])
def test_au_loss_by_hand(pos_w):
    value, _ = loss_and_grad(MaskedAULoss(pos_w), AU_TRUE, AU_PRED)
    assert value == pytest.approx(au_by_hand(AU_TRUE, AU_PRED, pos_w or [1.0] * 12), rel=1e-5)


def test_au_pos_weights_scale_only_the_positive_terms():
    y = np.zeros((2, NUM_AUS), np.float32)
    y[0, 4] = 1.0
    p = np.full((2, NUM_AUS), 0.3, np.float32)
    weights = [1.0] * NUM_AUS
    weights[4] = 5.0
    plain = loss_and_grad(MaskedAULoss(), y, p)[0]
    weighted = loss_and_grad(MaskedAULoss(weights), y, p)[0]
    assert weighted - plain == pytest.approx(4.0 * -np.log(0.3) / (2 * NUM_AUS), rel=1e-5)


# ------------------------------------------------------------------ masking, all losses
CASES = {
    "expr": (MaskedExpressionLoss(CLASS_W, 0.1), EXPR_TRUE, EXPR_PRED, EXPR_TRUE < 0),
    "va": (MaskedCCCLoss(), VA_TRUE, VA_PRED, VA_TRUE < -2),
    "au": (MaskedAULoss(POS_W), AU_TRUE, AU_PRED, AU_TRUE < 0),
}


def _scramble(pred, masked, head):
    """Replace the predictions at masked cells with very different values."""
    out = pred.copy()
    if head == "expr":
        out[masked] = softmax(RNG.normal(size=(int(masked.sum()), NUM_EXPRESSIONS)) * 5)
        out[masked, 0] = 1e-9  # a near-zero probability where a leak would log(0)
    else:
        lo, hi = (-1.0, 1.0) if head == "va" else (0.0, 1.0)
        out[masked] = RNG.choice([lo, hi], size=int(masked.sum()))
    return out


@pytest.mark.parametrize("head", list(CASES))
def test_masked_entries_change_neither_loss_nor_gradient(head):
    loss, y, p, masked = CASES[head]
    assert masked.any() and not masked.all()
    value, grad = loss_and_grad(loss, y, p)
    value2, grad2 = loss_and_grad(loss, y, _scramble(p, masked, head))
    assert value2 == pytest.approx(value, rel=1e-6)
    np.testing.assert_allclose(grad2, grad, rtol=1e-5, atol=1e-7)
    assert np.all(grad[masked] == 0.0)
    assert np.abs(grad).sum() > 0  # the labelled entries do get a gradient


@pytest.mark.parametrize("head", list(CASES))
def test_a_batch_without_labels_gives_zero_loss_and_zero_gradient(head):
    loss, y, p, _ = CASES[head]
    missing = {"expr": -1, "va": -5.0, "au": -1}[head]
    empty = np.full_like(y, missing)
    value, grad = loss_and_grad(loss, empty, p)
    assert value == 0.0
    assert np.all(np.isfinite(grad)) and np.all(grad == 0.0)


@pytest.mark.parametrize("head", list(CASES))
def test_get_config_round_trip(head):
    import keras

    loss = CASES[head][0]
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    _, y, p, _ = CASES[head]
    assert loss_and_grad(restored, y, p)[0] == pytest.approx(loss_and_grad(loss, y, p)[0])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MaskedExpressionLoss([1.0] * 7), "class_weights"),
        (lambda: MaskedExpressionLoss(label_smoothing=1.0), "label_smoothing"),
        (lambda: MaskedExpressionLoss(distill_weight=1.5), "distill_weight"),
        (lambda: MaskedAULoss([1.0] * 11), "pos_weights"),
    ],
)
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
