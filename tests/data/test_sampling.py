"""The seed's sampling recipe and the train/validation splits."""

from __future__ import annotations

import pytest

from liveaffect.data import sampling, splits
from liveaffect.data.affwild2 import base_video
from liveaffect.data.records import Record
from liveaffect.data.sampling import SeedRecipe
from liveaffect.labels import EXPRESSIONS

COUNTS = {
    "Neutral": 3000,
    "Anger": 300,
    "Disgust": 50,
    "Fear": 30,
    "Happiness": 2000,
    "Sadness": 800,
    "Surprise": 200,
    "Other": 2500,
}
AU = (1, 0) * 6


def make_records(counts=COUNTS, incomplete: int = 500) -> list[Record]:
    records = []
    for name, n in counts.items():
        expr = EXPRESSIONS.index(name)
        for i in range(n):
            records.append(
                Record(f"{name}/{i}.jpg", expr, (0.1, 0.2), AU, "syn", f"{name}-{i // 50}", i)
            )
    records += [Record(f"inc/{i}.jpg", 0, None, AU, "syn", "inc", i) for i in range(incomplete)]
    return records


def paths(records) -> list[str]:
    return [r.path for r in records]


def test_fill_targets_is_exact_and_keeps_small_classes():
    targets = sampling.fill_targets({"Neutral": 3000, "Happiness": 1000, "Other": 2500}, 5000)
    assert targets["Happiness"] == 1000
    assert sum(targets.values()) == 5000 and abs(targets["Neutral"] - targets["Other"]) <= 1
    assert sampling.fill_targets({"Neutral": 10}, 50) == {"Neutral": 10}


def test_balanced_pool_has_pool_size_and_keeps_minorities():
    recipe = SeedRecipe(pool_size=5000, validation_size=200)
    pool = sampling.balanced_pool(make_records(), recipe)
    assert len(pool) == 5000 and len(set(paths(pool))) == 5000
    counts = sampling.class_counts(pool)
    minority = sum(COUNTS[c] for c in COUNTS if c not in recipe.majority_classes)
    assert all(counts[c] == COUNTS[c] for c in COUNTS if c not in recipe.majority_classes)
    share = (5000 - minority) / 3
    for name in recipe.majority_classes:
        assert abs(counts[name] - share) <= 1
    assert all(r.complete for r in pool)  # the 500 incomplete records are gone


def test_subsets_disjoint_equal_stratified_and_members_oversampled():
    recipe = SeedRecipe(pool_size=5000, validation_size=400, seed=3)
    result = sampling.apply_seed_recipe(make_records(), recipe)
    assert [len(s) for s in result.subsets] == [1000] * 5
    seen: set[str] = set()
    for subset in result.subsets:
        subset_paths = set(paths(subset))
        assert len(subset_paths) == 1000 and not subset_paths & seen
        seen |= subset_paths
        assert sampling.class_counts(subset)["Disgust"] == 10  # 50 spread evenly over 5
    assert len(result.members) == 3 and paths(result.test) == paths(result.subsets[4])
    for member, subset in zip(result.members, result.subsets, strict=False):
        counts = sampling.class_counts(member)
        assert len(set(counts.values())) == 1  # every class raised to the largest one
        assert set(paths(member)) == set(paths(subset))  # repeats only, nothing new
    val_counts = sampling.class_counts(result.validation)
    assert len(result.validation) == 400 and set(paths(result.validation)) <= set(
        paths(result.subsets[3])
    )
    # small classes kept whole, the others capped at one equal share (400 in all)
    assert val_counts == {
        "Neutral": 71,
        "Anger": 60,
        "Disgust": 10,
        "Fear": 6,
        "Happiness": 71,
        "Sadness": 71,
        "Surprise": 40,
        "Other": 71,
    }


def test_recipe_is_deterministic_with_its_seed():
    records = make_records()
    a = sampling.apply_seed_recipe(records, SeedRecipe(pool_size=3000, validation_size=100))
    b = sampling.apply_seed_recipe(records, SeedRecipe(pool_size=3000, validation_size=100))
    c = sampling.apply_seed_recipe(records, SeedRecipe(pool_size=3000, validation_size=100, seed=1))
    assert paths(a.pool) == paths(b.pool) and paths(a.members[0]) == paths(b.members[0])
    assert paths(a.validation) == paths(b.validation)
    assert paths(a.subsets[0]) != paths(c.subsets[0])


def test_class_weights_apply_boosts():
    balanced = dict.fromkeys(EXPRESSIONS, 100)
    weights = sampling.class_weights(balanced)
    assert weights["Neutral"] == pytest.approx(1.0)
    assert weights["Fear"] == pytest.approx(1.5) and weights["Surprise"] == pytest.approx(1.5)
    assert weights["Sadness"] == pytest.approx(1.5)
    skewed = {"Neutral": 300, "Fear": 100, "Sadness": 200}
    custom = SeedRecipe(boost_add={"Fear": 1.0}, boost_mul={"Sadness": 2.0, "Fear": 0.5})
    weights = sampling.class_weights(skewed, custom)
    assert weights["Neutral"] == pytest.approx(600 / (3 * 300))
    assert weights["Fear"] == pytest.approx((600 / (3 * 100) + 1.0) * 0.5)
    assert weights["Sadness"] == pytest.approx(600 / (3 * 200) * 2.0)
    assert weights["Anger"] == pytest.approx(1.0)  # absent class
    result = sampling.apply_seed_recipe(make_records(), SeedRecipe(pool_size=3000))
    assert result.class_weights[0]["Fear"] == pytest.approx(1.5)


