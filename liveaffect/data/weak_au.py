"""Weak AU labels for faces that carry only an expression, from what the AU-coded faces show.

In posed data such as CK+, an expression mostly fixes its action units (surprise is AU1 +
AU2 + AU25 in 96-98% of CK+'s surprise faces, happiness AU6 + AU12 + AU25). A face labelled
only with an expression (FER2013) can therefore be given the AUs its expression nearly
always shows (1), those it nearly never shows (0), and "unknown" (-1, masked in the loss)
for the rest, so the AU head also learns from many varied faces, not only from the few
dozen coded subjects. Neutral shows no AU (FACS's definition), whether or not the coded
faces include it. Nothing here is a measured AU: a training signal only, and the rates come
from the training faces alone (never from validation or test subjects).

Written here because no library derives such labels; it is a few lines of counting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from liveaffect.data.records import Record
from liveaffect.labels import AU_MISSING, NUM_AUS, NUM_EXPRESSIONS


def expression_au_rates(records: Sequence[Record]) -> np.ndarray:
    """An (8, 12) array: row ``e`` is each AU's rate among ``records`` with expression ``e``
    and all 12 AUs coded (zeros for an expression none of them shows, and always for
    Neutral, index 0)."""
    rates = np.zeros((NUM_EXPRESSIONS, NUM_AUS))
    coded = [r for r in records if r.has_expr and r.au is not None and AU_MISSING not in r.au]
    for e in sorted({r.expr for r in coded} - {0}):
        rates[e] = np.mean([r.au for r in coded if r.expr == e], axis=0)
    return rates


def weak_au_cells(rates: Sequence[float], high: float, low: float) -> tuple[int, ...]:
    """One face's AU labels from its expression's ``rates``: 1 at or above ``high``, 0 at or
    below ``low``, -1 (unknown) between."""
    return tuple(1 if r >= high else 0 if r <= low else AU_MISSING for r in rates)


def with_weak_au(
    records: Sequence[Record],
    rates: np.ndarray,
    share: float,
    high: float,
    low: float,
    seed: int,
) -> list[Record]:
    """``records`` with weak AU labels (:func:`weak_au_cells` of their expression's row of
    ``rates``) on a random ``share`` of them (``numpy`` generator ``seed``); only records
    with an expression and no AU label change."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share}")
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"need 0 <= low < high <= 1, got low {low}, high {high}")
    picked = np.random.default_rng(seed).random(len(records)) < share
    return [
        replace(r, au=weak_au_cells(rates[r.expr], high, low))
        if pick and r.has_expr and not r.has_au
        else r
        for r, pick in zip(records, picked, strict=True)
    ]
