"""Analyse a webcam, video file or stream live: every face's expression, valence/arousal, AUs.

``python emotion_classifier.py [SOURCE] [options]`` is the same as
``python -m liveaffect live [SOURCE] [options]``. Options are checked before any
camera opens or TensorFlow loads, so a bad value costs a fraction of a second and
gets one clear line (exit status 2).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path

from liveaffect.commands.model_options import (
    add_model_arguments,
    check_model_path,
    model_arguments,
    model_error,
    number,
)
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
        "file (every frame, in order); an rtsp:// or http(s):// URL = a stream",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--no-display",
        action="store_true",
        help="do not open a window (headless: use with --csv, --output and/or --output-raw)",
    )
    parser.add_argument(
        "--output",
        default=None,
        metavar="FILE",
        help="record the drawn view to this video (.mp4 or .avi): the frames with coloured "
        "boxes and tags, the side panel to their right, the FPS (the window's keys do not "
        "change the recording)",
    )
    parser.add_argument(
        "--output-raw",
        default=None,
        metavar="FILE",
        help="record the frames at their own size with only the face boxes and tags "
        "(no panel) to this video (.mp4 or .avi)",
    )
    parser.add_argument(
        "--csv",
        default=None,
        metavar="FILE",
        help="write one row per face per frame (box, expression, valence/arousal, AUs)",
    )
    parser.add_argument(
        "--max-frames",
        default=None,
        metavar="N",
        help="stop after N frames (default: until the video ends or q is pressed)",
    )
    parser.add_argument(
        "--stream",
        action="append",
        default=None,
        metavar="TARGET",
        help="stream every face's affect out, live (repeatable): lsl or lsl:NAME (Lab "
        "Streaming Layer outlet), osc://HOST:PORT (OSC messages), ws://HOST:PORT (WebSocket "
        "server, JSON per frame; binds 127.0.0.1 unless a host is given), jsonl:PATH or "
        "jsonl:- (JSON lines to a file or stdout)",
    )
    parser.add_argument(
        "--stream-faces",
        default="4",
        metavar="N",
        help="face slots in the LSL outlet (faces beyond N are not sent over LSL)",
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
        **model_arguments(args),
    )


def _options(args: argparse.Namespace) -> LiveOptions:
    try:
        return options_from_args(args)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _check_model_path(opts: LiveOptions) -> None:
    check_model_path(opts.model)


def _check_display(opts: LiveOptions) -> None:
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if opts.display and sys.platform.startswith("linux") and headless:
        raise CliError("no display found (DISPLAY is not set); run with --no-display")


def run(args: argparse.Namespace) -> int:
    """Run the live app; returns 0 (end, q, --max-frames), 1 (stream dropped), 130 (Ctrl-C),
    143 (SIGTERM)."""
    opts = _options(args)
    _check_model_path(opts)
    _check_display(opts)
    out = sys.stderr if any(t.to_stdout for t in opts.streams) else sys.stdout
    with ExitStack() as stack:
        terminated = stack.enter_context(_sigterm_as_interrupt())
        streams = _open_streams(opts, stack)
        summary = _run(opts, streams, out)
    print(summary, file=out, flush=True)
    if summary.error:
        print(f"error: the stream dropped: {summary.error}", file=sys.stderr)
        return 1
    if terminated:
        return 143
    return 130 if summary.stopped == "interrupt" else 0


@contextmanager
def _sigterm_as_interrupt():
    """While inside, SIGTERM ends the run like Ctrl-C (every file and socket closed).

    Yields a list that holds the signal number once SIGTERM arrived.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _open_streams(opts: LiveOptions, stack: ExitStack) -> list:
    """Bind and open every ``--stream`` outlet before any capture starts or file is written."""
    if not opts.streams:
        return []
    from liveaffect.bundle import BundleError
    from liveaffect.runtime.streams import StreamError, StreamMeta, open_streams

    try:
        meta = StreamMeta.from_model(opts.model, opts.stream_faces, source=str(opts.source))
    except BundleError as exc:
        raise CliError(model_error(opts.model, exc)) from None
    try:
        streams = open_streams(opts.streams, meta)
    except StreamError as exc:
        raise CliError(str(exc)) from None
    for sink in streams:
        stack.callback(sink.close)
    return streams


def _run(opts: LiveOptions, streams: list, out):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    from liveaffect import engines
    from liveaffect.bundle import BundleError, load_bundle
    from liveaffect.runtime.controls import Controls
    from liveaffect.runtime.dashboard import RAW_VIEW, Dashboard
    from liveaffect.runtime.detectors import DetectorError, build_detector
    from liveaffect.runtime.live import Pipeline, run_loop
    from liveaffect.runtime.sinks import CsvSink, SinkError, VideoSink, WindowSink
    from liveaffect.runtime.smoothing import PredictionSmoother
    from liveaffect.runtime.video import SourceError, open_source

    with ExitStack() as stack:
        try:
            source = stack.enter_context(open_source(opts.source))
        except SourceError as exc:
            raise CliError(str(exc)) from None
        try:
            detector = build_detector(opts.detector_options)
        except (DetectorError, ValueError) as exc:
            raise CliError(f"detector: {exc}") from None
        engines.configure_threads(opts.threads)
        try:
            bundle = load_bundle(opts.model)
            engine = engines.build_engine(bundle, opts.engine_options)
        except BundleError as exc:
            raise CliError(model_error(opts.model, exc)) from None
        except engines.EngineError as exc:
            raise CliError(f"engine: {exc}") from None
        sinks = []
        try:
            if opts.display:
                controls = Controls(opts.snapshot_dir)
                sinks.append(stack.enter_context(WindowSink("liveaffect", controls)))
            if opts.output is not None:
                sinks.append(stack.enter_context(VideoSink(opts.output, fps=source.fps)))
            if opts.output_raw is not None:
                raw = VideoSink(opts.output_raw, fps=source.fps, view=RAW_VIEW)
                sinks.append(stack.enter_context(raw))
            if opts.csv is not None:
                sinks.append(stack.enter_context(CsvSink(opts.csv, bundle.card)))
        except SinkError as exc:
            raise CliError(str(exc)) from None
        sinks += streams
        pipeline = Pipeline(
            detector, engine, bundle.card.preprocess, smoother=PredictionSmoother(opts.smooth)
        )
        _print_start(opts, bundle, engine, streams, out)
        try:
            return run_loop(
                source,
                pipeline,
                sinks,
                dashboard=Dashboard(bundle.card),
                max_frames=opts.max_frames,
                on_fps=lambda fps: print(f"FPS: {fps:.1f}", file=out, flush=True),
            )
        except SinkError as exc:
            raise CliError(str(exc)) from None


def _print_start(opts: LiveOptions, bundle, engine, streams, out) -> None:
    untrained = [h for h in ("expr", "va", "au") if not bundle.card.trained(h)]
    note = f" (not trained, hidden: {', '.join(untrained)})" if untrained else ""
    what = f"camera {opts.source}" if isinstance(opts.source, int) else str(opts.source)
    tta = getattr(engine, "tta", None)
    views = f"test-time views {tta.describe()}" if tta is not None else "1 view per face"
    print(
        f"liveaffect: {what} | model {bundle.path}{note} | detector {opts.detector} | "
        f"engine {getattr(engine, 'name', '?')}, {views}",
        file=out,
        flush=True,
    )
    if streams:
        print(f"streaming to: {', '.join(s.describe() for s in streams)}", file=out, flush=True)
