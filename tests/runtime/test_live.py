"""The frame pipeline with a fake detector and a tiny random model (no camera, no detector).

Checks: stable ids, smoothing per track (two faces never mixed), one model call per
frame, untrained heads hidden, zero faces, odd frames, and the run loop's bookkeeping.
"""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest

from liveaffect.bundle import Bundle, load_bundle
from liveaffect.engines import KerasEngine, create_engine
from liveaffect.runtime.dashboard import Dashboard
from liveaffect.runtime.live import FpsMeter, Pipeline, run_loop
from liveaffect.runtime.sinks import CsvSink
from liveaffect.runtime.smoothing import PredictionSmoother
from liveaffect.types import Detection, Frame, Sink

H, W = 240, 320
LEFT, RIGHT = (20.0, 40.0, 120.0, 140.0), (180.0, 40.0, 280.0, 140.0)


class ScriptedDetector:
    """Returns the given boxes, frame after frame (the last entry repeats)."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = 0

    def detect(self, frame_bgr):
        assert frame_bgr.ndim == 3 and frame_bgr.shape[2] == 3  # the pipeline gives BGR
        boxes = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return [Detection(xyxy=tuple(float(v) for v in b), score=0.9) for b in boxes]


def frames(n, seed=0):
    """Frames with two different textured 'faces' (left and right) that change over time."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = np.full((H, W, 3), 90, np.uint8)
        img[40:140, 20:120] = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
        img[40:140, 180:280] = rng.integers(0, 80, (100, 100, 3), dtype=np.uint8)
        out.append(Frame(index=i, timestamp_ms=i * 33.3, image_bgr=img))
    return out


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle)


@pytest.fixture(scope="module")
def engine(bundle):
    return KerasEngine(bundle)


def make_pipeline(bundle, engine, script, smooth=3):
    return Pipeline(
        ScriptedDetector(script),
        engine,
        bundle.card.preprocess,
        smoother=PredictionSmoother(window=smooth),
    )


def test_ids_stable_and_one_batch_per_frame(bundle, engine):
    moving = [[(x + 3 * i for x in LEFT), (x - 2 * i for x in RIGHT)] for i in range(6)]
    script = [[tuple(b) for b in boxes] for boxes in moving]
    pipe = make_pipeline(bundle, engine, script)
    seen = []
    for frame in frames(6):
        before = engine.calls
        result = pipe.process(frame)
        assert engine.calls - before == 1  # both faces in ONE model call
        seen.append([f.track_id for f in result.faces])
        assert set(result.timings_ms) >= {"detect", "track", "preprocess", "infer", "smooth"}
    assert seen == [[1, 2]] * 6


def test_engine_batches_all_faces_in_one_call(bundle):
    eng = KerasEngine(bundle, warmup=False)
    crops = np.random.default_rng(1).uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)
    preds = eng.predict(crops)
    assert eng.calls == 1 and len(preds) == 5
    assert all(p.expr_probs.shape == (8,) and p.va.shape == (2,) for p in preds)
    assert all(p.au_probs.shape == (12,) for p in preds)
    assert all(p.expr_probs.sum() == pytest.approx(1.0, abs=1e-4) for p in preds)
    # batched scores equal one-by-one scores: the batch does not mix faces
    single = eng.predict(crops[2:3])[0]
    np.testing.assert_allclose(single.expr_probs, preds[2].expr_probs, rtol=1e-4, atol=1e-5)
    small = KerasEngine(bundle, batch_size=2, warmup=False)
    assert len(small.predict(crops)) == 5 and small.calls == 3
    assert eng.predict(np.zeros((0, 32, 32, 3), np.float32)) == []
    with pytest.raises(ValueError, match="shape"):
        eng.predict(np.zeros((1, 16, 16, 3), np.float32))


def test_smoothing_is_per_track_and_never_mixes_faces(bundle, engine):
    script = [[LEFT, RIGHT]]
    raw_pipe = make_pipeline(bundle, engine, script, smooth=1)
    smooth_pipe = make_pipeline(bundle, engine, script, smooth=3)
    raw, smoothed = [], []
    for frame in frames(5):
        raw.append({f.track_id: f.prediction for f in raw_pipe.process(frame).faces})
        smoothed.append({f.track_id: f.prediction for f in smooth_pipe.process(frame).faces})
    # the two faces really differ, so mixing them would show
    assert not np.allclose(raw[0][1].expr_probs, raw[0][2].expr_probs, atol=1e-4)
    for t in range(5):
        for tid in (1, 2):
            window = [raw[k][tid] for k in range(max(0, t - 2), t + 1)]
            for head in ("expr_probs", "va", "au_probs"):
                expected = np.mean([getattr(p, head) for p in window], axis=0)
                np.testing.assert_allclose(
                    getattr(smoothed[t][tid], head), expected, rtol=1e-5, atol=1e-6
                )


