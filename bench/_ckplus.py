"""What the CK+ AU bench scripts share: subject folds, their summary, a bundle's layer outputs.

Written here rather than in the package: only the bench scripts cross-validate or probe
layers, and the deal itself is scikit-learn's ``GroupKFold`` plus the project's
``split_by_recording``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def subject_folds(records: Sequence, folds: int, seed: int) -> Iterator[dict[str, list[int]]]:
    """For each of ``folds`` folds, the indices of ``records`` in ``fit``, ``val`` and ``test``.

    The records' groups (``split_key``: the subject, when read with ``group_by="subject"``)
    are dealt into folds by scikit-learn's ``GroupKFold``; a fold's subjects are its
    ``test``; the other subjects are cut once more by subject (20% ``val``, the project's
    ``split_by_recording`` with seed ``seed + fold``) and the rest is ``fit``. Every record
    is a test record exactly once, and no subject is on two sides of a fold.
    """
    from sklearn.model_selection import GroupKFold

    from liveaffect.data.splits import split_by_recording

    groups = [r.split_key for r in records]
    index = {id(r): i for i, r in enumerate(records)}
    deal = GroupKFold(n_splits=folds).split(list(range(len(records))), groups=groups)
    for fold, (rest_i, test_i) in enumerate(deal):
        rest = [records[i] for i in rest_i]
        fit, val = split_by_recording(rest, 0.2, seed + fold)
        yield {
            "fit": [index[id(r)] for r in fit],
            "val": [index[id(r)] for r in val],
            "test": [int(i) for i in test_i],
        }


def cv_summary(rows: list[dict], pooled_true: list, pooled_pred: list) -> dict:
    """The folds' ``rows`` (each with ``test_mean_f1``) with their mean and sd, and every
    AU's F1 over all folds' pooled test labels and thresholded predictions (scikit-learn's
    ``f1_score``)."""
    import numpy as np
    from sklearn.metrics import f1_score

    from liveaffect.labels import AUS

    f1 = f1_score(
        np.concatenate(pooled_true), np.concatenate(pooled_pred), average=None, zero_division=0
    )
    means = [r["test_mean_f1"] for r in rows]
    return {
        "folds": rows,
        "fold_mean_f1": float(np.mean(means)),
        "fold_sd_f1": float(np.std(means)),
        "pooled_mean_f1": float(np.mean(f1)),
        "pooled_per_au_f1": {a: float(v) for a, v in zip(AUS, f1, strict=True)},
    }


def print_cv_summary(result: dict) -> None:
    """Print :func:`cv_summary`'s result: the folds' mean and sd, the pooled mean, per AU."""
    print(
        f"{len(result['folds'])} folds: mean of the folds' test F1 {result['fold_mean_f1']:.3f} "
        f"(sd {result['fold_sd_f1']:.3f}); pooled over all test faces "
        f"{result['pooled_mean_f1']:.3f}"
    )
    print("  " + ", ".join(f"{a} {v:.2f}" for a, v in result["pooled_per_au_f1"].items()))


def write_cv_result(path: str, protocol: dict, result: dict) -> None:
    """Write :func:`cv_summary`'s ``result`` as JSON (``_results.write_result``) with its
    ``protocol``: the folds, how validation was cut and thresholds tuned, and ``protocol``'s
    own entries."""
    from _results import write_result

    from liveaffect.labels import AUS

    common = {
        "folds": len(result["folds"]),
        "inner_validation": "20% of the other subjects, seed + fold",
        "thresholds": "tuned on each fold's validation subjects",
    }
    write_result(path, {"protocol": {**common, **protocol}, "aus": list(AUS), **result})


def layer_outputs(bundle, records: Sequence, layers: str):
    """The outputs of ``layers`` (comma-separated, side by side) of a loaded ``bundle`` for
    each record's face, each averaged over the card's test-time views; a spatial map is
    flattened."""
    import keras
    import numpy as np

    from liveaffect.evaluation.predict import read_image
    from liveaffect.preprocess import prepare_face
    from liveaffect.tta import card_tta

    names = layers.split(",")
    probe = keras.Model(bundle.model.inputs, [bundle.model.get_layer(n).output for n in names])
    tta = card_tta(bundle.card)
    faces = np.stack([prepare_face(read_image(r.path), bundle.card.preprocess) for r in records])
    views = tta.views(faces.astype(np.float32))
    outputs = probe.predict(views, batch_size=256, verbose=0)
    outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
    merged = [tta.merge(np.asarray(o), len(faces)) for o in outputs]
    return np.concatenate([m.reshape(len(faces), -1) for m in merged], axis=1)
