"""Face detectors: the real BlazeFace models on real clips, odd frames, NMS and anchors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from liveaffect.errors import OptionError
from liveaffect.preprocess import to_bgr
from liveaffect.runtime.detectors import (
    DEFAULT_MIN_SCORE,
    DETECTORS,
    DetectorError,
    DetectorOptions,
    create_detector,
)
from liveaffect.runtime.detectors.blazeface import (
    MODELS,
    BlazeFaceDetector,
    model_dir,
    shrink,
    ssd_anchors,
    weighted_nms,
)
from liveaffect.runtime.detectors.nms import merge_detections, same_face
from liveaffect.runtime.tracker import iou_matrix
from liveaffect.types import Detection, FaceDetector

VIDEOS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos"


def read_frames(name: str, step: int = 1) -> list[np.ndarray]:
    path = VIDEOS / name
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    capture = cv2.VideoCapture(str(path))
    frames, i = [], 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(frame)
        i += 1
    capture.release()
    return frames


@pytest.fixture(scope="module")
def detector() -> BlazeFaceDetector:
    return create_detector()


@pytest.fixture(scope="module")
def face_frame() -> np.ndarray:
    return read_frames("pyfeat_single_face.mp4", step=24)[1]


def assert_in_frame(detections: list[Detection], frame: np.ndarray) -> None:
    h, w = frame.shape[:2]
    for d in detections:
        x1, y1, x2, y2 = d.xyxy
        assert all(isinstance(v, float) and np.isfinite(v) for v in d.xyxy)
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert 0.0 <= d.score <= 1.0
        assert d.keypoints.shape == (6, 2) and np.isfinite(d.keypoints).all()


def test_create_detector_defaults_to_blazeface(detector):
    assert isinstance(detector, FaceDetector)
    assert isinstance(detector, BlazeFaceDetector) and detector.model == "both"
    assert DETECTORS == ("blazeface", "yolo")
    assert detector.min_score == DEFAULT_MIN_SCORE == DetectorOptions().min_score == 0.65


def test_unknown_detector_lists_choices():
    with pytest.raises(OptionError, match=r"unknown face detector 'haar'.*blazeface, yolo"):
        create_detector("haar")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "haar"}, "--detector: unknown face detector 'haar'"),
        ({"weights": "/no/such/w.pt"}, "--detector: no such file: /no/such/w.pt"),
        ({"min_score": 1.5}, "--detector must be in [0, 1], got 1.5"),
        ({"threads": 0}, "--detector must be 1 or more, got 0"),
    ],
)
def test_detector_options_name_the_field_or_a_flag(kwargs, message):
    with pytest.raises(OptionError) as caught:
        DetectorOptions(**kwargs)
    assert caught.value.name == next(iter(kwargs))
    assert caught.value.for_flag("--detector").startswith(message)
    assert DetectorOptions(" YOLO ").name == "yolo"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model": "medium"}, "model"),
        ({"min_score": 1.5}, "min_score"),
        ({"num_threads": 0}, "num"),
    ],
)
def test_bad_options_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        BlazeFaceDetector(**kwargs)


def test_missing_or_bad_weights(tmp_path):
    with pytest.raises(DetectorError, match="not found"):
        create_detector(weights=str(tmp_path))
    bogus = tmp_path / "face.tflite"
    bogus.write_text("not a model")
    with pytest.raises(DetectorError, match="cannot load"):
        BlazeFaceDetector(model="short", weights=bogus)
    text = tmp_path / "notes.txt"  # a file, but no .tflite: not taken for a folder
    text.write_text("x")
    with pytest.raises(DetectorError, match=r"or one \.tflite file; got the file .*notes\.txt"):
        create_detector(weights=str(text))


def test_anchor_counts_match_the_model_outputs():
    short, full = MODELS["short"], MODELS["full"]
    a = ssd_anchors(short.input_size, short.strides, short.anchors_per_cell)
    b = ssd_anchors(full.input_size, full.strides, full.anchors_per_cell)
    assert a.shape == (896, 2) and b.shape == (2304, 2)
    # 16x16 grid with 2 anchors per cell, x varying fastest, then an 8x8 grid with 6.
    np.testing.assert_allclose(a[:3], [[1 / 32, 1 / 32], [1 / 32, 1 / 32], [3 / 32, 1 / 32]])
    np.testing.assert_allclose(a[512], [1 / 16, 1 / 16])
    np.testing.assert_allclose(b[48], [1 / 96, 3 / 96])
    assert (a > 0).all() and (a < 1).all() and (b > 0).all() and (b < 1).all()


def test_weighted_nms_blends_overlaps_and_keeps_separate_faces():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    kps = np.zeros((3, 6, 2))
    kps[1] += 3.0
    scores = np.array([0.9, 0.6, 0.7])
    out = weighted_nms(boxes, kps, scores, iou_threshold=0.3)
    assert [s for _, _, s in out] == [0.9, 0.7]
    np.testing.assert_allclose(out[0][0], [0.4, 0, 10.4, 10])  # (0*.9 + 1*.6) / 1.5
    np.testing.assert_allclose(out[0][1], np.full((6, 2), 1.2))
    np.testing.assert_allclose(out[1][0], [50, 50, 60, 60])


def _det(box, score):
    return Detection(tuple(float(v) for v in box), score, np.zeros((6, 2), np.float32))


# Real boxes of the 1080p crowd clip (frame, default detector): one face seen by a follow
# window (short range) and by the whole frame's full range 35-50 px higher (IoU 0.27-0.30);
# and two different faces, one half behind the other, that must stay two (crowd_*.csv of
# the app, boxes rounded to 0.1 px).
ONE_FACE = [
    ((697.0, 574.1, 785.6, 662.7), 0.85, (677.5, 535.5, 767.6, 625.6), 0.68),  # frame 6: ids 1, 3
    ((869.3, 683.2, 971.8, 785.6), 0.95, (825.0, 650.4, 931.8, 757.1), 0.68),  # 72: ids 13, 4
    ((489.4, 621.5, 594.1, 726.2), 0.80, (469.1, 568.0, 581.7, 680.6), 0.65),  # 75: ids 1, 15
    ((769.4, 664.8, 881.5, 776.9), 0.95, (736.0, 605.6, 864.4, 734.0), 0.69),  # 93: ids 13, 16
    # frame 45 with --min-face-score 0.5: track 2 took the lower box, the face became id 18
    ((582.0, 616.0, 677.0, 711.1), 0.78, (544.4, 568.5, 654.5, 678.6), 0.51),
]
TWO_FACES = [
    ((914.1, 642.6, 996.5, 725.0), 0.90, (892.7, 650.2, 938.0, 695.5), 0.83),  # 9: a woman
    ((1118.8, 691.2, 1187.1, 759.4), 0.94, (1078.4, 661.1, 1150.1, 732.8), 0.77),  # 51: a man
]


@pytest.mark.parametrize("box, score, other, other_score", ONE_FACE)
def test_merging_passes_keeps_one_box_for_a_face_that_two_models_place_apart(
    box, score, other, other_score
):
    """The whole frame's full-range box of a small face, 0.3-0.5 of a face off the follow
    window's short-range box (IoU <= 0.3, the weighted NMS's rule), is the same face: each
    box's centre lies inside the other. The better box stays, unchanged."""
    assert iou_matrix([box], [other])[0, 0] <= 0.3
    assert same_face(box, other)[0, 0]
    merged = merge_detections([_det(other, other_score), _det(box, score)])
    assert len(merged) == 1 and merged[0].score == score
    np.testing.assert_allclose(merged[0].xyxy, box)


