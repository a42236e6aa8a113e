"""Average trained bundles' outputs in one bundle (an ensemble), for the model card's tests.

    python bench/average_bundles.py --members final_model,runs/pfn_d07/bundle \
        --out runs/ensemble
    python -m liveaffect evaluate --model runs/ensemble \
        --data ../shared/data/fer2013/test --degrade all

The bundle holds one functional Keras model whose ``expr``, ``va`` and ``au`` outputs are
the means of the members' (``liveaffect.training.ensemble.average_models``, what
``train --members`` writes), so ``evaluate``, the app and the TFLite export take it like
any other bundle; it costs the members' inference added up. The members must take the
same faces (input size, colour, crop margin). The card is the first member's (its views
and AU thresholds; tune the thresholds again with ``evaluate --tune-au-thresholds
--save-to-card``), with a note naming the members; its metrics are the first member's
until ``evaluate --save-to-card`` measures the ensemble.
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
    p.add_argument("--members", required=True, help="comma-separated bundles (two or more)")
    p.add_argument("--out", required=True, help="folder for the averaged bundle")
    args = p.parse_args()
    paths = [m.strip() for m in args.members.split(",") if m.strip()]
    if len(paths) < 2:
        p.error("--members: at least two bundles, comma-separated")

    from liveaffect.bundle import BundleError, load_bundle, save_bundle
    from liveaffect.training.ensemble import average_models
    from liveaffect.training.inputs import TrainingError

    try:
        members = [load_bundle(path) for path in paths]
    except BundleError as exc:
        p.error(str(exc))
    first = members[0].card.preprocess
    for path, member in zip(paths[1:], members[1:], strict=True):
        spec = member.card.preprocess
        if (tuple(spec.input_shape), spec.color, spec.crop_margin) != (
            tuple(first.input_shape),
            first.color,
            first.crop_margin,
        ):
            p.error(f"{path} takes other faces than {paths[0]} ({spec} against {first})")
    try:
        model = average_models([m.model for m in members])
    except TrainingError as exc:
        p.error(str(exc))
    card = members[0].card
    card.notes = (
        f"mean of the outputs of {', '.join(paths)} (bench/average_bundles.py); the metrics "
        f"are {paths[0]}'s until re-measured. {card.notes}"
    ).strip()
    print(f"wrote {save_bundle(model, card, Path(args.out))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
