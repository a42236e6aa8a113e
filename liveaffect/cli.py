"""Command line: ``python -m liveaffect {live,train,evaluate,export,bench,analyze} ...``.

Each subcommand lives in its own module under ``liveaffect.commands`` exposing
``add_arguments(parser)`` and ``run(args) -> int``; they are imported here by name, so
no library module imports a command. Those modules must import nothing heavy
(TensorFlow, OpenCV windows) at module level, so that ``--help`` and bad options
answer fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from liveaffect.errors import CliError

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "live": ("liveaffect.commands.live", "analyse a webcam, video file or stream (default)"),
    "train": ("liveaffect.commands.train", "train a multi-task model bundle"),
    "evaluate": ("liveaffect.commands.evaluate", "evaluate a bundle with the ABAW metrics"),
    "export": ("liveaffect.commands.export", "export a bundle to TFLite"),
    "bench": ("liveaffect.commands.bench", "benchmark the live pipeline stage by stage"),
    "analyze": (
        "liveaffect.commands.analyze",
        "analyse an archive of videos: per-video CSV, report and summary (optionally on Ray)",
    ),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that subcommand's module is imported."""
    parser = argparse.ArgumentParser(
        prog="python -m liveaffect",
        description="liveaffect: real-time facial expression, valence/arousal and action units.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip().splitlines()[0],
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    only = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    args = build_parser(only).parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
