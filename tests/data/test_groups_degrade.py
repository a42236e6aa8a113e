"""Grouped holdout splits of CSV manifests (CK+ by subject) and the video degradations."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from liveaffect.data import degrade, folders, loaders
from liveaffect.data.io import DatasetError
from liveaffect.data.splits import holdout_part
from liveaffect.training.config import SourceSpec
from tests.conftest import shared_path


def _manifest(tmp_path, n_subjects=10, per_subject=6):
    img = np.full((8, 8), 128, np.uint8)
    lines = ["path,expression,video,subject,AU12"]
    for s in range(n_subjects):
        for i in range(per_subject):
            name = f"s{s}_{i}.png"
            cv2.imwrite(str(tmp_path / name), img)
            lines.append(f"{name},happy,s{s}_seq{i // 3},S{s},{i % 2}")
    path = tmp_path / "labels.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_group_by_keeps_each_subject_on_one_side_of_every_part(tmp_path):
    records = loaders.load_records(str(_manifest(tmp_path)), group_by="subject")
    assert {r.group for r in records} == {f"S{s}" for s in range(10)}
    assert records[0].video == "s0_seq0"  # the recording stays what it was
    parts = {p: holdout_part(records, 0.4, 3, p) for p in ("rest", "holdout_val", "holdout_test")}
    groups = {p: {r.group for r in recs} for p, recs in parts.items()}
    assert all(groups.values())
    assert not groups["rest"] & groups["holdout_val"]
    assert not groups["rest"] & groups["holdout_test"]
    assert not groups["holdout_val"] & groups["holdout_test"]
    assert sum(len(v) for v in parts.values()) == len(records)
    held = {r.path for r in holdout_part(records, 0.4, 3, "holdout")}
    assert held == {r.path for p in ("holdout_val", "holdout_test") for r in parts[p]}


def test_without_group_by_a_subject_is_cut_by_sequence(tmp_path):
    records = loaders.load_records(str(_manifest(tmp_path)))
    assert all(r.group == "" for r in records)
    rest = {r.video for r in holdout_part(records, 0.4, 3, "rest")}
    held = {r.video for r in holdout_part(records, 0.4, 3, "holdout")}
    assert not rest & held
    # some subject has sequences on both sides: that is what group_by prevents
    subject = lambda v: v.split("_")[0]  # noqa: E731
    assert {subject(v) for v in rest} & {subject(v) for v in held}


def test_group_by_errors(tmp_path):
    path = _manifest(tmp_path)
    with pytest.raises(DatasetError, match="no 'person' column"):
        folders.read_csv_manifest(str(path), group_by="person")
    path.write_text(path.read_text().replace(",S3,", ",,", 1))
    with pytest.raises(DatasetError, match=r"labels.csv:\d+: empty group cell"):
        folders.read_csv_manifest(str(path), group_by="subject")
    (tmp_path / "fer" / "happy").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "fer" / "happy" / "a.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(DatasetError, match="group_by needs a CSV"):
        loaders.load_records(str(tmp_path / "fer"), group_by="subject")
    with pytest.raises(ValueError, match="needs a holdout fraction"):
        SourceSpec(path="x.csv", part="holdout_val")
    with pytest.raises(ValueError, match="part must be one of"):
        SourceSpec(path="x.csv", holdout=0.3, part="val")


def test_real_ckplus_split_by_subject():
    root = shared_path("ckplus_au")
    records = loaders.load_records(str(root), group_by="subject")
    assert len(records) == 654
    assert len({r.group for r in records}) == 78
    assert all(r.has_au and r.has_expr for r in records)
    val = holdout_part(records, 0.3, 35, "holdout_val")
    test = holdout_part(records, 0.3, 35, "holdout_test")
    # seed 35 (the default config's): every AU and Other in both halves, >= 2 sequences
    for part in (val, test):
        au = np.array([r.au for r in part]).sum(axis=0)
        assert au.min() >= 6
        assert sum(r.expr == 7 for r in part) >= 6


@pytest.fixture(scope="module")
def face():
    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur(rng.integers(0, 256, (48, 48), dtype=np.uint8), (0, 0), 1.0)
    return img[..., None]


@pytest.mark.parametrize("kind", degrade.KINDS)
def test_fixed_copies_keep_shape_and_change_the_face(face, kind):
    out = degrade.degrade_copy(face, kind, np.random.default_rng(0))
    assert out.shape == face.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - face).mean() > 3
    again = degrade.degrade_copy(face, kind, np.random.default_rng(0))
    np.testing.assert_array_equal(out, again)  # seeded: reproducible copies


def test_fixed_copies_do_what_they_say(face):
    rng = np.random.default_rng(0)
    lap = lambda x: cv2.Laplacian(x.astype(np.float32), cv2.CV_32F).var()  # noqa: E731
    assert lap(degrade.degrade_copy(face, "blur", rng)) < 0.2 * lap(face)
    assert lap(degrade.degrade_copy(face, "lowres", rng)) < 0.5 * lap(face)
    assert degrade.degrade_copy(face, "dark", rng).mean() < 0.6 * face.mean()
    with pytest.raises(ValueError, match="degradation must be one of"):
        degrade.degrade_copy(face, "fog", rng)


def test_strengths_scale_with_image_size(face):
    big = cv2.resize(face[..., 0], (192, 192), interpolation=cv2.INTER_CUBIC)[..., None]
    rng = np.random.default_rng(0)
    small_blur = degrade.degrade_copy(face, "blur", rng)
    big_blur = cv2.resize(degrade.degrade_copy(big, "blur", rng)[..., 0], (48, 48))
    diff = np.abs(small_blur[..., 0].astype(int) - big_blur).mean()
    assert diff < 6  # the same blur relative to the face, whatever its size


def test_random_batch_degrades_about_the_asked_share(face):
    batch = np.repeat(face[None], 200, axis=0)
    out = degrade.random_degrade_batch(batch, 0.5, np.random.default_rng(0))
    changed = (np.abs(out.astype(int) - batch).reshape(200, -1).max(axis=1) > 0).mean()
    assert 0.3 < changed < 0.6  # p=0.5, and a drawn chain can be empty (0.5*0.6*0.5*0.6^2)
    assert np.array_equal(batch, np.repeat(face[None], 200, axis=0))  # input untouched
    none = degrade.random_degrade_batch(batch, 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(none, batch)


def test_single_mode_degrades_every_drawn_face_with_one_kind_each(face):
    rng = np.random.default_rng(0)
    lap = lambda x: cv2.Laplacian(x.astype(np.float32), cv2.CV_32F).var()  # noqa: E731
    seen = {"dark": 0, "sharp_changed": 0, "soft": 0}
    for _ in range(120):
        out = degrade.random_single_degrade(face, rng)
        assert out.shape == face.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - face).mean() > 1  # never an empty draw
        if out.mean() < 0.7 * face.mean():
            seen["dark"] += 1  # the dark room (nothing else darkens)
        elif lap(out) < 0.6 * lap(face):
            seen["soft"] += 1  # blur or low resolution
        else:
            seen["sharp_changed"] += 1  # noise + JPEG
    # a quarter each: dark ~30, blur + lowres ~60, noise ~30 of 120
    assert 15 <= seen["dark"] <= 45 and 40 <= seen["soft"] <= 80, seen
    assert 15 <= seen["sharp_changed"] <= 45, seen
    batch = np.repeat(face[None], 100, axis=0)
    out = degrade.random_degrade_batch(batch, 0.5, np.random.default_rng(0), "single")
    changed = (np.abs(out.astype(int) - batch).reshape(100, -1).max(axis=1) > 0).mean()
    assert 0.35 < changed < 0.65  # every drawn face is degraded (no empty chains)


def test_degrade_mode_is_checked_when_the_config_is_read():
    from liveaffect.data.dataset import AugmentConfig

    assert AugmentConfig(degrade=0.5, degrade_mode="single").degrade_mode == "single"
    with pytest.raises(ValueError, match="degrade_mode must be one of chain, single"):
        AugmentConfig(degrade_mode="fog")


def test_single_mode_draws_the_kinds_by_their_weights(face):
    weights = degrade.kind_weights({"blur": 3, "dark": 1})
    assert weights == (0.75, 0.0, 0.0, 0.25)  # the order of KINDS; left-out kinds get none
    rng = np.random.default_rng(0)
    dark = sum(
        degrade.random_single_degrade(face, rng, weights).mean() < 0.7 * face.mean()
        for _ in range(200)
    )
    assert 30 <= dark <= 70  # a quarter of 200
    only_dark = degrade.random_degrade_batch(
        np.repeat(face[None], 20, axis=0), 1.0, rng, "single", {"dark": 1}
    )
    assert all(img.mean() < 0.7 * face.mean() for img in only_dark)
    for bad, match in (({"fog": 1}, "kinds are blur"), ({"blur": -1, "dark": 2}, ">= 0"),
                       ({"blur": 0}, "not all 0")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            degrade.kind_weights(bad)
    with pytest.raises(ValueError, match="single mode"):
        degrade.random_degrade_batch(only_dark, 1.0, rng, "chain", {"dark": 1})


def test_degrade_kinds_are_checked_when_the_config_is_read():
    from liveaffect.data.dataset import AugmentConfig

    cfg = AugmentConfig(degrade=0.7, degrade_mode="single", degrade_kinds={"blur": 2, "dark": 1})
    assert cfg.to_dict()["degrade_kinds"] == {"blur": 2, "dark": 1}
    with pytest.raises(ValueError, match=r"needs augment\.degrade_mode: single"):
        AugmentConfig(degrade=0.7, degrade_kinds={"blur": 1})
    with pytest.raises(ValueError, match=r"augment\.degrade_kinds: degradation kinds are"):
        AugmentConfig(degrade=0.7, degrade_mode="single", degrade_kinds={"smoke": 1})
    with pytest.raises(ValueError, match="maps kinds to weights"):
        AugmentConfig(degrade=0.7, degrade_mode="single", degrade_kinds=["blur"])
