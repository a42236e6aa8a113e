"""YOLOv11 face detector run by ``ultralytics``, an optional extra (requirements-yolo.txt).

Weights are a local ``.pt`` file (``--detector-weights FILE``) or, when none is given,
``model.pt`` from the Hugging Face hub repository ``AdamCodd/YOLOv11n-face-detection``,
downloaded once into the hub cache and read from there afterwards. Without network and
without a cached copy, loading stops with one :class:`DetectorError` sentence at once,
instead of waiting through ``huggingface_hub``'s retries (about 23 s measured).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from liveaffect.preprocess import to_bgr
from liveaffect.runtime.detectors.base import DetectorError, is_empty
from liveaffect.types import Detection

HF_REPO = "AdamCodd/YOLOv11n-face-detection"
HF_FILENAME = "model.pt"
INSTALL_HINT = "pip install -r requirements-yolo.txt"
PROBE_TIMEOUT_S = 3.0


def _numpy(x: Any) -> np.ndarray:
    """A torch tensor (any device) or array-like as a NumPy array."""
    if hasattr(x, "detach"):
        x = x.detach()
    if hasattr(x, "cpu"):
        x = x.cpu()
    return np.asarray(x)


def _hub_reachable(endpoint: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when a TCP connection to the hub endpoint opens within ``timeout_s``."""
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def download_weights(repo_id: str = HF_REPO, filename: str = HF_FILENAME) -> str:
    """Return the local path of the YOLO face weights, downloading them once if needed.

    Raises:
        DetectorError: huggingface-hub is missing, or the file is neither cached nor reachable.
    """
    try:
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as exc:
        raise DetectorError(
            f"downloading the YOLO face weights needs huggingface-hub; run: {INSTALL_HINT}, "
            "or pass --detector-weights FILE"
        ) from exc
    offline_msg = (
        f"cannot download the YOLO face weights ({repo_id}/{filename}; offline?); "
        "pass --detector-weights FILE"
    )
    try:
        return hf_hub_download(repo_id, filename, local_files_only=True)
    except (LocalEntryNotFoundError, OSError):
        pass
    if constants.HF_HUB_OFFLINE or not _hub_reachable(constants.ENDPOINT):
        raise DetectorError(offline_msg)
    try:
        return hf_hub_download(repo_id, filename, etag_timeout=PROBE_TIMEOUT_S)
    except Exception as exc:  # network, HTTP and cache errors all mean the same to the user
        raise DetectorError(f"{offline_msg} ({type(exc).__name__})") from exc


def face_class_ids(names: dict[int, str] | list[str] | None) -> set[int] | None:
    """Class ids to keep: all for a one-class model, else those named "face", else class 0."""
    if names is None:
        return None
    items = dict(enumerate(names)) if isinstance(names, (list, tuple)) else dict(names)
    if len(items) <= 1:
        return None
    faces = {int(k) for k, v in items.items() if str(v).strip().lower() == "face"}
    return faces or {0}


