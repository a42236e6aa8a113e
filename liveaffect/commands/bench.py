"""Benchmark the live pipeline stage by stage on a video, headless.

Reports per stage (read, detect, track, preprocess, infer, smooth, draw) the median and
95th-percentile milliseconds, end-to-end frames and faces per second after warm-up,
peak resident memory and its growth, and — on the same video, same detector — the
original design's loop (a Keras ``model.predict`` per face per frame) with the speed-up
as a ratio. ``--camera-sim`` replays the clip as a live camera (newest frame wins) and
reports how many frames the shown one lags behind the newest captured.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

from liveaffect.bundle import model_files
from liveaffect.commands.outputs import check_not_an_input, check_output_file
from liveaffect.errors import CliError, OptionError
from liveaffect.runtime.detectors import FULL_RANGE_EVERY
from liveaffect.runtime.detectors.base import BLAZEFACE_MODES as BLAZEFACE_MODELS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, metavar="VIDEO", help="video file to replay")
    p.add_argument(
        "--model", metavar="BUNDLE", help="bundle folder or .keras (default: final_model)"
    )
    p.add_argument(
        "--random-model",
        metavar="BACKBONE:SIZE",
        help="time a random-weight bundle instead, e.g. efficientnetv2s:224 (timing only)",
    )
    p.add_argument(
        "--engine", default="auto", help="engine: auto, keras, tflite, tflite-fp16, tflite-int8"
    )
    p.add_argument(
        "--no-tta",
        action="store_true",
        help="score each face once (default: the card's test-time views, as the app does)",
    )
    p.add_argument("--detector", default="blazeface", help="face detector")
    p.add_argument(
        "--no-small-faces",
        action="store_true",
        help="blazeface: whole frame only, no tiles or following of small faces (as in live)",
    )
    p.add_argument(
        "--blazeface-model",
        default="both",
        choices=BLAZEFACE_MODELS,
        help="which BlazeFace models run (as live's --blazeface-model; default: both)",
    )
    p.add_argument(
        "--full-range-every",
        type=int,
        default=FULL_RANGE_EVERY,
        metavar="N",
        help="blazeface both: full range on every Nth frame of the video (as live's "
        f"--full-range-every; default: {FULL_RANGE_EVERY}; 1: every frame)",
    )
    p.add_argument("--frames", type=int, default=0, help="frames to time (0: the whole clip once)")
    p.add_argument("--loop", action="store_true", help="replay the clip until --frames are done")
    p.add_argument("--warmup", type=int, default=10, help="frames excluded from the statistics")
    p.add_argument(
        "--baseline-frames",
        type=int,
        default=40,
        help="frames for the original design's per-face model.predict loop (0: skip)",
    )
    p.add_argument(
        "--compare",
        default="tflite,tflite-fp16,tflite-int8",
        help="engines whose outputs are compared with the float Keras model on real face crops "
        "('' to skip)",
    )
    p.add_argument(
        "--camera-sim", action="store_true", help="replay as a live camera at the clip's fps"
    )
    p.add_argument("--memory-every", type=int, default=100, help="sample RSS every N frames")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for inference (0: all)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")


# ----------------------------------------------------------------- models
def _random_bundle(spec: str, out: Path):
    from liveaffect.bundle import HEADS, HeadInfo, ModelCard, save_bundle
    from liveaffect.model.mtl import ModelConfig, build_mtl_model
    from liveaffect.preprocess import PreprocessSpec

    backbone, _, size = spec.partition(":")
    try:
        size_px = int(size or 224)
    except ValueError:
        raise CliError(
            f"--random-model {spec}: SIZE must be a whole number of pixels "
            "(BACKBONE:SIZE, e.g. efficientnetv2s:224)"
        ) from None
    try:
        cfg = ModelConfig(backbone=backbone, input_size=size_px)
    except ValueError as exc:
        raise CliError(f"--random-model: {exc}") from None
    model = build_mtl_model(cfg)
    card = ModelCard(
        name=f"random-{backbone}-{size_px}",
        backbone=backbone,
        preprocess=PreprocessSpec(input_size=(size_px, size_px), color="rgb", crop_margin=0.1),
        heads={h: HeadInfo(trained=True, data="RANDOM WEIGHTS: timing only") for h in HEADS},
        notes="Random weights for benchmarking speed. Its outputs mean nothing.",
    )
    return save_bundle(model, card, out)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _check(args)
    tmp = None
    if args.random_model:
        tmp = tempfile.TemporaryDirectory(prefix="liveaffect-bench-")
        model_path = _random_bundle(args.random_model, Path(tmp.name) / "bundle")
    else:
        from liveaffect.runtime.options import DEFAULT_MODEL_DIR

        model_path = Path(args.model) if args.model else DEFAULT_MODEL_DIR
    from liveaffect.runtime.quiet import quiet_native_stderr

    with quiet_native_stderr():  # TensorFlow's start-up lines read as errors on a CPU
        bundle, engine, detector = _load(args, model_path)
    from liveaffect.runtime.video import SourceError

    try:
        report = _measure(args, bundle, engine, detector)
    except SourceError as exc:
        raise CliError(str(exc)) from None
    report["model"] = args.random_model or str(model_path)
    _print(report)
    if args.json:
        from liveaffect.runtime.benchmark import save_report

        save_report(report, args.json)  # whole or not at all; a full disk: one line, exit 1
        print(f"wrote {args.json}")
    if tmp is not None:
        tmp.cleanup()
    return 0


def _check(args: argparse.Namespace) -> None:
    check_output_file(args.json, "--json")
    from liveaffect.runtime.options import DEFAULT_MODEL_DIR

    model = args.model or (None if args.random_model else DEFAULT_MODEL_DIR)
    reads = [args.source, *(model_files(model) if model else [])]
    check_not_an_input(args.json, "--json", reads)
    for name in ("frames", "warmup", "baseline_frames", "threads"):
        if getattr(args, name) < 0:
            raise CliError(f"--{name.replace('_', '-')} must be >= 0")
    if args.frames and args.frames <= args.warmup:
        raise CliError(
            f"--frames {args.frames} leaves no frame to time after the --warmup {args.warmup} "
            "left out of the statistics; time more frames or lower --warmup"
        )
    if args.memory_every < 1:
        raise CliError("--memory-every must be >= 1")
    if args.full_range_every < 1:
        raise CliError("--full-range-every must be >= 1")
    if Path(args.source).is_dir():
        raise CliError(f"--source {args.source} is a folder; bench replays one video file")
    if not Path(args.source).is_file():
        raise CliError(f"video not found: {args.source}")
    if not args.model and not args.random_model:
        from liveaffect.commands.model_options import default_model_error

        missing = default_model_error()
        if missing:
            raise CliError(missing)


def _load(args: argparse.Namespace, model_path: Path):
    from liveaffect import engines
    from liveaffect.bundle import BundleError, open_bundle
    from liveaffect.runtime.detectors import DetectorError, create_detector
    from liveaffect.runtime.options import DETECTOR_FLAGS, ENGINE_FLAGS

    unknown = [n for n in _compare_names(args) if n not in engines.ENGINES]
    if unknown:
        raise CliError(
            f"--compare: unknown engine {unknown[0]!r}; choose from: {', '.join(engines.ENGINES)}"
        )
    try:
        detector = _named(  # first: a bad detector option is found in a second
            DETECTOR_FLAGS,
            lambda: create_detector(
                args.detector,
                small_faces="off" if args.no_small_faces else "video",
                model=args.blazeface_model,
                full_range_every=args.full_range_every,
            ),
        )
        engines.configure_threads(args.threads or None)
        bundle = open_bundle(model_path)  # as the app: Keras only for what needs it
        engine = _named(
            ENGINE_FLAGS,
            lambda: engines.create_engine(bundle, args.engine, tta=False if args.no_tta else None),
        )
    except (BundleError, engines.EngineError, DetectorError, ValueError) as exc:
        raise CliError(str(exc)) from None
    return bundle, engine, detector


def _compare_names(args: argparse.Namespace) -> list[str]:
    """The engines ``--compare`` names, in order."""
    return [n.strip().lower() for n in args.compare.split(",") if n.strip()]


def _named(flags: dict[str, str], build):
    """``build()``; a bad option's error names its flag (``--engine``), not its field."""
    try:
        return build()
    except OptionError as exc:
        raise CliError(exc.for_flags(flags)) from None


