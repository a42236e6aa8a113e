"""Per-class loss weights from the training records (``training.inputs.class_weights``)."""

from __future__ import annotations

import pytest

from liveaffect.data.records import Record
from liveaffect.training.config import RunConfig, config_from_dict
from liveaffect.training.inputs import class_weights


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
