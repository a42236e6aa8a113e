"""The bench/ scripts run end to end on tiny inputs and write the JSON bench/README.md cites."""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
import pytest
from conftest import REPO, make_tiny_bundle

from liveaffect.training.config import load_config


def _run(*args: str, unset: tuple[str, ...] = ()) -> str:
    """Run a bench script (``args``: its path and arguments) in a subprocess from the repo
    root, without the environment variables ``unset``; it must succeed. Returns its stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in unset:
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, env=env, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _in_process(script: str, *args: str) -> tuple[int, str, str]:
    """Run a bench script in this process as ``python script args`` runs it from the repo
    root: its ``__main__`` block with its own ``sys.argv``, its folder first on ``sys.path``,
    its environment changes undone afterwards. Returns (exit status, stdout, stderr).

    For the scripts that load, build, write or probe bundles: a subprocess of theirs spends
    most of its time importing TensorFlow (about 10 s on an AVX2-only EPYC, where this file
    took 347 s with about 30 such subprocesses and 173 s without). The timing scripts still
    run as subprocesses: they measure a process of their own."""
    out, err = io.StringIO(), io.StringIO()
    argv, path = sys.argv, sys.path
    sys.argv = [script, *args]
    sys.path = [str((REPO / script).parent), *path]
    try:
        with (
            mock.patch.dict(os.environ),
            contextlib.chdir(REPO),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            pytest.raises(SystemExit) as stop,
        ):
            runpy.run_path(str(REPO / script), run_name="__main__")
    finally:
        sys.argv, sys.path = argv, path
    code = stop.value.code
    if isinstance(code, str):  # SystemExit("error: ..."): printed, exit status 1
        return 1, out.getvalue(), err.getvalue() + code
    return int(code or 0), out.getvalue(), err.getvalue()


def _main(script: str, *args: str) -> str:
    """Run a bench script in this process (:func:`_in_process`); it must succeed."""
    code, out, err = _in_process(script, *args)
    assert code == 0, err[-2000:]
    return out


def _refused(script: str, *args: str, said: str) -> None:
    """A bench script that must refuse: exit status 2 and ``said`` on its stderr. In this
    process (:func:`_in_process`): a refusal comes before any real work."""
    code, _, err = _in_process(script, *args)
    assert code == 2 and said in err, (said, err[-500:])


@pytest.mark.slow
def test_crop_throughput_counts_faces_and_names_the_views(tmp_path):
    bundle = make_tiny_bundle(tmp_path / "bundle", input_size=32)
    card = json.loads((bundle / "card.json").read_text())
    card["tta"] = {"flip": True, "scales": [1.0, 0.9]}
    (bundle / "card.json").write_text(json.dumps(card))
    rng = np.random.default_rng(0)
    for name in ("happy", "sad"):
        (tmp_path / "faces" / name).mkdir(parents=True)
        for i in range(3):
            face = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
            cv2.imwrite(str(tmp_path / "faces" / name / f"{i}.png"), face)
    for flags, views in (([], "flip x scales 1/0.9 (4 views)"), (["--no-tta"], "none (1 view)")):
        out = tmp_path / "crops.json"
        text = _run(
            "bench/crop_throughput.py", "--model", str(bundle), "--data", str(tmp_path / "faces"),
            "--batches", "1,4", "--repeats", "1", "--engine", "keras", "--json", str(out), *flags,
        )  # fmt: skip
        result = json.loads(out.read_text())
        assert result["faces"] == 6 and result["test_time_views"] == views and views in text
        assert [r["faces_per_call"] for r in result["rows"]] == [1, 4]
        assert all(r["crops_per_s"] > 0 for r in result["rows"])
        assert result["cpu_count"] >= 1 and "simd" in result and "cpu_model" in result


@pytest.mark.slow
def test_train_step_times_each_width_set(tmp_path):
    from liveaffect.hardware import ONEDNN_ENV, native_bfloat16

    out = tmp_path / "steps.json"
    text = _run(
        "bench/train_step.py", "--config", "configs/default_model.yaml",
        "--widths", "8,16,16,32;4,8,16,32", "--steps", "2", "--jit-compile", "--json", str(out),
        unset=(ONEDNN_ENV,),
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert [r["widths"] for r in result["rows"]] == [[8, 16, 16, 32], [4, 8, 16, 32]]
    assert all(r["ms_per_step"] > 0 and r["params_m"] > 0 for r in result["rows"])
    # the config's "auto", resolved for this CPU as training resolves it
    assert result["batch_size"] == 128 and result["mixed_precision_asked"] == "auto"
    assert result["mixed_precision"] == ("bfloat16" if native_bfloat16() else "none")
    assert result["jit_compile"] is True
    # TensorFlow's oneDNN kernels asked for, as the train command asks for them
    assert result["onednn"] == "1"
    assert "8-16-16-32" in text


@pytest.mark.slow
def test_model_throughput_times_a_bundles_views_and_a_training_step(tmp_path):
    bundle = make_tiny_bundle(tmp_path / "bundle", input_size=32)
    card = json.loads((bundle / "card.json").read_text())
    card["tta"] = {"flip": True, "scales": [1.0, 0.9, 0.8]}
    (bundle / "card.json").write_text(json.dumps(card))
    out = tmp_path / "throughput.json"
    text = _run(
        "bench/model_throughput.py", "--bundle", str(bundle), "--batches", "1,4",
        "--repeats", "2", "--train", "configs/default_model.yaml@8", "--steps", "1",
        "--precision", "none", "--json", str(out),
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert result["backend"] == "tensorflow" and result["device"] == "cpu"
    # each face runs as the card's six views, as in the app
    rows = result["inference"]
    assert [(r["faces_per_call"], r["rows_per_call"]) for r in rows] == [(1, 6), (4, 24)]
    assert all(r["ms_per_call"] > 0 and r["faces_per_s"] > 0 for r in rows)
    (train,) = result["training"]
    assert train["batch_size"] == 8 and train["precision"] == "none"
    widths = load_config(REPO / "configs" / "default_model.yaml").model.widths
    assert train["widths"] == list(widths) and train["ms_per_step"] > 0
    assert "backend tensorflow" in text
    _refused("bench/model_throughput.py", "--batches", "1", said="nothing to time")


def _grey_clip(path):
    """A 12-frame 64x48 clip of flat grey frames (no face: the streams still send frames)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(12):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    return path


