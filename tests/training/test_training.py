"""Training end to end on synthetic faces with learnable cues (tests/synthetic.py).

Checks: a short run's loss falls and it leaves the bundle, log, curves, config and a card
with the right heads; a head without labels is marked untrained; masked labels teach
nothing (and the same check fails when the masks are made to leak); an interrupted run
resumes at the next epoch from the checkpoint's weights and refuses another config;
with the default task balance every head of the seed's fusion head beats its prior.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from synthetic import write_synthetic_set

from liveaffect.bundle import load_bundle
from liveaffect.data.dataset import AugmentConfig, augmenter, decode_all, label_arrays
from liveaffect.data.io import DatasetError
from liveaffect.data.loaders import load_records
from liveaffect.evaluation.metrics import ccc as ccc_score
from liveaffect.evaluation.metrics import tune_au_thresholds
from liveaffect.evaluation.result import evaluate_arrays
from liveaffect.labels import EXPRESSIONS, NUM_AUS
from liveaffect.model.mtl import HeadConfig, ModelConfig
from liveaffect.training.config import (
    DataConfig,
    RunConfig,
    SourceSpec,
    TrainConfig,
    config_from_dict,
    load_config,
)
from liveaffect.training.monitor import predict_arrays
from liveaffect.training.state import TrainState
from liveaffect.training.train import TrainingError, preprocess_spec, train

SIZE = 32
QUIET = {"verbose": 0, "progress": False}
SMALL_HEAD = HeadConfig(attention_heads=1, attention_key_dim=8, shared_units=32, branch_units=0)
LIGHT_HEAD = HeadConfig(
    attention_heads=1, attention_key_dim=16, dropout_in=0.0, dropout=0.2, shared_units=64
)
# The expression cue is a quadrant, so no flips (in training or validation). Brightness
# jitter only: an augmentation with every option off is not accepted by the pipeline.
AUGMENT = AugmentConfig(flip=False, rotation_deg=0, zoom=0, shift=0, brightness=0.02, contrast=0)
MISSING = {"expr": 0.2, "va": 0.2, "au": 0.2, "au_cell": 0.1}
FOUR_CLASSES = list(EXPRESSIONS[:4])


def csv_source(folder: Path) -> SourceSpec:
    return SourceSpec(path=str(folder / "labels.csv"))


def make_cfg(train_dir, val_dir, backbone="tiny", widths=(8, 16, 32, 64), head=SMALL_HEAD, **tr):
    options = {"epochs": 3, "batch_size": 32, "tta_flip": False, "early_stopping_patience": 50}
    return RunConfig(
        name="synthetic-test",
        model=ModelConfig(backbone=backbone, input_size=SIZE, widths=widths, head=head),
        data=DataConfig(train=[csv_source(train_dir)], validation=[csv_source(val_dir)]),
        train=TrainConfig(**{**options, **tr}),
        augment=AUGMENT,
    )


def head_outputs(bundle, x) -> dict[str, np.ndarray]:
    """A loaded bundle's outputs by head name (dict or list models alike)."""
    out = bundle.model(x, training=False)
    if isinstance(out, dict):
        out = [out[name] for name in bundle.model.output_names]
    return {head: np.asarray(out[i]) for head, i in bundle.outputs.items()}


def valence_ccc(bundle: Path, cfg: RunConfig, val_dir: Path, tta) -> float:
    """The bundle's valence CCC on the validation set in ``val_dir``, averaged over ``tta``."""
    spec = preprocess_spec(cfg)
    val = load_records(str(val_dir / "labels.csv"))
    images, labels = decode_all(val, spec, 2, False), label_arrays(val)
    pred = predict_arrays(load_bundle(bundle).model, images, spec, tta)["va"]
    mask = labels["va"][:, 0] > -2
    return ccc_score(labels["va"][mask, 0], pred[mask, 0])


def log_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_set(root / "train", n=160, size=SIZE, missing=MISSING, seed=0)
    write_synthetic_set(root / "val", n=48, size=SIZE, missing={"expr": 0.1}, seed=1)
    return {"train": root / "train", "val": root / "val", "root": root}


@pytest.fixture(scope="module")
def tiny_run(sets, tmp_path_factory) -> tuple[RunConfig, Path, Path]:
    cfg = make_cfg(sets["train"], sets["val"], tta_scales=[1.0, 0.8])
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    bundle = train(cfg, run_dir, command="pytest tiny run", **QUIET)
    return cfg, run_dir, bundle


# ------------------------------------------------------------------ the synthetic faces
def test_synthetic_faces_carry_their_cues():
    from synthetic import SyntheticFace, au_centers, draw_face

    rng = np.random.default_rng(0)
    for q in range(4):
        au = tuple(int(k in (0, 5, 11)) for k in range(NUM_AUS))
        img = draw_face(SyntheticFace(expr=q, va=(0.5, -0.5), au=au), SIZE, rng)
        red = img[..., 0].astype(float)
        h = SIZE // 2
        quadrants = [red[:h, :h], red[:h, h:], red[h:, :h], red[h:, h:]]
        assert int(np.argmax([m.mean() for m in quadrants])) == q
        for k, (x, y) in enumerate(au_centers(SIZE)):
            assert (img[y, x, 1] == 235) == bool(au[k]), k
    strong = draw_face(SyntheticFace(0, (0.9, -0.9), (0,) * NUM_AUS), SIZE, rng)[..., 2]
    weak = draw_face(SyntheticFace(0, (-0.9, -0.9), (0,) * NUM_AUS), SIZE, rng)[..., 2]
    assert strong.std() > weak.std() + 10  # valence = strength of the stripes


def test_synthetic_sets_are_reproducible_and_mask_labels(tmp_path):
    a = write_synthetic_set(tmp_path / "a", n=60, size=SIZE, missing=MISSING, seed=4)
    b = write_synthetic_set(tmp_path / "b", n=60, size=SIZE, missing=MISSING, seed=4)
    assert a.read_text() == b.read_text()
    assert (a.parent / "face_00007.png").read_bytes() == (b.parent / "face_00007.png").read_bytes()
    records = load_records(str(a))
    assert len(records) == 60
    assert 0 < sum(not r.has_expr for r in records) < 30
    assert 0 < sum(not r.has_va for r in records) < 30
    assert any(r.au is not None and -1 in r.au for r in records)
    assert {r.expr for r in records if r.has_expr} == {0, 1, 2, 3}


