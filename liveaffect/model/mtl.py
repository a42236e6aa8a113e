"""The multi-task model: backbone -> attention fusion -> shared dense -> expr / va / au.

The seed's design (DESIGN.md): backbone -> dropout -> multi-head attention over the
backbone's spatial tokens -> batch norm -> dropout 0.7 -> shared dense -> three
branches. Outputs are named ``expr`` (8, softmax), ``va`` (2, tanh) and ``au``
(12, sigmoid), so losses, metrics and the runtime find them by name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from liveaffect.labels import NUM_AUS, NUM_EXPRESSIONS


class ModelError(Exception):
    """The model cannot be built as asked (unknown backbone, weights unavailable...)."""


# name -> (keras.applications constructor name or None for our own, native colour)
BACKBONES: dict[str, str] = {
    "efficientnetv2s": "EfficientNetV2S",
    "efficientnetv2b0": "EfficientNetV2B0",
    "mobilenetv3small": "MobileNetV3Small",
    "cnn": "",
    "tiny": "",
}
"""Backbones the builder knows. ``efficientnetv2s`` is the default for Aff-Wild2;
``efficientnetv2b0`` and ``mobilenetv3small`` are smaller Keras applications for CPU;
``cnn`` is a compact VGG-style network for small (48-96 px) faces, trained from
scratch; ``tiny`` exists for tests."""

BN_MOMENTUM = 0.9
"""Default momentum of the batch norms the builder adds (the ``cnn`` backbone and the fusion
head), as in Keras' EfficientNetV2 (why not Keras' 0.99: ``final_model/MODEL_CARD.md``)."""


@dataclass
class HeadConfig:
    """The fusion head (the seed's design; every number is configurable).

    Attributes:
        dropout_in: dropout on the backbone features before attention.
        attention_heads: heads of the multi-head self-attention over spatial tokens
            (0 = skip attention, plain global average pooling).
        attention_key_dim: key size per attention head.
        dropout: dropout after batch norm (0.7 in the seed).
        shared_units: width of the shared dense layer.
        branch_units: width of each task branch's hidden dense layer (0 = none).
        expr_l2: L2 kernel regulariser on the expression output (the seed's).
        pool: how the spatial map becomes one vector: ``mean`` (global average, the
            seed's; position-free) or ``flatten`` (keeps where on the face each feature
            is; for the small ``cnn`` maps, e.g. 3x3 at 48 px).
    """

    dropout_in: float = 0.2
    attention_heads: int = 4
    attention_key_dim: int = 64
    dropout: float = 0.7
    shared_units: int = 512
    branch_units: int = 128
    expr_l2: float = 1e-4
    pool: str = "mean"

    def __post_init__(self) -> None:
        if self.pool not in ("mean", "flatten"):
            raise ValueError(f"head.pool must be 'mean' or 'flatten', got {self.pool!r}")
        for name in ("dropout_in", "dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"head.{name} must be in [0, 1), got {value}")
        for name in ("attention_heads", "attention_key_dim", "shared_units", "branch_units"):
            if getattr(self, name) < 0:
                raise ValueError(f"head.{name} must be >= 0")


@dataclass
class ModelConfig:
    """What to build.

    Attributes:
        backbone: one of BACKBONES.
        input_size: square input side in pixels.
        color: ``rgb`` or ``gray`` (gray only for ``cnn`` / ``tiny``).
        weights: None (random init), ``"imagenet"`` (needs a download), or a local
            weights file for the backbone.
        trainable_layers: train only the backbone's top N layers (None = all).
        widths: channel widths per stage of the ``cnn`` backbone.
        head: the fusion head.
        bn_momentum: momentum of the batch norms the builder adds (``cnn`` backbone and
            fusion head); see BN_MOMENTUM.
        input_norm: ``none`` (the backbone gets the pixels as given) or ``per_face``
            (:class:`liveaffect.model.layers.FaceStandardize` first: every face shifted and
            scaled to the same mean and contrast, so a dark or washed-out face looks like
            a well-lit one; it has no weights, so a model without it can be fine-tuned
            with it).
    """

    backbone: str = "efficientnetv2s"
    input_size: int = 224
    color: str = "rgb"
    weights: str | None = None
    trainable_layers: int | None = None
    widths: Sequence[int] = (32, 64, 128, 256)
    head: HeadConfig = field(default_factory=HeadConfig)
    bn_momentum: float = BN_MOMENTUM
    input_norm: str = "none"

    def __post_init__(self) -> None:
        if self.input_norm not in ("none", "per_face"):
            raise ValueError(f"input_norm must be none or per_face, got {self.input_norm!r}")
        if isinstance(self.head, dict):
            self.head = HeadConfig(**self.head)
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, got {self.backbone!r}")
        if self.input_size < 16:
            raise ValueError(f"input_size must be >= 16, got {self.input_size}")
        if self.color not in ("rgb", "gray"):
            raise ValueError(f"color must be 'rgb' or 'gray', got {self.color!r}")
        if self.color == "gray" and BACKBONES[self.backbone]:
            raise ValueError(f"backbone {self.backbone} needs color 'rgb'")
        if self.weights is not None and not BACKBONES[self.backbone]:
            raise ValueError(
                f"weights ({self.weights}) are for the Keras application backbones; "
                f"backbone {self.backbone} always starts from random weights"
            )
        self.widths = tuple(int(w) for w in self.widths)
        if not 0.0 < self.bn_momentum < 1.0:
            raise ValueError(f"bn_momentum must be in (0, 1), got {self.bn_momentum}")

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d


def _keras_application(cfg: ModelConfig, inputs):
    import keras

    ctor = getattr(keras.applications, BACKBONES[cfg.backbone])
    weights = cfg.weights
    if weights not in (None, "imagenet") and not os.path.exists(weights):
        raise ModelError(f"backbone weights file not found: {weights}")
    try:
        base = ctor(
            include_top=False,
            weights=weights,
            input_shape=(cfg.input_size, cfg.input_size, 3),
            include_preprocessing=True,
        )
    except Exception as exc:
        if weights == "imagenet":
            raise ModelError(
                f"could not download ImageNet weights for {cfg.backbone} (offline?); "
                "pass --weights PATH to a local '_notop' weights file instead"
            ) from exc
        raise ModelError(f"could not build {cfg.backbone}: {exc}") from exc
    if cfg.trainable_layers is not None:
        cut = len(base.layers) - int(cfg.trainable_layers)
        for i, layer in enumerate(base.layers):
            layer.trainable = i >= cut and not isinstance(layer, keras.layers.BatchNormalization)
    return base(inputs)


def _cnn(cfg: ModelConfig, inputs):
    from keras import layers

    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(inputs)
    for stage, width in enumerate(cfg.widths):
        for j in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"s{stage}_conv{j}")(x)
            x = layers.BatchNormalization(momentum=cfg.bn_momentum, name=f"s{stage}_bn{j}")(x)
            x = layers.Activation("relu", name=f"s{stage}_relu{j}")(x)
        x = layers.MaxPooling2D(name=f"s{stage}_pool")(x)
    return x


def _tiny(cfg: ModelConfig, inputs):
    from keras import layers

    x = layers.Rescaling(1.0 / 255.0, name="normalize")(inputs)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    return x


def build_mtl_model(cfg: ModelConfig | None = None, **overrides):
    """Build the functional multi-task model with outputs ``expr``, ``va``, ``au``.

    Inputs are float pixels 0..255 in the card's colour order (the model normalises
    inside), shape ``(input_size, input_size, channels)``.

    Raises:
        ModelError: ImageNet weights requested offline, missing weights file.
    """
    import keras
    from keras import layers

    cfg = cfg or ModelConfig(**overrides)
    h = cfg.head
    inputs = keras.Input((cfg.input_size, cfg.input_size, cfg.channels), name="face")
    pixels = inputs
    if cfg.input_norm == "per_face":
        from liveaffect.model.layers import FaceStandardize

        pixels = FaceStandardize(name="face_standardize")(inputs)
    if cfg.backbone == "cnn":
        features = _cnn(cfg, pixels)
    elif cfg.backbone == "tiny":
        features = _tiny(cfg, pixels)
    else:
        features = _keras_application(cfg, pixels)

    x = layers.Dropout(h.dropout_in, name="features_dropout")(features)
    fh, fw, fc = x.shape[1], x.shape[2], x.shape[3]
    if h.attention_heads:
        tokens = layers.Reshape((fh * fw, fc), name="tokens")(x)
        x = layers.MultiHeadAttention(
            num_heads=h.attention_heads, key_dim=h.attention_key_dim, name="attention"
        )(tokens, tokens)
    if h.pool == "flatten":
        x = layers.Flatten(name="pool")(x)
    elif h.attention_heads:
        x = layers.GlobalAveragePooling1D(name="pool")(x)
    else:
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.BatchNormalization(momentum=cfg.bn_momentum, name="fusion_bn")(x)
    x = layers.Dropout(h.dropout, name="fusion_dropout")(x)
    shared = layers.Dense(h.shared_units, activation="relu", name="shared")(x)

    def branch(name: str):
        if not h.branch_units:
            return shared
        return layers.Dense(h.branch_units, activation="relu", name=f"{name}_hidden")(shared)

    expr = layers.Dense(
        NUM_EXPRESSIONS,
        activation="softmax",
        kernel_regularizer=keras.regularizers.l2(h.expr_l2) if h.expr_l2 else None,
        name="expr",
        dtype="float32",  # outputs stay float32 under mixed precision
    )(branch("expr"))
    va = layers.Dense(2, activation="tanh", name="va", dtype="float32")(branch("va"))
    au = layers.Dense(NUM_AUS, activation="sigmoid", name="au", dtype="float32")(branch("au"))
    return keras.Model(
        inputs, {"expr": expr, "va": va, "au": au}, name=f"liveaffect_{cfg.backbone}"
    )
