"""The seed project's sampling recipe, with every number in :class:`SeedRecipe`.

1. keep only records with all three labels (``Record.complete``);
2. downsample the majority classes (Neutral, Happiness, Other) so that the pool holds
   ``pool_size`` records: every minority record is kept and the majorities share the rest
   equally (a class with fewer records than its share keeps them all);
3. cut the pool into ``n_subsets`` equal, class-stratified subsets: the first
   ``n_subsets - 2`` train ensemble members, the next gives a balanced validation set of
   ``validation_size``, the last is the test set;
4. oversample each member subset's minority classes toward the largest class ("class
   balancer");
5. class weights for the loss: ``(balanced weight + boost_add) * boost_mul`` per class.

Note that the seed cut its subsets from frames at random, so its test set shares people
with its training sets; use it to reproduce the seed, not to measure generalisation.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from liveaffect.data.records import Record
from liveaffect.labels import EXPRESSIONS, expression_index

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeedRecipe:
    """Numbers of the seed's recipe (defaults reproduce the seed).

    Attributes:
        pool_size: records in the balanced pool (100k in the seed).
        majority_classes: classes downsampled to build the pool.
        n_subsets: equal subsets the pool is cut into; the last two are validation and test,
            the others ensemble members (at least 3).
        validation_size: size of the balanced validation set drawn from its subset.
        oversample_to: per-class target of the class balancer; None = the subset's largest
            class.
        boost_add: added to a class's loss weight.
        boost_mul: multiplies a class's loss weight (after ``boost_add``).
        require_complete: keep only records with expression, VA and all 12 AUs.
        seed: seed of every random choice; the same seed gives the same result.
    """

    pool_size: int = 100_000
    majority_classes: tuple[str, ...] = ("Neutral", "Happiness", "Other")
    n_subsets: int = 5
    validation_size: int = 10_000
    oversample_to: int | None = None
    boost_add: dict[str, float] = field(default_factory=lambda: {"Fear": 0.5, "Surprise": 0.5})
    boost_mul: dict[str, float] = field(default_factory=lambda: {"Sadness": 1.5})
    require_complete: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pool_size <= 0:
            raise ValueError(f"pool_size must be positive, got {self.pool_size}")
        if self.n_subsets < 3:
            raise ValueError(f"n_subsets must be at least 3, got {self.n_subsets}")
        if self.validation_size <= 0:
            raise ValueError(f"validation_size must be positive, got {self.validation_size}")
        if self.oversample_to is not None and self.oversample_to <= 0:
            raise ValueError(f"oversample_to must be positive or None, got {self.oversample_to}")
        names = [*self.majority_classes, *self.boost_add, *self.boost_mul]
        for name in names:
            if name not in EXPRESSIONS:
                raise ValueError(f"unknown class {name!r} in SeedRecipe; use {EXPRESSIONS}")

    @property
    def n_members(self) -> int:
        """Number of ensemble-member subsets."""
        return self.n_subsets - 2


@dataclass
class SeedSplits:
    """What :func:`apply_seed_recipe` makes.

    Attributes:
        pool: the balanced pool (before cutting).
        subsets: the ``n_subsets`` equal subsets, as cut.
        members: one oversampled training set per ensemble member.
        validation: the balanced validation set.
        test: the test subset, as cut.
        class_weights: one class-weight table per member.
    """

    pool: list[Record]
    subsets: list[list[Record]]
    members: list[list[Record]]
    validation: list[Record]
    test: list[Record]
    class_weights: list[dict[str, float]]


def class_counts(records: Iterable[Record]) -> dict[str, int]:
    """Records per expression class, all 8 classes in label order (unlabelled ones skipped)."""
    counts = dict.fromkeys(EXPRESSIONS, 0)
    for record in records:
        if record.has_expr:
            counts[EXPRESSIONS[record.expr]] += 1
    return counts


def fill_targets(counts: Mapping[str, int], budget: int) -> dict[str, int]:
    """Per-class counts that sum to ``min(budget, total)``, as equal as the counts allow.

    A class with fewer records than the equal share keeps them all; the others share what
    is left (remainders go one each to the first classes in label order).
    """
    targets = dict(counts)
    remaining = min(max(budget, 0), sum(counts.values()))
    open_classes = sorted(counts, key=lambda c: counts[c])
    while open_classes:
        share = remaining // len(open_classes)
        smallest = open_classes[0]
        if counts[smallest] <= share:
            targets[smallest] = counts[smallest]
            remaining -= counts[smallest]
            open_classes.pop(0)
            continue
        extra = remaining - share * len(open_classes)
        for i, name in enumerate(sorted(open_classes, key=_label_order)):
            targets[name] = share + (1 if i < extra else 0)
        break
    return targets


def _label_order(name: str) -> int:
    index = expression_index(name)
    return index if index is not None else len(EXPRESSIONS)


def _by_class(records: Iterable[Record]) -> dict[str, list[Record]]:
    groups: dict[str, list[Record]] = {name: [] for name in EXPRESSIONS}
    for record in records:
        if record.has_expr:
            groups[EXPRESSIONS[record.expr]].append(record)
    return groups


def _take(groups: dict[str, list[Record]], targets: Mapping[str, int], rng) -> list[Record]:
    out: list[Record] = []
    for name in EXPRESSIONS:
        members = groups[name]
        k = targets.get(name, len(members))
        out += members if k >= len(members) else rng.sample(members, k)
    return out


def balanced_pool(records: Sequence[Record], recipe: SeedRecipe) -> list[Record]:
    """Steps 1-2: the complete-label filter and the majority downsampling to ``pool_size``."""
    rng = random.Random(recipe.seed)
    kept = [r for r in records if r.complete] if recipe.require_complete else list(records)
    groups = _by_class(kept)
    counts = {name: len(group) for name, group in groups.items()}
    minority = sum(n for name, n in counts.items() if name not in recipe.majority_classes)
    if minority <= recipe.pool_size:
        majors = {name: counts[name] for name in recipe.majority_classes}
        targets = fill_targets(majors, recipe.pool_size - minority)
    else:
        logger.warning(
            "minority classes alone (%d) exceed pool_size %d; capping every class",
            minority,
            recipe.pool_size,
        )
        targets = fill_targets(counts, recipe.pool_size)
    return _take(groups, targets, rng)


def cut_subsets(records: Sequence[Record], n_subsets: int, seed: int = 0) -> list[list[Record]]:
    """Cut into ``n_subsets`` disjoint subsets of equal size with the same class mix.

    Records are dealt round-robin class by class; up to ``n_subsets - 1`` left-over records
    are dropped so that all subsets have ``len(records) // n_subsets`` records.
    """
    rng = random.Random(seed)
    dealt: list[Record] = []
    for group in _by_class(records).values():
        group = list(group)
        rng.shuffle(group)
        dealt += group
    size = len(dealt) // n_subsets
    subsets = [dealt[i::n_subsets][:size] for i in range(n_subsets)]
    for subset in subsets:
        rng.shuffle(subset)
    return subsets


def oversample(records: Sequence[Record], target: int | None = None, seed: int = 0) -> list[Record]:
    """Class balancer: repeat minority records until each class has ``target`` records.

    Args:
        records: one subset.
        target: records per class; None = the largest class. Larger classes are kept whole.
        seed: seed of the partial copy and the final shuffle.
    """
    rng = random.Random(seed)
    groups = _by_class(records)
    goal = target if target is not None else max((len(g) for g in groups.values()), default=0)
    out: list[Record] = []
    for group in groups.values():
        out += group
        if 0 < len(group) < goal:
            copies, rest = divmod(goal - len(group), len(group))
            out += group * copies + rng.sample(group, rest)
    rng.shuffle(out)
    return out


def balanced_sample(records: Sequence[Record], size: int, seed: int = 0) -> list[Record]:
    """At most ``size`` records with classes as equal as the counts allow (no repeats)."""
    rng = random.Random(seed)
    groups = _by_class(records)
    targets = fill_targets({name: len(g) for name, g in groups.items()}, size)
    out = _take(groups, targets, rng)
    rng.shuffle(out)
    return out


def class_weights(counts: Mapping[str, int], recipe: SeedRecipe | None = None) -> dict[str, float]:
    """Loss weight per class: ``(total / (k * count) + boost_add) * boost_mul``.

    ``k`` is the number of classes present; an absent class gets base weight 1.0.

    Args:
        counts: records per class name (e.g. from :func:`class_counts`).
        recipe: boosts to apply; default :class:`SeedRecipe`'s.
    """
    recipe = recipe or SeedRecipe()
    present = {name: n for name, n in counts.items() if n > 0}
    total = sum(present.values())
    weights = {}
    for name in EXPRESSIONS:
        n = counts.get(name, 0)
        base = total / (len(present) * n) if n > 0 else 1.0
        weights[name] = (base + recipe.boost_add.get(name, 0.0)) * recipe.boost_mul.get(name, 1.0)
    return weights


def apply_seed_recipe(records: Sequence[Record], recipe: SeedRecipe | None = None) -> SeedSplits:
    """Run steps 1-5 of the recipe; deterministic for a given ``recipe.seed``."""
    recipe = recipe or SeedRecipe()
    pool = balanced_pool(records, recipe)
    if len(pool) < recipe.n_subsets:
        raise ValueError(f"{len(pool)} usable records cannot make {recipe.n_subsets} subsets")
    subsets = cut_subsets(pool, recipe.n_subsets, recipe.seed)
    members = [
        oversample(subset, recipe.oversample_to, recipe.seed + i)
        for i, subset in enumerate(subsets[: recipe.n_members])
    ]
    validation = balanced_sample(subsets[-2], recipe.validation_size, recipe.seed)
    weights = [class_weights(class_counts(member), recipe) for member in members]
    return SeedSplits(pool, subsets, members, validation, list(subsets[-1]), weights)


def count_report(
    before: Mapping[str, int],
    after: Mapping[str, int],
    titles: tuple[str, str] = ("before", "after"),
) -> str:
    """A plain-text table of class counts before and after sampling, with a total row."""
    names = [n for n in EXPRESSIONS if n in before or n in after]
    names += [n for n in [*before, *after] if n not in names and n not in EXPRESSIONS]
    names = list(dict.fromkeys(names))
    width = max([len("class"), len("total"), *map(len, names)])
    lines = [f"{'class':<{width}}  {titles[0]:>10}  {titles[1]:>10}  {'ratio':>7}"]
    rows = [(n, before.get(n, 0), after.get(n, 0)) for n in names]
    rows.append(("total", sum(before.values()), sum(after.values())))
    for name, b, a in rows:
        ratio = f"{a / b:.2f}x" if b else "-"
        lines.append(f"{name:<{width}}  {b:>10}  {a:>10}  {ratio:>7}")
    lines.insert(-1, "-" * len(lines[0]))
    return "\n".join(lines) + "\n"


def member_splits(
    train: Sequence[Record],
    val: Sequence[Record],
    k: int,
    recipe: SeedRecipe | None = None,
    seed: int = 0,
) -> list[tuple[list[Record], list[Record]]]:
    """``(train, validation)`` records of each of ``k`` ensemble members.

    With a ``recipe`` (``data.sampling: seed``) the balanced pool is cut into ``k + 2``
    class-stratified subsets (at least the recipe's ``n_subsets``); member ``i`` trains on
    subset ``i`` with its class balancer and every member validates on the recipe's
    balanced validation subset. Without, the training records are dealt into ``k`` parts
    by recording (:func:`liveaffect.data.splits.split_into_parts`) and every member
    validates on ``val``.

    Raises:
        ValueError: too little data for ``k`` members.
    """
    if recipe is None:
        from liveaffect.data.splits import split_into_parts

        return [(part, list(val)) for part in split_into_parts(train, k, seed)]
    recipe = replace(recipe, n_subsets=max(recipe.n_subsets, k + 2))
    splits = apply_seed_recipe(train, recipe)
    return [(member, list(splits.validation)) for member in splits.members[:k]]


def members_report(before: Mapping[str, int], members: Sequence[Sequence[Record]]) -> str:
    """Each member's class counts before and after sampling, as printed during training."""
    parts = []
    for i, member in enumerate(members):
        parts.append(f"member {i}: class counts before and after sampling\n")
        parts.append(count_report(before, class_counts(member)))
    return "".join(parts)
