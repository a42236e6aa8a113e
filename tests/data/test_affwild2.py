"""Aff-Wild2 readers on synthetic folders written in the official layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from liveaffect.data import affwild2, io, loaders
from liveaffect.data.affwild2 import read_affwild2_with_stats, read_mtl_with_stats
from liveaffect.data.io import DatasetError

EXPR_HEADER = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"
VA_HEADER = "valence,arousal"
AU_HEADER = "AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26"
MTL_HEADER = "image,valence,arousal,expression,aus"
AU_A = "1,0,0,1,0,0,1,0,0,0,1,0"
AU_NONE = ",".join(["-1"] * 12)


def images(root: Path, video: str, frames, folder: str = "cropped_aligned") -> None:
    d = root / folder / video
    d.mkdir(parents=True, exist_ok=True)
    for f in frames:
        (d / f"{f:05d}.jpg").write_bytes(b"\xff\xd8 not a real jpeg")


def labels(path: Path, header: str, rows, newline: str = "\n", trailing: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((newline.join([header, *rows]) + trailing).encode())
    return path


def task_file(ann: Path, task: str, split: str, video: str, rows, **kw) -> Path:
    header = {"EXPR": EXPR_HEADER, "VA": VA_HEADER, "AU": AU_HEADER}[task.split("_")[0]]
    return labels(ann / task / split / f"{video}.txt", header, rows, **kw)


def standard(
    root: Path,
    ann_name: str = "8th_ABAW_Annotations",
    expr_folder: str = "EXPR_Recognition_Challenge",
) -> Path:
    """One video 'v1' with 5 labelled frames, frame 5 has no image."""
    ann = root / ann_name
    images(root, "v1", [1, 2, 3, 4])
    task_file(ann, expr_folder, "Train_Set", "v1", ["0", "4", "-1", "7", "3"])
    task_file(
        ann,
        "VA_Estimation_Challenge",
        "Train_Set",
        "v1",
        ["0.5,-0.25", "-5,-5", "-5,-5", "1,-1", "0.1,0.1"],
    )
    task_file(
        ann, "AU_Detection_Challenge", "Train_Set", "v1", [AU_A, AU_A, AU_NONE, AU_NONE, AU_A]
    )
    return ann


@pytest.mark.parametrize(
    "ann_name, expr_folder",
    [
        ("Third ABAW Annotations", "EXPR_Classification_Challenge"),
        ("6th_ABAW_Annotations", "EXPR_Recognition_Challenge"),
        ("8th_ABAW_Annotations", "EXPR_Recognition_Challenge"),
        ("8th ABAW Annotations", "EXPR_Classification_Challenge"),
        ("annotations/6th ABAW Annotations", "EXPR_Recognition_Challenge"),  # two levels down
    ],
)
def test_every_annotation_root_and_task_folder_spelling(tmp_path, ann_name, expr_folder):
    standard(tmp_path, ann_name, expr_folder)
    records, stats = read_affwild2_with_stats(str(tmp_path))
    assert [r.frame for r in records] == [1, 2, 4]
    assert [r.expr for r in records] == [0, 4, 7]
    assert stats.labels == {"EXPR": 3, "VA": 2, "AU": 2}


def test_join_across_tasks_masks_and_missing_images(tmp_path):
    standard(tmp_path)
    records, stats = read_affwild2_with_stats(str(tmp_path))
    by_frame = {r.frame: r for r in records}
    assert set(by_frame) == {1, 2, 4}  # frame 3 is -1 / -5 / all -1: no label, no record
    one, two, four = (by_frame[i] for i in (1, 2, 4))
    assert (
        one.expr == 0
        and one.va == (0.5, -0.25)
        and one.au == tuple(int(x) for x in AU_A.split(","))
    )
    assert one.complete
    assert two.expr == 4 and two.va is None and two.has_au  # EXPR and AU but no VA
    assert not two.complete
    assert four.expr == 7 and four.va == (1.0, -1.0) and four.au is None
    assert one.path == str(tmp_path / "cropped_aligned" / "v1" / "00001.jpg")
    assert {r.split for r in records} == {"train"} and {r.source for r in records} == {"affwild2"}
    # frame 5 is labelled in all three tasks but has no image: counted once per task, skipped
    assert stats.missing_images == 3
    assert stats.lines == 15 and stats.files == 3
    assert stats.unlabelled == 1 + 2 + 2


def test_unlabelled_frame_without_any_label_gives_no_record(tmp_path):
    ann = tmp_path / "6th_ABAW_Annotations"
    images(tmp_path, "v", [1, 2])
    task_file(ann, "EXPR_Recognition_Challenge", "Train_Set", "v", ["-1", "2"])
    records = affwild2.read_affwild2(str(tmp_path))
    assert [(r.frame, r.expr) for r in records] == [(2, 2)]


def test_left_right_videos_share_the_recording_but_keep_their_folders(tmp_path):
    ann = tmp_path / "6th_ABAW_Annotations"
    for side in ("left", "right"):
        images(tmp_path, f"130-25-1280x720_{side}", [1])
        task_file(ann, "EXPR_Recognition_Challenge", "Train_Set", f"130-25-1280x720_{side}", ["1"])
    records = affwild2.read_affwild2(str(tmp_path))
    assert [r.video for r in records] == ["130-25-1280x720"] * 2
    assert sorted(Path(r.path).parent.name for r in records) == [
        "130-25-1280x720_left",
        "130-25-1280x720_right",
    ]


def test_a_video_without_an_image_folder_is_named(tmp_path, caplog):
    """A labelled video whose folder is in no image folder (cropped_aligned_new_50_vids not
    unpacked, say) is named in the read's summary, not only counted with the frames that
    have no face."""
    ann = tmp_path / "6th_ABAW_Annotations"
    images(tmp_path, "here", [1, 2])
    images(tmp_path, "partly", [1])
    for video in ("here", "partly", "gone_left", "gone_right"):
        task_file(ann, "EXPR_Recognition_Challenge", "Train_Set", video, ["1", "2"])
    task_file(ann, "EXPR_Recognition_Challenge", "Train_Set", "unlabelled", ["-1"])
    with caplog.at_level("WARNING", logger="liveaffect.data.affwild2"):
        records, stats = read_affwild2_with_stats(str(tmp_path))
    assert len(records) == 3 and stats.missing_images == 5
    assert stats.videos_without_images == ["gone_left", "gone_right"]  # not "partly"
    assert stats.summary().endswith(
        "2 labelled video(s) have no image folder: gone_left, gone_right"
    )
    assert "gone_left, gone_right" in caplog.text


def test_image_folder_variants_and_fallback(tmp_path):
    ann = tmp_path / "8th_ABAW_Annotations"
    images(tmp_path, "a", [1])
    images(tmp_path, "b", [1], folder="cropped_aligned_new_50_vids")
    images(tmp_path, "c", [1], folder="cropped")
    images(tmp_path, "a", [1], folder="cropped")  # aligned wins over non-aligned
    for video in "abc":
        task_file(ann, "EXPR_Recognition_Challenge", "Train_Set", video, ["5"])
    paths = {r.video: Path(r.path) for r in affwild2.read_affwild2(str(tmp_path))}
    assert paths["a"].parts[-3] == "cropped_aligned"
    assert paths["b"].parts[-3] == "cropped_aligned_new_50_vids"
    assert paths["c"].parts[-3] == "cropped"


def test_split_selection_and_split_field(tmp_path):
    ann = tmp_path / "6th_ABAW_Annotations"
    images(tmp_path, "tr", [1, 2])
    images(tmp_path, "va", [1])
    task_file(ann, "EXPR_Recognition_Challenge", "Train_Set", "tr", ["1", "2"])
    task_file(ann, "EXPR_Recognition_Challenge", "Validation_Set", "va", ["3"])
    # a frame in one task's train set and another task's validation set: one record per split
    task_file(ann, "VA_Estimation_Challenge", "Validation_Set", "tr", ["0.1,0.2", "-5,-5"])
    both = affwild2.read_affwild2(str(tmp_path))
    assert sorted((r.split, r.video, r.frame) for r in both) == [
        ("train", "tr", 1),
        ("train", "tr", 2),
        ("validation", "tr", 1),
        ("validation", "va", 1),
    ]
    train = affwild2.read_affwild2(str(tmp_path), split="train")
    assert {r.split for r in train} == {"train"} and all(r.va is None for r in train)
    val = affwild2.read_affwild2(str(tmp_path), split="validation")
    assert sorted((r.video, r.expr, r.va) for r in val) == [("tr", -1, (0.1, 0.2)), ("va", 3, None)]
    with pytest.raises(DatasetError, match=r"splits .train. and .validation., not .valid."):
        affwild2.read_affwild2(str(tmp_path), split="valid")


def test_crlf_and_trailing_empty_lines(tmp_path):
    ann = tmp_path / "Third ABAW Annotations"
    images(tmp_path, "v", [1, 2])
    task_file(
        ann,
        "AU_Detection_Challenge",
        "Train_Set",
        "v",
        [AU_A, AU_A],
        newline="\r\n",
        trailing="\r\n\r\n",
    )
    task_file(ann, "VA_Estimation_Challenge", "Train_Set", "v", ["0.5,0.5", "0,0"], newline="\r\n")
    records = affwild2.read_affwild2(str(tmp_path))
    assert len(records) == 2 and all(r.has_au and r.has_va for r in records)


@pytest.mark.parametrize(
    "task, bad, message",
    [
        ("EXPR", "9", "outside"),
        ("EXPR", "x", "not a number"),
        ("EXPR", "1,2", "expected 1"),
        ("EXPR", "", "empty line"),
        ("VA", "0.5,2", "outside"),
        ("VA", "0.5", "expected 2"),
        ("AU", AU_A.replace("1", "2", 1), "0, 1 or -1"),
        ("AU", "1,0,0", "expected 12"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, task, bad, message):
    folder = {
        "EXPR": "EXPR_Recognition_Challenge",
        "VA": "VA_Estimation_Challenge",
        "AU": "AU_Detection_Challenge",
    }[task]
    good = {"EXPR": "1", "VA": "0,0", "AU": AU_A}[task]
    images(tmp_path, "v", [1, 2, 3])
    path = task_file(tmp_path / "6th_ABAW_Annotations", folder, "Train_Set", "v", [good, bad, good])
    with pytest.raises(DatasetError, match=rf"v\.txt:3: .*{message}") as info:
        affwild2.read_affwild2(str(tmp_path))
    assert str(info.value).startswith(f"{path}:3: ")


def test_missing_header_is_an_error(tmp_path):
    images(tmp_path, "v", [1])
    path = tmp_path / "6th_ABAW_Annotations/EXPR_Recognition_Challenge/Train_Set/v.txt"
    labels(path, "1", ["2"])
    with pytest.raises(DatasetError, match=r"v\.txt:1: the header line is missing"):
        affwild2.read_affwild2(str(tmp_path))


def test_root_problems_raise_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        affwild2.read_affwild2(str(tmp_path / "nowhere"))
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DatasetError, match="no Aff-Wild2 annotations"):
        affwild2.read_affwild2(str(tmp_path))
    task_file(
        tmp_path / "6th_ABAW_Annotations", "EXPR_Recognition_Challenge", "Train_Set", "v", ["1"]
    )
    with pytest.raises(DatasetError, match="no Aff-Wild2 image folder"):
        affwild2.read_affwild2(str(tmp_path))
    task_file(tmp_path / "8th_ABAW_Annotations", "AU_Detection_Challenge", "Train_Set", "v", [AU_A])
    with pytest.raises(DatasetError, match="several Aff-Wild2 annotation folders"):
        affwild2.read_affwild2(str(tmp_path))


def test_annotation_folder_itself_as_root_finds_images_next_to_it(tmp_path):
    ann = standard(tmp_path, "6th_ABAW_Annotations")
    assert len(affwild2.read_affwild2(str(ann))) == 3


def test_mtl_single_file_release(tmp_path):
    images(tmp_path, "v1", [1, 2, 3])
    images(tmp_path, "v2_left", [1])
    labels(
        tmp_path / "training_set_annotations.txt",
        MTL_HEADER,
        [
            f"v1/00001.jpg,0.5,-0.5,3,{AU_A}",
            f"v1/00002.jpg,-5,-5,6,{AU_NONE}",
            f"v1/00003.jpg,-5,-5,-1,{AU_NONE}",  # nothing labelled
            f"v1/00004.jpg,0.1,0.1,1,{AU_A}",  # no image
        ],
        newline="\r\n",
        trailing="\r\n\r\n",
    )
    labels(
        tmp_path / "validation_set_annotations.txt",
        MTL_HEADER,
        [f"v2_left/00001.jpg,-5,-5,-1,{AU_A}"],
    )
    records, stats = read_mtl_with_stats(str(tmp_path))
    assert [(r.split, r.video, r.frame) for r in records] == [
        ("train", "v1", 1),
        ("train", "v1", 2),
        ("validation", "v2", 1),
    ]
    first, second, third = records
    assert first.complete and first.va == (0.5, -0.5) and first.expr == 3
    assert second.expr == 6 and second.va is None and second.au is None
    assert third.expr == -1 and third.has_au and third.path.endswith("v2_left/00001.jpg")
    assert stats.missing_images == 1 and stats.lines == 5
    assert [r.frame for r in affwild2.read_mtl(str(tmp_path), split="validation")] == [1]
    assert loaders.detect_kind(str(tmp_path)) == "mtl"
    assert {r.source for r in loaders.load_records(str(tmp_path))} == {"affwild2-mtl"}


def test_mtl_malformed_line(tmp_path):
    images(tmp_path, "v1", [1])
    path = labels(
        tmp_path / "training_set_annotations.txt",
        MTL_HEADER,
        [f"v1/00001.jpg,0.5,-0.5,3,{AU_A}", "v1/00002.jpg,0.5,-0.5,3"],
    )
    with pytest.raises(DatasetError, match=r"training_set_annotations\.txt:3: expected 16"):
        affwild2.read_mtl(str(path))


@pytest.mark.parametrize(
    "first",
    [f"v1/00001.jpg,0.5,-0.5,3,{AU_A}", f"00001.png,0.5,-0.5,3,{AU_A}", "v1\\00001.jpg,0.5"],
)
def test_mtl_missing_header_is_an_error_not_a_lost_row(tmp_path, first):
    images(tmp_path, "v1", [1, 2])
    path = tmp_path / "training_set_annotations.txt"
    path.write_text(f"{first}\nv1/00002.jpg,0.1,0.1,1,{AU_A}\n")
    with pytest.raises(DatasetError, match=r"annotations\.txt:1: the header line is missing"):
        affwild2.read_mtl(str(path))
    path.write_text(f"0.5,-0.5,3,{AU_A}\n")  # no image column and no header: numbers
    with pytest.raises(DatasetError, match=r"annotations\.txt:1: the header line is missing"):
        affwild2.read_mtl(str(path))


def test_sources_detects_affwild2(tmp_path):
    standard(tmp_path)
    assert loaders.detect_kind(str(tmp_path)) == "affwild2"
    assert len(loaders.load_records(str(tmp_path), split="train")) == 3


def test_io_joins_urls_and_local_paths_never_import_tensorflow(tmp_path):
    assert io.is_url("gs://bucket/x") and not io.is_url(str(tmp_path))
    assert (
        io.join("gs://bucket/data/", "cropped_aligned", "v") == "gs://bucket/data/cropped_aligned/v"
    )
    assert io.basename("gs://bucket/data/") == "data"
    assert io.dirname("gs://bucket/data/x.csv") == "gs://bucket/data"
    standard(tmp_path)
    code = (
        "import sys; from liveaffect.data import loaders;"
        f"r = loaders.load_records({str(tmp_path)!r});"
        "assert len(r) == 3; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


class FakeGfile:
    """Stands in for tf.io.gfile: a bucket listing where folders end in '/'."""

    def __init__(self, tree: dict[str, list[str]]):
        self.tree = tree
        self.isdir_calls: list[str] = []

    def listdir(self, path):
        return self.tree[path]

    def isdir(self, path):
        self.isdir_calls.append(path)
        return path.rstrip("/") in self.tree

    def exists(self, path):
        return self.isdir(path)


def test_urls_go_through_gfile(monkeypatch):
    fake = FakeGfile(
        {
            "gs://b/data": ["cropped_aligned/", "x.txt", "img.jpg"],
            "gs://b/data/cropped_aligned": ["v1", "README", "a.jpg"],
            "gs://b/data/cropped_aligned/v1": [],
        }
    )
    monkeypatch.setattr(io, "_gfile", lambda: fake)
    assert io.scan("gs://b/data") == (["cropped_aligned"], ["img.jpg", "x.txt"])
    assert fake.isdir_calls == []  # folders marked with "/": one listing, no per-entry calls
    assert io.listdir("gs://b/data") == ["cropped_aligned", "img.jpg", "x.txt"]
    # a store that marks no folder: only entries that are not images or text are asked
    assert io.scan("gs://b/data/cropped_aligned") == (["v1"], ["README", "a.jpg"])
    assert sorted(fake.isdir_calls) == [
        "gs://b/data/cropped_aligned/README",
        "gs://b/data/cropped_aligned/v1",
    ]


@pytest.mark.slow
def test_reads_through_tensorflow_gfile_end_to_end():
    tf = pytest.importorskip("tensorflow")
    gfile, root = tf.io.gfile, "ram://liveaffect-test-affwild2"

    def write(path: str, data: bytes) -> None:
        gfile.makedirs(path.rsplit("/", 1)[0])
        with gfile.GFile(path, "wb") as f:
            f.write(data)

    write(
        f"{root}/8th_ABAW_Annotations/AU_Detection_Challenge/Validation_Set/v_right.txt",
        f"{AU_HEADER}\r\n{AU_A}\r\n{AU_A}\r\n".encode(),
    )
    write(f"{root}/cropped_aligned/v_right/00002.jpg", b"x")
    write(f"{root}/fer/test/happy/a.jpg", b"x")
    write(f"{root}/vaset/labels.csv", b"path,valence,arousal\nimages/a.jpg,0.5,0.5\n")
    write(f"{root}/vaset/images/a.jpg", b"x")
    records = loaders.load_many([root, f"{root}/fer", f"{root}/vaset"])
    assert [(r.path, r.video, r.split) for r in records] == [
        (f"{root}/cropped_aligned/v_right/00002.jpg", "v", "validation"),
        (f"{root}/fer/test/happy/a.jpg", f"{root}/fer/test/happy/a.jpg", "test"),
        (f"{root}/vaset/images/a.jpg", f"{root}/vaset/images/a.jpg", ""),
    ]
