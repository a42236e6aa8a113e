"""Weak AU labels from the expression (``data.weak_au``) and the ``weak_au`` source option."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from liveaffect.data.records import Record
from liveaffect.data.weak_au import expression_au_rates, weak_au_cells, with_weak_au
from liveaffect.training.config import config_from_dict
from liveaffect.training.inputs import TrainingError, resolve_records

SURPRISE, HAPPINESS, ANGER = 6, 4, 1


def _coded(expr: int, aus: set[int]) -> Record:
    return Record(path="c.png", expr=expr, au=tuple(int(i in aus) for i in range(12)))


def test_rates_are_each_expressions_au_rates_among_fully_coded_faces():
    records = [_coded(SURPRISE, {0, 1, 10})] * 3 + [_coded(SURPRISE, {0, 1, 11})]
    records += [_coded(HAPPINESS, {3, 6})] * 2
    records += [_coded(0, {6})]  # a "neutral" face with an AU: Neutral stays at no AU
    records += [Record(path="f.png", expr=ANGER)]  # no AU coded: not counted
    records += [Record(path="p.png", expr=ANGER, au=(1,) + (-1,) * 11)]  # partly coded
    rates = expression_au_rates(records)
    assert rates.shape == (8, 12)
    assert rates[SURPRISE].tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0.75, 0.25]
    assert rates[HAPPINESS, [3, 6]].tolist() == [1, 1] and rates[HAPPINESS].sum() == 2
    assert not rates[0].any() and not rates[ANGER].any()


def test_cells_are_one_zero_or_unknown_by_the_two_thresholds():
    assert weak_au_cells([1.0, 0.75, 0.74, 0.11, 0.1, 0.0], high=0.75, low=0.1) == (
        1, 1, -1, -1, 0, 0,
    )  # fmt: skip


def test_only_a_share_of_expression_only_faces_get_labels_and_the_seed_fixes_which():
    rates = expression_au_rates([_coded(SURPRISE, {0, 1, 10})] * 4 + [_coded(ANGER, {3})] * 2)
    rates[ANGER, 4] = 0.5  # between the thresholds: unknown
    faces = [Record(path=f"{i}.png", expr=(SURPRISE, ANGER, 0)[i % 3]) for i in range(3000)]
    faces += [Record(path="va.png", va=(0.1, 0.2)), _coded(SURPRISE, set())]
    out = with_weak_au(faces, rates, share=0.4, high=0.75, low=0.1, seed=3)
    assert out == with_weak_au(faces, rates, share=0.4, high=0.75, low=0.1, seed=3)
    assert out != with_weak_au(faces, rates, share=0.4, high=0.75, low=0.1, seed=4)
    labelled = [r for r in out[:3000] if r.au is not None]
    assert 0.37 < len(labelled) / 3000 < 0.43
    for r in labelled:
        assert r.path == faces[int(r.path[:-4])].path and r.expr == faces[int(r.path[:-4])].expr
        if r.expr == SURPRISE:
            assert r.au == (1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0)
        elif r.expr == ANGER:
            assert r.au == (0, 0, 0, 1, -1, 0, 0, 0, 0, 0, 0, 0)
        else:
            assert r.au == (0,) * 12  # Neutral: no AU
    assert out[3000].au is None  # no expression: nothing to read AUs from
    assert out[3001] == faces[3001]  # already coded: left alone
    everyone = with_weak_au(faces, rates, share=1.0, high=0.75, low=0.1, seed=0)
    assert all(r.au is not None for r in everyone[:3000])
    with pytest.raises(ValueError, match="share"):
        with_weak_au(faces, rates, share=1.5, high=0.75, low=0.1, seed=0)
    with pytest.raises(ValueError, match="low < high"):
        with_weak_au(faces, rates, share=0.5, high=0.1, low=0.75, seed=0)


def _sources(tmp_path):
    """A FER-style folder (expressions only) and a CK+-style manifest (expression + AUs)."""
    for name in ("surprise", "neutral"):
        (tmp_path / "fer" / name).mkdir(parents=True)
        for i in range(50):
            cv2.imwrite(str(tmp_path / "fer" / name / f"{i}.png"), np.zeros((8, 8), np.uint8))
    aus = ["AU01", "AU02", "AU04", "AU06", "AU07", "AU10"]
    aus += ["AU12", "AU15", "AU23", "AU24", "AU25", "AU26"]
    lines = ["path,expression,subject," + ",".join(aus)]
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"c{i}.png"), np.zeros((8, 8), np.uint8))
        lines.append(f"c{i}.png,surprise,S{i},1,1,0,0,0,0,0,0,0,0,1,{i % 2}")
    (tmp_path / "ck.csv").write_text("\n".join(lines) + "\n")
    return str(tmp_path / "fer"), str(tmp_path / "ck.csv")


def test_a_training_source_with_weak_au_gets_labels_from_the_other_sources_coded_faces(
    tmp_path,
):
    fer, ck = _sources(tmp_path)
    data = {"train": [{"path": fer, "weak_au": 1.0}, {"path": ck, "repeat": 3}]}
    data["validation"] = [{"path": ck}]
    train, _ = resolve_records(config_from_dict({"data": data}))
    assert len(train) == 100 + 12
    from_fer = [r for r in train if "/fer/" in r.path]
    surprised = [r.au for r in from_fer if r.expr == SURPRISE]
    assert surprised == [(1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, -1)] * 50  # AU26 in half: unknown
    assert all(r.au == (0,) * 12 for r in from_fer if r.expr == 0)
    data["weak_au_high"], data["weak_au_low"] = 0.5, 0.4
    train, _ = resolve_records(config_from_dict({"data": data}))
    assert {r.au[11] for r in train if "/fer/" in r.path and r.expr == SURPRISE} == {1}
    data["train"] = [{"path": fer}, {"path": ck}]  # without weak_au: as read
    train, _ = resolve_records(config_from_dict({"data": data}))
    assert all(r.au is None for r in train if "/fer/" in r.path)


def test_weak_au_needs_coded_faces_and_sane_numbers(tmp_path):
    fer, ck = _sources(tmp_path)
    data = {"train": [{"path": fer, "weak_au": 0.5}], "validation": [{"path": ck}]}
    with pytest.raises(TrainingError, match="all 12 AUs coded"):
        resolve_records(config_from_dict({"data": data}))
    with pytest.raises(ValueError, match="weak_au must be in"):
        config_from_dict({"data": {"train": [{"path": fer, "weak_au": 2}]}})
    with pytest.raises(ValueError, match="weak_au_low and weak_au_high"):
        config_from_dict({"data": {"weak_au_high": 0.2, "weak_au_low": 0.3}})
