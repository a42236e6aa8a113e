"""Command line: ``python -m liveaffect {live,train,evaluate,export,bench,analyze} ...``.

Each subcommand lives in its own module under ``liveaffect.commands`` exposing
``add_arguments(parser)`` and ``run(args) -> int``; they are imported here by name, so
no library module imports a command. Those modules must import nothing heavy
(TensorFlow, OpenCV windows) at module level, so that ``--help`` and bad options
answer fast.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import os
import sys

from liveaffect.errors import CliError

_DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}

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


class _HelpFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to an option's help unless it has no default or says it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or default in (None, False, argparse.SUPPRESS)
            or action.option_strings == []
        ):
            return text
        return f"{text} (default: %(default)s)"


def _add_version(parser: argparse.ArgumentParser) -> None:
    from liveaffect import __version__

    parser.add_argument(
        "--version", action="version", version=f"liveaffect {__version__}", help="print the version"
    )


def build_parser(only: str | None = None, live_prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that subcommand's module is imported.
    ``live_prog``: how ``live``'s usage line names the program (``python
    emotion_classifier.py``), instead of ``python -m liveaffect live``."""
    parser = argparse.ArgumentParser(
        prog="python -m liveaffect",
        description="liveaffect: real-time facial expression, valence/arousal and action units. "
        "Without a COMMAND, `live` runs: `python -m liveaffect clip.mp4` analyses that clip.",
    )
    _add_version(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.set_defaults(_parsers={})
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            **({"prog": live_prog} if live_prog and name == "live" else {}),
            help=help_text,
            description=(module.__doc__ or help_text).strip().splitlines()[0],
            formatter_class=_HelpFormatter,
        )
        module.add_arguments(p)
        _add_version(p)
        p.set_defaults(_module=module)
        parser.get_default("_parsers")[name] = p
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args(argv)``, but an unknown option is reported by its command's own
    parser (its usage, under the name the user typed), with the closest option it knows."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        command = parser.get_default("_parsers")[args.command]
        known = [o for a in command._actions for o in a.option_strings]
        close = difflib.get_close_matches(extra[0].split("=")[0], known, n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]}?)" if close and extra[0].startswith("-") else ""
        command.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    return args


def _misspelt_command(word: str) -> str | None:
    """The command ``word`` is likely a typo of, when it names no file and is not an option,
    a camera index or a URL (``live`` takes those as its source); else None."""
    if word.startswith("-") or word.isdigit() or "://" in word or os.path.exists(word):
        return None
    close = difflib.get_close_matches(word.lower(), SUBCOMMANDS, n=1, cutoff=0.7)
    return close[0] if close else None


def main(argv: list[str] | None = None, live_prog: str | None = None) -> int:
    """Parse ``argv`` and run the subcommand; returns the process exit status.
    ``live_prog``: the program name ``live``'s usage and errors show (see build_parser)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--version"]:  # answered without importing any command
        from liveaffect import __version__

        print(f"liveaffect {__version__}")
        return 0
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        typo = _misspelt_command(argv[0]) if argv else None
        if typo:
            said = f"error: no command or video {argv[0]!r}; did you mean {typo!r}?"
            print(said, file=sys.stderr)
            return 2
        argv = ["live", *argv]  # live is the default command
    only = argv[0] if argv[0] in SUBCOMMANDS else None
    args = _parse(build_parser(only, live_prog), argv)
    try:
        return int(args._module.run(args) or 0)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: disk full: cannot write {where}{exc.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if sys.stderr.isatty():  # a progress bar's line is left open: end it first
            print(file=sys.stderr)
        print("interrupted", file=sys.stderr)
        return 130
