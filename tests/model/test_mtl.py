"""The multi-task model builder and model bundles.

Checks: named outputs ``expr`` (8, softmax), ``va`` (2, in [-1, 1]), ``au`` (12, in
[0, 1]) for every backbone (random weights, small inputs); ImageNet weights asked for
offline fail with one sentence (the download is faked, never attempted); a local
weights file is used; bad options name their field; bundles and plain ``.keras``
files round-trip; a corrupt file raises BundleError.
"""

from __future__ import annotations

import numpy as np
import pytest

from liveaffect.bundle import BundleError, HeadInfo, ModelCard, load_bundle, save_bundle
from liveaffect.labels import NUM_AUS, NUM_EXPRESSIONS
from liveaffect.model.mtl import HeadConfig, ModelConfig, ModelError, build_mtl_model
from liveaffect.preprocess import PreprocessSpec

SMALL_HEAD = HeadConfig(attention_heads=1, attention_key_dim=8, shared_units=16, branch_units=8)


def faces(n, size, channels, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, channels)).astype("float32")


def check_outputs(model, size, channels):
    assert set(model.output_names) == {"expr", "va", "au"}
    out = {k: np.asarray(v) for k, v in model(faces(3, size, channels), training=False).items()}
    assert out["expr"].shape == (3, NUM_EXPRESSIONS)
    assert out["va"].shape == (3, 2)
    assert out["au"].shape == (3, NUM_AUS)
    np.testing.assert_allclose(out["expr"].sum(axis=1), 1.0, atol=1e-5)
    assert np.all(out["expr"] >= 0)
    assert np.all(np.abs(out["va"]) <= 1.0)
    assert np.all((out["au"] >= 0) & (out["au"] <= 1))
    return out


@pytest.mark.parametrize(
    ("backbone", "size", "color"),
    [
        ("tiny", 32, "rgb"),
        ("tiny", 32, "gray"),
        ("cnn", 48, "gray"),
        ("efficientnetv2b0", 32, "rgb"),
        ("efficientnetv2s", 32, "rgb"),
        ("mobilenetv3small", 32, "rgb"),
    ],
)
def test_builder_gives_named_outputs_for_every_backbone(backbone, size, color):
    cfg = ModelConfig(backbone=backbone, input_size=size, color=color, weights=None)
    model = build_mtl_model(cfg)
    assert tuple(model.inputs[0].shape[1:]) == (size, size, 1 if color == "gray" else 3)
    check_outputs(model, size, cfg.channels)


@pytest.mark.parametrize(
    "head",
    [
        HeadConfig(attention_heads=0, branch_units=0),
        HeadConfig(attention_heads=2, attention_key_dim=4, shared_units=8, branch_units=4),
        HeadConfig(attention_heads=0, pool="flatten"),
        HeadConfig(attention_heads=2, attention_key_dim=4, pool="flatten"),
    ],
)
def test_head_variants_build(head):
    check_outputs(build_mtl_model(ModelConfig(backbone="tiny", input_size=32, head=head)), 32, 3)


@pytest.mark.parametrize(("pool", "width"), [("mean", 16), ("flatten", 8 * 8 * 16)])
def test_pool_keeps_or_drops_positions(pool, width):
    # tiny: two stride-2 convs, 32 px -> an 8x8x16 map
    head = HeadConfig(attention_heads=0, pool=pool)
    model = build_mtl_model(ModelConfig(backbone="tiny", input_size=32, head=head))
    assert model.get_layer("pool").output.shape[-1] == width


def test_overrides_build_the_same_config():
    model = build_mtl_model(backbone="tiny", input_size=40, color="gray")
    assert tuple(model.inputs[0].shape[1:]) == (40, 40, 1)


