"""Where and in what precision the kit computes: CUDA when present, bf16 autocast there, fp32 elsewhere."""

from __future__ import annotations

import torch

from nlsup_kit.errors import NlsupError


def autocast_for(device: torch.device | str):
    """bf16 autocast on CUDA, nothing (fp32) elsewhere, so CPU runs never hit fp16 kernels."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def pick_device(device: str | None = None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NlsupError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    return torch.device(device)
