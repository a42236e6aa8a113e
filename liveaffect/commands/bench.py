"""Benchmark the live pipeline stage by stage on a video, headless.

Reports per stage (read, detect, track, preprocess, infer, smooth, draw) the median and
95th-percentile milliseconds, end-to-end frames and faces per second after warm-up,
peak resident memory and its growth, and — on the same video, same detector — the
original design's loop (a Keras ``model.predict`` per face per frame) with the speed-up
as a ratio. ``--camera-sim`` replays the clip as a live camera (newest frame wins) and
reports how many frames the shown one lags behind the newest captured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from liveaffect.errors import CliError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, metavar="VIDEO", help="video file to replay")
    p.add_argument(
        "--model", metavar="BUNDLE", help="bundle folder or .keras (default: final_model)"
    )
    p.add_argument(
        "--random-model",
        metavar="BACKBONE:SIZE",
        help="time a random-weight bundle instead, e.g. efficientnetv2s:224 (timing only)",
    )
    p.add_argument(
        "--engine", default="auto", help="engine: auto, keras, tflite, tflite-fp16, tflite-int8"
    )
    p.add_argument(
        "--no-tta",
        action="store_true",
        help="score each face once (default: the card's test-time views, as the app does)",
    )
    p.add_argument("--detector", default="blazeface", help="face detector")
    p.add_argument("--frames", type=int, default=0, help="frames to time (0: the whole clip once)")
    p.add_argument("--loop", action="store_true", help="replay the clip until --frames are done")
    p.add_argument("--warmup", type=int, default=10, help="frames excluded from the statistics")
    p.add_argument(
        "--baseline-frames",
        type=int,
        default=40,
        help="frames for the original design's per-face model.predict loop (0: skip)",
    )
    p.add_argument(
        "--compare",
        default="tflite,tflite-fp16,tflite-int8",
        help="engines whose outputs are compared with the float Keras model on real face crops "
        "('' to skip)",
    )
    p.add_argument(
        "--camera-sim", action="store_true", help="replay as a live camera at the clip's fps"
    )
    p.add_argument("--memory-every", type=int, default=100, help="sample RSS every N frames")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for inference (0: all)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")


# ----------------------------------------------------------------- sources
class _LoopingCapture:
    """cv2.VideoCapture-like reader that rewinds at the end (for long memory runs)."""

    def __init__(self, path: str, total: int, realtime_fps: float = 0.0) -> None:
        import cv2

        self._cv2 = cv2
        self._cap = cv2.VideoCapture(path)
        self._left = total
        self._period = 1.0 / realtime_fps if realtime_fps > 0 else 0.0
        self._next = time.monotonic()

    def read(self):
        if self._left <= 0:
            return False, None
        if self._period:
            delay = self._next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next = max(self._next + self._period, time.monotonic() - self._period)
        ok, img = self._cap.read()
        if not ok:
            self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
            ok, img = self._cap.read()
        if ok:
            self._left -= 1
        return ok, img

    def get(self, prop):
        return self._cap.get(prop)

    def isOpened(self):
        return self._cap.isOpened()

    def release(self):
        self._cap.release()


def _open(path: str, frames: int, loop: bool, camera: bool):
    import cv2

    from liveaffect.runtime.sources import FrameSource, SourceError, open_source

    try:
        probe = open_source(path)
    except SourceError as exc:
        raise CliError(str(exc)) from None
    fps = probe.fps or 25.0
    count = int(probe.frame_count or 0)
    probe.close()
    total = frames if (frames and (loop or camera)) else (min(frames, count) if frames else count)
    if not loop and not camera:
        return open_source(path), total, fps
    cap = _LoopingCapture(path, total, fps if camera else 0.0)
    if not cap.isOpened():
        raise CliError(f"cannot open {path}")
    del cv2
    return FrameSource(cap, is_live=camera, path_or_url=path), total, fps


# ----------------------------------------------------------------- models
def _random_bundle(spec: str, out: Path):
    from liveaffect.bundle import HEADS, HeadInfo, ModelCard, save_bundle
    from liveaffect.model.mtl import ModelConfig, build_mtl_model
    from liveaffect.preprocess import PreprocessSpec

    backbone, _, size = spec.partition(":")
    size_px = int(size or 224)
    try:
        cfg = ModelConfig(backbone=backbone, input_size=size_px)
    except ValueError as exc:
        raise CliError(f"--random-model: {exc}") from None
    model = build_mtl_model(cfg)
    card = ModelCard(
        name=f"random-{backbone}-{size_px}",
        backbone=backbone,
        preprocess=PreprocessSpec(input_size=(size_px, size_px), color="rgb", crop_margin=0.1),
        heads={h: HeadInfo(trained=True, data="RANDOM WEIGHTS: timing only") for h in HEADS},
        notes="Random weights for benchmarking speed. Its outputs mean nothing.",
    )
    return save_bundle(model, card, out)


def _stats(values) -> dict[str, float]:
    if len(values) == 0:
        return {"median_ms": None, "p95_ms": None}
    a = np.asarray(values)
    return {
        "median_ms": round(float(np.median(a)), 3),
        "p95_ms": round(float(np.percentile(a, 95)), 3),
    }


def _rss_mb() -> float:
    """Resident memory in MiB (the unit of ``ru_maxrss`` / 1024 too)."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class _Series:
    """A preallocated float array, so that recording 10,000 frames of timings does not
    itself show up as memory growth (a Python list of floats grows ~300 B a frame)."""

    def __init__(self, capacity: int) -> None:
        self._data = np.zeros(max(int(capacity), 16), np.float64)
        self._n = 0

    def append(self, value: float) -> None:
        if self._n == len(self._data):  # unknown length: grow (rare)
            self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[self._n] = value
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def values(self) -> np.ndarray:
        return self._data[: self._n]