@pytest.mark.parametrize("box, score, other, other_score", TWO_FACES)
def test_merging_passes_keeps_two_overlapping_faces_apart(box, score, other, other_score):
    assert not same_face(box, other)[0, 0]
    assert len(merge_detections([_det(box, score), _det(other, other_score)])) == 2


def test_same_face_is_iou_above_the_nms_rule_or_centres_inside_each_other():
    boxes = np.array([[0, 0, 10, 10], [4, 4, 14, 14], [6, 0, 16, 10], [2, 2, 8, 8]], float)
    same = same_face(boxes, boxes)
    assert same.diagonal().all() and (same == same.T).all()
    assert same[0, 1]  # IoU 0.22, but each centre inside the other
    assert not same[0, 2]  # side by side, IoU 0.25: 2's centre (11, 5) is outside 0
    assert same[0, 3]  # one inside the other
    assert same_face(np.zeros((0, 4)), boxes).shape == (0, 4)


@pytest.mark.shared
def test_the_crowd_clip_has_one_box_per_face():
    """The default detector on the crowd clip's frames up to 94 (the audit's frames 6, 72, 75
    and 93 had two boxes, and two track ids, on one face): no two boxes of a frame are the
    same face."""
    detector = create_detector()
    for i, frame in enumerate(read_frames("facenet_pytorch_video.mp4")[:94]):
        boxes = [d.xyxy for d in detector.detect(frame)]
        same = same_face(boxes, boxes)
        np.fill_diagonal(same, False)
        assert not same.any(), (i, boxes)