# ------------------------------------------------------------------ a short run
@pytest.mark.slow
def test_the_loss_falls_and_every_epoch_is_logged(tiny_run):
    _, run_dir, _ = tiny_run
    rows = log_rows(run_dir)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    for key in ("expr_loss", "va_loss", "au_loss", "val_score", "val_expr_macro_f1"):
        assert key in rows[0], key
    for key in ("val_va_ccc_mean", "val_au_mean_f1", "val_expr_accuracy"):
        assert np.isfinite(float(rows[-1][key])), key


@pytest.mark.slow
def test_the_run_folder_holds_everything(tiny_run):
    cfg, run_dir, bundle = tiny_run
    assert bundle == run_dir / "bundle"
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_config(run_dir / "config.yaml").to_dict() == cfg.to_dict()
    for name in ("last.keras", "best.keras", "state.json"):
        assert (run_dir / "checkpoints" / name).is_file(), name
    state = json.loads((run_dir / "checkpoints" / "state.json").read_text())
    assert state["finished"] and state["epoch_done"] == 3 and 1 <= state["best_epoch"] <= 3


@pytest.mark.slow
def test_the_card_says_what_was_trained_and_how_well(tiny_run, sets):
    cfg, _, bundle = tiny_run
    card = json.loads((bundle / "card.json").read_text())
    heads = card["heads"]
    assert heads["expr"]["trained"] and heads["va"]["trained"] and heads["au"]["trained"]
    assert heads["expr"]["classes_seen"] == FOUR_CLASSES
    n_train = len(load_records(str(sets["train"] / "labels.csv")))
    assert card["training"]["faces"] == {"train": n_train, "validation": 48}
    assert card["training"]["command"] == "pytest tiny run"
    assert card["training"]["config"] == cfg.to_dict()
    metrics = card["metrics"]["validation_during_training"]
    for value in (
        metrics["expr"]["macro_f1"],
        metrics["expr"]["accuracy"],
        metrics["va"]["ccc_valence"],
        metrics["va"]["ccc_arousal"],
        metrics["au"]["mean_f1"],
        metrics["mtl_score"],
    ):
        assert value is not None
    assert card["preprocess"]["input_size"] == [SIZE, SIZE]
    # validation averaged the configured test-time views, and the card tells evaluate/the app
    assert card["tta"] == {"flip": False, "scales": [1.0, 0.8]}
    ccc = metrics["va"]["ccc_valence"]
    assert ccc == pytest.approx(valence_ccc(bundle, cfg, sets["val"], cfg.train.tta), abs=1e-4)
    assert ccc != pytest.approx(valence_ccc(bundle, cfg, sets["val"], False), abs=1e-4)
    out = head_outputs(load_bundle(bundle), np.zeros((2, SIZE, SIZE, 3), np.float32))
    assert out["au"].shape == (2, NUM_AUS)


def test_epochs_picked_on_fewer_views_are_scored_again_on_all(sets, tmp_path):
    cfg = make_cfg(
        sets["train"],
        sets["val"],
        epochs=2,
        tta_scales=[1.0, 0.8],
        select_scales=[1.0],
        select_accuracy_weight=0.5,
    )
    bundle = train(cfg, tmp_path / "run", **QUIET)
    # the epoch score is the ABAW partial sum plus half the expression accuracy
    for row in log_rows(tmp_path / "run"):
        terms = [float(row[k]) for k in ("val_expr_macro_f1", "val_va_ccc_mean", "val_au_mean_f1")]
        abaw = sum(t for t in terms if not np.isnan(t))
        want = abaw + 0.5 * float(row["val_expr_accuracy"])
        assert float(row["val_score"]) == pytest.approx(want, abs=1e-5)
        assert float(row["val_expr_accuracy"]) > 0
    card = json.loads((bundle / "card.json").read_text())
    assert card["tta"] == {"flip": False, "scales": [1.0, 0.8]}
    picked = card["metrics"]["validation_during_training"]["va"]["ccc_valence"]
    final = card["metrics"]["validation"]["va"]["ccc_valence"]
    assert picked == pytest.approx(
        valence_ccc(bundle, cfg, sets["val"], cfg.train.select_tta), abs=1e-4
    )
    assert final == pytest.approx(valence_ccc(bundle, cfg, sets["val"], cfg.train.tta), abs=1e-4)
    assert final != pytest.approx(picked, abs=1e-4)
    assert "2 views" in card["metrics"]["validation_note"]
    with pytest.raises(ValueError, match="select_scales"):
        TrainConfig(select_scales=[0.1])
    with pytest.raises(ValueError, match="select_accuracy_weight"):
        TrainConfig(select_accuracy_weight=-1)


def test_bundle_epoch_last_ships_the_final_epoch_not_the_best(sets, tmp_path, monkeypatch):
    import keras

    from liveaffect.model import custom_objects
    from liveaffect.training import monitor

    scores = iter([3.0, 2.0, 1.0])  # epoch 1 scores best, so best and last differ
    monkeypatch.setattr(
        monitor, "selection_score", lambda res, weight=0.0, trained=None: next(scores)
    )
    cfg = make_cfg(sets["train"], sets["val"], epochs=3, bundle_epoch="last")
    run_dir = tmp_path / "run"
    bundle = train(cfg, run_dir, **QUIET)
    assert TrainState.load(run_dir).best_epoch == 1

    def weights(path):
        model = keras.saving.load_model(path, compile=False, custom_objects=custom_objects())
        return model.get_weights()

    shipped = load_bundle(bundle).model.get_weights()
    last, best = (
        weights(run_dir / "checkpoints/last.keras"),
        weights(run_dir / "checkpoints/best.keras"),
    )
    for got, want in zip(shipped, last, strict=True):
        np.testing.assert_array_equal(got, want)
    assert any(not np.array_equal(a, b) for a, b in zip(shipped, best, strict=True))
    card = json.loads((bundle / "card.json").read_text())
    assert card["training"]["bundle_epoch"] == 3 and card["training"]["best_epoch"] == 1
    assert "last epoch" in card["metrics"]["note"]
    # the card's validation numbers are the shipped epoch's, scored again
    got = card["metrics"]["validation_during_training"]["va"]["ccc_valence"]
    want = valence_ccc(bundle, cfg, sets["val"], cfg.train.select_tta)
    assert got == pytest.approx(want, abs=1e-4)
    with pytest.raises(ValueError, match="bundle_epoch"):
        TrainConfig(bundle_epoch="median")


