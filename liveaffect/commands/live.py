"""Analyse a webcam, video file or stream live: every face's expression, valence/arousal, AUs.

``python emotion_classifier.py [SOURCE] [options]`` is the same as
``python -m liveaffect live [SOURCE] [options]``. Options are checked before any
camera opens or TensorFlow loads, so a bad value costs a fraction of a second and
gets one clear line (exit status 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from contextlib import ExitStack
from pathlib import Path

from liveaffect.bundle import WEAK_AU_F1
from liveaffect.commands.model_options import (
    add_model_arguments,
    check_model_path,
    model_arguments,
    model_error,
    number,
)
from liveaffect.commands.outputs import check_output_file
from liveaffect.errors import CliError
from liveaffect.runtime.options import LiveOptions
from liveaffect.runtime.streams.targets import parse_targets


def parse_source(text: str | None) -> int | str:
    """Turn the SOURCE argument into a camera index (int) or a path / URL (str).

    No argument means webcam 0; an integer (``"1"``, ``"-1"``) is a camera index.
    """
    if text is None or text.strip() == "":
        return 0
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        return int(stripped)
    return text


def parse_window_size(text: str | None) -> tuple[int, int] | None:
    """``"1280x720"`` -> (1280, 720); None stays None (fit to the screen)."""
    if text is None:
        return None
    width, sep, height = text.strip().lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise ValueError(f"--window-size must be WIDTHxHEIGHT, e.g. 1280x720; got {text!r}")
    return int(width), int(height)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``live`` options to ``parser``."""
    parser.epilog = (
        "keys in the window: q or Esc quit; space pause/resume; s save a PNG snapshot of the "
        "window (beside --output/--output-raw/--csv, else in the current folder; the path is "
        "printed); p show/hide the side panel; t show/hide per-stage timings; h or ? help"
    )
    parser.add_argument(
        "source",
        nargs="?",
        default=None,
        metavar="SOURCE",
        help="what to analyse: nothing = webcam 0; an integer = that camera; a path = a video "
        "file (every frame, in order) or a still image (.jpg, .png, ...: shown until q or Esc"
        "); an rtsp:// or http(s):// URL = a stream",
    )
    add_model_arguments(parser)
    _add_window_arguments(parser.add_argument_group("window"))
    _add_output_arguments(parser.add_argument_group("outputs"))
    _add_stream_arguments(parser.add_argument_group("streams out"))


def _add_window_arguments(group) -> None:
    """The options for the window."""
    group.add_argument(
        "--no-display",
        action="store_true",
        help="do not open a window (headless: use with --csv, --output and/or --output-raw)",
    )
    group.add_argument(
        "--window-size",
        default=None,
        metavar="WxH",
        help="window size at start, e.g. 1280x720 (default: the canvas's size, the video plus "
        "the side panel, shrunk to fit the screen); the window can be resized and the view is "
        "drawn at its size",
    )
    group.add_argument(
        "--fast",
        action="store_true",
        help="with a window, play a video file as fast as it is processed instead of at "
        "its own frame rate (headless runs are always as fast as possible)",
    )


def _add_output_arguments(group) -> None:
    """The options for the files the run writes."""
    group.add_argument(
        "--output",
        default=None,
        metavar="FILE",
        help="record the drawn view to this video (.mp4 or .avi): the frames with coloured "
        "boxes and tags, the side panel to their right, the FPS (the window's keys do not "
        "change the recording)",
    )
    group.add_argument(
        "--output-raw",
        default=None,
        metavar="FILE",
        help="record the frames at their own size with only the face boxes and tags "
        "(no panel) to this video (.mp4 or .avi)",
    )
    group.add_argument(
        "--csv",
        default=None,
        metavar="FILE",
        help="write one row per face per frame (box, expression, valence/arousal, AUs)",
    )
    group.add_argument(
        "--max-frames",
        default=None,
        metavar="N",
        help="stop after N frames (default: until the video ends or q is pressed)",
    )


def _add_stream_arguments(group) -> None:
    """The options for live streams out."""
    group.add_argument(
        "--stream",
        action="append",
        default=None,
        metavar="TARGET",
        help="stream every face's affect out, live (repeatable): lsl or lsl:NAME (Lab "
        "Streaming Layer outlet), osc://HOST:PORT (OSC messages), ws://HOST:PORT (WebSocket "
        "server, JSON per frame; binds 127.0.0.1 unless a host is given), jsonl:PATH or "
        "jsonl:- (JSON lines to a file or stdout)",
    )
    group.add_argument(
        "--stream-faces",
        default="4",
        metavar="N",
        help="face slots in the LSL outlet, 1 to 64 (faces beyond N are not sent over LSL)",
    )
    group.add_argument(
        "--stream-priority",
        choices=("low", "normal"),
        default="low",
        help="the outlets run in a process of their own. low (default): it only takes the "
        "CPU time the analysis leaves (nice +19, batch scheduling), so streaming costs the "
        "fewest frames per second; but when other programs keep every core busy, data can "
        "leave up to a second late (timestamps stay the capture times). normal: the app's "
        "priority, data within a few ms even then, at a few percent more FPS cost",
    )


