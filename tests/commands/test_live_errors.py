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
from conftest import make_tiny_bundle, write_truncated_video

from liveaffect.cli import main
from liveaffect.commands import model_options

REPO = Path(__file__).resolve().parents[2]


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


TF_PROBE = (
    "import sys, runpy; sys.argv = ['emotion_classifier.py'] + sys.argv[1:]\n"
    "try:\n    runpy.run_path('emotion_classifier.py', run_name='__main__')\n"
    "finally:\n"
    "    print('tf-loaded' if 'tensorflow' in sys.modules else 'tf-not-loaded')\n"
)
"""``python -c TF_PROBE ARGS``: the real entry point with ARGS; its last stdout line says
whether TensorFlow was imported (printed however the app ends, its exit status kept)."""


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
    _case("csv-over-bundle", ["{video}", "--csv", "{bundle}/model.keras"], "--csv", "model's file"),
    _case(
        "csv-over-model-file",
        ["{video}", "--model", "{bundle}/model.keras", "--csv", "{bundle}/model.keras"],
        "--csv",
        "overwrite the model's file",
    ),
    _case("camera-index-huge", ["99999999999999999999"], "camera index must be at most"),
    _case("window-too-big", ["{video}", "--window-size", "100000x100000"], "at most 16384x16384"),
    _case("output-unwritable", ["{video}", "--output", "/proc/x.mp4"], "--output", "cannot write"),
    _case("raw-unwritable", ["{video}", "--output-raw", "/proc/x.mp4"], "--output-raw", "/proc"),
    _case("csv-unwritable", ["{video}", "--csv", "/proc/x.csv"], "--csv", "cannot write in /proc"),
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


def test_outputs_never_overwrite_the_models_card(capsys, tmp_path, video):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.keras").write_bytes(b"never loaded")
    (bundle / "card.json").write_text("{}")
    for flag in ("--csv", "--stream"):
        target = bundle / "card.json"
        value = f"jsonl:{target}" if flag == "--stream" else str(target)
        code, err = run_cli(capsys, str(video), "--no-display", "--model", str(bundle), flag, value)
        assert_one_line_error(code, err, flag, "overwrite the model's file", "card.json")
        assert (bundle / "card.json").read_text() == "{}"


def test_outputs_never_overwrite_the_detector_weights(capsys, tmp_path, video, fake_bundle_dir):
    weights = tmp_path / "short.tflite"
    weights.write_bytes(b"weights")
    argv = [str(video), "--no-display", "--model", str(fake_bundle_dir)]
    argv += ["--detector-weights", str(weights), "--blazeface-model", "short"]
    code, err = run_cli(capsys, *argv, "--csv", str(weights))
    assert_one_line_error(code, err, "--csv would overwrite the detector weights")
    assert weights.read_bytes() == b"weights"


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


@pytest.mark.parametrize("command", ["live", "analyze", "bench"])
def test_an_installed_package_without_the_repository_model_says_what_to_pass(
    capsys, monkeypatch, tmp_path, video, command
):
    """A non-editable ``pip install`` puts the package in site-packages with no
    ``final_model/`` beside it: the error says so and names --model and ``pip install -e .``,
    not only "train one" (before: "no model found in .../site-packages/final_model")."""
    site = tmp_path / "site-packages"
    monkeypatch.setattr(model_options, "DEFAULT_MODEL_DIR", site / "final_model")
    argv = {
        "live": ["live", str(video), "--no-display"],
        "analyze": ["analyze", str(video), "--out", str(tmp_path / "out")],
        "bench": ["bench", "--source", str(video)],
    }[command]
    if command == "bench":  # bench reads the default from runtime.options
        from liveaffect.runtime import options

        monkeypatch.setattr(options, "DEFAULT_MODEL_DIR", site / "final_model")
    code = main(argv)
    err = capsys.readouterr().err
    assert_one_line_error(
        code, err, "no default model", str(site), "--model PATH", "pip install -e ."
    )
    assert not (tmp_path / "out").exists()


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


