"""Evaluate a model bundle on labelled data with the ABAW metrics; write JSON and a report.

Example::

    python -m liveaffect evaluate --model final_model --data /data/affwild2 \\
        --split validation --json eval.json --report eval.md
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from liveaffect.bundle import WEAK_AU_F1, model_files
from liveaffect.commands.outputs import check_not_an_input, check_output_file
from liveaffect.data.degrade import DESCRIPTIONS, KINDS
from liveaffect.errors import CliError, OptionError
from liveaffect.evaluation.robustness import with_copies
from liveaffect.evaluation.uncertainty import DEFAULT_RESAMPLES
from liveaffect.hardware import prefer_onednn
from liveaffect.tta import TTA, card_tta, parse_scales

SPLITS = ("auto", "train", "validation", "test", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``evaluate`` options."""
    parser.add_argument("--model", required=True, help="bundle folder or .keras file")
    parser.add_argument(
        "--data",
        required=True,
        action="append",
        metavar="ROOT",
        help="dataset root, optionally kind-prefixed (folders:/x, csv:/x.csv); repeatable",
    )
    parser.add_argument(
        "--split",
        default="auto",
        choices=SPLITS,
        help="split to evaluate: 'auto' = each source's validation split when it has one, "
        "else all of it; 'all' = every image",
    )
    parser.add_argument(
        "--holdout",
        metavar="FRACTION[:SEED[:PART]]",
        help="evaluate only the part a training config held out with 'holdout: FRACTION' "
        "(split by recording/image, or by --group-by, with SEED, default 0), e.g. 0.2:0; "
        "PART (default holdout) picks 'rest', 'holdout', or one half of the held-out groups: "
        "'holdout_val' / 'holdout_test', e.g. 0.3:35:holdout_test",
    )
    parser.add_argument(
        "--group-by",
        metavar="COLUMN",
        help="CSV manifests: keep the rows of one value of this column on one side of "
        "--holdout (e.g. subject), as a training config's 'group_by' does",
    )
    parser.add_argument(
        "--detect",
        action="store_true",
        help="run the BlazeFace detector on full images and crop the best face; the "
        "detection rate is printed and stored, and images without a face are handled as "
        "--no-face says",
    )
    parser.add_argument(
        "--no-face",
        default=None,
        choices=("error", "whole", "skip"),
        help="with --detect, an image without a detected face: 'error' counts it as wrong "
        "in every metric (default: a detector that misses hard faces cannot flatter the "
        "numbers), 'whole' scores the whole image as the face, 'skip' leaves it out",
    )
    _add_view_and_output_arguments(parser)


