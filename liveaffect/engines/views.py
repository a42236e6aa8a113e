"""Test-time views as an engine wrapper: score every view of each face, average them."""

from __future__ import annotations

import numpy as np

from liveaffect.engines.base import Engine, check_crops, to_predictions
from liveaffect.tta import TTA
from liveaffect.types import AffectPrediction


class TTAEngine:
    """Wraps an engine: scores every test-time view of each face in one call, averages them.

    The inner engine must have been built with ``rows_per_face = tta.n_views`` (as
    :func:`liveaffect.engines.create_engine` does), so that it keeps its faces per call
    and pads whole faces, not rows; the wrapper never changes it.

    Args:
        inner: the engine that runs the model.
        tta: the views (flip, zooms), the same :class:`~liveaffect.tta.TTA` that
            ``evaluate`` uses for the numbers in the model card.

    Raises:
        ValueError: the inner engine was built for another number of rows per face.
    """

    def __init__(self, inner: Engine, tta: TTA) -> None:
        rows = getattr(inner, "rows_per_face", tta.n_views)
        if rows != tta.n_views:
            raise ValueError(
                f"the inner engine takes {rows} rows per face, but {tta.describe()} needs "
                f"{tta.n_views}; build it with rows_per_face={tta.n_views}"
            )
        self.inner = inner
        self.tta = tta
        self.name = f"{getattr(inner, 'name', 'engine')}+tta{tta.n_views}"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.inner.input_shape

    @property
    def trained(self) -> tuple[str, ...]:
        return self.inner.trained

    @property
    def batch_size(self) -> int:
        """Faces per model call."""
        return self.inner.batch_size

    @property
    def calls(self) -> int:
        """Model calls so far."""
        return self.inner.calls

    def predict_heads(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """Score ``crops`` (N, H, W, C) as ``n_views * N`` rows; returns head -> (N, width).

        Raises:
            ValueError: ``crops`` is not (N, *input_shape), named as the caller passed it
                (not after the views multiplied N).
        """
        crops = check_crops(crops, self.input_shape)
        n = len(crops)
        views = self.inner.predict_heads(self.tta.views(crops))
        return {h: self.tta.merge(v, n) for h, v in views.items()}

    def predict(self, crops: np.ndarray) -> list[AffectPrediction]:
        """Score ``crops`` (N, H, W, C) as ``n_views * N`` faces; returns N averaged predictions."""
        crops = np.asarray(crops, np.float32)
        if len(crops) == 0:
            return []
        return to_predictions(self.predict_heads(crops), len(crops))