@pytest.mark.slow
def test_a_finished_run_is_not_trained_again(tiny_run):
    cfg, run_dir, bundle = tiny_run
    before = (run_dir / "log.csv").read_text()
    assert train(cfg, run_dir, **QUIET) == bundle
    assert (run_dir / "log.csv").read_text() == before


def test_a_head_without_labels_is_marked_untrained(sets, tmp_path, monkeypatch):
    """Also: the training step is traced once (the optimizer's slots and the loss trackers
    exist before ``fit``; a step that creates them is traced twice), and the zero-filled
    sample that builds the trackers counts in no logged loss (its AU labels are 0, not
    missing, so it would show in ``au_loss``)."""
    import keras

    traced = []
    step = keras.Model.train_step

    def counted(self, data):
        traced.append(1)
        return step(self, data)

    monkeypatch.setattr(keras.Model, "train_step", counted)
    no_au = write_synthetic_set(tmp_path / "no_au", n=40, size=SIZE, missing={"au": 1.0}, seed=5)
    cfg = make_cfg(no_au.parent, sets["val"], epochs=1)
    card = json.loads((train(cfg, tmp_path / "run", **QUIET) / "card.json").read_text())
    assert len(traced) == 1
    assert not card["heads"]["au"]["trained"]
    assert card["heads"]["au"]["data"] == "no action-unit labels"
    assert card["heads"]["expr"]["trained"] and card["heads"]["va"]["trained"]
    assert all(float(r["au_loss"]) == 0.0 for r in log_rows(tmp_path / "run"))
    # the validation set has AU labels, but the untrained head's F1 is noise: not shown
    shown = card["metrics"]["validation_during_training"]
    assert shown["au"]["not_trained"] and shown["mtl_partial"] is None
    assert shown["expr"]["accuracy"] is not None
    assert all(r["val_au_mean_f1"] == "nan" for r in log_rows(tmp_path / "run"))


