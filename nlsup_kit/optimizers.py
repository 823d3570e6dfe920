"""The optimizers a recipe names (``optimizer=``): the reference code's AdamW, or torch's.

The reference code trains with ``transformers.optimization.AdamW`` of transformers 4.5.0, the version its README
pins (VisualCSE/src/trainers.py line 76 imports it; the image optimizer is built at line 516, AudioCSE's at line
528; the text optimizer comes from 4.5.0's ``Trainer.create_optimizer``, trainer.py lines 678-681). Its update
(4.5.0 optimization.py lines 345-355) adds eps to sqrt(v) *before* the bias correction::

    p -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)

torch's AdamW computes ``lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps')``: the same update when
``eps' = eps / sqrt(1 - beta2^t)``. :class:`ReferenceAdamW` sets that eps before every step, so torch's fused
kernel does the arithmetic (3.2e-7 at step 1, falling to eps as t grows).
"""

from __future__ import annotations

import math

import torch

from nlsup_kit.errors import NlsupError

OPTIMIZERS = ("reference-adamw", "torch-adamw")
BETAS, EPS = (0.9, 0.999), 1e-8  # TrainingArguments' adam_beta1/2 and adam_epsilon in 4.5.0; torch's defaults too


class ReferenceAdamW(torch.optim.AdamW):
    """transformers 4.5.0's AdamW through torch's (fused where possible) AdamW, without weight decay.

    Each param group counts its own steps (a Python int, so no step reads the device): every parameter of a
    group that steps has a gradient each time in the kit's updates, so one count is every parameter's ``t``.
    The count and the base eps are entries of the group, so they travel in ``state_dict()``.
    """

    def __init__(self, params, lr: float | torch.Tensor, betas: tuple[float, float] = BETAS, eps: float = EPS,
                 fused: bool | None = None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=0.0, fused=fused)
        for group in self.param_groups:
            group.update(reference_eps=eps, reference_steps=0)
        # GradScaler must skip step() itself on an overflow, as it skips the reference's (VisualCSE/src/trainers.py
        # line 596: image_scaler.step); a fused step told of the overflow would skip the update, not our count
        self._step_supports_amp_scaling = False

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            if any(p.grad is not None for p in group["params"]):
                group["reference_steps"] += 1
                group["eps"] = group["reference_eps"] / math.sqrt(1.0 - group["betas"][1] ** group["reference_steps"])
        return super().step(closure)


def build_optimizer(name: str, parameters: list, learning_rate: float | torch.Tensor, fused: bool,
                    capturable: bool = False) -> torch.optim.AdamW:
    """The recipe's AdamW (no weight decay: 0 in every paper recipe) over ``parameters``. ``capturable``: for a
    whole-update CUDA graph, the learning rate a device tensor; a graph keeps the eps it was captured with, so
    only torch's AdamW can be captured."""
    if name == "torch-adamw":
        return torch.optim.AdamW(parameters, lr=learning_rate, betas=BETAS, eps=EPS, weight_decay=0.0,
                                 fused=fused, capturable=capturable)
    if capturable:
        raise NlsupError("optimizer=reference-adamw changes eps at every step, which a captured CUDA graph "
                         "cannot: use --set optimizer=torch-adamw with whole-update graphs")
    return ReferenceAdamW(parameters, lr=learning_rate, fused=fused)


def optimizer_of_state(state: dict) -> str:
    """Which optimizer wrote an optimizer ``state_dict``."""
    return "reference-adamw" if "reference_eps" in state["param_groups"][0] else "torch-adamw"
