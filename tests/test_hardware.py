"""What the machine can do: whether a GPU can be present at all (so TensorFlow is asked)."""

from __future__ import annotations

import pytest

from liveaffect.hardware import may_have_gpu


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