class YoloFaceDetector:
    """Adapter from an ultralytics YOLO model to ``detect(frame_bgr) -> list[Detection]``.

    Args:
        model: an ``ultralytics.YOLO`` object, or the path of a local ``.pt`` file.
        min_score: detections below this confidence are dropped, in [0, 1].
        imgsz: inference size in pixels (the model letterboxes the frame to it).
        device: torch device string ("cpu", "cuda:0"); None lets ultralytics choose.

    Raises:
        ValueError: a bad option.
        DetectorError: ultralytics is missing, or a weights file cannot be loaded.
    """

    def __init__(
        self,
        model: Any,
        min_score: float = 0.5,
        imgsz: int = 640,
        device: str | None = None,
    ) -> None:
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1]; got {min_score}")
        if imgsz < 32:
            raise ValueError(f"imgsz must be >= 32; got {imgsz}")
        if isinstance(model, (str, os.PathLike)):
            model = _load_model(Path(model))
        self.model = model
        self.min_score = float(min_score)
        self.imgsz = int(imgsz)
        self.device = device
        self.keep_classes = face_class_ids(getattr(model, "names", None))

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Find faces in a grey, BGR or BGRA frame; boxes in frame pixels, best first."""
        if is_empty(frame_bgr):
            return []
        bgr = to_bgr(frame_bgr)
        results = self.model.predict(
            bgr, conf=self.min_score, imgsz=self.imgsz, device=self.device, verbose=False
        )
        return self.to_detections(results[0], bgr.shape[:2])

    def to_detections(self, result: Any, frame_hw: tuple[int, int]) -> list[Detection]:
        """Convert one ultralytics ``Results`` (``.boxes.xyxy/conf/cls``) to Detections."""
        boxes = result.boxes
        if boxes is None or len(boxes.conf) == 0:
            return []
        xyxy = _numpy(boxes.xyxy).reshape(-1, 4).astype(np.float64)
        conf = _numpy(boxes.conf).reshape(-1).astype(np.float64)
        keep = np.isfinite(xyxy).all(1) & np.isfinite(conf) & (conf >= self.min_score)
        if self.keep_classes is not None and getattr(boxes, "cls", None) is not None:
            cls = _numpy(boxes.cls).reshape(-1).astype(int)
            keep &= np.isin(cls, list(self.keep_classes))
        kps = getattr(result, "keypoints", None)
        kps_xy = None
        if kps is not None and getattr(kps, "xy", None) is not None:
            kps_xy = _numpy(kps.xy)
        h, w = frame_hw
        xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, w)
        xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, h)
        keep &= (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        detections = []
        for i in np.flatnonzero(keep)[np.argsort(-conf[keep], kind="stable")]:
            points = kps_xy[i].astype(np.float32) if kps_xy is not None else None
            box = tuple(float(v) for v in xyxy[i])
            detections.append(Detection(box, float(conf[i]), points))  # type: ignore[arg-type]
        return detections


def _load_model(path: Path) -> Any:
    """Load a local ``.pt`` with ultralytics (never lets it download a missing file)."""
    try:
        from ultralytics import YOLO
    except ImportError as exc:
        raise DetectorError(f"the yolo detector needs ultralytics; run: {INSTALL_HINT}") from exc
    if not path.is_file():
        raise DetectorError(f"YOLO weights not found: {path}")
    try:
        return YOLO(str(path))
    except Exception as exc:  # ultralytics raises many kinds for a bad file
        raise DetectorError(f"cannot load YOLO weights {path}: {exc}") from exc


def load_yolo_detector(
    weights: str | os.PathLike | None = None, min_score: float = 0.5, **kw: Any
) -> Any:
    """Build the app's YOLO face detector, which never imports PyTorch in this process.

    A ``.pt`` (local, or ``HF_REPO/HF_FILENAME`` downloaded once) is exported to ONNX in a
    child process and cached (:func:`~liveaffect.runtime.detectors.yolo_onnx.export_onnx`);
    an ``.onnx`` export is used as is. Both run with ONNX Runtime
    (:class:`~liveaffect.runtime.detectors.yolo_onnx.YoloOnnxDetector`), so the detector
    lives safely beside TensorFlow (TensorFlow and the ``triton`` that PyTorch's CUDA builds
    bring crash when imported in one process). :class:`YoloFaceDetector` runs a model with
    ultralytics itself, for processes without TensorFlow.

    Args:
        weights: a local ``.pt`` or ``.onnx`` file; None downloads (once) the hub's ``.pt``.
        min_score: detections below this confidence are dropped.
        **kw: ``imgsz`` (export size, default 640) and ``num_threads``; ``device`` is
            accepted and ignored (ONNX Runtime runs on the CPU).

    Raises:
        DetectorError: a weights file that is neither .pt nor .onnx, a missing file, a
            missing optional package, or no network and no cached copy.
    """
    import importlib.util

    from liveaffect.runtime.detectors.yolo_onnx import YoloOnnxDetector, export_onnx

    path = Path(weights) if weights is not None else None
    if path is not None and path.suffix.lower() not in (".pt", ".onnx"):
        raise DetectorError(
            f"YOLO weights must be an ultralytics .pt file or its .onnx export; got {path.name}"
        )
    needs_export = path is None or path.suffix.lower() == ".pt"
    if needs_export and importlib.util.find_spec("ultralytics") is None:
        raise DetectorError(f"the yolo detector needs ultralytics; run: {INSTALL_HINT}")
    if path is None:
        path = Path(download_weights())
    if not path.is_file():
        raise DetectorError(f"YOLO weights not found: {path}")
    onnx = export_onnx(path, int(kw.get("imgsz", 640))) if needs_export else path
    return YoloOnnxDetector(onnx, min_score=min_score, threads=kw.get("num_threads"))
