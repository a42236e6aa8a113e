"""Widen a bundle's ``cnn`` backbone without changing what it computes (a capacity test).

    mkdir -p runs/stage1 && git archive c82e929 final_model | tar -x -C runs/stage1
    python bench/widen_backbone.py --bundle runs/stage1/final_model \
        --widths 16,64,128,384 --out runs/stage1_w384
    # then train stage 2 from it: configs/default_model.yaml with model.widths
    # [16, 64, 128, 384] and train.init_from: runs/stage1_w384

Is the default model short of capacity, or of information (48x48 grey faces)? Training a
wider network from scratch costs hours on this CPU; this starts one from a trained bundle
instead, and writes it as a bundle of its own. How the widening works and why it keeps the
outputs: :mod:`liveaffect.model.widen` (``train.init_from`` does the same in the trainer when
it names a narrower cnn bundle, with ``train.seed`` as the seed).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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

    from liveaffect.bundle import BundleError, load_bundle, save_bundle
    from liveaffect.model.widen import WidenError, widen
    from liveaffect.training.config import config_from_dict

    try:
        bundle = load_bundle(args.bundle)
    except BundleError as exc:
        p.error(str(exc))
    config = bundle.card.training.get("config")
    if not config:
        p.error(f"{args.bundle}: its card has no training config to rebuild the model from")
    model_cfg = config_from_dict(config).model
    try:
        model, changed, gap = widen(bundle.model, model_cfg, widths, seed=args.seed)
    except WidenError as exc:
        p.error(f"cannot widen {args.bundle}: {exc}")
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
