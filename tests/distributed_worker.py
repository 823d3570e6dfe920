"""One process of tests/test_distributed.py: the text and image losses of one global batch and the gradients
after the trainer's all-reduce, saved per rank, for each image loss named (comma-separated: one launch serves
them all). Run by ``torchrun`` (2 processes) or alone (the whole batch)."""

import os
import sys
from pathlib import Path

import torch

from nlsup_kit.recipes import apply_overrides, get_recipe
from nlsup_kit.trainer import Trainer


def gradients(trainer: Trainer, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    for p in trainer.iteration.parameters:
        p.grad = None
    loss.backward()
    from nlsup_kit import distributed

    distributed.average_gradients(trainer.iteration.parameters)
    named = {**{f"encoder.{n}": p for n, p in trainer.encoder.named_parameters()},
             **{f"branch.{n}": p for n, p in trainer.branch.named_parameters()}}
    return {n: p.grad.clone() for n, p in named.items() if p.grad is not None}


def main(model: str, data_dir: str, out: str, modality_losses: str) -> None:
    for modality_loss in modality_losses.split(","):
        (Path(out) / modality_loss).mkdir(exist_ok=True)
        one_loss(model, data_dir, Path(out) / modality_loss, modality_loss)


def one_loss(model: str, data_dir: str, out: Path, modality_loss: str) -> None:
    recipe = apply_overrides(get_recipe("quick-visualcse"), [
        f"model={model}", "max_text_examples=64", "batch_size=8", "modality_batch_size=8", "image_size=16",
        "patch_size=8", f"modality_loss={modality_loss}", "device=cpu"])
    trainer = Trainer(recipe, out / "run", data_dir, progress=False)
    for module in [*trainer.encoder.modules(), *trainer.branch.modules()]:
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0  # deterministic, so one process and two can be compared
    for layer in trainer.encoder.backbone.encoder.layer:
        layer.attention.self.dropout.p = 0.0
    trainer.encoder.train()
    trainer.branch.train()
    text_loss = trainer.iteration.text_loss_of(next(trainer.text.epoch()))
    generator = torch.Generator().manual_seed(0)
    views = torch.randn(2, 8, 3, 16, 16, generator=generator)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 3, 3])
    local = trainer.workers.local_slice(8, "modality_batch_size")
    image_loss = trainer.iteration.modality_loss_of((views[0][local], views[1][local], labels[local]))
    result = {"text_loss": text_loss.detach(), "image_loss": image_loss.detach(),
              "world_size": torch.tensor(trainer.workers.world_size)}
    result.update({f"text/{n}": g for n, g in gradients(trainer, text_loss).items()})
    result.update({f"image/{n}": g for n, g in gradients(trainer, image_loss).items()})
    torch.save(result, out / f"rank{os.environ.get('RANK', 'single')}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:])
