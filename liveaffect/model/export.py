"""TFLite conversion of a bundle's Keras model (fp32, fp16, dynamic-range int8).

The library half of ``python -m liveaffect export`` (the command is
:mod:`liveaffect.commands.export`). The live app's CPU engine uses the same
conversion through :func:`cached_tflite`, cached beside the bundle and rebuilt when
``model.keras`` changes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from liveaffect.files import write_whole

MODES = ("fp32", "fp16", "int8")
CACHE_FORMAT = 2  # 2: outputs keyed by head name (list-output models are wrapped first)


class ExportError(Exception):
    """The model cannot be converted or the cache cannot be written."""


def convert_tflite(model: Any, mode: str = "fp32") -> bytes:
    """Convert a Keras model to a TFLite flatbuffer (dynamic batch size).

    Args:
        model: the Keras multi-task model.
        mode: ``fp32``, ``fp16`` (weights stored as float16) or ``int8``
            (dynamic-range quantisation: int8 weights, float activations).
    """
    if mode not in MODES:
        raise ExportError(f"mode must be one of {MODES}, got {mode!r}")
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # keras prints the export signature
            return converter.convert()
    except Exception as exc:
        raise ExportError(f"TFLite conversion failed: {str(exc).splitlines()[0][:200]}") from exc


def write_tflite(data: bytes, path: str | os.PathLike) -> Path:
    """Write a converted model to ``path`` whole or not at all (:func:`liveaffect.files.
    write_whole`): a full disk or a crash never leaves a cut-off ``.tflite`` (nor clobbers an
    older whole one) for a later run to trust.

    Raises:
        OSError: the file cannot be written, with ``path`` as its ``filename``.
    """
    return write_whole(path, data)


def _cache_dirs(bundle_path: Path, digest: str) -> list[Path]:
    here = bundle_path if bundle_path.is_dir() else bundle_path.parent
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "liveaffect"
    return [here / ".tflite-cache", home / digest[:16]]


def _cache_name(bundle: Any, mode: str) -> str:
    """``STEM.MODE`` of the cache files for the bundle's ``.keras`` file (``model.fp32`` for a
    bundle's ``model.keras``): two models in one folder (``best.keras`` and ``last.keras``
    in a run's ``checkpoints/``) keep a conversion each instead of converting over each
    other's on every start, or, running side by side, stamping the other's file as theirs."""
    return f"{Path(bundle.model_file).stem}.{mode}"


def _is_fresh(folder: Path, name: str, digest: str) -> bool:
    """Whether ``folder`` holds the conversion ``name`` of the model with SHA-256 ``digest``."""
    try:
        stamp = json.loads((folder / f"{name}.json").read_text())
        size = (folder / f"{name}.tflite").stat().st_size
    except (OSError, ValueError):
        return False
    return (
        isinstance(stamp, dict)
        and stamp.get("sha256") == digest
        and stamp.get("format") == CACHE_FORMAT
        and stamp.get("bytes") == size  # a file cut off (a full disk, a crash) is rebuilt
    )


def _find_fresh(folders: list[Path], name: str, digest: str) -> Path | None:
    for folder in folders:  # every folder first: a warm one elsewhere needs no conversion
        if _is_fresh(folder, name, digest):
            return folder / f"{name}.tflite"
    return None


def fresh_tflite(bundle: Any, mode: str = "fp32") -> Path | None:
    """The bundle's cached TFLite model in ``mode`` if one is up to date, else None
    (:func:`cached_tflite` would convert it first); converts nothing, loads no Keras."""
    digest = bundle.model_sha256()
    return _find_fresh(_cache_dirs(Path(bundle.path), digest), _cache_name(bundle, mode), digest)


def cached_tflite(bundle: Any, mode: str = "fp32") -> Path:
    """Path of the bundle's TFLite model in ``mode``, converting it when missing or stale.

    The cache sits beside the bundle (``.tflite-cache/``), or in ``~/.cache/liveaffect``
    when the bundle folder is read-only; it is keyed by the SHA-256 of the ``.keras`` file.
    A warm cache never touches ``bundle.model``, so an opened bundle
    (:func:`liveaffect.bundle.open_bundle`) is served without Keras or TensorFlow.

    Raises:
        ExportError: no Keras model to convert, or no cache folder can be written.
        liveaffect.bundle.BundleError: an opened bundle's model cannot be loaded.
    """
    model_file = Path(bundle.model_file)
    digest = bundle.model_sha256()
    folders = _cache_dirs(Path(bundle.path), digest)
    name = _cache_name(bundle, mode)
    found = _find_fresh(folders, name, digest)
    if found is not None:
        return found
    if bundle.model is None:  # an opened bundle loads its Keras model here, and only here
        raise ExportError("the bundle holds no Keras model to convert")
    data, failed = None, []
    for folder in folders:
        target = folder / f"{name}.tflite"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            data = data if data is not None else convert_tflite(bundle.model, mode)
            write_tflite(data, target)  # a full disk leaves no cut-off temporary file
            stamp = {"sha256": digest, "source": str(model_file), "format": CACHE_FORMAT}
            stamp["bytes"] = len(data)
            (folder / f"{name}.json").write_text(json.dumps(stamp))
            return target
        except OSError as exc:
            failed.append(f"{folder} ({exc.strerror or exc})")
            continue
    raise ExportError(f"cannot write a TFLite cache for {model_file} in " + " or ".join(failed))


def run_tflite(path_or_bytes: str | os.PathLike | bytes, x: np.ndarray, threads: int | None = None):
    """Run a TFLite model once on a batch; returns dict output name -> array."""
    from ai_edge_litert.interpreter import Interpreter

    kw = {"model_content": path_or_bytes} if isinstance(path_or_bytes, bytes) else {}
    if not kw:
        kw = {"model_path": str(path_or_bytes)}
    it = Interpreter(**kw, num_threads=threads or os.cpu_count())
    runner = it.get_signature_runner()
    name = it.get_signature_list()["serving_default"]["inputs"][0]
    return runner(**{name: np.asarray(x, np.float32)})


def max_differences(model: Any, tflite: str | os.PathLike | bytes, x: np.ndarray) -> dict:
    """Largest absolute output difference per head between Keras and TFLite on ``x``."""
    ref = model(np.asarray(x, np.float32), training=False)
    out = run_tflite(tflite, x)
    return {k: float(np.abs(np.asarray(ref[k]) - out[k]).max()) for k in ref if k in out}
