"""Synthetic faces with learnable cues, for tests and quick trials of the training pipeline.

Each image is a dark noisy square with three independent cues, one per task:

* expression: a bright red square in one of the four quadrants; quadrant ``q`` is class
  ``q`` (Neutral, Anger, Disgust, Fear with the default 4 classes);
* action units: AU ``k`` present = a small green dot at grid position ``k`` (4 columns x
  3 rows), so which AU is set is told by *where* the dot is, as on a real face;
* valence/arousal: linear in the strengths of two blue stripe patterns (horizontal
  stripes for valence, vertical for arousal): ``valence = 2 a - 1``, ``arousal = 2 b - 1``.

The cues are drawn whether or not the label is kept, so a record whose label is masked
still shows the pattern (a masking leak then teaches the wrong thing). Images are PNGs
listed in a CSV manifest that :func:`liveaffect.data.loaders.load_records` reads.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liveaffect.labels import AU_COLUMNS, EXPRESSIONS, NUM_AUS

MANIFEST = "labels.csv"


@dataclass(frozen=True)
class SyntheticFace:
    """The hidden truth of one synthetic face (every cue is drawn from it)."""

    expr: int
    va: tuple[float, float]
    au: tuple[int, ...]


def au_centers(size: int) -> list[tuple[int, int]]:
    """(x, y) pixel centre of each AU's dot: a 4 x 3 grid over the image."""
    return [
        (round((k % 4 + 0.5) * size / 4), round((k // 4 + 0.5) * size / 3)) for k in range(NUM_AUS)
    ]


def draw_face(face: SyntheticFace, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one face as an RGB uint8 image of ``size`` x ``size``."""
    img = rng.uniform(20, 50, (size, size, 3))
    # valence/arousal: blue stripes (period 4 px) whose strengths are a and b
    a, b = (face.va[0] + 1) / 2, (face.va[1] + 1) / 2
    rows = (np.arange(size) // 2 % 2)[:, None]
    cols = (np.arange(size) // 2 % 2)[None, :]
    img[..., 2] += 100 * a * rows + 100 * b * cols
    # expression: a red square in quadrant ``expr``
    side, half, jitter = size // 4, size // 2, max(size // 16, 1)
    qy, qx = divmod(face.expr, 2)
    y0 = qy * half + (half - side) // 2 + int(rng.integers(-jitter, jitter + 1))
    x0 = qx * half + (half - side) // 2 + int(rng.integers(-jitter, jitter + 1))
    img[max(y0, 0) : y0 + side, max(x0, 0) : x0 + side, 0] = rng.uniform(210, 255)
    # action units: a green dot at position k
    r = max(size // 20, 1)
    for k, (cx, cy) in enumerate(au_centers(size)):
        if face.au[k] == 1:
            img[max(cy - r, 0) : cy + r + 1, max(cx - r, 0) : cx + r + 1, 1] = 235
    return np.clip(img, 0, 255).astype(np.uint8)


def random_face(
    rng: np.random.Generator, n_classes: int = 4, au_rate: float | Sequence[float] = 0.25
) -> SyntheticFace:
    """Draw a random truth: uniform class, uniform VA in [-0.9, 0.9], AU k with ``au_rate``."""
    rates = np.broadcast_to(np.asarray(au_rate, np.float64), (NUM_AUS,))
    return SyntheticFace(
        expr=int(rng.integers(n_classes)),
        va=(float(rng.uniform(-0.9, 0.9)), float(rng.uniform(-0.9, 0.9))),
        au=tuple(int(v) for v in rng.random(NUM_AUS) < rates),
    )


def write_synthetic_set(
    out_dir: str | Path,
    n: int = 400,
    size: int = 32,
    n_classes: int = 4,
    au_rate: float | Sequence[float] = 0.25,
    missing: dict[str, float] | None = None,
    seed: int = 0,
    prefix: str = "face",
) -> Path:
    """Write ``n`` synthetic faces (PNG) and their labels (CSV manifest) to ``out_dir``.

    Args:
        out_dir: folder to write into (created).
        n: number of faces.
        size: image side in pixels (>= 16).
        n_classes: expression classes used, 1..4 (the first ones of ``EXPRESSIONS``).
        au_rate: probability that an AU is present, one value or 12.
        missing: share of records whose label is dropped, per task: ``expr``, ``va``,
            ``au`` (the whole row), ``au_cell`` (single AU cells). A record keeps at
            least one label.
        seed: random seed; the same arguments give the same files.
        prefix: image file name prefix.

    Returns:
        The manifest's path (``out_dir/labels.csv``).
    """
    import cv2

    if not 1 <= n_classes <= 4:
        raise ValueError(f"n_classes must be in 1..4, got {n_classes}")
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    miss = {"expr": 0.0, "va": 0.0, "au": 0.0, "au_cell": 0.0, **(missing or {})}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    header = ["path", "expression", "valence", "arousal", *AU_COLUMNS]
    rows = []
    for i in range(n):
        face = random_face(rng, n_classes, au_rate)
        name = f"{prefix}_{i:05d}.png"
        cv2.imwrite(str(out / name), draw_face(face, size, rng)[..., ::-1])
        drop = {task: rng.random() < miss[task] for task in ("expr", "va", "au")}
        if all(drop.values()):
            drop["expr"] = False
        cells = rng.random(NUM_AUS) < miss["au_cell"]
        rows.append(
            [
                name,
                "" if drop["expr"] else EXPRESSIONS[face.expr],
                "" if drop["va"] else f"{face.va[0]:.4f}",
                "" if drop["va"] else f"{face.va[1]:.4f}",
                *("" if drop["au"] or cells[k] else str(v) for k, v in enumerate(face.au)),
            ]
        )
    path = out / MANIFEST
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path