def _measure(args: argparse.Namespace, bundle, engine, detector) -> dict[str, Any]:
    from liveaffect.hardware import cpu_info
    from liveaffect.runtime import benchmark
    from liveaffect.runtime.dashboard import Dashboard, View
    from liveaffect.runtime.live import Pipeline
    from liveaffect.runtime.quiet import quiet_native_stderr

    settings = benchmark.ReplaySettings(
        args.source, args.frames, args.loop, args.camera_sim, args.warmup, args.memory_every
    )
    dashboard, canvas = Dashboard(bundle.card), [None]

    def draw(frame, result) -> None:  # the window's view, into one reused canvas
        canvas[0] = dashboard.draw(frame.image_bgr, result, View(), 0.0, out=canvas[0])

    report: dict[str, Any] = {
        "source": args.source,
        "model": None,
        "engine": getattr(engine, "name", args.engine),
        "detector": args.detector,
        "blazeface_model": getattr(detector, "model", None),  # what the detector runs
        "full_range_every": getattr(detector, "full_range_every", None),
        "input": list(bundle.card.preprocess.input_shape),
        "cpu_threads": os.cpu_count(),
        "threads": args.threads or None,  # --threads: inference threads (None: all cores)
        "cpu": cpu_info(),
    }
    report["pipeline"] = benchmark.replay_pipeline(
        settings,
        Pipeline(detector, engine, bundle.card.preprocess),
        draw,
        label=getattr(engine, "name", ""),
    )
    if not report["pipeline"]["frames_timed"]:
        raise CliError(
            f"{args.source}: its {report['pipeline']['frames']} frames leave none to time after "
            f"--warmup {args.warmup}; lower --warmup or add --loop --frames N"
        )
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    names = _compare_names(args)
    with quiet_native_stderr():  # TensorFlow loads here when the engine did not need it
        if args.baseline_frames:
            base = benchmark.baseline_predict_per_face(
                settings, bundle, detector, args.baseline_frames
            )
            report["baseline_keras_predict_per_face"] = base
            ours = report["pipeline"]["fps"]
            speedup = round(ours / base["fps"], 2) if base["fps"] and ours else None
            report["speedup_vs_baseline"] = speedup
        if names:
            crops = benchmark.face_crops(args.source, bundle, detector)
            report["engine_differences_vs_keras"] = benchmark.compare_engines(bundle, crops, names)
    return report


