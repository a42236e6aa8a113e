"""The multi-task Keras model: builder, masked losses, TFLite export."""

from __future__ import annotations

from typing import Any


def custom_objects() -> dict[str, Any]:
    """Custom classes needed to load a liveaffect ``.keras`` file."""
    from liveaffect.model import layers, losses

    return {**losses.CUSTOM_OBJECTS, **layers.CUSTOM_OBJECTS}