def test_imagenet_weights_offline_fail_with_one_sentence(monkeypatch):
    import keras

    url = "https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/x.h5"

    def offline(*args, **kwargs):
        assert kwargs.get("weights") == "imagenet"
        # what keras.utils.get_file raises when the download fails
        raise Exception(
            f"URL fetch failure on {url}: None -- [Errno -3] Temporary failure in name resolution"
        )

    monkeypatch.setattr(keras.applications, "EfficientNetV2B0", offline)
    cfg = ModelConfig(backbone="efficientnetv2b0", input_size=32, weights="imagenet")
    with pytest.raises(ModelError) as info:
        build_mtl_model(cfg)
    message = str(info.value)
    assert "\n" not in message and ". " not in message.rstrip(".")
    assert "ImageNet" in message and "efficientnetv2b0" in message and "--weights" in message
    assert "URL fetch" not in message and "Errno" not in message


def test_missing_weights_file_is_named(tmp_path):
    path = tmp_path / "nope_notop.h5"
    with pytest.raises(ModelError, match=r"nope_notop\.h5"):
        build_mtl_model(ModelConfig(backbone="efficientnetv2b0", input_size=32, weights=str(path)))


def test_local_weights_file_is_loaded(tmp_path):
    import keras

    keras.utils.set_random_seed(3)
    base = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3)
    )
    path = tmp_path / "mobilenet_notop.weights.h5"
    base.save_weights(path)
    model = build_mtl_model(
        ModelConfig(backbone="mobilenetv3small", input_size=32, weights=str(path))
    )
    inner = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    for got, want in zip(inner.get_weights(), base.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: ModelConfig(backbone="resnet50"), "backbone"),
        (lambda: ModelConfig(input_size=8), "input_size"),
        (lambda: ModelConfig(color="bgr"), "color"),
        (lambda: ModelConfig(backbone="efficientnetv2s", color="gray"), "color"),
        (lambda: HeadConfig(dropout=1.0), "head.dropout"),
        (lambda: HeadConfig(dropout_in=-0.1), "head.dropout_in"),
        (lambda: HeadConfig(attention_heads=-1), "head.attention_heads"),
        (lambda: HeadConfig(shared_units=-4), "head.shared_units"),
        (lambda: HeadConfig(pool="max"), "head.pool"),
        (lambda: ModelConfig(head={"dropout": 2.0}), "head.dropout"),
        (lambda: ModelConfig(input_norm="per_image"), "input_norm"),
    ],
)
def test_bad_config_values_name_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_face_standardize_gives_every_face_the_same_mean_and_contrast():
    from liveaffect.model.layers import FACE_MEAN, FACE_STD, FaceStandardize

    x = faces(4, 16, 1)
    layer = FaceStandardize()
    out = np.asarray(layer(x))
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), FACE_MEAN, atol=1e-3)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), FACE_STD, rtol=0.02)
    dark = 0.3 * x + 5.0  # a dimmer, flatter exposure of the same faces
    exact = FaceStandardize(eps=1e-6)  # the default eps (1 grey level) damps low contrast
    np.testing.assert_allclose(np.asarray(exact(dark)), np.asarray(exact(x)), atol=1e-2)
    flat = np.full((1, 16, 16, 1), 40.0, np.float32)
    np.testing.assert_allclose(np.asarray(layer(flat)), FACE_MEAN)


def test_input_norm_changes_what_the_backbone_sees():
    import keras

    cfg = ModelConfig(backbone="tiny", input_size=32, head=SMALL_HEAD)
    keras.utils.set_random_seed(3)
    plain = build_mtl_model(cfg)
    keras.utils.set_random_seed(3)
    per_face = build_mtl_model(ModelConfig(**{**cfg.__dict__, "input_norm": "per_face"}))
    assert [w.shape for w in plain.get_weights()] == [w.shape for w in per_face.get_weights()]
    per_face.set_weights(plain.get_weights())
    x = faces(2, 32, 3)
    brighter = np.clip(x * 0.5 + 60.0, 0, 255)

    def change(model) -> float:  # of the pooled backbone features, relative
        pooled = keras.Model(model.input, model.get_layer("pool").output)
        a, b = np.asarray(pooled(x)), np.asarray(pooled(brighter))
        return float(np.abs(a - b).max() / np.abs(a).max())

    assert change(per_face) < 0.05 < change(plain)


