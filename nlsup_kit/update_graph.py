"""One training update (zero the gradients, forward, loss, backward, clip, AdamW) as one CUDA graph.

``torch.compile(mode="reduce-overhead")`` graphs the forward and the backward but leaves the loss, the clip and
the optimizer to Python between them; on an H100 the compiled VisualCSE image update then took 40 ms for about
34 ms of GPU work (benchmarks/RESULTS.md). Capturing the whole update removes those gaps: a replay is one launch.

What a whole-update graph needs, and :class:`~nlsup_kit.step.AlternatingStep` provides: fixed shapes, no host
sync (no loss scaling, one process), inputs copied into the same device tensors every time, an optimizer built
with ``capturable=True`` and its learning rate a device tensor that the schedule refills between replays.

Status: experimental, off unless asked for. On an H200 with torch 2.11 the capture was invalidated
(``cudaErrorStreamCaptureInvalidated``) in every run. The cause, found afterwards on a CPU: both image/audio
losses had shapes that depend on the labels (``torch.unique``, boolean indexing), which wait for the GPU. They
are fixed-shape now, and a fake-tensor test runs whole iterations of every loss on a CPU; the capture itself
awaits a GPU (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from typing import Callable

import torch


def detached(losses):
    """Losses without their autograd graph: a kept graph keeps every parameter's gradient accumulator alive,
    with the stream it was made on."""
    if isinstance(losses, dict):
        return {name: loss.detach() for name, loss in losses.items()}
    return losses.detach()


class UpdateGraph:
    """``update(*inputs) -> loss`` run on static device copies of its inputs: the first ``warmup`` calls run it
    for real on ``stream`` (compiling and allocating optimizer state outside the capture, as CUDA graphs
    require), the next call captures it once on that stream and every call from there replays it. The warm-up
    calls are real training updates, so graphing changes no update. Off CUDA there is nothing to capture: every
    call runs ``update`` on the static copies (the same data path, which tests can check on a CPU).

    Warm-up and capture share one stream, and graphs of updates of the same parameters share it too: autograd
    remembers the stream each parameter's gradient accumulator was made on, and a capture whose backward meets
    an accumulator of another stream is invalidated."""

    def __init__(self, update: Callable[..., torch.Tensor], device: torch.device,
                 stream: torch.cuda.Stream | None = None, warmup: int = 2):
        self.update, self.device, self.stream, self.warmup = update, device, stream, warmup
        self.static: list[torch.Tensor] | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.loss = None  # the captured update's losses, rewritten by each replay
        self.calls = 0

    def __call__(self, *inputs: torch.Tensor):
        if self.static is None:
            self.static = [torch.empty_like(t, device=self.device) for t in inputs]
        for static, value in zip(self.static, inputs):
            static.copy_(value, non_blocking=True)
        self.calls += 1
        if self.device.type != "cuda":
            return detached(self.update(*self.static))
        if self.graph is not None:
            self.graph.replay()
            return self.loss
        if self.calls <= self.warmup:
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                loss = detached(self.update(*self.static))
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
            return loss
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: the data loader's pinning thread may call CUDA while this thread captures.
        # fail_on_recompile: a compile inside a capture reads the CUDA random state and invalidates the capture
        # without saying why (pytorch/pytorch#131782); this names the guard that changed instead.
        with torch.compiler.set_stance("fail_on_recompile"), \
                torch.cuda.graph(self.graph, stream=self.stream, capture_error_mode="thread_local"):
            self.loss = detached(self.update(*self.static))
        self.graph.replay()  # capturing records the update without running it
        return self.loss
