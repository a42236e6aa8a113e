"""Label spaces: the one source of truth for expression classes and action units.

The order follows Aff-Wild2 / ABAW (see AFFWILD2.md): index == label value.
"""

from __future__ import annotations

EXPRESSIONS: tuple[str, ...] = (
    "Neutral",
    "Anger",
    "Disgust",
    "Fear",
    "Happiness",
    "Sadness",
    "Surprise",
    "Other",
)
"""The 8 expression classes, index = Aff-Wild2 label value."""

AUS: tuple[str, ...] = (
    "AU1",
    "AU2",
    "AU4",
    "AU6",
    "AU7",
    "AU10",
    "AU12",
    "AU15",
    "AU23",
    "AU24",
    "AU25",
    "AU26",
)
"""The 12 action units of Aff-Wild2, in the annotation files' column order."""


def au_column(name: str) -> str:
    """The output column of an action unit: zero-padded, ``AU1`` -> ``AU01``."""
    return f"AU{int(name[2:]):02d}"


AU_COLUMNS: tuple[str, ...] = tuple(au_column(a) for a in AUS)
"""Zero-padded AU names used in CSV outputs: AU01, AU02, ..., AU26."""

NUM_EXPRESSIONS = len(EXPRESSIONS)
NUM_AUS = len(AUS)

AU_NAMES: dict[str, str] = {
    "AU1": "inner brow raiser",
    "AU2": "outer brow raiser",
    "AU4": "brow lowerer",
    "AU6": "cheek raiser",
    "AU7": "lid tightener",
    "AU10": "upper lip raiser",
    "AU12": "lip corner puller",
    "AU15": "lip corner depressor",
    "AU23": "lip tightener",
    "AU24": "lip pressor",
    "AU25": "lips part",
    "AU26": "jaw drop",
}
"""FACS names of the 12 action units (Ekman & Friesen), for people reading the overlay."""


def au_label(name: str) -> str:
    """``"AU12"`` or ``"AU12"``-style names -> ``"AU12 lip corner puller"`` (the name alone
    when the AU is not one of the 12)."""
    index = au_index(name)
    if index is None:
        return name
    canonical = AUS[index]
    return f"{AU_COLUMNS[index]} {AU_NAMES[canonical]}"


EXPR_MISSING = -1
"""Value of a missing expression label (Aff-Wild2 convention)."""
VA_MISSING = -5.0
"""Value of a missing valence/arousal label (Aff-Wild2 convention)."""
AU_MISSING = -1
"""Value of a missing action-unit label (Aff-Wild2 convention)."""

# Common spellings of class-folder names (FER2013, RAF-DB, AffectNet, CK+ ...).
_EXPRESSION_ALIASES: dict[str, int] = {
    "neutral": 0,
    "neutrality": 0,
    "calm": 0,
    "anger": 1,
    "angry": 1,
    "disgust": 2,
    "disgusted": 2,
    "disgusting": 2,
    "fear": 3,
    "fearful": 3,
    "afraid": 3,
    "scared": 3,
    "happiness": 4,
    "happy": 4,
    "joy": 4,
    "sadness": 5,
    "sad": 5,
    "surprise": 6,
    "surprised": 6,
    "other": 7,
}


def expression_index(name: str) -> int | None:
    """Map a class name in any common spelling to its index, or None if unknown.

    Accepts names like ``"angry"``, ``"Anger"``, ``"happy"``, ``"4"`` (a label
    value) or ``"4_happy"`` style prefixes are not guessed.
    """
    text = name.strip()
    if text.lstrip("+-").isdigit():  # a label value; "-5" is not class 5
        value = int(text)
        return value if 0 <= value < NUM_EXPRESSIONS else None
    return _EXPRESSION_ALIASES.get(text.lower().replace("-", "").replace(" ", ""))


def au_index(name: str) -> int | None:
    """Map ``AU1``/``AU01``/``au_1`` style names to the AU index, or None."""
    key = name.strip().upper().replace("_", "").replace(" ", "")
    if not key.startswith("AU") or not key[2:].isdigit():
        return None
    canonical = f"AU{int(key[2:])}"
    return AUS.index(canonical) if canonical in AUS else None
