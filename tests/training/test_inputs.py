"""What a run trains on: per-class loss weights (``training.inputs.class_weights``) and the
source's own train/validation split."""

from __future__ import annotations

import pytest

from liveaffect.data.records import Record
from liveaffect.training.config import RunConfig, config_from_dict
from liveaffect.training.inputs import _split, class_weights, head_info


def test_a_capped_class_weight_no_longer_pushes_the_others_down():
    # 4 classes of 1000 faces and one of 10 (as CK+ contempt beside FER2013)
    records = [Record(path="x", expr=c) for c in range(4) for _ in range(1000)]
    records += [Record(path="x", expr=7) for _ in range(10)]
    plain = class_weights(records, RunConfig())
    capped = class_weights(records, config_from_dict({"train": {"class_weight_max": 2.0}}))
    # sqrt-balanced: the small class is 10x the others, so mean-1 leaves them at ~0.36
    assert plain[7] == pytest.approx(10 * plain[0]) and plain[0] < 0.4
    # capped before normalising: the small class at 2.0 / mean, the others at raw / mean
    raw = (4010 / (5 * 1000)) ** 0.5
    mean = (4 * raw + 2.0) / 5
    assert capped[0] == pytest.approx(raw / mean) and capped[7] == pytest.approx(2.0 / mean)
    assert capped[0] > 0.75 and capped[4] == 0.0
    assert sum(w for w in capped if w) / 5 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="class_weight_max"):
        config_from_dict({"train": {"class_weight_max": -1}})


def test_the_sources_own_split_warns_of_recordings_on_both_sides(caplog):
    # the left person of a recording in Train_Set, the right one in Validation_Set (or test)
    records = [Record("t.jpg", 1, video="train_only", split="train")]
    for i in range(2):
        records.append(Record(f"{i}l.jpg", 1, video=f"r{i}_left", split="train"))
        records.append(Record(f"{i}r.jpg", 1, video=f"r{i}_right", split="validation"))
    for held in ("validation", "test"):
        recs = [r if r.split == "train" else Record(r.path, 1, video=r.video, split=held)
                for r in records]  # fmt: skip
        caplog.clear()
        with caplog.at_level("WARNING", logger="liveaffect.data.splits"):
            train, val = _split(recs, RunConfig())
        assert [r.split for r in val] == [held] * 2 and len(train) == 3  # still split
        (warning,) = caplog.records
        assert "2 recording(s) in both training and validation" in warning.getMessage()
        assert "r0, r1;" in warning.getMessage()


def test_no_training_records_names_the_sources_and_why(tmp_path):
    """Before: 'no training records found in the given data', naming neither."""
    from liveaffect.training.inputs import TrainingError, resolve_records

    for i in range(3):
        (tmp_path / f"f{i}.png").write_bytes(b"not decoded here")
    manifest = tmp_path / "labels.csv"
    manifest.write_text("path,expression,split\n" + "".join(
        f"f{i}.png,{i},validation\n" for i in range(3)))  # fmt: skip
    cfg = config_from_dict({"data": {"train": [str(manifest)]}})
    with pytest.raises(TrainingError, match=rf"^no training records in {manifest}: the 3 .*"
                       r"went to validation \(data.split: auto"):  # fmt: skip
        resolve_records(cfg)
    manifest.write_text("path,expression\nf0.png,\n")
    with pytest.raises(TrainingError, match=rf"^no training records in {manifest}: no labelled"):
        resolve_records(cfg)


def test_a_head_without_labels_says_which_labels_it_lacked():
    # the card's data line of an untrained head names the labels, for every head (the VA
    # and expression heads had "" there, only the AU head a sentence)
    only_expr = head_info([Record("a.jpg", 1, source="fer")])
    assert only_expr["expr"].trained and only_expr["expr"].data == "fer (1 faces)"
    assert not only_expr["va"].trained and only_expr["va"].data == "no valence/arousal labels"
    assert not only_expr["au"].trained and only_expr["au"].data == "no action-unit labels"
    only_va = head_info([Record("a.jpg", va=(0.1, 0.2), source="va")])
    assert not only_va["expr"].trained and only_va["expr"].data == "no expression labels"
    assert only_va["va"].data == "va (1 faces)"
