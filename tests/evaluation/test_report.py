"""Report writer: JSON, Markdown tables, plots present only when their labels exist."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liveaffect.evaluation.report import markdown, write_json, write_report
from liveaffect.evaluation.result import evaluate_arrays

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _arrays(n: int = 80, seed: int = 0):
    rng = np.random.default_rng(seed)
    expr = rng.integers(0, 7, n)
    expr[:3] = -1
    va = rng.uniform(-1, 1, (n, 2))
    va[:5] = -5
    au = rng.integers(0, 2, (n, 12))
    return dict(
        expr_labels=expr,
        expr_probs=rng.random((n, 8)),
        va_labels=va,
        va_preds=rng.uniform(-1, 1, (n, 2)),
        au_labels=au,
        au_probs=rng.random((n, 12)),
    )


def test_full_report_with_plots(tmp_path):
    result = evaluate_arrays(**_arrays())
    result.meta["detection_misses"] = 4
    result.notes.append("a caveat")
    files = write_report(result, tmp_path / "out" / "eval.md", title="Tiny")
    assert set(files) == {"report", "confusion", "f1", "au_f1", "va"}
    for kind in ("confusion", "f1", "au_f1", "va"):
        assert files[kind].name == f"eval_{kind}.png"
        assert files[kind].read_bytes()[:8] == PNG_MAGIC
    text = files["report"].read_text()
    assert text.startswith("# Tiny")
    for link in ("eval_confusion.png", "eval_f1.png", "eval_au_f1.png", "eval_va.png"):
        assert f"]({link})" in text
    assert "| Happiness |" in text and "| AU26 |" in text
    assert "| valence |" in text and "MTL score" in text
    assert "no face in **4** image(s)" in text
    assert "- a caveat" in text
    # "Other" is absent from the labels: its row says n/a and support 0
    assert "| Other | n/a | n/a | n/a | 0 |" in text
    # both macro-F1s, the ABAW one over all 8 classes, and what tells them apart
    every = f"| **macro F1, all 8** (P_EXPR) |  |  | {result.expr.abaw_macro_f1:.4f} |"
    assert every in text and result.expr.abaw_macro_f1 < result.expr.macro_f1
    assert "averages the classes present in the labels; P_EXPR (ABAW) averages all 8" in text
    mean = f"{result.au.mean_f1:.4f}"
    assert f"| **mean** (AUs with labels) | {mean} |" in text
    assert f"| **mean, all 12** (P_AU) | {mean} |" in text  # every AU labelled: the same
    assert "P_AU (ABAW) averages all 12 and is n/a unless every AU has labels" in text


def test_absent_tasks_skip_plots_and_write_null(tmp_path):
    arrays = _arrays()
    result = evaluate_arrays(arrays["expr_labels"], arrays["expr_probs"])
    files = write_report(result, tmp_path / "r.md")
    assert set(files) == {"report", "confusion", "f1"}
    assert not (tmp_path / "r_va.png").exists() and not (tmp_path / "r_au_f1.png").exists()
    text = files["report"].read_text()
    assert "No action-unit labels." in text and "No valence/arousal labels." in text
    assert "detector" not in text  # no detection run, no section about it
    data = json.loads(write_json(result, tmp_path / "r.json").read_text())
    assert data["va"]["ccc_mean"] is None and data["au"]["mean_f1"] is None
    assert data["mtl_score"] is None
    assert isinstance(data["expr"]["macro_f1"], float)


def test_markdown_without_any_labels():
    text = markdown(evaluate_arrays())
    assert "No expression labels." in text and "![" not in text


def test_report_without_plots(tmp_path):
    files = write_report(evaluate_arrays(**_arrays()), tmp_path / "x.md", plots=False)
    assert set(files) == {"report"}
    assert list(tmp_path.glob("*.png")) == []


@pytest.fixture
def kept_figures(monkeypatch):
    """The figures the plotting functions make, kept open for inspection."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made, real, close = [], plt.subplots, plt.close
    monkeypatch.setattr(plt, "subplots", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    yield made
    for fig, _ in made:
        close(fig)


def test_bar_labels_sit_above_their_whiskers(tmp_path, kept_figures):
    from liveaffect.evaluation.report import _bar_chart

    _bar_chart(["a", "b", "c"], [0.5, None, 0.9], "t", tmp_path / "x.png",
               spans=[(0.3, 0.8), None, (0.7, 1.0)])  # fmt: skip
    _, ax = kept_figures[0]
    ys = [text.get_position()[1] for text in ax.texts]
    assert ys[0] >= 0.8 and ys[1] >= 0.0 and ys[2] >= 1.0
    assert ax.get_ylim()[1] > 1.05


def test_share_bars_leave_room_for_the_legend(tmp_path, kept_figures):
    from liveaffect.evaluation.robustness import plot_shares

    names = ["Neutral", "Happiness"]
    share = {"Neutral": 0.3, "Happiness": 0.7}
    copies = {k: {"prediction_share": {"predicted": share}} for k in ("blur", "lowres", "dark")}
    plot_shares({"clean": {"n": 10, "predicted": share, "true": share}, "copies": copies},
                tmp_path / "s.png")  # fmt: skip
    _, ax = kept_figures[0]
    assert ax.get_ylim()[1] >= 1.25 * 0.7  # the legend sits over empty space
    assert [t.get_text() for t in ax.get_xticklabels()] == names


def test_report_with_a_degraded_copy_in_which_no_face_was_found(tmp_path):
    """With --detect the detector can find no face in a degraded copy (a strong blur of a
    full image): its share is ``{"n": 0}``, and the report must still be written, the copy's
    shares n/a and no bars for it."""
    from liveaffect.evaluation.robustness import copy_entry

    result = evaluate_arrays(**_arrays())
    share = {"Neutral": 0.5, "Happiness": 0.5}
    result.robustness["clean"] = {"n": 10, "predicted": share, "true": share}
    empty = evaluate_arrays(**{k: v[:0] for k, v in _arrays().items()})
    entry = copy_entry("blur", "Gaussian blur", result, empty, {"n": 0})
    result.robustness["copies"] = {"blur": entry}
    files = write_report(result, tmp_path / "r.md")
    assert files["shares"].read_bytes().startswith(PNG_MAGIC)
    text = (tmp_path / "r.md").read_text()
    assert "| Neutral | 0.500 | 0.500 | n/a |" in text
    row = next(line for line in text.splitlines() if line.startswith("| blur |"))
    assert row.endswith("| n/a | n/a | n/a |") and "()" not in row  # share ratio, AU, VA
    assert str(result)  # the printout too
