"""Widen a trained ``cnn`` backbone without changing what it computes.

``train.init_from`` uses this when it names a bundle whose ``cnn`` stages are narrower than
the run's, and ``bench/widen_backbone.py`` writes such a widened bundle on its own. The model
is rebuilt from the bundle's config with the new widths (each stage as wide or wider) and
every weight is copied into the leading slice of the wider one. The new channels get the
builder's random filters, and every weight that *reads* a new channel starts at zero
(Net2Net-style, Chen et al., ICLR 2016, with zeros instead of copies), so the wider model
gives the same outputs as the bundle until training moves those weights; new batch-norm
entries start as identity (gamma 1, beta 0, mean 0, variance 1). :func:`widen` checks that
on random faces and refuses a model that differs. Keras has no call for this, hence these
lines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from liveaffect.model.mtl import ModelConfig, build_mtl_model

IDENTITY = {"gamma": 1.0, "moving_variance": 1.0}  # every other new entry starts at 0
TOLERANCE = 1e-4  # largest output change accepted (float32 rounding)


class WidenError(ValueError):
    """The model cannot be widened as asked (message says why)."""


def check_widths(config: ModelConfig, widths: Sequence[int]) -> None:
    """Raise :class:`WidenError` unless ``config``'s backbone can be widened to ``widths``."""
    if config.backbone != "cnn":
        raise WidenError(f"only a cnn backbone can be widened, not {config.backbone}")
    if config.head.attention_heads:
        raise WidenError("its head has attention, which cannot be widened")
    if len(widths) != len(config.widths):
        raise WidenError(f"its backbone has {len(config.widths)} stages, not {len(widths)}")
    if any(n < o for n, o in zip(widths, config.widths, strict=True)):
        raise WidenError(
            f"every stage must be at least as wide as {list(config.widths)}, not {list(widths)}"
        )


def copy_into_wider(old, new) -> list[str]:
    """Copy ``old``'s weights into ``new`` (same layer names, each weight as large or
    larger) as the module doc says; returns ``layer/variable`` for each widened weight."""
    import numpy as np

    by_name = {layer.name: layer for layer in old.layers}
    changed = []
    for layer in new.layers:
        if not layer.weights:
            continue
        source = by_name.get(layer.name)
        if source is None or len(source.weights) != len(layer.weights):
            raise WidenError(f"layer {layer.name} has no counterpart in the narrower model")
        out = []
        for var, w_old, w_new in zip(
            layer.weights, source.get_weights(), layer.get_weights(), strict=True
        ):
            if w_old.shape == w_new.shape:
                out.append(w_old)
                continue
            if w_old.ndim != w_new.ndim or any(
                o > n for o, n in zip(w_old.shape, w_new.shape, strict=True)
            ):
                raise WidenError(f"{layer.name}/{var.name}: {w_old.shape} -> {w_new.shape}")
            w = w_new.copy() if var.name == "kernel" else np.zeros_like(w_new)
            if var.name in IDENTITY:
                w[...] = IDENTITY[var.name]
            if var.name == "kernel":  # zero what reads a new input channel
                index = [slice(None)] * w.ndim
                index[-2] = slice(w_old.shape[-2], None)
                w[tuple(index)] = 0.0
            w[tuple(slice(0, s) for s in w_old.shape)] = w_old
            out.append(w)
            changed.append(f"{layer.name}/{var.name}")
        layer.set_weights(out)
    return changed


def output_change(a, b, seed: int = 0) -> float:
    """The largest absolute difference between two models' outputs on 4 random faces."""
    import keras
    import numpy as np

    shape = (4, *a.inputs[0].shape[1:])
    faces = np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)
    before = keras.tree.flatten(a(faces, training=False))
    after = keras.tree.flatten(b(faces, training=False))
    pairs = zip(before, after, strict=True)
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in pairs)


def widen(model, config: ModelConfig, widths: Sequence[int], seed: int = 0):
    """``model`` (built from ``config``) widened to ``widths``: returns the wider float32
    model, the names of the widened weights and the largest output change (at most
    :data:`TOLERANCE`, else :class:`WidenError`). ``seed`` draws the new channels' filters."""
    import keras

    check_widths(config, widths)
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")  # compare like with like, whatever training uses
    try:
        keras.utils.set_random_seed(seed)
        wide = build_mtl_model(dataclasses.replace(config, widths=tuple(widths)))
    finally:
        keras.config.set_dtype_policy(policy)
    changed = copy_into_wider(model, wide)
    gap = output_change(model, wide)
    if gap > TOLERANCE:
        raise WidenError(f"the widened model's outputs differ from the original's by {gap:.2g}")
    return wide, changed, gap
