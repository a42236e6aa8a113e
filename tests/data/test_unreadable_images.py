"""A corrupt image never aborts training: it is skipped, named and counted; only more than
``data.max_unreadable`` (default 1%) of unreadable images stops the run, with one error."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
from synthetic import write_synthetic_set

from liveaffect.data.dataset import UnreadableImagesError, decode_readable
from liveaffect.data.loaders import load_records
from liveaffect.model.mtl import HeadConfig, ModelConfig
from liveaffect.preprocess import PreprocessSpec
from liveaffect.training.config import DataConfig, RunConfig, SourceSpec, TrainConfig

SPEC = PreprocessSpec(input_size=(32, 32), color="rgb")


def _set(root: Path, n: int, seed: int = 0) -> Path:
    write_synthetic_set(root, n=n, size=32, seed=seed)
    return root


def _corrupt(folder: Path, count: int) -> list[str]:
    with open(folder / "labels.csv", newline="") as fh:
        paths = [row["path"] for row in csv.DictReader(fh)][:count]
    for i, rel in enumerate(paths):
        path = folder / rel
        # a truncated file, then plain text with an image's name
        path.write_bytes(path.read_bytes()[:20] if i % 2 == 0 else b"not an image")
    return [str(folder / p) for p in paths]


def test_unreadable_images_are_skipped_named_and_counted(tmp_path, caplog):
    folder = _set(tmp_path / "faces", 40)
    bad = _corrupt(folder, 2)
    records = load_records(str(folder / "labels.csv"))
    with caplog.at_level(logging.WARNING):
        images, kept = decode_readable(records, SPEC, 2, False, max_unreadable=0.06)
    assert len(kept) == 38 == len(images) and images.shape[1:] == (32, 32, 3)
    assert not {r.path for r in kept} & {str(Path(b)) for b in bad}
    for path in bad:
        assert any(Path(path).name in m for m in caplog.messages)
    assert any("2 of 40 images" in m and "skipped" in m for m in caplog.messages)


def test_more_unreadable_than_allowed_stops_with_the_names(tmp_path):
    folder = _set(tmp_path / "faces", 40)
    bad = _corrupt(folder, 1)  # 2.5% > the default 1%
    records = load_records(str(folder / "labels.csv"))
    with pytest.raises(UnreadableImagesError, match=r"1 of 40 images \(2\.5%\).*1\.0% allowed"):
        decode_readable(records, SPEC, 2, False)
    with pytest.raises(UnreadableImagesError, match=Path(bad[0]).name):
        decode_readable(records, SPEC, 2, False, keep_images=False)


def test_bad_share_option_is_refused():
    with pytest.raises(ValueError, match="max_unreadable"):
        DataConfig(max_unreadable=1.5)


@pytest.mark.slow
def test_a_training_run_skips_a_corrupt_image_and_finishes(tmp_path, caplog):
    from liveaffect.training.train import train

    train_dir, val_dir = _set(tmp_path / "train", 120), _set(tmp_path / "val", 24, seed=1)
    (bad,) = _corrupt(train_dir, 1)  # 0.8% of the training images
    head = HeadConfig(attention_heads=1, attention_key_dim=8, shared_units=16, branch_units=0)
    cfg = RunConfig(
        name="corrupt-image-test",
        model=ModelConfig(backbone="tiny", input_size=32, widths=(8, 16, 32, 64), head=head),
        data=DataConfig(
            train=[SourceSpec(path=str(train_dir / "labels.csv"))],
            validation=[SourceSpec(path=str(val_dir / "labels.csv"))],
        ),
        train=TrainConfig(epochs=1, batch_size=32, tta_flip=False),
    )
    with caplog.at_level(logging.WARNING):
        bundle = train(cfg, tmp_path / "run", command="pytest", verbose=0, progress=False)
    assert (Path(bundle) / "model.keras").exists()
    assert any(Path(bad).name in m for m in caplog.messages)


def test_decode_all_names_an_unreadable_image(tmp_path):
    from liveaffect.data.dataset import decode_all

    folder = _set(tmp_path / "faces", 10)
    (bad,) = _corrupt(folder, 1)
    records = load_records(str(folder / "labels.csv"))
    with pytest.raises(UnreadableImagesError, match=r"1 of 10 images are unreadable: .*"):
        decode_all(records, SPEC, 2, False)
    images = decode_all([r for r in records if Path(r.path) != Path(bad)], SPEC, 2, False)
    assert images.shape == (9, 32, 32, 3)