def test_untrained_heads_are_none_and_csv_cells_empty(tmp_path, tiny_bundle_factory):
    bundle = load_bundle(tiny_bundle_factory(trained=("expr",)))
    assert bundle.card.trained("expr") and not bundle.card.trained("au")
    pipe = make_pipeline(bundle, create_engine(bundle, "keras"), [[LEFT]])
    out = tmp_path / "faces.csv"
    with CsvSink(out, bundle.card) as sink:
        summary = run_loop(ListSource(frames(3)), pipe, [sink])
    assert summary.faces == 3
    result = pipe.process(frames(1)[0])
    pred = result.faces[0].prediction
    assert pred.expr_probs is not None and pred.va is None and pred.au_probs is None
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3
    for row in rows:
        assert row["p_Neutral"] != "" and row["expression"] != ""
        assert row["valence"] == "" and row["arousal"] == ""
        assert row["AU01"] == "" and row["AU26_active"] == ""
    dash = Dashboard(bundle.card)
    assert dash.panel.note == "valence/arousal and AU heads not trained: hidden"
    assert dash.panel.layout(720).cards[0].va is None and dash.panel.layout(720).cards[0].au is None
    assert dash.draw(frames(1)[0].image_bgr, result).shape[0] >= 540


def test_zero_faces(bundle, engine):
    pipe = make_pipeline(bundle, engine, [[]])
    before = engine.calls
    result = pipe.process(frames(1)[0])
    assert result.faces == () and engine.calls == before
    assert result.timings_ms["infer"] >= 0


@pytest.mark.parametrize(
    "image",
    [
        np.full((H, W), 128, np.uint8),  # grey
        np.full((H, W, 4), 128, np.uint8),  # BGRA
        np.full((H, W, 1), 128, np.uint8),  # grey with a channel axis
        np.full((7, 9, 3), 128, np.uint8),  # tiny
        np.zeros((0, 0, 3), np.uint8),  # empty
    ],
    ids=["grey", "bgra", "grey1", "tiny", "empty"],
)
def test_odd_frames_and_boxes_outside(bundle, engine, image):
    # one box half outside the frame, one entirely outside (dropped), one NaN (dropped)
    script = [[(-30, -20, 60, 70), (5000, 5000, 5100, 5100), (np.nan, 0, 10, 10)]]
    result = make_pipeline(bundle, engine, script).process(Frame(0, 0.0, image))
    expected = 0 if image.size == 0 else 1
    assert len(result.faces) == expected


class ListSource:
    """A list of frames that may end with a dropped-stream error or Ctrl-C."""

    fps = 25.0

    def __init__(self, items, error=None, interrupt_at=None):
        self.items, self.error_after, self.interrupt_at = items, error, interrupt_at
        self.error = None

    def close(self):
        pass

    def __iter__(self):
        for i, frame in enumerate(self.items):
            if i == self.interrupt_at:
                raise KeyboardInterrupt
            yield frame
        self.error = self.error_after


class StopAfter(Sink):
    draws = True

    def __init__(self, n):
        self.n, self.written, self.stop_requested = n, [], False

    def write(self, frame_bgr, result):
        self.written.append(frame_bgr)
        self.stop_requested = len(self.written) >= self.n

    def close(self):
        pass


def test_run_loop_summary_fps_and_stops(bundle, engine):
    script = [[LEFT, RIGHT]] * 12 + [[]] * 3
    fps_calls = []
    pipe = make_pipeline(bundle, engine, script)
    summary = run_loop(ListSource(frames(15)), pipe, on_fps=fps_calls.append)
    assert (summary.frames, summary.faces, summary.frames_with_faces) == (15, 24, 12)
    assert summary.track_ids == {1, 2} and summary.stopped == "end"
    assert len(fps_calls) == 1 and summary.mean_fps > 0
    line = str(summary)
    assert "\n" not in line and "frames=15" in line and "ids=2" in line

    sink = StopAfter(4)
    summary = run_loop(
        ListSource(frames(10)),
        make_pipeline(bundle, engine, script),
        [sink],
        Dashboard(bundle.card),
    )
    assert summary.frames == 4 and summary.stopped == "quit"
    assert not np.array_equal(sink.written[0], frames(1)[0].image_bgr)  # annotated frame

    summary = run_loop(ListSource(frames(10)), make_pipeline(bundle, engine, script), max_frames=3)
    assert summary.frames == 3 and summary.stopped == "max_frames"


