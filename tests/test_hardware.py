"""What the machine can do: whether a GPU can be present at all (so TensorFlow is asked), and
TensorFlow's oneDNN kernels asked for by the commands that load TensorFlow."""

from __future__ import annotations

import os

import pytest

from liveaffect.cli import main
from liveaffect.hardware import ONEDNN_ENV, may_have_gpu, prefer_onednn


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        ((), False),  # a CPU-only Linux machine: TensorFlow need not be asked
        (("null", "nvidiactl", "nvidia-uvm"), False),  # driver nodes, but no GPU
        (("nvidia0", "nvidiactl"), True),
        (("nvidia3",), True),
        (("nvhost-ctrl-gpu", "nvhost-gpu"), True),  # Jetson
        (("nvhost-ctrl", "nvhost-vic"), False),  # Jetson nodes that are not its GPU
        (("dxg",), True),  # WSL2
        (("kfd",), True),  # AMD ROCm
    ],
)
def test_a_gpu_may_be_present_only_where_linux_has_its_device_node(tmp_path, nodes, expected):
    for name in nodes:
        (tmp_path / name).touch()
    assert may_have_gpu(tmp_path, "linux") is expected


def test_elsewhere_only_tensorflow_can_tell(tmp_path):
    assert may_have_gpu(tmp_path, "darwin") is True
    assert may_have_gpu(tmp_path, "win32") is True


def test_onednn_is_asked_for_unless_the_user_chose():
    env: dict[str, str] = {}
    assert prefer_onednn(env) is True and env == {ONEDNN_ENV: "1"}
    assert prefer_onednn(env) is False and env == {ONEDNN_ENV: "1"}
    chosen = {ONEDNN_ENV: "0"}  # the user's "off" stays off
    assert prefer_onednn(chosen) is False and chosen == {ONEDNN_ENV: "0"}


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--config", "no-such-config.yaml", "--out", "no-such-run"],
        ["evaluate", "--model", "no-such-bundle", "--data", "no-such-data"],
        ["export", "--model", "no-such-bundle"],
    ],
)
def test_the_commands_that_load_tensorflow_ask_for_onednn_first(
    monkeypatch, tmp_path, argv, capsys
):
    monkeypatch.chdir(tmp_path)  # the paths named are missing; nothing is written elsewhere
    monkeypatch.delenv(ONEDNN_ENV, raising=False)
    assert main(argv) != 0  # refused: nothing to work on; the variable was set before that
    assert "error:" in capsys.readouterr().err
    assert os.environ[ONEDNN_ENV] == "1"
