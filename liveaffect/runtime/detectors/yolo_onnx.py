"""YOLO face detection through its ONNX export, run by ONNX Runtime: no PyTorch in the process.

Importing TensorFlow and ``triton`` (which the CUDA builds of PyTorch pull in) in one process
crashes it (SIGSEGV on the first frame). The live app therefore never imports PyTorch: a
``.pt`` file is exported to ONNX once, in a child process that imports ``ultralytics`` and
not TensorFlow (:func:`export_onnx`), the result is cached beside the weights (or in
``~/.cache/liveaffect/yolo``), and the detector runs the ``.onnx`` with ``onnxruntime``.

The export's output is ``(1, 4 + classes, anchors)``: box centre, width and height in input
pixels, then one (already sigmoid-ed) score per class. Frames are letterboxed into the
square input as ultralytics does (grey 114 padding), and overlapping boxes are suppressed
with OpenCV's NMS (IoU 0.45).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from liveaffect.preprocess import to_bgr
from liveaffect.runtime.detectors.base import DetectorError, is_empty
from liveaffect.types import Detection

NMS_IOU = 0.45
INSTALL_HINT = "pip install -r requirements-yolo.txt"
_EXPORT = """
import sys
from ultralytics import YOLO
path = YOLO(sys.argv[1]).export(format="onnx", imgsz=int(sys.argv[2]), simplify=False)
print(path)
"""


def _cache_path(pt: Path, imgsz: int) -> list[Path]:
    digest = hashlib.sha256(pt.read_bytes()).hexdigest()[:16]
    name = f"{pt.stem}.{digest}.{imgsz}.onnx"
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "liveaffect" / "yolo"
    return [pt.parent / name, home / name]


def export_onnx(pt: str | os.PathLike, imgsz: int = 640, timeout_s: float = 600) -> Path:
    """The ONNX export of an ultralytics ``.pt`` (made once in a child process, then cached).

    Raises:
        DetectorError: ultralytics missing, or the export failed (its last line given).
    """
    pt = Path(pt)
    candidates = _cache_path(pt, imgsz)
    for path in candidates:
        if path.is_file():
            return path
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _EXPORT, str(pt), str(imgsz)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, "YOLO_OFFLINE": "1"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DetectorError(f"exporting {pt} to ONNX failed: {exc}") from exc
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    if proc.returncode != 0:
        if any("No module named 'ultralytics'" in line for line in lines):
            raise DetectorError(f"a .pt needs ultralytics to export it; run: {INSTALL_HINT}")
        last = lines[-1] if lines else f"exit status {proc.returncode}"
        raise DetectorError(f"cannot load YOLO weights {pt} (ONNX export failed: {last[:200]})")
    made = Path(proc.stdout.strip().splitlines()[-1])
    for path in candidates:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(made, path)
            return path
        except OSError:
            continue
    return made


class YoloOnnxDetector:
    """A YOLO face model's ONNX export run with ONNX Runtime.

    Args:
        path: the ``.onnx`` file (ultralytics' export of a detect model).
        min_score: detections below this confidence are dropped, in [0, 1].
        face_classes: class ids to keep (None: all; a one-class face model).
        threads: ONNX Runtime intra-op threads (None: its default).

    Raises:
        DetectorError: onnxruntime missing, or the file is not a model it can run.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        min_score: float = 0.5,
        face_classes: set[int] | None = None,
        threads: int | None = None,
    ) -> None:
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1]; got {min_score}")
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DetectorError(
                f"the yolo detector needs onnxruntime; run: {INSTALL_HINT}"
            ) from exc
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise DetectorError(f"cannot load YOLO weights {path}: {str(exc)[:200]}") from exc
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.size = int(inp.shape[2]) if isinstance(inp.shape[2], int) else 640
        self.min_score = float(min_score)
        self.face_classes = face_classes

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Find faces in a grey, BGR or BGRA frame; boxes in frame pixels, best first."""
        if is_empty(frame_bgr):
            return []
        bgr = to_bgr(frame_bgr)
        h, w = bgr.shape[:2]
        scale = self.size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        px, py = (self.size - nw) // 2, (self.size - nh) // 2
        canvas = np.full((self.size, self.size, 3), 114, np.uint8)
        canvas[py : py + nh, px : px + nw] = cv2.resize(bgr, (nw, nh))
        blob = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        out = np.asarray(self.session.run(None, {self.input_name: blob})[0])[0].T
        return self._decode(out, scale, px, py, w, h)

    def _decode(self, out: np.ndarray, scale, px, py, w, h) -> list[Detection]:
        scores_all = out[:, 4:]
        if self.face_classes is not None and scores_all.shape[1] > 1:
            scores_all = scores_all[:, sorted(self.face_classes)]
        scores = scores_all.max(axis=1) if scores_all.size else np.zeros(len(out))
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        cx, cy, bw, bh = (out[keep, i] for i in range(4))
        x1 = np.clip((cx - bw / 2 - px) / scale, 0, w)
        y1 = np.clip((cy - bh / 2 - py) / scale, 0, h)
        x2 = np.clip((cx + bw / 2 - px) / scale, 0, w)
        y2 = np.clip((cy + bh / 2 - py) / scale, 0, h)
        boxes = np.stack([x1, y1, x2 - x1, y2 - y1], 1)
        picked = cv2.dnn.NMSBoxes(boxes.tolist(), scores[keep].tolist(), self.min_score, NMS_IOU)
        found = []
        for i in np.asarray(picked, int).reshape(-1):
            if boxes[i, 2] >= 1 and boxes[i, 3] >= 1:
                box = (float(x1[i]), float(y1[i]), float(x2[i]), float(y2[i]))
                found.append(Detection(box, float(scores[keep][i])))
        return sorted(found, key=lambda d: -d.score)
