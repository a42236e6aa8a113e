"""Bad input gets exit status 2 and ONE clear line, never a traceback.

Most cases run the CLI in-process (``liveaffect.cli.main``) for speed; a few go
through the real ``emotion_classifier.py`` in a subprocess, which also checks that
option errors answer before TensorFlow is imported.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from liveaffect.cli import main
from liveaffect.commands import model_options

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """A tiny real video file (5 grey frames)."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Paths for bad inputs: not-a-video, corrupt model, empty model folder ..."""
    root = tmp_path_factory.mktemp("bad")
    (root / "notes.txt").write_text("not a video\n")
    (root / "garbage.mp4").write_bytes(os.urandom(2048))
    (root / "corrupt").mkdir()
    (root / "corrupt" / "model.keras").write_bytes(b"PK\x03\x04 this is no keras file")
    (root / "empty_dir").mkdir()
    (root / "model.h5").write_bytes(b"\x89HDF")
    (root / "a_folder.mp4").mkdir()
    return {p.name: p for p in root.iterdir()}


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(["live", *argv])
    err = capsys.readouterr().err
    return code, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _case(name, argv, *needles):
    return pytest.param(argv, needles, id=name)


# {video}, {files[...]} and {bundle} are filled in per test.
OPTION_CASES = [
    _case("missing-video", ["{tmp}/nope.mp4"], "video file not found", "nope.mp4"),
    _case("video-is-folder", ["{files[a_folder.mp4]}"], "a_folder.mp4", "folder"),
    _case("negative-camera", ["-1"], "camera index"),
    _case("bad-url-scheme", ["ftp://example.com/x.mp4"], "ftp"),
    _case("unknown-detector", ["{video}", "--detector", "haar"], "--detector", "haar"),
    _case("detector-weights", ["{video}", "--detector-weights", "{tmp}/w.pt"], "w.pt"),
    _case("smooth-negative", ["{video}", "--smooth", "-1"], "--smooth", "-1"),
    _case("smooth-zero", ["{video}", "--smooth", "0"], "--smooth"),
    _case("smooth-text", ["{video}", "--smooth", "abc"], "--smooth", "integer"),
    _case("max-frames-zero", ["{video}", "--max-frames", "0"], "--max-frames"),
    _case("max-frames-float", ["{video}", "--max-frames", "2.5"], "--max-frames"),
    _case("min-score-range", ["{video}", "--min-face-score", "1.5"], "--min-face-score"),
    _case("threads-zero", ["{video}", "--threads", "0"], "--threads"),
    _case("unknown-engine", ["{video}", "--engine", "onnx"], "--engine", "onnx"),
    _case("output-suffix", ["{video}", "--output", "{tmp}/out.txt"], "--output", ".mp4"),
    _case("output-no-folder", ["{video}", "--output", "{tmp}/no/dir/a.mp4"], "--output"),
    _case("csv-no-folder", ["{video}", "--csv", "{tmp}/no/dir/a.csv"], "--csv", "does not exist"),
    _case("csv-overwrites-input", ["{video}", "--csv", "{video}"], "overwrite"),
    _case("missing-model", ["{video}", "--model", "{tmp}/nomodel"], "nomodel"),
    _case("model-not-keras", ["{video}", "--model", "{files[model.h5]}"], "model.h5", ".keras"),
    _case("model-dir-empty", ["{video}", "--model", "{files[empty_dir]}"], "empty_dir"),
    _case("not-a-video-text", ["{files[notes.txt]}", "--model", "{bundle}"], "notes.txt"),
    _case("not-a-video-bytes", ["{files[garbage.mp4]}", "--model", "{bundle}"], "garbage.mp4"),
    _case("camera-not-there", ["7", "--model", "{bundle}"], "camera 7"),
]


@pytest.fixture(scope="module")
def fake_bundle_dir(tmp_path_factory) -> Path:
    """A folder that looks like a bundle (checked before the model loads)."""
    root = tmp_path_factory.mktemp("fake_bundle")
    (root / "model.keras").write_bytes(b"never loaded")
    return root


@pytest.mark.parametrize(("argv", "needles"), OPTION_CASES)
def test_bad_input_before_tensorflow(
    capsys, tmp_path, video, files, fake_bundle_dir, argv, needles
):
    values = {"tmp": tmp_path, "video": video, "files": files, "bundle": fake_bundle_dir}
    args = [a.format(**values) for a in argv]
    if "--model" not in args:
        args += ["--model", str(fake_bundle_dir)]
    code, err = run_cli(capsys, *args, "--no-display")
    assert_one_line_error(code, err, *needles)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file"
)
def test_unreadable_video_names_the_path(capsys, tmp_path, video, fake_bundle_dir):
    locked = tmp_path / "locked.avi"
    locked.write_bytes(video.read_bytes())
    locked.chmod(0)
    code, err = run_cli(capsys, str(locked), "--no-display", "--model", str(fake_bundle_dir))
    assert_one_line_error(code, err, "locked.avi", "cannot read")


def test_no_model_at_all_says_how_to_get_one(capsys, monkeypatch, tmp_path, video):
    monkeypatch.setattr(model_options, "DEFAULT_MODEL_DIR", tmp_path / "final_model")
    (tmp_path / "final_model").mkdir()
    code, err = run_cli(capsys, str(video), "--no-display")
    assert_one_line_error(code, err, "no model found", "python -m liveaffect train", "--model")