def _add_view_and_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tta-flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each image with its mirror (default: what the card's 'tta' says, "
        "else its training.tta_flip, else off)",
    )
    parser.add_argument(
        "--tta-scales",
        metavar="S1,S2,...",
        help="also average zoomed views of each face about its centre, e.g. 1,0.9 "
        "(0.9 = face 10%% smaller, border reflected; default: the card's 'tta' scales, else 1); "
        "'--tta-scales 1 --no-tta-flip' scores each face once",
    )
    parser.add_argument(
        "--degrade",
        metavar="KIND[,KIND...]",
        help="also score degraded copies of every image, made the way video degrades faces: "
        + "; ".join(f"'{k}' = {DESCRIPTIONS[k]}" for k in KINDS)
        + "; 'all' = each of them. Each copy gets its accuracy drop from the clean images "
        "and the predicted share of each class against its true share (JSON 'robustness', "
        "report section and _shares.png)",
    )
    parser.add_argument(
        "--engine",
        default="keras",
        metavar="NAME",
        help="engine that scores the faces: keras (default, float32), tflite (the same numbers "
        "to about 1e-6), tflite-fp16 or tflite-int8 (int8 weights: measure what the app shows "
        "when it runs with --engine tflite-int8), or auto (as the app picks it)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="images per model call")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_RESAMPLES,
        metavar="N",
        help="95%% confidence intervals of accuracy, macro-F1, VA CCC and (per-)AU F1 on the "
        "clean images from N bootstrap resamples (seed 0) of whole groups: the --group-by "
        "column's values (e.g. subjects), else recordings (a still image is its own); "
        f"0 = none (default {DEFAULT_RESAMPLES}). JSON 'intervals', report, card summary",
    )
    parser.add_argument(
        "--baseline",
        metavar="MODEL",
        help="also score this bundle on the same images (and the same degraded copies), "
        "each model with its own card's views and AU thresholds, and report model minus "
        "baseline for every headline metric (and each copy's accuracy and drop) with a "
        "paired bootstrap interval (--bootstrap resamples; the same groups drawn for both) "
        "and a verdict: better / worse where the interval excludes 0, else no clear "
        "difference. JSON 'comparison', report section; not stored in the card",
    )
    parser.add_argument(
        "--tune-au-thresholds",
        action="store_true",
        help="tune per-AU thresholds on this data and save them into the bundle's card.json",
    )
    parser.add_argument(
        "--save-to-card", action="store_true", help="store the metrics in the bundle's card"
    )
    parser.add_argument(
        "--save-au-f1",
        action="store_true",
        help="store this run's per-AU F1 in the bundle's card as how well each AU is found "
        f"(card.json 'au_f1'); the live view marks AUs under {WEAK_AU_F1:g} with '?'. Run it "
        "on people the model never trained on, with the card's thresholds (refused with "
        "--tune-au-thresholds, whose F1 is optimistic)",
    )
    parser.add_argument("--json", type=Path, help="write all metrics as JSON here")
    parser.add_argument("--report", type=Path, help="write a Markdown report (and plots) here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _tta(bundle: Any, args: argparse.Namespace) -> TTA:
    """The card's test-time views, overridden by ``--tta-flip`` / ``--tta-scales``."""
    base = card_tta(bundle.card)
    flip = base.flip if args.tta_flip is None else bool(args.tta_flip)
    try:
        scales = base.scales if args.tta_scales is None else parse_scales(args.tta_scales)
        return TTA(flip=flip, scales=scales)
    except ValueError as exc:
        raise CliError(f"--tta-scales: {exc}") from exc


def _engine_name(text: str) -> str:
    """``--engine`` checked against the engines there are (before any data is read)."""
    from liveaffect.engines import EngineOptions

    try:
        return EngineOptions(text).name
    except OptionError as exc:
        raise CliError(exc.for_flag("--engine")) from None


def _check_model(path: str | None) -> None:
    """A model path that names no model (None: none given) stops here, as loading it would
    (:func:`_load_bundle`'s message), without TensorFlow."""
    from liveaffect.bundle import BundleError, resolve_model_path

    if path is None:
        return
    try:
        resolve_model_path(path)
    except BundleError as exc:
        raise CliError(str(exc)) from None


def _load_bundle(path: str) -> Any:
    """The bundle with its Keras model; TensorFlow's start-up lines (CUDA probes that read
    as errors on a CPU-only machine) hidden as ``live`` hides them."""
    from liveaffect.bundle import BundleError, load_bundle
    from liveaffect.runtime.quiet import quiet_native_stderr

    try:
        with quiet_native_stderr():
            return load_bundle(path)
    except BundleError as exc:
        raise CliError(str(exc)) from exc


def _check_label_space(bundle: Any) -> None:
    """A card whose classes or AUs are not the labels' (in their order) stops here,
    before anything is scored."""
    from liveaffect.evaluation.predict import LabelSpaceError, check_label_space

    try:
        check_label_space(bundle)
    except LabelSpaceError as exc:
        raise CliError(str(exc)) from None


def _load_records(
    specs: list[str], split: str | None, group_by: str | None = None
) -> tuple[list, list[str]]:
    """The records to score, and notes for the result: with ``split="auto"``, one per
    source without a validation split whose whole (then scored) holds training images."""
    from liveaffect.data.io import DatasetError
    from liveaffect.data.loaders import load_records, parse_spec

    def read(spec: str, part: str | None) -> list:
        kind, root = parse_spec(spec)
        return load_records(root, part, kind, group_by=group_by)

    notes = []
    try:
        if split == "auto":
            records = []
            for spec in specs:
                try:
                    part = read(spec, "validation")
                except DatasetError:  # a source without splits: all of it
                    part = []
                if not part:
                    part = read(spec, None)
                    trained = sum(r.split == "train" for r in part)
                    if trained:
                        notes.append(
                            f"{spec} has no validation split, so --split auto scored all of "
                            f"it: {trained} of its {len(part)} images are its training set, "
                            "and a model trained on them scores high there."
                        )
                records.extend(part)
            split = None
        else:
            records = [r for spec in specs for r in read(spec, split)]
    except DatasetError as exc:
        raise CliError(str(exc)) from exc
    if not records:
        where = f"split {split!r} of " if split else ""
        raise CliError(f"no labelled images in {where}{', '.join(specs)} (try another --split)")
    return records, notes


def _holdout(records: list, spec: str) -> list:
    from liveaffect.data.splits import PARTS, holdout_part

    fraction, _, rest = spec.partition(":")
    seed, _, part = rest.partition(":")
    try:
        value, seed_value = float(fraction), int(seed or 0)
        return holdout_part(records, value, seed_value, part or "holdout")
    except ValueError as exc:
        raise CliError(
            f"--holdout {spec!r}: expected FRACTION[:SEED[:PART]] with 0 < FRACTION < 1 "
            f"and PART one of {', '.join(PARTS)}"
        ) from exc


def _degrade_kinds(spec: str | None) -> list[str]:
    if not spec:
        return []
    kinds = list(KINDS) if spec.strip() == "all" else [k.strip() for k in spec.split(",")]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise CliError(
            f"--degrade {spec!r}: unknown kind {', '.join(unknown)!r}; "
            f"use {', '.join(KINDS)} or all"
        )
    return list(dict.fromkeys(kinds))


def _detector() -> Any:
    try:
        from liveaffect.runtime.detectors import create_detector

        # still images: every tile of each one, nothing carried from one image to the next
        return create_detector("blazeface", small_faces="still")
    except (ImportError, OSError, RuntimeError, ValueError) as exc:
        raise CliError(f"cannot start the BlazeFace face detector ({exc})") from exc


def _card_file(bundle: Any) -> Path:
    from liveaffect.bundle import CARD_FILE, MODEL_FILE

    if bundle.path.is_dir():
        return bundle.path / CARD_FILE
    beside = bundle.path.parent / CARD_FILE
    if bundle.path.name == MODEL_FILE and beside.exists():  # load_bundle read this card
        return beside
    raise CliError(
        f"{bundle.path} is a plain .keras file; --tune-au-thresholds and --save-to-card "
        "need a bundle folder with a card.json"
    )


def _predict(args: argparse.Namespace, bundle, records, tta, detector, degrade=None):
    """Run the bundle over ``records`` with the command's batch size and progress setting."""
    from liveaffect.evaluation.predict import predict_records

    return predict_records(
        bundle,
        records,
        batch_size=args.batch_size,
        tta=tta,
        detector=detector,
        progress=not args.no_progress,
        degrade=degrade,
        no_face=args.no_face or "error",
        engine=args.engine,
    )


def _score_degraded(result, clean, bundle, records, tta, detector, thresholds, kind, args):
    """Score the ``kind`` copy of every image and add its entry to ``result.robustness``
    (with the drop's bootstrap interval, paired with the ``clean`` predictions)."""
    from liveaffect.evaluation.robustness import copy_entry

    if not args.no_progress:
        print(f"degraded copy '{kind}': {DESCRIPTIONS[kind]}")
    preds = _predict(args, bundle, records, tta, detector, degrade=kind)
    degraded = preds.evaluate(au_thresholds=thresholds)
    share = degraded.robustness.get("share", {"n": 0})
    entry = copy_entry(kind, DESCRIPTIONS[kind], result, degraded, share)
    entry["scored"] = len(preds.records)
    entry["accuracy_drop_interval"] = _drop_interval(args, clean, preds)
    if preds.detect:
        _note_copy_detection(result, entry, kind, clean, preds)
    result.robustness.setdefault("copies", {})[kind] = entry
    return preds


def _note_copy_detection(result, entry: dict, kind: str, clean, preds) -> None:
    """A degraded copy's detection rate in its entry, and a note when the detector found
    faces in other images than on the clean ones: the drop is then partly the detector's."""
    found, readable = preds.faces_found()
    entry["detection_rate"] = found / readable if readable else 0.0
    if _same_images(clean, preds):
        return
    clean_found, _ = clean.faces_found()
    result.notes.append(
        f"Degraded copy '{kind}': the detector found a face in {found} of {readable} images "
        f"(clean: {clean_found}); its accuracy drop is partly the detector's (--no-face "
        f"{preds.no_face}), and it has no paired interval: the two runs scored different "
        "faces. Without --detect every copy is scored on the same crops."
    )


def _same_images(a, b) -> bool:
    """Whether two prediction runs scored the same images in the same order."""
    paths = [r.path for r in a.records] == [r.path for r in b.records]
    return paths and a.group_keys() == b.group_keys()


def _unit(args: argparse.Namespace, keys: list[str]) -> str:
    """What one resampled group is: the --group-by column, else a recording, or an image
    when every recording is a single still image."""
    if args.group_by:
        return args.group_by
    return "image" if len(set(keys)) == len(keys) else "recording"


def _with_copies(clean, copies, thresholds):
    """The clean and degraded predictions' metrics as one resampling statistic."""
    by_kind = {k: c.statistic(thresholds) for k, c in copies.items()}
    return with_copies(clean.statistic(thresholds), by_kind)


def _compare(args: argparse.Namespace, baseline, records, detector, clean, copies, thresholds):
    """Score ``baseline`` on the same images and copies; the paired differences against
    the model's ``clean`` and ``copies`` predictions (scored with ``thresholds``)."""
    from liveaffect.evaluation.uncertainty import paired_differences

    tta = _tta(baseline, args)
    if not args.no_progress:
        print(f"baseline {args.baseline}: {tta.describe()}")
    base = _predict(args, baseline, records, tta, detector)
    if not _same_images(base, clean):
        raise CliError(
            f"the model and the baseline {args.baseline} scored different images "
            "(the face detector found faces in one run it missed in the other), so they "
            "cannot be compared image by image"
        )
    base_copies = {k: _predict(args, baseline, records, tta, detector, degrade=k) for k in copies}
    mine = _with_copies(clean, copies, thresholds)
    theirs = _with_copies(base, base_copies, list(baseline.card.au_thresholds))
    keys = clean.group_keys()
    out = paired_differences(keys, mine, theirs, args.bootstrap, unit=_unit(args, keys))
    return {"baseline": str(args.baseline), **out}


def _drop_interval(args: argparse.Namespace, clean, degraded) -> list[float | None] | None:
    """The accuracy drop's paired bootstrap interval; None without ``--bootstrap``, without
    expression predictions, or when the two runs scored different images (``--detect``)."""
    from liveaffect.evaluation.robustness import drop_interval

    missed = bool(clean.missed_records or degraded.missed_records)
    if args.bootstrap == 0 or clean.expr_probs is None or missed:
        return None
    if not _same_images(clean, degraded):
        return None
    labels = clean.labels()["expr"]
    keys = clean.group_keys()
    return drop_interval(keys, labels, clean.expr_probs, degraded.expr_probs, args.bootstrap)


def _summary_for_card(d: dict[str, Any]) -> dict[str, Any]:
    keys = {
        "expr": ("n", "macro_f1", "abaw_macro_f1", "accuracy"),
        "va": ("n", "ccc_valence", "ccc_arousal", "ccc_mean"),
        "au": ("n", "mean_f1", "abaw_mean_f1"),
    }
    out: dict[str, Any] = {t: {k: d[t][k] for k in ks} for t, ks in keys.items()}
    out.update(mtl_score=d["mtl_score"], mtl_partial=d["mtl_partial"])
    if d["au"]["n"]:
        out["au"]["per_au_f1"] = {name: v["f1"] for name, v in d["au"]["per_au"].items()}
        out["au"]["thresholds"] = d["au"]["thresholds"]
    if d["expr"]["n"]:
        out["expr"]["per_class_f1"] = {k: v["f1"] for k, v in d["expr"]["per_class"].items()}
    rob = d.get("robustness") or {}
    keep = ("max_ratio", "max_ratio_class", "unlabelled_share")
    if rob.get("clean", {}).get("n"):
        out["prediction_share"] = {k: rob["clean"][k] for k in keep}
    intervals = d.get("intervals") or {}
    if intervals.get("metrics"):
        out["intervals"] = {k: v for k, v in intervals.items() if k != "metrics"}
        out["intervals"]["metrics"] = {
            k: [v["low"], v["high"]] for k, v in intervals["metrics"].items()
        }
    for kind, e in (rob.get("copies") or {}).items():
        keys = ("expr_accuracy", "accuracy_drop", "accuracy_drop_interval", "expr_macro_f1")
        entry = {k: e.get(k) for k in keys}
        entry.update({k: e["prediction_share"].get(k) for k in keep})
        out.setdefault("degraded", {})[kind] = entry
    return out


def run(args: argparse.Namespace) -> int:
    """Run the evaluation; returns 0 (user errors raise CliError)."""
    prefer_onednn()  # before TensorFlow loads: faster Keras inference on AVX2-only CPUs
    if args.batch_size < 1:
        raise CliError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.bootstrap < 0:
        raise CliError(
            f"--bootstrap must be 0 (none) or a number of resamples, got {args.bootstrap}"
        )
    if args.baseline and args.bootstrap == 0:
        raise CliError("--baseline needs --bootstrap N with N > 0 for its intervals")
    if args.save_au_f1 and args.tune_au_thresholds:
        raise CliError(
            "--save-au-f1 stores how well each AU is found on new faces, and F1 on the faces "
            "the thresholds are tuned on is optimistic: tune first, then --save-au-f1 on "
            "other people"
        )
    if args.baseline and args.tune_au_thresholds:
        raise CliError(
            "--baseline compares the models as their cards stand; tune the AU thresholds "
            "first (--tune-au-thresholds on validation data), then compare"
        )
    if args.no_face is not None and not args.detect:
        raise CliError(
            "--no-face says what to do with images --detect finds no face in; "
            "without --detect every image is scored as a face"
        )
    args.engine = _engine_name(args.engine)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    split = None if args.split == "all" else args.split
    kinds = _degrade_kinds(args.degrade)
    data = [part for d in args.data for part in (d, d.partition(":")[2])]  # csv:/x.csv
    inputs = [*data, *model_files(args.model)]
    inputs += model_files(args.baseline) if args.baseline else []
    for path, flag in ((args.json, "--json"), (args.report, "--report")):
        check_output_file(path, flag)
        check_not_an_input(path, flag, inputs)
    for path in (args.model, args.baseline):  # before the data is read, which can take long
        _check_model(path)
    records, notes = _load_records(list(args.data), split, args.group_by)
    if args.holdout:  # the part a config held out: scoring it is the point
        records, notes = _holdout(records, args.holdout), []
    for flag, asked in (("--tune-au-thresholds", args.tune_au_thresholds),
                        ("--save-au-f1", args.save_au_f1)):  # fmt: skip
        if asked and not any(r.has_au for r in records):
            raise CliError(f"{flag} needs AU labels, and this data has none")
    bundle = _load_bundle(args.model)
    _check_label_space(bundle)
    saves = args.tune_au_thresholds or args.save_to_card or args.save_au_f1
    card_file = _card_file(bundle) if saves else None
    if (args.tune_au_thresholds or args.save_au_f1) and not bundle.card.trained("au"):
        flag = "--tune-au-thresholds" if args.tune_au_thresholds else "--save-au-f1"
        raise CliError(f"{flag} needs a model whose AU head is trained")
    tta = _tta(bundle, args)
    detector = _detector() if args.detect else None
    baseline = _load_bundle(args.baseline) if args.baseline else None
    if baseline is not None:
        _check_label_space(baseline)
    result, thresholds, clean = _evaluate(args, bundle, records, tta, detector)
    result.notes[:0] = notes
    copies = {}
    for kind in kinds:
        copies[kind] = _score_degraded(
            result, clean, bundle, records, tta, detector, thresholds, kind, args
        )
    if baseline is not None:
        result.comparison = _compare(args, baseline, records, detector, clean, copies, thresholds)
    result.meta.update(
        model=str(args.model),
        data=list(args.data),
        split=args.split,
        **({"group_by": args.group_by} if args.group_by else {}),
        **({"holdout": args.holdout} if args.holdout else {}),
        detect=bool(args.detect),
    )
    if card_file is not None:
        _update_card(args, bundle, card_file, result, thresholds, tta)
    _write_outputs(args, result)
    print(result)
    return 0


def _check_finite(preds) -> None:
    """A model whose outputs are NaN or infinite (a training run that diverged, a damaged
    file) must not be scored: an argmax over NaN reads as the first class."""
    import numpy as np

    for head, out in (("expr", preds.expr_probs), ("va", preds.va), ("au", preds.au_probs)):
        if out is None:
            continue
        bad = int((~np.isfinite(out)).any(axis=1).sum())
        if bad:
            raise CliError(
                f"the model's {head} outputs are NaN or infinite on {bad} of {len(out)} "
                "images: its weights are broken (a training run that diverged?)"
            )


def _evaluate(args: argparse.Namespace, bundle, records, tta, detector):
    """Score the clean images (tuning AU thresholds when asked); returns (result,
    thresholds, the predictions)."""
    from liveaffect.evaluation.metrics import tune_au_thresholds

    preds = _predict(args, bundle, records, tta, detector)
    if not preds.records:
        raise CliError(
            f"none of the {preds.n_total} images could be scored (unreadable, or no face found)"
        )
    _check_finite(preds)
    thresholds = list(bundle.card.au_thresholds)
    result = preds.evaluate(au_thresholds=thresholds)
    if not args.tune_au_thresholds:
        _add_intervals(args, preds, result, thresholds)
        return result, thresholds, preds
    if result.au.n == 0:
        raise CliError("--tune-au-thresholds needs AU labels on images that could be scored")
    before = result.au.mean_f1
    thresholds = [float(t) for t in tune_au_thresholds(preds.au_probs, preds.labels()["au"])]
    result = preds.evaluate(au_thresholds=thresholds)
    _add_intervals(args, preds, result, thresholds)
    result.meta["au_mean_f1_before_tuning"] = before
    result.notes.append(
        "AU thresholds were tuned on this same data, so the AU F1 is optimistic; "
        "report it on data the thresholds were not tuned on."
    )
    return result, thresholds, preds


def _add_intervals(args: argparse.Namespace, preds, result, thresholds) -> None:
    """``result.intervals`` from ``--bootstrap`` resamples (nothing with 0)."""
    if args.bootstrap == 0:
        return
    unit = _unit(args, preds.group_keys())
    result.intervals = preds.intervals(thresholds, n_resamples=args.bootstrap, unit=unit)
    if result.intervals["groups"] < 2:
        result.notes.append(
            f"No confidence intervals: the scored images come from "
            f"{result.intervals['groups']} {unit}(s), and an interval needs at least two."
        )


def _update_card(args: argparse.Namespace, bundle, card_file: Path, result, thresholds, tta):
    """Store tuned AU thresholds, per-AU F1 and/or this evaluation's summary in the card."""
    card = bundle.card
    if args.tune_au_thresholds:
        changed = [float(t) for t in card.au_thresholds] != [float(t) for t in thresholds]
        card.au_thresholds = thresholds
        if card.au_f1 and changed:  # measured with the old thresholds: no longer true
            card.au_f1, card.au_f1_data = {}, ""
            print("cleared the card's au_f1 (measured with the old thresholds): run "
                  "--save-au-f1 on people the model never trained on again")  # fmt: skip
        elif card.au_f1:
            print("kept the card's au_f1: the tuned thresholds are the ones it was measured with")
    if args.save_au_f1:
        _store_au_f1(args, card, result)
    if args.save_to_card:
        key, engine = _card_key(args, result)
        entry = _summary_for_card(result.to_dict())
        entry.update(tta_flip=tta.flip, tta=tta.to_dict(), detect=bool(args.detect), engine=engine)
        card.metrics.setdefault("evaluation", {})[key] = entry
    card.save(card_file)
    print(f"updated {card_file}")


def _card_key(args: argparse.Namespace, result) -> tuple[str, str]:
    """(the card's key for this evaluation, the engine that ran it): the data, split and
    holdout; a non-float32 engine's numbers get a key of their own."""
    key = f"{'+'.join(args.data)} [{args.split}]"
    if args.holdout:
        key += f" holdout {args.holdout}"
    engine = result.meta.get("engine", args.engine)
    if engine != "keras":  # the float32 numbers keep their key; other engines get theirs
        key += f" engine {engine}"
    return key, engine


def _store_au_f1(args: argparse.Namespace, card, result) -> None:
    """The card's ``au_f1``: this run's F1 of every AU that had positives here."""
    per_au = {a: result.au.per_au.get(a) or {} for a in card.aus}
    f1 = {
        a: float(m["f1"]) for a, m in per_au.items() if m.get("positives") and m["f1"] is not None
    }
    if not f1:
        raise CliError("--save-au-f1 needs AU labels on images that could be scored")
    by = f" by {args.group_by}" if args.group_by else ""
    card.au_f1 = f1
    card.au_f1_data = (
        f"{_card_key(args, result)[0]}{by}: {result.au.n} faces, the card's thresholds"
    )


def _write_outputs(args: argparse.Namespace, result) -> None:
    from liveaffect.evaluation.report import write_json, write_report

    if args.json:
        print(f"wrote {write_json(result, args.json)}")
    if args.report:
        files = write_report(result, args.report, title=f"Evaluation of {args.model}")
        print(f"wrote {', '.join(str(p) for p in files.values())}")
