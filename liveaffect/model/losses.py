"""Masked multi-task losses: a missing label adds nothing to the loss.

Label conventions follow Aff-Wild2: expression -1, valence/arousal -5, AU -1 mean
"no label". Each loss returns a scalar averaged over the *labelled* entries of the
batch (zero when the batch holds none), so a head with no labels gets no gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from liveaffect.labels import NUM_AUS, NUM_EXPRESSIONS


@keras.saving.register_keras_serializable(package="liveaffect")
class MaskedExpressionLoss(keras.losses.Loss):
    """Cross-entropy over the 8 classes with class weights and label smoothing.

    ``y_true`` is the class index (-1: no label), or, for distillation, 9 columns: the
    class index, then a teacher's 8 probabilities (negative where the face has none). The
    target is then ``(1 - distill_weight) * smoothed one-hot + distill_weight * teacher``;
    the class weight is still the labelled class's.

    Args:
        class_weights: one weight per class (default all 1).
        label_smoothing: mass spread uniformly over the classes (0 = off).
        distill_weight: the teacher's share of the target where one is given (0..1).
    """

    def __init__(
        self,
        class_weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        distill_weight: float = 0.0,
        name: str = "masked_expr_ce",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.class_weights = [float(w) for w in (class_weights or [1.0] * NUM_EXPRESSIONS)]
        if len(self.class_weights) != NUM_EXPRESSIONS:
            raise ValueError(f"class_weights needs {NUM_EXPRESSIONS} values")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        if not 0.0 <= distill_weight <= 1.0:
            raise ValueError(f"distill_weight must be in [0, 1], got {distill_weight}")
        self.distill_weight = float(distill_weight)

    def call(self, y_true, y_pred):
        soft = None
        if len(y_true.shape) == 2 and y_true.shape[-1] == 1 + NUM_EXPRESSIONS:
            soft = ops.cast(y_true[:, 1:], y_pred.dtype)
            y_true = y_true[:, 0]
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        mask = ops.cast(labels >= 0, y_pred.dtype)
        onehot = ops.one_hot(ops.maximum(labels, 0), NUM_EXPRESSIONS, dtype=y_pred.dtype)
        if self.label_smoothing:
            onehot = onehot * (1.0 - self.label_smoothing) + self.label_smoothing / NUM_EXPRESSIONS
        if soft is not None and self.distill_weight:
            has_teacher = ops.expand_dims(ops.cast(soft[:, 0] >= 0, y_pred.dtype), -1)
            mixed = (1.0 - self.distill_weight) * onehot + self.distill_weight * soft
            onehot = has_teacher * mixed + (1.0 - has_teacher) * onehot
        probs = ops.clip(y_pred, 1e-7, 1.0)
        ce = -ops.sum(onehot * ops.log(probs), axis=-1)
        weights = ops.take(
            ops.convert_to_tensor(self.class_weights, y_pred.dtype), ops.maximum(labels, 0)
        )
        weights = weights * mask
        return ops.sum(ce * weights) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        return {
            **super().get_config(),
            "class_weights": self.class_weights,
            "label_smoothing": self.label_smoothing,
            "distill_weight": self.distill_weight,
        }


def masked_ccc(y_true, y_pred, mask):
    """Concordance correlation per column over the masked rows (0 when < 2 rows)."""
    n = ops.sum(mask, axis=0)
    safe_n = ops.maximum(n, 1.0)
    mean_t = ops.sum(y_true * mask, axis=0) / safe_n
    mean_p = ops.sum(y_pred * mask, axis=0) / safe_n
    dt, dp = (y_true - mean_t) * mask, (y_pred - mean_p) * mask
    var_t = ops.sum(dt * dt, axis=0) / safe_n
    var_p = ops.sum(dp * dp, axis=0) / safe_n
    cov = ops.sum(dt * dp, axis=0) / safe_n
    denom = var_t + var_p + (mean_t - mean_p) ** 2
    ccc = 2.0 * cov / ops.maximum(denom, 1e-8)
    return ccc, ops.cast(n >= 2.0, y_pred.dtype)


@keras.saving.register_keras_serializable(package="liveaffect")
class MaskedCCCLoss(keras.losses.Loss):
    """``1 - CCC`` for valence and arousal over the labelled rows, plus a small MSE term.

    CCC is a batch statistic; the MSE term keeps the gradient sensible when a
    batch holds only a few labelled faces.
    """

    def __init__(self, mse_weight: float = 0.5, name: str = "masked_va_ccc", **kwargs):
        super().__init__(name=name, **kwargs)
        self.mse_weight = float(mse_weight)

    def call(self, y_true, y_pred):
        y_true = ops.cast(ops.reshape(y_true, (-1, 2)), y_pred.dtype)
        mask = ops.cast(y_true > -2.0, y_pred.dtype)
        ccc, valid = masked_ccc(y_true, y_pred, mask)
        ccc_loss = ops.sum((1.0 - ccc) * valid) / ops.maximum(ops.sum(valid), 1.0)
        mse = ops.sum(((y_true - y_pred) ** 2) * mask) / ops.maximum(ops.sum(mask), 1.0)
        return ccc_loss + self.mse_weight * mse

    def get_config(self):
        return {**super().get_config(), "mse_weight": self.mse_weight}


@keras.saving.register_keras_serializable(package="liveaffect")
class MaskedAULoss(keras.losses.Loss):
    """Binary cross-entropy per AU with positive weights for rare AUs; -1 is masked."""

    def __init__(
        self, pos_weights: Sequence[float] | None = None, name: str = "masked_au_bce", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        self.pos_weights = [float(w) for w in (pos_weights or [1.0] * NUM_AUS)]
        if len(self.pos_weights) != NUM_AUS:
            raise ValueError(f"pos_weights needs {NUM_AUS} values")

    def call(self, y_true, y_pred):
        y_true = ops.cast(ops.reshape(y_true, (-1, NUM_AUS)), y_pred.dtype)
        mask = ops.cast(y_true >= 0.0, y_pred.dtype)
        target = ops.maximum(y_true, 0.0)
        p = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
        pos_w = ops.convert_to_tensor(self.pos_weights, y_pred.dtype)
        bce = -(pos_w * target * ops.log(p) + (1.0 - target) * ops.log(1.0 - p))
        return ops.sum(bce * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        return {**super().get_config(), "pos_weights": self.pos_weights}


CUSTOM_OBJECTS = {
    "MaskedExpressionLoss": MaskedExpressionLoss,
    "MaskedCCCLoss": MaskedCCCLoss,
    "MaskedAULoss": MaskedAULoss,
}
