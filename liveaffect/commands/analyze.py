"""Analyse a whole archive of videos: every face in every frame, a report per video, one table.

``python -m liveaffect analyze INPUT... --out DIR`` writes, per video, ``DIR/<video>/``
``faces.csv`` (the live app's columns; ``timestamp_ms`` is the position in the video),
``report.png`` and ``summary.json``, and ``DIR/summary.csv`` across the videos. Videos
complete from an earlier run are skipped (``--force`` redoes them); a video that fails is
recorded and the others go on (exit status 1). ``--ray`` runs the videos on a Ray cluster.
"""

from __future__ import annotations

import argparse
import os
import sys

from liveaffect.commands.model_options import (
    add_model_arguments,
    check_model_path,
    model_arguments,
    model_error,
    number,
)
from liveaffect.errors import CliError

LOCAL_RAY = "local"
FFMPEG_QUIET = "-8"  # AV_LOG_QUIET


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``analyze`` options to ``parser``."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="video files, folders (searched recursively for videos) or glob patterns "
        "(quote them: 'sessions/**/*.mp4')",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder: DIR/<video>/{faces.csv,report.png,summary.json} and "
        "DIR/summary.csv; with --ray on a cluster, a path every node can write "
        "(NFS, or gs://bucket/path)",
    )
    add_model_arguments(
        parser,
        threads_help="CPU cores for the model: as many model copies score faces side by side, "
        "beside the detecting thread; OpenCV runs on one thread (default: all cores; with "
        "--ray: 1 per worker)",
    )
    parser.add_argument(
        "--force", action="store_true", help="redo videos whose results are already complete"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--batch",
        default="8",
        metavar="N",
        help="frames whose faces go through the model in one call",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL_RAY,
        default=None,
        metavar="ADDRESS",
        help="run the videos on Ray (pip install -r requirements-ray.txt): alone, a local "
        "cluster on this machine; 'auto' or ray://HOST:10001, an existing cluster",
    )
    parser.add_argument(
        "--workers",
        default=None,
        metavar="N",
        help="with --ray: workers (one model copy each, --threads CPUs each; default: as many "
        "as the cluster's CPUs hold, at most one per video)",
    )


def _settings(args: argparse.Namespace):
    from liveaffect.analysis.runner import AnalysisSettings

    try:
        batch = number(args.batch, "batch", int)
        if batch is None or batch < 1:
            raise ValueError(f"--batch must be 1 or more, got {args.batch}")
        return AnalysisSettings(**model_arguments(args), batch_frames=batch, batch_faces=2 * batch)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _check_out(out: str) -> None:
    from liveaffect.data.io import is_url

    if is_url(out):
        return
    if os.path.exists(out) and not os.path.isdir(out):
        raise CliError(f"--out {out} is a file, not a folder")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise CliError(f"--out: folder {parent} does not exist")
    folder = out if os.path.isdir(out) else parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CliError(f"--out: no permission to write in folder {os.path.abspath(folder)}")


def _jobs(inputs: list[str], out: str):
    from liveaffect.analysis.inputs import InputError, find_jobs

    try:
        jobs = find_jobs(inputs)
    except InputError as exc:
        raise CliError(str(exc)) from None
    out_real = os.path.realpath(out)  # the inputs are resolved too: a symlink is seen through
    for job in jobs:
        if os.path.realpath(job.path).startswith(out_real + os.sep):
            raise CliError(f"input {job.path} lies inside --out {out}; choose another --out")
    return jobs


def _workers(args: argparse.Namespace) -> int | None:
    try:
        workers = number(args.workers, "workers", int)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if workers is not None and workers < 1:
        raise CliError(f"--workers must be 1 or more, got {workers}")
    if workers is not None and args.ray is None:
        raise CliError("--workers needs --ray")
    return workers


def run(args: argparse.Namespace) -> int:
    """Analyse the videos; returns 0 (all complete), 1 (a video failed), 130 (Ctrl-C),
    143 (SIGTERM), 129 (SIGHUP)."""
    from liveaffect.runtime.signals import StopSignals

    # FFmpeg's own lines for a broken file ("moov atom not found") would land between the
    # progress bars; the "failed:" line says which video failed and why. A value the user
    # set is kept (OpenCV reads it once, at its first FFmpeg call).
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_QUIET)
    settings = _settings(args)
    workers = _workers(args)
    _check_out(args.out)
    check_model_path(settings.model)
    jobs = _jobs(args.inputs, args.out)
    with StopSignals(interrupt=True) as signals:  # SIGTERM/SIGHUP stop as Ctrl-C does
        result = _analyze(args, settings, jobs, workers)
    for video in result.videos:
        if video.get("status") == "failed":
            print(f"failed: {video['video']}: {video.get('reason', '')}", file=sys.stderr)
    print(result.line(), flush=True)
    if result.interrupted and signals.exit_status:
        return signals.exit_status
    return result.exit_code


def _quiet_analyzer(verbose: bool):
    """Builds the analyzer with TensorFlow's and LiteRT's start-up lines hidden."""
    from liveaffect.analysis.runner import VideoAnalyzer
    from liveaffect.runtime.quiet import quiet_native_stderr

    def make(settings):
        with quiet_native_stderr(not verbose):
            return VideoAnalyzer(settings)

    return make


def _analyze(args, settings, jobs, workers):
    from liveaffect.bundle import BundleError
    from liveaffect.data.io import is_url
    from liveaffect.engines import EngineError
    from liveaffect.runtime.detectors import DetectorError
    from liveaffect.runtime.quiet import quiet_native_stderr

    if is_url(args.out):  # --out goes through tf.io.gfile: TensorFlow loads now, quietly
        with quiet_native_stderr(not getattr(args, "verbose", False)):
            import tensorflow  # noqa: F401

    try:
        if args.ray is not None:
            from liveaffect.analysis.ray_runner import (
                RayUnavailable,
                WorkerStartError,
                analyze_on_ray,
            )

            address = None if args.ray == LOCAL_RAY else args.ray
            try:
                return analyze_on_ray(
                    jobs, settings, args.out, args.force, args.quiet, address, workers
                )
            except RayUnavailable as exc:
                raise CliError(str(exc)) from None
            except WorkerStartError as exc:
                raise CliError(f"a Ray worker could not start: {exc}") from None
        from liveaffect.analysis.archive import analyze_archive

        make = _quiet_analyzer(bool(getattr(args, "verbose", False)))
        return analyze_archive(jobs, settings, args.out, args.force, args.quiet, make)
    except BundleError as exc:
        raise CliError(model_error(settings.model, exc)) from None
    except (DetectorError, EngineError) as exc:
        raise CliError(f"{type(exc).__name__}: {exc}") from None
    except OSError as exc:
        raise CliError(f"--out {args.out}: {exc.strerror or exc}") from None
