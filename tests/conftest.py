"""Shared fixtures: tiny random bundles (never shipped), paths to ../shared data."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from liveaffect.hardware import prefer_onednn

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# TensorFlow's oneDNN kernels, as the train and evaluate commands ask for them: the suite's
# Keras work (the card's reproductions above all) is faster with them on AVX2-only CPUs
prefer_onednn()

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# The files that take longest, in the order workers should get them. Under pytest-xdist
# (`python -m pytest -n auto`) each file runs whole on one worker (see
# pytest_xdist_make_scheduler), files are dealt in collection order and every worker starts
# with two: with two workers the first takes the card's reproductions (about half the
# suite's time on 2 cores) and the engine tests, the second the training and bench-script
# tests, and the rest go to whichever is free, so no long file is left to start late. Run in
# one process, only the order changes.
LONG_FILES = ("test_final_model.py", "test_training.py", "test_engines.py", "test_bench_scripts.py")


def pytest_collection_modifyitems(config, items):
    """The long files first, in LONG_FILES' order; the rest as collected (a stable sort)."""
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: absent without it, no error
def pytest_xdist_make_scheduler(config, log):
    """With ``-n`` and xdist's default ``--dist load``: whole files per worker (a module's
    fixtures, a Ray cluster or a trained run, are built once, not once per worker), dealt in
    collection order (``--no-loadscope-reorder``; xdist's own order, most tests first, put
    the card's reproductions behind 30 other files)."""
    if config.getoption("dist") != "load":  # another mode asked for: xdist's own
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False
    return LoadFileScheduling(config, log)


def recipe_stages(script: str = "final_model/train_progressive.sh") -> tuple[str, list]:
    """A from-scratch recipe script's run folder ($OUT) and its ``stage NAME CONFIG`` lines,
    in order, as (name, config path relative to the repo)."""
    text = (REPO / script).read_text()
    out = re.search(r"^OUT=(\S+)", text, re.M).group(1)
    return out, re.findall(r"^stage (\S+) (\S+)$", text, re.M)


def detector_options_from_flags(argv: list[str]) -> tuple:
    """The shared flags ``argv`` (``commands/model_options.py``) parsed as ``live`` and
    ``analyze`` parse them: (analyze's, live's) ``DetectorOptions``."""
    import argparse

    from liveaffect.analysis.runner import AnalysisSettings
    from liveaffect.commands.model_options import add_model_arguments, model_arguments
    from liveaffect.runtime.options import LiveOptions

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    values = model_arguments(parser.parse_args(argv))
    live = LiveOptions(source=0, display=False, **values)
    return AnalysisSettings(**values).detector_options, live.detector_options


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test when it is absent (a user's clone)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available (../shared/data is only present in CI)")
    return path


def make_tiny_bundle(
    out_dir: Path,
    input_size: int = 32,
    trained: tuple[str, ...] = ("expr", "va", "au"),
    color: str = "rgb",
    seed: int = 0,
    input_norm: str = "none",
) -> Path:
    """Build and save a tiny random multi-task bundle (for tests only)."""
    import keras

    from liveaffect.bundle import HEADS, HeadInfo, ModelCard, save_bundle
    from liveaffect.model.mtl import HeadConfig, ModelConfig, build_mtl_model
    from liveaffect.preprocess import PreprocessSpec

    keras.utils.set_random_seed(seed)
    cfg = ModelConfig(
        backbone="tiny",
        input_size=input_size,
        color=color,
        head=HeadConfig(attention_heads=1, attention_key_dim=8, shared_units=16, branch_units=0),
        input_norm=input_norm,
    )
    model = build_mtl_model(cfg)
    card = ModelCard(
        name="tiny-random-test-bundle",
        backbone="tiny",
        preprocess=PreprocessSpec(
            input_size=(input_size, input_size), color=color, crop_margin=0.1
        ),
        heads={h: HeadInfo(trained=h in trained, data="random weights (test)") for h in HEADS},
        notes="Random weights, built by the test-suite. Never ship.",
    )
    return save_bundle(model, card, out_dir)


@pytest.fixture
def tiny_bundle_factory(tmp_path):
    """``factory(input_size=32, trained=("expr","va","au"), color="rgb") -> bundle dir``."""
    counter = iter(range(1000))

    def factory(**kwargs) -> Path:
        return make_tiny_bundle(tmp_path / f"bundle{next(counter)}", **kwargs)

    return factory


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """One tiny random bundle with all heads marked trained, shared by a session."""
    return make_tiny_bundle(tmp_path_factory.mktemp("tiny_bundle"))


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """A tiny real video file: 5 grey frames of 64x48, MJPG at 10 fps."""
    import cv2
    import numpy as np

    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


def write_truncated_video(path: Path) -> Path:
    """A 160x120 MJPG video of 40 frames cut in half: it opens and announces 40 frames, but
    only a dozen or so decode."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    for i in range(40):
        writer.write(np.full((120, 160, 3), i * 5, np.uint8))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path