@pytest.mark.slow
def test_stream_cost_alternates_runs_and_the_clients_receive(tmp_path):
    bundle = make_tiny_bundle(tmp_path / "bundle", input_size=32)
    video = _grey_clip(tmp_path / "clip.avi")
    out = tmp_path / "stream.json"
    text = _run(
        "bench/stream_cost.py", "--source", str(video), "--model", str(bundle),
        "--engine", "keras", "--frames", "8", "--rounds", "2", "--json", str(out),
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert all(
        {"all", "none", "faces_all", "cpu_ms_all", "clients_cpu_ms_none", "streams_cpu_ms_all"}
        <= set(r)
        for r in result["rounds"]
    )
    assert len(result["rounds"]) == 2 and result["median_cpu_ms_all"] > 0
    assert result["sender"] == "streaming process (low priority)"
    assert result["median_fps_none"] > 0 and result["median_fps_all"] > 0
    assert result["jsonl_lines"] == 16  # 8 frames x 2 "all" runs
    assert result["clients_received"]["lsl"] == 16 and result["clients_received"]["ws"] == 16
    assert result["clients_received"]["osc"] == 16  # one /frame message per frame, no faces
    assert "median FPS" in text


@pytest.mark.slow
def test_stream_latency_times_each_frame_from_the_loop_to_an_osc_receiver(tmp_path):
    bundle = make_tiny_bundle(tmp_path / "bundle", input_size=32)
    video = _grey_clip(tmp_path / "clip.avi")
    out = tmp_path / "latency.json"
    text = _run(
        "bench/stream_latency.py", "--source", str(video), "--model", str(bundle),
        "--engine", "keras", "--frames", "10", "--load", "1", "--json", str(out),
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert result["frames"] == 10 and result["frames_received"] == 10
    assert result["load_processes"] == 1 and result["fps"] > 0
    assert 0 < result["latency_ms_median"] <= result["latency_ms_p95"] <= result["latency_ms_max"]
    assert "latency median" in text


def test_draw_cost_times_the_live_view(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
    writer.release()
    out = tmp_path / "draw.json"
    text = _run("bench/draw_cost.py", "--source", str(video), "--size", "320x180",
                "--faces", "5", "--frames", "5", "--json", str(out))  # fmt: skip
    result = json.loads(out.read_text())
    assert result["faces"] == 5 and result["frames"] == 5
    assert result["heads"] == ["expr", "va", "au"]
    assert result["canvas"][1] == 540  # a 180-pixel frame is enlarged for the text
    assert 0 < result["cpu_ms_median"] <= result["cpu_ms_p95"] and "draw 320x180" in text


@pytest.mark.slow
@pytest.mark.shared
def test_analyze_speed_times_live_and_analyze_alike(tmp_path):
    from conftest import shared_path

    bundle = make_tiny_bundle(tmp_path / "bundle", trained=("expr", "va"))
    out = tmp_path / "speed.json"
    clip = shared_path("videos", "pyfeat_single_face.mp4")
    text = _run(
        "bench/analyze_speed.py", "--source", str(clip), "--model", str(bundle),
        "--rounds", "1", "--json", str(out),
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert len(result["live_fps"]) == len(result["analyze_fps"]) == 1
    assert result["live_fps_median"] > 0 and result["analyze_fps_median"] > 0
    assert result["csv_rows_equal_count"] is True  # both wrote a row per face per frame
    assert "median: live" in text and result["command"].startswith("bench/analyze_speed.py")


@pytest.mark.slow
@pytest.mark.shared
def test_small_faces_reports_sizes_and_cost(tmp_path):
    from conftest import shared_path

    videos = shared_path("videos", "pyfeat_single_face.mp4").parent
    out = tmp_path / "small.json"
    text = _run(
        "bench/small_faces.py", "--videos", str(videos), "--step", "200", "--heights", "24",
        "--frames", "80", "--rounds", "1", "--cost-frames", "5", "--json", str(out),
    )  # fmt: skip
    result = json.loads(out.read_text())
    from liveaffect.runtime.detectors import DEFAULT_MIN_SCORE

    assert result["min_score"] == DEFAULT_MIN_SCORE  # the app's threshold, not the class's
    assert [r["frame"] for r in result["sizes"]] == ["640x360", "640x480", "1280x720", "1920x1080"]
    row = result["sizes"][1]
    assert row["height"] == 24 and row["pictures"] == 4
    assert row["off"] == 0.0 and row["still"] >= 0.75 and row["video"] >= 0.75
    cost = result["cost"]
    assert cost["frames"] == 5 and cost["video_cpu_ms"] > 0 and cost["off_cpu_ms"] > 0
    assert "24 px in   640x480" in text


@pytest.mark.shared
def test_full_range_schedule_compares_every_n_with_every_frame(tmp_path):
    from conftest import shared_path

    videos = shared_path("videos", "pyfeat_single_face.mp4").parent
    out = tmp_path / "schedule.json"
    text = _run(
        "bench/full_range_schedule.py", "--videos", str(videos), "--clips",
        "pyfeat_single_face.mp4", "--every", "4", "--frames", "20", "--rounds", "1",
        "--json", str(out),
    )  # fmt: skip
    result = json.loads(out.read_text())
    every, fourth = result["rows"]
    assert every["full_range_every"] == 1 and every["full_range_share"] == 1.0
    assert fourth["full_range_every"] == 4 and fourth["full_range_share"] == 0.25
    assert every["faces"] == fourth["faces"] == fourth["matched"] == 20
    assert fourth["missed"] == fourth["extra"] == 0 and 0.8 < fourth["box_iou"] < 1.0
    assert fourth["jitter"] is not None and result["command"].startswith("bench/")
    assert "N=4" in text


@pytest.mark.shared
def test_detector_shrink_compares_halving_with_one_area_step(tmp_path):
    from conftest import shared_path

    videos = shared_path("videos", "pyfeat_single_face.mp4").parent
    out = tmp_path / "shrink.json"
    text = _run(
        "bench/detector_shrink.py", "--videos", str(videos), "--clips",
        "pyfeat_single_face.mp4", "--frames", "12", "--rounds", "1", "--repeat", "3",
        "--json", str(out),
    )  # fmt: skip
    (clip,) = json.loads(out.read_text())["clips"]
    assert [r["to"] for r in clip["resize"]] == ["128x72", "192x108"]
    assert all(0 < r["mean_abs_diff"] < 3 and r["halving_us"] > 0 for r in clip["resize"])
    step, halving = clip["one_step"], clip["halving"]
    assert step["faces"] == step["matched"] == halving["matched"] == 12
    assert halving["missed"] == halving["extra"] == 0 and 0.8 < halving["box_iou"] <= 1.0
    assert "detector, halving" in text


@pytest.mark.shared
def test_resize_clip_writes_every_frame_at_the_asked_size(tmp_path):
    import cv2
    from conftest import shared_path

    source = shared_path("videos", "pyfeat_single_face.mp4")
    out = tmp_path / "small.mp4"
    text = _run("bench/resize_clip.py", "--source", str(source), "--size", "320x180",
                "--out", str(out))  # fmt: skip
    copy, original = cv2.VideoCapture(str(out)), cv2.VideoCapture(str(source))
    assert copy.get(cv2.CAP_PROP_FRAME_WIDTH) == 320 and copy.get(cv2.CAP_PROP_FRAME_HEIGHT) == 180
    frames = int(original.get(cv2.CAP_PROP_FRAME_COUNT))
    assert int(copy.get(cv2.CAP_PROP_FRAME_COUNT)) == frames and f"{frames} frames" in text
    bad = subprocess.run(
        [sys.executable, "bench/resize_clip.py", "--source", str(tmp_path / "none.mp4"),
         "--size", "320x180", "--out", str(tmp_path / "x.mp4")],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert bad.returncode == 2 and "video file not found" in bad.stderr


AUS = ["AU01", "AU02", "AU04", "AU06", "AU07", "AU10"]
AUS += ["AU12", "AU15", "AU23", "AU24", "AU25", "AU26"]


def _ckplus_like(folder) -> str:
    """A ckplus_au-style manifest: 24 subjects, 3 random 48x48 faces each, random AUs."""
    rng = np.random.default_rng(0)
    (folder / "images").mkdir()
    lines = ["path,expression,video,subject," + ",".join(AUS)]
    for s in range(24):
        for i in range(3):
            name = f"images/S{s:03d}_{i}.png"
            cv2.imwrite(str(folder / name), rng.integers(0, 255, (48, 48), dtype=np.uint8))
            codes = ",".join(str(int(v)) for v in rng.integers(0, 2, 12))
            lines.append(f"{name},happiness,S{s:03d}_001,S{s:03d},{codes}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return str(folder / "labels.csv")


def _check_probe(result: dict, text: str, features: str) -> None:
    assert result["features"] == features
    assert [r["C"] for r in result["runs"]] == [0.1, 1.0]
    assert sum(result["split"]["subjects"].values()) == 24
    assert sum(result["split"]["faces"].values()) == 72
    assert set(result["chosen"]["test_per_au_f1"]) == {a.replace("AU0", "AU") for a in AUS}
    assert "chosen on validation" in text


@pytest.mark.slow
def test_au_baseline_probes_a_bundles_features_on_a_subject_split(tmp_path):
    bundle = make_tiny_bundle(tmp_path / "bundle", input_size=32)
    out = tmp_path / "probe.json"
    data = _ckplus_like(tmp_path)
    text = _main(
        "bench/au_hog_baseline.py", "--features", "model", "--model", str(bundle),
        "--data", data, "--c", "0.1,1", "--json", str(out),
    )  # fmt: skip
    _check_probe(json.loads(out.read_text()), text, f"{bundle}:pool")
    text = _main(
        "bench/au_hog_baseline.py", "--features", "model", "--model", str(bundle),
        "--layer", "au,expr", "--data", data, "--c", "0.1,1",
        "--json", str(out),
    )  # fmt: skip
    result = json.loads(out.read_text())
    _check_probe(result, text, f"{bundle}:au,expr")
    assert result["dimensions"] == 12 + 8  # the AU and expression heads side by side
    text = _main(
        "bench/au_hog_baseline.py", "--features", "model", "--model", str(bundle),
        "--layer", "features_dropout", "--data", data, "--c", "0.1,1", "--json", str(out),
    )  # fmt: skip
    result = json.loads(out.read_text())
    _check_probe(result, text, f"{bundle}:features_dropout")
    assert result["dimensions"] == 8 * 8 * 16  # a spatial map, flattened


@pytest.mark.slow
def test_au_baseline_cross_validates_by_subject_and_refuses_a_bundle_that_saw_ckplus(tmp_path):
    bundle = make_tiny_bundle(tmp_path / "bundle", input_size=32)
    data = _ckplus_like(tmp_path)
    out = tmp_path / "cv.json"
    text = _main(
        "bench/au_hog_baseline.py", "--features", "model", "--model", str(bundle),
        "--data", data, "--c", "0.1,1", "--folds", "3", "--json", str(out),
    )  # fmt: skip
    result = json.loads(out.read_text())
    folds = result["folds"]
    assert result["protocol"]["folds"] == 3 and len(folds) == 3
    assert result["protocol"]["subjects"] == 24 and result["protocol"]["faces"] == 72
    assert sum(f["subjects"]["test"] for f in folds) == 24  # every subject tested once
    for fold in folds:  # the fold's other subjects: fitted on or validated on, never tested
        assert fold["subjects"]["rest"] + fold["subjects"]["val"] == 24 - fold["subjects"]["test"]
        assert fold["C"] in (0.1, 1.0)
    means = [f["test_mean_f1"] for f in folds]
    assert result["fold_mean_f1"] == pytest.approx(float(np.mean(means)))
    pooled = result["pooled_per_au_f1"]
    assert set(pooled) == {a.replace("AU0", "AU") for a in AUS}
    assert result["pooled_mean_f1"] == pytest.approx(float(np.mean(list(pooled.values()))))
    assert "3 folds over 24 subjects" in text

    card = json.loads((bundle / "card.json").read_text())
    ckplus = "../shared/data/ckplus_au/labels.csv"
    card["training"] = {"config": {"data": {"train": [{"path": ckplus}]}}}
    (bundle / "card.json").write_text(json.dumps(card))
    _refused(
        "bench/au_hog_baseline.py", "--features", "model", "--model", str(bundle),
        "--data", data, "--folds", "3", said="trained on CK+ subjects",
    )  # fmt: skip


@pytest.mark.slow
def test_au_baseline_probes_facemesh_landmarks_on_a_subject_split(tmp_path):
    out = tmp_path / "probe.json"
    text = _main(
        "bench/au_hog_baseline.py", "--features", "landmarks",
        "--data", _ckplus_like(tmp_path), "--c", "0.1,1", "--json", str(out),
    )  # fmt: skip
    _check_probe(json.loads(out.read_text()), text, "landmarks")


def test_cpu_info_reads_the_model_and_the_simd_features_that_change_speeds(tmp_path):
    from liveaffect.hardware import cpu_info, native_bfloat16

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC 9R14\n"
        "flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni\n\n"
        "processor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n"
    )
    info = cpu_info(cpuinfo)
    assert info["cpu_model"] == "AMD EPYC 9R14"  # the first processor's
    assert info["simd"] == ["avx2", "fma", "avx512f", "avx512_vnni"]
    assert info["cpu_count"] >= 1 and info["machine"]
    missing = cpu_info(tmp_path / "nowhere")
    assert missing["cpu_model"] is None and missing["simd"] is None
    assert native_bfloat16(cpuinfo) is False and native_bfloat16(tmp_path / "nowhere") is None
    cpuinfo.write_text("model name\t: Xeon\nflags\t\t: avx2 amx_bf16 amx_tile\n")
    assert native_bfloat16(cpuinfo) is True


@pytest.mark.slow
def test_blend_weights_mixes_every_layer_but_the_kept_ones(tmp_path):
    from liveaffect.bundle import load_bundle

    start = make_tiny_bundle(tmp_path / "start", input_size=32, seed=1)
    end = make_tiny_bundle(tmp_path / "end", input_size=32, seed=2)
    text = _main(
        "bench/blend_weights.py", "--start", str(start), "--end", str(end),
        "--alpha", "0.25,1", "--keep", "au", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert "blend_0.25" in text and "blend_1.00" in text
    models = {n: load_bundle(p).model for n, p in (("start", start), ("end", end))}
    blended = load_bundle(tmp_path / "out" / "blend_0.25")
    same = load_bundle(tmp_path / "out" / "blend_1.00").model
    assert "blended: 0.75 x" in blended.card.notes
    paths = [w.path for w in blended.model.weights]
    parts = zip(
        paths,
        blended.model.get_weights(),
        models["start"].get_weights(),
        models["end"].get_weights(),
        same.get_weights(),
        strict=True,
    )
    mixed = 0
    for path, got, s, e, at_one in parts:
        np.testing.assert_allclose(at_one, e, atol=1e-7)  # alpha 1 is --end itself
        if path.split("/")[0] == "au":
            np.testing.assert_array_equal(got, e)
        else:
            np.testing.assert_allclose(got, 0.75 * s + 0.25 * e, rtol=1e-5, atol=1e-7)
            mixed += not np.allclose(s, e)
    assert mixed > 0 and any(p.startswith("au/") for p in paths)


def test_blend_weights_refuses_models_that_differ(tmp_path):
    start = make_tiny_bundle(tmp_path / "start", input_size=32, seed=1)
    end = make_tiny_bundle(tmp_path / "end", input_size=32, seed=2, trained=("expr",))
    other = tmp_path / "other"
    make_tiny_bundle(other, input_size=32, color="gray")
    cases = ((start, end, "nope", "no layer named nope"), (other, end, "au", "same variables"))
    for first, second, keep, said in cases:
        _refused(
            "bench/blend_weights.py", "--start", str(first), "--end", str(second),
            "--keep", keep, "--out", str(tmp_path / "out"), said=said,
        )  # fmt: skip
    assert not (tmp_path / "out").exists()


def _cnn_bundle(out, widths=(4, 8, 8, 12), attention_heads=0):
    """A small random bundle with the ``cnn`` backbone and its config in the card (a head
    without attention, as the default model's)."""
    import keras

    from liveaffect.bundle import HEADS, HeadInfo, ModelCard, save_bundle
    from liveaffect.model.mtl import build_mtl_model
    from liveaffect.preprocess import PreprocessSpec
    from liveaffect.training.config import config_from_dict

    keras.utils.set_random_seed(3)
    head = {"attention_heads": attention_heads, "shared_units": 16, "branch_units": 8}
    raw = {
        "model": {
            "backbone": "cnn", "input_size": 32, "color": "gray", "widths": list(widths),
            "head": head,
        }
    }  # fmt: skip
    cfg = config_from_dict(raw)
    card = ModelCard(
        name="tiny-cnn",
        backbone="cnn",
        preprocess=PreprocessSpec(input_size=(32, 32), color="gray", crop_margin=0.1),
        heads={h: HeadInfo(trained=True, data="random weights (test)") for h in HEADS},
        training={"config": cfg.to_dict()},
    )
    return save_bundle(build_mtl_model(cfg.model), card, out)


@pytest.mark.slow
def test_widen_backbone_keeps_the_outputs_and_makes_the_stages_wider(tmp_path):
    from liveaffect.bundle import load_bundle

    bundle = _cnn_bundle(tmp_path / "narrow")
    text = _main(
        "bench/widen_backbone.py", "--bundle", str(bundle), "--widths", "4,8,8,20",
        "--out", str(tmp_path / "wide"),
    )  # fmt: skip
    assert "s3_conv1/kernel" in text and "s3_conv0/kernel" not in text.split("(")[0]
    narrow, wide = load_bundle(bundle), load_bundle(tmp_path / "wide")
    assert wide.model.get_layer("s3_conv1").kernel.shape[-1] == 20
    assert wide.card.training["config"]["model"]["widths"] == [4, 8, 8, 20]
    faces = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 1)).astype(np.float32)
    a, b = narrow.model.predict(faces, verbose=0), wide.model.predict(faces, verbose=0)
    for head in ("expr", "va", "au"):
        np.testing.assert_allclose(np.asarray(a[head]), np.asarray(b[head]), atol=1e-5)
    new = wide.model.get_layer("s3_conv1").get_weights()[0]
    assert np.all(new[..., 12:, :12] == 0) and np.any(new[..., :12, 12:] != 0)


def test_widen_backbone_refuses_narrower_or_other_backbones(tmp_path):
    bundle = _cnn_bundle(tmp_path / "narrow")
    other = make_tiny_bundle(tmp_path / "tiny", input_size=32)
    cases = (
        (bundle, "4,8,8,6", "at least as wide"),
        (bundle, "4,8,8", "has 4 stages"),
        (bundle, "4,x", "comma-separated integers"),
        (other, "4,8,8,12", "no training config"),
        (_cnn_bundle(tmp_path / "attention", attention_heads=1), "4,8,8,20", "has attention"),
    )
    for source, widths, said in cases:
        _refused(
            "bench/widen_backbone.py", "--bundle", str(source), "--widths", widths,
            "--out", str(tmp_path / "out"), said=said,
        )  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_average_bundles_outputs_the_members_mean(tmp_path):
    from liveaffect.bundle import load_bundle

    members = [make_tiny_bundle(tmp_path / f"m{i}", input_size=32, seed=i) for i in (1, 2)]
    text = _main(
        "bench/average_bundles.py", "--members", ",".join(map(str, members)),
        "--out", str(tmp_path / "mean"),
    )  # fmt: skip
    assert "wrote" in text
    mean = load_bundle(tmp_path / "mean")
    assert "mean of the outputs of" in mean.card.notes
    faces = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    got = mean.model.predict(faces, verbose=0)
    each = [load_bundle(m).model.predict(faces, verbose=0) for m in members]
    for head in ("expr", "va", "au"):
        want = (np.asarray(each[0][head]) + np.asarray(each[1][head])) / 2
        np.testing.assert_allclose(np.asarray(got[head]), want, atol=1e-6)
    assert not np.allclose(np.asarray(each[0]["expr"]), np.asarray(each[1]["expr"]))


def test_average_bundles_refuses_one_member_or_other_faces(tmp_path):
    rgb = make_tiny_bundle(tmp_path / "rgb", input_size=32)
    gray = make_tiny_bundle(tmp_path / "gray", input_size=32, color="gray")
    for members, said in ((f"{rgb}", "at least two"), (f"{rgb},{gray}", "takes other faces")):
        _refused(
            "bench/average_bundles.py", "--members", members, "--out", str(tmp_path / "out"),
            said=said,
        )  # fmt: skip
    assert not (tmp_path / "out").exists()


def _recipe_cv_config(tmp_path, data: str) -> str:
    """A stage 2 config like the recipe's: FER-style folders plus the CK+ manifest."""
    import yaml

    config = {
        "name": "cv-test",
        "model": {"backbone": "tiny", "input_size": 32, "color": "gray"},
        "data": {
            "train": [
                {"path": "faces/train"},
                {"path": data, "group_by": "subject", "holdout": 0.3, "part": "rest",
                 "seed": 35, "repeat": 8},
            ],
            "validation": [
                {"path": data, "group_by": "subject", "holdout": 0.3, "part": "holdout_val",
                 "seed": 35},
            ],
        },
        "train": {"epochs": 1, "init_from": "runs/stage1/bundle"},
    }  # fmt: skip
    path = tmp_path / "stage2.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def test_au_recipe_cv_deals_subjects_into_folds_and_rewrites_only_the_ckplus_sources(tmp_path):
    import csv

    import yaml

    data = _ckplus_like(tmp_path)
    config = _recipe_cv_config(tmp_path, data)
    out = tmp_path / "cv"
    text = _main(
        "bench/au_recipe_cv.py", "prepare", "--data", data, "--config", config,
        "--folds", "3", "--init-from", "runs/other/bundle", "--out", str(out),
    )  # fmt: skip
    assert text.count("fold ") == 3
    tested = []
    for k in range(3):
        with open(out / f"fold{k}" / "ckplus.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 72  # every face, once per fold
        sides = {}
        for row in rows:
            assert os.path.isabs(row["path"]) and os.path.exists(row["path"])
            sides.setdefault(row["subject"], set()).add(row["split"])
        assert all(len(s) == 1 for s in sides.values())  # no subject on two sides
        split_of = {subject: s.pop() for subject, s in sides.items()}
        assert set(split_of.values()) == {"train", "validation", "test"}
        tested += [subject for subject, split in split_of.items() if split == "test"]

        cfg = load_config(out / f"fold{k}" / "config.yaml")
        manifest = str((out / f"fold{k}" / "ckplus.csv").resolve())
        train, validation = cfg.data.train, cfg.data.validation
        assert train[0].path == "faces/train"  # the other sources stay as they were
        assert (train[1].path, train[1].split, train[1].repeat) == (manifest, "train", 8)
        assert train[1].holdout in (None, 0, 0.0) and not train[1].group_by
        assert (validation[0].path, validation[0].split) == (manifest, "validation")
        assert cfg.train.init_from == "runs/other/bundle" and cfg.train.epochs == 1
    assert sorted(tested) == sorted(f"S{s:03d}" for s in range(24))  # each tested once

    bad = tmp_path / "no_ckplus.yaml"
    raw = yaml.safe_load(Path(config).read_text())
    raw["data"]["validation"] = [{"path": "faces/test"}]
    bad.write_text(yaml.safe_dump(raw))
    _refused(
        "bench/au_recipe_cv.py", "prepare", "--data", data, "--config", str(bad),
        "--out", str(tmp_path / "bad"), said="data.validation has no",
    )  # fmt: skip


@pytest.mark.slow
def test_au_recipe_cv_scores_each_folds_bundle_on_its_test_subjects_and_pools_them(tmp_path):
    import shutil

    from sklearn.metrics import f1_score

    data = _ckplus_like(tmp_path)
    out = tmp_path / "cv"
    _main(
        "bench/au_recipe_cv.py", "prepare", "--data", data, "--folds", "3",
        "--config", _recipe_cv_config(tmp_path, data), "--out", str(out),
    )  # fmt: skip
    _refused("bench/au_recipe_cv.py", "score", "--out", str(out), said="train the fold first")
    bundle = make_tiny_bundle(tmp_path / "tiny", input_size=32, color="gray")
    for k in range(3):
        shutil.copytree(bundle, out / f"fold{k}" / "run" / "bundle")
    result_path = tmp_path / "cv.json"
    text = _main("bench/au_recipe_cv.py", "score", "--out", str(out), "--json", str(result_path))
    result = json.loads(result_path.read_text())
    folds = result["folds"]
    assert [f["fold"] for f in folds] == [0, 1, 2]
    assert sum(f["test_faces"] for f in folds) == 72  # every face tested once
    assert sum(f["subjects"]["test"] for f in folds) == 24
    assert all(len(f["thresholds"]) == 12 for f in folds)
    means = [f["test_mean_f1"] for f in folds]
    assert result["fold_mean_f1"] == pytest.approx(float(np.mean(means)))
    pooled = result["pooled_per_au_f1"]
    assert list(pooled) == [a.replace("AU0", "AU") for a in AUS]
    assert result["pooled_mean_f1"] == pytest.approx(float(np.mean(list(pooled.values()))))
    assert "3 folds" in text
    # the same bundle in every fold: its probabilities, each fold's thresholds on that
    # fold's test rows, pooled, give the reported per-AU F1
    sys.path.insert(0, str(REPO / "bench"))
    from au_recipe_cv import _au_probs

    from liveaffect.data.loaders import load_records
    from liveaffect.evaluation.metrics import tune_au_thresholds

    truth, predicted = [], []
    for fold in folds:
        manifest = str(out / f"fold{fold['fold']}" / "ckplus.csv")
        val = load_records(manifest, split="validation")
        tuned = tune_au_thresholds(_au_probs(str(bundle), val), np.stack([r.au for r in val]))
        assert fold["thresholds"] == pytest.approx(tuned.tolist())  # the validation faces' tuning
        test = load_records(manifest, split="test")
        truth.append(np.stack([r.au for r in test]))
        predicted.append(_au_probs(str(bundle), test) >= np.asarray(fold["thresholds"]))
    by_hand = f1_score(np.concatenate(truth), np.concatenate(predicted), average=None)
    assert list(pooled.values()) == pytest.approx(by_hand.tolist())


def _two_folds_with_bundles(au_recipe_cv, tmp_path, data: str):
    """``prepare --folds 2`` into tmp_path/cv, and a card.json where each fold's bundle goes
    (the tests replace what reads the bundles)."""
    out = tmp_path / "cv"
    args = ["prepare", "--data", data, "--folds", "2", "--out", str(out)]
    assert au_recipe_cv.main([*args, "--config", _recipe_cv_config(tmp_path, data)]) == 0
    for k in range(2):
        (out / f"fold{k}" / "run" / "bundle").mkdir(parents=True)
        (out / f"fold{k}" / "run" / "bundle" / "card.json").write_text("{}")
    return out


def test_au_recipe_cv_tunes_thresholds_on_validation_subjects_never_on_test(tmp_path, monkeypatch):
    import argparse

    sys.path.insert(0, str(REPO / "bench"))
    import au_recipe_cv

    data = _ckplus_like(tmp_path)
    out = _two_folds_with_bundles(au_recipe_cv, tmp_path, data)

    def probs(bundle, records):  # validation faces separate at 0.75, test faces at 0.25
        high = np.array([0.9 if r.split == "validation" else 0.4 for r in records])
        return np.stack([r.au for r in records]) * 0.3 + (high - 0.3)[:, None]

    monkeypatch.setattr(au_recipe_cv, "_au_probs", probs)
    result = tmp_path / "cv.json"
    ns = argparse.Namespace(out=str(out), json=str(result), expression_prior=False)
    assert au_recipe_cv.score(ns) == 0
    folds = json.loads(result.read_text())["folds"]
    for fold in folds:
        assert all(0.6 < t <= 0.9 for t in fold["thresholds"])
        assert fold["val_mean_f1"] == 1.0 and fold["test_mean_f1"] == 0.0


def _ckplus_by_expression(folder) -> str:
    """A ckplus_au-style manifest whose AUs follow the expression: 24 subjects, each one
    expression (surprise: AU01 + AU02 + AU25, happiness: AU06 + AU12 + AU25, anger: AU04 +
    AU07 + AU23), 3 faces each; AU26 random (no expression implies it)."""
    rng = np.random.default_rng(1)
    codes = {
        "surprise": {"AU01", "AU02", "AU25"},
        "happiness": {"AU06", "AU12", "AU25"},
        "anger": {"AU04", "AU07", "AU23"},
    }
    (folder / "images").mkdir()
    lines = ["path,expression,video,subject," + ",".join(AUS)]
    for s in range(24):
        expression = list(codes)[s // 8]
        for i in range(3):
            name = f"images/S{s:03d}_{i}.png"
            cv2.imwrite(str(folder / name), rng.integers(0, 255, (48, 48), dtype=np.uint8))
            aus = [int(a in codes[expression]) for a in AUS[:-1]] + [int(rng.integers(0, 2))]
            lines.append(f"{name},{expression},S{s:03d}_001,S{s:03d},{','.join(map(str, aus))}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return str(folder / "labels.csv")


def test_au_expression_oracle_reads_aus_off_the_true_expression(tmp_path):
    data = _ckplus_by_expression(tmp_path)
    out = tmp_path / "oracle.json"
    text = _main(
        "bench/au_expression_oracle.py", "--data", data, "--folds", "3", "--json", str(out)
    )
    result = json.loads(out.read_text())
    assert "3 folds" in text and len(result["folds"]) == 3
    assert sum(f["test_faces"] for f in result["folds"]) == 72
    per_au = result["pooled_per_au_f1"]
    implied = ["AU1", "AU2", "AU4", "AU6", "AU7", "AU12", "AU23", "AU25"]
    assert all(per_au[a] == 1.0 for a in implied)  # the expression says it all
    assert all(per_au[a] == 0.0 for a in ("AU10", "AU15", "AU24"))  # never present
    assert per_au["AU26"] < 0.8  # random within every expression: the oracle cannot know it
    bad = tmp_path / "bad.csv"
    bad.write_text(Path(data).read_text().replace(",surprise,", ",,", 1))
    _refused("bench/au_expression_oracle.py", "--data", str(bad), said="needs its expression")


def test_au_recipe_cv_weak_labels_fer2013_from_the_training_subjects_au_rates(tmp_path):
    import csv

    from liveaffect.training.inputs import resolve_records

    data = _ckplus_by_expression(tmp_path)
    fer = tmp_path / "fer"
    for name in ("surprise", "neutral", "happy"):
        (fer / name).mkdir(parents=True)
        for i in range(20):
            cv2.imwrite(str(fer / name / f"{i}.png"), np.full((48, 48), i, np.uint8))
    config = _recipe_cv_config(tmp_path, data)
    with_fer = tmp_path / "with_fer.yaml"
    with_fer.write_text(Path(config).read_text().replace("faces/train", str(fer)))
    out = tmp_path / "cv"
    _main(
        "bench/au_recipe_cv.py", "prepare", "--data", data, "--config", str(with_fer),
        "--folds", "3", "--out", str(out), "--weak-au-share", "0.5", "--fer", str(fer),
        "--weak-high", "0.7",
    )  # fmt: skip
    for k in range(3):
        with open(out / f"fold{k}" / "ckplus.csv", newline="") as f:
            fit = [r for r in csv.DictReader(f) if r["split"] == "train"]
        happy_au26 = np.mean([int(r["AU26"]) for r in fit if r["expression"] == "happiness"])
        cfg = load_config(out / f"fold{k}" / "config.yaml")
        source = cfg.data.train[0]
        assert (source.path, source.weak_au, source.seed) == (str(fer), 0.5, 35)
        assert (cfg.data.weak_au_high, cfg.data.weak_au_low) == (0.7, 0.1)
        train, _ = resolve_records(cfg)
        labelled = [r for r in train if r.path.startswith(str(fer)) and r.au is not None]
        assert 15 <= len(labelled) <= 45  # about half of 60
        for r in labelled:
            if r.expr == 0:
                assert r.au == (0,) * 12
            if r.expr == 6:  # surprise: 1 where every training face has it
                assert r.au[:3] == (1, 1, 0) and r.au[10] == 1 and r.au[6] == 0
            if r.expr == 4:  # AU26 is random: the fold's training subjects' rate decides
                assert r.au[11] == (1 if happy_au26 >= 0.7 else 0 if happy_au26 <= 0.1 else -1)
    _refused(
        "bench/au_recipe_cv.py", "prepare", "--data", data, "--config", config,
        "--out", str(tmp_path / "bad"), "--weak-au-share", "0.5", said="trains on no",
    )  # fmt: skip


def test_au_recipe_cv_expression_prior_weight_is_chosen_on_validation_subjects(
    tmp_path, monkeypatch
):
    import argparse

    sys.path.insert(0, str(REPO / "bench"))
    import au_recipe_cv

    data = _ckplus_by_expression(tmp_path)
    out = _two_folds_with_bundles(au_recipe_cv, tmp_path, data)
    seen = []

    def head_and_prior(bundle, records, rates):
        # the head: a coin toss; the prior: the rates the test hands over, on each face's
        # true expression (a perfect expression head)
        seen.append(rates)
        head = np.random.default_rng(len(seen)).random((len(records), 12))
        return head, rates[[r.expr for r in records]]

    monkeypatch.setattr(au_recipe_cv, "_head_and_prior", head_and_prior)
    result = tmp_path / "cv.json"
    ns = argparse.Namespace(out=str(out), json=str(result), expression_prior=True)
    ns.true_expression = False
    ns.weights = [0.0, 0.8, 1.0]
    assert au_recipe_cv.score(ns) == 0
    folds = json.loads(result.read_text())["folds"]
    assert [f["head_weight"] for f in folds] == [0.0, 0.0]  # the coin toss loses on validation
    assert all(f["test_mean_f1"] > 0.6 for f in folds)
    for k, rates in enumerate(seen):  # rates from the fold's training subjects only
        from liveaffect.data.loaders import load_records

        fit = load_records(str(out / f"fold{k}" / "ckplus.csv"), split="train")
        assert rates[6, :11].tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        assert rates[4, 11] == pytest.approx(np.mean([r.au[11] for r in fit if r.expr == 4]))


def test_au_recipe_cv_true_expression_prior_ignores_the_expression_head(tmp_path, monkeypatch):
    import argparse

    sys.path.insert(0, str(REPO / "bench"))
    import au_recipe_cv

    data = _ckplus_by_expression(tmp_path)
    out = _two_folds_with_bundles(au_recipe_cv, tmp_path, data)

    def head_and_prior(bundle, records, rates):  # a useless head and a useless expression head
        noise = np.random.default_rng(0).random((len(records), 12))
        return noise, noise[::-1].copy()

    monkeypatch.setattr(au_recipe_cv, "_head_and_prior", head_and_prior)
    scores = {}
    for truth in (False, True):
        result = tmp_path / f"cv_{truth}.json"
        ns = argparse.Namespace(out=str(out), json=str(result), expression_prior=True)
        ns.true_expression, ns.weights = truth, [0.0, 0.8, 1.0]
        assert au_recipe_cv.score(ns) == 0
        scores[truth] = json.loads(result.read_text())["pooled_mean_f1"]
    assert scores[True] > 0.6 > scores[False]  # the labelled expression's AU rates know
    _refused(
        "bench/au_recipe_cv.py", "score", "--out", str(out), "--true-expression",
        said="needs --expression-prior",
    )  # fmt: skip


@pytest.mark.slow
def test_startup_times_the_app_cold_and_warm_and_says_whether_tensorflow_loaded(tmp_path, video):
    bundle = make_tiny_bundle(tmp_path / "bundle", input_size=32)
    out = tmp_path / "startup.json"
    text = _run(
        "bench/startup.py", "--source", str(video), "--model", str(bundle), "--rounds", "1",
        "--cases", "warm,cold", "--json", str(out),
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert set(result["cases"]) == {"warm", "cold"} and "median s" in text
    warm, cold = result["cases"]["warm"], result["cases"]["cold"]
    assert warm["tensorflow_imported"] == [False]  # the cache serves the app alone
    assert cold["tensorflow_imported"] == [True]  # the first start converts with Keras
    assert len(warm["runs"]) == 1 and warm["median_wall_s"] > 0 and warm["median_rss_mib"] > 0
    assert result["cpu_count"] >= 1 and "startup.py" in result["command"]


def test_startup_refuses_unknown_cases_and_a_folder_without_a_bundle(tmp_path):
    _refused("bench/startup.py", "--source", "x.mp4", "--cases", "hot", said="--cases: choose")
    _refused("bench/startup.py", "--source", "x.mp4", "--model", str(tmp_path), said="not a bundle")


@pytest.mark.slow
@pytest.mark.shared
def test_the_default_face_score_keeps_its_rule_on_the_shared_clips(monkeypatch):
    """bench/face_score.py's rule for ``--min-face-score``: the lowest threshold (in its
    steps of 0.05) at which no false face on the cartoon lasts more than one frame while the
    one-person clips keep a face in every frame. A detector change that breaks it (as the
    2026-12-07 changes did for 0.60) fails here, not months later in the bench table."""
    from conftest import shared_path

    from liveaffect.runtime.detectors import DEFAULT_MIN_SCORE

    monkeypatch.syspath_prepend(str(REPO / "bench"))
    face_score = runpy.run_path(str(REPO / "bench" / "face_score.py"), run_name="face_score")
    videos = shared_path("videos", "pyfeat_single_face.mp4").parent
    default = face_score["_row"](DEFAULT_MIN_SCORE, videos)
    assert default["single_face_recall"] == 1.0 and default["cartoon_longest_run"] <= 1, default
    lower = face_score["_row"](round(DEFAULT_MIN_SCORE - 0.05, 2), videos)
    assert lower["single_face_recall"] < 1.0 or lower["cartoon_longest_run"] > 1, lower
