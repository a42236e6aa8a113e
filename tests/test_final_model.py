"""The shipped default bundle: honest card, small, reproducible numbers, sensible on a real clip."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, recipe_stages, shared_path

from liveaffect.bundle import load_bundle, open_bundle
from liveaffect.tta import card_tta

FINAL = REPO / "final_model"


CKPLUS = "../shared/data/ckplus_au/labels.csv"
FER_KEY = "../shared/data/fer2013/test [auto]"
CK_TEST_KEY = f"{CKPLUS} [all] holdout 0.3:35:holdout_test"
CK_VAL_KEY = f"{CKPLUS} [all] holdout 0.3:35:holdout_val"
INT8 = " engine tflite-int8"  # the card's keys for the numbers through --engine tflite-int8


def card_json() -> dict:
    return json.loads((FINAL / "card.json").read_text())


def test_bundle_is_present_small_and_honest():
    assert (FINAL / "model.keras").exists(), "final_model/ must ship the default bundle"
    size_mb = sum(p.stat().st_size for p in FINAL.rglob("*") if p.is_file()) / 1e6
    assert size_mb <= 25, f"final_model/ is {size_mb:.1f} MB (limit 25 MB)"
    card = card_json()
    assert all(card["heads"][h]["trained"] for h in ("expr", "va", "au"))
    assert "ckplus_au" in card["heads"]["au"]["data"]
    assert card["heads"]["expr"]["classes_seen"][-1] == "Other"
    # thresholds tuned on the validation subjects (saved there by evaluate), not defaults
    val = card["metrics"]["evaluation"][CK_VAL_KEY]
    assert card["au_thresholds"] == val["au"]["thresholds"] != [0.5] * 12
    text = (FINAL / "MODEL_CARD.md").read_text()
    for must in ("Lucey", "non-commercial", "posed", "by subject", "contempt"):
        assert must in text, must


def test_the_shipped_bundle_was_trained_by_the_committed_recipe():
    """The card's training config is the progressive recipe's last stage
    (configs/fast_stage2.yaml, the last stage final_model/train_progressive.sh runs) but for
    the folder it started from, and the card's recorded wall times fit the 2-hour budget.
    Both go through the config loader, so options added since training compare at their
    defaults."""
    import re

    from liveaffect.training.config import config_from_dict, load_config

    def as_dict(cfg):
        return json.loads(json.dumps(cfg.to_dict()))

    _, stages = recipe_stages()
    last_config = stages[-1][1]
    recipe = as_dict(load_config(REPO / last_config))
    trained = as_dict(config_from_dict(card_json()["training"]["config"]))
    recipe["train"].pop("init_from")
    trained["train"].pop("init_from")
    assert trained == recipe
    times = (FINAL / "training_times.log").read_text()
    seconds = [int(s) for s in re.findall(r"^stage\S+ end \S+ seconds (\d+)$", times, re.M)]
    assert len(seconds) == 3 and sum(seconds) <= 7200, seconds


def test_the_card_meets_the_robustness_targets_it_claims():
    """Issue 15, item 4, as the card states it for the float engine: on every degraded copy of
    FER2013 PublicTest the accuracy drops at most 0.08 and no class is predicted more than
    1.4x as often as it occurs; Other stays at most 2% of FER2013's predictions."""
    fer = card_json()["metrics"]["evaluation"][FER_KEY]
    assert set(fer["degraded"]) == {"blur", "lowres", "noise", "dark"}
    for kind, copy in fer["degraded"].items():
        assert round(copy["accuracy_drop"], 3) <= 0.080, (kind, copy["accuracy_drop"])
        assert copy["max_ratio"] <= 1.4, (kind, copy["max_ratio"], copy["max_ratio_class"])
        low, high = copy["accuracy_drop_interval"]
        assert low <= copy["accuracy_drop"] <= high, kind
    assert fer["prediction_share"]["unlabelled_share"] <= 0.02
    # where the int8 engine misses the target, the card says so with the number
    text = (FINAL / "MODEL_CARD.md").read_text()
    for kind, copy in card_json()["metrics"]["evaluation"][FER_KEY + INT8]["degraded"].items():
        if round(copy["accuracy_drop"], 3) > 0.080:
            assert f"{copy['accuracy_drop']:.3f}" in text, (kind, "int8 miss not in the card")


