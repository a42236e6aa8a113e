"""Shot cuts end every track: synthetic frames, and a real edit of two shared clips."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from liveaffect.runtime.shotcut import ShotCutDetector
from liveaffect.runtime.tracker import IouTracker

VIDEOS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos"


def _scene(colour, seed, shift=0):
    rng = np.random.default_rng(seed)
    img = np.zeros((120, 160, 3), np.uint8)
    img[:] = colour
    img[30:90, 40 + shift : 100 + shift] = rng.integers(0, 255, (60, 60, 3), dtype=np.uint8)
    return img


def test_cut_between_different_scenes_and_none_within_one():
    cuts = ShotCutDetector()
    assert not cuts.update(_scene((40, 120, 200), 0))  # the first frame is never a cut
    for i in range(1, 6):  # the same shot: a patch moving, noise changing
        assert not cuts.update(_scene((40, 120, 200), i, shift=3 * i))
    assert cuts.update(_scene((200, 60, 30), 9))  # another shot
    assert not cuts.update(_scene((200, 60, 30), 10))
    assert cuts.cuts == 1


def test_empty_frames_are_skipped_and_threshold_checked():
    cuts = ShotCutDetector()
    assert not cuts.update(np.zeros((0, 0, 3), np.uint8))
    assert not cuts.update(None)
    with pytest.raises(ValueError, match="threshold"):
        ShotCutDetector(threshold=0.0)


def _frames(name, n, start=0):
    path = VIDEOS / name
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    out = [cap.read()[1] for _ in range(n)]
    cap.release()
    return out


@pytest.mark.shared
@pytest.mark.parametrize("detect_cuts", [True, False])
def test_edited_clip_gives_the_second_person_a_new_id(detect_cuts):
    """Two webcam clips cut together (one man, then one woman, both 640x360; her clip
    mirrored so that her face sits where his was): with cut detection the woman gets a new
    id; without it she inherits the man's."""
    from liveaffect.runtime.detectors import create_detector

    detector = create_detector()
    cuts, tracker = ShotCutDetector(), IouTracker()
    second_shot = _frames("pyfeat_WolfgangLanger_Pexels.mp4", 8, start=400)
    edit = _frames("pyfeat_single_face.mp4", 8) + [cv2.flip(f, 1) for f in second_shot]
    per_frame = []
    for frame in edit:
        if cuts.update(frame) and detect_cuts:
            tracker.reset()
        per_frame.append({t.track_id for t in tracker.update(detector.detect(frame))})
    first, second = set().union(*per_frame[:8]), set().union(*per_frame[8:])
    assert first and second
    if detect_cuts:
        assert cuts.cuts == 1 and not first & second
    else:
        assert first & second  # the failure the cut detection prevents
