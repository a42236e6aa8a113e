"""A plain functional .keras whose outputs are a LIST (named expr/va/au, or known by width)
works in ``live`` (default engine and keras), ``bench`` and ``export``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from liveaffect.cli import main


def _list_model(path: Path, named: bool) -> Path:
    import keras

    inp = keras.Input((32, 32, 3))
    x = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, strides=4)(inp))
    layers = {
        "expr": keras.layers.Dense(8, activation="softmax", name="expr" if named else None),
        "va": keras.layers.Dense(2, activation="tanh", name="va" if named else None),
        "au": keras.layers.Dense(12, activation="sigmoid", name="au" if named else None),
    }
    order = ("expr", "va", "au") if named else ("au", "expr", "va")  # widths tell them apart
    keras.Model(inp, [layers[h](x) for h in order]).save(path)
    return path


@pytest.fixture(scope="module", params=[True, False], ids=["named", "by-width"])
def list_model(request, tmp_path_factory) -> Path:
    return _list_model(tmp_path_factory.mktemp("list") / "model.keras", request.param)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "face.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(4):
        writer.write(np.full((48, 64, 3), 60 + 20 * i, np.uint8))
    writer.release()
    return path


class _Centre:
    def detect(self, frame_bgr):
        from liveaffect.types import Detection

        h, w = frame_bgr.shape[:2]
        return [Detection((w * 0.2, h * 0.2, w * 0.8, h * 0.8), 0.9)]


def test_loaded_list_model_reads_heads_by_name(list_model):
    from liveaffect.bundle import load_bundle

    bundle = load_bundle(list_model)
    out = bundle.model(np.zeros((2, 32, 32, 3), np.float32), training=False)
    assert set(out) == {"expr", "va", "au"}
    assert out["expr"].shape == (2, 8) and out["va"].shape == (2, 2) and out["au"].shape == (2, 12)


@pytest.mark.parametrize("engine", ["auto", "keras"])
def test_live_runs_a_list_model(list_model, clip, engine, monkeypatch, capsys):
    from liveaffect.runtime import detectors

    monkeypatch.setattr(detectors, "build_detector", lambda *a, **k: _Centre())
    argv = [str(clip), "--no-display", "--model", str(list_model), "--engine", engine]
    assert main(["live", *argv]) == 0
    captured = capsys.readouterr()
    assert "summary: frames=4 faces=4" in captured.out and "Traceback" not in captured.err


def test_export_and_bench_accept_a_list_model(list_model, clip, tmp_path, capsys):
    out = tmp_path / "m.tflite"
    assert main(["export", "--model", str(list_model), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.exists() and all(f"  {h}" in text for h in ("expr", "va", "au"))
    argv = ["bench", "--model", str(list_model), "--source", str(clip), "--frames", "4"]
    assert main([*argv, "--warmup", "1", "--baseline-frames", "0", "--compare", "tflite"]) == 0