def test_training_prints_no_keras_warning_about_shuffle(sets, tmp_path):
    # fit's default shuffle=True cannot apply to a tf.data.Dataset (which shuffles itself);
    # Keras said so in a UserWarning on every run and every resume
    import warnings

    cfg = make_cfg(sets["train"], sets["val"], epochs=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(cfg, tmp_path / "run", **QUIET)
    assert not [w for w in caught if "shuffle" in str(w.message)]


# ------------------------------------------------------------------ masking
def _leak_masks(monkeypatch) -> None:
    """Make the losses forget their masks: a missing class becomes class 0 (Neutral),
    a missing valence/arousal becomes (-1, -1)."""
    from keras import ops

    from liveaffect.model.losses import MaskedCCCLoss, MaskedExpressionLoss

    expr_call, va_call = MaskedExpressionLoss.call, MaskedCCCLoss.call

    def expr_leak(self, y_true, y_pred):
        return expr_call(self, ops.maximum(ops.cast(y_true, "int32"), 0), y_pred)

    def va_leak(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        return va_call(self, ops.where(y_true < -2.0, -1.0, y_true), y_pred)

    monkeypatch.setattr(MaskedExpressionLoss, "call", expr_leak)
    monkeypatch.setattr(MaskedCCCLoss, "call", va_leak)


@pytest.mark.slow
@pytest.mark.parametrize("leak", [False, True], ids=["masked", "leaking"])
def test_masked_labels_teach_nothing(leak, sets, tmp_path, monkeypatch):
    """Half the faces lose their expression and half their valence/arousal, but every
    image still shows its cues. Masked labels must not pull the heads anywhere: the
    expression and valence/arousal heads then learn the cues. The same run with leaking
    masks (missing = Neutral, missing VA = -1) is caught by the same thresholds."""
    half = write_synthetic_set(
        tmp_path / "half", n=200, size=SIZE, missing={"expr": 0.5, "va": 0.5}, seed=7
    )
    if leak:
        _leak_masks(monkeypatch)
    cfg = make_cfg(
        half.parent,
        sets["val"],
        backbone="cnn",
        head=LIGHT_HEAD,
        epochs=8,
        loss_weights={"expr": 1.0, "va": 1.0, "au": 0.0},
    )
    card = json.loads((train(cfg, tmp_path / "run", **QUIET) / "card.json").read_text())
    metrics = card["metrics"]["validation_during_training"]
    f1, ccc = metrics["expr"]["macro_f1"], metrics["va"]["ccc_mean"]
    learned = f1 >= 0.8 and ccc >= 0.5
    assert learned != leak, f"leak={leak}: expression macro-F1 {f1:.3f}, VA CCC {ccc:.3f}"


# ------------------------------------------------------------------ every head learns
AU_RATES = np.linspace(0.1, 0.3, NUM_AUS)


def _scores(records, expr_probs, va_preds, au_probs, au_thresholds):
    lab = label_arrays(records)
    res = evaluate_arrays(
        lab["expr"],
        expr_probs,
        lab["va"],
        va_preds,
        lab["au"].astype(int),
        au_probs,
        au_thresholds,
    )
    return {"expr": res.expr.macro_f1, "va": res.va.ccc_mean, "au": res.au.mean_f1}


@pytest.mark.slow
def test_every_head_learns_with_the_seed_head(tmp_path):
    """The seed's fusion head (attention, dropout 0.7, shared dense, branches) on the
    ``cnn`` backbone with the default task balance (AU loss weight 5, automatic AU
    positive weights, batch-norm momentum 0.9): each head beats its prior clearly.

    Priors: the training majority class; a constant valence/arousal (CCC 0); constant
    AU probabilities at the training rates with thresholds tuned like the model's. AU
    thresholds are tuned on the validation set, scores are taken on a third set.
    On this test set the old balance (AU loss weight 1, Keras' batch-norm momentum
    0.99) left the AU head at its prior (mean F1 0.32, prior 0.33; expression macro-F1
    0.70, VA CCC 0.39); the defaults give 1.00 / 0.92 / 0.73.
    """
    missing = {"expr": 0.15, "va": 0.15, "au": 0.15, "au_cell": 0.05}
    write_synthetic_set(tmp_path / "train", 300, SIZE, au_rate=AU_RATES, missing=missing, seed=11)
    write_synthetic_set(tmp_path / "val", 120, SIZE, au_rate=AU_RATES, seed=12)
    write_synthetic_set(tmp_path / "test", 120, SIZE, au_rate=AU_RATES, seed=13)
    cfg = make_cfg(
        tmp_path / "train",
        tmp_path / "val",
        backbone="cnn",
        widths=(16, 32, 64, 128),
        head=HeadConfig(),
        epochs=20,
        early_stopping_patience=20,
    )
    assert cfg.model.head.dropout == 0.7 and cfg.model.head.attention_heads == 4
    bundle = load_bundle(train(cfg, tmp_path / "run", **QUIET))

    spec = preprocess_spec(cfg)
    sets = {k: load_records(str(tmp_path / k / "labels.csv")) for k in ("train", "val", "test")}
    preds = {
        k: predict_arrays(bundle.model, decode_all(sets[k], spec, 2, False), spec, False)
        for k in ("val", "test")
    }
    thresholds = tune_au_thresholds(preds["val"]["au"], label_arrays(sets["val"])["au"])
    model = _scores(sets["test"], *(preds["test"][h] for h in ("expr", "va", "au")), thresholds)

    train_lab = label_arrays(sets["train"])
    majority = np.bincount(train_lab["expr"][train_lab["expr"] >= 0]).argmax()
    au = train_lab["au"]
    rate = np.array([(au[:, k] == 1).sum() / (au[:, k] >= 0).sum() for k in range(NUM_AUS)])

    def constant(records):
        n = len(records)
        return np.eye(8)[[majority] * n], np.zeros((n, 2)), np.tile(rate, (n, 1))

    prior_thresholds = tune_au_thresholds(constant(sets["val"])[2], label_arrays(sets["val"])["au"])
    prior = _scores(sets["test"], *constant(sets["test"]), prior_thresholds)
    summary = ", ".join(f"{h} {model[h]:.3f} (prior {prior[h]:.3f})" for h in model)
    print(f"test set: {summary}")
    assert model["expr"] >= prior["expr"] + 0.5, summary
    assert model["va"] >= prior["va"] + 0.5, summary
    assert model["au"] >= prior["au"] + 0.3, summary


# ------------------------------------------------------------------ resume
class Interrupted(Exception):
    """Stands for a killed process."""


@pytest.mark.slow
def test_an_interrupted_run_resumes_at_the_next_epoch(sets, tmp_path):
    import keras

    class StopAtSecondEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise Interrupted

    class Recorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs, self.weights, self.iterations = [], None, None

        def on_train_begin(self, logs=None):
            self.weights = [np.array(w) for w in self.model.get_weights()]
            self.iterations = int(self.model.optimizer.iterations.numpy())

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append(epoch)

    cfg = make_cfg(sets["train"], sets["val"], epochs=3)
    run_dir = tmp_path / "run"
    with pytest.raises(Interrupted):
        train(cfg, run_dir, extra_callbacks=[StopAtSecondEpoch()], **QUIET)
    state = json.loads((run_dir / "checkpoints" / "state.json").read_text())
    assert state["epoch_done"] == 1 and not state.get("finished")
    assert state["train_seconds"] > 0  # the stopped session's finished epoch is counted
    first_session = state["train_seconds"]
    assert len(log_rows(run_dir)) == 1
    epoch1 = tmp_path / "epoch1.keras"
    shutil.copy(run_dir / "checkpoints" / "last.keras", epoch1)

    other = replace(cfg, train=replace(cfg.train, learning_rate=0.01))
    with pytest.raises(TrainingError, match="different config"):
        train(other, run_dir, **QUIET)

    recorder = Recorder()
    train(cfg, run_dir, extra_callbacks=[recorder], **QUIET)
    assert recorder.epochs == [1, 2]
    saved = keras.saving.load_model(epoch1, compile=False).get_weights()
    assert len(saved) == len(recorder.weights)
    for got, want in zip(recorder.weights, saved, strict=True):
        np.testing.assert_array_equal(got, want)
    steps = int(np.ceil(len(load_records(str(sets["train"] / "labels.csv"))) / 32))
    assert recorder.iterations == steps  # the optimizer state came back too
    assert [int(r["epoch"]) for r in log_rows(run_dir)] == [0, 1, 2]
    state = json.loads((run_dir / "checkpoints" / "state.json").read_text())
    assert state["finished"] and state["train_seconds"] > first_session
    card = json.loads((run_dir / "bundle" / "card.json").read_text())
    assert card["training"]["train_seconds"] == pytest.approx(state["train_seconds"], abs=0.1)


def test_a_resume_with_another_config_is_refused_before_any_work(sets, tmp_path):
    cfg = make_cfg(sets["train"], sets["val"], epochs=1)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    cfg.save(tmp_path / "run" / "config.yaml")
    (tmp_path / "run" / "checkpoints" / "state.json").write_text('{"epoch_done": 1}')
    (tmp_path / "run" / "checkpoints" / "last.keras").write_bytes(b"")
    other = config_from_dict({**cfg.to_dict(), "name": "another"})
    with pytest.raises(TrainingError, match="different config"):
        train(other, tmp_path / "run", **QUIET)


# ------------------------------------------------------------------ ensembles
def _records(videos: dict[str, int]) -> list:
    from liveaffect.data.records import Record

    return [
        Record(path=f"{v}/{i}.png", expr=i % 4, video=v)
        for v, n in videos.items()
        for i in range(n)
    ]


def test_members_get_disjoint_recordings_of_similar_size():
    from liveaffect.data.splits import split_into_parts

    split_members = split_into_parts
    records = _records({f"vid{i}": n for i, n in enumerate([30, 5, 8, 12, 3, 3, 20, 9, 1, 7])})
    parts = split_members(records, 3, seed=0)
    assert sorted(r.path for p in parts for r in p) == sorted(r.path for r in records)
    videos = [{r.video for r in p} for p in parts]
    assert all(not (a & b) for i, a in enumerate(videos) for b in videos[i + 1 :])
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 8, sizes
    assert [[r.path for r in p] for p in split_members(records, 3, seed=0)] == [
        [r.path for r in p] for p in parts
    ]
    with pytest.raises(ValueError, match="10 recordings cannot make 11"):
        split_members(records, 11)


def test_members_follow_the_seed_recipe_when_asked(capsys):
    from liveaffect.data.records import Record
    from liveaffect.training.ensemble import member_records

    rng = np.random.default_rng(0)
    records = [
        Record(
            path=f"f{i}.png",
            expr=int(rng.integers(8)),
            va=(0.1, 0.2),
            au=tuple(int(v) for v in rng.integers(0, 2, NUM_AUS)),
            video=f"v{i // 10}",
        )
        for i in range(400)
    ]
    cfg = config_from_dict(
        {"data": {"sampling": "seed", "recipe": {"pool_size": 300, "validation_size": 40}}}
    )
    members = member_records(cfg, records, [], 2)
    assert len(members) == 2
    train0, val0 = members[0]
    assert len(val0) == 40 and members[1][1] == val0
    assert not {r.path for r in train0} & {r.path for r in members[1][0]}
    assert not {r.path for r in train0} & {r.path for r in val0}
    report = capsys.readouterr().out
    assert "before" in report and "after" in report and "total" in report  # counts report


@pytest.mark.slow
def test_an_ensemble_bundle_averages_its_members(sets, tmp_path):
    from liveaffect.training.ensemble import train_ensemble

    cfg = make_cfg(sets["train"], sets["val"], epochs=1)
    bundle = train_ensemble(cfg, tmp_path / "ens", 2, command="pytest ensemble", **QUIET)
    assert bundle == tmp_path / "ens" / "bundle"
    ensemble = load_bundle(bundle)
    members = [load_bundle(tmp_path / "ens" / f"member_{i}" / "bundle") for i in range(2)]
    x = np.random.default_rng(0).uniform(0, 255, (5, SIZE, SIZE, 3)).astype(np.float32)
    got = head_outputs(ensemble, x)
    outs = [head_outputs(m, x) for m in members]
    for head in ("expr", "va", "au"):
        mean = (outs[0][head] + outs[1][head]) / 2.0
        np.testing.assert_allclose(got[head], mean, atol=1e-6)
    assert not np.allclose(outs[0]["va"], outs[1]["va"])

    card = json.loads((bundle / "card.json").read_text())
    listed = card["training"]["ensemble"]["members"]
    assert [m["path"] for m in listed] == ["member_0", "member_1"]
    n_train = len(load_records(str(sets["train"] / "labels.csv")))
    assert sum(m["faces"] for m in listed) == n_train  # disjoint and complete
    seconds = [m["train_seconds"] for m in listed]
    assert all(t > 0 for t in seconds)
    assert card["training"]["train_seconds"] == pytest.approx(sum(seconds), abs=0.11)
    assert card["training"]["faces"]["train"] == [m["faces"] for m in listed]
    assert all(card["heads"][h]["trained"] for h in ("expr", "va", "au"))
    assert card["metrics"]["validation"]["expr"]["macro_f1"] is not None

    # the same command again: every member has finished, nothing is retrained
    log = (tmp_path / "ens" / "member_1" / "log.csv").read_text()
    assert train_ensemble(cfg, tmp_path / "ens", 2, **QUIET) == bundle
    assert (tmp_path / "ens" / "member_1" / "log.csv").read_text() == log
    with pytest.raises(TrainingError, match="2 members, not 3"):
        train_ensemble(cfg, tmp_path / "ens", 3, **QUIET)
    # neither a single run nor an ensemble of another config writes into the folder
    before = {p: p.read_bytes() for p in (tmp_path / "ens").glob("*") if p.is_file()}
    with pytest.raises(TrainingError, match="holds an ensemble"):
        train(cfg, tmp_path / "ens", **QUIET)
    longer = make_cfg(sets["train"], sets["val"], epochs=2)
    with pytest.raises(TrainingError, match="ensemble trained with a different config"):
        train_ensemble(longer, tmp_path / "ens", 2, **QUIET)
    assert {p: p.read_bytes() for p in (tmp_path / "ens").glob("*") if p.is_file()} == before
    with pytest.raises(TrainingError, match="holds a single model's run"):
        train_ensemble(cfg, tmp_path / "ens" / "member_0", 2, **QUIET)


@pytest.mark.slow
def test_mixed_precision_trains_and_ships_a_float32_bundle(sets, tmp_path):
    import keras

    from liveaffect.model.export import convert_tflite, run_tflite

    cfg = make_cfg(sets["train"], sets["val"], epochs=1, mixed_precision="bfloat16")
    bundle_dir = train(cfg, tmp_path / "run", **QUIET)
    assert keras.mixed_precision.global_policy().name == "float32"  # reset afterwards
    bundle = load_bundle(bundle_dir)
    assert bundle.card.training["precision"] == "mixed bfloat16 (float32 weights)"
    policies = {layer.dtype_policy.name for layer in bundle.model.layers}
    assert policies == {"float32"}, policies
    x = np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    ref = head_outputs(bundle, x)
    got = run_tflite(convert_tflite(bundle.model, "fp32"), x)
    np.testing.assert_allclose(got["expr"], ref["expr"], atol=1e-5)
    with pytest.raises(ValueError, match="mixed_precision"):
        TrainConfig(mixed_precision="int4")
    with pytest.raises(ValueError, match="tta_scales"):
        TrainConfig(tta_scales=[0.1])


def test_random_erasing_paints_grey_rectangles_at_the_given_rate():
    off = dict(flip=False, rotation_deg=0, zoom=0, shift=0, brightness=0, contrast=0)
    x = np.zeros((400, 48, 48, 1), np.float32)
    out = np.asarray(augmenter(AugmentConfig(**off, erasing=0.5), seed=0)(x, training=True))
    grey = (out == 127.5).reshape(len(x), -1)
    # Nothing but the erased rectangles changes.
    assert np.all((out == 0) | (out == 127.5))
    erased = grey.any(axis=1)
    assert 0.4 < erased.mean() < 0.6
    area = grey[erased].mean(axis=1)
    assert area.min() >= 0.015 and area.max() <= 0.26
    # Each erased patch is one rectangle: its rows and columns span exactly its pixels.
    for mask in grey[erased][:20].reshape(-1, 48, 48):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert mask.sum() == len(rows) * len(cols)
    assert augmenter(AugmentConfig(**off, erasing=0.0)) is None
    with pytest.raises(ValueError, match="erasing"):
        AugmentConfig(erasing=1.5)


def test_degrade_augmentation_reaches_the_training_batches():
    from liveaffect.data.dataset import make_dataset
    from liveaffect.data.records import Record
    from liveaffect.preprocess import PreprocessSpec

    off = dict(flip=False, rotation_deg=0, zoom=0, shift=0, brightness=0, contrast=0)
    spec = PreprocessSpec(input_size=(48, 48), color="gray", normalization="none")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 48, 48, 1), dtype=np.uint8)
    records = [Record(path=f"{i}.png", expr=0) for i in range(64)]

    def batch(p):
        ds = make_dataset(records, spec, 64, True, AugmentConfig(**off, degrade=p), None, images)
        x, _ = next(iter(ds))
        return np.asarray(x)

    plain, degraded = batch(0.0), batch(1.0)
    # no degradation: the faces come through unchanged (shuffled), as 0..255 floats
    np.testing.assert_array_equal(np.sort(plain.ravel()), np.sort(images.ravel()))
    changed = np.abs(np.sort(degraded.reshape(64, -1), 1) - np.sort(plain.reshape(64, -1), 1))
    assert (changed.max(axis=1) > 0).mean() > 0.7
    with pytest.raises(ValueError, match="degrade"):
        AugmentConfig(degrade=2.0)


