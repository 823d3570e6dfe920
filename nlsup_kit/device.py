"""Where and in what precision the kit computes: CUDA when present, with bf16 autocast on GPUs that have bf16
tensor cores (Ampere, compute capability 8.0, and later), fp16 autocast with loss scaling on older ones (a
Colab T4, a V100), fp32 on a CPU."""

from __future__ import annotations

import torch

from nlsup_kit.errors import NlsupError


def has_bf16_tensor_cores(device: torch.device | str) -> bool:
    """Not ``torch.cuda.is_bf16_supported()``: that answers True on a T4, which only emulates bf16 (pytorch/pytorch#148322: in fp32, far
    slower than fp16) and has no bf16 convolutions in cuDNN."""
    device = torch.device(device)
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """bf16 where the GPU computes it natively, fp16 on older GPUs, None (fp32) on a CPU."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.bfloat16 if has_bf16_tensor_cores(device) else torch.float16


def autocast_for(device: torch.device | str, dtype: torch.dtype | None | str = "auto"):
    """Autocast in ``dtype`` (by default :func:`autocast_dtype` of the device); None computes in fp32."""
    device = torch.device(device)
    dtype = autocast_dtype(device) if dtype == "auto" else dtype
    if dtype is None:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)


def should_compile(setting: bool | None, device: torch.device | str) -> bool:
    """A recipe's ``compile``; unset, compile on GPUs with bf16 tensor cores. Measured on an H100
    (benchmarks/RESULTS.md): the eager step there waits on Python launching kernels, and CUDA graphs make the
    VisualCSE iteration 1.9 times faster for about 75 s of compiling. On an older GPU the kernels themselves
    take longer than launching them, so graphs would save little."""
    return setting if setting is not None else has_bf16_tensor_cores(device)


def pick_device(device: str | None = None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NlsupError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    return torch.device(device)