def options_from_args(args: argparse.Namespace) -> LiveOptions:
    """Build the live options from the parsed command line (strings converted here)."""
    return LiveOptions(
        source=parse_source(args.source),
        display=not args.no_display,
        output=Path(args.output) if args.output else None,
        output_raw=Path(args.output_raw) if getattr(args, "output_raw", None) else None,
        csv=Path(args.csv) if args.csv else None,
        max_frames=number(args.max_frames, "max_frames", int),
        streams=parse_targets(getattr(args, "stream", None) or ()),
        stream_faces=number(getattr(args, "stream_faces", "4"), "stream_faces", int),
        stream_priority=getattr(args, "stream_priority", "low"),
        window_size=parse_window_size(getattr(args, "window_size", None)),
        fast=bool(getattr(args, "fast", False)),
        **model_arguments(args),
    )


def _options(args: argparse.Namespace) -> LiveOptions:
    try:
        opts = options_from_args(args)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    for path, flag in ((opts.output, "--output"), (opts.output_raw, "--output-raw"),
                       (opts.csv, "--csv")):  # fmt: skip
        check_output_file(path, flag)  # before any of them is opened (the CSV is emptied)
    return opts


def _check_model_path(opts: LiveOptions) -> None:
    check_model_path(opts.model)


def _check_display(opts: LiveOptions) -> None:
    """Before anything is opened: a window must be able to open (Qt would abort)."""
    from liveaffect.runtime.display import display_problem

    problem = display_problem() if opts.display else None
    if problem:
        raise CliError(f"{problem}; run with --no-display")


def run(args: argparse.Namespace) -> int:
    """Run the live app; returns 0 (end, q, --max-frames), 1 (stream dropped, or an output
    could not be written), 130 (Ctrl-C), 143 (SIGTERM), 129 (SIGHUP)."""
    from liveaffect.runtime.signals import StopSignals
    from liveaffect.runtime.sinks import SinkError

    # From the start, not just around the loop: a SIGTERM while the model loads (seconds on a
    # busy machine) is kept for the loop, which stops after one frame with every file whole.
    with StopSignals() as signals:
        opts = _options(args)
        _check_model_path(opts)
        _check_display(opts)
        out = sys.stderr if any(t.to_stdout for t in opts.streams) else sys.stdout
        verbose = bool(getattr(args, "verbose", False))
        try:
            with ExitStack() as stack:
                streams, stream_sinks = _open_streams(opts, stack)
                summary = _run(opts, streams, stream_sinks, out, signals.reason, verbose)
        except SinkError as exc:  # an output could not be opened
            if exc.exit_status == 2:
                raise CliError(str(exc)) from None
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_status
    print(summary, file=out, flush=True)
    if summary.warning:
        print(f"warning: {summary.warning}", file=sys.stderr)
    if summary.error:
        print(f"error: {summary.error}", file=sys.stderr)
        return 1
    if signals.exit_status:
        return signals.exit_status
    return 130 if summary.stopped == "interrupt" else 0


def _open_streams(opts: LiveOptions, stack: ExitStack) -> tuple[list, list]:
    """Bind and open every ``--stream`` outlet before any capture starts or file is written.

    Returns the outlets' descriptions and the sinks the loop feeds (one
    :class:`StreamProcess`: the outlets live in a process of their own).
    """
    if not opts.streams:
        return [], []
    from liveaffect.bundle import BundleError
    from liveaffect.runtime.streams import StreamError, StreamMeta
    from liveaffect.runtime.streams.process import StreamProcess

    try:
        meta = StreamMeta.from_model(opts.model, opts.stream_faces, source=str(opts.source))
    except BundleError as exc:
        raise CliError(model_error(opts.model, exc)) from None
    try:
        process = StreamProcess(opts.streams, meta, priority=opts.stream_priority)
    except StreamError as exc:
        raise CliError(str(exc)) from None
    stack.callback(process.close)  # the queued frames go out, then the outlets close
    return process.outlets, [process]


def _run(opts: LiveOptions, streams: list, stream_sinks: list, out, stop, verbose=False):
    from liveaffect.runtime.quiet import quiet_native_stderr

    with ExitStack() as stack:
        with quiet_native_stderr(not verbose):  # TensorFlow/LiteRT start-up chatter
            source, detector, bundle, converting = _open_parts(opts, stack)
        if converting:  # the first start with this model: say why it takes a while
            print(
                f"liveaffect: converting {bundle.model_file} to TFLite ({converting}) once; "
                "later starts use the cached file",
                file=out,
                flush=True,
            )
        with quiet_native_stderr(not verbose):
            engine = _open_engine(opts, bundle)
        parts = (source, detector, engine, bundle)
        return _loop(opts, stack, parts, (streams, stream_sinks), out, stop)