def test_the_degrade_mode_picks_the_function_the_batches_go_through(monkeypatch):
    from liveaffect.data import degrade
    from liveaffect.data.dataset import make_dataset
    from liveaffect.data.records import Record
    from liveaffect.preprocess import PreprocessSpec

    off = dict(flip=False, rotation_deg=0, zoom=0, shift=0, brightness=0, contrast=0)
    spec = PreprocessSpec(input_size=(48, 48), color="gray", normalization="none")
    images = np.random.default_rng(0).integers(1, 256, (16, 48, 48, 1), dtype=np.uint8)
    records = [Record(path=f"{i}.png", expr=0) for i in range(16)]
    monkeypatch.setitem(degrade.MODES, "single", lambda image, rng: np.zeros_like(image))
    for mode, all_black in (("single", True), ("chain", False)):
        augment = AugmentConfig(**off, degrade=1.0, degrade_mode=mode)
        x, _ = next(iter(make_dataset(records, spec, 16, True, augment, None, images)))
        assert bool(np.asarray(x).max() == 0) is all_black, mode


def test_the_degrade_kinds_reach_the_batches(monkeypatch):
    from liveaffect.data import degrade
    from liveaffect.data.dataset import make_dataset
    from liveaffect.data.records import Record
    from liveaffect.preprocess import PreprocessSpec

    seen = []

    def single(image, rng, weights=None):
        seen.append(weights)
        return image

    off = dict(flip=False, rotation_deg=0, zoom=0, shift=0, brightness=0, contrast=0)
    spec = PreprocessSpec(input_size=(48, 48), color="gray", normalization="none")
    images = np.random.default_rng(0).integers(1, 256, (8, 48, 48, 1), dtype=np.uint8)
    records = [Record(path=f"{i}.png", expr=0) for i in range(8)]
    monkeypatch.setitem(degrade.MODES, "single", single)
    kinds = {"blur": 1, "lowres": 1, "dark": 2}
    augment = AugmentConfig(**off, degrade=1.0, degrade_mode="single", degrade_kinds=kinds)
    next(iter(make_dataset(records, spec, 8, True, augment, None, images)))
    assert seen and all(w == (0.25, 0.25, 0.0, 0.5) for w in seen)


