"""What every bench/ script writes with ``--json``: its numbers plus the machine and command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from liveaffect.hardware import cpu_info


def write_result(path: str | Path, result: dict[str, Any]) -> None:
    """Write ``result`` as JSON with the CPU (cores, model, SIMD features) and the command
    that produced it."""
    result = {
        **result,
        **cpu_info(),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    Path(path).write_text(json.dumps(result, indent=2) + "\n")
