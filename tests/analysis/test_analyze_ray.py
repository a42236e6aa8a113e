"""``analyze --ray``: a local 2-worker Ray cluster gives the single-process rows, and a
worker killed in the middle of a video still leaves complete, identical outputs.

Needs Ray (``pip install -r requirements-ray.txt``; CI installs it); skipped without it.
"""

from __future__ import annotations

import csv
import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import make_tiny_bundle, shared_path

ray = pytest.importorskip("ray")

from liveaffect.analysis import ray_runner  # noqa: E402
from liveaffect.analysis.archive import analyze_archive  # noqa: E402
from liveaffect.analysis.inputs import find_jobs  # noqa: E402
from liveaffect.analysis.ray_runner import analyze_on_ray  # noqa: E402
from liveaffect.analysis.runner import AnalysisSettings  # noqa: E402

CLIPS = ("pyfeat_single_face.mp4", "pyfeat_face_noface.mov")
pytestmark = [pytest.mark.slow, pytest.mark.shared]


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def assert_same_rows(a: Path, b: Path) -> None:
    """Same frames, ids and empty cells; numbers within 1e-5."""
    ra, rb = rows(a), rows(b)
    assert len(ra) == len(rb) > 0
    for x, y in zip(ra, rb, strict=True):
        assert x.keys() == y.keys()
        for key, value in x.items():
            if value == "" or key in ("frame", "face_id", "expression"):
                assert y[key] == value, key
            else:
                assert abs(float(value) - float(y[key])) <= 1e-5, key


@pytest.fixture(scope="module")
def cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    bundle = make_tiny_bundle(tmp_path_factory.mktemp("ray_bundle"), trained=("expr", "va"))
    settings = AnalysisSettings(model=bundle, threads=1)
    jobs = find_jobs([str(shared_path("videos", c)) for c in CLIPS])
    reference = tmp_path_factory.mktemp("single") / "out"
    result = analyze_archive(jobs, settings, str(reference), quiet=True)
    assert result.exit_code == 0
    return settings, jobs, reference


def test_more_workers_than_a_running_cluster_holds_start_what_fits(cluster, caplog):
    # before, the extra workers waited for CPUs forever, and their videos with them
    with caplog.at_level(logging.WARNING, logger=ray_runner.__name__):
        assert ray_runner._connect(ray, None, 5, 1, quiet=True) == 2
    assert "--workers 5: the Ray cluster has CPUs for 2 worker(s)" in caplog.text
    assert ray_runner._connect(ray, None, 1, 1, quiet=True) == 1
    assert ray_runner._connect(ray, None, None, 2, quiet=True) == 1


def test_two_workers_give_the_single_process_rows(cluster, setup, tmp_path):
    settings, jobs, reference = setup
    pids = []
    result = analyze_on_ray(
        jobs, settings, str(tmp_path), quiet=True, workers=2, on_workers=pids.extend
    )
    assert result.exit_code == 0 and result.count("ok") == 2
    assert len(set(pids)) == 2 and os.getpid() not in pids
    assert {v["worker_pid"] for v in result.videos} <= set(pids)
    for job in jobs:
        assert_same_rows(reference / job.name / "faces.csv", tmp_path / job.name / "faces.csv")
    assert [r["video"] for r in rows(tmp_path / "summary.csv")][:1] == [jobs[0].name]


def test_a_killed_worker_still_gives_complete_outputs(cluster, setup, tmp_path):
    settings, jobs, reference = setup
    killed: list[int] = []

    def kill_one_mid_video(pids: list[int]) -> None:
        def watch() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed:
                for folder in tmp_path.glob("*"):
                    for partial in folder.glob(".faces.csv.partial-*"):
                        pid = int(partial.name.split("partial-")[1].split("-")[0])
                        if pid in pids:
                            os.kill(pid, signal.SIGKILL)
                            killed.append(pid)
                            return
                time.sleep(0.02)

        threading.Thread(target=watch, daemon=True).start()

    result = analyze_on_ray(
        jobs, settings, str(tmp_path), quiet=True, workers=2, on_workers=kill_one_mid_video
    )
    assert killed, "no worker was caught in the middle of a video"
    assert result.exit_code == 0 and result.count("ok") == 2
    assert all(v["worker_pid"] != killed[0] for v in result.videos)  # redone elsewhere
    for job in jobs:
        folder = tmp_path / job.name
        assert sorted(p.name for p in folder.iterdir()) == [
            "faces.csv",
            "report.png",
            "summary.json",
        ]
        assert_same_rows(reference / job.name / "faces.csv", folder / "faces.csv")


