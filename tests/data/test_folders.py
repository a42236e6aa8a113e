"""Class folders, CSV manifests and source detection (synthetic, plus the shared real sets)."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest

from liveaffect.data import folders, loaders
from liveaffect.data.io import DatasetError
from liveaffect.data.sampling import class_counts

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FER = SHARED / "fer2013"
DIFFUSIONFER = SHARED / "diffusionfer"


def touch(folder: Path, n: int, ext: str = ".jpg") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"img{i}{ext}" for i in range(n)]
    for p in paths:
        p.write_bytes(b"x")
    return paths


def test_class_folders_with_aliases_and_unknown_class(tmp_path, caplog):
    touch(tmp_path / "angry", 2)
    touch(tmp_path / "Happy", 3, ".PNG")
    touch(tmp_path / "surprised", 1, ".jpeg")
    touch(tmp_path / "neutral", 1, ".bmp")
    touch(tmp_path / "contempt", 4)
    (tmp_path / "angry" / "notes.txt").write_text("not an image")
    (tmp_path / "README.md").write_text("x")
    with caplog.at_level(logging.WARNING, logger="liveaffect.data.folders"):
        records = folders.read_class_folders(str(tmp_path))
    assert re.search(r"skipped 4 images of unknown class 'contempt'", caplog.text)
    counts = class_counts(records)
    assert counts["Anger"] == 2 and counts["Happiness"] == 3
    assert counts["Surprise"] == 1 and counts["Neutral"] == 1 and sum(counts.values()) == 7
    assert all(r.video == r.path and r.split == "" and r.va is None for r in records)
    assert {r.source for r in records} == {f"{tmp_path.parent.name}/{tmp_path.name}"}
    with pytest.raises(DatasetError, match="no train/val/test folders"):
        folders.read_class_folders(str(tmp_path), split="train")


@pytest.mark.parametrize("val_name", ["val", "valid", "validation", "Validation"])
def test_split_folders_set_record_split(tmp_path, val_name):
    touch(tmp_path / "train" / "fear", 2)
    touch(tmp_path / "train" / "sad", 1)
    touch(tmp_path / val_name / "fear", 1)
    touch(tmp_path / "test" / "disgust", 3)
    everything = folders.read_class_folders(str(tmp_path))
    assert sorted((r.split, r.expr) for r in everything) == [
        ("test", 2),
        ("test", 2),
        ("test", 2),
        ("train", 3),
        ("train", 3),
        ("train", 5),
        ("validation", 3),
    ]
    assert [r.split for r in folders.read_class_folders(str(tmp_path), "validation")] == [
        "validation"
    ]
    assert len(folders.read_class_folders(str(tmp_path), "test")) == 3
    assert loaders.detect_kind(str(tmp_path)) == "folders"


def write_csv(path: Path, text: str, crlf: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", "\r\n" if crlf else "\n").encode())
    return path


def test_csv_manifest_with_partial_columns(tmp_path, caplog):
    touch(tmp_path / "imgs", 6)
    outside = tmp_path / "elsewhere" / "abs.jpg"
    outside.parent.mkdir()
    outside.write_bytes(b"x")
    csv_path = write_csv(
        tmp_path / "labels.csv",
        "path,expression,valence,arousal,AU01,au_2,AU26,comment\n"
        "imgs/img0.jpg,happy,0.5,0.25,1,0,,fine\n"  # AU4.. missing -> -1
        'imgs/img1.jpg,3,,,,,,"index expression, no VA, no AU"\n'
        "imgs/img2.jpg,,-0.5,0.5,,,,no expression\n"
        "imgs/img3.jpg,contempt,0.1,0.1,,,,unknown class but VA kept\n"
        "imgs/img4.jpg,contempt,,,,,,nothing usable\n"
        "imgs/missing.jpg,sad,,,,,,no such image\n"
        f"{outside},Anger,-5,-5,,,,absolute path and VA -5\n"
        "\n",
        crlf=True,
    )
    with caplog.at_level(logging.WARNING, logger="liveaffect.data.folders"):
        records = folders.read_csv_manifest(str(csv_path))
    assert "2 rows of unknown expression 'contempt'" in caplog.text
    by_name = {Path(r.path).name: r for r in records}
    assert sorted(by_name) == ["abs.jpg", "img0.jpg", "img1.jpg", "img2.jpg", "img3.jpg"]
    happy = by_name["img0.jpg"]
    assert happy.expr == 4 and happy.va == (0.5, 0.25)
    assert happy.au == (1, 0) + (-1,) * 10
    assert by_name["img1.jpg"].expr == 3 and by_name["img1.jpg"].va is None
    assert by_name["img1.jpg"].au is None
    assert by_name["img2.jpg"].expr == -1 and by_name["img2.jpg"].va == (-0.5, 0.5)
    assert by_name["img3.jpg"].expr == -1 and by_name["img3.jpg"].has_va
    assert happy.path == str(tmp_path / "imgs" / "img0.jpg") and happy.video == happy.path
    assert {r.source for r in records} == {f"{tmp_path.name}/labels.csv"}
    assert by_name["abs.jpg"].path == str(outside)
    assert by_name["abs.jpg"].expr == 1 and by_name["abs.jpg"].va is None


def test_csv_absolute_path_split_column_and_au_only(tmp_path):
    image = touch(tmp_path / "faces", 2)
    csv_path = write_csv(
        tmp_path / "meta" / "m.csv",
        f"image,AU1,AU2,AU4,split\n{image[0]},1,1,0,train\n{image[1]},0,0,0,val\n",
    )
    records = folders.read_csv_manifest(str(csv_path))
    assert [(r.split, r.au[:3], r.expr) for r in records] == [
        ("train", (1, 1, 0), -1),
        ("validation", (0, 0, 0), -1),
    ]
    assert [r.path for r in folders.read_csv_manifest(str(csv_path), "validation")] == [
        str(image[1])
    ]


@pytest.mark.parametrize(
    "row, message",
    [
        ("a.jpg,happy,2,0", r"valence/arousal \(2.0, 0.0\) outside"),
        ("a.jpg,happy,x,0", "valence 'x' is not a number"),
        (",happy,0,0", "empty path"),
        ("a.jpg,happy", "2 fields, but the header has 4"),
        ("a.jpg,-5,0,0", r"expression '-5' must be a class index 0-7 or -1 \(no label\)"),
        ("a.jpg,9,0,0", "expression '9' must be a class index 0-7"),
        ("a.jpg,2.5,0,0", "expression '2.5' must be a class index"),
        ("a.jpg,happy,0,0,fine, really", "6 fields, but the header has 4"),
    ],
)
def test_csv_malformed_cell_names_file_and_line(tmp_path, row, message):
    touch(tmp_path, 1)
    csv_path = write_csv(tmp_path / "labels.csv", f"path,expression,valence,arousal\n{row}\n")
    with pytest.raises(DatasetError, match=rf"labels\.csv:2: {message}"):
        folders.read_csv_manifest(str(csv_path))


def test_csv_without_path_column_or_split(tmp_path):
    csv_path = write_csv(tmp_path / "x.csv", "file_name,expression\na.jpg,happy\n")
    with pytest.raises(DatasetError, match="no path column"):
        folders.read_csv_manifest(str(csv_path))
    csv_path = write_csv(tmp_path / "y.csv", "path,expression\na.jpg,happy\n")
    with pytest.raises(DatasetError, match="no split column"):
        folders.read_csv_manifest(str(csv_path), split="train")


def test_sources_detection_errors_and_load_many(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        loaders.load_records(str(tmp_path / "missing"))
    (tmp_path / "empty" / "misc").mkdir(parents=True)
    with pytest.raises(DatasetError, match="cannot tell what dataset"):
        loaders.load_records(str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="no dataset"):
        loaders.load_many([])
    touch(tmp_path / "fer" / "happy", 2)
    touch(tmp_path / "vaset" / "images", 1)
    write_csv(tmp_path / "vaset" / "labels.csv", "path,valence,arousal\nimages/img0.jpg,0.2,0.3\n")
    assert loaders.detect_kind(str(tmp_path / "vaset")) == "csv"
    assert loaders.detect_kind(str(tmp_path / "vaset" / "labels.csv")) == "csv"
    records = loaders.load_many([str(tmp_path / "fer"), f"csv:{tmp_path / 'vaset'}"])
    assert [(r.source, r.expr, r.va) for r in records] == [
        (f"{tmp_path.name}/fer", 4, None),
        (f"{tmp_path.name}/fer", 4, None),
        ("vaset/labels.csv", -1, (0.2, 0.3)),
    ]
    assert loaders.parse_spec("gs://bucket/x") == ("auto", "gs://bucket/x")
    assert loaders.parse_spec("folders:/data/x") == ("folders", "/data/x")


@pytest.mark.skipif(not DIFFUSIONFER.is_dir(), reason="../shared/data/diffusionfer is absent")
def test_real_diffusionfer_csv():
    records = loaders.load_records(str(DIFFUSIONFER))
    assert len(records) == 1285
    assert all(r.has_va and r.has_expr and r.au is None for r in records)
    assert class_counts(records)["Happiness"] == 339
    assert {r.source for r in records} == {"diffusionfer/labels.csv"}


@pytest.mark.skipif(not FER.is_dir(), reason="../shared/data/fer2013 is absent")
def test_real_fer2013_train_lists_fast():
    start = time.perf_counter()
    records = loaders.load_records(str(FER), split="train")
    elapsed = time.perf_counter() - start
    assert len(records) == 28709
    counts = class_counts(records)
    assert counts["Anger"] == 3995 and counts["Disgust"] == 436 and counts["Other"] == 0
    assert {r.split for r in records} == {"train"}
    assert elapsed < 5.0, f"listing FER2013 train took {elapsed:.1f} s"


def test_sources_are_named_by_their_last_two_path_parts(tmp_path):
    """A card names a source: ``train`` or ``labels.csv`` alone names no dataset."""
    touch(tmp_path / "fer" / "train" / "happy", 1)
    touch(tmp_path / "ck", 1)
    for name in ("a.csv", "b.csv"):
        write_csv(tmp_path / "ck" / name, "path,expression\nimg0.jpg,happy\n")
    records = folders.read_class_folders(str(tmp_path / "fer" / "train"))
    assert {r.source for r in records} == {"fer/train"}
    a = folders.read_csv_manifest(str(tmp_path / "ck" / "a.csv"))
    b = folders.read_csv_manifest(str(tmp_path / "ck" / "b.csv"))
    assert (a[0].source, b[0].source) == ("ck/a.csv", "ck/b.csv")
