"""Train/validation splits: by recording (default), official, or random over frames.

Consecutive frames of one recording are near-duplicates, and the ``_left``/``_right``
faces of one recording share a scene. Splitting by ``Record.video`` (the recording name,
suffix already stripped by the readers) keeps each recording on one side. A random
frame-level split (the seed project's) puts the same person on both sides and inflates
every validation score; it is offered for reproducing the seed only.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Sequence

from liveaffect.data.affwild2_layout import base_video
from liveaffect.data.records import Record

logger = logging.getLogger(__name__)

SHARED_NAMED = 5
"""How many shared recordings :func:`warn_shared_recordings` names."""

STRATEGIES = ("recording", "official", "random")
"""Named splits; ``auto`` (:func:`auto_split`) chooses between the first two."""
PARTS = ("rest", "holdout", "holdout_val", "holdout_test")


def _check_fraction(fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {fraction}")


def split_by_recording(
    records: Sequence[Record], val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[Record], list[Record]]:
    """Split whole recordings (``Record.split_key``: the video, or the record's group
    such as a subject) into train and validation.

    Recordings are shuffled with ``seed`` and moved to validation until it holds at least
    ``val_fraction`` of the records; with two or more recordings both sides are non-empty.

    Args:
        records: the records to split.
        val_fraction: wanted share of records in validation, in (0, 1).
        seed: shuffling seed; the same seed and records give the same split.

    Returns:
        ``(train, validation)``, each in the input order.
    """
    _check_fraction(val_fraction)
    groups: dict[str, int] = defaultdict(int)
    for record in records:
        groups[record.split_key] += 1
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    target = val_fraction * len(records)
    val_keys: set[str] = set()
    taken = 0
    for key in keys[: max(len(keys) - 1, 0)]:  # always leave one recording for training
        if taken >= target:
            break
        val_keys.add(key)
        taken += groups[key]
    train = [r for r in records if r.split_key not in val_keys]
    val = [r for r in records if r.split_key in val_keys]
    return train, val


def official_split(
    records: Sequence[Record], held_out: tuple[str, ...] = ("validation", "test")
) -> tuple[list[Record], list[Record]]:
    """Split on ``Record.split`` as the source assigned it.

    Args:
        records: records whose sources carry a split (Aff-Wild2 Train_Set/Validation_Set,
            class folders under train/ and test/, a CSV ``split`` column).
        held_out: the ``Record.split`` values that go to validation (FER2013's ``test``
            folder is its validation set).

    Returns:
        ``(train, validation)``.

    Raises:
        ValueError: some records carry no split; they are named by source.
    """
    unsplit = sorted({r.source for r in records if not r.split})
    if unsplit:
        raise ValueError(
            f"records from {', '.join(unsplit)} carry no official split; "
            "split them by recording (data.split: recording, or auto)"
        )
    train = [r for r in records if r.split == "train"]
    val = [r for r in records if r.split in held_out]
    warn_shared_recordings(train, val)
    return train, val


def shared_recordings(train: Sequence[Record], val: Sequence[Record]) -> list[str]:
    """The recordings (base video names, ``_left``/``_right`` stripped) with records on
    both sides, sorted."""
    seen = {base_video(r.video) for r in train if r.video}
    return sorted(seen & {base_video(r.video) for r in val if r.video})


def warn_shared_recordings(train: Sequence[Record], val: Sequence[Record]) -> list[str]:
    """Log a WARNING when a source's own split puts one recording on both sides (its
    validation frames then are not held out); returns the shared recordings.

    Not an error: a release is what it is, and the warning says what it does to the scores.
    """
    shared = shared_recordings(train, val)
    if shared:
        named = ", ".join(shared[:SHARED_NAMED])
        more = f" and {len(shared) - SHARED_NAMED} more" if len(shared) > SHARED_NAMED else ""
        logger.warning(
            "the official split puts %d recording(s) in both training and validation "
            "(base video name, _left/_right stripped): %s%s; their validation frames are "
            "not held out, so validation scores read high",
            len(shared),
            named,
            more,
        )
    return shared


def random_split(
    records: Sequence[Record], val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[Record], list[Record]]:
    """Random frame-level split (the seed's way).

    Warning:
        Frames of one recording land on both sides, so the validation score measures
        memorised identities, not generalisation. Use :func:`split_by_recording` unless
        reproducing the seed.

    Returns:
        ``(train, validation)``, each in the input order.
    """
    _check_fraction(val_fraction)
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_val = round(val_fraction * len(records))
    val_index = set(order[:n_val])
    train = [r for i, r in enumerate(records) if i not in val_index]
    val = [r for i, r in enumerate(records) if i in val_index]
    return train, val


def auto_split(
    records: Sequence[Record], val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[Record], list[Record]]:
    """The sources' own held-out split when they have one, else :func:`split_by_recording`.

    The records marked ``validation`` (or, when none is, ``test``: FER2013's test folder)
    are validation and every other record trains, including records with no split
    (unlike :func:`official_split`, which refuses those).
    """
    for held in ("validation", "test"):
        if any(r.split == held for r in records):
            train = [r for r in records if r.split != held]
            val = [r for r in records if r.split == held]
            warn_shared_recordings(train, val)
            return train, val
    return split_by_recording(records, val_fraction, seed)


def make_split(
    records: Sequence[Record], strategy: str = "recording", val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[Record], list[Record]]:
    """Dispatch to ``auto`` or one of :data:`STRATEGIES` by name (for command-line options
    and ``data.split``)."""
    if strategy == "auto":
        return auto_split(records, val_fraction, seed)
    if strategy == "recording":
        return split_by_recording(records, val_fraction, seed)
    if strategy == "official":
        return official_split(records)
    if strategy == "random":
        return random_split(records, val_fraction, seed)
    raise ValueError(f"strategy must be auto or one of {STRATEGIES}, got {strategy!r}")


def holdout_part(
    records: Sequence[Record], fraction: float, seed: int = 0, part: str = "holdout"
) -> list[Record]:
    """One part of a seeded holdout split by recording/group (:func:`split_by_recording`).

    Args:
        records: the records to split.
        fraction: share of records held out, in (0, 1).
        seed: the split's seed.
        part: ``rest`` (what is not held out: the training side), ``holdout`` (all of the
            held-out side), or ``holdout_val`` / ``holdout_test``: the held-out groups cut
            once more in half by group (same seed), so that one half can tune what the
            other half then measures (e.g. AU thresholds on validation subjects, F1 on
            test subjects).

    Raises:
        ValueError: bad fraction or part.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    rest, held = split_by_recording(records, fraction, seed)
    if part == "rest":
        return rest
    if part == "holdout":
        return held
    test, val = split_by_recording(held, 0.5, seed)
    return val if part == "holdout_val" else test


def split_into_parts(records: Sequence[Record], k: int, seed: int = 0) -> list[list[Record]]:
    """Deal whole recordings (``Record.video``) into ``k`` disjoint parts of similar size.

    Recordings are shuffled with ``seed``, then, largest first, each goes to the part
    that holds the fewest records so far. Records keep their input order in each part.

    Raises:
        ValueError: fewer recordings than parts.
    """
    sizes: dict[str, int] = defaultdict(int)
    for record in records:
        sizes[record.video] += 1
    if len(sizes) < k:
        raise ValueError(f"{len(sizes)} recordings cannot make {k} disjoint ensemble members")
    keys = sorted(sizes)
    random.Random(seed).shuffle(keys)
    keys.sort(key=lambda key: -sizes[key])
    totals = [0] * k
    part_of: dict[str, int] = {}
    for key in keys:
        part = totals.index(min(totals))
        part_of[key] = part
        totals[part] += sizes[key]
    parts: list[list[Record]] = [[] for _ in range(k)]
    for record in records:
        parts[part_of[record.video]].append(record)
    return parts