def test_degradations_start_at_the_epoch_the_config_names():
    from liveaffect.data.dataset import EpochClock, make_dataset
    from liveaffect.data.records import Record
    from liveaffect.preprocess import PreprocessSpec

    off = dict(flip=False, rotation_deg=0, zoom=0, shift=0, brightness=0, contrast=0)
    spec = PreprocessSpec(input_size=(48, 48), color="gray", normalization="none")
    images = np.random.default_rng(0).integers(0, 256, (32, 48, 48, 1), dtype=np.uint8)
    records = [Record(path=f"{i}.png", expr=0) for i in range(32)]
    clock = EpochClock()
    augment = AugmentConfig(**off, degrade=1.0, degrade_from=2)
    ds = make_dataset(records, spec, 32, True, augment, None, images, clock=clock)

    def faces_unchanged() -> bool:
        x = np.asarray(next(iter(ds))[0])
        return np.array_equal(np.sort(x.ravel()), np.sort(images.ravel()))

    for epoch, clean in ((0, True), (1, True), (2, False), (3, False)):
        clock.epoch = epoch
        assert faces_unchanged() == clean, epoch
    with pytest.raises(ValueError, match="EpochClock"):
        make_dataset(records, spec, 32, True, augment, None, images)


def test_epochs_before_the_degradations_are_never_picked(sets, tmp_path):
    cfg = make_cfg(sets["train"], sets["val"], epochs=3)
    cfg.augment = AugmentConfig(**{**cfg.augment.to_dict(), "degrade": 0.5, "degrade_from": 2})
    run_dir = tmp_path / "run"
    train(cfg, run_dir, command="pytest degrade_from", **QUIET)
    state = TrainState.load(run_dir)
    assert state.epoch_done == 3 and state.best_epoch == 3 and state.wait == 0
    assert len(log_rows(run_dir)) == 3
    with pytest.raises(ValueError, match="degrade_from"):
        RunConfig(train=TrainConfig(epochs=2), augment=AugmentConfig(degrade=0.5, degrade_from=2))


