"""predict_records and the ``evaluate`` subcommand, end to end on a tiny random bundle."""

from __future__ import annotations

import argparse
import csv
import json
import shutil

import cv2
import numpy as np
import pytest

from liveaffect.commands import evaluate as evaluate_cli
from liveaffect.data.records import Record
from liveaffect.errors import CliError
from liveaffect.labels import AUS
from liveaffect.preprocess import crop_face, prepare_face
from liveaffect.tta import TTA, zoom
from liveaffect.tta import training_tta_flip as card_tta_flip
from liveaffect.types import Detection

CLASSES = ("happy", "sad", "angry")


def write_class_folders(root, per_class: int = 3, size: int = 40, seed: int = 0):
    """``root/{train,val}/<class>/*.jpg`` random images (FER2013-style, 3 classes)."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
                cv2.imwrite(str(folder / f"{i}.jpg"), img)
    return root


def write_manifest(root, n: int = 10, seed: int = 1):
    """A CSV manifest with expression, valence/arousal and AU labels (some missing)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        name = f"img{i}.png"
        cv2.imwrite(str(root / name), rng.integers(0, 255, (36, 36), dtype=np.uint8))
        va = ["-5", "-5"] if i == 0 else [f"{v:.3f}" for v in rng.uniform(-1, 1, 2)]
        aus = [str(v) for v in rng.integers(0, 2, 12)]
        aus[0] = "1" if i % 2 else "0"
        rows.append([name, str(i % 8), *va, *aus])
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "expression", "valence", "arousal", *AUS])
        writer.writerows(rows)
    return root


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    evaluate_cli.add_arguments(parser)
    return evaluate_cli.run(parser.parse_args([*argv, "--no-progress"]))


@pytest.fixture
def bundle_dir(tiny_bundle, tmp_path):
    """A private copy of the session's tiny bundle (tests may rewrite its card)."""
    return shutil.copytree(tiny_bundle, tmp_path / "bundle")


# --------------------------------------------------------------------------- predict_records


def _direct(bundle, batch: np.ndarray) -> dict[str, np.ndarray]:
    out = bundle.model(batch, training=False)
    return {h: np.asarray(out[h]) for h in ("expr", "va", "au")}


def test_predict_matches_the_model_and_flip_averages(tiny_bundle, tmp_path):
    from liveaffect.bundle import load_bundle
    from liveaffect.evaluation.predict import predict_records, read_image

    data = write_manifest(tmp_path / "m", n=5)
    bundle = load_bundle(tiny_bundle)
    records = [Record(path=str(data / f"img{i}.png"), expr=i) for i in range(5)]
    records.insert(2, Record(path=str(tmp_path / "missing.jpg"), expr=1))
    batch = np.stack(
        [prepare_face(read_image(r.path), bundle.card.preprocess) for r in records[:2]]
    )
    batch = np.concatenate(
        [batch, [prepare_face(read_image(r.path), bundle.card.preprocess) for r in records[3:]]]
    )
    want = _direct(bundle, batch)
    mirror = _direct(bundle, batch[:, :, ::-1, :])

    plain = predict_records(bundle, records, batch_size=2, progress=False)
    assert plain.n_total == 6 and len(plain.records) == 5
    assert plain.unreadable == [str(tmp_path / "missing.jpg")]
    np.testing.assert_allclose(plain.expr_probs, want["expr"], atol=1e-5)
    np.testing.assert_allclose(plain.va, want["va"], atol=1e-5)
    np.testing.assert_allclose(plain.au_probs, want["au"], atol=1e-5)

    flipped = predict_records(bundle, records, batch_size=4, tta_flip=True, progress=False)
    np.testing.assert_allclose(flipped.expr_probs, (want["expr"] + mirror["expr"]) / 2, atol=1e-5)
    np.testing.assert_allclose(flipped.va, (want["va"] + mirror["va"]) / 2, atol=1e-5)
    result = flipped.evaluate()
    assert result.meta["unreadable"] == 1 and result.meta["tta_flip"] is True
    assert result.expr.n == 5

    # flip x two zooms: the mean of the four views, each scored on its own
    tta = TTA(flip=True, scales=(1.0, 0.8))
    small = zoom(batch, 0.8)
    views = [want, mirror, _direct(bundle, small), _direct(bundle, small[:, :, ::-1, :])]
    zoomed = predict_records(bundle, records, batch_size=3, tta=tta, progress=False)
    np.testing.assert_allclose(zoomed.va, np.mean([v["va"] for v in views], 0), atol=1e-5)
    np.testing.assert_allclose(zoomed.expr_probs, np.mean([v["expr"] for v in views], 0), atol=1e-5)
    assert not np.allclose(zoomed.va, flipped.va, atol=1e-4)  # the zoomed views count
    assert zoomed.evaluate().meta["tta"] == "flip x scales 1/0.8 (4 views)"


