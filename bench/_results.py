"""What every bench/ script writes with ``--json``: its numbers plus the machine and command."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any


def write_result(path: str | Path, result: dict[str, Any]) -> None:
    """Write ``result`` as JSON with the CPU count, machine and the command that produced it."""
    result = {
        **result,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    Path(path).write_text(json.dumps(result, indent=2) + "\n")