# ----------------------------------------------------------------- runs
def _run_pipeline(args, bundle, engine, detector, total) -> dict[str, Any]:
    from liveaffect.runtime.dashboard import Dashboard, View
    from liveaffect.runtime.live import Pipeline
    from liveaffect.runtime.timing import STAGES, StageTimer

    pipeline = Pipeline(detector, engine, bundle.card.preprocess)
    dashboard, canvas = Dashboard(bundle.card), None
    source, total, fps = _open(args.source, total, args.loop, args.camera_sim)
    cap = (total or 10_000) + 16
    per_stage = {s: _Series(cap) for s in STAGES}
    faces_per_frame, lag_frames, latency_ms = _Series(cap), _Series(cap), _Series(cap)
    rss: list[tuple[int, float]] = []
    from tqdm import tqdm

    bar = tqdm(
        total=total, desc=f"bench {engine.name if hasattr(engine, 'name') else ''}", unit="frame"
    )
    t_start = None
    with source:
        it = iter(source)
        n = 0
        while True:
            loop = StageTimer()
            with loop.stage("read"):
                frame = next(it, None)
            if frame is None:
                break
            result = pipeline.process(frame)
            with loop.stage("draw"):
                canvas = dashboard.draw(frame.image_bgr, result, View(), 0.0, out=canvas)
            now_ms = time.monotonic() * 1000.0
            n += 1
            bar.update(1)
            if n == args.warmup:
                t_start = time.perf_counter()
                faces_start = float(faces_per_frame.values().sum())
            if n > args.warmup:
                timings = {**result.timings_ms, **loop.ms}
                for s in STAGES:
                    per_stage[s].append(float(timings.get(s, 0.0)))
                latency_ms.append(now_ms - frame.timestamp_ms)
                if args.camera_sim:
                    lag_frames.append(source.frames_read - 1 - frame.index)
            faces_per_frame.append(len(result.faces))
            if n % args.memory_every == 0:
                rss.append((n, _rss_mb()))
            if total and n >= total:
                break
    bar.close()
    elapsed = time.perf_counter() - t_start if t_start else float("nan")
    timed = max(n - args.warmup, 0)
    fpf = faces_per_frame.values()
    faces_timed = float(fpf.sum()) - faces_start if t_start else 0
    out: dict[str, Any] = {
        "frames": n,
        "frames_timed": timed,
        "frames_with_faces": int((fpf > 0).sum()),
        "faces_per_frame_mean": round(float(fpf.mean()), 2) if len(fpf) else 0,
        "faces_per_frame_max": int(fpf.max()) if len(fpf) else 0,
        "fps": round(timed / elapsed, 2) if timed else None,
        "faces_per_s": round(faces_timed / elapsed, 1) if timed else None,
        "stages": {s: _stats(v.values()) for s, v in per_stage.items()},
        "compute_ms_per_frame": round(
            float(
                sum(
                    np.median(per_stage[s].values())
                    for s in STAGES
                    if s != "read" and len(per_stage[s])
                )
            ),
            3,
        ),
        "capture_to_display_ms": _stats(latency_ms.values()),
        "frames_dropped": int(getattr(source, "frames_dropped", 0)),
        "source_fps": fps,
    }
    if args.camera_sim:
        out["frames_behind_newest"] = {
            "max": int(lag_frames.values().max()) if len(lag_frames) else 0,
            "mean": round(float(lag_frames.values().mean()), 3) if len(lag_frames) else None,
        }
    if rss:
        vals = np.array([r for _, r in rss])
        k = max(len(vals) // 10, 1)
        out["memory"] = {
            "samples": [(int(i), round(r, 1)) for i, r in rss],
            "unit": "MiB",
            "rss_first_mb": round(float(np.median(vals[:k])), 1),
            "rss_last_mb": round(float(np.median(vals[-k:])), 1),
            "growth_mb": round(float(np.median(vals[-k:]) - np.median(vals[:k])), 1),
            "slope_mb_per_1000_frames": round(
                float(np.polyfit([i for i, _ in rss], vals, 1)[0] * 1000), 3
            )
            if len(vals) > 2
            else None,
        }
    return out


def _run_baseline(args, bundle, detector, frames: int) -> dict[str, Any]:
    """The original design: per frame, per face, ``model.predict`` on the Keras model."""
    from liveaffect.preprocess import crop_face, prepare_face

    spec = bundle.card.preprocess
    model = bundle.model
    source, _, _ = _open(args.source, frames + args.warmup, True, False)
    times, faces = [], 0
    with source:
        for i, frame in enumerate(source):
            t0 = time.perf_counter()
            dets = detector.detect(frame.image_bgr)
            for d in dets:
                crop = crop_face(frame.image_bgr, d.xyxy, spec.crop_margin, spec.square)
                model.predict(prepare_face(crop, spec)[None], verbose=0)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
                faces += len(dets)
    total = sum(times)
    return {
        "frames_timed": len(times),
        "fps": round(len(times) / total, 2) if total else None,
        "ms_per_face": round(1000 * total / faces, 1) if faces else None,
    }


def _compare_engines(args, bundle, detector, names: list[str]) -> dict[str, Any]:
    """Largest |engine - Keras float| per trained head, one view per face, on real crops."""
    from liveaffect.engines import ENGINES, create_engine
    from liveaffect.preprocess import prepare_batch

    source, _, _ = _open(args.source, 0, False, False)
    crops = []
    with source:
        for frame in source:
            dets = detector.detect(frame.image_bgr)
            if dets:
                crops.append(
                    prepare_batch(
                        frame.image_bgr, [d.xyxy for d in dets[:4]], bundle.card.preprocess
                    )
                )
            if sum(len(c) for c in crops) >= 64:
                break
    if not crops:
        return {"note": "no faces found to compare on"}
    x = np.concatenate(crops)[:64]
    ref = create_engine(bundle, "keras", batch_size=len(x), tta=False).predict_heads(x)
    out = {"faces": len(x)}
    for name in names:
        if name == "keras" or name not in ENGINES:
            continue
        got = create_engine(bundle, name, batch_size=len(x), tta=False).predict_heads(x)
        entry = {head: float(np.abs(ref[head] - got[head]).max()) for head in ref}
        if "expr" in ref:
            entry["expr_top1_agreement"] = float(
                np.mean(ref["expr"].argmax(1) == got["expr"].argmax(1))
            )
        out[name] = entry
    return out


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("frames", "warmup", "baseline_frames", "threads"):
        if getattr(args, name) < 0:
            raise CliError(f"--{name.replace('_', '-')} must be >= 0")
    if args.memory_every < 1:
        raise CliError("--memory-every must be >= 1")
    if not Path(args.source).is_file():
        raise CliError(f"video not found: {args.source}")
    from liveaffect import engines
    from liveaffect.bundle import BundleError, load_bundle
    from liveaffect.runtime.detectors import DetectorError, create_detector
    from liveaffect.runtime.options import DEFAULT_MODEL_DIR

    tmp = None
    if args.random_model:
        tmp = tempfile.TemporaryDirectory(prefix="liveaffect-bench-")
        model_path = _random_bundle(args.random_model, Path(tmp.name) / "bundle")
    else:
        model_path = Path(args.model) if args.model else DEFAULT_MODEL_DIR
    try:
        engines.configure_threads(args.threads or None)
        bundle = load_bundle(model_path)
        engine = engines.create_engine(bundle, args.engine, tta=False if args.no_tta else None)
        detector = create_detector(args.detector)
    except (BundleError, engines.EngineError, DetectorError, ValueError) as exc:
        raise CliError(str(exc)) from None
    report: dict[str, Any] = {
        "source": args.source,
        "model": args.random_model or str(model_path),
        "engine": getattr(engine, "name", args.engine),
        "detector": args.detector,
        "input": list(bundle.card.preprocess.input_shape),
        "cpu_threads": os.cpu_count(),
    }
    report["pipeline"] = _run_pipeline(args, bundle, engine, detector, args.frames)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.baseline_frames:
        report["baseline_keras_predict_per_face"] = _run_baseline(
            args, bundle, detector, args.baseline_frames
        )
        base = report["baseline_keras_predict_per_face"]["fps"]
        ours = report["pipeline"]["fps"]
        report["speedup_vs_baseline"] = round(ours / base, 2) if base and ours else None
    names = [n.strip() for n in args.compare.split(",") if n.strip()]
    if names:
        report["engine_differences_vs_keras"] = _compare_engines(args, bundle, detector, names)
    _print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    if tmp is not None:
        tmp.cleanup()
    return 0


def _print(r: dict[str, Any]) -> None:
    p = r["pipeline"]
    print(f"\n{r['source']} | model {r['model']} | engine {r['engine']} | input {r['input']}")
    print(f"{'stage':<11} {'median ms':>10} {'p95 ms':>9}")
    for s, v in p["stages"].items():
        if v["median_ms"] is not None:
            print(f"{s:<11} {v['median_ms']:>10.2f} {v['p95_ms']:>9.2f}")
    print(
        f"end to end: {p['fps']} FPS, {p['faces_per_s']} faces/s over {p['frames_timed']} frames "
        f"({p['faces_per_frame_mean']} faces/frame, max {p['faces_per_frame_max']})"
    )
    lat = p["capture_to_display_ms"]
    print(f"capture-to-display: median {lat['median_ms']} ms, p95 {lat['p95_ms']} ms")
    if "frames_behind_newest" in p:
        fb = p["frames_behind_newest"]
        print(f"frames behind the newest captured: max {fb['max']}, mean {fb['mean']}")
    if "memory" in p:
        m = p["memory"]
        print(
            f"RSS: {m['rss_first_mb']} MiB -> {m['rss_last_mb']} MiB (growth {m['growth_mb']} MiB, "
            f"slope {m['slope_mb_per_1000_frames']} MiB per 1000 frames)"
        )
    print(f"peak RSS: {r['peak_rss_mb']} MiB")
    if "baseline_keras_predict_per_face" in r:
        b = r["baseline_keras_predict_per_face"]
        print(
            f"original design (model.predict per face): {b['fps']} FPS, {b['ms_per_face']} ms/face"
            f" -> speed-up x{r['speedup_vs_baseline']}"
        )
    for name, d in r.get("engine_differences_vs_keras", {}).items():
        if isinstance(d, dict):
            print(f"max |{name} - keras|: " + ", ".join(f"{k} {v:.2e}" for k, v in d.items()))
