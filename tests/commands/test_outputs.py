"""Output paths are checked before a command's work starts; a misspelt command is named; Ctrl-C
ends with one line."""

from __future__ import annotations

import io
import os
import sys

import pytest

from liveaffect.cli import main
from liveaffect.commands.outputs import check_not_an_input, check_output_file
from liveaffect.errors import CliError


def test_writable_paths_pass_and_missing_folders_are_fine(tmp_path):
    check_output_file(None, "--json")
    check_output_file(tmp_path / "a.json", "--json")
    check_output_file(tmp_path / "new" / "deeper" / "a.json", "--json")  # writers create them
    check_output_file("gs://bucket/a.json", "--json")  # left to the writer
    assert os.listdir(tmp_path) == []  # the check itself writes nothing


@pytest.mark.parametrize(
    "where, message",
    [
        (".", "is a folder, not a file"),
        ("f.txt/a.json", "f.txt is a file, not a folder"),
        ("f.txt/x/a.json", "f.txt is a file, not a folder"),
        ("/proc/liveaffect/a.json", "cannot write in /proc"),
    ],
)
def test_unwritable_paths_are_one_line_naming_the_flag(tmp_path, where, message):
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(CliError, match=rf"^--json .*{message}"):
        check_output_file(tmp_path / where, "--json")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(CliError, match="cannot write in"):
            check_output_file(tmp_path / "a.json", "--json")
    finally:
        tmp_path.chmod(0o700)


def test_evaluate_refuses_an_unwritable_json_before_reading_data(capsys, tmp_path):
    code = main(["evaluate", "--model", str(tmp_path / "none"), "--data", str(tmp_path / "no"),
                 "--json", "/proc/x.json"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --json /proc/x.json: cannot write in /proc"), err
    assert len(err.splitlines()) == 1  # before the model or the data is looked at


def test_export_checks_out_and_samples_before_writing(capsys, tmp_path, tiny_bundle):
    out = tmp_path / "m.tflite"
    code = main(["export", "--model", str(tiny_bundle), "--samples", str(tmp_path / "no"),
                 "--out", str(out)])  # fmt: skip
    assert code == 2 and "does not exist" in capsys.readouterr().err
    assert not out.exists()  # a bad --samples writes nothing
    (tmp_path / "f").write_text("x")
    code = main(["export", "--model", str(tiny_bundle), "--out", str(tmp_path / "f" / "m.tflite")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --out ") and "is a file, not a folder" in err


def test_an_output_over_an_input_is_refused(tmp_path):
    (tmp_path / "in.csv").write_text("x")
    inputs = [tmp_path / "in.csv", tmp_path, None, tmp_path / "missing.csv"]
    check_not_an_input(tmp_path / "out.json", "--json", inputs)
    check_not_an_input(None, "--json", inputs)
    with pytest.raises(CliError, match=r"^--json .*in\.csv would overwrite a file this command"):
        check_not_an_input(tmp_path / "sub" / ".." / "in.csv", "--json", inputs)


def test_bench_refuses_a_json_over_the_video_or_the_model(capsys, tmp_path, video, tiny_bundle):
    for target in (video, tiny_bundle / "model.keras"):
        code = main(["bench", "--source", str(video), "--model", str(tiny_bundle),
                     "--json", str(target)])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and "would overwrite a file this command reads" in err, err


@pytest.mark.parametrize(
    "word, meant", [("evaluat", "evaluate"), ("trian", "train"), ("analyse", "analyze")]
)
def test_a_misspelt_command_is_named(capsys, word, meant):
    assert main([word, "--model", "x"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: no command or video {word!r}; did you mean {meant!r}?"
    )


def test_a_missing_video_is_still_a_missing_video(capsys):
    assert main(["clip.mp4", "--no-display"]) == 2
    assert "video file not found: clip.mp4" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal, said", [(True, "\ninterrupted\n"), (False, "interrupted\n")])
def test_ctrl_c_says_interrupted_on_a_line_of_its_own(monkeypatch, terminal, said):
    """On a terminal a progress bar (training's) leaves its line open: a newline comes first."""
    import liveaffect.commands.bench as bench

    def stopped(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "run", stopped)
    err = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["bench", "--source", "clip.mp4"]) == 130
    assert err.getvalue() == said


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--epochs", "0", "epochs and batch_size must be >= 1"),
        ("--batch-size", "0", "epochs and batch_size must be >= 1"),
        ("--image-size", "0", "input_size must be >= 16, got 0"),
    ],
)
def test_train_refuses_a_zero_size_instead_of_using_the_default(capsys, tmp_path, flag, value,
                                                                 message):  # fmt: skip
    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), flag, value])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not (tmp_path / "run").exists()


def test_train_refuses_weights_for_a_backbone_without_them(capsys, tmp_path):
    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                 "--backbone", "tiny", "--weights", str(tmp_path / "w.h5")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "backbone tiny always starts from random weights" in err, err


def test_train_refuses_an_out_below_a_file(capsys, tmp_path):
    (tmp_path / "f.jpg").write_text("x")
    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "f.jpg" / "run")])
    err = capsys.readouterr().err
    assert code == 2 and f"{tmp_path / 'f.jpg'} is a file" in err, err


@pytest.mark.parametrize("out", ["/proc/liveaffect/run", "/proc/liveaffect"])
def test_train_refuses_an_unwritable_out_before_reading_data(capsys, tmp_path, out):
    """An --out nothing can be written in is one line naming --out, before the data is read
    (here a folder that is no dataset: reading it would be a different error) or TensorFlow
    starts; not a traceback once the data has been read."""
    code = main(["train", "--data", str(tmp_path), "--out", out])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: --out {out}: cannot write in /proc"), err
    assert len(err.splitlines()) == 1 and os.listdir(tmp_path) == []


@pytest.mark.parametrize("flag", ["--model", "--baseline"])
def test_evaluate_names_a_missing_model_before_reading_data(capsys, tmp_path, flag):
    """A misspelt --model (or --baseline) is named before the data is read, which for
    Aff-Wild2 means listing every frame; here the data is no dataset at all, and reading it
    first gave that error instead."""
    (tmp_path / "m.keras").write_text("not read: the data is not a dataset either")
    models = {"--model": str(tmp_path / "m.keras"), "--baseline": str(tmp_path / "m.keras")}
    models[flag] = str(tmp_path / "no_bundle")
    code = main(["evaluate", "--model", models["--model"], "--baseline", models["--baseline"],
                 "--data", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    missing = f"error: {tmp_path / 'no_bundle'}: no such model file or bundle folder\n"
    assert code == 2 and err == missing, err
