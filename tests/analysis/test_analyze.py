"""``python -m liveaffect analyze``: the shared clips, a corrupt file, re-runs, Ctrl-C, outputs.

One run of the real command (in-process) on two shared clips and a corrupt file, with a
tiny random bundle whose AU head is marked untrained (as the shipped model's is), feeds
most checks: every file is written, the rows are the live pipeline's rows for the same
frames, the report has the size it should, the summaries agree with the CSV, a second
run skips, a failure is recorded and gives exit status 1.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import make_tiny_bundle, shared_path, write_truncated_video

from liveaffect.analysis.inputs import InputError, find_jobs
from liveaffect.analysis.report import report_size_px
from liveaffect.analysis.runner import VideoError, VideoStats, _check_complete
from liveaffect.analysis.storage import OutputStore
from liveaffect.cli import main
from liveaffect.commands.analyze import FFMPEG_QUIET
from liveaffect.runtime.live import LocatedFrame
from liveaffect.runtime.signals import SignalInterrupt
from liveaffect.types import Frame

CLIPS = ("pyfeat_single_face.mp4", "pyfeat_face_noface.mov")
FRAMES = {"pyfeat_single_face": 72, "pyfeat_face_noface": 169}


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def bundle_no_au(tmp_path_factory) -> Path:
    """A tiny random bundle whose card marks the AU head untrained (like final_model)."""
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle_no_au"), trained=("expr", "va"))


@pytest.fixture(scope="module")
def corrupt_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corrupt") / "broken.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 30000, np.uint8).tobytes())
    return path


def analyze(*args: str) -> int:
    return main(["analyze", *args, "--quiet", "--threads", "1"])


@pytest.fixture(scope="module")
def truncated_video(tmp_path_factory) -> Path:
    """A video cut in half: it opens and announces 40 frames, but 12 or so decode."""
    return write_truncated_video(tmp_path_factory.mktemp("truncated") / "cut.avi")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, bundle_no_au, corrupt_video, truncated_video):
    """The command on the two clips, a corrupt and a truncated file: (exit status, out dir)."""
    clips = [str(shared_path("videos", c)) for c in CLIPS]
    broken = [str(corrupt_video), str(truncated_video)]
    out = tmp_path_factory.mktemp("analyze") / "out"
    code = analyze(*clips, *broken, "--out", str(out), "--model", str(bundle_no_au))
    return code, out


@pytest.mark.slow
@pytest.mark.shared
def test_every_file_and_every_frame(first_run):
    code, out = first_run
    assert code == 1  # the corrupt and the truncated file failed
    for name, frames in FRAMES.items():
        folder = out / name
        assert sorted(p.name for p in folder.iterdir()) == [
            "faces.csv",
            "report.png",
            "summary.json",
        ]  # and no temporary file left behind
        summary = json.loads((folder / "summary.json").read_text())
        rows = read_rows(folder / "faces.csv")
        assert summary["status"] == "ok" and summary["frames"] == frames
        assert summary["face_rows"] == len(rows)  # frames x faces
        per_frame = Counter(int(r["frame"]) for r in rows)
        assert max(per_frame) < frames and set(per_frame.values()) <= {1, 2, 3}
        assert summary["faces"] == len({r["face_id"] for r in rows})
        assert summary["processing_fps"] > 0
        assert summary["model"]["heads_hidden"] == ["au"]
        assert summary["model"]["weak_aus"] == []  # a hidden AU head marks nothing
        assert all(r["AU01"] == "" and r["p_Neutral"] != "" for r in rows)  # AU hidden
        stamps = [float(r["timestamp_ms"]) for r in rows]
        assert stamps == sorted(stamps) and stamps[-1] <= frames / summary["fps"] * 1000
    for failed in ("broken", "cut"):  # a failed video leaves nothing that looks whole
        assert not (out / failed).exists()


@pytest.mark.slow
@pytest.mark.shared
def test_rows_are_the_live_pipelines_rows(first_run, bundle_no_au):
    """Batching faces of several frames changes nothing: same frames, time stamps (the
    position in the video), ids, boxes, values."""
    from liveaffect import engines
    from liveaffect.bundle import load_bundle
    from liveaffect.runtime.detectors import create_detector
    from liveaffect.runtime.live import Pipeline
    from liveaffect.runtime.sinks import face_rows
    from liveaffect.runtime.smoothing import PredictionSmoother
    from liveaffect.runtime.video import open_source

    _, out = first_run
    bundle = load_bundle(bundle_no_au)
    engine = engines.create_engine(bundle, threads=1)
    pipeline = Pipeline(
        create_detector("blazeface"), engine, bundle.card.preprocess, smoother=PredictionSmoother(3)
    )
    live = []
    with open_source(str(shared_path("videos", CLIPS[0]))) as source:
        for frame in source:
            result = pipeline.process(frame)
            size = (frame.image_bgr.shape[1], frame.image_bgr.shape[0])
            live += face_rows(result, bundle.card, size)
    ours = read_rows(out / "pyfeat_single_face" / "faces.csv")
    assert len(ours) == len(live) > 60
    header = list(ours[0])
    for mine, theirs in zip(ours, live, strict=True):
        for column, value in zip(header, theirs, strict=True):
            if column == "expression":
                continue
            if value == "" or column in ("frame", "face_id", "timestamp_ms"):
                assert mine[column] == value, column
            else:
                assert float(mine[column]) == pytest.approx(float(value), abs=2e-4), column


def test_the_analyzer_opens_its_model_without_keras_once_cached(tmp_path):
    """Every analyzer (each Ray worker builds one) reads the card and runs the cached TFLite
    model; only the first, with no cache yet, loads Keras to convert."""
    from liveaffect.analysis.runner import AnalysisSettings, VideoAnalyzer

    bundle = make_tiny_bundle(tmp_path / "b", input_size=32)
    first = VideoAnalyzer(AnalysisSettings(model=bundle, threads=1))
    again = VideoAnalyzer(AnalysisSettings(model=bundle, threads=2))
    assert first.bundle.loaded and not again.bundle.loaded
    assert again.engine.name.startswith("tflite") and again.engine.trained == first.engine.trained


@pytest.mark.slow
@pytest.mark.shared
def test_report_image_size(first_run):
    _, out = first_run
    for name in FRAMES:
        summary = json.loads((out / name / "summary.json").read_text())
        path = out / name / "report.png"
        assert path.stat().st_size > 10_000
        image = cv2.imread(str(path))
        assert image is not None
        assert (image.shape[1], image.shape[0]) == report_size_px(summary["faces"])
        assert image.std() > 10  # something is drawn


@pytest.mark.slow
@pytest.mark.shared
def test_summaries_match_the_csv(first_run):
    _, out = first_run
    table = read_rows(out / "summary.csv")
    assert {r["video"]: r["status"] for r in table} == {
        "pyfeat_single_face": "ok",
        "pyfeat_face_noface": "ok",
        "broken": "failed",
        "cut": "failed",
    }
    broken = next(r for r in table if r["video"] == "broken")
    assert "cannot read" in broken["reason"] and broken["face_id"] == ""
    cut = next(r for r in table if r["video"] == "cut")  # failed midway
    assert "decoding stopped after frame" in cut["reason"] and "of the 40" in cut["reason"]
    assert not any(c.startswith("AU") for c in table[0])  # the untrained head is left out
    for name in FRAMES:
        rows = read_rows(out / name / "faces.csv")
        by_id = defaultdict(list)
        for r in rows:
            by_id[int(r["face_id"])].append(r)
        summary = json.loads((out / name / "summary.json").read_text())
        assert [f["face_id"] for f in summary["face_summaries"]] == sorted(by_id)
        csv_rows = {int(r["face_id"]): r for r in table if r["video"] == name}
        for face in summary["face_summaries"]:
            mine = by_id[face["face_id"]]
            valence = [float(r["valence"]) for r in mine]
            happy = sum(r["expression"] == "Happiness" for r in mine) / len(mine)
            assert face["frames_seen"] == len(mine)
            assert face["valence_mean"] == pytest.approx(statistics.fmean(valence), abs=1e-4)
            assert face["valence_std"] == pytest.approx(statistics.pstdev(valence), abs=1e-4)
            assert face["share_Happiness"] == pytest.approx(happy, abs=1e-4)
            assert sum(face[f"share_{e}"] for e in ("Neutral", "Happiness", "Sadness")) <= 1.0001
            row = csv_rows[face["face_id"]]
            assert int(row["frames_seen"]) == face["frames_seen"]
            assert float(row["arousal_mean"]) == face["arousal_mean"]
            assert int(row["frames"]) == FRAMES[name] and row["status"] == "ok"
            assert float(row["duration_s"]) == pytest.approx(summary["duration_s"])


@pytest.mark.slow
@pytest.mark.shared
def test_second_run_skips_and_force_redoes(first_run, bundle_no_au, capsys):
    _, out = first_run
    clip = str(shared_path("videos", CLIPS[0]))
    csv_path = out / "pyfeat_single_face" / "faces.csv"
    before = csv_path.stat().st_mtime_ns
    capsys.readouterr()
    assert analyze(clip, "--out", str(out), "--model", str(bundle_no_au)) == 0
    assert "0 analysed, 1 already complete" in capsys.readouterr().out
    assert csv_path.stat().st_mtime_ns == before
    assert analyze(clip, "--out", str(out), "--model", str(bundle_no_au), "--force") == 0
    assert "1 analysed" in capsys.readouterr().out
    assert csv_path.stat().st_mtime_ns != before


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize(
    ("stop", "reason"),
    [(KeyboardInterrupt, "Ctrl-C"), (lambda: SignalInterrupt(signal.SIGTERM), "SIGTERM")],
)
def test_ctrl_c_leaves_no_half_file(tmp_path, bundle_no_au, monkeypatch, stop, reason):
    """Ctrl-C (or SIGTERM, which analyze turns into the same stop) in the middle of a
    video: no faces.csv that looks whole, exit 130, the reason names what stopped it."""
    from liveaffect.analysis import runner

    calls = {"n": 0}
    real = runner._BatchLoop._finish_oldest

    def interrupt_later(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise stop()
        real(self)

    monkeypatch.setattr(runner._BatchLoop, "_finish_oldest", interrupt_later)
    out = tmp_path / "out"
    clip = str(shared_path("videos", CLIPS[0]))
    assert analyze(clip, "--out", str(out), "--model", str(bundle_no_au), "--batch", "4") == 130
    assert not (out / "pyfeat_single_face").exists()  # nothing but partial files was there
    row = read_rows(out / "summary.csv")[0]
    assert row["status"] == "interrupted" and row["reason"] == reason


@pytest.mark.slow
@pytest.mark.shared
def test_a_later_run_keeps_an_earlier_videos_folder_of_the_same_name(tmp_path, bundle_no_au):
    """a/clip.mp4, then b/clip.mp4 into the same --out: b gets its own folder, a's results
    stay, and re-running a skips it."""
    clip = shared_path("videos", CLIPS[0])
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "clip.mp4").write_bytes(clip.read_bytes())
    out = tmp_path / "out"
    a, b = (str((tmp_path / f / "clip.mp4").resolve()) for f in ("a", "b"))
    model = ["--out", str(out), "--model", str(bundle_no_au)]
    assert analyze(a, *model) == 0
    assert analyze(b, *model) == 0
    sources = {
        p.parent.name: json.loads(p.read_text())["source"]["path"]
        for p in out.glob("*/summary.json")
    }
    assert sources["clip"] == a  # not replaced by b's results
    assert sorted(sources.values()) == [a, b] and len(sources) == 2
    assert analyze(a, *model) == 0
    assert read_rows(out / "summary.csv")[0]["reason"].startswith("complete from an earlier")


@pytest.mark.slow
@pytest.mark.shared
def test_a_video_folder_that_cannot_be_made_fails_that_video_only(tmp_path, bundle_no_au):
    """A file where a video's folder goes: that video is recorded as failed, naming the
    path, and the next video is still analysed (exit 1, summary.csv written)."""
    clip = shared_path("videos", CLIPS[0])
    other = tmp_path / "other.mp4"
    other.write_bytes(clip.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    (out / "pyfeat_single_face").write_text("in the way")
    assert analyze(str(clip), str(other), "--out", str(out), "--model", str(bundle_no_au)) == 1
    rows = {r["video"]: r for r in read_rows(out / "summary.csv")}
    assert rows["pyfeat_single_face"]["status"] == "failed"
    assert str(out / "pyfeat_single_face") in rows["pyfeat_single_face"]["reason"]
    assert rows["other"]["status"] == "ok" and (out / "other" / "summary.json").exists()


@pytest.mark.parametrize(
    ("address", "workers", "threads", "cluster_cpus", "local_cpus", "expected"),
    [
        (None, None, 1, 2, 2, 2),  # --ray: one worker per core
        (None, None, 2, 2, 2, 1),  # --ray --threads 2 on 2 cores: one 2-core worker
        (None, 3, 2, 6, 6, 3),  # --workers 3 --threads 2: a local cluster of 6 CPUs
        (None, None, 4, 4, 4, 1),  # more threads than cores: one worker still fits
        ("auto", None, 2, 8, None, 4),  # a cluster of 8 CPUs: four 2-core workers
    ],
)
def test_ray_workers_fit_the_cluster(
    monkeypatch, address, workers, threads, cluster_cpus, local_cpus, expected
):
    """Each worker reserves --threads CPUs: as many workers as fit, never one that waits
    for CPUs forever (before, --ray --threads 2 on 2 cores hung on the second video)."""
    from liveaffect.analysis import ray_runner

    monkeypatch.setattr(ray_runner.os, "cpu_count", lambda: 2)
    calls = []
    fake = SimpleNamespace(
        init=lambda **kw: calls.append(kw),
        cluster_resources=lambda: {"CPU": float(cluster_cpus)},
    )
    assert ray_runner._connect(fake, address, workers, threads, quiet=True) == expected
    assert calls[0].get("num_cpus") == local_cpus
    assert expected * threads <= cluster_cpus or expected == 1


def test_help_says_what_threads_does_in_analyze(capsys):
    """analyze runs one model copy per --threads core and OpenCV on one thread; with --ray
    a worker takes 1 core unless --threads says otherwise."""
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    threads = text.split("--threads N", 2)[-1].split("--verbose")[0]
    assert "model copies" in threads and "OpenCV runs on one thread" in threads
    assert "with --ray: 1 per worker" in threads


@pytest.mark.slow
@pytest.mark.shared
def test_sigterm_while_the_model_loads(tmp_path, bundle_no_au, monkeypatch):
    """SIGTERM before the first video starts: exit 143 and a summary.csv that says no
    video was started (it was 130, as for Ctrl-C, and no summary.csv)."""
    import time

    from liveaffect.analysis import runner

    def load_slowly(self, settings):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        raise AssertionError("the signal did not stop the load")

    monkeypatch.setattr(runner.VideoAnalyzer, "__init__", load_slowly)
    out = tmp_path / "out"
    clip = str(shared_path("videos", CLIPS[0]))
    assert analyze(clip, "--out", str(out), "--model", str(bundle_no_au)) == 143
    row = read_rows(out / "summary.csv")[0]
    assert row["status"] == "not started" and row["reason"] == "SIGTERM"


@pytest.mark.slow
@pytest.mark.shared
def test_tensorflows_start_up_lines_hidden_with_a_bucket_out(bundle_no_au):
    """--out on a bucket (ram:// stands in for gs://) loads TensorFlow for tf.io.gfile
    before the model: its start-up lines stay hidden there too, as the README says."""
    clip = str(shared_path("videos", CLIPS[0]))
    out = f"ram://liveaffect-quiet-{os.getpid()}/out"
    command = ["analyze", clip, "--out", out, "--model", str(bundle_no_au), "--threads", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "liveaffect", *command, "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


def test_a_ray_cluster_that_cannot_be_reached_is_named_as_such():
    """--ray auto with no cluster running: the error names --ray, not --out (ray.init's
    ConnectionError is an OSError, which the command reported as an --out problem)."""
    from liveaffect.analysis import ray_runner

    def init(**kw):
        raise ConnectionError(
            "Could not find any running Ray instance. Please specify the one to connect to "
            "by setting `--address` flag or `RAY_ADDRESS` environment variable."
        )

    fake = SimpleNamespace(init=init)
    with pytest.raises(ray_runner.RayUnavailable) as caught:
        ray_runner._connect(fake, "auto", None, 1, quiet=True)
    assert str(caught.value) == (
        "--ray auto: cannot connect to a Ray cluster: Could not find any running Ray instance"
    )


def test_inputs_folders_patterns_and_names(tmp_path):
    for rel in ("a/clip.mp4", "b/clip.mp4", "b/deep/other.MOV", "b/notes.txt", "c.avi"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    jobs = find_jobs([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "*.avi")])
    names = [j.name for j in jobs]
    assert [Path(j.path).name for j in jobs] == ["clip.mp4", "clip.mp4", "other.MOV", "c.avi"]
    assert len(set(names)) == 4 and names[2:] == ["other", "c"]
    assert all(n.startswith("clip-") for n in names[:2])  # same stem: made unique
    assert len(find_jobs([str(tmp_path / "c.avi"), str(tmp_path / "*.avi")])) == 1
    for odd in ("summary.csv.mp4", ".hidden.mp4"):  # out/summary.csv is the run's table
        (tmp_path / odd).write_bytes(b"x")
        (job,) = find_jobs([str(tmp_path / odd)])
        assert job.name.startswith(Path(odd).stem + "-"), job.name
    with pytest.raises(InputError, match="no such file"):
        find_jobs([str(tmp_path / "missing.mp4")])
    with pytest.raises(InputError, match="matches"):
        find_jobs([str(tmp_path / "*.mkv")])


def test_decoding_that_stops_early_is_a_failure():
    _check_complete(VideoStats(frames=100, announced_frames=100), None)
    with pytest.raises(VideoError, match="stopped after frame 40 of the 100"):
        _check_complete(VideoStats(frames=40, announced_frames=100), None)
    with pytest.raises(VideoError, match="decoding failed"):
        _check_complete(VideoStats(frames=40), "reading x failed: boom")
    with pytest.raises(VideoError, match="no frame"):
        _check_complete(VideoStats(frames=0), None)


def test_duration_is_the_end_of_the_last_frame_with_or_without_an_fps():
    assert VideoStats(frames=250, fps=25.0).duration_s == pytest.approx(10.0)
    # no fps: 250 frames stamped 0, 40, ..., 9960 ms last 10 s, not 9.96 s
    assert VideoStats(frames=250, last_timestamp_ms=9960.0).duration_s == pytest.approx(10.0)
    assert VideoStats(frames=1, last_timestamp_ms=0.0).duration_s == 0.0
    assert VideoStats(frames=0).duration_s == 0.0


def test_store_on_a_url_through_gfile(tmp_path):
    """gs:// goes through tf.io.gfile; its in-memory ram:// file system stands in here."""
    store = OutputStore(f"ram://liveaffect-test-{os.getpid()}/out")
    scratch = store.begin("video")
    local = store.scratch_file(scratch, "summary.json")
    Path(local).write_text(json.dumps({"status": "ok", "source": {"path": "v"}}))
    for name in ("faces.csv", "report.png"):
        other = store.scratch_file(scratch, name)
        Path(other).write_text("x")
        store.publish("video", other, name)
    assert store.completed("video", {"path": "v"}) is None  # no summary.json yet
    store.publish("video", local, "summary.json")
    store.finish(scratch)
    assert store.completed("video", {"path": "v"})["status"] == "ok"
    assert store.completed("video", {"path": "other"}) is None
    store.write_text("summary.csv", "video\n")
    from liveaffect.data import io

    assert io.read_text(store.root + "/summary.csv") == "video\n"
    assert sorted(io.listdir(store.video_dir("video"))) == [
        "faces.csv",
        "report.png",
        "summary.json",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["/no/such/video.mp4", "--out", "OUT"], "no such file or folder"),
        (["VIDEO", "--out", "OUT", "--workers", "2"], "--workers needs --ray"),
        (["VIDEO", "--out", "OUT", "--batch", "0"], "--batch must be 1 or more"),
        (["VIDEO", "--out", "OUT", "--min-face-score", "2"], "--min-face-score"),
        (["VIDEO", "--out", "OUT", "--detector", "nope"], "--detector"),
        (["VIDEO", "--out", "VIDEO"], "is a file, not a folder"),
    ],
)
def test_bad_options_one_error_line(tmp_path, capsys, args, expected):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    args = [a.replace("VIDEO", str(video)).replace("OUT", str(tmp_path / "o")) for a in args]
    assert main(["analyze", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err


def test_an_input_inside_out_is_refused_also_through_a_symlink(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "v.mp4").write_bytes(b"x")
    (tmp_path / "link").symlink_to(out)
    for video, target in ((out / "v.mp4", tmp_path / "link"), (tmp_path / "link" / "v.mp4", out)):
        assert main(["analyze", str(video), "--out", str(target)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "lies inside --out" in err[0], err


@pytest.mark.parametrize("existing", [True, False])
def test_an_unwritable_out_is_bad_input(tmp_path, capsys, monkeypatch, existing):
    """--out in a folder this user cannot write: one error line, exit 2, before the model
    loads (the model path here does not exist, so any later check would say that)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: str(p) != str(locked) and real_access(p, mode, **kw)
    )
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    out = locked if existing else locked / "out"
    assert main(["analyze", str(video), "--out", str(out), "--model", "/no/model"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --out: no permission to write in folder {locked}"]


def test_summary_and_report_with_every_head(tmp_path):
    """AU rates and the AU heat map appear when the card marks the AU head trained."""
    from liveaffect.analysis.report import render_report
    from liveaffect.analysis.summary import parse_faces_csv, summarize_faces
    from liveaffect.bundle import ModelCard
    from liveaffect.runtime.sinks import csv_columns

    columns = csv_columns(ModelCard())
    rng = np.random.default_rng(0)
    lines = [",".join(columns)]
    for frame in range(20):
        for face_id in (1, 2) if frame < 10 else (1,):
            probs = rng.dirichlet(np.ones(8))
            aus = rng.random(12)
            expression = ModelCard().expressions[int(np.argmax(probs))]
            cells = [frame, frame * 40.0, face_id, 10, 10, 50, 50, 0.9, *probs.round(4)]
            cells += [expression, 0.5 if face_id == 1 else -0.5, 0.1 * (frame % 3)]
            cells += [*aus.round(4), *(aus >= 0.5).astype(int)]
            lines.append(",".join(str(c) for c in cells))
    table = parse_faces_csv("\n".join(lines) + "\n")
    faces = summarize_faces(table, ("expr", "va", "au"))
    assert [f["frames_seen"] for f in faces] == [20, 10]
    assert faces[0]["valence_mean"] == 0.5 and faces[1]["valence_mean"] == -0.5
    assert faces[0]["valence_std"] == 0.0
    assert faces[1]["last_s"] == 0.36
    active = table.select(1).au_active[:, 0]
    assert faces[0]["AU01_rate"] == pytest.approx(active.mean(), abs=1e-4)
    assert sum(faces[0][f"share_{e}"] for e in table.expressions) == pytest.approx(1.0)
    path = tmp_path / "report.png"
    size = render_report(table, faces, ("expr", "va", "au"), "synthetic", str(path))
    image = cv2.imread(str(path))
    assert size == report_size_px(2) == (image.shape[1], image.shape[0])
    # AUs the card finds poorly on new faces: '?' in the table, a footnote under the plots
    from liveaffect.analysis.report import _table_rows

    top = max(table.aus, key=lambda au: faces[0][f"{au}_rate"])
    _, rows = _table_rows(faces, ("expr", "va", "au"), table.aus, (top,))
    assert rows[0][-1].startswith(f"{top}? ")
    marked = tmp_path / "marked.png"
    render_report(table, faces, ("expr", "va", "au"), "synthetic", str(marked), (top,))
    foot = [cv2.imread(str(p))[-12:, :400] for p in (path, marked)]
    assert (foot[1] < 128).sum() > (foot[0] < 128).sum() + 50  # the footnote's dark text
    no_face = tmp_path / "empty.png"
    empty = parse_faces_csv(",".join(columns) + "\n")
    assert render_report(empty, [], ("expr", "va"), "no faces", str(no_face)) == report_size_px(0)
    assert cv2.imread(str(no_face)) is not None


class _Engine:
    """Scores a face as its frame number; ``gate`` holds every call until it is set."""

    def __init__(self, calls: list[int], gate: threading.Event) -> None:
        self.calls, self.gate = calls, gate

    def predict(self, crops):
        self.calls.append(len(crops))
        assert self.gate.wait(10)
        return [float(c[0, 0, 0]) for c in crops]


class _Pipeline:
    """``locate``: one face per frame, its crop holding the frame number; ``finish``: the
    frame number and its scores."""

    def locate(self, frame):
        crops = np.full((1, 2, 2, 1), frame.index, np.float32)
        return LocatedFrame(frame, (object(),), crops, None)

    def finish(self, located, predictions):
        i = located.frame.index
        return SimpleNamespace(index=i, scores=list(predictions), faces=(), timestamp_ms=0.0)


def _batch_loop(threads: int, announced: int = 0):
    from liveaffect.analysis.runner import AnalysisSettings, _BatchLoop

    calls: list[int] = []
    gate = threading.Event()
    engines = queue.SimpleQueue()
    for _ in range(threads):
        engines.put(_Engine(calls, gate))
    settings = AnalysisSettings(model=Path("unused"), threads=threads, batch_frames=8)
    written = []
    sink = SimpleNamespace(
        write=lambda image, result: written.append((result.index, result.scores))
    )
    pool = ThreadPoolExecutor(threads)
    stats = VideoStats(announced_frames=announced)
    loop = _BatchLoop(SimpleNamespace(engines=engines, settings=settings), _Pipeline(), sink,
                      pool, stats, None)  # fmt: skip
    return loop, calls, gate, written, pool


def _frame(i: int) -> Frame:
    return Frame(i, 0.0, np.zeros((2, 2, 3), np.uint8))


def test_the_reports_table_lists_the_faces_seen_longest_and_fits_its_text():
    """A crowd has more face ids than rows: the table keeps those seen longest (in id
    order); an AU never active is not 'most active'; columns are as wide as their text."""
    from liveaffect.analysis.report import MAX_TABLE_ROWS, _table_rows, column_widths, table_faces

    faces = [{"face_id": i, "frames_seen": (i * 7) % 17 + 1} for i in range(1, 17)]
    shown = table_faces(faces)
    longest = sorted(f["frames_seen"] for f in faces)[-MAX_TABLE_ROWS:]
    assert sorted(f["frames_seen"] for f in shown) == longest
    assert [f["face_id"] for f in shown] == sorted(f["face_id"] for f in shown)
    face = {"face_id": 1, "frames_seen": 3, "first_s": 0.0, "last_s": 0.1, "AU01_rate": 0.5,
            "AU02_rate": 0.001, "AU04_rate": 0.0}  # fmt: skip
    assert _table_rows([face], ("au",), ("AU01", "AU02", "AU04"))[1][0][-1] == "AU01 50%"
    face["AU01_rate"] = 0.0
    assert _table_rows([face], ("au",), ("AU01", "AU02", "AU04"))[1][0][-1] == "none"
    widths = column_widths(["face", "most active AUs (rate)"], [["1", "AU23 100%, AU15? 100%"]])
    assert sum(widths) == pytest.approx(1.0) and widths[1] > 3 * widths[0]


def test_an_idle_engine_gets_the_first_frame_at_once_then_batches_fill():
    """With two cores the first frame goes to an engine alone (the other core would
    otherwise wait for eight frames to be detected); while it runs, batches fill up."""
    loop, calls, gate, written, pool = _batch_loop(threads=2)
    with pool:
        for i in range(9):
            loop.add(_frame(i))
        # frame 0 alone, then frames 1-8 in one call
        assert [len(batch) for batch, _ in loop.inflight] == [1, 8]
        gate.set()
        loop.drain()
    assert written == [(i, [float(i)]) for i in range(9)]  # in order, each its own score
    # One core: no engine beside this thread, so no early call.
    loop, calls, gate, written, pool = _batch_loop(threads=1)
    gate.set()
    with pool:
        for i in range(8):
            loop.add(_frame(i))
        loop.drain()
    assert calls == [8] and [w[0] for w in written] == list(range(8))


def test_batches_shrink_towards_the_announced_end_and_the_rest_is_split():
    loop, *_ = _batch_loop(threads=2, announced=100)
    sizes = {}
    for index, pending in ((40, 1), (83, 1), (90, 1), (95, 1), (98, 1), (99, 1), (93, 3)):
        loop.pending = [None] * pending  # the frame being added is pending already
        sizes[index, pending] = loop._batch_frames(LocatedFrame(_frame(index), (), None, None))
    # far from the end: 8; then at most half of what is left, as a power of two
    assert sizes == {
        (40, 1): 8, (83, 1): 8, (90, 1): 4, (95, 1): 2, (98, 1): 1, (99, 1): 1, (93, 3): 4
    }  # fmt: skip
    unknown, *_ = _batch_loop(threads=2, announced=0)
    assert unknown._batch_frames(LocatedFrame(_frame(500), (), None, None)) == 8
    longer, *_ = _batch_loop(threads=2, announced=100)  # the file holds more than announced
    assert longer._batch_frames(LocatedFrame(_frame(150), (), None, None)) == 8
    # The frames left at the end: one batch per engine, in order.
    loop, calls, gate, written, pool = _batch_loop(threads=2)
    gate.set()
    with pool:
        loop.pending = [_Pipeline().locate(_frame(i)) for i in range(5)]
        loop.drain()
    assert sorted(calls) == [2, 3] and [w[0] for w in written] == list(range(5))


def test_opencv_runs_on_one_thread_while_a_video_is_analysed():
    from liveaffect.analysis.runner import _opencv_threads

    before = cv2.getNumThreads()
    with _opencv_threads(1):
        assert cv2.getNumThreads() == 1
    assert cv2.getNumThreads() == before


def test_the_analyzer_names_the_weak_aus_as_csv_columns():
    from types import SimpleNamespace

    from liveaffect.analysis.runner import VideoAnalyzer
    from liveaffect.bundle import HeadInfo, ModelCard

    card = ModelCard(au_f1={"AU1": 0.2, "AU10": 0.0, "AU12": 0.9})
    assert VideoAnalyzer.weak_aus.fget(SimpleNamespace(card=card)) == ("AU01", "AU10")
    card.heads["au"] = HeadInfo(trained=False)  # a hidden AU head marks nothing
    assert VideoAnalyzer.weak_aus.fget(SimpleNamespace(card=card)) == ()


@pytest.mark.parametrize("preset", [None, "16"])
def test_ffmpeg_log_level_set_unless_the_user_did(tmp_path, monkeypatch, preset):
    """analyze silences FFmpeg's own lines ("moov atom not found" between the progress
    bars); a level the user set stays. Checked on a run that stops early (no model)."""
    if preset is None:
        monkeypatch.delenv("OPENCV_FFMPEG_LOGLEVEL", raising=False)
    else:
        monkeypatch.setenv("OPENCV_FFMPEG_LOGLEVEL", preset)
    code = analyze(str(tmp_path), "--out", str(tmp_path / "out"), "--model", str(tmp_path / "no"))
    assert code == 2
    assert os.environ["OPENCV_FFMPEG_LOGLEVEL"] == (preset or FFMPEG_QUIET)


def test_opencv_honours_the_ffmpeg_log_level(tmp_path):
    """The level analyze sets keeps FFmpeg quiet on a file it cannot open (and without
    it FFmpeg does speak, so the check can fail)."""
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video\n")
    probe = f"import cv2; assert not cv2.VideoCapture({str(bad)!r}).isOpened()"
    said = {}
    for level in (None, FFMPEG_QUIET):
        env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
        if level is not None:
            env["OPENCV_FFMPEG_LOGLEVEL"] = level
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == 0, done.stderr
        said[level] = done.stderr
    assert "moov atom not found" in said[None]
    assert said[FFMPEG_QUIET] == ""


def test_top_expression_from_counts_not_rounded_shares():
    """Shares are rounded to 4 decimals; two classes 3 frames apart in 100,000 frames round
    alike (0.3333), and the top expression is still the one with more frames."""
    from liveaffect.analysis.summary import FaceTable, summarize_face

    names = ("Neutral", "Anger", "Happiness")
    counts = {"Neutral": 33_331, "Anger": 33_335, "Happiness": 33_334}
    n = sum(counts.values())
    table = FaceTable(
        frame=np.arange(n),
        timestamp_ms=np.arange(n) * 40.0,
        face_id=np.ones(n, np.int64),
        expression=np.array([e for e in names for _ in range(counts[e])], dtype=object),
        probs=np.zeros((n, 3)),
        va=np.zeros((n, 2)),
        au=np.zeros((n, 0)),
        au_active=np.zeros((n, 0)),
        expressions=names,
    )
    face = summarize_face(table, 1, ("expr",))
    assert face["share_Neutral"] == face["share_Anger"] == face["share_Happiness"] == 0.3333
    assert face["top_expression"] == "Anger"
    # an exact tie goes to the first class in the card's order
    table.expression[:] = np.array(["Happiness", "Anger"] * (n // 2), dtype=object)
    tie = summarize_face(table, 1, ("expr",))
    assert tie["top_expression"] == "Anger"
