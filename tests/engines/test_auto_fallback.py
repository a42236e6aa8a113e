"""--engine auto (the default) says why it falls back from TFLite to Keras."""

from __future__ import annotations

from conftest import make_tiny_bundle

from liveaffect import engines
from liveaffect.bundle import open_bundle
from liveaffect.engines import create_engine


def test_auto_names_a_cached_model_litert_cannot_read_before_it_runs_keras(
    tmp_path, capsys, monkeypatch
):
    """README: a cached .tflite that LiteRT cannot read is named, with the folder to
    delete. With the default engine the app used to fall back to Keras (TensorFlow loaded,
    several times slower) without a word."""
    monkeypatch.setattr(engines, "auto_order", lambda: ["tflite", "keras"])  # a CPU
    path = make_tiny_bundle(tmp_path / "b", seed=3)
    cached = create_engine(open_bundle(path), "tflite", tta=False).model_path
    cached.write_bytes(b"\0" * cached.stat().st_size)  # garbled, of the right size
    capsys.readouterr()
    engine = create_engine(open_bundle(path), "auto", tta=False)
    assert engine.name == "keras"
    err = capsys.readouterr().err
    assert err.startswith("warning: engine tflite: "), err
    assert "LiteRT cannot read this cached model" in err and str(cached.parent) in err
    assert err.rstrip().endswith("; using keras"), err
    create_engine(open_bundle(path), "auto", tta=False)  # analyze builds one per thread
    assert capsys.readouterr().err == ""  # told once
