"""The default recipe's AU F1 over every CK+ subject: stage 2 trained once per subject fold.

    python bench/au_recipe_cv.py prepare --folds 4 --out runs/cv4 \
        --init-from runs/fastB/stage1b/bundle
    for k in 0 1 2 3; do
        python -m liveaffect train --config runs/cv4/fold$k/config.yaml \
            --out runs/cv4/fold$k/run --quiet
    done
    python bench/au_recipe_cv.py score --out runs/cv4 \
        --json bench/results/au_recipe_cv4.json

The model card's AU number comes from 12 test subjects, so its interval is wide. This
script measures the recipe itself over all 78 CK+ subjects: the subjects are dealt into
folds exactly as ``au_hog_baseline.py --folds K`` deals them (``_ckplus.subject_folds``:
scikit-learn's ``GroupKFold``, then 20% of the other subjects for validation), and for each
fold the recipe's stage 2 (``--config``, default ``configs/fast_stage2.yaml``) is trained
from the same stage 1 bundle (``--init-from``) with that fold's CK+ subjects in place of
the card's split; everything else in the config (FER2013, DiffusionFER, schedule,
degradations, CK+ oversampling) stays as it is.

``prepare`` writes, per fold, ``foldK/ckplus.csv`` (the ckplus_au rows, absolute image
paths, a ``split`` column: ``train`` / ``validation`` / ``test``) and ``foldK/config.yaml``
(the stage 2 config reading that manifest's ``train`` rows for training and its
``validation`` rows for validation). ``score`` reads each fold's trained bundle
(``foldK/run/bundle``), averages the AU head over the card's test-time views, tunes the
per-AU thresholds on the fold's validation subjects with the project's tuner
(``evaluation.metrics.tune_au_thresholds``), and scores the fold's test subjects: each
fold's mean F1 (``evaluation.metrics.au_metrics``) and, over all subjects' pooled
predictions, every AU's F1 (scikit-learn's ``f1_score``).

Two variants, each measured the same way (bench/README.md, "What the expression explains"):

- ``score --expression-prior`` mixes the AU head with an expression prior: the expression
  head's probabilities times each expression's AU rates among the fold's CK+ training
  subjects (``liveaffect.data.weak_au.expression_au_rates``), ``w * head + (1 - w) *
  prior``, the head's weight ``w`` chosen on the fold's validation subjects. No training;
  it asks how much reading the AUs off the recognised expression adds.
  ``--true-expression`` makes it an oracle: the prior of each face's labelled expression,
  as if the expression head were never wrong.
- ``prepare --weak-au-share S`` sets ``weak_au: S`` on the config's FER2013 train source
  (``liveaffect.data.weak_au``): a share ``S`` of its faces get weak AU labels from their
  expression (1 where that expression's rate among the fold's CK+ training subjects is at
  least ``--weak-high``, 0 where at most ``--weak-low``, unknown between; Neutral: no AU),
  so the AU head also learns from 28,709 varied faces, not only from 45-49 subjects' posed
  ones.
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _ckplus import cv_summary, layer_outputs, print_cv_summary, subject_folds, write_cv_result

CKPLUS = "../shared/data/ckplus_au/labels.csv"
FER_TRAIN = "../shared/data/fer2013/train"
SPLITS = {"fit": "train", "val": "validation", "test": "test"}


def _is_source(entry: dict, data: str) -> bool:
    return os.path.realpath(entry.get("path", "")) == os.path.realpath(data)


def fold_config(config: dict, manifest: str, data: str, init_from: str | None) -> dict:
    """``config`` with its CK+ sources reading ``manifest``'s ``train`` / ``validation`` rows.

    Raises:
        ValueError: the config trains or validates on no CK+ source (``data``).
    """
    out = copy.deepcopy(config)
    for side, split in (("train", "train"), ("validation", "validation")):
        entries = out["data"].get(side) or []
        hits = [i for i, e in enumerate(entries) if _is_source(e, data)]
        if not hits:
            raise ValueError(f"the config's data.{side} has no {data} source to replace")
        for i in hits:
            kept = {k: v for k, v in entries[i].items() if k == "repeat"}
            entries[i] = {"path": manifest, "split": split, **kept}
    if init_from:
        out["train"]["init_from"] = init_from
    return out


def write_manifest(path: Path, records, parts: dict[str, list[int]], source: str) -> None:
    """The fold's ckplus_au rows, image paths made absolute, with a ``split`` column."""
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))
    base = os.path.dirname(os.path.abspath(source))
    by_path = {os.path.abspath(os.path.join(base, r["path"])): r for r in rows}
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*rows[0].keys(), "split"])
        writer.writeheader()
        for part, indices in parts.items():
            for i in indices:
                row = dict(by_path[os.path.abspath(records[i].path)])
                row["path"] = os.path.abspath(records[i].path)
                row["split"] = SPLITS[part]
                writer.writerow(row)


