"""The reference code's AdamW (optimizer=reference-adamw) beside torch's (torch-adamw): one step over a model's
parameters, timed in one run, printed side by side with their ratio.

    python benchmarks/bench_optimizer.py [--model minilm-l6] [--device cpu|cuda] [--steps 30]

Both are torch's fused AdamW; the reference's sets its eps (a Python float) before each step. Steps alternate
between the two so that both see the same machine; each row is the median step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from nlsup_kit.device import pick_device
from nlsup_kit.encoder import SentenceEncoder
from nlsup_kit.optimizers import build_optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    device = pick_device(args.device)
    parameters = {name: [p.detach().clone().to(device).requires_grad_() for p in
                         SentenceEncoder.from_pretrained(args.model).parameters()]
                  for name in ("reference-adamw", "torch-adamw")}
    optimizers = {name: build_optimizer(name, params, 3e-5, fused=True) for name, params in parameters.items()}
    for params in parameters.values():
        for p in params:
            p.grad = torch.randn_like(p) * 1e-3
    seconds = {name: [] for name in optimizers}
    for step in range(args.steps + 3):
        for name, optimizer in optimizers.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if step >= 3:  # the first steps allocate the moments
                seconds[name].append(time.perf_counter() - start)
    count = sum(p.numel() for p in parameters["torch-adamw"])
    median = {name: statistics.median(values) * 1e3 for name, values in seconds.items()}
    print(f"one AdamW step over {args.model}'s {count / 1e6:.1f}M parameters on {device} "
          f"({torch.get_num_threads()} threads), median of {args.steps}:")
    for name, ms in median.items():
        print(f"  {name:16} {ms:8.2f} ms")
    print(f"  ratio reference-adamw / torch-adamw: {median['reference-adamw'] / median['torch-adamw']:.3f}")


if __name__ == "__main__":
    main()
