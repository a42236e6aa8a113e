"""The small-face search: tile grids, follow windows, cut faces, and the real detector."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from liveaffect.runtime.detectors.blazeface import BlazeFaceDetector
from liveaffect.runtime.detectors.small_faces import (
    FOLLOW_SIDE,
    TILE_OVERLAP,
    TILE_SIDE,
    detections_in,
    follow_window,
    follow_windows,
    frames_per_tile,
    tile_grid,
)
from liveaffect.types import Detection
from tests.runtime.test_detectors import read_frames

SIZES = [(640, 360), (640, 480), (1280, 720), (1920, 1080), (480, 640), (1000, 200)]


def _inside(box, tile) -> bool:
    x, y, w, h = tile
    return box[0] >= x and box[1] >= y and box[2] <= x + w and box[3] <= y + h


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_every_face_below_the_whole_frame_floor_lies_whole_in_a_tile_it_fills_enough(width, height):
    """A face of 24 px up to 7.5% of the frame's longer side (the whole frame's floor) is
    inside some tile and at least 7.5% of that tile's side (what full range finds)."""
    tiles = tile_grid(width, height)
    rng = np.random.default_rng(width + height)
    floor = 0.075 * max(width, height)
    assert tiles and all(x >= 0 and y >= 0 and x + w <= width and y + h <= height
                         for x, y, w, h in tiles)  # fmt: skip
    for _ in range(2000):
        side = rng.uniform(24, max(24.5, floor))
        x = rng.uniform(0, width - side)
        y = rng.uniform(0, height - min(side, height))
        box = (x, y, x + side, y + min(side, height))
        fits = [t for t in tiles if _inside(box, t) and side >= 0.075 * max(t[2], t[3])]
        assert fits, (box, width, height)


def test_tiles_of_a_level_overlap_by_their_share_and_small_frames_have_none():
    assert tile_grid(320, 240) == []
    tiles = tile_grid(640, 480)
    assert {(w, h) for _, _, w, h in tiles} == {(TILE_SIDE, TILE_SIDE)}
    xs = sorted({x for x, *_ in tiles})
    assert xs[0] == 0 and xs[-1] == 640 - TILE_SIDE
    assert max(np.diff(xs)) <= TILE_SIDE * (1 - TILE_OVERLAP) + 1
    assert len(tile_grid(1920, 1080)) > len(tile_grid(1280, 720)) > len(tiles)


def test_follow_window_is_three_to_six_faces_wide_inside_the_frame_and_only_for_small_faces():
    small = Detection((600.0, 10.0, 630.0, 40.0), 0.9, np.zeros((6, 2), np.float32))
    x, y, w, h = follow_window(small, 640, 480)
    assert w == h == 128 and FOLLOW_SIDE * 30 <= 128 <= 2 * FOLLOW_SIDE * 30
    assert x + w == 640 and y == 0  # pushed inside the frame, still around the face
    assert _inside(small.xyxy, (x, y, w, h))
    big = Detection((100.0, 100.0, 300.0, 300.0), 0.9, np.zeros((6, 2), np.float32))
    assert follow_window(big, 640, 480) is None


def test_a_face_cut_by_an_inner_window_edge_is_dropped_one_at_the_frame_edge_kept():
    frame = np.zeros((400, 600, 3), np.uint8)
    kps = np.ones((6, 2), np.float32)

    def find(window):
        assert window.shape[:2] == (200, 200)
        return [
            Detection((0.0, 50.0, 30.0, 90.0), 0.9, kps),  # at the window's left edge
            Detection((50.0, 50.0, 90.0, 90.0), 0.8, kps),  # inside
            Detection((150.0, 170.0, 190.0, 200.0), 0.7, kps),  # at the bottom edge
        ]

    # a window in the top-right corner: its right and top edges are the frame's
    kept = detections_in(find, frame, (400, 0, 200, 200))
    assert [d.score for d in kept] == [0.8]
    assert kept[0].xyxy == (450.0, 50.0, 490.0, 90.0)
    np.testing.assert_allclose(kept[0].keypoints, kps + np.float32([400, 0]))
    # a window in the bottom-left corner keeps the faces at the left and bottom edges
    kept = detections_in(find, frame, (0, 200, 200, 200))
    assert [d.score for d in kept] == [0.9, 0.8, 0.7]