@pytest.mark.shared
def test_finds_the_face_in_nearly_every_frame(detector):
    frames = read_frames("pyfeat_single_face.mp4")
    counts = []
    for frame in frames:
        found = detector.detect(frame)
        assert_in_frame(found, frame)
        counts.append(len(found))
    assert np.mean(np.array(counts) >= 1) >= 0.9
    assert np.mean(np.array(counts) == 1) >= 0.9


@pytest.mark.shared
def test_finds_several_small_faces_in_the_crowd_clip(detector):
    frames = read_frames("facenet_pytorch_video.mp4", step=5)
    counts = [len(detector.detect(frame)) for frame in frames]
    assert max(counts) >= 3
    assert sum(c >= 2 for c in counts) >= 3


@pytest.mark.shared
@pytest.mark.parametrize("model", ["both", "short", "full", "auto"])
def test_every_model_finds_a_webcam_face(model, face_frame):
    found = BlazeFaceDetector(model=model).detect(face_frame)
    assert len(found) == 1 and found[0].score > 0.7
    assert_in_frame(found, face_frame)
    x1, y1, x2, y2 = found[0].xyxy
    assert 40 < x2 - x1 < 400  # a face, not the whole frame
    kp = found[0].keypoints
    assert (kp[:, 0] > x1 - 10).all() and (kp[:, 0] < x2 + 10).all()
    assert (kp[:, 1] > y1 - 10).all() and (kp[:, 1] < y2 + 10).all()


@pytest.mark.shared
def test_boxes_are_in_frame_pixels(detector, face_frame):
    (base,) = detector.detect(face_frame)
    padded = cv2.copyMakeBorder(face_frame, 0, 0, 200, 0, cv2.BORDER_CONSTANT)  # 200 px left
    (shifted,) = detector.detect(padded)
    np.testing.assert_allclose(shifted.xyxy, np.add(base.xyxy, [200, 0, 200, 0]), atol=12)
    big = cv2.resize(face_frame, None, fx=2, fy=2)
    (scaled,) = detector.detect(big)
    np.testing.assert_allclose(scaled.xyxy, np.multiply(base.xyxy, 2), atol=16)


@pytest.mark.shared
@pytest.mark.parametrize("convert", [cv2.COLOR_BGR2GRAY, cv2.COLOR_BGR2BGRA])
def test_grey_and_bgra_frames_still_find_the_face(detector, face_frame, convert):
    frame = cv2.cvtColor(face_frame, convert)
    found = detector.detect(frame)
    assert len(found) == 1
    assert_in_frame(found, frame)


def test_blank_frames_have_no_face(detector):
    assert detector.detect(np.zeros((360, 640, 3), np.uint8)) == []
    assert detector.detect(np.full((480, 640, 3), 255, np.uint8)) == []


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((5, 7, 3), np.uint8),
        np.full((5, 7), 128, np.uint8),
        np.full((1, 1, 3), 9, np.uint8),
        np.random.default_rng(0).integers(0, 255, (333, 517, 3), dtype=np.uint8),
        np.random.default_rng(1).integers(0, 255, (1001, 37, 4), dtype=np.uint8),
        np.random.default_rng(2).integers(0, 255, (17, 999, 1), dtype=np.uint8),
        np.random.default_rng(3).random((64, 48, 3)) * 255.0,
    ],
    ids=["empty", "7x5", "grey7x5", "1x1", "odd", "tall-bgra", "wide-1ch", "float"],
)
@pytest.mark.parametrize("model", ["both", "full", "short"])
def test_odd_frames_do_not_crash(frame, model):
    found = BlazeFaceDetector(model=model).detect(frame)
    assert isinstance(found, list)
    if found:
        assert_in_frame(found, frame)


def test_to_bgr_rejects_non_images():
    with pytest.raises(ValueError, match="shape"):
        to_bgr(np.zeros((4, 4, 5), np.uint8))