def test_init_from_starts_from_the_bundles_weights(tiny_run, sets, tmp_path):
    import keras

    _, _, start = tiny_run
    seen = {}

    class FirstWeights(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["weights"] = [w.copy() for w in self.model.get_weights()]

    cfg = make_cfg(sets["train"], sets["val"], epochs=1, init_from=str(start))
    train(cfg, tmp_path / "run", extra_callbacks=[FirstWeights()], **QUIET)
    expected = load_bundle(start).model.get_weights()
    assert len(seen["weights"]) == len(expected)
    for got, want in zip(seen["weights"], expected, strict=True):
        np.testing.assert_array_equal(got, want)

    other = make_cfg(sets["train"], sets["val"], epochs=1, init_from=str(start))
    other.model = ModelConfig(backbone="tiny", input_size=SIZE, head=LIGHT_HEAD)
    with pytest.raises(TrainingError, match="weight shapes differ"):
        train(other, tmp_path / "run2", **QUIET)
    missing = make_cfg(sets["train"], sets["val"], epochs=1, init_from=str(tmp_path / "nope"))
    with pytest.raises(TrainingError, match=r"train\.init_from: .*nope: no such model"):
        train(missing, tmp_path / "run3", **QUIET)
    assert not (tmp_path / "run3").exists()  # found before the run folder is made


@pytest.mark.slow
def test_init_from_a_narrower_cnn_widens_it_with_the_same_outputs(sets, tmp_path, capsys):
    import keras

    head = HeadConfig(attention_heads=0, shared_units=16, branch_units=8)
    narrow_cfg = make_cfg(sets["train"], sets["val"], "cnn", (4, 8, 8, 12), head, epochs=1)
    narrow = train(narrow_cfg, tmp_path / "narrow", **QUIET)
    faces = np.random.default_rng(2).uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)
    seen = {}

    class FirstOutputs(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            out = self.model(faces, training=False)
            seen["expr"], seen["va"] = np.asarray(out["expr"]), np.asarray(out["va"])
            seen["kernel"] = self.model.get_layer("s3_conv1").get_weights()[0]

    wide_cfg = make_cfg(
        sets["train"], sets["val"], "cnn", (4, 8, 8, 20), head, epochs=1, init_from=str(narrow)
    )
    bundle = train(wide_cfg, tmp_path / "wide", extra_callbacks=[FirstOutputs()], **QUIET)
    assert "widened from [4, 8, 8, 12] to [4, 8, 8, 20]" in capsys.readouterr().out
    want = head_outputs(load_bundle(narrow), faces)
    np.testing.assert_allclose(seen["expr"], want["expr"], atol=1e-5)
    np.testing.assert_allclose(seen["va"], want["va"], atol=1e-5)
    assert seen["kernel"].shape[-1] == 20 and np.all(seen["kernel"][..., 12:, :12] == 0)
    assert load_bundle(bundle).card.training["config"]["model"]["widths"] == [4, 8, 8, 20]

    narrower = make_cfg(
        sets["train"], sets["val"], "cnn", (4, 8, 8, 8), head, epochs=1, init_from=str(narrow)
    )
    with pytest.raises(TrainingError, match=r"cannot widen .*at least as wide"):
        train(narrower, tmp_path / "narrower", **QUIET)


def test_a_head_with_labels_but_loss_weight_zero_is_marked_untrained(sets, tmp_path, capsys):
    """The cause of an AU head "at the all-positive prior": the stage-1 default config set
    the AU loss weight to 0 (FER2013 has no AUs), so a run on AU-labelled data left the head
    random (outputs about 0.5: every AU active at a 0.5 threshold) while the card called it
    trained."""
    cfg = make_cfg(sets["train"], sets["val"], epochs=1)
    cfg.train.loss_weights = {"expr": 1.0, "va": 1.0, "au": 0.0}
    card = json.loads((train(cfg, tmp_path / "run", **QUIET) / "card.json").read_text())
    assert not card["heads"]["au"]["trained"]
    assert "loss weight 0, so not trained" in card["heads"]["au"]["data"]
    assert card["heads"]["expr"]["trained"] and card["heads"]["va"]["trained"]
    assert "au head has labels" in capsys.readouterr().out


# ------------------------------------------------------------------ distillation
def _constant_teacher(start: Path, out: Path, cls: int, classes_seen=None) -> Path:
    """``start``'s bundle with an expression head that always says ``cls`` (p ~ 0.99)."""
    from liveaffect.bundle import save_bundle

    bundle = load_bundle(start)
    layer = bundle.model.get_layer("expr")
    kernel, bias = layer.get_weights()
    bias = np.full_like(bias, -3.0)
    bias[cls] = 3.0
    layer.set_weights([np.zeros_like(kernel), bias])
    if classes_seen is not None:
        bundle.card.heads["expr"].classes_seen = classes_seen
    return save_bundle(bundle.model, bundle.card, out)


def test_teacher_targets_cover_the_classes_the_teacher_learned(tiny_run, sets, tmp_path):
    from liveaffect.training.distill import NO_TEACHER, teacher_targets

    cfg, _, start = tiny_run
    seen = load_bundle(start).card.heads["expr"].classes_seen
    teacher = _constant_teacher(start, tmp_path / "t", 1, classes_seen=seen[:-1])
    records, spec = load_records(str(sets["train"] / "labels.csv")), preprocess_spec(cfg)
    soft = teacher_targets(str(teacher), decode_all(records, spec, 2, False), records, spec)
    assert soft.shape == (len(records), 8)
    taught = np.array([r.has_expr and EXPRESSIONS[r.expr] in seen[:-1] for r in records])
    assert taught.any() and (~taught).any()
    assert np.all(soft[~taught] == NO_TEACHER)
    np.testing.assert_allclose(soft[taught].sum(axis=1), 1.0, atol=1e-4)
    assert np.all(soft[taught].argmax(axis=1) == 1)
    with pytest.raises(TrainingError, match="in memory"):
        teacher_targets(str(teacher), None, records, spec)
    with pytest.raises(TrainingError, match="distill_from"):
        teacher_targets(str(tmp_path / "none"), np.zeros((1, SIZE, SIZE, 1)), records, spec)
    other = replace(spec, input_size=(SIZE * 2, SIZE * 2))
    with pytest.raises(TrainingError, match="takes"):
        teacher_targets(
            str(teacher), np.zeros((len(records), SIZE * 2, SIZE * 2, 1)), records, other
        )


@pytest.mark.slow
def test_a_student_learns_what_its_teacher_says(tiny_run, sets, tmp_path):
    """With train.distill_weight 1 the expression target is the teacher's alone: a teacher
    that always says one (rare) class makes the student say it on most validation faces,
    while the labels give that class about a quarter of them."""
    cfg, _, start = tiny_run
    val = load_records(str(sets["val"] / "labels.csv"))
    counts = np.bincount([r.expr for r in val if r.has_expr], minlength=8)
    seen = load_bundle(start).card.heads["expr"].classes_seen
    cls = min((EXPRESSIONS.index(c) for c in seen), key=lambda c: counts[c])
    teacher = _constant_teacher(start, tmp_path / "teacher", cls)
    student = make_cfg(
        sets["train"], sets["val"], epochs=3, distill_from=str(teacher), distill_weight=1.0
    )
    out = train(student, tmp_path / "student", **QUIET)
    spec = preprocess_spec(cfg)
    pred = predict_arrays(load_bundle(out).model, decode_all(val, spec, 2, False), spec, False)
    said = float(np.mean(pred["expr"].argmax(axis=1) == cls))
    true = counts[cls] / counts.sum()
    assert true < 0.4 and said > 0.8, f"class {cls}: student {said:.2f}, labels {true:.2f}"
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="distill_weight"):
            TrainConfig(distill_weight=bad)