class FakeDetector:
    """Finds one face in images whose top-left pixel is bright, none otherwise."""

    box = (4.0, 6.0, 30.0, 34.0)

    def detect(self, frame_bgr):
        if frame_bgr.reshape(-1)[0] > 127:
            return [Detection((0.0, 0.0, 5.0, 5.0), 0.2), Detection(self.box, 0.9)]
        return []


def test_detector_crops_best_face_and_counts_misses(tiny_bundle, tmp_path):
    from liveaffect.bundle import load_bundle
    from liveaffect.evaluation.predict import predict_records
    from liveaffect.evaluation.report import write_report

    bundle = load_bundle(tiny_bundle)
    spec = bundle.card.preprocess
    rng = np.random.default_rng(2)
    records = []
    for i in range(4):
        img = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
        img[0, 0] = 255 if i % 2 == 0 else 0
        cv2.imwrite(str(tmp_path / f"{i}.png"), img)
        records.append(Record(path=str(tmp_path / f"{i}.png"), expr=i, va=(0.1 * i, -0.1)))
    preds = predict_records(
        bundle, records, detector=FakeDetector(), progress=False, no_face="skip"
    )
    assert [r.expr for r in preds.records] == [0, 2]
    assert preds.misses == [records[1].path, records[3].path]
    img = cv2.imread(records[0].path, cv2.IMREAD_UNCHANGED)
    face = prepare_face(crop_face(img, FakeDetector.box, spec.crop_margin, spec.square), spec)
    np.testing.assert_allclose(
        preds.expr_probs[0], _direct(bundle, face[None])["expr"][0], atol=1e-5
    )
    result = preds.evaluate()
    assert result.meta["detection_misses"] == 2 and result.meta["detection_rate"] == 0.5
    assert result.expr.n == 2 and result.va.n == 2
    text = write_report(result, tmp_path / "r.md")["report"].read_text()
    assert "no face in **2** image(s) (detection rate 0.500)" in text and "excluded" in text

    # the default: a miss is an error in every metric (no expression, VA 0, no AU)
    errors = predict_records(bundle, records, detector=FakeDetector(), progress=False)
    assert errors.no_face == "error" and len(errors.missed_records) == 2
    result = errors.evaluate()
    assert result.expr.n == 4 and result.va.n == 4
    assert result.expr.accuracy <= 0.5  # the two misses can never be right
    assert result.expr.per_class["Anger"]["recall"] == 0.0  # record 1 (Anger) was missed
    assert sum(c["predicted"] for c in result.expr.per_class.values()) == 2  # no extra FPs
    assert "count as errors" in write_report(result, tmp_path / "e.md")["report"].read_text()

    # whole: the whole image is scored instead of a crop
    whole = predict_records(
        bundle, records, detector=FakeDetector(), progress=False, no_face="whole"
    )
    assert len(whole.records) == 4 and whole.evaluate().meta["detection_rate"] == 0.5


def test_untrained_heads_give_none(tiny_bundle_factory, tmp_path):
    from liveaffect.bundle import load_bundle
    from liveaffect.evaluation.predict import predict_records

    bundle = load_bundle(tiny_bundle_factory(trained=("expr",)))
    data = write_manifest(tmp_path / "m", n=4)
    records = [
        Record(path=str(data / f"img{i}.png"), expr=i, va=(0.2, 0.3), au=(1,) * 12)
        for i in range(4)
    ]
    preds = predict_records(bundle, records, progress=False)
    assert preds.va is None and preds.au_probs is None
    assert preds.expr_probs.shape == (4, 8)
    d = preds.evaluate().to_dict()
    assert d["va"]["ccc_mean"] is None and d["au"]["mean_f1"] is None and d["expr"]["n"] == 4
    assert any("va head is not trained" in n for n in d["notes"])


# --------------------------------------------------------------------------- the CLI


def test_cli_class_folders_end_to_end(bundle_dir, tmp_path, capsys):
    data = write_class_folders(tmp_path / "fer")
    (data / "val" / "sad" / "broken.jpg").write_bytes(b"not a jpeg")
    out_json, out_md = tmp_path / "out" / "eval.json", tmp_path / "out" / "eval.md"
    argv = ["--model", str(bundle_dir), "--data", str(data), "--batch-size", "4"]
    assert run_cli([*argv, "--json", str(out_json), "--report", str(out_md)]) == 0
    d = json.loads(out_json.read_text())
    assert d["expr"]["n"] == 9  # the validation split only; the broken image skipped
    assert isinstance(d["expr"]["macro_f1"], float) and isinstance(d["expr"]["accuracy"], float)
    assert d["expr"]["classes_present"] == ["Anger", "Happiness", "Sadness"]
    assert d["va"]["n"] == 0 and d["va"]["ccc_mean"] is None
    assert d["au"]["n"] == 0 and d["au"]["mean_f1"] is None
    # the ABAW P_EXPR averages all 8 classes, the 5 absent ones counting 0
    assert d["expr"]["abaw_macro_f1"] == pytest.approx(d["expr"]["macro_f1"] * 3 / 8)
    assert d["mtl_score"] is None and d["mtl_partial"] == d["expr"]["abaw_macro_f1"]
    assert d["meta"]["unreadable"] == 1 and d["meta"]["split"] == "auto"
    assert (tmp_path / "out" / "eval_confusion.png").exists()
    assert not (tmp_path / "out" / "eval_va.png").exists()
    assert "EXPR macro F1" in capsys.readouterr().out