def test_no_display_without_no_display_flag(capsys, monkeypatch, video, fake_bundle_dir):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, err = run_cli(capsys, str(video), "--model", str(fake_bundle_dir))
    assert_one_line_error(code, err, "--no-display")


@pytest.mark.slow
def test_corrupt_and_wrong_models(capsys, tmp_path, video, files):
    import keras

    code, err = run_cli(capsys, str(video), "--no-display", "--model", str(files["corrupt"]))
    assert_one_line_error(code, err, "model.keras", "cannot load")

    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(5, name="scores")(keras.layers.GlobalAveragePooling2D()(inputs))
    wrong = tmp_path / "classifier.keras"
    keras.Model(inputs, outputs).save(wrong)
    code, err = run_cli(capsys, str(video), "--no-display", "--model", str(wrong))
    assert_one_line_error(code, err, "classifier.keras", "no expr/va/au output")


class _DroppingCapture:
    """A camera-like capture that delivers a few frames, then fails."""

    def __init__(self, n):
        self.n, self.i = n, 0

    def read(self):
        self.i += 1
        if self.i > self.n:
            return False, None
        return True, np.full((48, 64, 3), 100, np.uint8)

    def get(self, prop):
        return 0.0

    def release(self):
        pass


@pytest.mark.slow
def test_stream_drop_ends_run_with_message_and_closed_files(
    capsys, monkeypatch, tmp_path, tiny_bundle
):
    from liveaffect.runtime import detectors, video

    opened = []

    def fake_open(spec, **kwargs):
        src = video.VideoSource(_DroppingCapture(6), is_live=True, path_or_url=str(spec))
        opened.append(src)
        return src

    monkeypatch.setattr(video, "open_source", fake_open)
    monkeypatch.setattr(detectors, "build_detector", lambda *a, **k: _CentreDetector())
    out = tmp_path / "faces.csv"
    code = main(
        [
            "live",
            "rtsp://camera.local/stream",
            "--no-display",
            "--model",
            str(tiny_bundle),
            "--csv",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1 and "stream dropped" in captured.err and "Traceback" not in captured.err
    assert "summary: frames=" in captured.out
    assert opened and opened[0]._closed  # the source was released
    frames = int(captured.out.split("summary: frames=")[1].split()[0])
    assert frames >= 1 and len(list(csv.DictReader(out.open()))) == frames


class _CentreDetector:
    """Finds one face in the middle of every frame."""

    def detect(self, frame_bgr):
        from liveaffect.types import Detection

        h, w = frame_bgr.shape[:2]
        return [Detection(xyxy=(w * 0.25, h * 0.25, w * 0.75, h * 0.75), score=0.9)]


def test_real_entry_point_one_line_no_tensorflow(tmp_path, fake_bundle_dir):
    """The real script: exit 2, one line, and TensorFlow never imported for option errors."""
    probe = (
        "import sys, runpy; sys.argv = ['emotion_classifier.py'] + sys.argv[1:]\n"
        "try:\n    runpy.run_path('emotion_classifier.py', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    print('tf-loaded' if 'tensorflow' in sys.modules else 'tf-not-loaded')\n"
        "    raise\n"
    )
    cases = [
        [str(tmp_path / "missing.mp4"), "--no-display"],
        ["7", "--no-display", "--model", str(fake_bundle_dir)],
        ["--smooth", "-3", "--no-display"],
    ]
    for argv in cases:
        proc = subprocess.run(
            [sys.executable, "-c", probe, *argv],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: ")
        assert "Traceback" not in proc.stderr
        assert proc.stdout.strip() == "tf-not-loaded"


def test_help_explains_every_option():
    proc = subprocess.run(
        [sys.executable, "emotion_classifier.py", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    for option in (
        "SOURCE",
        "--model",
        "--detector",
        "--detector-weights",
        "--min-face-score",
        "--smooth",
        "--engine",
        "--no-display",
        "--output",
        "--csv",
        "--max-frames",
        "--threads",
        "--no-tta",
        "--stream",
        "--stream-faces",
    ):
        assert option in proc.stdout


@pytest.mark.parametrize("flags", [[], ["--no-tta"]])
def test_app_averages_the_cards_test_time_views(capsys, monkeypatch, tmp_path, tiny_bundle, flags):
    import json
    import shutil

    from liveaffect import engines as engine
    from liveaffect.runtime import detectors, video

    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    card = json.loads((bundle / "card.json").read_text())
    card["tta"] = {"flip": True, "scales": [1.0, 0.9]}
    (bundle / "card.json").write_text(json.dumps(card))
    calls = []
    create = engine.build_engine

    def spy(*args, **kwargs):
        made = create(*args, **kwargs)
        calls.append(made)
        return made

    monkeypatch.setattr(engine, "build_engine", spy)
    monkeypatch.setattr(
        video,
        "open_source",
        lambda spec, **kw: video.VideoSource(_DroppingCapture(3), is_live=True, path_or_url="x"),
    )
    monkeypatch.setattr(detectors, "build_detector", lambda *a, **k: _CentreDetector())
    code = main(
        [
            "live",
            "rtsp://cam/x",
            "--no-display",
            "--model",
            str(bundle),
            "--engine",
            "keras",
            *flags,
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and len(calls) == 1
    if flags:
        assert not hasattr(calls[0], "tta") and "1 view per face" in out
    else:
        assert calls[0].tta.n_views == 4
        assert "engine keras+tta4, test-time views flip x scales 1/0.9 (4 views)" in out