def test_run_loop_dropped_stream_and_interrupt_keep_csv(bundle, engine, tmp_path):
    out = tmp_path / "faces.csv"
    with CsvSink(out, bundle.card) as sink:
        source = ListSource(frames(5), error="connection lost")
        summary = run_loop(source, make_pipeline(bundle, engine, [[LEFT]]), [sink])
    assert summary.stopped == "error" and summary.error == "the stream dropped: connection lost"
    assert len(list(csv.DictReader(out.open()))) == 5

    with CsvSink(out, bundle.card) as sink:
        source = ListSource(frames(5), interrupt_at=3)
        summary = run_loop(source, make_pipeline(bundle, engine, [[LEFT]]), [sink])
        # rows are on disk before the file is closed
        assert len(list(csv.DictReader(out.open()))) == 3
    assert summary.stopped == "interrupt" and summary.frames == 3
    sink.close()  # safe twice


def test_fps_meter_rolling_window():
    meter = FpsMeter(window=5)
    assert meter.fps == 0.0
    for k in range(10):
        meter.tick(k * 0.1)  # 10 FPS
    assert meter.fps == pytest.approx(10.0)
    for k in range(5):
        meter.tick(1.0 + k * 0.05)  # now 20 FPS; the old ticks have left the window
    assert meter.fps == pytest.approx(20.0)


def test_engine_options_are_checked_once(bundle):
    from liveaffect.errors import OptionError

    with pytest.raises(OptionError, match="unknown engine 'nope'; choose one of: auto, keras"):
        create_engine(bundle, "nope")
    with pytest.raises(OptionError, match="batch_size must be 1 or more"):
        create_engine(bundle, "keras", batch_size=0)


def test_engine_uses_the_cards_test_time_views(bundle):
    import dataclasses

    from liveaffect.engines import TTAEngine
    from liveaffect.tta import TTA

    card = dataclasses.replace(bundle.card, tta={"flip": True, "scales": [1.0, 0.9]})
    with_views = Bundle(bundle.model, card, bundle.path, bundle.outputs)
    engine = create_engine(with_views, "keras")
    assert isinstance(engine, TTAEngine) and engine.tta.n_views == 4
    assert isinstance(create_engine(with_views, "keras", tta=False), KerasEngine)
    assert create_engine(bundle, "keras", tta=TTA(flip=True)).tta == TTA(flip=True)
    assert isinstance(create_engine(bundle, "keras"), KerasEngine)  # card without views
    crops = np.random.default_rng(0).uniform(0, 255, (2, *engine.input_shape)).astype(np.float32)
    plain = KerasEngine(bundle).predict(TTA(flip=True, scales=(1.0, 0.9)).views(crops))
    for k, pred in enumerate(engine.predict(crops)):
        want = np.mean([p.va for p in plain[k::2]], axis=0)
        np.testing.assert_allclose(pred.va, want, atol=1e-5)


class PausingSink(Sink):
    """A drawing sink that pauses on the 2nd frame for three writes and hides the panel."""

    draws = True
    stop_requested = False

    def __init__(self):
        from liveaffect.runtime.dashboard import View

        self.view = View()
        self.shapes, self.indices = [], []
        self._hold = 0

    @property
    def paused(self):
        return self._hold > 0

    def write(self, canvas, result):
        from liveaffect.runtime.dashboard import View

        self.shapes.append(canvas.shape)
        self.indices.append(result.index)
        if self._hold:
            self._hold -= 1
            self.view = View(panel=False)  # a key pressed while paused: redrawn at once
        elif result.index == 1:
            self._hold = 3

    def close(self):
        pass


def test_run_loop_holds_a_paused_sink_on_the_same_frame(bundle, engine):
    sink, csv_like = PausingSink(), StopAfter(100)
    csv_like.draws = False
    pipeline = make_pipeline(bundle, engine, [[LEFT]])
    summary = run_loop(ListSource(frames(4)), pipeline, [sink, csv_like], Dashboard(bundle.card))
    assert sink.indices == [0, 1, 1, 1, 1, 2, 3]
    assert len(csv_like.written) == 4  # the other sinks get each frame once
    assert sink.shapes[2][1] > sink.shapes[3][1]  # panel hidden while paused: redrawn at once
    assert summary.frames == 4 and summary.stage_ms["draw"] > 0


def test_stage_timer_adds_up_each_stage():
    from liveaffect.runtime.timing import STAGES, StageTimer

    timer = StageTimer(read=2.5)
    with timer.stage("detect"):
        time.sleep(0.01)
    with timer.stage("detect"):
        pass
    assert timer.ms["read"] == 2.5 and 5.0 < timer.ms["detect"] < 500.0
    assert set(timer.ms) <= set(STAGES)


def test_each_pipeline_starts_its_detector_afresh(bundle, engine):
    """A detector that follows faces between frames (BlazeFace's small-face search) is reset
    by every new Pipeline: ``analyze`` makes one per video with the same detector."""

    class Following(ScriptedDetector):
        resets = 0

        def reset(self):
            self.resets += 1

    detector = Following([[LEFT]])
    for expected in (1, 2):
        Pipeline(detector, engine, bundle.card.preprocess)
        assert detector.resets == expected
