"""How far knowing the expression goes on CK+ AUs: an oracle that reads AUs off the true label.

    python bench/au_expression_oracle.py --folds 4 \
        --json bench/results/au_expression_oracle_cv4.json

CK+ faces are posed: each sequence acts one expression, and its FACS code follows from it
(surprise is AU1 + AU2 + AU25 in 96-98% of the faces, happiness AU6 + AU12 + AU25, sadness
AU1 + AU4 + AU15). So a model can score well on the frequent AUs by recognising the
expression alone. This script measures the ceiling of that route: each face's AU
probabilities are its **true** expression's AU rates among the fold's training subjects
(what ``P(AU | expression)`` is on other people), the per-AU thresholds are tuned on the
fold's validation subjects with the project's tuner, and the fold's test subjects are
scored, with the same deal of subjects into folds as ``au_hog_baseline.py --folds K`` and
``au_recipe_cv.py`` (``_ckplus.subject_folds``). No image is read.

No model knows the true expression, so a model that only recognises expressions scores
below this; a model that scores above it must see AUs in the face that its expression does
not imply (AU10 and AU26 above all: no expression has either in more than 17% of its faces).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _ckplus import cv_summary, print_cv_summary, subject_folds, write_cv_result

CKPLUS = "../shared/data/ckplus_au/labels.csv"


def oracle_probs(records, indices, rates):
    """Each face's AU probabilities: its true expression's row of ``rates``."""
    return rates[[records[i].expr for i in indices]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=CKPLUS, help="the ckplus_au manifest (labels.csv)")
    p.add_argument("--folds", type=int, default=4, help="number of subject folds (>= 2)")
    p.add_argument("--seed", type=int, default=35, help="seed of the inner validation cut")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.folds < 2:
        p.error("--folds must be at least 2")

    import numpy as np

    from liveaffect.data.loaders import load_records
    from liveaffect.data.weak_au import expression_au_rates
    from liveaffect.evaluation.metrics import au_metrics, tune_au_thresholds

    records = load_records(args.data, group_by="subject")
    if any(r.au is None or -1 in r.au or r.expr < 0 for r in records):
        print(f"error: {args.data}: every face needs its expression and 12 AUs", file=sys.stderr)
        return 2
    labels = np.asarray([r.au for r in records], dtype=np.float64)
    rows, pooled_true, pooled_pred = [], [], []
    for fold, parts in enumerate(subject_folds(records, args.folds, args.seed)):
        fit, val, test = (np.asarray(parts[k]) for k in ("fit", "val", "test"))
        rates = expression_au_rates([records[i] for i in fit])
        val_p, test_p = oracle_probs(records, val, rates), oracle_probs(records, test, rates)
        thresholds = tune_au_thresholds(val_p, labels[val])
        val_f1 = au_metrics(labels[val], val_p, thresholds)
        test_f1 = au_metrics(labels[test], test_p, thresholds).mean_f1
        pooled_true.append(labels[test].astype(int))
        pooled_pred.append((test_p >= thresholds).astype(int))
        rows.append(
            {
                "fold": fold,
                "test_faces": len(test),
                "thresholds": [float(t) for t in thresholds],
                "val_mean_f1": float(val_f1.mean_f1),
                "test_mean_f1": float(test_f1),
            }
        )
        print(f"fold {fold}: validation {val_f1.mean_f1:.3f}, test {test_f1:.3f}")
    result = cv_summary(rows, pooled_true, pooled_pred)
    print_cv_summary(result)
    if args.json:
        probabilities = "the true expression's AU rates among the fit subjects"
        write_cv_result(args.json, {"probabilities": probabilities}, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
