"""Exception types shared across layers.

Library modules raise their own specific errors (``BundleError``, ``SourceError``,
``EngineError`` ...); a command turns those it expects into :class:`CliError`, which
``liveaffect.cli.main`` prints as one ``error:`` line with exit status 2.
"""

from __future__ import annotations


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""
