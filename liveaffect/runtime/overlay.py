"""Draw a frame's results: box, id, expression, valence/arousal, active AUs, FPS.

A head the model card marks as untrained is labelled "not trained" instead of
showing numbers from random weights. Boxes reaching outside the frame are clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from liveaffect.bundle import ModelCard
from liveaffect.labels import au_label
from liveaffect.preprocess import to_bgr
from liveaffect.types import FaceResult, FrameResult

BOX_COLOR = (0, 255, 0)
"""BGR colour of face boxes (pure green)."""
TEXT_COLOR = (255, 255, 255)
PANEL_COLOR = (32, 32, 32)
FPS_COLOR = (0, 255, 255)
MAX_AU_LINES = 4
"""Active AUs listed under a face, one per line with its FACS name; the rest are counted."""
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def clip_box(xyxy: tuple[float, ...], width: int, height: int) -> tuple[int, int, int, int] | None:
    """Clip a box to the frame; None when nothing of it is inside."""
    x1, y1, x2, y2 = (round(float(v)) for v in xyxy)
    x1, x2 = max(0, min(x1, width - 1)), max(0, min(x2, width - 1))
    y1, y2 = max(0, min(y1, height - 1)), max(0, min(y2, height - 1))
    if x2 <= x1 or y2 <= y1:
        return None
    return x1, y1, x2, y2


@dataclass(frozen=True)
class Overlay:
    """Turns a :class:`FrameResult` into a picture.

    Attributes:
        card: the model card (label names, AU thresholds, trained heads).
        font_scale: text size relative to OpenCV's base font.
    """

    card: ModelCard
    font_scale: float = 0.5

    def face_lines(self, face: FaceResult) -> list[str]:
        """The text shown next to one face."""
        pred, card = face.prediction, self.card
        lines = [f"#{face.track_id}"]
        if pred.expr_probs is not None:
            k = int(np.argmax(pred.expr_probs))
            lines[0] += f" {card.expressions[k]} {float(pred.expr_probs[k]):.2f}"
        elif not card.trained("expr"):
            lines.append("expr: not trained")
        if pred.va is not None:
            lines.append(f"V {float(pred.va[0]):+.2f}  A {float(pred.va[1]):+.2f}")
        elif not card.trained("va"):
            lines.append("VA: not trained")
        if pred.au_probs is not None:
            active = [
                au_label(name)
                for name, p, t in zip(card.aus, pred.au_probs, card.au_thresholds, strict=True)
                if p >= t
            ]
            lines += active[:MAX_AU_LINES] or ["AU -"]
            if len(active) > MAX_AU_LINES:
                lines.append(f"+{len(active) - MAX_AU_LINES} more AU")
        elif not card.trained("au"):
            lines.append("AU: not trained")
        return lines

    def draw(self, frame_bgr: np.ndarray, result: FrameResult, fps: float | None = None):
        """Return an annotated BGR copy of ``frame_bgr``.

        Args:
            frame_bgr: the frame (grey and BGRA are converted to BGR).
            result: what the pipeline found in it.
            fps: frames per second to print in the corner, if given.
        """
        image = to_bgr(frame_bgr).copy()
        h, w = image.shape[:2]
        if h == 0 or w == 0:
            return image
        thick = max(1, round(min(h, w) / 360))
        for face in result.faces:
            box = clip_box(face.detection.xyxy, w, h)
            if box is None:
                continue
            cv2.rectangle(image, box[:2], box[2:], BOX_COLOR, thick + 1)
            self._label(image, box, self.face_lines(face))
        if fps is not None:
            self._text_block(image, (4, 4), [f"FPS {fps:.1f}"], FPS_COLOR)
        return image

    def _label(self, image: np.ndarray, box: tuple[int, int, int, int], lines: list[str]) -> None:
        line_h = self._line_height()
        block_h = line_h * len(lines) + 4
        x1, y1, _, y2 = box
        top = y1 - block_h - 2
        if top < 0:  # no room above the box: put it below, or inside at the top
            top = y2 + 2 if y2 + 2 + block_h <= image.shape[0] else y1 + 2
        self._text_block(image, (x1, top), lines, TEXT_COLOR)

    def _line_height(self) -> int:
        (_, th), base = cv2.getTextSize("Ag", _FONT, self.font_scale, 1)
        return th + base + 4

    def _text_block(
        self, image: np.ndarray, origin: tuple[int, int], lines: list[str], color
    ) -> None:
        line_h = self._line_height()
        width = max(cv2.getTextSize(t, _FONT, self.font_scale, 1)[0][0] for t in lines) + 8
        x = max(0, min(origin[0], image.shape[1] - width))
        y = max(0, origin[1])
        x2 = min(image.shape[1] - 1, x + width)
        y2 = min(image.shape[0] - 1, y + line_h * len(lines) + 4)
        roi = image[y:y2, x:x2]
        if roi.size:
            roi[:] = (roi * 0.35 + np.array(PANEL_COLOR) * 0.65).astype(np.uint8)
        for i, text in enumerate(lines):
            baseline = y + (i + 1) * line_h - 2
            cv2.putText(
                image, text, (x + 4, baseline), _FONT, self.font_scale, color, 1, cv2.LINE_AA
            )