def _small_face_frame(face_frame, height, size, at, background=127):
    """``face_frame`` shrunk so its face is ``height`` px, pasted at ``at`` in a grey frame."""
    (face,) = BlazeFaceDetector(small_faces="off", full_range_every=1).detect(face_frame)
    scale = height / face.height
    small = cv2.resize(face_frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    w, h = size
    canvas = np.full((h, w, 3), background, np.uint8)
    x, y = at
    part = small[: h - y, : w - x]
    canvas[y : y + part.shape[0], x : x + part.shape[1]] = part
    face_y = y + (face.xyxy[1] * scale)
    return canvas, face_y


@pytest.fixture(scope="module")
def face_frame() -> np.ndarray:
    return read_frames("pyfeat_single_face.mp4", step=24)[1]


@pytest.mark.shared
@pytest.mark.parametrize("size", [(640, 480), (1280, 720)])
def test_a_24_px_face_is_found_in_a_still_and_in_a_video_then_followed(face_frame, size):
    """A 24 px face (3.8% / 1.9% of the frame's width; the whole frame alone finds faces
    from about 7.5%): found by one still search, within one round of tiles in a video,
    then in every frame while it moves 6 px a frame."""
    canvas, _ = _small_face_frame(face_frame, 24, size, (size[0] // 2 + 37, size[1] // 3))
    assert BlazeFaceDetector(small_faces="off").detect(canvas) == []

    def one_face(found):
        return len(found) == 1 and 0.7 * 24 < found[0].height < 1.4 * 24

    assert one_face(BlazeFaceDetector(small_faces="still").detect(canvas))
    video = BlazeFaceDetector()
    tiles = len(tile_grid(*size))
    rounds = frames_per_tile(tiles) * tiles
    first = next(i for i in range(rounds) if one_face(video.detect(canvas)))
    assert first < rounds
    moving = [np.roll(canvas, 6 * k, axis=1) for k in range(1, 25)]
    assert all(one_face(video.detect(f)) for f in moving)
    video.reset()  # a new video: nothing followed until the tiles come round again
    assert video.detect(moving[-1]) == [] or first == 0


@pytest.mark.shared
def test_the_small_face_search_adds_no_face_to_the_one_person_clips():
    """Frames of the one-person clip: the same one face with and without the search."""
    with_search, without = BlazeFaceDetector(), BlazeFaceDetector(small_faces="off")
    for frame in read_frames("pyfeat_WolfgangLanger_Pexels.mp4", step=4):
        found, plain = with_search.detect(frame), without.detect(frame)
        assert len(found) == len(plain) == 1
        np.testing.assert_allclose(found[0].xyxy, plain[0].xyxy, atol=1.0)


def test_a_bad_small_faces_mode_is_refused():
    with pytest.raises(ValueError, match="small_faces must be one of video, still, off"):
        BlazeFaceDetector(small_faces="tiles")


def test_no_small_faces_reaches_the_detector_from_live_and_analyze(tmp_path):
    """``--no-small-faces`` is one shared flag: live's and analyze's detectors search the
    whole frame only; by default both search small faces as a video."""
    from conftest import detector_options_from_flags

    from liveaffect.runtime.detectors import DetectorOptions, build_detector

    for argv, mode in (([], "video"), (["--no-small-faces"], "off")):
        options, live = detector_options_from_flags(argv)
        assert options.small_faces == mode
        assert live.small_faces == mode
        assert build_detector(options).small_faces == mode
    with pytest.raises(Exception, match="must be one of video, still, off"):
        DetectorOptions(small_faces="tiles")


def test_a_round_of_tiles_visits_every_level_throughout():
    """1080p has tiles of 320, 640 and 1280 px: each level's tiles are spread over the
    round, so the first third of a round already searches a third of every level."""
    tiles = tile_grid(1920, 1080)
    sides = sorted({w for _, _, w, _ in tiles})
    assert sides == [320, 640, 1280]
    first = tiles[: len(tiles) // 3]
    for side in sides:
        share = sum(w == side for _, _, w, _ in first) / sum(w == side for _, _, w, _ in tiles)
        assert 0.2 <= share <= 0.5, side


def test_a_round_of_tiles_takes_about_two_seconds_and_small_frames_search_less_often():
    rounds = {}
    for size in [(640, 480), (1280, 720), (1920, 1080)]:
        tiles = len(tile_grid(*size))
        rounds[size] = (frames_per_tile(tiles), frames_per_tile(tiles) * tiles)
    assert rounds[(640, 480)] == (6, 36)  # 6 tiles: one every 6th frame
    assert all(n <= 60 for every, n in rounds.values() if every > 1)
    assert rounds[(1920, 1080)][0] == 1  # 38 tiles: one every frame
    assert frames_per_tile(0) == 6


def test_a_face_well_inside_another_faces_window_gets_no_window_of_its_own():
    kps = np.zeros((6, 2), np.float32)
    first = Detection((300.0, 200.0, 340.0, 240.0), 0.9, kps)  # 40 px: a 128 px window
    near = Detection((275.0, 175.0, 300.0, 200.0), 0.8, kps)  # inside it, with room
    edge = Detection((355.0, 255.0, 380.0, 280.0), 0.7, kps)  # at its edge: own window
    tiny = Detection((300.0, 250.0, 310.0, 260.0), 0.6, kps)  # too small for that window
    windows = follow_windows([first, near, edge, tiny], 640, 480)
    assert windows[0] == follow_window(first, 640, 480)
    assert windows[1:] == [follow_window(edge, 640, 480), follow_window(tiny, 640, 480)]