def test_cli_auto_split_takes_a_splitless_folder_whole_and_holdout_keeps_a_part(
    bundle_dir, tmp_path
):
    data = write_class_folders(tmp_path / "fer", per_class=4) / "val"  # class folders only
    out = tmp_path / "e.json"
    argv = ["--model", str(bundle_dir), "--data", str(data), "--json", str(out)]
    assert run_cli(argv) == 0
    assert json.loads(out.read_text())["expr"]["n"] == 12  # no split in it: all of it
    assert run_cli([*argv, "--holdout", "0.25:0"]) == 0
    held = json.loads(out.read_text())["expr"]["n"]
    assert 0 < held < 12  # still images: split by image
    with pytest.raises(CliError, match="--holdout"):
        run_cli([*argv, "--holdout", "1.5"])


def test_cli_auto_split_says_when_it_scored_a_training_set(bundle_dir, tmp_path, capsys):
    data = write_class_folders(tmp_path / "fer")
    out, report = tmp_path / "e.json", tmp_path / "e.md"
    argv = ["--model", str(bundle_dir), "--data", str(data), "--json", str(out)]
    assert run_cli(argv) == 0
    assert json.loads(out.read_text())["notes"] == []  # its val/ split was scored
    shutil.rmtree(data / "val")  # now only train/: auto falls back to all of it
    assert run_cli([*argv, "--report", str(report)]) == 0
    d = json.loads(out.read_text())
    assert d["expr"]["n"] == 9
    note = f"{data} has no validation split, so --split auto scored all of it: 9 of its 9 "
    assert len(d["notes"]) == 1 and d["notes"][0].startswith(note)
    assert "its training set" in d["notes"][0] and note in report.read_text()
    assert note in capsys.readouterr().out
    assert run_cli([*argv, "--holdout", "0.3:0"]) == 0  # a held-out part: meant to be scored
    assert json.loads(out.read_text())["notes"] == []


def test_cli_tunes_thresholds_and_saves_to_card(bundle_dir, tmp_path):
    data = write_manifest(tmp_path / "m", n=12)
    card_before = json.loads((bundle_dir / "card.json").read_text())
    out_json = tmp_path / "e.json"
    argv = ["--model", str(bundle_dir), "--data", str(data), "--split", "all", "--no-tta-flip"]
    assert run_cli([*argv, "--tune-au-thresholds", "--save-to-card", "--json", str(out_json)]) == 0
    d = json.loads(out_json.read_text())
    assert d["expr"]["n"] == 12 and d["va"]["n"] == 11 and d["au"]["n"] == 12
    assert isinstance(d["mtl_score"], float)
    assert d["au"]["mean_f1"] >= d["meta"]["au_mean_f1_before_tuning"]
    card = json.loads((bundle_dir / "card.json").read_text())
    assert card["au_thresholds"] == d["au"]["thresholds"]
    assert card["au_thresholds"] != card_before["au_thresholds"] or d["au"]["mean_f1"] == 1.0
    (entry,) = card["metrics"]["evaluation"].values()
    assert entry["mtl_score"] == d["mtl_score"] and entry["tta_flip"] is False
    assert entry["au"]["abaw_mean_f1"] == d["au"]["abaw_mean_f1"] == d["au"]["mean_f1"]
    assert entry["expr"]["abaw_macro_f1"] == d["expr"]["abaw_macro_f1"]
    assert entry["au"]["per_au_f1"] == {k: v["f1"] for k, v in d["au"]["per_au"].items()}
    assert entry["au"]["thresholds"] == card["au_thresholds"]
    assert card["preprocess"] == card_before["preprocess"]


