"""How a step is timed: warm-up, clocks synchronised with the GPU, peak memory, the profiler's table, and the
attention kernel a run prefers."""

from __future__ import annotations

import contextlib
import gc
import time

import torch

from nlsup_kit.errors import NlsupError

ATTENTION_BACKENDS = ("auto", "flash", "efficient", "cudnn", "math")



def attention_backend(name: str):
    """A context preferring one of PyTorch's attention kernels (``auto``: PyTorch's own choice). A preference,
    not a requirement: where the preferred kernel cannot run (flash takes no key mask, which padded text needs)
    the next that can runs instead."""
    if name not in ATTENTION_BACKENDS:
        raise NlsupError(f"attention backend {name!r}: choose one of {', '.join(ATTENTION_BACKENDS)}")
    if name == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    order = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
             "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}
    return sdpa_kernel([order.pop(name), *order.values()], set_priority=True)



def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)



def time_steps(run_step, inputs: list, warmup: int, steps: int, device: torch.device) -> tuple[float, float]:
    """Seconds per step over ``steps`` timed steps (synchronised only at the ends) after ``warmup`` untimed
    ones, and the seconds of the very first step (where compilation and CUDA graph capture happen)."""
    start = time.perf_counter()
    run_step(inputs[0])
    synchronize(device)
    first = time.perf_counter() - start
    for i in range(1, warmup):
        run_step(inputs[i % len(inputs)])
    synchronize(device)
    start = time.perf_counter()
    for i in range(steps):
        run_step(inputs[i % len(inputs)])
    synchronize(device)
    return (time.perf_counter() - start) / steps, first



def profile_steps(run_step, inputs: list, steps: int, device: torch.device, rows: int = 25) -> str:
    """The torch profiler's table of the ``rows`` operators that take the most time over ``steps`` steps (GPU
    time on a GPU, CPU time elsewhere): where a step's time goes, to choose what to speed up."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        for i in range(steps):
            run_step(inputs[i % len(inputs)])
        synchronize(device)
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return profiler.key_averages().table(sort_by=sort, row_limit=rows, max_name_column_width=60)



def reset_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)



def peak_memory_mb(device: torch.device) -> float | None:
    """Peak GPU memory allocated since the last reset (None on a CPU: no per-step peak to read)."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None

