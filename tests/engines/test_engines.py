"""The TFLite engines agree with Keras; the cache follows the model; export and bench run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, make_tiny_bundle, shared_path

from liveaffect.bundle import load_bundle, open_bundle
from liveaffect.engines import create_engine

TOLERANCE = {"tflite": 1e-4, "tflite-fp16": 2e-2, "tflite-int8": 0.15}


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return make_tiny_bundle(tmp_path_factory.mktemp("engines") / "b", input_size=32)


@pytest.fixture(scope="module")
def crops():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)


@pytest.mark.parametrize("name", ["tflite", "tflite-fp16", "tflite-int8"])
def test_engine_agrees_with_keras(bundle_dir, crops, name):
    bundle = load_bundle(bundle_dir)
    ref = create_engine(bundle, "keras").predict(crops)
    got = create_engine(bundle, name).predict(crops)
    assert len(got) == len(ref) == len(crops)
    tol = TOLERANCE[name]
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_allclose(g.expr_probs, r.expr_probs, atol=tol)
        np.testing.assert_allclose(g.va, r.va, atol=tol)
        np.testing.assert_allclose(g.au_probs, r.au_probs, atol=tol)


def test_a_model_that_standardises_faces_exports_to_tflite(tmp_path, crops):
    """model.input_norm: per_face (FaceStandardize) loads in safe mode and converts."""
    path = make_tiny_bundle(tmp_path / "b", input_size=32, input_norm="per_face")
    bundle = load_bundle(path)
    assert "face_standardize" in [layer.name for layer in bundle.model.layers]
    ref = create_engine(bundle, "keras").predict(crops)
    got = create_engine(bundle, "tflite").predict(crops)
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_allclose(g.expr_probs, r.expr_probs, atol=TOLERANCE["tflite"])
        np.testing.assert_allclose(g.au_probs, r.au_probs, atol=TOLERANCE["tflite"])


def test_tflite_batches_of_any_size_match_one_by_one(bundle_dir, crops):
    engine = create_engine(load_bundle(bundle_dir), "tflite", batch_size=4)
    together = engine.predict(crops)  # 5 faces: a batch of 4 and one of 1 (padded buckets)
    for i, crop in enumerate(crops):
        alone = engine.predict(crop[None])[0]
        np.testing.assert_allclose(together[i].expr_probs, alone.expr_probs, atol=1e-5)
    assert engine.predict(np.zeros((0, 32, 32, 3), np.float32)) == []


def test_tflite_with_views_pads_whole_faces_and_matches_keras(bundle_dir, crops):
    from liveaffect.tta import TTA

    bundle = load_bundle(bundle_dir)
    tta = TTA(flip=True, scales=(1.0, 0.92, 0.85))
    engine = create_engine(bundle, "tflite", batch_size=4, tta=tta)
    ref = create_engine(bundle, "keras", tta=tta).predict(crops)
    inner = engine.inner
    assert inner.rows_per_face == 6 and inner.max_rows == 24  # 4 faces per call, 6 rows each
    one = engine.predict(crops[:1])
    assert 6 in inner._runners and 8 not in inner._runners  # 6 rows, not padded to 8
    three = engine.predict(crops[:3])  # 3 faces: 2 + 1 faces (12 + 6 rows), none padded
    assert 12 in inner._runners and 24 not in inner._runners and 32 not in inner._runners
    got = engine.predict(crops)  # 5 faces: 4 + 1 in two calls
    for g, r in zip([*one, *three[1:], *got[3:]], [ref[0], *ref[1:3], *ref[3:]], strict=True):
        np.testing.assert_allclose(g.expr_probs, r.expr_probs, atol=1e-4)
        np.testing.assert_allclose(g.va, r.va, atol=1e-4)


def test_untrained_heads_stay_hidden_in_tflite(tmp_path, crops):
    bundle = load_bundle(make_tiny_bundle(tmp_path / "b", trained=("expr",)))
    pred = create_engine(bundle, "tflite").predict(crops[:1])[0]
    assert pred.expr_probs is not None and pred.va is None and pred.au_probs is None


def test_tflite_cache_is_rebuilt_when_the_model_changes(tmp_path, crops):
    path = make_tiny_bundle(tmp_path / "b", seed=1)
    first = create_engine(load_bundle(path), "tflite")
    cached = first.model_path
    stamp = cached.stat().st_mtime_ns
    again = create_engine(load_bundle(path), "tflite")
    assert again.model_path == cached and cached.stat().st_mtime_ns == stamp  # reused
    other = make_tiny_bundle(tmp_path / "other", seed=2)
    shutil.copy(other / "model.keras", path / "model.keras")  # new weights, same place
    rebuilt = create_engine(load_bundle(path), "tflite")
    ref = create_engine(load_bundle(path), "keras").predict(crops[:2])
    got = rebuilt.predict(crops[:2])
    np.testing.assert_allclose(got[0].expr_probs, ref[0].expr_probs, atol=1e-4)
    assert cached.stat().st_mtime_ns != stamp


def test_an_opened_bundle_runs_from_a_warm_cache_without_its_keras_model(tmp_path, crops):
    """open_bundle loads Keras only to convert: a warm cache serves the TFLite engine alone,
    a stale one (new weights in the same place) makes it load and convert the new model."""
    path = make_tiny_bundle(tmp_path / "b", seed=3, trained=("expr", "au"))
    cold = open_bundle(path)
    assert not cold.loaded
    first = create_engine(cold, "tflite", tta=False)
    assert cold.loaded  # no cache yet: converted from the Keras model
    warm = open_bundle(path)
    engine = create_engine(warm, "tflite", tta=False)
    assert not warm.loaded and engine.model_path == first.model_path
    assert engine.trained == first.trained == ("expr", "au")  # read off the converted model
    got, ref = engine.predict(crops[:2]), first.predict(crops[:2])
    np.testing.assert_allclose(got[1].expr_probs, ref[1].expr_probs, atol=1e-6)
    assert got[0].va is None
    shutil.copy(make_tiny_bundle(tmp_path / "other", seed=4) / "model.keras", path / "model.keras")
    stale = open_bundle(path)
    rebuilt = create_engine(stale, "tflite", tta=False)
    assert stale.loaded
    keras_ref = create_engine(load_bundle(path), "keras", tta=False).predict(crops[:2])
    np.testing.assert_allclose(
        rebuilt.predict(crops[:2])[0].expr_probs, keras_ref[0].expr_probs, atol=1e-4
    )


def test_an_opened_bundle_checks_its_cache_against_the_card(tmp_path):
    """A converted model whose input no longer matches the card is refused, naming both."""
    import json

    from liveaffect.engines import EngineError

    path = make_tiny_bundle(tmp_path / "b", input_size=32)
    create_engine(open_bundle(path), "tflite", tta=False)  # warms the cache
    card = json.loads((path / "card.json").read_text())
    card["preprocess"]["input_size"] = [40, 40]
    (path / "card.json").write_text(json.dumps(card))
    with pytest.raises(EngineError, match=r"input \(32, 32, 3\) does not match the card's"):
        create_engine(open_bundle(path), "tflite", tta=False)


def test_a_cut_off_cache_is_rebuilt_and_a_garbled_one_is_named(tmp_path, crops):
    """The cache stamp records the file's size: a cut-off file (full disk, crash) is
    converted again; a garbled one of the right size is refused, naming what to delete."""
    from liveaffect.engines import EngineError

    path = make_tiny_bundle(tmp_path / "b", seed=5)
    cached = create_engine(open_bundle(path), "tflite", tta=False).model_path
    whole = cached.read_bytes()
    cached.write_bytes(whole[:1000])
    opened = open_bundle(path)
    engine = create_engine(opened, "tflite", tta=False)
    assert opened.loaded and cached.read_bytes() == whole  # converted again, same bytes
    assert engine.predict(crops[:1])[0].expr_probs is not None
    cached.write_bytes(b"\0" * len(whole))
    with pytest.raises(EngineError, match=r"LiteRT cannot read this cached model.*delete"):
        create_engine(open_bundle(path), "tflite", tta=False)


def test_a_full_disk_beside_the_bundle_leaves_no_partial_cache_file(tmp_path, monkeypatch):
    """The bundle's disk fills while the cache is written there: the cache goes to
    ~/.cache/liveaffect instead and the cut-off bytes do not stay to fill that disk."""
    import errno
    import pathlib

    path = make_tiny_bundle(tmp_path / "b", seed=6)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    write_bytes = pathlib.Path.write_bytes

    def fill_up(self, data):  # half the bytes reach the bundle's disk, then it is full
        if path not in self.parents:
            return write_bytes(self, data)
        write_bytes(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pathlib.Path, "write_bytes", fill_up)
    engine = create_engine(load_bundle(path), "tflite", tta=False)
    assert (tmp_path / "home" / "liveaffect") in engine.model_path.parents
    assert list((path / ".tflite-cache").iterdir()) == []


def test_wrong_crop_shape_is_refused(bundle_dir):
    engine = create_engine(load_bundle(bundle_dir), "tflite")
    with pytest.raises(ValueError, match="crops must have shape"):
        engine.predict(np.zeros((1, 16, 16, 3), np.float32))


def test_wrong_crop_shape_with_views_names_the_shape_passed(bundle_dir):
    """With test-time views the error named the shape after the views multiplied the
    faces ((4, 16, 16, 3) for one face and four views), not what the caller passed."""
    from liveaffect.tta import TTA

    engine = create_engine(
        load_bundle(bundle_dir), "tflite", tta=TTA(flip=True, scales=(1.0, 0.92))
    )
    with pytest.raises(ValueError, match=r"got \(1, 16, 16, 3\)$"):
        engine.predict(np.zeros((1, 16, 16, 3), np.float32))
    assert engine.predict(np.zeros((0, 32, 32, 3), np.float32)) == []


def _cli(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "liveaffect", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


@pytest.mark.slow
def test_export_cli_writes_tflite_and_reports_differences(tmp_path):
    bundle = make_tiny_bundle(tmp_path / "b")
    out = tmp_path / "m.tflite"
    proc = _cli("export", "--model", str(bundle), "--tflite", "int8", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.stat().st_size > 1000
    assert "largest |Keras - TFLite|" in proc.stdout and "expr" in proc.stdout


_FILE_SIZE_LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # every write past 4 KiB: EFBIG
from liveaffect.model.export import write_tflite
try:
    write_tflite(b"x" * 100_000, sys.argv[1])
except OSError as exc:
    print(exc.errno, exc.filename)
    sys.exit(3)
"""