def test_cli_saves_per_au_f1_for_the_live_view_and_refuses_it_on_tuning_faces(bundle_dir, tmp_path):
    """--save-au-f1 stores each AU's F1 (AUs with positives only) and what it was measured
    on; the card then names the weak AUs. Not on the faces thresholds are tuned on."""
    from liveaffect.bundle import WEAK_AU_F1, load_bundle

    data = write_manifest(tmp_path / "m", n=12)
    with open(data / "labels.csv", newline="") as f:
        rows = list(csv.reader(f))
    for row in rows[1:]:
        row[-1] = "0"  # the last AU has labels but no positive face
    with open(data / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    argv = ["--model", str(bundle_dir), "--data", str(data), "--split", "all", "--no-tta-flip"]
    with pytest.raises(CliError, match="--save-au-f1 stores how well"):
        run_cli([*argv, "--tune-au-thresholds", "--save-au-f1"])
    out = tmp_path / "e.json"
    assert run_cli([*argv, "--save-au-f1", "--json", str(out)]) == 0
    per_au = json.loads(out.read_text())["au"]["per_au"]
    card = json.loads((bundle_dir / "card.json").read_text())
    assert card["au_f1"] == {a: per_au[a]["f1"] for a in AUS[:-1]}  # AU26: no positives
    assert card["au_f1_data"].endswith("[all]: 12 faces, the card's thresholds")
    assert "evaluation" not in card["metrics"]  # only --save-to-card stores the metrics
    weak = load_bundle(bundle_dir).card.weak_aus()
    assert weak == tuple(a for a in AUS[:-1] if per_au[a]["f1"] < WEAK_AU_F1)
    assert run_cli([*argv, "--save-au-f1", "--engine", "tflite-int8"]) == 0
    card = json.loads((bundle_dir / "card.json").read_text())
    assert card["au_f1_data"].endswith("[all] engine tflite-int8: 12 faces, the card's thresholds")
    # new thresholds make those F1 stale: tuning clears them
    assert run_cli([*argv, "--tune-au-thresholds"]) == 0
    assert "au_f1" not in json.loads((bundle_dir / "card.json").read_text())
    # measured again with the tuned thresholds, then tuned again to the same ones: kept
    assert run_cli([*argv, "--save-au-f1"]) == 0
    saved = json.loads((bundle_dir / "card.json").read_text())
    assert run_cli([*argv, "--tune-au-thresholds"]) == 0
    again = json.loads((bundle_dir / "card.json").read_text())
    assert again["au_thresholds"] == saved["au_thresholds"] and again["au_f1"] == saved["au_f1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "{tmp}/nowhere"], "does not exist"),
        (["--data", "{fer}", "--split", "test"], "no labelled images"),
        (["--data", "{fer}", "--tune-au-thresholds"], "needs AU labels"),
        (["--data", "{fer}", "--save-au-f1"], "--save-au-f1 needs AU labels"),
        (["--data", "{fer}", "--batch-size", "0"], "--batch-size"),
        (["--data", "{fer}", "--no-face", "skip"], "without --detect every image is scored"),
        (["--data", "{fer}", "--engine", "onnx"], "--engine: unknown engine 'onnx'"),
        (["--data", "{fer}", "--model", "{tmp}/no_bundle"], "no such model"),
    ],
)
def test_cli_user_errors(argv, message, tiny_bundle, tmp_path):
    fer = write_class_folders(tmp_path / "fer", per_class=1)
    argv = [a.format(tmp=tmp_path, fer=fer) for a in argv]
    if "--model" not in argv:
        argv = ["--model", str(tiny_bundle), *argv]
    with pytest.raises(CliError, match=message):
        run_cli(argv)


def test_cli_engine_scores_with_the_named_engine_and_keeps_its_own_card_entry(bundle_dir, tmp_path):
    data = write_manifest(tmp_path / "m", n=12)
    argv = ["--model", str(bundle_dir), "--data", str(data), "--split", "all", "--no-tta-flip"]
    runs = {}
    for engine in ("keras", "tflite", "tflite-int8"):
        out = tmp_path / f"{engine}.json"
        assert run_cli([*argv, "--engine", engine, "--save-to-card", "--json", str(out)]) == 0
        runs[engine] = json.loads(out.read_text())
        assert runs[engine]["meta"]["engine"] == engine
    # float TFLite is the Keras model; int8 weights move the numbers a little, not a lot
    for metric in ("ccc_valence", "ccc_arousal"):
        keras, tflite, int8 = (runs[e]["va"][metric] for e in ("keras", "tflite", "tflite-int8"))
        assert tflite == pytest.approx(keras, abs=1e-4)
        assert int8 == pytest.approx(keras, abs=0.1)
    assert runs["tflite"]["expr"]["accuracy"] == runs["keras"]["expr"]["accuracy"]
    # each engine's numbers under a key of their own; the float32 (Keras) key is unchanged
    card = json.loads((bundle_dir / "card.json").read_text())
    keys = sorted(card["metrics"]["evaluation"])
    assert len(keys) == 3 and keys[0].endswith("[all]")
    assert keys[1].endswith("[all] engine tflite") and keys[2].endswith("engine tflite-int8")
    assert card["metrics"]["evaluation"][keys[2]]["engine"] == "tflite-int8"


def test_card_tta_flip_lookup():
    assert card_tta_flip({}) is False
    assert card_tta_flip({"tta_flip": True}) is True
    assert card_tta_flip({"train": {"tta_flip": True}, "epochs": 3}) is True


