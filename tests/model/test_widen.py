"""Widening a cnn backbone keeps its outputs, and refuses what it cannot widen."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from liveaffect.model.mtl import HeadConfig, ModelConfig, build_mtl_model
from liveaffect.model.widen import WidenError, widen

NARROW = ModelConfig(
    backbone="cnn", input_size=32, color="gray", widths=(4, 8, 8, 12),
    head=HeadConfig(attention_heads=0, shared_units=16, branch_units=8),
)  # fmt: skip


def _trained_like(config: ModelConfig):
    """A narrow model with non-trivial batch-norm statistics (as a trained one has)."""
    import keras

    keras.utils.set_random_seed(3)
    model = build_mtl_model(config)
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if "bn" in layer.name:
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
                               if i in (0, 3) else rng.normal(0, 0.3, w.shape).astype(np.float32)
                               for i, w in enumerate(layer.get_weights())])  # fmt: skip
    return model


def test_the_widened_model_gives_the_same_outputs_and_is_wider():
    narrow = _trained_like(NARROW)
    wide, changed, gap = widen(narrow, NARROW, (4, 8, 8, 20), seed=0)
    assert gap <= 1e-4
    assert "s3_conv1/kernel" in changed and "s0_conv0/kernel" not in changed
    assert wide.get_layer("s3_conv1").kernel.shape[-1] == 20
    faces = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 1)).astype(np.float32)
    a, b = narrow(faces, training=False), wide(faces, training=False)
    for head in ("expr", "va", "au"):
        np.testing.assert_allclose(np.asarray(a[head]), np.asarray(b[head]), atol=1e-5)
    kernel = wide.get_layer("s3_conv1").get_weights()[0]
    assert np.all(kernel[..., 12:, :12] == 0)  # nothing reads the new channels yet
    assert np.any(kernel[..., :12, 12:] != 0)  # the new channels have random filters
    again, _, _ = widen(narrow, NARROW, (4, 8, 8, 20), seed=0)
    np.testing.assert_array_equal(again.get_layer("s3_conv1").get_weights()[0], kernel)


def test_widening_works_under_a_mixed_precision_policy_and_restores_it():
    import keras

    narrow = _trained_like(NARROW)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        wide, _, gap = widen(narrow, NARROW, (4, 8, 8, 16))
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert gap <= 1e-4 and {layer.dtype_policy.name for layer in wide.layers} == {"float32"}


@pytest.mark.parametrize(
    ("config", "widths", "said"),
    [
        (NARROW, (4, 8, 8, 6), "at least as wide"),
        (NARROW, (4, 8, 8), "has 4 stages"),
        (dataclasses.replace(NARROW, backbone="tiny"), (4, 8, 8, 20), "only a cnn"),
        (dataclasses.replace(NARROW, head=HeadConfig(attention_heads=1)), (4, 8, 8, 20),
         "attention"),
    ],
)  # fmt: skip
def test_what_cannot_be_widened_is_refused(config, widths, said):
    with pytest.raises(WidenError, match=said):
        widen(None, config, widths)
