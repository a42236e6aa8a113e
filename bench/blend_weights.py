"""Blend two bundles of one architecture in weight space (WiSE-FT), for the model card's test.

    mkdir -p runs/stage1 && git archive c82e929 final_model | tar -x -C runs/stage1
    python bench/blend_weights.py --start runs/stage1/final_model --end final_model \
        --alpha 0.5,0.7,0.85 --out runs/blend
    python -m liveaffect evaluate --model runs/blend/blend_0.70 \
        --data ../shared/data/fer2013/test --degrade all --engine tflite

Fine-tuning a model (``--end``) from another (``--start``) and then averaging the two
weight by weight, ``(1 - alpha) * start + alpha * end``, often scores better than either
on clean and on shifted data (Wortsman et al., "Robust fine-tuning of zero-shot models",
CVPR 2022). Every variable is blended (batch-norm statistics too), except those of the
``--keep`` layers, which are taken from ``--end`` as they are: a head that ``--start``
never trained (the default model's AU branch) would only be diluted with random weights.
Each blend is written as a bundle ``OUT/blend_<alpha>`` with ``--end``'s card (its
thresholds and views) and a note saying what it is; its metrics are ``--end``'s until
``evaluate --save-to-card`` measures it. No library blends two Keras models (keras has no
such call), hence these few lines.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def blend(start, end, alpha: float, keep: set[str]) -> list:
    """The weights of Keras model ``end`` moved towards ``start``'s:
    ``(1 - alpha) * start + alpha * end`` for every variable outside ``end``'s ``keep``
    layers (those are ``end``'s). Variables pair up in order and must have the same
    shapes (names may differ: Keras numbers the layers of each model it builds)."""
    shapes = [tuple(w.shape) for w in end.weights]
    if [tuple(w.shape) for w in start.weights] != shapes:
        raise ValueError("the two models do not have the same variables (count and shapes)")
    paths = [w.path for w in end.weights]
    return [
        e if p.split("/")[0] in keep else (1.0 - alpha) * s + alpha * e
        for p, s, e in zip(paths, start.get_weights(), end.get_weights(), strict=True)
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--start", required=True, help="the bundle fine-tuning started from")
    p.add_argument("--end", required=True, help="the fine-tuned bundle (its card is kept)")
    p.add_argument("--alpha", default="0.5", help="comma-separated weights of --end, in [0, 1]")
    p.add_argument(
        "--keep", default="au_hidden,au", help="comma-separated layers taken from --end as they are"
    )
    p.add_argument("--out", required=True, help="folder for the blended bundles")
    args = p.parse_args()
    alphas = [float(a) for a in args.alpha.split(",") if a.strip()]
    if not alphas or not all(0.0 <= a <= 1.0 for a in alphas):
        p.error(f"--alpha: values in [0, 1], got {args.alpha!r}")
    keep = {name.strip() for name in args.keep.split(",") if name.strip()}

    from liveaffect.bundle import load_bundle, save_bundle

    start, end = load_bundle(args.start), load_bundle(args.end)
    missing = keep - {layer.name for layer in end.model.layers}
    if missing:
        p.error(f"--keep: no layer named {', '.join(sorted(missing))} in {args.end}")
    try:
        blends = {a: blend(start.model, end.model, a, keep) for a in alphas}
    except ValueError as exc:
        p.error(f"{args.start} and {args.end}: {exc}")
    notes = end.card.notes
    for alpha, weights in blends.items():
        end.model.set_weights(weights)
        end.card.notes = (
            f"weights blended: {1 - alpha:.2f} x {args.start} + {alpha:.2f} x {args.end} "
            f"(layers {', '.join(sorted(keep))} from {args.end}); the metrics are "
            f"{args.end}'s until re-measured. {notes}"
        ).strip()
        print(f"wrote {save_bundle(end.model, end.card, Path(args.out) / f'blend_{alpha:.2f}')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
