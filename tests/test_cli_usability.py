"""The command line a new user meets: --version, live as the default command, help
without doubled defaults, start-up without TensorFlow's log noise, the console script."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from liveaffect.cli import SUBCOMMANDS, build_parser, main

REPO = Path(__file__).resolve().parents[1]
NOISE = re.compile(r"oneDNN|cuInit|cuda|absl|XNNPACK|cudart|port\.cc", re.IGNORECASE)


def test_version_everywhere(capsys):
    from liveaffect import __version__

    assert main(["--version"]) == 0
    for argv in (["live", "--version"], ["evaluate", "--version"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 0
    outputs = capsys.readouterr().out.split()
    assert outputs == ["liveaffect", __version__] * 3
    proc = subprocess.run(
        [sys.executable, "emotion_classifier.py", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"liveaffect {__version__}"


def test_live_is_the_default_command(capsys, tmp_path):
    """`python -m liveaffect clip.mp4` is `live clip.mp4` (here: a missing clip, exit 2)."""
    code = main([str(tmp_path / "clip.mp4"), "--no-display"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: video file not found") and "clip.mp4" in err
    proc = subprocess.run(
        [sys.executable, "-m", "liveaffect", str(tmp_path / "clip.mp4"), "--no-display"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "video file not found" in proc.stderr


@pytest.mark.parametrize("command", list(SUBCOMMANDS))
def test_help_states_each_default_once(command):
    parser = build_parser(command)
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    text = sub.format_help()
    blocks = re.split(r"\n  (?=-)", text)
    for block in blocks:
        assert "(default: None)" not in block, block
        if "(default:" in block:  # appended: the help itself must not state one already
            own = block.split("(default:")[0]
            assert "default" not in own.lower(), block
    assert "--version" in text


@pytest.mark.slow
@pytest.mark.shared
def test_start_up_is_quiet_unless_verbose(tiny_bundle):
    from conftest import shared_path

    clip = shared_path("videos", "pyfeat_single_face.mp4")
    cmd = [sys.executable, "emotion_classifier.py", str(clip), "--no-display"]
    cmd += ["--max-frames", "2", "--model", str(tiny_bundle)]
    quiet = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert not NOISE.search(quiet.stderr), quiet.stderr
    assert quiet.stderr.strip() == ""
    loud = subprocess.run(
        [*cmd, "--verbose"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert loud.returncode == 0 and NOISE.search(loud.stderr), loud.stderr


@pytest.mark.slow
def test_export_says_nothing_of_tensorflow_and_wants_a_tflite_name(tiny_bundle, tmp_path):
    cmd = [sys.executable, "-m", "liveaffect", "export", "--model", str(tiny_bundle)]
    proc = subprocess.run(
        [*cmd, "--out", str(tmp_path / "m.tflite")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not NOISE.search(proc.stderr + proc.stdout), proc.stderr + proc.stdout
    assert main(["export", "--model", str(tiny_bundle), "--out", str(tmp_path / "m.txt")]) == 2
    assert not (tmp_path / "m.txt").exists()


def test_pyproject_declares_the_console_script_and_dependencies():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["liveaffect"] == "liveaffect.cli:main"
    wanted = {
        line.split(">")[0].split("=")[0].split("<")[0].strip()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith(("pytest", "ruff"))
    }
    declared = {re.split(r"[<>=]", d)[0].strip() for d in project["dependencies"]}
    assert wanted <= declared


@pytest.mark.parametrize(
    "argv, live_prog, prog",
    [
        (["live", "clip.mp4", "--no-dispaly"], "python emotion_classifier.py",
         "python emotion_classifier.py"),
        (["clip.mp4", "--no-dispaly"], None, "python -m liveaffect live"),
        (["bench", "--source", "x.mp4", "--no-ta"], None, "python -m liveaffect bench"),
    ],
)  # fmt: skip
def test_an_unknown_option_is_named_by_its_commands_usage_with_a_suggestion(
    capsys, argv, live_prog, prog
):
    with pytest.raises(SystemExit) as stop:
        main(argv, live_prog=live_prog)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.startswith(f"usage: {prog} "), err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"{prog}: error: unrecognized arguments: {argv[-1]}"), last
    assert last.endswith("(did you mean --no-display?)" if "dispaly" in argv[-1] else
                         "(did you mean --no-tta?)")  # fmt: skip
