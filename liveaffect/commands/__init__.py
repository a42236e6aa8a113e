"""The subcommands of ``python -m liveaffect``: argument parsing and wiring only.

Each module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and imports
nothing heavy (TensorFlow, OpenCV windows) at module level, so that ``--help`` and bad
options answer fast. Nothing outside this package imports it (``liveaffect.cli`` finds
the modules by name).
"""