def test_cli_card_updates_need_a_card(bundle_dir, tmp_path):
    fer = write_class_folders(tmp_path / "fer", per_class=1)
    plain = shutil.copy(bundle_dir / "model.keras", tmp_path / "plain.keras")
    with pytest.raises(CliError, match=r"plain \.keras"):
        run_cli(["--model", str(plain), "--data", str(fer), "--save-to-card"])
    # model.keras inside a bundle folder: the card beside it is the one updated
    run_cli(["--model", str(bundle_dir / "model.keras"), "--data", str(fer), "--save-to-card"])
    card = json.loads((bundle_dir / "card.json").read_text())
    assert card["metrics"]["evaluation"]


def test_cli_detect_reports_misses(tiny_bundle, tmp_path, monkeypatch, capsys):
    import liveaffect.runtime.detectors as detectors

    asked = []
    fake = lambda name, **kw: asked.append((name, kw)) or FakeDetector()  # noqa: E731
    monkeypatch.setattr(detectors, "create_detector", fake)
    fer = write_class_folders(tmp_path / "fer", per_class=2)
    for path in (fer / "val").rglob("*.jpg"):  # a face only in the "happy" images
        img = cv2.imread(str(path))
        img[:8, :8] = 255 if path.parent.name == "happy" else 0
        cv2.imwrite(str(path), img)
    out_json, out_md = tmp_path / "d.json", tmp_path / "d.md"
    argv = ["--model", str(tiny_bundle), "--data", str(fer), "--detect", "--json", str(out_json)]
    assert run_cli([*argv, "--report", str(out_md)]) == 0
    d = json.loads(out_json.read_text())
    assert asked == [("blazeface", {"small_faces": "still"})] and d["meta"]["detect"] is True
    assert d["meta"]["detection_misses"] == 4 and d["meta"]["detection_rate"] == pytest.approx(
        1 / 3
    )
    assert d["meta"]["no_face"] == "error" and d["expr"]["n"] == 6  # misses count as errors
    assert d["expr"]["per_class"]["Sadness"]["recall"] == 0.0
    assert "no face in **4** image(s)" in out_md.read_text()
    assert "Face detection rate 0.333" in capsys.readouterr().out
    assert run_cli([*argv, "--no-face", "skip"]) == 0
    d = json.loads(out_json.read_text())
    assert d["expr"]["n"] == 2 and d["expr"]["classes_present"] == ["Happiness"]
    assert d["meta"]["detection_rate"] == pytest.approx(1 / 3)


def test_cli_detect_says_when_a_degraded_copy_loses_faces(tiny_bundle, tmp_path, monkeypatch):
    """Dimmed, the bright corner the fake detector looks for is gone: the copy's detection
    rate is stored and a note says its drop is partly the detector's."""
    import liveaffect.runtime.detectors as detectors

    monkeypatch.setattr(detectors, "create_detector", lambda name, **kw: FakeDetector())
    fer = write_class_folders(tmp_path / "fer", per_class=2)
    for path in (fer / "val").rglob("*.jpg"):
        img = cv2.imread(str(path))
        img[:8, :8] = 255
        cv2.imwrite(str(path), img)
    out_json = tmp_path / "d.json"
    argv = ["--model", str(tiny_bundle), "--data", str(fer), "--detect", "--json", str(out_json)]
    assert run_cli([*argv, "--degrade", "dark", "--bootstrap", "50"]) == 0
    d = json.loads(out_json.read_text())
    assert d["meta"]["detection_rate"] == 1.0
    copy = d["robustness"]["copies"]["dark"]
    assert copy["detection_rate"] < 1.0 and copy["accuracy_drop_interval"] is None
    (note,) = [n for n in d["notes"] if n.startswith("Degraded copy 'dark'")]
    assert "partly the detector's" in note and "(clean: 6)" in note


@pytest.mark.parametrize("suffix", [".tif", ".tiff", ".webp", ".pgm", ".ppm", ".jp2", ".jpe"])
def test_cli_reads_every_still_format_opencv_reads(bundle_dir, tmp_path, suffix):
    data = write_class_folders(tmp_path / "fer", per_class=2)
    for path in list(data.rglob("*.jpg")):
        image = cv2.imread(str(path))
        if suffix in (".pgm",):
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        assert cv2.imwrite(str(path.with_suffix(suffix)), image)
        path.unlink()
    out_json = tmp_path / "eval.json"
    argv = ["--model", str(bundle_dir), "--data", str(data), "--json", str(out_json)]
    assert run_cli(argv) == 0
    d = json.loads(out_json.read_text())
    assert d["expr"]["n"] == 6 and d["meta"]["unreadable"] == 0


