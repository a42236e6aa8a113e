"""``report.png``: a picture of one video, drawn with matplotlib from its ``faces.csv``.

At the top a summary table (one row per face id: frames seen, time on screen, share of
the top expression, valence and arousal mean and spread, the most active AUs). Then one
row of panels per face id (the faces seen longest, at most :data:`MAX_FACE_ROWS`):
expression probabilities over time as a stacked area, valence and arousal over time, the
valence/arousal trajectory on the circumplex, and the AU activation heat map over time.
A head the model card marks untrained has no panel and no column; AUs the card says are
found poorly on new faces (``ModelCard.weak_aus``) carry a ``?`` and a footnote says why.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from liveaffect.analysis.summary import FaceTable
from liveaffect.bundle import WEAK_AU_F1

MAX_FACE_ROWS = 6
MAX_TABLE_ROWS = 12
WIDTH_IN = 16.0
FACE_ROW_IN = 3.0
DPI = 100


TITLE_IN = 0.5
BOTTOM_IN = 0.3


def _table_height_in(n_faces: int) -> float:
    return 0.25 + 0.24 * (min(max(n_faces, 1), MAX_TABLE_ROWS) + 1)


def report_size_px(n_faces: int) -> tuple[int, int]:
    """(width, height) in pixels of the report of a video with ``n_faces`` face ids."""
    rows = max(1, min(n_faces, MAX_FACE_ROWS))
    height = TITLE_IN + _table_height_in(n_faces) + FACE_ROW_IN * rows + BOTTOM_IN
    return round(WIDTH_IN * DPI), round(height * DPI)


def _panels(heads) -> list[str]:
    out = []
    if "expr" in heads:
        out.append("expr")
    if "va" in heads:
        out += ["va", "circumplex"]
    if "au" in heads:
        out.append("au")
    return out


def _au_name(au: str, weak_aus: Collection[str]) -> str:
    return f"{au}?" if au in weak_aus else au


def _table_rows(
    summaries: list[dict[str, Any]], heads, aus, weak_aus: Collection[str] = ()
) -> tuple[list[str], list[list[str]]]:
    header = ["face", "frames", "on screen (s)"]
    if "expr" in heads:
        header.append("top expression (share)")
    if "va" in heads:
        header += ["valence mean ± sd", "arousal mean ± sd"]
    if "au" in heads:
        header.append("most active AUs (rate)")
    rows = []
    for s in summaries:
        row = [str(s["face_id"]), str(s["frames_seen"]), f"{s['first_s']:.1f}-{s['last_s']:.1f}"]
        if "expr" in heads:
            top = s["top_expression"]
            row.append(f"{top} ({s[f'share_{top}']:.0%})")
        if "va" in heads:
            for name in ("valence", "arousal"):
                row.append(f"{s[f'{name}_mean']:+.2f} ± {s[f'{name}_std']:.2f}")
        if "au" in heads:
            rates = sorted(((s[f"{au}_rate"], au) for au in aus), reverse=True)[:3]
            active = [f"{_au_name(au, weak_aus)} {r:.0%}" for r, au in rates if r >= 0.005]
            row.append(", ".join(active) or "none")
        rows.append(row)
    return header, rows


def _draw_table(ax, summaries, heads, aus, weak_aus: Collection[str] = ()) -> None:
    ax.axis("off")
    if not summaries:
        ax.text(0.0, 0.5, "no face was found in this video", fontsize=11, va="center")
        return
    shown = table_faces(summaries)
    header, rows = _table_rows(shown, heads, aus, weak_aus)
    table = ax.table(cellText=rows, colLabels=header, bbox=(0, 0, 1, 1), cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    widths = column_widths(header, rows)
    for (_, column), cell in table.get_celld().items():
        cell.set_width(widths[column])
    if len(summaries) > len(shown):
        more = len(summaries) - len(shown)
        ax.text(
            1.0,
            1.02,
            f"the {len(shown)} faces seen longest; {more} more face ids in summary.json",
            fontsize=8,
            ha="right",
        )


def table_faces(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The faces the report's table lists: the ``MAX_TABLE_ROWS`` seen in the most frames,
    in face id order."""
    longest = sorted(summaries, key=lambda s: -s["frames_seen"])[:MAX_TABLE_ROWS]
    return sorted(longest, key=lambda s: s["face_id"])


def column_widths(header: list[str], rows: list[list[str]]) -> list[float]:
    """Each column's share of the table's width, from its longest text (header included),
    so that no cell's text runs into the next one."""
    longest = [max(len(text) for text in column) + 2 for column in zip(header, *rows, strict=True)]
    return [n / sum(longest) for n in longest]


def _draw_expr(ax, face: FaceTable) -> None:
    t = face.timestamp_ms / 1000.0
    colors = [f"C{i % 10}" for i in range(len(face.expressions))]
    probs = np.nan_to_num(face.probs.T)
    ax.stackplot(t, probs, labels=face.expressions, colors=colors, alpha=0.85)
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("expression probability")
    ax.legend(loc="upper left", fontsize=6, ncol=4, framealpha=0.6)


