"""Widen a bundle's ``cnn`` backbone without changing what it computes (a capacity test).

    mkdir -p runs/stage1 && git archive c82e929 final_model | tar -x -C runs/stage1
    python bench/widen_backbone.py --bundle runs/stage1/final_model \
        --widths 16,64,128,384 --out runs/stage1_w384
    # then train stage 2 from it: configs/default_model.yaml with model.widths
    # [16, 64, 128, 384] and train.init_from: runs/stage1_w384

Is the default model short of capacity, or of information (48x48 grey faces)? Training a
wider network from scratch costs hours on this CPU; this starts one from a trained bundle
instead. The bundle's model is rebuilt from its card's config with ``--widths`` (each
stage as wide or wider) and every weight is copied into the leading slice of the wider
one. The new channels get the builder's random filters, and every weight that *reads* a
new channel starts at zero (Net2Net-style, Chen et al., ICLR 2016, with zeros instead of
copies), so the wider model gives the same outputs as the bundle until training moves
those weights; new batch-norm entries start as identity (gamma 1, beta 0, mean 0,
variance 1). The script checks that on random faces and refuses to write a bundle that
differs. Keras has no call for this, hence these lines.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

IDENTITY = {"gamma": 1.0, "moving_variance": 1.0}  # every other new entry starts at 0


def widened(old, new) -> list[str]:
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
            raise ValueError(f"layer {layer.name} has no counterpart in the bundle")
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
                raise ValueError(f"{layer.name}/{var.name}: {w_old.shape} -> {w_new.shape}")
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", required=True, help="the trained bundle to widen (cnn backbone)")
    p.add_argument("--widths", required=True, help="new widths per stage, e.g. 16,64,128,384")
    p.add_argument("--out", required=True, help="folder for the widened bundle")
    p.add_argument("--seed", type=int, default=0, help="seed of the new channels' random filters")
    args = p.parse_args()
    try:
        widths = tuple(int(v) for v in args.widths.split(","))
    except ValueError:
        p.error(f"--widths: comma-separated integers, got {args.widths!r}")

    import dataclasses

    import keras
    import numpy as np

    from liveaffect.bundle import BundleError, load_bundle, save_bundle
    from liveaffect.model.mtl import build_mtl_model
    from liveaffect.training.config import config_from_dict

    try:
        bundle = load_bundle(args.bundle)
    except BundleError as exc:
        p.error(str(exc))
    config = bundle.card.training.get("config")
    if not config:
        p.error(f"{args.bundle}: its card has no training config to rebuild the model from")
    model_cfg = config_from_dict(config).model
    if model_cfg.backbone != "cnn":
        p.error(f"{args.bundle}: only a cnn backbone can be widened, not {model_cfg.backbone}")
    if model_cfg.head.attention_heads:
        p.error(f"{args.bundle}: its head has attention, which this cannot widen")
    if len(widths) != len(model_cfg.widths):
        p.error(f"--widths: the bundle's backbone has {len(model_cfg.widths)} stages")
    if any(n < o for n, o in zip(widths, model_cfg.widths, strict=True)):
        p.error(f"--widths: every stage at least as wide as {list(model_cfg.widths)}")
    keras.utils.set_random_seed(args.seed)  # the new channels' random filters
    model = build_mtl_model(dataclasses.replace(model_cfg, widths=widths))
    try:
        changed = widened(bundle.model, model)
    except ValueError as exc:
        p.error(f"cannot widen {args.bundle}: {exc}")
    shape = (4, *bundle.model.inputs[0].shape[1:])
    faces = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    before = keras.tree.flatten(bundle.model(faces, training=False))
    after = keras.tree.flatten(model(faces, training=False))
    pairs = zip(before, after, strict=True)
    gap = max(float(np.max(np.abs(np.asarray(b) - np.asarray(a)))) for b, a in pairs)
    if gap > 1e-4:
        p.error(f"the widened model's outputs differ from the bundle's by {gap:.2g}")
    config["model"]["widths"] = list(widths)
    bundle.card.notes = (
        f"{args.bundle} widened from {list(model_cfg.widths)} to {list(widths)} by "
        f"bench/widen_backbone.py (same outputs; new channels untrained). {bundle.card.notes}"
    ).strip()
    print(f"widened {len(changed)} weights ({', '.join(changed)}); largest output change {gap:.1g}")
    print(f"wrote {save_bundle(model, bundle.card, Path(args.out))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
