"""One training update (zero the gradients, forward, loss, backward, clip, AdamW) as one CUDA graph.

``torch.compile(mode="reduce-overhead")`` graphs the forward and the backward but leaves the loss, the clip and
the optimizer to Python between them; on an H100 the compiled VisualCSE image update then took 40 ms for about
34 ms of GPU work (benchmarks/RESULTS.md). Capturing the whole update removes those gaps: a replay is one launch.

What a whole-update graph needs, and :class:`~nlsup_kit.step.AlternatingStep` provides: fixed shapes, no host
sync (no loss scaling, one process), inputs copied into the same device tensors every time, an optimizer built
with ``capturable=True`` and its learning rate a device tensor that the schedule refills between replays.
"""

from __future__ import annotations

from typing import Callable

import torch


class UpdateGraph:
    """``update(*inputs) -> loss`` run on static device copies of its inputs: the first ``warmup`` calls run it
    for real on a side stream (compiling and allocating optimizer state outside the capture, as CUDA graphs
    require), the next call captures it once and every call from there replays it. The warm-up calls are real
    training updates, so graphing changes no update. Off CUDA there is nothing to capture: every call runs
    ``update`` on the static copies (the same data path, which tests can check on a CPU)."""

    def __init__(self, update: Callable[..., torch.Tensor], device: torch.device, warmup: int = 2):
        self.update, self.device, self.warmup = update, device, warmup
        self.static: list[torch.Tensor] | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.loss: torch.Tensor | None = None
        self.calls = 0

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.static is None:
            self.static = [torch.empty_like(t, device=self.device) for t in inputs]
        for static, value in zip(self.static, inputs):
            static.copy_(value, non_blocking=True)
        self.calls += 1
        if self.device.type != "cuda":
            return self.update(*self.static)
        if self.graph is not None:
            self.graph.replay()
            return self.loss
        if self.calls <= self.warmup:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                loss = self.update(*self.static)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return loss
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):  # loader threads may pin memory
            self.loss = self.update(*self.static)
        self.graph.replay()  # capturing records the update without running it
        return self.loss