def test_cli_test_time_views_from_card_and_flags(bundle_dir, tmp_path):
    fer = write_class_folders(tmp_path / "fer", per_class=2)
    card_file = bundle_dir / "card.json"
    card = json.loads(card_file.read_text())
    card["tta"] = {"flip": True, "scales": [1.0, 0.85]}
    card_file.write_text(json.dumps(card))

    def meta(*flags):
        out = tmp_path / "e.json"
        run_cli(
            [
                "--model",
                str(bundle_dir),
                "--data",
                str(fer),
                "--split",
                "validation",
                "--json",
                str(out),
                *flags,
            ]
        )
        return json.loads(out.read_text())["meta"]

    assert meta()["tta"] == "flip x scales 1/0.85 (4 views)"  # the card's views by default
    assert meta("--no-tta-flip")["tta"] == "scales 1/0.85 (2 views)"
    assert meta("--tta-scales", "1", "--no-tta-flip")["tta"] == "none (1 view)"
    for bad in ("abc", "1,1", "3"):
        with pytest.raises(CliError, match="--tta-scales"):
            meta("--tta-scales", bad)
    card["tta"] = {"flip": True, "scales": [0.1]}
    card_file.write_text(json.dumps(card))
    with pytest.raises(CliError, match="scales"):
        meta()


def test_cli_degraded_copies_report_drop_and_class_shares(bundle_dir, tmp_path, capsys):
    data = write_class_folders(tmp_path / "fer", per_class=4)
    out_json, out_md = tmp_path / "out" / "e.json", tmp_path / "out" / "e.md"
    argv = ["--model", str(bundle_dir), "--data", str(data), "--no-tta-flip"]
    argv += ["--json", str(out_json), "--report", str(out_md), "--save-to-card"]
    assert run_cli([*argv, "--degrade", "all"]) == 0
    d = json.loads(out_json.read_text())
    clean = d["robustness"]["clean"]
    assert clean["n"] == 12 and set(d["robustness"]["copies"]) == {
        "blur",
        "lowres",
        "noise",
        "dark",
    }
    assert clean["true"]["Happiness"] == pytest.approx(1 / 3)
    assert sum(clean["predicted"].values()) == pytest.approx(1.0)
    for kind, e in d["robustness"]["copies"].items():
        share = e["prediction_share"]
        assert e["scored"] == 12 and share["n"] == 12, kind
        assert e["accuracy_drop"] == pytest.approx(d["expr"]["accuracy"] - e["expr_accuracy"])
        low, high = e["accuracy_drop_interval"]
        assert low - 1e-9 <= e["accuracy_drop"] <= high + 1e-9, kind
        ratios = [r for r in share["ratio"].values() if r is not None]
        assert share["max_ratio"] == pytest.approx(max(ratios))
        assert share["unlabelled_share"] == pytest.approx(
            sum(v for k, v in share["predicted"].items() if share["true"][k] == 0)
        )
    # the model really sees degraded faces: its outputs move, the same way each time
    from liveaffect.bundle import load_bundle
    from liveaffect.data.loaders import load_records
    from liveaffect.evaluation.predict import predict_records

    bundle, records = load_bundle(bundle_dir), load_records(str(data / "val"))
    clean_probs = predict_records(bundle, records, progress=False).expr_probs
    dark = predict_records(bundle, records, progress=False, degrade="dark").expr_probs
    assert np.abs(dark - clean_probs).max() > 1e-4
    np.testing.assert_array_equal(
        dark, predict_records(bundle, records, progress=False, degrade="dark").expr_probs
    )
    text = out_md.read_text()
    assert "## Prediction share and robustness" in text and "| dark |" in text
    assert (tmp_path / "out" / "e_shares.png").exists()
    assert "degraded 'lowres': accuracy" in capsys.readouterr().out
    (entry,) = json.loads((bundle_dir / "card.json").read_text())["metrics"]["evaluation"].values()
    assert set(entry["degraded"]) == {"blur", "lowres", "noise", "dark"}
    blur = d["robustness"]["copies"]["blur"]
    assert entry["degraded"]["blur"]["accuracy_drop_interval"] == blur["accuracy_drop_interval"]
    assert entry["prediction_share"]["max_ratio"] == clean["max_ratio"]
    # the same copy twice: identical numbers (seeded noise)
    assert run_cli([*argv, "--degrade", "noise,noise"]) == 0
    again = json.loads(out_json.read_text())["robustness"]["copies"]
    assert list(again) == ["noise"]
    assert (
        again["noise"]["prediction_share"] == d["robustness"]["copies"]["noise"]["prediction_share"]
    )
    with pytest.raises(CliError, match="--degrade 'fog'"):
        run_cli([*argv, "--degrade", "fog"])