def test_ctrl_c_removes_the_running_videos_temporary_files(cluster, setup, tmp_path, monkeypatch):
    """Ctrl-C while the workers write their videos: the workers are stopped and their
    videos' temporary files removed, as in a single-process run; summary.csv says so."""
    settings, jobs, _ = setup
    out = tmp_path / "out"
    real_wait = ray.wait
    interrupted = []

    def wait_then_interrupt(refs, **kw):
        if not interrupted:
            deadline = time.monotonic() + 120
            while not list(out.glob("*/.*.partial-*")) and time.monotonic() < deadline:
                time.sleep(0.05)
            interrupted.append(list(out.glob("*/.*.partial-*")))
            raise KeyboardInterrupt
        return real_wait(refs, **kw)

    monkeypatch.setattr(ray, "wait", wait_then_interrupt)
    result = analyze_on_ray(jobs, settings, str(out), quiet=True, workers=2)
    assert interrupted[0], "no worker started writing"
    assert result.interrupted
    assert not list(out.rglob(".*.partial-*"))
    statuses = {r["status"] for r in rows(out / "summary.csv")}
    assert statuses <= {"interrupted", "not started", "ok"} and "interrupted" in statuses


def test_ctrl_c_while_the_cluster_starts(setup, tmp_path, monkeypatch):
    """Ctrl-C before any worker is up still writes summary.csv: every video not started."""
    from liveaffect.analysis import ray_runner

    def interrupt(*args):
        raise KeyboardInterrupt

    settings, jobs, _ = setup
    monkeypatch.setattr(ray_runner, "_connect", interrupt)
    result = analyze_on_ray(jobs, settings, str(tmp_path / "out"), quiet=True)
    assert result.interrupted and result.exit_code == 130
    statuses = [r["status"] for r in rows(tmp_path / "out" / "summary.csv")]
    assert statuses == ["not started"] * len(jobs)


def test_a_model_the_workers_cannot_load_is_one_error(cluster, setup, tmp_path):
    """A corrupt model.keras: the workers fail to start, and the run stops with the model's
    error (exit 2 in the command) before any video, instead of every video 'failed' with
    'worker died 3 times' and the workers' tracebacks."""
    from liveaffect.analysis.ray_runner import WorkerStartError

    settings, jobs, _ = setup
    bad = tmp_path / "bad_bundle"
    bad.mkdir()
    (bad / "card.json").write_bytes((Path(settings.model) / "card.json").read_bytes())
    (bad / "model.keras").write_bytes(b"not a zip archive" * 100)
    bad_settings = AnalysisSettings(model=bad, threads=1)
    with pytest.raises(WorkerStartError, match="cannot load the model"):
        analyze_on_ray(jobs, bad_settings, str(tmp_path / "out"), quiet=True, workers=2)


def test_the_command_draws_each_video_bar_to_its_end_without_native_chatter(tmp_path):
    """``analyze --ray`` as a user runs it (its own local cluster, bars on): the last
    video's bar reaches all its frames (before, the workers were killed before the bar's
    last state reached the driver, and it stayed at its previous update), and the
    workers' LiteRT/TensorFlow start-up lines ("Created TensorFlow Lite XNNPACK delegate",
    oneDNN notes) are hidden as in a local run."""
    import subprocess
    import sys

    bundle = make_tiny_bundle(tmp_path / "bundle", trained=("expr", "va"))
    clip = shared_path("videos", "pyfeat_single_face.mp4")  # 72 frames
    run = subprocess.run(
        [sys.executable, "-m", "liveaffect", "analyze", str(clip), "--out", str(tmp_path / "out"),
         "--model", str(bundle), "--ray", "--workers", "1"],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    err = run.stderr
    assert "pyfeat_single_face" in err and "72.0/72.0" in err, err[-2000:]
    for chatter in ("XNNPACK", "oneDNN", "cuda drivers"):
        assert chatter not in err, err[-2000:]