def test_auto_precision_takes_bfloat16_only_where_it_is_computed_natively():
    from liveaffect.training.config import mixed_precision_policy

    # a GPU or a CPU with AVX512-BF16/AMX: bfloat16; any other CPU, or an unknown one: float32
    assert mixed_precision_policy("auto", gpu=True, native_bf16=False) == ("bfloat16", None)
    assert mixed_precision_policy("auto", gpu=False, native_bf16=True) == ("bfloat16", None)
    assert mixed_precision_policy("auto", gpu=False, native_bf16=False) == ("none", None)
    assert mixed_precision_policy("auto", gpu=False, native_bf16=None) == ("none", None)
    # what a config names explicitly is kept; bfloat16 on an emulating CPU says what it costs
    policy, warning = mixed_precision_policy("bfloat16", gpu=False, native_bf16=False)
    assert policy == "bfloat16" and "10x slower" in warning and "auto" in warning
    assert mixed_precision_policy("bfloat16", gpu=False, native_bf16=True) == ("bfloat16", None)
    assert mixed_precision_policy("bfloat16", gpu=True, native_bf16=False) == ("bfloat16", None)
    assert mixed_precision_policy("none", gpu=True, native_bf16=True) == ("none", None)
    assert TrainConfig(mixed_precision="auto").mixed_precision == "auto"


@pytest.mark.slow
def test_ema_checkpoints_and_ships_the_averaged_weights_and_resumes_from_the_trained(
    sets, tmp_path
):
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise Interrupted

    class Recorder(keras.callbacks.Callback):
        """Runs after the built-in callbacks: at an epoch's end the model holds the
        averaged weights and the optimizer's average slots the trained ones."""

        def __init__(self):
            super().__init__()
            self.averaged, self.trained, self.started = {}, {}, {}

        def on_epoch_begin(self, epoch, logs=None):
            self.started[epoch] = [np.array(v) for v in self.model.trainable_variables]

        def on_epoch_end(self, epoch, logs=None):
            opt = self.model.optimizer
            self.averaged[epoch] = [np.array(v) for v in self.model.trainable_variables]
            self.trained[epoch] = [np.array(v) for v in opt._model_variables_moving_average]

    cfg = make_cfg(sets["train"], sets["val"], epochs=2, ema=0.9, bundle_epoch="last")
    first = Recorder()
    with pytest.raises(Interrupted):
        train(cfg, tmp_path / "run", extra_callbacks=[Interrupt(), first], **QUIET)
    averaged, trained = first.averaged[0], first.trained[0]
    assert any(not np.allclose(a, t) for a, t in zip(averaged, trained, strict=True))

    second = Recorder()
    bundle = train(cfg, tmp_path / "run", extra_callbacks=[second], **QUIET)
    for got, want in zip(second.started[1], trained, strict=True):  # trains on the trained
        np.testing.assert_array_equal(got, want)
    shipped = load_bundle(bundle).model.trainable_variables
    for got, want in zip(shipped, second.averaged[1], strict=True):
        np.testing.assert_array_equal(np.array(got), want)
    with pytest.raises(ValueError, match=r"train\.ema"):
        TrainConfig(ema=1.0)


@pytest.mark.parametrize("members", [1, 2])
def test_bad_data_leaves_no_run_folder(tmp_path, sets, members):
    """A manifest that fails to read stops the run before its folder is made (config.yaml,
    checkpoints/): the folder a user named stays free for the corrected run."""
    from liveaffect.training.ensemble import train_ensemble

    bad = tmp_path / "bad"
    bad.mkdir()
    rows = (sets["train"] / "labels.csv").read_text().splitlines()
    (bad / "labels.csv").write_text("\n".join([*rows[:5], rows[5] + ",extra", *rows[6:]]) + "\n")
    cfg = make_cfg(bad, sets["val"])
    run_dir = tmp_path / "run"
    with pytest.raises(DatasetError, match=r"labels\.csv:6: .* fields, but the header has"):
        if members == 1:
            train(cfg, run_dir, **QUIET)
        else:
            train_ensemble(cfg, run_dir, members, **QUIET)
    assert not run_dir.exists()


def test_a_file_cache_left_by_another_start_is_not_read(sets, tmp_path):
    """``data.cache: file``: a fresh start empties the run's cache folder (another run's
    faces, or a write cut off whose lockfile made TensorFlow refuse to start)."""
    cfg = make_cfg(sets["train"], sets["val"], epochs=1)
    cfg.data.cache = "file"
    run_dir = tmp_path / "run"
    (run_dir / "cache").mkdir(parents=True)
    (run_dir / "cache" / "train_0.lockfile").write_text("left by a killed run")
    (run_dir / "cache" / "train.index").write_bytes(b"another run's faces")
    train(cfg, run_dir, command="pytest file cache", **QUIET)
    assert not (run_dir / "cache" / "train_0.lockfile").exists()
    assert (run_dir / "cache" / "train.index").read_bytes() != b"another run's faces"
    assert (run_dir / "bundle" / "model.keras").exists()