def test_weights_folder_and_single_file():
    folder = model_dir()
    assert BlazeFaceDetector(weights=folder).model == "both"
    single = BlazeFaceDetector(model="short", weights=folder / MODELS["short"].filename)
    assert single.detect(np.zeros((10, 10, 3), np.uint8)) == []


@pytest.mark.skipif(importlib.util.find_spec("ultralytics") is not None, reason="has ultralytics")
def test_yolo_without_ultralytics_says_how_to_install():
    with pytest.raises(DetectorError, match=r"pip install -r requirements-yolo\.txt"):
        create_detector("yolo")


def _tight_crop(frame: np.ndarray, det: Detection, size: int = 256) -> np.ndarray:
    """The face box, squared and barely enlarged, resized to ``size``: the face fills it."""
    x1, y1, x2, y2 = det.xyxy
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * 0.525
    h, w = frame.shape[:2]
    a, b = int(max(0, cx - half)), int(max(0, cy - half))
    c, d = int(min(w, cx + half)), int(min(h, cy + half))
    return cv2.resize(frame[b:d, a:c], (size, size), interpolation=cv2.INTER_CUBIC)


@pytest.fixture(scope="module")
def close_ups() -> dict[str, list[np.ndarray]]:
    """Faces that fill the frame: CK+ faces upscaled to 256 px, tight crops of the clips."""
    import csv

    root = VIDEOS.parent / "ckplus_au"
    if not root.exists():
        pytest.skip(f"shared data not present: {root}")
    rows = list(csv.DictReader((root / "labels.csv").open()))[::3]
    ck = [
        cv2.resize(cv2.imread(str(root / r["path"])), (256, 256), interpolation=cv2.INTER_CUBIC)
        for r in rows
    ]
    finder = BlazeFaceDetector(model="full", min_score=0.6)
    clips = []
    for name in (
        "pyfeat_single_face.mp4",
        "pyfeat_WolfgangLanger_Pexels.mp4",
        "pyfeat_face_noface.mov",
        "facenet_pytorch_video.mp4",
    ):
        for frame in read_frames(name, step=8):
            clips += [_tight_crop(frame, d) for d in finder.detect(frame)]
    return {"ckplus": ck, "clips": clips}


@pytest.mark.shared
def test_default_detector_finds_faces_that_fill_the_frame(detector, close_ups):
    """>= 97% of close-ups found by the default; full range alone (the old default) misses
    most of them."""
    found = {k: [bool(detector.detect(im)) for im in v] for k, v in close_ups.items()}
    everything = found["ckplus"] + found["clips"]
    assert len(found["ckplus"]) >= 200 and len(found["clips"]) >= 100
    assert np.mean(everything) >= 0.97, {k: np.mean(v) for k, v in found.items()}
    # "auto" tries the same bordered frame when neither model finds the face (0.88 of the
    # clips' close-ups without that retry, as short range alone)
    auto = BlazeFaceDetector(model="auto")
    assert np.mean([bool(auto.detect(im)) for im in close_ups["clips"]]) >= 0.97
    full = BlazeFaceDetector(model="full")
    assert np.mean([bool(full.detect(im)) for im in close_ups["ckplus"]]) < 0.6