def test_a_corrupt_model_beside_its_card_and_its_cache_is_one_line(
    capsys, tmp_path, video, tiny_bundle
):
    """A bundle folder opens without Keras (card now, model on first use), and a warm TFLite
    cache serves it; a corrupt ``model.keras`` no longer matches the cache, so it is loaded,
    and refused in one line, as before."""
    import shutil

    from liveaffect.bundle import open_bundle
    from liveaffect.engines import create_engine

    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    create_engine(open_bundle(bundle), "tflite")  # a warm cache beside it
    (bundle / "model.keras").write_bytes(b"PK\x03\x04 this is no keras file")
    code, err = run_cli(capsys, str(video), "--no-display", "--model", str(bundle))
    assert_one_line_error(code, err, "model.keras", "cannot load")


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
    cases = [
        [str(tmp_path / "missing.mp4"), "--no-display"],
        ["7", "--no-display", "--model", str(fake_bundle_dir)],
        ["--smooth", "-3", "--no-display"],
    ]
    for argv in cases:
        proc = subprocess.run(
            [sys.executable, "-c", TF_PROBE, *argv],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: ")
        assert "Traceback" not in proc.stderr
        assert proc.stdout.strip() == "tf-not-loaded"


def test_the_first_start_with_a_model_says_it_converts_it_once(capsys, tmp_path, video):
    """A missing or stale cache: one line says why this start takes longer; then none."""
    bundle = make_tiny_bundle(tmp_path / "b", input_size=32)
    argv = ["live", str(video), "--no-display", "--model", str(bundle)]
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert f"converting {bundle / 'model.keras'} to TFLite (fp32) once" in said, said
    assert main(argv) == 0
    assert "converting" not in capsys.readouterr().out  # cached now
    assert main([*argv, "--engine", "tflite-int8"]) == 0
    assert "to TFLite (int8) once" in capsys.readouterr().out
    assert main([*argv, "--engine", "keras"]) == 0
    assert "converting" not in capsys.readouterr().out  # Keras converts nothing


@pytest.mark.slow
def test_a_warm_cache_runs_the_app_without_tensorflow(tmp_path, tiny_bundle, video):
    """Once the bundle's TFLite cache exists, the app runs (thread limit included) without
    importing TensorFlow at all: seconds and hundreds of MB at every start."""
    from liveaffect.bundle import load_bundle
    from liveaffect.model.export import cached_tflite

    cached_tflite(load_bundle(tiny_bundle), "fp32")
    argv = [str(video), "--no-display", "--model", str(tiny_bundle), "--threads", "1",
            "--csv", str(tmp_path / "faces.csv"), "--engine", "auto"]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", TF_PROBE, *argv], cwd=REPO, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "engine tflite" in proc.stdout and "frames=5" in proc.stdout, proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "tf-not-loaded"


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


# ------------------------------------------------------------------ the fault matrix
# Every way a run can be stopped or an output can fail: one `error:` line (or none for a
# clean stop), the documented exit status, no traceback, and nothing already written lost.

PRECIOUS = "frame,face_id\n0,1\n"  # an existing file that must survive a failed start


def assert_no_traceback(err: str) -> None:
    assert "Traceback" not in err, err[-3000:]


def _free_local_display() -> str:
    """A local display number no X server serves (":77" was, whenever an Xvfb ran there)."""
    return next(f":{n}" for n in range(77, 200) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))


@pytest.mark.parametrize("display", ["local", "nohost.invalid:3"])
def test_unreachable_display_touches_no_file(capsys, monkeypatch, tmp_path, video, display):
    """A DISPLAY that is not there: exit 2 suggesting --no-display, files untouched (Qt
    would abort the process with 134 after truncating the CSV)."""
    display = _free_local_display() if display == "local" else display
    monkeypatch.setenv("DISPLAY", display)
    out = tmp_path / "faces.csv"
    out.write_text(PRECIOUS)
    code, err = run_cli(capsys, str(video), "--csv", str(out), "--output", str(tmp_path / "o.mp4"))
    assert_one_line_error(code, err, "--no-display", display)
    assert out.read_text() == PRECIOUS and not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
@pytest.mark.parametrize("broken", ["model", "source"])
def test_no_output_is_opened_before_source_and_model(capsys, tmp_path, video, files, broken):
    """A model that does not load or a camera that does not open leaves outputs untouched."""
    out = tmp_path / "faces.csv"
    out.write_text(PRECIOUS)
    source = "7" if broken == "source" else str(video)
    model = str(files["corrupt"]) if broken == "model" else "final_model"
    code, err = run_cli(capsys, source, "--no-display", "--model", model, "--csv", str(out))
    assert code == 2 and err.startswith("error:")
    assert out.read_text() == PRECIOUS


def test_an_unwritable_video_output_leaves_the_csv_as_it_was(capsys, tmp_path, video):
    out = tmp_path / "faces.csv"
    out.write_text(PRECIOUS)
    code, err = run_cli(capsys, str(video), "--no-display", "--csv", str(out), "--output",
                        "/proc/x.mp4")  # fmt: skip
    assert_one_line_error(code, err, "--output /proc/x.mp4: cannot write in /proc")
    assert out.read_text() == PRECIOUS


def _fake_world(monkeypatch, frames: int = 6):
    from liveaffect.runtime import detectors, video

    def fake_open(spec, **kwargs):
        return video.VideoSource(_DroppingCapture(frames), is_live=False, path_or_url="x.avi")

    monkeypatch.setattr(video, "open_source", fake_open)
    monkeypatch.setattr(detectors, "build_detector", lambda *a, **k: _CentreDetector())