def _print(r: dict[str, Any]) -> None:
    p = r["pipeline"]
    print(f"\n{r['source']} | model {r['model']} | engine {r['engine']} | input {r['input']}")
    print(f"{'stage':<11} {'median ms':>10} {'p95 ms':>9}")
    for s, v in p["stages"].items():
        if v["median_ms"] is not None:
            print(f"{s:<11} {v['median_ms']:>10.2f} {v['p95_ms']:>9.2f}")
    print(
        f"end to end: {p['fps']} FPS, {p['faces_per_s']} faces/s over {p['frames_timed']} frames "
        f"({p['faces_per_frame_mean']} faces/frame, max {p['faces_per_frame_max']})"
    )
    lat = p["capture_to_display_ms"]
    print(f"capture-to-display: median {lat['median_ms']} ms, p95 {lat['p95_ms']} ms")
    if "frames_behind_newest" in p:
        fb = p["frames_behind_newest"]
        print(f"frames behind the newest captured: max {fb['max']}, mean {fb['mean']}")
    if "memory" in p:
        m = p["memory"]
        print(
            f"RSS: {m['rss_first_mb']} MiB -> {m['rss_last_mb']} MiB (growth {m['growth_mb']} MiB, "
            f"slope {m['slope_mb_per_1000_frames']} MiB per 1000 frames)"
        )
    print(f"peak RSS: {r['peak_rss_mb']} MiB")
    if "baseline_keras_predict_per_face" in r:
        b = r["baseline_keras_predict_per_face"]
        print(
            f"original design (model.predict per face): {b['fps']} FPS, {b['ms_per_face']} ms/face"
            f" -> speed-up x{r['speedup_vs_baseline']}"
        )
    for name, d in r.get("engine_differences_vs_keras", {}).items():
        if isinstance(d, dict) and "error" in d:
            print(f"warning: --compare {name}: not compared ({d['error']})", file=sys.stderr)
        elif isinstance(d, dict):
            heads = ", ".join(f"{k} {v:.2e}" for k, v in d.items() if k != "expr_top1_agreement")
            agree = d.get("expr_top1_agreement")
            same = "" if agree is None else f" (top expression as keras's on {agree:.0%} of faces)"
            print(f"max |{name} - keras|: {heads}{same}")