@pytest.mark.shared
@pytest.mark.parametrize(("height", "frame_size"), [(24, (320, 180)), (40, (640, 360))])
def test_the_whole_frame_alone_finds_faces_from_7_percent(face_frame, height, frame_size):
    """The whole-frame search (``--no-small-faces``) finds faces down to about 7% of the
    frame's longer side (24 px in 320x180, 40 px in 640x360; the full-range model sees the
    frame at 192 px). Smaller faces: tests/runtime/test_small_faces.py."""
    detector = BlazeFaceDetector(small_faces="off")
    (face,) = detector.detect(face_frame)
    scale = height / face.height
    small = cv2.resize(face_frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    w, h = frame_size
    canvas = np.full((h, w, 3), 127, np.uint8)
    canvas[: min(h, small.shape[0]), : min(w, small.shape[1])] = small[:h, :w]
    found = detector.detect(canvas)
    assert len(found) == 1 and 0.7 * height < found[0].height < 1.3 * height


def test_yolo_weights_that_are_not_pt_or_onnx_get_a_clear_error(tmp_path):
    weights = tmp_path / "face.h5"
    weights.write_bytes(b"\x89HDF")
    with pytest.raises(DetectorError, match=r"must be an ultralytics \.pt file or its \.onnx"):
        create_detector("yolo", weights=str(weights))


def test_yolo_onnx_output_is_decoded_into_frame_boxes():
    """The ONNX export's (4 + classes, anchors) output: letterbox undone, NMS, best first."""
    from liveaffect.runtime.detectors.yolo_onnx import YoloOnnxDetector

    det = object.__new__(YoloOnnxDetector)
    det.min_score, det.face_classes, det.size = 0.5, None, 640
    # a 1280x720 frame letterboxed into 640: scale 0.5, 140 px of padding above
    out = np.array(
        [
            [320.0, 320.0, 100.0, 100.0, 0.9],  # a face in the middle
            [322.0, 321.0, 100.0, 100.0, 0.8],  # the same face again (suppressed)
            [100.0, 200.0, 40.0, 60.0, 0.7],  # a second face
            [500.0, 500.0, 50.0, 50.0, 0.2],  # below the score
        ]
    )
    found = det._decode(out, 0.5, 0, 140, 1280, 720)
    assert [round(d.score, 2) for d in found] == [0.9, 0.7]
    np.testing.assert_allclose(found[0].xyxy, (540.0, 260.0, 740.0, 460.0))
    np.testing.assert_allclose(found[1].xyxy, (160.0, 60.0, 240.0, 180.0))


def test_blazeface_model_reaches_the_detector_from_live_and_analyze():
    """``--blazeface-model`` is one shared flag: live's and analyze's detectors run the
    models it names; ``both`` by default; other detectors and unknown names are refused."""
    from conftest import detector_options_from_flags

    from liveaffect.runtime.detectors import build_detector
    from liveaffect.runtime.options import LiveOptions

    for argv, model in (([], "both"), (["--blazeface-model", "auto"], "auto")):
        options, live = detector_options_from_flags(argv)
        assert options.model == model
        assert live.model == model
        assert build_detector(options).model == model
    with pytest.raises(ValueError, match="--blazeface-model is for the blazeface detector"):
        LiveOptions(source=0, display=False, detector="yolo", blazeface_model="short")
    with pytest.raises(OptionError, match="must be one of both, short, full, auto"):
        DetectorOptions(model="fast")
    # one .tflite file is one model: the flag says which (it could not be said before it)
    short = model_dir() / MODELS["short"].filename
    with pytest.raises(ValueError, match="--blazeface-model must be short or full with one"):
        LiveOptions(source=0, display=False, detector_weights=short)
    options = LiveOptions(source=0, display=False, detector_weights=short, blazeface_model="short")
    assert build_detector(options.detector_options).model == "short"


def test_full_range_every_reaches_the_detector_from_live_and_analyze():
    """``--full-range-every`` is one shared flag: 4 by default, 1 for every frame; a bad
    value is refused naming the flag, and it is refused for the YOLO detector."""
    from conftest import detector_options_from_flags

    from liveaffect.runtime.detectors import FULL_RANGE_EVERY, build_detector
    from liveaffect.runtime.options import LiveOptions

    for argv, every in (([], FULL_RANGE_EVERY), (["--full-range-every", "1"], 1)):
        options, live = detector_options_from_flags(argv)
        assert options.full_range_every == live.full_range_every == every
        assert build_detector(options).full_range_every == every
    for bad in ("0", "-2"):
        with pytest.raises(ValueError, match="--full-range-every must be 1 or more"):
            detector_options_from_flags(["--full-range-every", bad])
    with pytest.raises(ValueError, match="--full-range-every must be an integer"):
        detector_options_from_flags(["--full-range-every", "two"])
    with pytest.raises(ValueError, match="--full-range-every is for the blazeface detector"):
        LiveOptions(source=0, display=False, detector="yolo", full_range_every=2)


@pytest.mark.shared
def test_auto_runs_full_range_only_on_frames_where_short_range_finds_none(face_frame):
    """``auto``: a face at the camera costs short range alone; an empty frame tries both."""
    detector = BlazeFaceDetector(model="auto", small_faces="off")
    full = detector._models["full"]
    calls = []
    detector._models["full"] = lambda bgr, score: calls.append(1) or full(bgr, score)
    assert len(detector.detect(face_frame)) == 1 and calls == []
    assert detector.detect(np.zeros((360, 640, 3), np.uint8)) == [] and calls == [1]


def _counting_full_range(detector: BlazeFaceDetector) -> list[int]:
    """Count the detector's whole-frame full-range searches (tiles have their own model)."""
    full, calls = detector._models["full"], []
    detector._models["full"] = lambda bgr, score: calls.append(1) or full(bgr, score)
    return calls


def _matched(a: Detection, b: Detection) -> bool:
    return iou_matrix([a.xyxy], [b.xyxy])[0, 0] > 0.5


@pytest.mark.shared
@pytest.mark.parametrize(
    "clip, small_faces",
    [
        ("pyfeat_WolfgangLanger_Pexels.mp4", "video"),
        ("facenet_pytorch_video.mp4", "video"),
        ("facenet_pytorch_video.mp4", "off"),
    ],
)
def test_both_in_a_video_finds_every_face_that_full_range_on_every_frame_finds(clip, small_faces):
    """``both`` on a video: full range on every 4th frame while short range finds the
    person at the camera (a quarter of the searches), on every frame of the crowd clip,
    whose small faces short range never finds (also without the small-face windows), and
    the same faces as full range on every frame, with short range's box for a face it finds
    (no jump every 4th frame)."""
    frames = read_frames(clip)[:60]
    every = BlazeFaceDetector(full_range_every=1, small_faces=small_faces)
    scheduled = BlazeFaceDetector(small_faces=small_faces)
    assert scheduled.full_range_every == 4
    calls = _counting_full_range(scheduled)
    short_only = BlazeFaceDetector(model="short", small_faces="off")
    for frame in frames:
        reference, found = every.detect(frame), scheduled.detect(frame)
        assert len(found) == len(reference)
        assert all(any(_matched(r, f) for f in found) for r in reference)
        near = short_only.detect(frame)
        if clip.startswith("pyfeat"):
            assert len(near) == 1
            np.testing.assert_allclose(found[0].xyxy, near[0].xyxy, atol=1.0)
    if clip.startswith("pyfeat"):
        assert len(calls) == 15  # frames 0, 4, 8 ... 56
    else:
        assert len(calls) == len(frames) and found  # the crowd's last frame has faces


def _two_faces(face_frame: np.ndarray, far: bool) -> np.ndarray:
    """A 1280x720 frame: the webcam face near the camera, and (``far``) a smaller copy of it
    at the right edge, 17% of the frame's width: too large for a follow window."""
    canvas = cv2.resize(face_frame, (1280, 720))
    if far:
        crop = cv2.resize(face_frame[77:330, 163:416], None, fx=1.2, fy=1.2)
        h, w = crop.shape[:2]
        canvas[300 : 300 + h, 1260 - w : 1260] = crop
    return canvas


@pytest.mark.shared
def test_both_brings_full_range_back_for_a_face_short_range_loses(face_frame):
    """A face that only full range finds (here short range is made blind to the right half
    of the frame): found on the first frame, then on every frame, because short range
    missing a face of the previous frame brings full range back at once; a new one that
    appears between full-range frames is found at the next one (frame 4)."""
    detector = BlazeFaceDetector()
    short = detector._models["short"]
    detector._models["short"] = lambda bgr, score: [
        d for d in short(bgr, score) if d.xyxy[0] < 800 or bgr.shape[1] < 1280
    ]
    calls = _counting_full_range(detector)
    scene = [_two_faces(face_frame, far=False)] * 2 + [_two_faces(face_frame, far=True)] * 8
    counts = [len(detector.detect(frame)) for frame in scene]
    assert counts[:2] == [1, 1] and counts[4:] == [2] * 6, counts
    assert len(calls) == 1 + 6  # frame 0, then every frame from frame 4 on
    detector.reset()
    calls.clear()
    assert [len(detector.detect(_two_faces(face_frame, far=True))) for _ in range(5)] == [2] * 5
    assert len(calls) == 5


@pytest.mark.shared
def test_both_searches_the_small_face_tile_beside_short_range_when_full_range_rests(face_frame):
    """On a video's frames without full range the side thread is free, so the small-face
    tile is searched there while short range searches the whole frame; on full-range frames
    it stays on the calling thread (the side thread runs full range). Same faces either way."""
    import threading

    from liveaffect.runtime.detectors.small_faces import frames_per_tile, tile_grid

    frame = cv2.resize(face_frame, (1280, 720))
    every = frames_per_tile(len(tile_grid(1280, 720)))  # a tile every 2nd frame at 720p
    detector = BlazeFaceDetector()
    tiles, threads = detector._tiles, []

    def tile_search(bgr, score):
        threads.append((detector._frames - 1, threading.current_thread().name))
        return tiles(bgr, score)

    detector._tiles = tile_search
    counts = [len(detector.detect(frame)) for _ in range(13)]
    assert counts == [1] * 13
    assert [turn for turn, _ in threads] == list(range(0, 13, every))
    side = {turn: name.startswith("blazeface-short") for turn, name in threads}
    assert side == {turn: turn % 4 != 0 for turn in side}  # full range on 0, 4, 8, 12
    assert 2 <= sum(side.values()) <= len(side) - 2


@pytest.mark.parametrize("every", [0, -1])
def test_a_bad_full_range_schedule_is_refused(every):
    with pytest.raises(ValueError, match="full_range_every must be >= 1"):
        BlazeFaceDetector(full_range_every=every)
    with pytest.raises(OptionError, match="must be 1 or more"):
        DetectorOptions(full_range_every=every)
    with pytest.raises(OptionError, match="for the blazeface detector"):
        DetectorOptions("yolo", full_range_every=2)


def test_iou_matrix_edge_cases():
    """The tracker's IoU, which the detector's schedule uses too: touching boxes and empty
    boxes do not overlap."""
    assert iou_matrix([(0, 0, 10, 10)], [(0, 0, 10, 10)])[0, 0] == 1.0
    assert iou_matrix([(0, 0, 10, 10)], [(10, 0, 20, 10)])[0, 0] == 0.0  # touching
    assert iou_matrix([(0, 0, 10, 10)], [(5, 0, 15, 10)])[0, 0] == pytest.approx(50 / 150)
    assert iou_matrix([(0, 0, 0, 0)], [(0, 0, 0, 0)])[0, 0] == 0.0  # empty boxes


@pytest.mark.parametrize("frame_size", [(640, 360), (1280, 720), (1920, 1080), (200, 90)])
@pytest.mark.parametrize("target", [128, 192])
def test_shrink_halves_by_area_then_takes_one_area_step(frame_size, target):
    rng = np.random.default_rng(frame_size[0] + target)
    image = cv2.GaussianBlur(rng.integers(0, 256, (*frame_size[::-1], 3), np.uint8), (0, 0), 2)
    w, h = frame_size
    size = (max(1, round(w * target / max(w, h))), max(1, round(h * target / max(w, h))))
    expected = image
    while expected.shape[1] >= 2 * size[0] and expected.shape[0] >= 2 * size[1]:
        half = (expected.shape[1] // 2, expected.shape[0] // 2)
        expected = cv2.resize(expected, half, interpolation=cv2.INTER_AREA)
    expected = cv2.resize(expected, size, interpolation=cv2.INTER_AREA)
    got = shrink(image, size)
    assert got.shape == (size[1], size[0], 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
    one_step = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    assert np.abs(got.astype(float) - one_step).mean() < 3.0  # the same picture


@pytest.mark.shared
def test_shrink_keeps_a_face_where_one_area_step_puts_it(face_frame, detector, monkeypatch):
    """The short-range model sees the same face in the halved frame as in the one-step one."""
    import liveaffect.runtime.detectors.blazeface as bf

    short = detector._models["short"]
    halved = short(face_frame, DEFAULT_MIN_SCORE)
    monkeypatch.setattr(
        bf, "shrink", lambda image, size: cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    )
    stepped = short(face_frame, DEFAULT_MIN_SCORE)
    assert len(halved) == len(stepped) == 1
    assert iou_matrix([halved[0].xyxy], [stepped[0].xyxy])[0, 0] > 0.9


def test_option_error_for_flags_names_the_mapped_flag_or_the_dashed_field():
    with pytest.raises(OptionError) as caught:
        DetectorOptions(min_score=1.5)
    assert caught.value.for_flags({"min_score": "--min-face-score"}).startswith(
        "--min-face-score must be in [0, 1]"
    )
    with pytest.raises(OptionError) as caught:
        DetectorOptions(threads=0)
    assert caught.value.for_flags({}) == "--threads must be 1 or more, got 0"