def test_full_disk_at_the_csv_is_one_line_exit_1(capsys, monkeypatch, tiny_bundle):
    """--csv on a full disk (/dev/full): one error line, exit 1."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    _fake_world(monkeypatch)
    argv = ["--no-display", "--model", str(tiny_bundle), "--csv", "/dev/full", "--engine", "keras"]
    code = main(["live", str(REPO / "README.md"), *argv])
    err = capsys.readouterr().err
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "disk full" in lines[0] and "/dev/full" in lines[0]
    assert_no_traceback(err)


def test_full_disk_at_a_jsonl_stream_names_the_file_and_keeps_the_summary(
    capsys, monkeypatch, tiny_bundle
):
    """--stream jsonl:/dev/full: the summary, one error line naming the file, exit 1 (it
    was 'disk full: cannot write No space left on device', no file, no summary)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    _fake_world(monkeypatch, frames=200)
    argv = ["--no-display", "--model", str(tiny_bundle), "--engine", "keras"]
    code = main(["live", str(REPO / "README.md"), *argv, "--stream", "jsonl:/dev/full"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: disk full: cannot write /dev/full (No space left on device); "
        "its 0 lines written before are kept"
    ]
    assert "stop=error" in captured.out
    assert_no_traceback(captured.err)


_LIMITED_RUN = """
import resource, sys
from liveaffect.cli import main
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
sys.exit(main(["live", *sys.argv[2:]]))
"""


def _limited(limit: int, *argv: str) -> subprocess.CompletedProcess:
    """The live app with a file-size limit: every file it writes beyond it fails (EFBIG)."""
    return subprocess.run(
        [sys.executable, "-c", _LIMITED_RUN, str(limit), *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("output", ["csv", "video"])
def test_output_filling_up_mid_run_stops_with_exit_1(tmp_path, tiny_bundle, output):
    """The disk fills while writing: the run stops, says so in one line, exits 1, and the
    CSV keeps only whole rows (the video: reported incomplete)."""
    from conftest import shared_path

    from liveaffect.runtime.sinks import CSV_COLUMNS

    clip = shared_path("videos", "pyfeat_single_face.mp4")
    path = tmp_path / ("faces.csv" if output == "csv" else "annotated.avi")
    flag = "--csv" if output == "csv" else "--output"
    limit = 4000 if output == "csv" else 300_000
    common = ["--no-display", "--model", str(tiny_bundle), "--engine", "keras"]
    proc = _limited(limit, str(clip), *common, flag, str(path))
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert_no_traceback(proc.stderr)
    assert "summary: frames=" in proc.stdout
    frames = int(proc.stdout.split("summary: frames=")[1].split()[0])
    if output == "csv":
        assert "disk full" in errors[0] and str(path) in errors[0]
        assert 0 < frames < 72  # it stopped early
        rows = list(csv.reader(path.open()))
        assert rows[0] == list(CSV_COLUMNS) and len(rows) > 1
        assert all(len(r) == len(CSV_COLUMNS) for r in rows)  # no torn row
        assert path.read_bytes().endswith(b"\n")
    else:
        assert "incomplete" in errors[0] and str(path) in errors[0]


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    return proc.returncode == 0


@pytest.mark.slow
@pytest.mark.shared
def test_real_full_disk_stops_the_video_with_exit_1(tmp_path, tiny_bundle):
    """A real, small file system (tmpfs, root only) fills up under --output."""
    from conftest import shared_path

    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "3m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        clip = shared_path("videos", "pyfeat_WolfgangLanger_Pexels.mp4")
        out = disk / "annotated.avi"
        common = ["--no-display", "--model", str(tiny_bundle), "--engine", "keras"]
        proc = subprocess.run(
            [sys.executable, "emotion_classifier.py", str(clip), *common, "--output", str(out)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 1, proc.stderr[-3000:]
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "disk full" in errors[0], proc.stderr[-3000:]
        assert_no_traceback(proc.stderr)
        frames = int(proc.stdout.split("summary: frames=")[1].split()[0])
        assert 0 < frames < 472
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize(
    ("signame", "status"), [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)]
)
def test_signals_stop_like_ctrl_c_and_keep_a_playable_video(tmp_path, tiny_bundle, signame, status):
    """docker stop / timeout (SIGTERM) and a closed terminal (SIGHUP): the frame finishes,
    the writers close, the summary prints, and the exit status is 128 + the signal."""
    import signal as signals
    import time

    from conftest import shared_path

    clip = shared_path("videos", "pyfeat_WolfgangLanger_Pexels.mp4")
    out, rows = tmp_path / "annotated.mp4", tmp_path / "faces.csv"
    cmd = [sys.executable, "emotion_classifier.py", str(clip), "--no-display"]
    cmd += ["--model", str(tiny_bundle), "--output", str(out), "--csv", str(rows)]
    app = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in app.stdout:  # wait until frames flow
            if line.startswith("FPS:"):
                break
        time.sleep(0.3)
        app.send_signal(getattr(signals, signame))
        stdout, stderr = app.communicate(timeout=120)
    finally:
        if app.poll() is None:
            app.kill()
    assert app.returncode == status, stderr[-3000:]
    assert_no_traceback(stderr)
    assert not [line for line in stderr.splitlines() if line.startswith("error:")]
    summary = [line for line in stdout.splitlines() if line.startswith("summary:")]
    reason = "interrupt" if signame == "SIGINT" else signame.lower()  # SIGINT is Ctrl-C
    assert len(summary) == 1 and f"stop={reason}" in summary[0]
    frames = int(summary[0].split("frames=")[1].split()[0])
    assert 0 < frames < 472
    capture = cv2.VideoCapture(str(out))  # playable: every frame decodes
    decoded = 0
    while capture.read()[0]:
        decoded += 1
    capture.release()
    assert decoded == frames
    assert len(list(csv.DictReader(rows.open()))) == int(summary[0].split(" faces=")[1].split()[0])


def test_evaluate_json_on_a_full_disk_is_one_line_exit_1(capsys, tiny_bundle, tmp_path):
    """`evaluate --json` onto a full disk: one error line, exit 1, no traceback."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    data = tmp_path / "faces" / "happy"
    data.mkdir(parents=True)
    for i in range(2):
        cv2.imwrite(str(data / f"{i}.png"), np.full((40, 40, 3), 90 + i, np.uint8))
    argv = ["evaluate", "--model", str(tiny_bundle), "--data", str(data.parent), "--split", "all"]
    code = main([*argv, "--json", "/dev/full", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "disk full" in lines[0]
    assert_no_traceback(err)


def test_a_truncated_file_is_analysed_with_a_warning(capsys, tmp_path, tiny_bundle):
    """A file cut short: every frame it still holds is analysed and written, exit 0, and a
    warning says it ended before the frame count it announces (analyze fails it instead)."""
    clip = write_truncated_video(tmp_path / "cut.avi")
    argv = [str(clip), "--no-display", "--model", str(tiny_bundle)]
    code, err = run_cli(capsys, *argv, "--csv", str(tmp_path / "faces.csv"))
    assert code == 0, err
    (line,) = [line for line in err.splitlines() if line.startswith("warning:")]
    read = int(line.split("after frame ")[1].split()[0])
    assert 0 < read < 39 and "of the 40 the file announces (truncated or corrupt)" in line
    code, err = run_cli(capsys, *argv, "--max-frames", "3")  # stopped early: nothing to say
    assert code == 0 and "warning:" not in err, err


def test_a_truncated_still_image_is_analysed_with_a_warning(capsys, tmp_path, tiny_bundle):
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    whole, cut = tmp_path / "whole.jpg", tmp_path / "cut.jpg"
    whole.write_bytes(data)
    cut.write_bytes(data[: len(data) // 3])
    code, err = run_cli(capsys, str(whole), "--no-display", "--model", str(tiny_bundle))
    assert code == 0 and "warning:" not in err, err
    code, err = run_cli(capsys, str(cut), "--no-display", "--model", str(tiny_bundle))
    assert code == 0, err
    (line,) = [line for line in err.splitlines() if line.startswith("warning:")]
    assert "cut.jpg has no JPEG end marker (truncated?)" in line


def test_a_whole_file_gives_no_warning(capsys, video, tiny_bundle):
    code, err = run_cli(capsys, str(video), "--no-display", "--model", str(tiny_bundle))
    assert code == 0 and "warning:" not in err, err


def test_the_commands_import_no_detector_or_scipy_before_they_run():
    """``--help``, option errors and the signal handlers come before the detector's
    imports (SciPy, for the tracker: about 1.4 s of a 2.1 s start on a busy 2-core machine;
    a SIGTERM in that time killed the app without its summary)."""
    code = (
        "import sys, liveaffect.cli, liveaffect.commands.live, liveaffect.commands.analyze, "
        "liveaffect.commands.bench\n"
        "print(sorted(m for m in ('scipy', 'tensorflow', 'liveaffect.runtime.detectors.blazeface') "
        "if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_entry_points_usage_names_the_script():
    proc = subprocess.run(
        [sys.executable, "emotion_classifier.py", "--help"], cwd=REPO, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: python emotion_classifier.py [-h]"), proc.stdout[:200]
