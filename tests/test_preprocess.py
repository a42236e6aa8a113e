"""Parity: the training dataset and the live path make identical tensors from the same pixels.

Training reads a face crop from disk (``data.dataset.make_dataset``, no augmentation); the
live app crops the same pixels out of a frame (``preprocess.prepare_batch``). Both must give
the model the same input (to float32 rounding) for every colour order, normalisation and size.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from liveaffect.data.dataset import make_dataset
from liveaffect.data.records import Record
from liveaffect.preprocess import PreprocessSpec, prepare_batch

SPECS = [
    PreprocessSpec(input_size=(32, 32), color="rgb", normalization="none", square=False),
    PreprocessSpec(input_size=(48, 40), color="bgr", normalization="unit", square=False),
    PreprocessSpec(input_size=(24, 24), color="gray", normalization="symmetric", square=False),
    PreprocessSpec(
        input_size=(64, 64),
        color="rgb",
        normalization="mean_std",
        mean=(120.0, 110.0, 100.0),
        std=(60.0, 55.0, 50.0),
        square=False,
    ),
]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """Face crops of several sizes (smaller and larger than the inputs), saved as PNG."""
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    out = []
    for k, (h, w) in enumerate([(20, 18), (57, 50), (90, 90), (131, 97)]):
        face = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        path = root / f"face{k}.png"
        cv2.imwrite(str(path), face)
        out.append((path, face))
    return out


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.color}-{s.normalization}")
def test_training_dataset_and_live_path_agree(faces, spec):
    records = [Record(path=str(path), expr=0) for path, _ in faces]
    batches = make_dataset(records, spec, batch_size=len(records), training=False, cache=None)
    trained_on = np.concatenate([np.asarray(x) for x, _ in batches])
    live = []
    for _, face in faces:
        h, w = face.shape[:2]
        frame = np.zeros((h + 40, w + 60, 3), np.uint8)
        frame[25 : 25 + h, 30 : 30 + w] = face  # the face somewhere in a bigger frame
        live.append(prepare_batch(frame, [(30.0, 25.0, 30.0 + w, 25.0 + h)], spec)[0])
    assert trained_on.shape == (len(faces), *spec.input_shape)
    np.testing.assert_allclose(trained_on, np.stack(live), rtol=1e-6, atol=1e-5)
