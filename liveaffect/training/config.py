"""Training configuration: one YAML file, resolved and saved into every run directory."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from liveaffect.data.dataset import AugmentConfig
from liveaffect.data.sampling import SeedRecipe
from liveaffect.data.splits import PARTS, STRATEGIES
from liveaffect.labels import EXPRESSIONS
from liveaffect.model.mtl import HeadConfig, ModelConfig
from liveaffect.tta import TTA

MIXED_PRECISION = ("auto", "none", "bfloat16", "float16")
# A source's ``split``: the part of it to read (None: all of it).
SOURCE_SPLITS = (None, "train", "validation", "test")
# Per-head loss weights of a config that names none; a head a config leaves out keeps its own.
DEFAULT_LOSS_WEIGHTS = {"expr": 1.0, "va": 1.0, "au": 5.0}


def mixed_precision_policy(
    asked: str, gpu: bool, native_bf16: bool | None
) -> tuple[str, str | None]:
    """The precision a run trains in, and a warning when the asked one is a bad deal.

    Args:
        asked: ``train.mixed_precision``.
        gpu: whether TensorFlow trains on a GPU.
        native_bf16: whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX;
            :func:`liveaffect.hardware.native_bfloat16`); None: unknown.

    Returns:
        (``none``, ``bfloat16`` or ``float16``, a warning or None). ``auto`` is bfloat16 on
        a GPU or a CPU known to compute it, float32 (``none``) otherwise; an explicit
        ``bfloat16`` is kept, with a warning when the CPU is known to emulate it.
    """
    if asked == "auto":
        return ("bfloat16" if gpu or native_bf16 else "none"), None
    if asked == "bfloat16" and not gpu and native_bf16 is False:
        return asked, (
            "train.mixed_precision: bfloat16 on a CPU without AVX512-BF16 or AMX: TensorFlow "
            "emulates it, about 10x slower per step than float32 (measured: 9.0 s against "
            "0.9 s per step of the default model); use auto or none"
        )
    return asked, None


@dataclass
class SourceSpec:
    """One dataset source.

    Attributes:
        path: dataset root, class folder, CSV manifest or Aff-Wild2 root (local or gs://).
        split: which split of the source to read (``train``, ``validation``, ``test``),
            or None for all of it.
        holdout: fraction held out by recording/image/group (fixed seed) — see ``part``.
        part: ``rest`` (everything but the holdout), ``holdout``, or ``holdout_val`` /
            ``holdout_test`` (the held-out groups halved once more by group; see
            :func:`liveaffect.data.splits.holdout_part`).
        seed: seed of the holdout split.
        repeat: oversampling factor for this source in training (integer >= 1).
        group_by: CSV manifests: the column whose rows the holdout keeps together (e.g.
            ``subject``); None = by recording (``video`` column) or image.
        weak_au: training sources: the share (0-1) of this source's faces that carry an
            expression but no AU and get weak AU labels from it
            (:mod:`liveaffect.data.weak_au`: each expression's AU rates among the training
            faces whose 12 AUs are coded; ``data.weak_au_high`` / ``weak_au_low``), picked
            with ``seed``. 0 = none.
    """

    path: str
    split: str | None = None
    holdout: float = 0.0
    part: str = "rest"
    seed: int = 0
    repeat: int = 1
    group_by: str | None = None
    weak_au: float = 0.0

    def __post_init__(self) -> None:
        if self.split not in SOURCE_SPLITS:
            raise ValueError(
                f"split must be train, validation or test (or left out for all of the "
                f"source), got {self.split!r} for {self.path}"
            )
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout} for {self.path}")
        if self.part not in PARTS:
            raise ValueError(f"part must be one of {', '.join(PARTS)}, got {self.part!r}")
        if self.part != "rest" and not self.holdout:
            raise ValueError(f"part {self.part!r} needs a holdout fraction for {self.path}")
        if int(self.repeat) < 1:
            raise ValueError(f"repeat must be >= 1, got {self.repeat} for {self.path}")
        if not 0.0 <= self.weak_au <= 1.0:
            raise ValueError(f"weak_au must be in [0, 1], got {self.weak_au} for {self.path}")


@dataclass
class DataConfig:
    """Training and validation sources; with no validation, a split by recording is made.

    Attributes:
        train: sources to train on.
        validation: held-out sources (never trained on).
        val_fraction: share of recordings held out when ``validation`` is empty and
            the sources carry no official validation split.
        val_max_samples: evaluate at most this many validation faces per epoch.
        cache: ``memory`` (decode once, keep in RAM), ``file`` (cache in the run
            folder) or ``none``.
        sampling: ``none``, or ``seed`` for the seed project's recipe
            (:mod:`liveaffect.data.sampling`): the training records become a balanced
            pool cut into subsets; each ensemble member (or the single model) trains on
            one subset and validates on the recipe's balanced validation subset.
        recipe: overrides of :class:`liveaffect.data.sampling.SeedRecipe`'s numbers
            (``pool_size``, ``n_subsets``, ``boost_add`` ...), used with ``sampling: seed``.
        split: how validation is cut from the training sources when ``validation`` is
            empty: ``auto`` (the sources' official validation or test split when they
            have one, else by recording), ``recording``, ``official``, or ``random`` (the
            seed's frame-level split: the same people on both sides, so validation
            scores read high; a warning is printed).
        max_unreadable: share (0-1) of training or validation images that may be
            unreadable (corrupt, truncated, not an image): they are skipped with a warning
            naming them; above this share the run stops before training.
        weak_au_high: a weak AU label (a source's ``weak_au``) is 1 where the expression
            shows the AU in at least this share of the coded training faces ...
        weak_au_low: ... and 0 where in at most this share; unknown between.
    """

    train: list[SourceSpec] = field(default_factory=list)
    validation: list[SourceSpec] = field(default_factory=list)
    val_fraction: float = 0.1
    val_max_samples: int = 20_000
    cache: str = "memory"
    sampling: str = "none"
    recipe: dict[str, Any] = field(default_factory=dict)
    split: str = "auto"
    max_unreadable: float = 0.01
    weak_au_high: float = 0.75
    weak_au_low: float = 0.10

    def __post_init__(self) -> None:
        for name in ("train", "validation"):
            sources = getattr(self, name)
            if not isinstance(sources, list | tuple):
                raise ValueError(f"data.{name} must be a list of sources (- PATH), got {sources!r}")
            specs = [s if isinstance(s, SourceSpec) else _source(s, f"data.{name}[{i}]")
                     for i, s in enumerate(sources)]  # fmt: skip
            setattr(self, name, specs)
        if not 0.0 <= self.weak_au_low < self.weak_au_high <= 1.0:
            raise ValueError(
                "data.weak_au_low and weak_au_high need 0 <= low < high <= 1, got "
                f"{self.weak_au_low} and {self.weak_au_high}"
            )
        if self.cache not in ("memory", "file", "none"):
            raise ValueError(f"data.cache must be memory, file or none, got {self.cache!r}")
        if self.sampling not in ("none", "seed"):
            raise ValueError(f"data.sampling must be none or seed, got {self.sampling!r}")
        if self.split not in ("auto", *STRATEGIES):
            raise ValueError(
                f"data.split must be auto, {', '.join(STRATEGIES)}, got {self.split!r}"
            )
        if not 0.0 <= self.max_unreadable <= 1.0:
            raise ValueError(f"data.max_unreadable must be in [0, 1], got {self.max_unreadable}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.val_max_samples < 1:
            raise ValueError(f"data.val_max_samples must be >= 1, got {self.val_max_samples}")
        self.recipe = dict(self.recipe or {})
        self.seed_recipe()

    def seed_recipe(self) -> SeedRecipe:
        """The seed recipe with this config's overrides (ValueError naming a bad key)."""
        known = {f.name for f in fields(SeedRecipe)}
        unknown = set(self.recipe) - known
        if unknown:
            raise ValueError(
                f"data.recipe: unknown key(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        values = dict(self.recipe)
        if "majority_classes" in values:
            values["majority_classes"] = tuple(values["majority_classes"])
        try:
            return SeedRecipe(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"data.recipe: {exc}") from exc


def _source(value: Any, where: str) -> SourceSpec:
    """A source from its YAML: a path, or a mapping of SourceSpec's keys."""
    if isinstance(value, str):
        return SourceSpec(path=value)
    return _build(SourceSpec, value, where)


@dataclass
class TrainConfig:
    """Optimisation settings.

    Attributes:
        epochs: maximum number of epochs.
        batch_size: faces per step.
        learning_rate: peak learning rate (AdamW), reached after ``warmup_epochs``.
        weight_decay: AdamW decoupled weight decay.
        warmup_epochs: linear warm-up length; then cosine decay to zero at ``epochs``.
        label_smoothing: expression label smoothing.
        class_weights: ``balanced_sqrt`` (sqrt of inverse frequency), ``balanced``
            or ``none``; classes never seen get weight 0.
        class_boost: added to a class's weight, by class name (the seed's boosts).
        class_weight_max: caps each class's ``class_weights`` value before they are
            normalised to mean 1 (0 = no cap). A tiny class (CK+ contempt as Other: 24
            frames, repeated) otherwise gets 7-13x the common classes' weight and the mean-1
            normalisation pushes the others down (with CK+ x2: 0.34-0.49, where stage 1 has
            0.62-0.93), which weakens the expression loss against the other heads'.
        loss_weights: per-head loss weights (expr, va, au; a head left out keeps its
            default, ``DEFAULT_LOSS_WEIGHTS``). The AU loss is a mean over
            12 binary tasks, so each AU weighs 1/12 of the expression task at weight 1;
            with the seed's head (dropout 0.7) the AU head then stayed at its prior on a
            learnable synthetic set, while 5 let all three heads learn (see
            tests/training/test_training.py::test_every_head_learns_with_the_seed_head).
        au_pos_weight: ``auto`` (negatives/positives per AU, clipped to [1, 20]) or ``none``.
        early_stopping_patience: epochs without a better validation score before stopping.
        tta_flip: average each face with its mirror image when validating, in
            ``evaluate`` and in the app (recorded in the card's ``tta``).
        tta_scales: zooms about the face centre averaged the same way (1.0 = as given,
            0.9 = face 10% smaller, border reflected); see :class:`liveaffect.tta.TTA`.
        select_scales: the zooms the per-epoch validation (epoch selection, early
            stopping) uses instead of ``tta_scales``, e.g. ``[1.0]`` to pick epochs on
            face + mirror, which costs a third of six views per epoch. The selected
            epoch is then scored once more with all of ``tta_scales`` for the card.
            Unset: the same views as ``tta_scales``.
        select_accuracy_weight: adds this multiple of the expression accuracy to the
            per-epoch validation score (the ABAW partial sum: expression macro-F1 + VA
            CCC + AU F1) that picks the best epoch and drives early stopping; for a
            target stated in accuracy as well as macro-F1. 0 = the ABAW score alone.
        bundle_epoch: which epoch's weights the bundle holds: ``best`` (the epoch with
            the best validation score) or ``last`` (the final epoch, e.g. at the end of the
            cosine decay; the validation set then only reports, it does not choose, and
            early stopping, if it triggers, ends the run at that epoch). On the default
            model's stage 2 the last epoch was the more robust one on degraded faces.
        seed: global random seed.
        init_from: a bundle (folder or .keras) of the same model config whose weights the
            run starts from instead of random ones (continued training / fine-tuning);
            None = from scratch. Ignored when resuming (the checkpoint has the weights).
            A ``cnn`` bundle with narrower stages (``model.widths``) is widened first
            without changing its outputs (:mod:`liveaffect.model.widen`; new channels
            drawn with ``seed``), so a wider stage 2 can start from a trained stage 1.
        distill_from: a teacher bundle taking the same faces; its expression probabilities
            on each training face (undegraded, face + mirror) become part of the
            expression target (offline knowledge distillation, see
            :mod:`liveaffect.training.distill`). None = hard labels only.
        distill_weight: the teacher's share of the expression target (0..1].
        ema: weight averaging. If > 0, the optimizer keeps an exponential moving average
            of the weights with this momentum per step (Keras' ``use_ema``; 0.998 averages
            over about the last 500 steps), and validation, checkpoints and the bundle hold
            the averaged weights (``keras.callbacks.SwapEMAWeights``). 0 = off.
        mixed_precision: ``auto``, ``none``, ``bfloat16`` or ``float16`` (GPUs).
            bfloat16 trains about 30% faster than float32 on a CPU with AVX512-BF16 or
            AMX and about 10x slower on one without (emulated; both measured here), so
            ``auto`` takes bfloat16 on a GPU or such a CPU and float32 otherwise
            (:func:`mixed_precision_policy`). Weights stay float32 and the saved bundle
            is a plain float32 model either way.
    """

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    class_weights: str = "balanced_sqrt"
    class_boost: dict[str, float] = field(default_factory=dict)
    class_weight_max: float = 0.0
    loss_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_LOSS_WEIGHTS))
    au_pos_weight: str = "auto"
    early_stopping_patience: int = 8
    tta_flip: bool = True
    tta_scales: list[float] = field(default_factory=lambda: [1.0])
    select_scales: list[float] | None = None
    select_accuracy_weight: float = 0.0
    bundle_epoch: str = "best"
    seed: int = 0
    init_from: str | None = None
    distill_from: str | None = None
    distill_weight: float = 0.5
    ema: float = 0.0
    mixed_precision: str = "none"

    def __post_init__(self) -> None:
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(
                f"train.mixed_precision must be {', '.join(MIXED_PRECISION)}, "
                f"got {self.mixed_precision!r}"
            )
        unknown = set(self.loss_weights) - {"expr", "va", "au"}
        if unknown:
            raise ValueError(f"train.loss_weights: unknown head(s) {sorted(unknown)}; "
                             "the heads are expr, va, au")  # fmt: skip
        if any(
            not isinstance(w, int | float) or not 0 <= w < math.inf
            for w in self.loss_weights.values()
        ):
            raise ValueError(f"train.loss_weights must be numbers >= 0, got {self.loss_weights}")
        # A head the config leaves out keeps its default weight (not 1.0, nor 0).
        self.loss_weights = {**DEFAULT_LOSS_WEIGHTS, **self.loss_weights}
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        # NaN and inf pass a plain "<= 0": the run then trains NaN weights for every epoch
        if not 0 < self.learning_rate < math.inf:
            raise ValueError(f"learning_rate must be > 0 and finite, got {self.learning_rate}")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"train.weight_decay must be >= 0 and finite, got {self.weight_decay}")
        if self.early_stopping_patience < 1:
            raise ValueError(
                "train.early_stopping_patience must be >= 1 (set it to train.epochs for no "
                f"early stopping), got {self.early_stopping_patience}"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"train.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.warmup_epochs < math.inf:
            raise ValueError(f"train.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.class_weights not in ("balanced_sqrt", "balanced", "none"):
            raise ValueError("class_weights must be balanced_sqrt, balanced or none")
        if not self.class_weight_max >= 0:
            raise ValueError(f"train.class_weight_max must be >= 0, got {self.class_weight_max}")
        if not self.select_accuracy_weight >= 0:
            raise ValueError(
                f"train.select_accuracy_weight must be >= 0, got {self.select_accuracy_weight}"
            )
        unknown = [name for name in self.class_boost if name not in EXPRESSIONS]
        if unknown:  # else found only after TensorFlow loaded and the faces were decoded
            raise ValueError(
                f"train.class_boost: unknown class(es) {unknown}; the classes are "
                f"{', '.join(EXPRESSIONS)}"
            )
        if self.bundle_epoch not in ("best", "last"):
            raise ValueError(f"train.bundle_epoch must be best or last, got {self.bundle_epoch!r}")
        if not 0.0 < self.distill_weight <= 1.0:
            raise ValueError(f"train.distill_weight must be in (0, 1], got {self.distill_weight}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"train.ema must be in [0, 1), got {self.ema}")
        if self.au_pos_weight not in ("auto", "none"):
            raise ValueError("au_pos_weight must be auto or none")
        try:
            self.tta_scales = list(self.tta.scales)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"train.tta_scales: {exc}") from None
        if self.select_scales is not None:
            try:
                self.select_scales = list(self.select_tta.scales)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"train.select_scales: {exc}") from None

    @property
    def tta(self) -> TTA:
        """The test-time views validation uses and the card records."""
        return TTA(flip=self.tta_flip, scales=tuple(self.tta_scales))

    @property
    def select_tta(self) -> TTA:
        """The test-time views of the per-epoch validation that picks the best epoch."""
        if self.select_scales is None:
            return self.tta
        return TTA(flip=self.tta_flip, scales=tuple(self.select_scales))


@dataclass
class RunConfig:
    """Everything a training run needs; saved as ``config.yaml`` in the run folder.

    Attributes:
        name: the bundle's name.
        model: what to build (backbone, input size, colour, head).
        crop_margin: margin the runtime adds around detector boxes (stored in the card).
        data: sources.
        train: optimisation.
        augment: augmentation.
    """

    name: str = "liveaffect-mtl"
    model: ModelConfig = field(default_factory=ModelConfig)
    crop_margin: float = 0.1
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if not self.crop_margin >= 0:
            raise ValueError(f"crop_margin must be >= 0, got {self.crop_margin}")
        if self.augment.degrade_from and self.augment.degrade_from >= self.train.epochs:
            raise ValueError(
                f"augment.degrade_from ({self.augment.degrade_from}) must be below "
                f"train.epochs ({self.train.epochs}): only epochs from it on can be picked"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


_PLAIN_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _has_type(value: Any, type_name: str) -> bool:
    """Whether ``value`` fits a field typed ``type_name``: a plain ``int``, ``float``,
    ``bool`` or ``str``, a ``list[...]`` / ``Sequence[...]`` of one of them, a
    ``dict[str, ...]`` of one of them, any of these ``| None``; True for any other type (not
    checked here)."""
    if type_name.endswith(" | None"):
        if value is None:
            return True
        type_name = type_name.removesuffix(" | None")
    items = re.fullmatch(r"(?:list|Sequence)\[(\w+)\]", type_name)
    if items and items[1] in _PLAIN_TYPES:  # a YAML list of them
        return isinstance(value, list | tuple) and all(_has_type(v, items[1]) for v in value)
    values = re.fullmatch(r"dict\[str, (\w+)\]", type_name)
    if values and values[1] in _PLAIN_TYPES:  # a YAML mapping of names to them
        return isinstance(value, dict) and all(
            isinstance(k, str) and _has_type(v, values[1]) for k, v in value.items()
        )
    types = _PLAIN_TYPES.get(type_name)
    if types is None:
        return True
    return isinstance(value, types) and (not isinstance(value, bool) or bool in types)


def _build(cls, data: dict[str, Any], where: str):
    """``cls(**data)``, naming an unknown key, and a value of the wrong type for a field
    typed plainly (``int``, ``float``, ``bool``, ``str``, a list or a mapping of them, any of
    these ``| None``; :func:`_has_type`). YAML's ``"2"`` is a string and ``[16]`` written
    ``16`` a number; unchecked, they fail far away with a message that names no key."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping of keys to values, got {data!r}")
    known = {f.name: str(f.type) for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    for key, value in data.items():
        if not _has_type(value, known[key]):
            raise ValueError(f"{where}.{key} must be {known[key]}, got {value!r}")
    return cls(**data)


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Build a RunConfig from a (YAML) dict, naming any unknown key."""
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"a config is a mapping of sections (model:, data:, ...), got {data!r}")
    data = dict(data or {})
    model = dict(data.pop("model", {}) or {})
    if "head" in model:
        model["head"] = _build(HeadConfig, model["head"] or {}, "model.head")
    return _build(
        RunConfig,
        {
            **data,
            "model": _build(ModelConfig, model, "model"),
            "data": _build(DataConfig, data.get("data", {}) or {}, "data"),
            "train": _build(TrainConfig, data.get("train", {}) or {}, "train"),
            "augment": _build(AugmentConfig, data.get("augment", {}) or {}, "augment"),
        },
        "config",
    )


def load_config(path: str | Path) -> RunConfig:
    """Read a YAML config file. Raises ValueError naming the file on any problem."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.MarkedYAMLError as exc:  # one line: file:line:column: what is wrong
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ValueError(f"{where}: not valid YAML: {exc.problem}") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the config ({exc})") from exc
    try:
        return config_from_dict(data or {})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