def _run(args, timeout=900):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO
    )


def _evaluate(tmp_path, *args) -> dict:
    out = tmp_path / "eval.json"
    proc = _run(
        ["-m", "liveaffect", "evaluate", "--model", str(FINAL), *args, "--json", str(out),
         "--no-progress"]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_evaluate_reproduces_the_cards_fer2013_numbers_clean_and_degraded(tmp_path):
    shared_path("fer2013", "test")
    # clean and all four degraded copies (about a minute on 2 cores with four views)
    got = _evaluate(tmp_path, "--data", "../shared/data/fer2013/test", "--degrade", "all")
    card = card_json()["metrics"]["evaluation"][FER_KEY]
    assert got["expr"]["n"] == card["expr"]["n"] == 3589
    assert got["expr"]["accuracy"] == pytest.approx(card["expr"]["accuracy"], abs=2e-3)
    assert got["expr"]["macro_f1"] == pytest.approx(card["expr"]["macro_f1"], abs=2e-3)
    assert got["au"]["mean_f1"] is None  # no AU labels: null, not 0
    clean = got["robustness"]["clean"]
    assert clean["unlabelled_share"] == pytest.approx(
        card["prediction_share"]["unlabelled_share"], abs=2e-3
    )
    assert set(card["degraded"]) == {"blur", "lowres", "noise", "dark"}
    for kind, copy in got["robustness"]["copies"].items():
        entry = card["degraded"][kind]
        assert copy["expr_accuracy"] == pytest.approx(entry["expr_accuracy"], abs=2e-3), kind
        assert copy["accuracy_drop"] == pytest.approx(entry["accuracy_drop"], abs=2e-3), kind
        share = copy["prediction_share"]
        assert share["max_ratio"] == pytest.approx(entry["max_ratio"], abs=2e-2), kind
    # scored with the test-time views the card names, which the app uses too
    views = card_tta(load_bundle(FINAL).card)
    assert views.n_views > 1 and got["meta"]["tta"] == views.describe()
    assert card["tta"] == views.to_dict()


@pytest.mark.slow
def test_evaluate_reproduces_the_cards_au_numbers_on_ckplus_test_subjects(tmp_path):
    shared_path("ckplus_au")
    got = _evaluate(
        tmp_path, "--data", CKPLUS, "--split", "all", "--group-by", "subject",
        "--holdout", "0.3:35:holdout_test",
    )  # fmt: skip
    card = card_json()["metrics"]["evaluation"][CK_TEST_KEY]
    assert got["au"]["n"] == card["au"]["n"] > 50
    assert got["au"]["mean_f1"] == pytest.approx(card["au"]["mean_f1"], abs=2e-3)
    for name, f1 in card["au"]["per_au_f1"].items():
        assert got["au"]["per_au"][name]["f1"] == pytest.approx(f1, abs=2e-3), name
    assert got["au"]["thresholds"] == card_json()["au_thresholds"]
    # the card's bootstrap interval (whole subjects resampled, seed 0) comes back too
    assert got["intervals"]["unit"] == card["intervals"]["unit"] == "subject"
    assert got["intervals"]["groups"] == card["intervals"]["groups"] == 12
    for bound, value in zip(
        ("low", "high"), card["intervals"]["metrics"]["au_mean_f1"], strict=True
    ):
        assert got["intervals"]["metrics"]["au_mean_f1"][bound] == pytest.approx(value, abs=1e-2)
    # what the live view marks: the per-AU F1 of these same test subjects, stored in the card
    au_f1 = card_json()["au_f1"]
    assert card_json()["au_f1_data"].startswith(CKPLUS + " [all] holdout 0.3:35:holdout_test")
    assert au_f1 == pytest.approx(card["au"]["per_au_f1"], abs=1e-9)
    assert open_bundle(FINAL).card.weak_aus() == ("AU10", "AU15", "AU26")


@pytest.mark.slow
def test_the_int8_engine_reproduces_the_cards_int8_numbers_close_to_float(tmp_path):
    """The card's numbers through ``--engine tflite-int8`` (what the app shows with it):
    reproduced, and within 0.005 of the float32 numbers on FER2013 and CK+ AUs."""
    shared_path("fer2013", "test")
    shared_path("ckplus_au")
    cards = card_json()["metrics"]["evaluation"]
    fer = _evaluate(
        tmp_path, "--data", "../shared/data/fer2013/test", "--degrade", "blur",
        "--engine", "tflite-int8",
    )  # fmt: skip
    card, float32 = cards[FER_KEY + INT8], cards[FER_KEY]
    assert fer["meta"]["engine"] == card["engine"] == "tflite-int8"
    for metric in ("accuracy", "macro_f1"):
        assert fer["expr"][metric] == pytest.approx(card["expr"][metric], abs=2e-3), metric
        assert card["expr"][metric] == pytest.approx(float32["expr"][metric], abs=5e-3), metric
    blur = fer["robustness"]["copies"]["blur"]["expr_accuracy"]
    assert blur == pytest.approx(card["degraded"]["blur"]["expr_accuracy"], abs=2e-3)
    ck = _evaluate(
        tmp_path, "--data", CKPLUS, "--split", "all", "--group-by", "subject",
        "--holdout", "0.3:35:holdout_test", "--engine", "tflite-int8",
    )  # fmt: skip
    card = cards[CK_TEST_KEY + INT8]
    assert ck["au"]["mean_f1"] == pytest.approx(card["au"]["mean_f1"], abs=2e-3)
    # the card's int8 table also quotes the expression accuracy on these subjects (99
    # faces: one answer moves it by 0.0101, so this allows one face to differ)
    assert ck["expr"]["accuracy"] == pytest.approx(card["expr"]["accuracy"], abs=1.1e-2)
    assert card["au"]["mean_f1"] == pytest.approx(cards[CK_TEST_KEY]["au"]["mean_f1"], abs=5e-3)
    assert ck["au"]["thresholds"] == card_json()["au_thresholds"]  # the card's, not re-tuned


@pytest.mark.slow
def test_the_woman_in_the_pexels_clip_goes_from_sad_to_happy(tmp_path):
    video = shared_path("videos", "pyfeat_WolfgangLanger_Pexels.mp4")
    out = tmp_path / "faces.csv"
    proc = _run(["emotion_classifier.py", str(video), "--no-display", "--csv", str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    # headless runs have no panel to put '?' on: the weak AUs are named at the start
    assert "AUs found poorly on new faces (F1 < 0.5 in the model card" in proc.stdout
    assert proc.stdout.count(": AU10, AU15, AU26\n") == 1
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    frames = max(int(r["frame"]) for r in rows) + 1
    assert len({int(r["frame"]) for r in rows}) >= 0.9 * frames
    assert all(r["AU01"] != "" and r["AU01_active"] in ("0", "1") for r in rows)
    labels = np.array([r["expression"] for r in rows])
    third = len(labels) // 3
    happy_first = float(np.mean(labels[:third] == "Happiness"))
    happy_last = float(np.mean(labels[-third:] == "Happiness"))
    assert happy_last >= happy_first + 0.4, (happy_first, happy_last)
    valence = np.array([float(r["valence"]) for r in rows])
    assert valence[-third:].mean() > valence[:third].mean()
    # the laugh at the end: cheek raiser and lip corner puller active in most of it
    for au in ("AU06", "AU12"):
        active = np.array([r[f"{au}_active"] == "1" for r in rows])
        assert active[-third:].mean() > 0.5, (au, active[-third:].mean())
        assert active[-third:].mean() > active[:third].mean(), au
