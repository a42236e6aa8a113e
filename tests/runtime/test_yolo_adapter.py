"""The optional YOLO face detector: result conversion, a real yolo11n graph, offline errors.

Needs ``ultralytics`` (``pip install -r requirements-yolo.txt``); skipped without it. No test
downloads anything: the model is built from ultralytics' own ``yolo11n.yaml`` with random
weights, so it finds nothing meaningful; its boxes are only checked for types and ranges.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("ultralytics")
torch = pytest.importorskip("torch")

import huggingface_hub  # noqa: E402
from huggingface_hub import constants  # noqa: E402
from huggingface_hub.errors import LocalEntryNotFoundError  # noqa: E402

from liveaffect.errors import OptionError  # noqa: E402
from liveaffect.runtime.detectors import DetectorError, create_detector  # noqa: E402
from liveaffect.runtime.detectors import yolo as yolo_mod  # noqa: E402
from liveaffect.runtime.detectors.yolo import (  # noqa: E402
    YoloFaceDetector,
    download_weights,
    face_class_ids,
)
from liveaffect.types import Detection, FaceDetector  # noqa: E402


class FakeModel:
    """Returns fixed ultralytics-shaped results and records the predict arguments."""

    def __init__(self, names, xyxy, conf, cls, keypoints=None):
        self.names = names
        boxes = SimpleNamespace(
            xyxy=torch.tensor(xyxy, dtype=torch.float32),
            conf=torch.tensor(conf, dtype=torch.float32),
            cls=torch.tensor(cls, dtype=torch.float32),
        )
        self.result = SimpleNamespace(boxes=boxes, keypoints=keypoints)
        self.calls = []

    def predict(self, image, **kw):
        self.calls.append((image.shape, kw))
        return [self.result]


@pytest.fixture(scope="module")
def random_yolo():
    from ultralytics import YOLO

    return YOLO("yolo11n.yaml")  # architecture only, random weights, no download


def test_converts_boxes_clips_sorts_and_drops_invalid():
    model = FakeModel(
        {0: "face"},
        [[10, 20, 50, 80], [-5, -6, 30, 30], [0, 0, 1000, 1000], [40, 40, 35, 45], [1, 1, 2, 2]],
        [0.6, 0.8, 0.7, 0.95, 0.3],
        [0, 0, 0, 0, 0],
    )
    detector = YoloFaceDetector(model, min_score=0.5, imgsz=320)
    found = detector.detect(np.zeros((100, 200, 3), np.uint8))
    assert [d.score for d in found] == pytest.approx([0.8, 0.7, 0.6])
    assert found[0].xyxy == (0.0, 0.0, 30.0, 30.0)
    assert found[1].xyxy == (0.0, 0.0, 200.0, 100.0)
    assert found[2].xyxy == (10.0, 20.0, 50.0, 80.0)
    assert all(type(v) is float for d in found for v in d.xyxy)
    assert all(d.keypoints is None for d in found)
    shape, kw = model.calls[0]
    assert shape == (100, 200, 3)
    assert kw["conf"] == 0.5 and kw["imgsz"] == 320 and kw["verbose"] is False


def test_keeps_only_face_class_and_keypoints():
    kps = SimpleNamespace(xy=torch.arange(20, dtype=torch.float32).reshape(2, 5, 2))
    model = FakeModel(
        {0: "person", 1: "face"}, [[0, 0, 9, 9], [1, 1, 8, 8]], [0.9, 0.8], [0, 1], kps
    )
    (face,) = YoloFaceDetector(model).detect(np.zeros((10, 10), np.uint8))
    assert face.xyxy == (1.0, 1.0, 8.0, 8.0)
    np.testing.assert_array_equal(face.keypoints, np.arange(10, 20).reshape(5, 2))
    assert model.calls[0][0] == (10, 10, 3)  # grey converted to BGR first


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ({0: "face"}, None),
        (["face"], None),
        ({0: "person", 1: "Face"}, {1}),
        ({0: "person", 1: "car"}, {0}),
        (None, None),
    ],
)
def test_face_class_ids(names, expected):
    assert face_class_ids(names) == expected


def test_no_boxes_means_no_faces():
    model = FakeModel({0: "face"}, np.zeros((0, 4)), [], [])
    assert YoloFaceDetector(model).detect(np.zeros((64, 64, 3), np.uint8)) == []


def test_real_yolo11n_through_the_adapter(random_yolo):
    detector = YoloFaceDetector(random_yolo, min_score=0.0, imgsz=160, device="cpu")
    assert isinstance(detector, FaceDetector)
    assert detector.keep_classes == {0}  # COCO names: keep class 0
    frame = np.random.default_rng(0).integers(0, 255, (90, 160, 3), dtype=np.uint8)
    found = detector.detect(frame)
    assert found, "conf=0 on a random model should return boxes"
    scores = [d.score for d in found]
    assert scores == sorted(scores, reverse=True)
    for d in found:
        assert isinstance(d, Detection) and 0.0 <= d.score <= 1.0
        x1, y1, x2, y2 = d.xyxy
        assert 0 <= x1 < x2 <= 160 and 0 <= y1 < y2 <= 90
    for odd in (np.zeros((5, 7), np.uint8), np.zeros((31, 17, 4), np.uint8), np.zeros((0, 0, 3))):
        assert isinstance(detector.detect(odd), list)


def test_create_detector_loads_a_local_pt_through_onnx(random_yolo, tmp_path):
    """The app's path: the .pt is exported to ONNX in a child process (cached beside it)
    and run with ONNX Runtime; the export's boxes match ultralytics' own on the same frame."""
    from liveaffect.runtime.detectors.yolo_onnx import YoloOnnxDetector

    weights = tmp_path / "face.pt"
    random_yolo.save(str(weights))
    detector = create_detector("yolo", weights=str(weights), min_score=0.9, imgsz=96, device="cpu")
    assert isinstance(detector, YoloOnnxDetector) and detector.min_score == 0.9
    assert list(tmp_path.glob("face.*.96.onnx"))  # cached: the next start skips the export
    assert isinstance(detector.detect(np.zeros((48, 64, 3), np.uint8)), list)
    frame = np.random.default_rng(3).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    onnx = create_detector("yolo", weights=str(weights), min_score=0.0, imgsz=96)
    ref = YoloFaceDetector(random_yolo, min_score=0.0, imgsz=96, device="cpu")
    got, want = onnx.detect(frame), ref.detect(frame)
    assert got and want  # the best box agrees (ultralytics' NMS is per class, ours is not)
    np.testing.assert_allclose(got[0].xyxy, want[0].xyxy, atol=2.0)
    assert abs(got[0].score - want[0].score) < 1e-3


_BESIDE_TF = """
import sys
import numpy as np
import tensorflow as tf
from liveaffect.runtime.detectors import create_detector
detector = create_detector("yolo", weights=sys.argv[1], min_score=0.0, imgsz=96)
tf.constant(1.0) + 1.0
found = detector.detect(np.zeros((90, 160, 3), np.uint8))
print("torch-imported" if "torch" in sys.modules else "no-torch", len(found) >= 0)
"""


def test_yolo_runs_beside_tensorflow_in_one_process(random_yolo, tmp_path):
    """The crash this avoids: TensorFlow and triton (from PyTorch) in one process."""
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed in this environment")
    weights = tmp_path / "face.pt"
    random_yolo.save(str(weights))
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", _BESIDE_TF, str(weights)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]  # -11 was the SIGSEGV
    assert proc.stdout.split()[-2:] == ["no-torch", "True"]


def test_missing_or_bad_pt(tmp_path):
    # a missing file is refused when the options are checked, before YOLO loads
    with pytest.raises(OptionError, match="no such file"):
        create_detector("yolo", weights=str(tmp_path / "missing.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DetectorError, match="cannot load YOLO weights"):
        create_detector("yolo", weights=str(bad))


def test_offline_without_weights_is_one_sentence(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    start = time.monotonic()
    with pytest.raises(DetectorError, match=r"offline\?\); pass --detector-weights FILE"):
        create_detector("yolo", weights=None)
    assert time.monotonic() - start < 2


def test_download_failure_is_one_sentence(monkeypatch):
    calls = []

    def no_network(repo_id, filename, **kw):
        calls.append(kw)
        raise LocalEntryNotFoundError("no connection")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(yolo_mod, "_hub_reachable", lambda endpoint: True)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    with pytest.raises(DetectorError, match="cannot download the YOLO face weights"):
        download_weights()
    assert calls[0].get("local_files_only") is True  # the cache is tried first
    assert calls[1].get("etag_timeout", 99) <= 5


def test_unknown_repo_fails_fast_for_real():
    start = time.monotonic()
    with pytest.raises(DetectorError, match="cannot download"):
        download_weights("liveaffect-tests/no-such-repo", "none.pt")
    assert time.monotonic() - start < 10