def test_cli_holdout_parts_by_group(bundle_dir, tmp_path):
    root = write_manifest(tmp_path / "m", n=24)
    lines = (root / "labels.csv").read_text().splitlines()
    lines = [lines[0] + ",subject"] + [f"{ln},S{i // 3}" for i, ln in enumerate(lines[1:])]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "e.json"
    argv = ["--model", str(bundle_dir), "--data", str(root), "--split", "all"]
    argv += ["--no-tta-flip", "--json", str(out), "--group-by", "subject"]
    counts = {}
    for part in ("holdout", "holdout_val", "holdout_test", "rest"):
        assert run_cli([*argv, "--holdout", f"0.5:1:{part}"]) == 0
        counts[part] = json.loads(out.read_text())["expr"]["n"]
        meta = json.loads(out.read_text())["meta"]  # which part was scored, and how cut
        assert meta["holdout"] == f"0.5:1:{part}" and meta["group_by"] == "subject"
    assert counts["holdout_val"] + counts["holdout_test"] == counts["holdout"]
    assert counts["holdout"] + counts["rest"] == 24
    assert all(n % 3 == 0 for n in counts.values())  # whole subjects only
    for part in ("holdout_val", "holdout_test"):  # one card entry per part
        assert run_cli([*argv, "--holdout", f"0.5:1:{part}", "--save-to-card"]) == 0
    entries = json.loads((bundle_dir / "card.json").read_text())["metrics"]["evaluation"]
    assert sorted(k.split()[-1] for k in entries) == ["0.5:1:holdout_test", "0.5:1:holdout_val"]
    with pytest.raises(CliError, match="PART one of"):
        run_cli([*argv, "--holdout", "0.5:1:val"])
    with pytest.raises(CliError, match="no 'person' column"):
        run_cli([*argv[:-2], "--group-by", "person"])


def test_cli_bootstrap_intervals_by_subject_in_json_report_and_card(bundle_dir, tmp_path, capsys):
    root = write_manifest(tmp_path / "m", n=24)
    lines = (root / "labels.csv").read_text().splitlines()
    lines = [lines[0] + ",subject"] + [f"{ln},S{i // 4}" for i, ln in enumerate(lines[1:])]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    out, report = tmp_path / "e.json", tmp_path / "r" / "e.md"
    argv = ["--model", str(bundle_dir), "--data", str(root), "--split", "all", "--no-tta-flip"]
    argv += ["--group-by", "subject", "--json", str(out)]
    assert run_cli([*argv, "--bootstrap", "200", "--report", str(report), "--save-to-card"]) == 0
    d = json.loads(out.read_text())
    iv = d["intervals"]
    assert (iv["unit"], iv["groups"], iv["frames"], iv["resamples"]) == ("subject", 6, 24, 200)
    for key in ("expr_accuracy", "expr_macro_f1", "au_mean_f1", "va_ccc_mean", f"au_f1_{AUS[0]}"):
        m = iv["metrics"][key]
        assert m["low"] <= m["value"] <= m["high"]
    assert iv["metrics"]["au_mean_f1"]["value"] == d["au"]["mean_f1"]
    assert "200 bootstrap resamples of 6 subject(s)" in capsys.readouterr().out
    text = report.read_text()
    assert "## How sure these numbers are" in text and "| AU mean F1 |" in text
    (entry,) = json.loads((bundle_dir / "card.json").read_text())["metrics"]["evaluation"].values()
    assert entry["intervals"]["metrics"]["au_mean_f1"] == [
        iv["metrics"]["au_mean_f1"]["low"],
        iv["metrics"]["au_mean_f1"]["high"],
    ]
    assert run_cli([*argv, "--bootstrap", "0"]) == 0
    assert json.loads(out.read_text())["intervals"] == {}
    with pytest.raises(CliError, match="--bootstrap"):
        run_cli([*argv, "--bootstrap", "-1"])


def test_cli_baseline_paired_comparison(bundle_dir, tiny_bundle_factory, tmp_path, capsys):
    data = write_class_folders(tmp_path / "fer", per_class=6)
    out, report = tmp_path / "e.json", tmp_path / "r" / "e.md"
    argv = ["--model", str(bundle_dir), "--data", str(data), "--no-tta-flip", "--json", str(out)]
    argv += ["--degrade", "blur", "--bootstrap", "200"]
    # against itself: every difference is 0, and nothing is called better or worse
    assert run_cli([*argv, "--baseline", str(bundle_dir)]) == 0
    cmp = json.loads(out.read_text())["comparison"]
    assert cmp["baseline"] == str(bundle_dir) and cmp["unit"] == "image"
    keys = {"expr_accuracy", "expr_macro_f1", "blur_expr_accuracy", "blur_accuracy_drop"}
    assert keys <= set(cmp["metrics"])
    for v in cmp["metrics"].values():
        assert v["value"] == 0.0 and v["verdict"] == "no clear difference"
    # against another model: its own numbers, the same images
    other = tiny_bundle_factory(seed=7)
    assert run_cli([*argv, "--baseline", str(other), "--report", str(report)]) == 0
    d = json.loads(out.read_text())
    m = d["comparison"]["metrics"]["expr_accuracy"]
    assert m["model"] == pytest.approx(d["expr"]["accuracy"])
    assert m["value"] == pytest.approx(m["model"] - m["baseline"])
    assert m["low"] <= m["value"] <= m["high"]
    drop = d["comparison"]["metrics"]["blur_accuracy_drop"]
    assert drop["model"] == pytest.approx(d["robustness"]["copies"]["blur"]["accuracy_drop"])
    assert "## Against the baseline" in report.read_text()
    assert f"against {other}" in capsys.readouterr().out
    with pytest.raises(CliError, match="--baseline needs --bootstrap"):
        run_cli([*argv, "--baseline", str(other), "--bootstrap", "0"])
    with pytest.raises(CliError, match="tune the AU thresholds first"):
        run_cli([*argv, "--baseline", str(other), "--tune-au-thresholds"])
    with pytest.raises(CliError, match="no such model"):
        run_cli([*argv, "--baseline", str(tmp_path / "nothing")])


