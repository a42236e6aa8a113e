"""Model bundles: a directory with a ``.keras`` multi-task model and its ``card.json``.

The card says everything needed to use the model (DESIGN.md, idea 4): input size,
colour order, normalisation, label spaces, which heads were trained and on what,
AU thresholds, metrics. A plain ``.keras`` file trained elsewhere also loads: its
outputs are recognised by name (``expr``, ``va``, ``au``) or else by width (8, 2, 12).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liveaffect.labels import AUS, EXPRESSIONS, NUM_AUS, NUM_EXPRESSIONS, au_column
from liveaffect.preprocess import PreprocessSpec
from liveaffect.tta import TTA

CARD_FILE = "card.json"
MODEL_FILE = "model.keras"
HEADS = ("expr", "va", "au")
HEAD_WIDTHS = {"expr": NUM_EXPRESSIONS, "va": 2, "au": NUM_AUS}
FORMAT_VERSION = 1
WEAK_AU_F1 = 0.5
"""AUs whose F1 on faces never trained on (the card's ``au_f1``) is below this are marked
as unreliable where they are shown (the live view's AU bars)."""


class BundleError(Exception):
    """A model bundle is missing, corrupt or not a liveaffect multi-task model."""


@dataclass
class HeadInfo:
    """What one output head was trained on.

    Attributes:
        trained: False when the head never saw a label (its outputs are noise).
        data: human-readable description of the training data for this head.
        classes_seen: for ``expr``, the class names that had training labels.
    """

    trained: bool = True
    data: str = ""
    classes_seen: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"trained": self.trained, "data": self.data}
        if self.classes_seen is not None:
            out["classes_seen"] = list(self.classes_seen)
        return out


@dataclass
class ModelCard:
    """Machine-readable card that travels with a model."""

    name: str = "liveaffect-mtl"
    backbone: str = "unknown"
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    expressions: list[str] = field(default_factory=lambda: list(EXPRESSIONS))
    aus: list[str] = field(default_factory=lambda: list(AUS))
    heads: dict[str, HeadInfo] = field(
        default_factory=lambda: {h: HeadInfo(trained=True) for h in HEADS}
    )
    au_thresholds: list[float] = field(default_factory=lambda: [0.5] * NUM_AUS)
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    tta: dict[str, Any] = field(default_factory=dict)
    """Test-time views the model is scored with, ``{"flip": bool, "scales": [...]}``
    (:class:`liveaffect.tta.TTA`); empty: the older ``training.tta_flip`` decides."""
    version: str = ""
    """The model's version as its publisher names it (the stream outlets send it); empty:
    readers name the weights by their SHA-256 instead."""
    au_f1: dict[str, float] = field(default_factory=dict)
    """Per-AU F1 on faces of people the model never trained on, with the card's thresholds
    (``evaluate --save-au-f1``); empty: not measured. ``au_f1_data`` says on what."""
    au_f1_data: str = ""

    def __post_init__(self) -> None:
        if len(self.au_thresholds) != NUM_AUS:
            raise ValueError(f"au_thresholds needs {NUM_AUS} values, got {len(self.au_thresholds)}")
        if not all(0.0 <= t <= 1.0 for t in self.au_thresholds):
            raise ValueError("au_thresholds must lie in [0, 1]")
        for head in HEADS:
            self.heads.setdefault(head, HeadInfo(trained=False))
        unknown = sorted(set(self.au_f1) - set(self.aus))
        if unknown:
            raise ValueError(f"au_f1 names AUs the model does not have: {', '.join(unknown)}")
        if not all(0.0 <= float(v) <= 1.0 for v in self.au_f1.values()):
            raise ValueError("au_f1 values must lie in [0, 1]")

    def weak_aus(self, below: float = WEAK_AU_F1) -> tuple[str, ...]:
        """The AUs (in ``aus`` order) whose ``au_f1`` is known and below ``below``; none
        when the AU head is untrained (it is not shown at all then)."""
        if not self.trained("au"):
            return ()
        return tuple(a for a in self.aus if a in self.au_f1 and self.au_f1[a] < below)

    def weak_au_columns(self) -> tuple[str, ...]:
        """:meth:`weak_aus` as the CSV and the streams name AUs (``AU01``, ``AU10``)."""
        return tuple(au_column(a) for a in self.weak_aus())

    def trained(self, head: str) -> bool:
        info = self.heads.get(head)
        return bool(info and info.trained)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "backbone": self.backbone,
            "model_file": MODEL_FILE,
            "preprocess": self.preprocess.to_dict(),
            "expressions": list(self.expressions),
            "aus": list(self.aus),
            "heads": {k: v.to_dict() for k, v in self.heads.items()},
            "au_thresholds": [float(t) for t in self.au_thresholds],
            "metrics": self.metrics,
            "training": self.training,
            "notes": self.notes,
            **({"tta": self.tta} if self.tta else {}),
            **({"version": self.version} if self.version else {}),
            **({"au_f1": self.au_f1, "au_f1_data": self.au_f1_data} if self.au_f1 else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        try:
            heads = {
                k: HeadInfo(
                    trained=bool(v.get("trained", True)),
                    data=str(v.get("data", "")),
                    classes_seen=v.get("classes_seen"),
                )
                for k, v in data.get("heads", {}).items()
            }
            if data.get("tta"):
                TTA.from_dict(data["tta"])  # validates the views
            return cls(
                name=str(data.get("name", "liveaffect-mtl")),
                backbone=str(data.get("backbone", "unknown")),
                preprocess=PreprocessSpec.from_dict(data.get("preprocess", {})),
                expressions=list(data.get("expressions", EXPRESSIONS)),
                aus=list(data.get("aus", AUS)),
                heads=heads or {h: HeadInfo(trained=True) for h in HEADS},
                au_thresholds=[float(t) for t in data.get("au_thresholds", [0.5] * NUM_AUS)],
                metrics=dict(data.get("metrics", {})),
                training=dict(data.get("training", {})),
                notes=str(data.get("notes", "")),
                tta=dict(data.get("tta", {})),
                version=str(data.get("version") or ""),
                au_f1={str(k): float(v) for k, v in dict(data.get("au_f1") or {}).items()},
                au_f1_data=str(data.get("au_f1_data") or ""),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise BundleError(f"invalid model card: {exc}") from exc

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


class Bundle:
    """A model with its card. ``outputs`` maps head name -> output index.

    A bundle from :func:`open_bundle` has its card now and loads its Keras model (and with
    it ``outputs``) on first use of either, so that a caller which never needs Keras -- the
    TFLite engine with a warm cache -- never imports TensorFlow (about 10 s and 600 MB).

    Raises:
        BundleError: on first use of ``model`` or ``outputs`` of an opened bundle whose
            ``.keras`` file is corrupt or does not match its card.
    """

    def __init__(
        self,
        model: Any,
        card: ModelCard,
        path: str | os.PathLike,
        outputs: dict[str, int],
        model_file: str | os.PathLike | None = None,
    ) -> None:
        self.card = card
        self.path = Path(path)
        self._model, self._outputs = model, outputs
        self._model_file = Path(model_file) if model_file is not None else None
        self._deferred = False

    @classmethod
    def deferred(cls, card: ModelCard, path: str | os.PathLike, model_file: Path) -> Bundle:
        """A bundle whose Keras model ``model_file`` loads on first use."""
        bundle = cls(None, card, path, {}, model_file)
        bundle._deferred = True
        return bundle

    @property
    def loaded(self) -> bool:
        """Whether the Keras model is in memory (False until an opened bundle needs it)."""
        return not self._deferred

    @property
    def model(self) -> Any:
        self._load()
        return self._model

    @property
    def outputs(self) -> dict[str, int]:
        self._load()
        return self._outputs

    @property
    def model_file(self) -> Path:
        if self._model_file is not None:
            return self._model_file
        return self.path / MODEL_FILE if self.path.is_dir() else self.path

    def model_sha256(self) -> str:
        """SHA-256 of the ``.keras`` file (what the TFLite cache is keyed by), in hex."""
        return file_sha256(self.model_file)

    def _load(self) -> None:
        if self._deferred:
            self._model, self._outputs = _load_model(self.model_file, self.card)
            self._deferred = False


def resolve_model_path(path: str | os.PathLike) -> tuple[Path, Path | None]:
    """Return (keras file, card file or None) for a bundle dir or a ``.keras`` file."""
    p = Path(path)
    if p.is_dir():
        model_file = p / MODEL_FILE
        if not model_file.exists():
            candidates = sorted(p.glob("*.keras"))
            if not candidates:
                raise BundleError(f"{p}: no {MODEL_FILE} (and no other .keras file) in this folder")
            model_file = candidates[0]
        card = p / CARD_FILE
        return model_file, card if card.exists() else None
    if p.is_file():
        if p.suffix != ".keras":
            raise BundleError(f"{p}: not a .keras model file or a bundle folder")
        card = p.parent / CARD_FILE
        return p, card if card.exists() and p.name == MODEL_FILE else None
    raise BundleError(f"{p}: no such model file or bundle folder")


def model_files(path: str | os.PathLike) -> list[Path]:
    """The files a model path is read from (its ``.keras`` file and card), which no output
    may overwrite; empty when ``path`` is not a model (that is reported elsewhere)."""
    try:
        model_file, card = resolve_model_path(path)
    except BundleError:
        return []
    return [model_file] if card is None else [model_file, card]


def map_outputs(model: Any) -> dict[str, int]:
    """Find which model output is expr/va/au: by layer name first, then by width."""
    names = [str(n).split("/")[0] for n in model.output_names]
    shapes = [tuple(t.shape) for t in model.outputs]
    found: dict[str, int] = {}
    for i, name in enumerate(names):
        for head in HEADS:
            if name == head or name.startswith(head + "_") or name.endswith("_" + head):
                found.setdefault(head, i)
    for i, shape in enumerate(shapes):
        if i in found.values() or len(shape) != 2:
            continue
        for head, width in HEAD_WIDTHS.items():
            if head not in found and shape[-1] == width:
                found[head] = i
                break
    for head, i in found.items():
        if shapes[i][-1] != HEAD_WIDTHS[head]:
            raise BundleError(
                f"output {names[i]!r} for {head} has width {shapes[i][-1]}, "
                f"expected {HEAD_WIDTHS[head]}"
            )
    if not found:
        raise BundleError(
            f"no expr/va/au output found (outputs: {list(zip(names, shapes, strict=True))})"
        )
    return found


def with_head_outputs(model: Any, outputs: dict[str, int]) -> tuple[Any, dict[str, int]]:
    """The model with its outputs as a dict keyed ``expr``/``va``/``au``, as trained bundles are.

    A functional model whose outputs are a list (or named otherwise) is wrapped, sharing its
    layers and weights, so that every consumer (Keras and TFLite engines, ``bench``,
    ``export``) reads the heads by name. A model already shaped so is returned as is.
    """
    names = [str(n).split("/")[0] for n in model.output_names]
    try:
        structure = model.output
    except (AttributeError, ValueError):  # not a functional model
        structure = None
    if isinstance(structure, dict) and set(structure) == set(outputs):
        return model, outputs
    import keras

    order = sorted(outputs, key=outputs.get)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    try:
        heads = {  # output layers named by head, so output_names == the dict's keys
            h: model.outputs[outputs[h]]
            if names[outputs[h]] == h
            else keras.layers.Identity(name=h)(model.outputs[outputs[h]])
            for h in order
        }
        wrapped = keras.Model(inputs, heads, name=model.name)
    except (ValueError, TypeError, AttributeError) as exc:  # e.g. a subclassed model
        raise BundleError(
            f"cannot read the outputs {names} of {model.name!r} by head; save a functional "
            "model whose outputs are named expr/va/au"
        ) from exc
    return wrapped, map_outputs(wrapped)


def card_for_plain_model(model: Any, outputs: dict[str, int]) -> ModelCard:
    """A conservative card for a ``.keras`` trained elsewhere: 0..255 RGB input."""
    shape = tuple(model.inputs[0].shape)
    h, w = int(shape[1] or 224), int(shape[2] or 224)
    channels = int(shape[3] or 3)
    spec = PreprocessSpec(input_size=(h, w), color="gray" if channels == 1 else "rgb")
    heads = {h_: HeadInfo(trained=h_ in outputs, data="unknown (plain .keras)") for h_ in HEADS}
    return ModelCard(name=Path(str(model.name)).name, preprocess=spec, heads=heads)


def read_card(card_file: Path | None) -> ModelCard | None:
    """The card in ``card_file`` (None: no card, None back); no Keras, no TensorFlow.

    Raises:
        BundleError: the file cannot be read, is not JSON, or is not a valid card.
    """
    if card_file is None:
        return None
    try:
        text = card_file.read_text()
    except OSError as exc:
        raise BundleError(f"{card_file}: cannot read the card ({exc.strerror or exc})") from exc
    try:
        return ModelCard.from_dict(json.loads(text))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{card_file}: not valid JSON ({exc})") from exc
    except BundleError as exc:
        raise BundleError(f"{card_file}: {exc}") from exc


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, in hex, read once per version of the file in a process.

    The engine choice, the TFLite cache and the stream outlets each ask for the model file's
    digest at start-up; the file is hashed again only when its inode, size, modification or
    status-change time differs (any write moves the last, which no program can set back).
    """
    st = os.stat(path)
    version = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return _sha256_of(str(Path(path).resolve()), version)


@functools.lru_cache(maxsize=32)
def _sha256_of(path: str, version: tuple[int, ...]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_model(
    model_file: Path, card: ModelCard | None, compile: bool = False
) -> tuple[Any, dict[str, int]]:
    """The Keras model in ``model_file`` with its head outputs, checked against ``card``
    (None: no card); heads the model lacks are marked untrained in ``card``."""
    import keras  # deferred: TensorFlow start-up is slow

    from liveaffect.model import custom_objects

    if not zipfile.is_zipfile(model_file):
        # Keras says "File not found ... accessible .keras zip file" for a file that exists.
        size = model_file.stat().st_size
        raise BundleError(
            f"{model_file}: cannot load the model (not a .keras zip archive: the file "
            f"({size:,} bytes) is truncated or corrupt; copy or export it again)"
        )
    try:
        model = keras.saving.load_model(
            model_file, compile=compile, custom_objects=custom_objects(), safe_mode=True
        )
    except Exception as exc:  # keras raises many types for a corrupt file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BundleError(f"{model_file}: cannot load the model ({reason[:200]})") from exc
    outputs = map_outputs(model)
    model, outputs = with_head_outputs(model, outputs)
    if card is not None:
        shape = tuple(model.inputs[0].shape)
        if tuple(shape[1:4]) != tuple(card.preprocess.input_shape):
            raise BundleError(
                f"{model_file}: model input {shape[1:]} does not match the card's "
                f"{card.preprocess.input_shape}"
            )
        for head in HEADS:
            if head not in outputs:
                card.heads[head] = HeadInfo(trained=False, data="the model has no such output")
    return model, outputs


def load_bundle(path: str | os.PathLike, compile: bool = False) -> Bundle:
    """Load a bundle folder or a plain multi-task ``.keras`` file, Keras model included.

    Raises:
        BundleError: missing, corrupt, or not a model with expr/va/au outputs.
    """
    model_file, card_file = resolve_model_path(path)
    card = read_card(card_file)
    model, outputs = _load_model(model_file, card, compile)
    if card is None:
        card = card_for_plain_model(model, outputs)
    return Bundle(model=model, card=card, path=Path(path), outputs=outputs, model_file=model_file)


def open_bundle(path: str | os.PathLike) -> Bundle:
    """Open a bundle folder or ``.keras`` file, reading its card now and its Keras model on
    first use (:class:`Bundle`): what the live app and ``analyze`` call, whose TFLite engine
    needs no Keras once its cache is built. A ``.keras`` file without a card loads at once
    (its card is made from the model).

    Raises:
        BundleError: missing model file, or an unreadable card (a corrupt model: on first use).
    """
    model_file, card_file = resolve_model_path(path)
    card = read_card(card_file)
    if card is None:
        return load_bundle(path)
    return Bundle.deferred(card, path, model_file)


def save_bundle(model: Any, card: ModelCard, out_dir: str | os.PathLike) -> Path:
    """Write ``model.keras`` and ``card.json`` into ``out_dir`` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (MODEL_FILE + ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, out / MODEL_FILE)
    card.save(out / CARD_FILE)
    return out
