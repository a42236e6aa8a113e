"""Exception types shared across layers.

Library modules raise their own specific errors (``BundleError``, ``SourceError``,
``EngineError`` ...) and options dataclasses raise :class:`OptionError`; a command turns
those it expects into :class:`CliError`, which ``liveaffect.cli.main`` prints as one
``error:`` line with exit status 2.
"""

from __future__ import annotations

from collections.abc import Mapping


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class OptionError(ValueError):
    """A bad option value, raised when an options dataclass is built.

    Args:
        name: the option's field name (``min_score``).
        message: the sentence, with ``{}`` where the option's name goes, so that a
            command can name its flag instead (:meth:`for_flag`).
    """

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(message.format(name))

    def for_flag(self, flag: str) -> str:
        """The sentence naming ``flag`` (``--min-face-score``) instead of the field."""
        return self.message.format(flag)

    def for_flags(self, flags: Mapping[str, str]) -> str:
        """The sentence naming the field's flag in ``flags`` (field -> flag), else
        ``--field-name``."""
        return self.for_flag(flags.get(self.name, "--" + self.name.replace("_", "-")))