def test_recipe_rejects_bad_numbers():
    with pytest.raises(ValueError, match="n_subsets"):
        SeedRecipe(n_subsets=2)
    with pytest.raises(ValueError, match="pool_size"):
        SeedRecipe(pool_size=0)
    with pytest.raises(ValueError, match="unknown class 'Contempt'"):
        SeedRecipe(boost_add={"Contempt": 1.0})


def test_count_report_table():
    before = sampling.class_counts(make_records())
    after = sampling.class_counts(sampling.balanced_pool(make_records(), SeedRecipe(5000)))
    report = sampling.count_report(before, after)
    lines = report.splitlines()
    assert lines[0].split() == ["class", "before", "after", "ratio"]
    assert lines[1].split()[:3] == ["Neutral", "3500", str(after["Neutral"])]
    assert lines[-1].split()[:3] == ["total", str(sum(before.values())), "5000"]
    assert any(line.split()[0] == "Fear" and line.split()[-1] == "1.00x" for line in lines)


def test_split_by_recording_never_straddles_left_right():
    records = []
    for i in range(30):
        for side in ("_left", "_right", ""):
            name = f"rec{i}{side}"
            records += [Record(f"{name}/{f}.jpg", 1, video=base_video(name)) for f in range(5)]
    train, val = splits.split_by_recording(records, val_fraction=0.2, seed=7)
    assert len(train) + len(val) == len(records)
    assert not {r.video for r in train} & {r.video for r in val}
    assert 0.2 <= len(val) / len(records) < 0.3
    again = splits.split_by_recording(records, val_fraction=0.2, seed=7)
    assert paths(again[1]) == paths(val)
    one_recording = [Record(f"{i}.jpg", 1, video="only") for i in range(10)]
    assert splits.split_by_recording(one_recording, 0.5)[1] == []


def test_official_and_random_splits():
    records = [
        Record("a.jpg", 1, source="s", video="a", split="train"),
        Record("b.jpg", 1, source="s", video="b", split="validation"),
        Record("c.jpg", 1, source="s", video="c", split="test"),
    ]
    train, val = splits.official_split(records)
    assert paths(train) == ["a.jpg"] and paths(val) == ["b.jpg", "c.jpg"]
    with pytest.raises(ValueError, match="from fer carry no official split"):
        splits.official_split([*records, Record("d.jpg", 1, source="fer")])
    many = [Record(f"{i}.jpg", 1, video="v") for i in range(100)]
    train, val = splits.random_split(many, 0.25, seed=1)
    assert len(val) == 25 and not set(paths(train)) & set(paths(val))
    assert paths(splits.random_split(many, 0.25, seed=1)[1]) == paths(val)
    assert paths(splits.make_split(many, "random", 0.25, 1)[1]) == paths(val)
    with pytest.raises(ValueError, match="strategy"):
        splits.make_split(many, "by_magic")


def test_the_auto_split_takes_the_sources_own_held_out_part_else_cuts_by_recording():
    records = [
        Record("a.jpg", 1, source="s", video="a", split="train"),
        Record("b.jpg", 1, source="s", video="b", split="validation"),
        Record("c.jpg", 1, source="s", video="c", split="test"),
        Record("d.jpg", 1, source="csv", video="d"),  # no split: trains
    ]
    train, val = splits.make_split(records, "auto")
    assert paths(val) == ["b.jpg"] and paths(train) == ["a.jpg", "c.jpg", "d.jpg"]
    no_validation = [r for r in records if r.split != "validation"]
    train, val = splits.auto_split(no_validation)
    assert paths(val) == ["c.jpg"] and paths(train) == ["a.jpg", "d.jpg"]
    unsplit = [Record(f"{i}.jpg", 1, video=f"v{i % 10}") for i in range(100)]
    assert splits.auto_split(unsplit, 0.2, 3) == splits.split_by_recording(unsplit, 0.2, 3)


def _two_people_across_the_split(n_shared: int) -> list[Record]:
    """One person of each of ``n_shared`` two-person recordings in Train_Set, the other
    in Validation_Set (a Record's video is the name as a reader may hand it over)."""
    records = [Record("t.jpg", 1, source="s", video="train_only", split="train")]
    for i in range(n_shared):
        records.append(Record(f"{i}l.jpg", 1, source="s", video=f"r{i}_left", split="train"))
        records.append(Record(f"{i}r.jpg", 1, source="s", video=f"r{i}_right", split="validation"))
    return records


def test_official_split_warns_of_recordings_on_both_sides(caplog):
    records = [
        Record("a.jpg", 1, source="s", video="a", split="train"),
        Record("b.jpg", 1, source="s", video="b", split="validation"),
    ]
    with caplog.at_level("WARNING", logger="liveaffect.data.splits"):
        splits.official_split(records)
    assert caplog.records == []
    with caplog.at_level("WARNING", logger="liveaffect.data.splits"):
        train, val = splits.official_split(_two_people_across_the_split(7))
    assert len(train) == 8 and len(val) == 7  # a warning, not a different split
    (warning,) = caplog.records
    assert warning.levelname == "WARNING"
    text = warning.getMessage()
    assert "7 recording(s) in both training and validation" in text
    assert "r0, r1, r2, r3, r4 and 2 more" in text and "r5" not in text
    assert splits.shared_recordings(train, val) == [f"r{i}" for i in range(7)]
