"""Sinks (CSV, video) and the drawn boxes: columns, flushing, empty cells, clipping, close twice."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from liveaffect.bundle import ModelCard
from liveaffect.labels import AU_COLUMNS, EXPRESSIONS
from liveaffect.runtime.dashboard import RAW_VIEW, Dashboard, View
from liveaffect.runtime.sinks import CSV_COLUMNS, CsvSink, SinkError, VideoSink, face_rows
from liveaffect.runtime.style import id_color
from liveaffect.runtime.tags import clip_box
from liveaffect.types import AffectPrediction, Detection, FaceResult, FrameResult

EXPR = np.array([0.05, 0.05, 0.05, 0.05, 0.6, 0.1, 0.05, 0.05], np.float32)
AU = np.linspace(0.05, 0.95, 12).astype(np.float32)


def result(index=0, box=(10.0, 20.0, 110.0, 140.0), au=True, va=True):
    pred = AffectPrediction(
        expr_probs=EXPR,
        va=np.array([0.25, -0.5], np.float32) if va else None,
        au_probs=AU if au else None,
    )
    face = FaceResult(track_id=7, detection=Detection(xyxy=box, score=0.87), prediction=pred)
    return FrameResult(index=index, timestamp_ms=index * 40.0, faces=(face,))


def test_csv_columns_are_complete_and_named_from_labels():
    assert CSV_COLUMNS[:8] == (
        "frame",
        "timestamp_ms",
        "face_id",
        "x1",
        "y1",
        "x2",
        "y2",
        "det_score",
    )
    assert [f"p_{e}" for e in EXPRESSIONS] == list(CSV_COLUMNS[8:16])
    assert CSV_COLUMNS[16:19] == ("expression", "valence", "arousal")
    expected_aus = [
        "AU01",
        "AU02",
        "AU04",
        "AU06",
        "AU07",
        "AU10",
        "AU12",
        "AU15",
        "AU23",
        "AU24",
        "AU25",
        "AU26",
    ]
    assert list(CSV_COLUMNS[19:31]) == list(AU_COLUMNS) == expected_aus
    assert list(CSV_COLUMNS[31:]) == [f"{a}_active" for a in AU_COLUMNS]


def test_csv_rows_values_and_flush(tmp_path):
    path = tmp_path / "faces.csv"
    sink = CsvSink(path, ModelCard())
    frame = np.zeros((100, 100, 3), np.uint8)
    sink.write(frame, result(0, box=(-5.0, 20.0, 110.0, 90.0)))
    sink.write(frame, FrameResult(index=1, timestamp_ms=40.0))  # no face: no row
    sink.write(frame, result(2))
    rows = list(csv.DictReader(path.open()))  # readable before close: flushed per frame
    assert len(rows) == 2 and list(rows[0]) == list(CSV_COLUMNS)
    row = rows[0]
    assert (row["frame"], row["face_id"], row["det_score"]) == ("0", "7", "0.8700")
    assert (row["x1"], row["x2"]) == ("0.0", "100.0")  # clipped to the frame
    assert row["expression"] == "Happiness" and float(row["p_Happiness"]) == pytest.approx(0.6)
    assert (float(row["valence"]), float(row["arousal"])) == (0.25, -0.5)
    active = [row[f"{a}_active"] for a in AU_COLUMNS]
    assert active == ["0"] * 6 + ["1"] * 6
    assert rows[1]["frame"] == "2"
    sink.close()
    sink.close()
    sink.write(frame, result(3))  # after close: ignored, no crash
    assert len(list(csv.DictReader(path.open()))) == 2


def test_csv_untrained_heads_leave_cells_empty():
    (row,) = face_rows(result(au=False, va=False), ModelCard())
    cells = dict(zip(CSV_COLUMNS, row, strict=True))
    assert cells["expression"] == "Happiness"
    empty = ["valence", "arousal", *AU_COLUMNS, *(f"{a}_active" for a in AU_COLUMNS)]
    assert all(cells[c] == "" for c in empty)


def test_csv_unwritable_path(tmp_path):
    with pytest.raises(SinkError, match="cannot write CSV"):
        CsvSink(tmp_path / "missing" / "x.csv", ModelCard())


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_video_sink_writes_every_frame(tmp_path, suffix):
    path = tmp_path / f"annotated{suffix}"
    with VideoSink(path, fps=10) as sink:
        for i in range(5):
            sink.write(np.full((64, 96, 3), 40 * i, np.uint8), result(i))
        sink.write(np.zeros((32, 32, 3), np.uint8), result(5))  # other size: resized
    sink.close()
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 6 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 96
    cap.release()


def box_pixels(image, track_id=7):
    return np.all(image == np.array(id_color(track_id), np.uint8), axis=-1)


def test_dashboard_draws_box_in_the_face_colour_tag_and_fps():
    card = ModelCard()
    frame = np.full((240, 320, 3), 100, np.uint8)
    dash = Dashboard(card, min_height=1)
    drawn = dash.draw(frame, result(box=(60.0, 80.0, 160.0, 200.0)), RAW_VIEW)
    assert drawn is not frame and np.all(frame == 100)  # input untouched
    assert drawn.shape == frame.shape  # no panel: the frame's own size
    mask = box_pixels(drawn)
    assert mask[80:201, 60].all() and mask[200, 60:161].all()  # left and bottom edges
    assert not np.array_equal(drawn[40:78, 60:200], frame[40:78, 60:200])  # the tag above
    with_fps = dash.draw(frame, result(box=(60.0, 80.0, 160.0, 200.0)), View(panel=False), 12.3)
    assert not np.array_equal(with_fps[:20, :60], frame[:20, :60])  # FPS corner


def test_dashboard_clips_boxes_and_handles_odd_frames():
    dash = Dashboard(ModelCard(), min_height=1)
    drawn = dash.draw(np.zeros((50, 60), np.uint8), result(box=(-20.0, -10.0, 30.0, 200.0)))
    assert drawn.shape[0] == 50 and box_pixels(drawn)[:, 30].any()
    assert clip_box((-20, -10, 30, 200), 60, 50) == (0, 0, 30, 49)
    assert clip_box((100, 100, 200, 200), 60, 50) is None
    dash.draw(np.zeros((50, 60, 4), np.uint8), result(box=(500.0, 500.0, 600.0, 600.0)))
    assert dash.draw(np.zeros((0, 0, 3), np.uint8), result()).size == 0


def test_au_labels_name_every_au():
    from liveaffect.labels import AUS, au_label

    assert au_label("AU6") == au_label("au_06") == "AU06 cheek raiser"
    assert au_label("AU99") == "AU99"
    assert len({au_label(a) for a in AUS}) == len(AUS)


def test_csv_header_and_rows_take_names_from_the_card(tmp_path):
    names = ["calm", "cross", "yuck", "scared", "glad", "sad", "wow", "other"]
    card = ModelCard(expressions=names, aus=["AU1", *(f"AU{k}" for k in range(2, 13))])
    path = tmp_path / "faces.csv"
    with CsvSink(path, card) as sink:
        sink.write(np.zeros((48, 64, 3), np.uint8), result())
    with open(path, newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header[8:16] == [f"p_{n}" for n in names] and "AU01" in header and "AU12" in header
    assert rows[0][16] in names


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_an_odd_sized_video_is_padded_not_cropped(tmp_path, suffix):
    path = tmp_path / f"odd{suffix}"
    frame = np.zeros((479, 641, 3), np.uint8)
    frame[-8:, :] = 255  # a white band along the bottom rows and the last columns
    frame[:, -8:] = 255
    with VideoSink(path, fps=10) as sink:
        for i in range(3):
            sink.write(frame, FrameResult(i, 0.0))
    capture = cv2.VideoCapture(str(path))
    ok, back = capture.read()
    capture.release()
    assert ok and back.shape == (480, 642, 3)
    assert back[471:478, 100].mean() > 200 and back[100, 634:640].mean() > 200  # kept
