"""What this machine's CPU can do: its model and the SIMD features that speeds depend on;
and whether it may have a GPU at all.

Two choices in the project depend on the CPU, not only on its core count:

* the int8 engine runs the default model about 4x faster than float on a CPU with
  AVX-512 VNNI, and about 1.1x on one with AVX2 only (``bench/README.md``);
* bfloat16 mixed-precision training is about 30% faster than float32 on a CPU with
  AVX512-BF16 or AMX, and about 10x *slower* on one without (TensorFlow then emulates
  bfloat16: 9.0 s against 0.9 s per step of the default model on an AVX2-only EPYC).

And one TensorFlow setting, :func:`prefer_onednn`: TensorFlow turns its oneDNN kernels on by
itself only on CPUs with AVX512-VNNI, AVX512-BF16 or AMX; on an AVX2-only AMD EPYC (Zen 3)
they made a training step of the default model 1.3-1.8x faster and ``evaluate`` 1.3x.

The features are read from ``/proc/cpuinfo`` (Linux). Elsewhere they are unknown (None);
no maintained library reports them without compiling code (``py-cpuinfo`` runs CPUID
through a helper process), and these few lines are all that is needed here.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

CPUINFO = "/proc/cpuinfo"
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16")
"""CPU features reported with every measurement (int8 gains most with VNNI)."""
GPU_DEVICE_NODES = ("nvidia[0-9]*", "nvhost-*gpu", "dxg", "kfd")
"""Linux device nodes of the GPUs TensorFlow can use: NVIDIA, NVIDIA Jetson, WSL2's GPU,
AMD ROCm."""
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
"""Any of these: the CPU computes bfloat16 natively (mixed-precision training pays off)."""
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
"""TensorFlow's switch for its oneDNN CPU kernels ("1" on, "0" off, unset: TensorFlow decides)."""


def _read(cpuinfo: str | os.PathLike) -> tuple[str | None, set[str] | None]:
    """The first processor's model name and flags, or None where they cannot be read."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None, None
    model, flags = None, None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and flags is None:
            flags = set(value.split())
    return model, flags


def cpu_info(cpuinfo: str | os.PathLike = CPUINFO) -> dict[str, Any]:
    """The CPU a measurement ran on: cores, architecture, model name and SIMD features.

    ``cpu_model`` and ``simd`` are None where ``cpuinfo`` cannot be read (not Linux);
    ``simd`` lists the :data:`SIMD_FLAGS` present.
    """
    model, flags = _read(cpuinfo)
    return {
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "cpu_model": model,
        "simd": None if flags is None else [f for f in SIMD_FLAGS if f in flags],
    }


def native_bfloat16(cpuinfo: str | os.PathLike = CPUINFO) -> bool | None:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX); None: unknown."""
    _, flags = _read(cpuinfo)
    return None if flags is None else any(f in flags for f in BFLOAT16_FLAGS)


def may_have_gpu(dev: str | os.PathLike = "/dev", platform_name: str = sys.platform) -> bool:
    """False where no GPU can be present: Linux with none of :data:`GPU_DEVICE_NODES`.

    True elsewhere (a GPU there, or another system: unknown), where only TensorFlow can
    tell; asking it costs its start-up (about 10 s and 600 MB), which this check spares the
    live app on a CPU-only Linux machine.
    """
    if not platform_name.startswith("linux"):
        return True
    return any(any(Path(dev).glob(pattern)) for pattern in GPU_DEVICE_NODES)


def prefer_onednn(environ: MutableMapping[str, str] | None = None) -> bool:
    """Ask TensorFlow for its oneDNN CPU kernels unless the user chose (``TF_ENABLE_ONEDNN_OPTS``).

    Left unset, TensorFlow turns them on only on CPUs with AVX512-VNNI, AVX512-BF16 or AMX,
    and off on AVX2-only ones, where they are faster for this project's networks: on a
    2-core AMD EPYC Zen 3 one training step of the default model's 48x48 stage took 619-797
    ms with them against 1,006-1,168 ms without, and ``evaluate`` on FER2013 PublicTest 31 s
    against 41 s, with the same metrics (``bench/README.md``, "On an AMD EPYC Zen 3").
    Takes effect only before TensorFlow is imported: the commands built on TensorFlow
    (train, evaluate, export) call it first; live, bench and analyze run TFLite on a CPU, and
    their Keras engine (four views of one face a call) was no faster with it.

    Returns:
        True if this call set it, False if the environment already said.
    """
    env = os.environ if environ is None else environ
    if ONEDNN_ENV in env:
        return False
    env[ONEDNN_ENV] = "1"
    return True