def _file_size_limited(*args, timeout=60):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMITED, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


def test_a_tflite_that_cannot_be_written_whole_is_not_left_cut_off(tmp_path):
    """A full disk mid-write: the error names the file, no partial file is left behind and
    an older whole file at that path is kept."""
    import errno

    out = tmp_path / "m.tflite"
    proc = _file_size_limited(str(out))
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert proc.stdout.split() == [str(errno.EFBIG), str(out)]
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"older")
    assert _file_size_limited(str(out)).returncode == 3
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"] and out.read_bytes() == b"older"


@pytest.mark.slow
def test_export_on_a_full_disk_names_the_file_and_leaves_no_partial_tflite(
    tmp_path, monkeypatch, capsys
):
    """The disk fills while ``export`` writes the .tflite: one line naming --out, exit 1,
    and no cut-off file left for a later run to load."""
    import errno
    import pathlib

    from liveaffect.cli import main

    bundle = make_tiny_bundle(tmp_path / "b")
    out = tmp_path / "out" / "m.tflite"
    write_bytes = pathlib.Path.write_bytes

    def fill_up(self, data):  # half the bytes reach the disk, then it is full
        if "tflite" not in self.name:
            return write_bytes(self, data)
        write_bytes(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pathlib.Path, "write_bytes", fill_up)
    code = main(["export", "--model", str(bundle), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: disk full: cannot write {out}: {os.strerror(errno.ENOSPC)}"]
    assert list(out.parent.iterdir()) == []


@pytest.mark.slow
def test_bench_cli_reports_every_stage(tmp_path):
    video = shared_path("videos", "pyfeat_single_face.mp4")
    bundle = make_tiny_bundle(tmp_path / "b")
    out = tmp_path / "bench.json"
    proc = _cli(
        "bench",
        "--source",
        str(video),
        "--model",
        str(bundle),
        "--frames",
        "30",
        "--warmup",
        "5",
        "--baseline-frames",
        "5",
        "--compare",
        "tflite-int8",
        "--memory-every",
        "10",
        "--blazeface-model",
        "auto",
        "--full-range-every",
        "2",
        "--threads",
        "1",
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["detector"] == "blazeface" and report["blazeface_model"] == "auto"
    assert report["full_range_every"] == 2
    assert report["threads"] == 1  # --threads, beside the machine's cpu_threads
    p = report["pipeline"]
    assert p["frames"] == 30 and p["frames_timed"] == 25
    for stage in ("read", "detect", "track", "preprocess", "infer", "smooth", "draw"):
        assert p["stages"][stage]["median_ms"] is not None
        assert p["stages"][stage]["p95_ms"] >= p["stages"][stage]["median_ms"]
    assert p["fps"] > 0 and p["faces_per_s"] > 0
    assert report["peak_rss_mb"] > 0 and "memory" in p
    assert report["cpu"]["cpu_count"] >= 1 and "simd" in report["cpu"]  # results depend on it
    assert report["speedup_vs_baseline"] > 0
    assert report["engine_differences_vs_keras"]["tflite-int8"]["expr"] < 0.2


def test_bench_rejects_a_missing_video(tmp_path):
    proc = _cli("bench", "--source", str(tmp_path / "nope.mp4"), timeout=60)
    assert proc.returncode == 2
    assert "video not found" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_rejects_a_full_range_schedule_under_one(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    proc = _cli("bench", "--source", str(video), "--full-range-every", "0", timeout=60)
    assert proc.returncode == 2
    assert "--full-range-every must be >= 1" in proc.stderr and "Traceback" not in proc.stderr


def test_tflite_calls_are_powers_of_two_of_whole_faces_without_padding():
    from liveaffect.engines.tflite import _pieces

    assert _pieces(5 * 6, 6, 24) == [24, 6]  # 5 faces: 4 + 1, not 8 (3 faces wasted)
    assert _pieces(7 * 6, 6, 48) == [24, 12, 6]
    assert _pieces(6, 6, 24) == [6] and _pieces(1, 6, 24) == [6]  # a partial face: padded
    assert _pieces(4, 1, 32) == [4] and _pieces(3, 1, 2) == [2, 1]
    for n in range(1, 40):
        pieces = _pieces(n, 1, 64)
        assert sum(pieces) == n and all(p & (p - 1) == 0 for p in pieces)


def test_bench_rejects_an_unknown_engine_to_compare_before_loading(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    proc = _cli("bench", "--source", str(video), "--compare", "tflite,tflite-int", timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--compare: unknown engine 'tflite-int'; choose from:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bench_rejects_a_random_model_size_that_is_not_a_number(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    proc = _cli("bench", "--source", str(video), "--random-model", "cnn:big", timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--random-model cnn:big: SIZE must be a whole number of pixels" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_export_samples_skip_unreadable_images_and_name_a_root_with_none(tmp_path):
    """--samples: an image that cannot be decoded is skipped and counted, not a traceback;
    a root with no readable image at all is one error naming it."""
    import cv2

    from liveaffect.commands.export import sample_faces
    from liveaffect.errors import CliError
    from liveaffect.preprocess import PreprocessSpec

    spec = PreprocessSpec(input_size=(32, 32), color="gray")
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "bad.png").write_bytes(b"not an image")
    with pytest.raises(CliError, match=r"--samples .*: none of its 1 images can be read"):
        sample_faces(spec, str(tmp_path))
    face = np.random.default_rng(0).integers(0, 255, (48, 48), np.uint8)
    cv2.imwrite(str(tmp_path / "happy" / "good.png"), face)
    x, what = sample_faces(spec, str(tmp_path))
    assert x.shape == (1, 32, 32, 1) and "1 faces from" in what and "1 unreadable" in what


def test_export_random_pixels_are_normalised_as_the_card_says():
    """Without --samples, export compares on random pixels prepared as real faces are: a
    card that scales to 0..1 gets 0..1, not 0..255 (differences far out of range)."""
    from liveaffect.commands.export import random_faces
    from liveaffect.preprocess import PreprocessSpec

    unit = PreprocessSpec(input_size=(32, 32), color="gray", normalization="unit")
    x, what = random_faces(unit)
    assert x.shape == (16, 32, 32, 1) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.9
    raw, _ = random_faces(PreprocessSpec(input_size=(32, 32), color="gray"))
    assert raw.max() > 200 and "16 random-pixel images" in what


def test_bench_json_on_a_full_disk_names_the_file_and_leaves_no_partial_json(tmp_path, monkeypatch):
    """bench --json is written whole or not at all: a full disk names the file (the CLI's
    'disk full: cannot write FILE' line) and leaves an older report as it was."""
    import errno
    import pathlib

    from liveaffect.runtime.benchmark import save_report

    out = tmp_path / "bench.json"
    save_report({"fps": 1.0}, out)
    assert json.loads(out.read_text()) == {"fps": 1.0}
    write_bytes = pathlib.Path.write_bytes

    def fill_up(self, data):  # half the report reaches the disk
        write_bytes(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pathlib.Path, "write_bytes", fill_up)
    with pytest.raises(OSError) as caught:
        save_report({"fps": 2.0, "pipeline": {"stages": {}}}, out)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(out)
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
    assert json.loads(out.read_text()) == {"fps": 1.0}


def test_bench_rejects_frames_that_leave_nothing_to_time_after_warmup(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    proc = _cli("bench", "--source", str(video), "--frames", "5", timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--frames 5 leaves no frame to time after the --warmup 10" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_two_models_in_one_folder_keep_a_tflite_cache_each(tmp_path, crops):
    """checkpoints/best.keras and last.keras share a folder: each keeps its own conversion
    (they converted over each other's on every start), and each runs its own weights."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name, seed in (("best", 7), ("last", 8)):
        made = make_tiny_bundle(tmp_path / name, seed=seed)
        shutil.copy(made / "model.keras", folder / f"{name}.keras")
    best = create_engine(load_bundle(folder / "best.keras"), "tflite", tta=False)
    stamp = best.model_path.stat().st_mtime_ns
    last = create_engine(load_bundle(folder / "last.keras"), "tflite", tta=False)
    assert best.model_path != last.model_path
    again = create_engine(load_bundle(folder / "best.keras"), "tflite", tta=False)
    assert again.model_path == best.model_path and best.model_path.stat().st_mtime_ns == stamp
    for name, engine in (("best", again), ("last", last)):
        ref = create_engine(load_bundle(folder / f"{name}.keras"), "keras", tta=False)
        np.testing.assert_allclose(
            engine.predict_heads(crops)["expr"], ref.predict_heads(crops)["expr"], atol=1e-4
        )


@pytest.mark.slow
def test_bench_keeps_tensorflow_start_up_lines_off_stderr_on_a_warm_cache(tmp_path):
    """With a warm cache TensorFlow first loads for the baseline and --compare: its start-up
    chatter (oneDNN notes, 'could not find cuda drivers', a cuInit error) is not shown."""
    video = shared_path("videos", "pyfeat_single_face.mp4")
    bundle = make_tiny_bundle(tmp_path / "b")
    create_engine(open_bundle(bundle), "tflite", tta=False)  # warms the cache
    common = ["--frames", "12", "--warmup", "2", "--baseline-frames", "2"]
    proc = _cli(
        "bench", "--source", str(video), "--model", str(bundle), *common, "--compare", "tflite"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "max |tflite - keras|" in proc.stdout and "original design" in proc.stdout
    chatter = [
        line
        for line in proc.stderr.splitlines()
        if "cuda" in line.lower() or line.startswith(("I0000", "E0000", "W0000", "WARNING: All"))
    ]
    assert chatter == []


def test_a_running_tflite_engine_keeps_its_model_when_the_cache_is_rebuilt(tmp_path, crops):
    """Another process converting a new model.keras into the same cache file must not reach
    an engine already running: its interpreters for new batch sizes run the model it began
    with, not a mix of two models."""
    path = make_tiny_bundle(tmp_path / "b", seed=9)
    bundle = load_bundle(path)
    engine = create_engine(bundle, "tflite", tta=False)
    engine.predict_heads(crops[:1])  # one batch shape in use
    shutil.copy(make_tiny_bundle(tmp_path / "other", seed=10) / "model.keras", path / "model.keras")
    rebuilt = create_engine(open_bundle(path), "tflite", tta=False)  # "another process"
    assert rebuilt.model_path == engine.model_path
    ref = create_engine(bundle, "keras", tta=False).predict_heads(crops[:4])
    got = engine.predict_heads(crops[:4])  # a batch of 4: a new interpreter
    np.testing.assert_allclose(got["expr"], ref["expr"], atol=1e-4)


@pytest.mark.slow
def test_bench_says_so_when_the_clip_is_no_longer_than_the_warmup(tmp_path):
    video = shared_path("videos", "pyfeat_single_face.mp4")  # 72 frames
    bundle = make_tiny_bundle(tmp_path / "b")
    out = tmp_path / "bench.json"
    args = ["--warmup", "100", "--baseline-frames", "0", "--compare", "", "--json", str(out)]
    proc = _cli("bench", "--source", str(video), "--model", str(bundle), *args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "its 72 frames leave none to time after --warmup 100" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_bench_prints_the_top_expression_agreement_as_a_share(capsys):
    from liveaffect.commands.bench import _print

    stats = {"median_ms": None, "p95_ms": None}
    report = {
        "source": "clip.mp4",
        "model": "m",
        "engine": "tflite",
        "input": [48, 48, 1],
        "peak_rss_mb": 100.0,
        "pipeline": {
            "stages": {"read": stats},
            "fps": 50.0,
            "faces_per_s": 50.0,
            "frames_timed": 10,
            "faces_per_frame_mean": 1.0,
            "faces_per_frame_max": 1,
            "capture_to_display_ms": stats,
        },
        "engine_differences_vs_keras": {
            "faces": 64,
            "tflite-int8": {"expr": 0.014, "va": 0.017, "expr_top1_agreement": 0.96875},
        },
    }
    _print(report)
    line = capsys.readouterr().out.splitlines()[-1]
    assert line == (
        "max |tflite-int8 - keras|: expr 1.40e-02, va 1.70e-02 "
        "(top expression as keras's on 97% of faces)"
    )


@pytest.mark.slow
def test_export_of_a_keras_file_is_named_after_it(tmp_path, capsys):
    """export --model checkpoints/best.keras writes best.MODE.tflite beside it, so that
    last.keras's export does not overwrite it under one 'model.MODE.tflite'."""
    from liveaffect.cli import main

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    shutil.copy(make_tiny_bundle(tmp_path / "b") / "model.keras", folder / "best.keras")
    assert main(["export", "--model", str(folder / "best.keras"), "--tflite", "fp16"]) == 0
    assert f"wrote {folder / 'best.fp16.tflite'}" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == ["best.fp16.tflite", "best.keras"]


def test_bench_says_a_folder_source_is_a_folder(tmp_path):
    proc = _cli("bench", "--source", str(tmp_path), timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"--source {tmp_path} is a folder; bench replays one video file" in proc.stderr


def test_a_cache_that_cannot_be_written_anywhere_names_each_folder_and_why(tmp_path, monkeypatch):
    from liveaffect.engines import EngineError

    path = make_tiny_bundle(tmp_path / "b", seed=11)
    (path / ".tflite-cache").write_text("")  # a file where the folder would go
    (tmp_path / "home").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    with pytest.raises(EngineError) as caught:
        create_engine(load_bundle(path), "tflite", tta=False)
    message = str(caught.value)
    assert message.startswith(f"cannot write a TFLite cache for {path / 'model.keras'} in ")
    assert f"{path / '.tflite-cache'} (File exists) or {tmp_path / 'home'}" in message
    assert "(Not a directory)" in message


def test_bench_compare_notes_an_engine_it_cannot_build_and_keeps_the_others(tmp_path, monkeypatch):
    """--compare with an engine that cannot be built (no cache folder can be written) records
    why in the report instead of ending the run with a traceback after its work."""
    from liveaffect.runtime.benchmark import compare_engines

    path = make_tiny_bundle(tmp_path / "b", seed=12, input_size=32)
    bundle = load_bundle(path)
    (tmp_path / "home").write_text("")  # files where the cache folders would go
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    (path / ".tflite-cache").write_text("")
    crops = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    report = compare_engines(bundle, crops, ["tflite-int8"])
    assert report["faces"] == 3
    assert report["tflite-int8"]["error"].startswith("cannot write a TFLite cache for")