def prepare(args) -> int:
    import yaml

    from liveaffect.data.loaders import load_records

    records = load_records(args.data, group_by="subject")
    with open(args.config) as f:
        config = yaml.safe_load(f)
    out = Path(args.out)
    for fold, parts in enumerate(subject_folds(records, args.folds, args.seed)):
        folder = out / f"fold{fold}"
        folder.mkdir(parents=True, exist_ok=True)
        manifest = folder / "ckplus.csv"
        write_manifest(manifest, records, parts, args.data)
        try:
            cfg = fold_config(config, str(manifest.resolve()), args.data, args.init_from)
        except ValueError as e:
            print(f"error: {args.config}: {e}", file=sys.stderr)
            return 2
        cfg["name"] = f"{cfg.get('name', 'model')}-cv{args.folds}-fold{fold}"
        if args.weak_au_share > 0:
            fer = [e for e in cfg["data"]["train"] if _is_source(e, args.fer)]
            if not fer:
                print(f"error: {args.config} trains on no {args.fer} source", file=sys.stderr)
                return 2
            fer[0].update(weak_au=args.weak_au_share, seed=args.seed)
            cfg["data"].update(weak_au_high=args.weak_high, weak_au_low=args.weak_low)
        with open(folder / "config.yaml", "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        subjects = {SPLITS[k]: len({records[i].split_key for i in v}) for k, v in parts.items()}
        print(f"fold {fold}: {folder}/config.yaml, subjects {subjects}")
    return 0


def _au_probs(bundle_dir: str, records):
    """The AU head's probabilities for each record's face, averaged over the card's views."""
    return _outputs(bundle_dir, records, "au")


def _head_and_prior(bundle_dir: str, records, rates):
    """The AU head's probabilities and the expression prior for each record's face: the
    expression head's probabilities times ``rates`` (an (8, 12) array of AU rates per
    expression), i.e. each AU's rate under the predicted expression; both averaged over the
    card's views."""
    out = _outputs(bundle_dir, records, "au,expr")
    return out[:, : rates.shape[1]], out[:, rates.shape[1] :] @ rates


def _outputs(bundle_dir: str, records, layers: str):
    from liveaffect.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    if not bundle.card.trained("au"):
        raise SystemExit(f"error: {bundle_dir}: its AU head is not trained")
    return layer_outputs(bundle, records, layers)


def mix_weight(head, prior, labels, weights):
    """The weight ``w`` in ``w * head + (1 - w) * prior`` with the best mean F1 on these
    (validation) faces, each weight with its own tuned thresholds; ties go to the larger
    ``w`` (the head alone is 1)."""
    from liveaffect.evaluation.metrics import au_metrics, tune_au_thresholds

    best, best_f1 = 1.0, -1.0
    for w in sorted(weights, reverse=True):
        mixed = w * head + (1 - w) * prior
        f1 = au_metrics(labels, mixed, tune_au_thresholds(mixed, labels)).mean_f1
        if f1 > best_f1 + 1e-9:
            best, best_f1 = w, f1
    return best


def score(args) -> int:
    import numpy as np

    from liveaffect.data.loaders import load_records
    from liveaffect.evaluation.metrics import au_metrics, tune_au_thresholds

    out = Path(args.out)
    folders = sorted(out.glob("fold*"), key=lambda p: int(p.name[4:]))
    if not folders:
        print(f"error: no fold folders in {out}; run prepare first", file=sys.stderr)
        return 2
    rows, pooled_true, pooled_pred = [], [], []
    for folder in folders:
        bundle = folder / "run" / "bundle"
        if not (bundle / "card.json").exists():
            print(f"error: {bundle} has no trained bundle; train the fold first", file=sys.stderr)
            return 2
        manifest = str(folder / "ckplus.csv")
        val = load_records(manifest, split="validation", group_by="subject")
        test = load_records(manifest, split="test", group_by="subject")
        val_y = np.stack([r.au for r in val]).astype(np.float32)
        test_y = np.stack([r.au for r in test]).astype(np.float32)
        weight = 1.0
        if args.expression_prior:
            from liveaffect.data.weak_au import expression_au_rates

            fit = load_records(manifest, split="train", group_by="subject")
            rates = expression_au_rates(fit)
            probs, prior = _head_and_prior(str(bundle), val + test, rates)
            if args.true_expression:  # an oracle: the prior of each face's labelled expression
                prior = rates[[r.expr for r in val + test]]
            weight = mix_weight(probs[: len(val)], prior[: len(val)], val_y, args.weights)
            probs = weight * probs + (1 - weight) * prior
        else:
            probs = _au_probs(str(bundle), val + test)
        val_p, test_p = probs[: len(val)], probs[len(val) :]
        thresholds = np.asarray(tune_au_thresholds(val_p, val_y), dtype=np.float32)
        val_f1 = au_metrics(val_y, val_p, thresholds).mean_f1
        test_f1 = au_metrics(test_y, test_p, thresholds).mean_f1
        pooled_true.append(test_y.astype(int))
        pooled_pred.append((test_p >= thresholds).astype(int))
        subjects = {k: len({r.split_key for r in v}) for k, v in (("val", val), ("test", test))}
        rows.append(
            {
                "fold": int(folder.name[4:]),
                "subjects": subjects,
                "test_faces": len(test),
                "validation_faces": len(val),
                "thresholds": [float(t) for t in thresholds],
                "head_weight": weight,
                "val_mean_f1": float(val_f1),
                "test_mean_f1": float(test_f1),
            }
        )
        print(
            f"{folder.name}: validation {val_f1:.3f} ({subjects['val']} subjects), "
            f"test {test_f1:.3f} ({subjects['test']} subjects, {len(test)} faces)"
            + (f", head weight {weight}" if args.expression_prior else "")
        )
    result = cv_summary(rows, pooled_true, pooled_pred)
    print_cv_summary(result)
    if args.json:
        probabilities = "the AU head"
        if args.expression_prior:
            prior = "the labelled expression's" if args.true_expression else "expression head @ the"
            probabilities = (
                f"w * AU head + (1 - w) * {prior} AU rates among the fold's training subjects, "
                "w chosen on the validation subjects"
            )
        write_cv_result(args.json, {"folders": str(out), "au_probabilities": probabilities}, result)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    pp = sub.add_parser("prepare", help="write each fold's CK+ manifest and stage 2 config")
    pp.add_argument("--data", default=CKPLUS, help="the ckplus_au manifest (labels.csv)")
    pp.add_argument("--config", default="configs/fast_stage2.yaml", help="the stage 2 config")
    pp.add_argument("--folds", type=int, default=4, help="number of subject folds (>= 2)")
    pp.add_argument("--seed", type=int, default=35, help="seed of the inner validation cut")
    pp.add_argument("--init-from", help="stage 1 bundle to start from (default: the config's)")
    pp.add_argument("--out", required=True, help="folder for fold0/, fold1/, ...")
    pp.add_argument(
        "--weak-au-share",
        type=float,
        default=0.0,
        help="give this share of FER2013 train faces weak AU labels from their expression "
        "(each expression's AU rates among the fold's CK+ training subjects; "
        "default 0: the recipe as it is)",
    )
    pp.add_argument("--weak-high", type=float, default=0.75, help="rate -> weak label 1")
    pp.add_argument("--weak-low", type=float, default=0.10, help="rate -> weak label 0")
    pp.add_argument("--fer", default=FER_TRAIN, help="the FER2013 train folder in the config")
    ps = sub.add_parser("score", help="tune thresholds and score each fold's trained bundle")
    ps.add_argument("--out", required=True, help="the folder prepare wrote (and runs trained)")
    ps.add_argument("--json", help="write the results here")
    ps.add_argument(
        "--expression-prior",
        action="store_true",
        help="mix the AU head with an expression prior: the expression head's probabilities "
        "times each expression's AU rates among the fold's CK+ training subjects; the head's "
        "weight (--weights) is chosen on the fold's validation subjects",
    )
    ps.add_argument(
        "--true-expression",
        action="store_true",
        help="with --expression-prior, an oracle: the prior of each face's labelled expression "
        "(not the expression head's), the ceiling of reading AUs off the expression",
    )
    ps.add_argument(
        "--weights",
        type=lambda t: [float(x) for x in t.split(",")],
        default=[0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0],
        help="the head weights tried with --expression-prior (default 0,0.2,0.4,0.5,0.6,0.8,1)",
    )
    args = p.parse_args(argv)
    if args.step == "score" and args.true_expression and not args.expression_prior:
        p.error("--true-expression needs --expression-prior")
    if args.step == "prepare":
        if args.folds < 2:
            p.error("--folds must be at least 2")
        return prepare(args)
    return score(args)


if __name__ == "__main__":
    sys.exit(main())