def test_cli_refuses_a_model_or_baseline_whose_card_names_other_classes(bundle_dir, tmp_path):
    """Output k is scored against label k: a card listing its expressions (or AUs) in
    another order, as the live app would show them, must not be scored as if it listed
    the labels' order, nor compared with a baseline that does."""
    data = write_class_folders(tmp_path / "fer")
    other = shutil.copytree(bundle_dir, tmp_path / "reordered")
    card = json.loads((other / "card.json").read_text())
    card["expressions"] = [*card["expressions"][1:], card["expressions"][0]]
    (other / "card.json").write_text(json.dumps(card))
    out = tmp_path / "e.json"
    argv = ["--data", str(data), "--no-tta-flip", "--bootstrap", "20", "--json", str(out)]
    with pytest.raises(CliError, match=r"reordered: the card's expressions .*output 0 is 'Anger'"):
        run_cli(["--model", str(other), *argv])
    with pytest.raises(CliError, match=r"reordered: the card's expressions"):
        run_cli(["--model", str(bundle_dir), "--baseline", str(other), *argv])
    assert not out.exists()
    card["expressions"] = json.loads((bundle_dir / "card.json").read_text())["expressions"]
    card["aus"] = card["aus"][:11]
    (other / "card.json").write_text(json.dumps(card))
    with pytest.raises(CliError, match=r"card's aus .*names 11 outputs, the labels have 12"):
        run_cli(["--model", str(other), *argv])


def test_tensorflows_start_up_lines_are_hidden_while_the_model_loads(capfd, monkeypatch):
    """TensorFlow prints CUDA probes from C++ while it loads ("failed call to cuInit" on a
    CPU-only machine); evaluate hides them as live does, and still reports a bad model."""
    import os

    import liveaffect.bundle as bundle_module
    from liveaffect.bundle import BundleError

    def noisy_load(path):
        os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit\n")
        if path == "bad":
            raise BundleError("bad: cannot load the model (not a .keras zip archive)")
        return "bundle"

    monkeypatch.setattr(bundle_module, "load_bundle", noisy_load)
    assert evaluate_cli._load_bundle("good") == "bundle"
    with pytest.raises(CliError, match=r"not a \.keras zip archive"):
        evaluate_cli._load_bundle("bad")
    assert "cuInit" not in capfd.readouterr().err


def test_cli_outputs_never_overwrite_what_it_reads(bundle_dir, tmp_path):
    root = write_manifest(tmp_path / "m", n=6)
    manifest = root / "labels.csv"
    card, data = (bundle_dir / "card.json").read_bytes(), manifest.read_bytes()
    argv = ["--model", str(bundle_dir), "--data", f"csv:{manifest}", "--split", "all"]
    for flag, path in (
        ("--json", bundle_dir / "card.json"),
        ("--report", bundle_dir / "model.keras"),
        ("--json", manifest),
    ):
        with pytest.raises(CliError, match=rf"{flag} .* would overwrite a file this command reads"):
            run_cli([*argv, flag, str(path)])
    assert (bundle_dir / "card.json").read_bytes() == card and manifest.read_bytes() == data
    (tmp_path / "other").mkdir()
    other = shutil.copytree(bundle_dir, tmp_path / "other" / "b")
    baseline = ["--baseline", str(other), "--bootstrap", "10"]  # its card is read too
    with pytest.raises(CliError, match=r"--json .* would overwrite"):
        run_cli([*argv, *baseline, "--json", str(other / "card.json")])


def test_cli_refuses_a_model_whose_outputs_are_nan(bundle_dir, tmp_path):
    from liveaffect.bundle import load_bundle, save_bundle

    bundle = load_bundle(bundle_dir)
    layer = bundle.model.get_layer("va")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, np.full_like(bias, np.nan)])  # as a diverged run leaves it
    save_bundle(bundle.model, bundle.card, bundle_dir)
    root = write_manifest(tmp_path / "m", n=4)
    out = tmp_path / "e.json"
    argv = ["--model", str(bundle_dir), "--data", str(root), "--split", "all"]
    with pytest.raises(CliError, match="va outputs are NaN or infinite on 4 of 4 images"):
        run_cli([*argv, "--json", str(out)])
    assert not out.exists()
