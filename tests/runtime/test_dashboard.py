"""The live view without a display: tag placement, card order, the panel's layout, scaling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from liveaffect.bundle import HeadInfo, ModelCard
from liveaffect.runtime.dashboard import Dashboard, StageMeans, View
from liveaffect.runtime.hud import KEYS, fps_label, timing_lines
from liveaffect.runtime.panel import Panel, VaTrails
from liveaffect.runtime.panel_layout import (
    au_label,
    au_text,
    order_faces,
    panel_layout,
    panel_note,
    split_cards,
)
from liveaffect.runtime.style import BACKGROUND, CARD_COLOR, Style, id_color
from liveaffect.runtime.tags import TagRequest, draw_faces, place_tags, tag_text
from liveaffect.types import AffectPrediction, Detection, FaceResult, FrameResult


def card_with(au: bool = True, va: bool = True, expr: bool = True) -> ModelCard:
    return ModelCard(heads={"expr": HeadInfo(expr), "va": HeadInfo(va), "au": HeadInfo(au)})


def face(track_id: int, box, expr_k: int = 4, va=(0.5, 0.4), au=None) -> FaceResult:
    probs = np.full(8, 0.02, np.float32)
    probs[expr_k] = 0.86
    au_probs = np.linspace(0.05, 0.95, 12).astype(np.float32) if au is None else au
    pred = AffectPrediction(probs, np.asarray(va, np.float32), au_probs)
    return FaceResult(track_id, Detection(tuple(float(v) for v in box), 0.9), pred)


def overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# -- tags ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_tags_never_overlap_each_other_or_faces(seed):
    rng = np.random.default_rng(seed)
    size = (640, 360)
    requests = []
    for _ in range(rng.integers(1, 14)):
        s = int(rng.integers(20, 120))
        x, y = int(rng.integers(0, size[0] - s)), int(rng.integers(0, size[1] - s))
        requests.append(TagRequest((x, y, x + s, y + s), (130, 18), (30, 18), s < 40))
    fps_box = (0, 0, 90, 30)  # e.g. the FPS in the corner
    placed = place_tags(requests, size, reserved=[fps_box])
    rects = [p.rect for p in placed if p is not None]
    assert not any(overlaps(rect, fps_box) for rect in rects)
    for a, b in itertools.combinations(rects, 2):
        assert not overlaps(a, b)
    for rect in rects:
        assert min(rect[:2]) >= 0 and rect[2] <= size[0] and rect[3] <= size[1]
        assert not any(overlaps(rect, r.face_box) for r in requests)
    for req, spot in zip(requests, placed, strict=True):
        if spot is not None and req.small_face:
            assert spot.compact  # faces under ~40 px get the id only


def test_tags_go_above_the_face_when_free_and_largest_face_chooses_first():
    alone = place_tags([TagRequest((100, 100, 300, 300), (120, 20), (30, 20))], (640, 480))[0]
    assert alone.rect == (100, 77, 220, 97) and not alone.compact  # above, left-aligned
    # two full-height faces with one gap between them: both want its top spot
    big = TagRequest((0, 0, 140, 100), (100, 20), (30, 20))
    small = TagRequest((260, 0, 300, 100), (100, 20), (30, 20))
    for requests in ([big, small], [small, big]):
        placed = dict(zip(("a", "b"), place_tags(requests, (300, 100)), strict=True))
        big_spot, small_spot = (placed["a"], placed["b"]) if requests[0] is big else (
            placed["b"], placed["a"])  # fmt: skip
        assert big_spot.rect[1] == 0 and small_spot.rect[1] > 0
        assert not overlaps(big_spot.rect, small_spot.rect)


def test_tag_collapses_to_id_when_only_a_small_spot_is_free():
    # the face fills the frame but for a 40 px strip on the right: the full tag cannot fit
    placed = place_tags([TagRequest((0, 0, 600, 360), (200, 20), (30, 20))], (640, 360))[0]
    assert placed is not None and placed.compact and placed.rect[0] >= 600
    assert place_tags([TagRequest((0, 0, 640, 360), (200, 20), (30, 20))], (640, 360)) == [None]


def test_tag_text_and_small_faces_get_only_the_id():
    f = face(7, (10, 10, 200, 200))
    assert tag_text(f, card_with().expressions) == "#7 Happiness 0.86"
    no_expr = FaceResult(7, f.detection, AffectPrediction(None, f.prediction.va, None))
    assert tag_text(no_expr, card_with().expressions) == "#7"
    image = np.zeros((360, 640, 3), np.uint8)
    style = Style.for_height(360)
    placed = draw_faces(image, [face(1, (100, 100, 130, 130))], style, card_with().expressions)
    assert placed[0].compact
    assert np.all(image[100, 110] == id_color(1))  # the box, in the face's colour


def test_id_colours_are_stable_and_distinct():
    colors = [id_color(i) for i in range(1, 13)]
    assert id_color(3) == colors[2]
    for a, b in itertools.combinations(colors, 2):
        assert np.abs(np.subtract(a, b)).sum() > 40


# -- cards ---------------------------------------------------------------------------------


def test_cards_go_largest_face_first_and_keep_their_place_over_small_changes():
    faces = [face(1, (0, 0, 50, 50)), face(2, (0, 0, 200, 200)), face(3, (0, 0, 100, 100))]
    assert [f.track_id for f in order_faces(faces)] == [2, 3, 1]
    # face 1 grew a little past face 3: no swap; far past it: swap
    grown = [face(1, (0, 0, 105, 105)), faces[1], faces[2]]
    assert [f.track_id for f in order_faces(grown, previous=[2, 3, 1])] == [2, 3, 1]
    grown = [face(1, (0, 0, 300, 300)), faces[1], faces[2]]
    assert [f.track_id for f in order_faces(grown, previous=[2, 3, 1])] == [1, 2, 3]
    new = [*faces, face(9, (0, 0, 150, 150))]
    assert [f.track_id for f in order_faces(new, previous=[2, 3, 1])] == [2, 9, 3, 1]


def test_four_cards_then_plus_n_more():
    faces = [face(i, (0, 0, 10 * i, 10 * i)) for i in range(1, 8)]
    shown, more = split_cards(order_faces(faces), 4)
    assert [f.track_id for f in shown] == [7, 6, 5, 4] and more == 3
    assert split_cards(faces[:2], 4)[1] == 0


def test_untrained_heads_get_no_space_and_one_note():
    style = Style.for_height(720)
    card = card_with(au=False)
    layout = panel_layout(style, ("expr", "va"), card.expressions, card.aus)
    assert layout.max_cards == 4
    assert all(c.au is None and c.expr is not None and c.va is not None for c in layout.cards)
    full = panel_layout(style, ("expr", "va", "au"), card.expressions, card.aus)
    assert full.width > layout.width
    assert panel_note(["au"]) == "AU head not trained: hidden"
    assert panel_note([]) is None
    assert Panel(card).note == "AU head not trained: hidden" and Panel(card_with()).note is None
    assert au_label("AU12") == "AU12 lip corner puller"


def test_aus_the_card_finds_poorly_are_marked_and_the_header_says_why():
    """AUs whose held-out F1 in the card is under 0.5 get a '?' after their name (their
    column made wide enough for it); a card without per-AU F1 marks nothing."""
    f1 = dict.fromkeys(ModelCard().aus, 0.8) | {"AU10": 0.0, "AU15": 0.27, "AU6": 0.5}
    card = card_with()
    card.au_f1 = f1
    panel = Panel(card)
    assert panel.weak_aus == ("AU10", "AU15")  # 0.5 itself is not under 0.5
    assert panel.note == "AU?: F1 < 0.5 on new faces"
    assert panel._au_labels[5] == "AU10 upper lip raiser?" == au_text("AU10", ("AU10",))
    assert panel._au_labels[6] == "AU12 lip corner puller"
    plain = Panel(card_with())
    assert plain.weak_aus == () and plain.note is None
    style = Style.for_height(720)
    marked = panel_layout(style, ("expr", "va", "au"), card.expressions, card.aus,
                          panel.note, ("AU15",))  # fmt: skip
    unmarked = panel_layout(style, ("expr", "va", "au"), card.expressions, card.aus)
    au_w = [lay.cards[0].au[2] - lay.cards[0].au[0] for lay in (marked, unmarked)]
    assert au_w[0] > au_w[1]  # "AU15 lip corner depressor?" is the widest label
    hidden = card_with(au=False)
    hidden.au_f1 = f1
    assert Panel(hidden).note == "AU head not trained: hidden"  # no AU bars, nothing to mark
    assert panel_note(["va"], ("AU10",)) == (
        "valence/arousal head not trained: hidden | AU?: F1 < 0.5 on new faces"
    )
    with pytest.raises(ValueError, match="AUs the model does not have: AU99"):
        ModelCard(au_f1={"AU99": 0.5})
    with pytest.raises(ValueError, match=r"au_f1 values must lie in \[0, 1\]"):
        ModelCard(au_f1={"AU1": 1.5})


@pytest.mark.parametrize("height", [360, 540, 720, 1080])
def test_layout_fits_the_canvas_and_scales_with_it(height):
    card = card_with()
    layout = Panel(card).layout(height)
    assert layout.height == height and 1 <= layout.max_cards <= 4
    for slot in layout.cards:
        assert 0 <= slot.rect[1] < slot.rect[3] <= layout.footer[1]
        for area in (slot.expr, slot.va, slot.au):
            assert slot.rect[0] <= area[0] < area[2] <= slot.rect[2]
            assert slot.rect[1] <= area[1] < area[3] <= slot.rect[3]
    assert (
        Style.for_height(1080).font > Style.for_height(720).font > Style.for_height(360).font - 1e-9
    )
    if height >= 540:
        assert layout.max_cards == 4


def test_va_trail_keeps_two_seconds_and_adds_a_frame_once():
    trails = VaTrails(window_ms=2000)
    for t in range(0, 3001, 100):
        trails.update(float(t), [face(1, (0, 0, 50, 50), va=(t / 3000, 0.0))])
        trails.update(float(t), [face(1, (0, 0, 50, 50), va=(t / 3000, 0.0))])  # drawn twice
    points = trails.trail(1)
    assert points[0][0] == 1000.0 and points[-1][0] == 3000.0 and len(points) == 21
    trails.update(6000.0, [])
    assert trails.trail(1) == []


# -- the whole canvas ----------------------------------------------------------------------


def frame_result(n: int, index: int = 0) -> FrameResult:
    faces = [face(i, (40 + 150 * i, 100, 40 + 150 * i + 120, 240), expr_k=i % 8) for i in range(n)]
    return FrameResult(index=index, timestamp_ms=40.0 * index, faces=tuple(faces))


@pytest.mark.parametrize(("size", "canvas_h"), [((640, 360), 540), ((1280, 720), 720)])
def test_canvas_grows_right_and_bars_are_drawn_in_every_card(size, canvas_h):
    dash = Dashboard(card_with())
    frame = np.full((size[1], size[0], 3), 90, np.uint8)
    canvas = dash.draw(frame, frame_result(6), View(), fps=30.0)
    video_w = round(size[0] * canvas_h / size[1])
    assert canvas.shape[:2] == (canvas_h, video_w + dash.panel.width_for(canvas_h))
    assert canvas.shape[1::-1] == dash.canvas_size(size)
    # the video is not covered: far from the faces and the HUD it is the frame itself
    assert np.all(canvas[canvas_h // 2 :, video_w - 40 : video_w - 1] == 90)
    panel = canvas[:, video_w:]
    layout = dash.panel.layout(canvas_h)
    for slot in layout.cards:
        for area in (slot.expr, slot.au):
            x1, y1, x2, y2 = area
            bars = panel[y1:y2, x1:x2]
            card_bg = np.all(bars == CARD_COLOR, axis=-1)
            assert (~card_bg).mean() > 0.05  # labels and bars drawn
            colored = np.abs(bars.astype(int) - bars.mean(axis=-1, keepdims=True)).max(-1) > 40
            assert colored.sum() > 20  # the winner's / active AUs' bars in the face's colour
    # the same canvas reused gives the same picture
    again = dash.draw(frame, frame_result(6), View(), fps=30.0, out=canvas.copy())
    assert np.array_equal(again, canvas)


@pytest.mark.parametrize(
    ("fit", "panel"),
    [((1161, 450), True), ((870, 337), True), ((2000, 1400), True), ((870, 337), False)],
)
def test_canvas_fitted_to_a_window_is_the_tallest_that_fits(fit, panel):
    """A window's canvas is drawn to its size (text for the pixels on screen): the tallest
    canvas whose width and height fit, never below MIN_FIT_HEIGHT."""
    from liveaffect.runtime.dashboard import MIN_FIT_HEIGHT

    dash = Dashboard(card_with())
    view = View(panel=panel, fit=fit)
    w, h = dash.canvas_size((1920, 1080), view)
    assert h <= max(fit[1], MIN_FIT_HEIGHT)
    if h > MIN_FIT_HEIGHT:
        assert w <= fit[0]
    one_more = round(1920 * (h + 1) / 1080) + (dash.panel.width_for(h + 1) if panel else 0)
    assert one_more > fit[0] or h == fit[1]  # one pixel taller would not fit
    frame = np.full((1080, 1920, 3), 90, np.uint8)
    result = frame_result(2)
    canvas = dash.draw(frame, result, view)
    assert canvas.shape[1::-1] == (w, h)
    # the boxes are scaled with the video: face 0's box (40, 100)-(160, 240) in frame pixels
    scale = h / 1080
    x1, y1 = round(40 * scale), round(100 * scale)
    edge = canvas[y1 - 1 : y1 + 2, x1 + 2 : round(160 * scale) - 2].reshape(-1, 3)
    assert (np.abs(edge.astype(int) - id_color(0)).sum(-1) <= 30).any()


@pytest.mark.parametrize("weak", [False, True])
def test_fewer_taller_cards_do_not_widen_the_panel_so_small_windows_get_the_tallest_fit(weak):
    """Under 540 px the panel holds fewer cards; their circumplex stays as large as with four,
    so a shorter canvas is never wider (it was: one card at 240 px made the panel 566 px wide
    against 470 px for two at 261, and the fit search then drew a 950x300 window's canvas at
    240 px, 993 px wide and shrunk, where one 270 px tall fits)."""
    from liveaffect.runtime.dashboard import MIN_FIT_HEIGHT

    card = card_with()
    if weak:  # the default model's marks widen the AU columns and the header
        card.au_f1 = dict.fromkeys(card.aus, 0.8) | {"AU10": 0.0, "AU15": 0.27, "AU26": 0.0}
    dash = Dashboard(card)
    widths = {h: dash.panel.width_for(h) for h in range(MIN_FIT_HEIGHT, 560)}
    for h in range(MIN_FIT_HEIGHT + 1, 560):
        assert widths[h] >= widths[h - 1] - 3, (h, widths[h - 1], widths[h])  # pad rounding
    layout = dash.panel.layout(MIN_FIT_HEIGHT)
    assert layout.max_cards == 1
    va, expr = layout.cards[0].va, layout.cards[0].expr
    assert va[2] - va[0] == va[3] - va[1] < expr[3] - expr[1]  # square, in a taller card
    assert expr[1] <= va[1] and va[3] <= expr[3]

    def width(h: int) -> int:
        return round(1920 * h / 1080) + widths[h]

    for fit_w in range(880, 1100, 10):
        view = View(fit=(fit_w, 420))
        w, h = dash.canvas_size((1920, 1080), view)
        fitting = [k for k in range(MIN_FIT_HEIGHT, 421) if width(k) <= fit_w]
        if fitting:
            assert w <= fit_w and h >= max(fitting) - 3, (fit_w, h, max(fitting))
        else:
            assert h == MIN_FIT_HEIGHT


def test_panel_shows_only_the_faces_present_and_hides_untrained_heads():
    dash = Dashboard(card_with(au=False))
    frame = np.zeros((720, 1280, 3), np.uint8)
    canvas = dash.draw(frame, frame_result(1), View())
    panel = canvas[:, 1280:]
    layout = dash.panel.layout(720)
    assert layout.cards[0].au is None
    x1, y1, x2, y2 = layout.cards[1].rect  # no second face: an empty slot
    assert np.all(panel[y1:y2, x1:x2] == BACKGROUND)
    no_panel = dash.draw(frame, frame_result(1), View(panel=False))
    assert no_panel.shape == (720, 1280, 3)


def test_odd_frames_and_hud_text():
    dash = Dashboard(card_with())
    assert dash.draw(np.zeros((0, 0, 3), np.uint8), frame_result(0)).size == 0
    grey = dash.draw(
        np.zeros((720, 1280), np.uint8), frame_result(2), View(help=True, timings=True)
    )
    assert grey.shape[0] == 720
    lines = timing_lines({"infer": 7.1, "read": 0.05, "draw": 1.2})
    assert lines == [("read", "0.05 ms"), ("infer", "7.10 ms"), ("draw", "1.20 ms")]
    assert {k for k, _ in KEYS} >= {"q / Esc", "space", "s", "p", "t", "h / ?"}
    means = StageMeans(window=2)
    for ms in (1.0, 2.0, 4.0):
        means.add({"draw": ms})
    assert means.means() == {"draw": 3.0}
    assert View().toggled("panel").panel is False


# -- keys ----------------------------------------------------------------------------------


def test_keys_toggle_the_view_pause_quit_and_save_snapshots(tmp_path, capsys):
    from liveaffect.runtime.controls import Controls

    now = [100.0]
    controls = Controls(tmp_path / "shots", help_line_s=5.0, clock=lambda: now[0])
    view = controls.view
    assert controls.notes()["help_line"] and view.panel and not view.timings and not view.help
    for key, field in ((ord("p"), "panel"), (ord("t"), "timings"), (ord("h"), "help")):
        before = getattr(controls.view, field)
        controls.handle_key(key)
        assert getattr(controls.view, field) is not before
    controls.handle_key(ord("?"))
    assert controls.view.help is False  # h then ? : back off
    controls.handle_key(ord(" "))
    assert controls.paused and controls.notes()["paused"]
    controls.handle_key(ord(" "))
    assert not controls.paused
    controls.handle_key(-1)
    image = np.full((20, 30, 3), 7, np.uint8)
    controls.handle_key(ord("s"), image)
    (shot,) = controls.snapshots
    assert shot.parent == tmp_path / "shots" and shot.suffix == ".png"
    assert np.array_equal(cv2_read(shot), image)
    assert str(shot.resolve()) in capsys.readouterr().out
    assert controls.notes()["message"].startswith("saved ")
    controls.handle_key(ord("s"), image)
    assert len(set(controls.snapshots)) == 2
    now[0] += 6.0
    assert controls.notes() == {"help_line": False, "paused": False, "message": None}
    assert not controls.quit
    controls.handle_key(27)
    assert controls.quit


def test_arrow_and_function_keys_are_not_read_as_letters(tmp_path):
    from liveaffect.runtime.controls import Controls

    controls = Controls(tmp_path)
    image = np.zeros((8, 8, 3), np.uint8)
    # cv2.waitKeyEx under X11 (GTK, Qt): Left, Up, Right, Down, Home, F1; whose low bytes
    # are 'Q' (quit), 'R', 'S' (snapshot), 'T', 'P', 0xBE
    for key in (0xFF51, 0xFF52, 0xFF53, 0xFF54, 0xFF50, 0xFFBE, 0x4FF53):  # last: Ctrl+Right
        controls.handle_key(key, image)
    assert not controls.quit and controls.snapshots == [] and controls.view == Controls().view
    controls.handle_key(0x100071)  # 'q' with Num Lock on (GTK's modifier flag above 16 bits)
    assert controls.quit


def test_a_snapshot_path_goes_where_the_status_lines_go(tmp_path, capsys):
    import sys

    from liveaffect.runtime.controls import Controls

    controls = Controls(tmp_path, out=sys.stderr)  # --stream jsonl:- owns standard output
    controls.handle_key(ord("s"), np.zeros((8, 8, 3), np.uint8))
    (shot,) = controls.snapshots
    captured = capsys.readouterr()
    assert captured.out == "" and str(shot.resolve()) in captured.err


def cv2_read(path):
    import cv2

    return cv2.imread(str(path))


def test_notes_stack_at_the_bottom_left():
    from liveaffect.runtime.hud import draw_notes

    image = np.zeros((360, 640, 3), np.uint8)
    style = Style.for_height(360)
    draw_notes(image, style)
    assert not image.any()  # nothing to say: nothing drawn
    draw_notes(image, style, help_line=True, paused=True, message="saved x.png")
    rows = np.flatnonzero(image.any(axis=(1, 2)))
    assert rows.min() > 360 - 3 * (style.line_h + style.pad) - style.pad - 2
    assert image[:, :60].any()  # at the left edge


def test_the_fps_label_waits_for_a_rate():
    """A still image's recording (one frame, no rate yet) showed "FPS 0.0"."""
    assert fps_label(0.0) == "FPS --"
    assert fps_label(24.25) == "FPS 24.2"