# ------------------------------------------------------------------ bundles
def test_bundle_round_trip(tmp_path):
    import keras

    keras.utils.set_random_seed(1)
    model = build_mtl_model(ModelConfig(backbone="tiny", input_size=32, head=SMALL_HEAD))
    card = ModelCard(
        name="round-trip",
        backbone="tiny",
        preprocess=PreprocessSpec(input_size=(32, 32), color="rgb", crop_margin=0.2),
        heads={
            "expr": HeadInfo(True, "synthetic (10 faces)", ["Neutral", "Anger"]),
            "va": HeadInfo(True, "synthetic"),
            "au": HeadInfo(False, "no action-unit labels"),
        },
        au_thresholds=[0.3] * NUM_AUS,
        metrics={"expr": {"macro_f1": 0.5}},
    )
    save_bundle(model, card, tmp_path / "bundle")
    bundle = load_bundle(tmp_path / "bundle")
    assert set(bundle.outputs) == {"expr", "va", "au"}
    assert bundle.card.to_dict() == card.to_dict()
    assert not bundle.card.trained("au") and bundle.card.trained("expr")
    x = faces(4, 32, 3)
    want, got = model(x, training=False), bundle.model(x, training=False)
    for head in ("expr", "va", "au"):
        np.testing.assert_allclose(np.asarray(got[head]), np.asarray(want[head]), atol=1e-6)
    # the model file alone loads too
    assert load_bundle(tmp_path / "bundle" / "model.keras").card.name == "round-trip"


def test_plain_keras_with_other_output_names_maps_by_width(tmp_path):
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3))
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3)(inputs))
    units = layers.Dense(NUM_AUS, activation="sigmoid", name="units")(x)
    emotion = layers.Dense(NUM_EXPRESSIONS, activation="softmax", name="emotion")(x)
    affect = layers.Dense(2, activation="tanh", name="affect")(x)
    model = keras.Model(inputs, [units, emotion, affect])
    model.save(tmp_path / "other.keras")

    bundle = load_bundle(tmp_path / "other.keras")
    assert bundle.outputs == {"au": 0, "expr": 1, "va": 2}
    assert all(bundle.card.trained(h) for h in ("expr", "va", "au"))
    assert bundle.card.preprocess.input_size == (32, 32)
    out = bundle.model(faces(2, 32, 3), training=False)  # wrapped: outputs keyed by head
    assert set(out) == {"expr", "va", "au"} and bundle.model.output_names == ["au", "expr", "va"]
    assert np.asarray(out["expr"]).shape == (2, NUM_EXPRESSIONS)
    assert np.asarray(out["au"]).shape == (2, NUM_AUS)


def test_model_without_multitask_outputs_is_refused(tmp_path):
    import keras
    from keras import layers

    inputs = keras.Input((16, 16, 3))
    out = layers.Dense(5)(layers.Flatten()(inputs))
    keras.Model(inputs, out).save(tmp_path / "five.keras")
    with pytest.raises(BundleError, match="no expr/va/au output"):
        load_bundle(tmp_path / "five.keras")


def test_corrupt_keras_file_raises_bundle_error(tmp_path, tiny_bundle):
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"this is not a zip file" * 10)
    with pytest.raises(BundleError, match=r"garbage\.keras.*not a \.keras zip archive"):
        load_bundle(garbage)
    data = (tiny_bundle / "model.keras").read_bytes()
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(data[: len(data) // 2])
    # Keras itself calls such a file "not found"; the error says what is wrong with it.
    with pytest.raises(BundleError, match=r"cannot load the model.*truncated or corrupt") as err:
        load_bundle(truncated)
    assert "File not found" not in str(err.value)


def test_missing_bundle_raises_bundle_error(tmp_path):
    with pytest.raises(BundleError, match="no such model"):
        load_bundle(tmp_path / "absent")