def _open_parts(opts: LiveOptions, stack: ExitStack):
    """Open the source, the detector and the model's card (CliError naming what failed);
    also says which TFLite conversion the engine will make first (None: none)."""
    from liveaffect import engines
    from liveaffect.bundle import BundleError, open_bundle
    from liveaffect.runtime.detectors import DetectorError, build_detector
    from liveaffect.runtime.video import SourceError, open_source

    try:
        source = stack.enter_context(open_source(opts.source))
    except SourceError as exc:
        raise CliError(str(exc)) from None
    try:
        options = opts.detector_options
        if source.is_still and options.small_faces == "video":  # one image: every tile now
            options = dataclasses.replace(options, small_faces="still")
        detector = build_detector(options)
    except (DetectorError, ValueError) as exc:
        raise CliError(f"detector: {exc}") from None
    engines.configure_threads(opts.threads)
    try:
        bundle = open_bundle(opts.model)  # Keras loads only if the engine needs it
        converting = engines.converts_first(bundle, opts.engine_options)
    except BundleError as exc:
        raise CliError(model_error(opts.model, exc)) from None
    return source, detector, bundle, converting


def _open_engine(opts: LiveOptions, bundle):
    """The engine for ``bundle`` (CliError naming what failed)."""
    from liveaffect import engines
    from liveaffect.bundle import BundleError

    try:
        return engines.build_engine(bundle, opts.engine_options)
    except BundleError as exc:
        raise CliError(model_error(opts.model, exc)) from None
    except engines.EngineError as exc:
        raise CliError(f"engine: {exc}") from None


def _loop(opts: LiveOptions, stack: ExitStack, parts, outlets, out, stop):
    """Open the window, then the outputs, run the live loop, and close every sink.

    ``outlets``: the ``--stream`` outlets (for the start line) and the sinks that feed them.
    """
    source, detector, engine, bundle = parts
    streams, stream_sinks = outlets
    from liveaffect.runtime.dashboard import Dashboard
    from liveaffect.runtime.live import Pipeline, close_sinks, run_loop
    from liveaffect.runtime.smoothing import PredictionSmoother

    dashboard = Dashboard(bundle.card)
    sinks = _open_sinks(opts, stack, source, bundle.card, dashboard, out) + stream_sinks
    pipeline = Pipeline(
        detector, engine, bundle.card.preprocess, smoother=PredictionSmoother(opts.smooth)
    )
    _print_start(opts, bundle, engine, streams, out)
    summary = run_loop(
        source,
        pipeline,
        sinks,
        dashboard=dashboard,
        max_frames=opts.max_frames,
        on_fps=lambda fps: print(f"FPS: {fps:.1f}", file=out, flush=True),
        stop=stop,
        hold_last=source.is_still,
    )
    return close_sinks(sinks, summary)  # every file finished; an unreadable video is an error


def _open_sinks(opts: LiveOptions, stack: ExitStack, source, card, dashboard, out) -> list:
    """The window first, then the output files: nothing is truncated until all else opened.

    ``out``: where the window's snapshot paths are printed (the status lines' stream)."""
    from liveaffect.runtime.controls import Controls
    from liveaffect.runtime.dashboard import RAW_VIEW
    from liveaffect.runtime.sinks import CsvSink, VideoSink
    from liveaffect.runtime.window import WindowSink

    sinks: list = []
    if opts.display:
        pace = None if opts.fast or source.is_live else source.fps
        window = WindowSink(
            "liveaffect",
            Controls(opts.snapshot_dir, out=out),
            size=opts.window_size,
            pace_fps=pace,
        )
        sinks.append(stack.enter_context(window))
        known = min(source.frame_size) > 0
        window.open(dashboard.canvas_size(source.frame_size) if known else None)
    if opts.output is not None:
        sinks.append(stack.enter_context(VideoSink(opts.output, fps=source.fps)))
    if opts.output_raw is not None:
        raw = VideoSink(opts.output_raw, fps=source.fps, view=RAW_VIEW)
        sinks.append(stack.enter_context(raw))
    if opts.csv is not None:
        sinks.append(stack.enter_context(CsvSink(opts.csv, card)))
    return sinks


def _print_start(opts: LiveOptions, bundle, engine, streams, out) -> None:
    untrained = [h for h in ("expr", "va", "au") if not bundle.card.trained(h)]
    note = f" (not trained, hidden: {', '.join(untrained)})" if untrained else ""
    what = f"camera {opts.source}" if isinstance(opts.source, int) else str(opts.source)
    tta = getattr(engine, "tta", None)
    views = f"test-time views {tta.describe()}" if tta is not None else "1 view per face"
    detector = opts.detector
    if opts.blazeface_model != "both":
        detector += f" ({opts.blazeface_model})"
    print(
        f"liveaffect: {what} | model {bundle.path}{note} | detector {detector} | "
        f"engine {getattr(engine, 'name', '?')}, {views}",
        file=out,
        flush=True,
    )
    weak = bundle.card.weak_au_columns()
    if weak:
        print(
            f"liveaffect: AUs found poorly on new faces (F1 < {WEAK_AU_F1:g} in the model "
            f"card; '?' in the window's panel): {', '.join(weak)}",
            file=out,
            flush=True,
        )
    if streams:
        print(f"streaming to: {', '.join(streams)}", file=out, flush=True)