def _draw_va(ax, face: FaceTable) -> None:
    t = face.timestamp_ms / 1000.0
    ax.plot(t, face.va[:, 0], label="valence", color="C0")
    ax.plot(t, face.va[:, 1], label="arousal", color="C3")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("time (s)")
    ax.legend(loc="upper left", fontsize=7)


def _draw_circumplex(ax, face: FaceTable) -> None:
    theta = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(theta), np.sin(theta), color="grey", lw=0.6)
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    v, a = face.va[:, 0], face.va[:, 1]
    ax.plot(v, a, color="grey", lw=0.5, alpha=0.6)
    points = ax.scatter(v, a, c=face.timestamp_ms / 1000.0, cmap="viridis", s=6)
    ax.figure.colorbar(points, ax=ax, label="time (s)", fraction=0.046, pad=0.02)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")


def _draw_au(ax, face: FaceTable) -> None:
    t = face.timestamp_ms / 1000.0
    n = len(face.aus)
    extent = (
        float(t.min()),
        float(t.max()) if len(t) > 1 else float(t.min()) + 1e-3,
        -0.5,
        n - 0.5,
    )
    image = ax.imshow(
        face.au.T, aspect="auto", origin="lower", extent=extent, vmin=0, vmax=1, cmap="magma"
    )
    ax.set_yticks(range(n), face.aus, fontsize=7)
    ax.set_xlabel("time (s)")
    ax.figure.colorbar(image, ax=ax, label="AU probability", fraction=0.046, pad=0.02)


_DRAW = {"expr": _draw_expr, "va": _draw_va, "circumplex": _draw_circumplex, "au": _draw_au}
_TITLES = {
    "expr": "expressions",
    "va": "valence / arousal",
    "circumplex": "circumplex",
    "au": "action units",
}


def render_report(
    table: FaceTable,
    summaries: list[dict[str, Any]],
    heads,
    title: str,
    path: str,
    weak_aus: Collection[str] = (),
) -> tuple[int, int]:
    """Draw the report of one video into the PNG file ``path``; returns its size in pixels.

    Args:
        table: the video's ``faces.csv``.
        summaries: its per-face summaries (:func:`~liveaffect.analysis.summary.summarize_faces`).
        heads: the heads shown (the card's trained heads).
        title: the heading (the video's name and length).
        path: where to write the PNG (the name may end in anything: the format is fixed).
        weak_aus: the CSV's AU columns (``AU10``) the card says are found poorly on new
            faces: marked ``?``, with a footnote.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    panels = _panels(heads)
    shown = sorted(summaries, key=lambda s: -s["frames_seen"])[:MAX_FACE_ROWS]
    width_px, height_px = report_size_px(len(summaries))
    height_in = height_px / DPI
    fig = Figure(figsize=(width_px / DPI, height_in), dpi=DPI)
    fig.text(0.01, 1 - 0.3 / height_in, title, fontsize=12, fontweight="bold")
    rows = max(1, len(shown))
    table_in = _table_height_in(len(summaries))
    table_ax = fig.add_axes(
        (0.04, 1 - (TITLE_IN + table_in) / height_in, 0.93, table_in / height_in)
    )
    weak_aus = [a for a in table.aus if a in weak_aus] if "au" in heads else []
    _draw_table(table_ax, summaries, heads, table.aus, weak_aus)
    grid = fig.add_gridspec(
        rows,
        max(1, len(panels)),
        hspace=0.45,
        wspace=0.35,
        left=0.05,
        right=0.97,
        top=1 - (TITLE_IN + table_in + 0.35) / height_in,
        bottom=(BOTTOM_IN + 0.3) / height_in,
    )
    for r, summary in enumerate(shown):
        face = table.select(summary["face_id"])
        for c, panel in enumerate(panels):
            ax = fig.add_subplot(grid[r, c])
            _DRAW[panel](ax, face)
            if panel == "au" and weak_aus:
                ax.set_yticks(range(len(face.aus)), [_au_name(a, weak_aus) for a in face.aus])
            ax.set_title(f"face {summary['face_id']}: {_TITLES[panel]}", fontsize=9)
    if weak_aus:
        fig.text(
            0.01,
            0.1 / height_in,
            f"AU?: F1 under {WEAK_AU_F1:g} on people the model never trained on "
            f"(model card: {', '.join(weak_aus)}); their values are not findings to trust.",
            fontsize=8,
            color="dimgrey",
        )
    if not panels or not shown:
        ax = fig.add_subplot(grid[0, :])
        ax.axis("off")
        ax.text(0.5, 0.5, "nothing to plot", ha="center", va="center", color="grey")
    with open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=DPI)
    return width_px, height_px
