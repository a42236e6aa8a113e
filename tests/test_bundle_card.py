"""The card read without Keras (``read_card``), its ``version``, and the model file's digest
(``file_sha256``: hashed once per version of the file, however many readers ask)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from conftest import make_tiny_bundle

from liveaffect import bundle as bundle_module
from liveaffect.bundle import (
    CARD_FILE,
    BundleError,
    HeadInfo,
    ModelCard,
    file_sha256,
    read_card,
)


def _misses() -> int:
    return bundle_module._sha256_of.cache_info().misses


def test_file_sha256_reads_a_file_once_until_it_changes(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"first weights")
    before = _misses()
    assert file_sha256(path) == hashlib.sha256(b"first weights").hexdigest()
    assert file_sha256(str(path)) == file_sha256(tmp_path / "." / "model.keras")
    assert _misses() == before + 1  # one read for three asks, by any spelling of the path
    st = path.stat()
    path.write_bytes(b"other weights")  # same size, same inode
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime put back
    assert file_sha256(path) == hashlib.sha256(b"other weights").hexdigest()
    assert _misses() == before + 2


def test_a_cards_version_round_trips_and_is_left_out_when_empty(tmp_path):
    card = ModelCard(name="m", version="2026.12-a")
    card.save(tmp_path / CARD_FILE)
    assert json.loads((tmp_path / CARD_FILE).read_text())["version"] == "2026.12-a"
    assert read_card(tmp_path / CARD_FILE).version == "2026.12-a"
    assert "version" not in ModelCard(name="m").to_dict()
    assert read_card(None) is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"card\.json: not valid JSON"),
        ('{"au_thresholds": [0.5]}', r"card\.json: invalid model card: au_thresholds needs 12"),
        (None, r"card\.json: cannot read the card"),
    ],
)
def test_a_bad_card_is_named_with_its_path(tmp_path, content, message):
    path = tmp_path / CARD_FILE
    if content is None:
        path.mkdir()  # a folder where the file should be: reading it fails
    else:
        path.write_text(content)
    with pytest.raises(BundleError, match=message):
        read_card(path)


def test_streams_send_the_cards_version_else_the_weights_digest(tmp_path):
    from liveaffect.runtime.streams import StreamMeta

    path = tmp_path / "b"
    path.mkdir()
    (path / "model.keras").write_bytes(b"not read as a model: the card is enough")
    ModelCard(name="named").save(path / CARD_FILE)
    digest = hashlib.sha256((path / "model.keras").read_bytes()).hexdigest()
    assert StreamMeta.from_model(path).model_version == f"sha256:{digest[:12]}"
    ModelCard(name="named", version="v3", au_f1={"AU1": 0.3, "AU12": 0.8}).save(path / CARD_FILE)
    meta = StreamMeta.from_model(path)
    assert (meta.model_name, meta.model_version) == ("named", "v3")
    assert meta.weak_aus == ("AU01",)  # named as the stream names AUs
    untrained = {"expr": HeadInfo(), "va": HeadInfo(), "au": HeadInfo(trained=False)}
    ModelCard(heads=untrained, au_f1={"AU1": 0.3}).save(path / CARD_FILE)
    assert StreamMeta.from_model(path).weak_aus == ()  # no AU values sent, nothing weak
    (path / CARD_FILE).write_text("{")
    with pytest.raises(BundleError, match=r"card\.json: not valid JSON"):
        StreamMeta.from_model(path)


def test_an_engine_from_a_warm_cache_hashes_the_model_once(tmp_path):
    """The start-up asks twice (is the cache warm? then: open it): one read of the file."""
    from liveaffect.bundle import open_bundle
    from liveaffect.engines import EngineOptions, build_engine, converts_first

    path = make_tiny_bundle(tmp_path / "b", seed=7)
    build_engine(open_bundle(path), EngineOptions("tflite", tta=False))  # warms the cache
    os.utime(path / "model.keras")  # a new version of the file as far as the memo knows
    before = _misses()
    opened = open_bundle(path)
    options = EngineOptions("tflite", tta=False)
    assert converts_first(opened, options) is None
    engine = build_engine(opened, options)
    assert engine.model_path.is_file() and not opened.loaded
    assert _misses() == before + 1
