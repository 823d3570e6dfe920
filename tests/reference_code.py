"""The reference code's arithmetic, transcribed for the tests, independent of the kit.

Each piece names the lines it comes from: github.com/yiren-jian/NonLing-CSE at 3e1e01c (VisualCSE/ and
AudioCSE/ src/models.py, src/trainers.py) and transformers 4.5.0, the version its README pins (optimization.py,
trainer.py). Only torch's modules and Hugging Face's BERT and ViT embedding modules are used, never the kit's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class AdamW450(torch.optim.Optimizer):
    """transformers 4.5.0 optimization.py ``AdamW.step`` (lines 309-368), with its bias correction."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, correct_bias=True))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p.data)
                    state["exp_avg_sq"] = torch.zeros_like(p.data)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"]
                if group["correct_bias"]:
                    bias_correction1 = 1.0 - beta1 ** state["step"]
                    bias_correction2 = 1.0 - beta2 ** state["step"]
                    step_size = step_size * math.sqrt(bias_correction2) / bias_correction1
                p.data.addcdiv_(exp_avg, denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.data.add_(p.data, alpha=-group["lr"] * group["weight_decay"])


def grouped(model: nn.Module, weight_decay: float) -> list[dict]:
    """The two parameter groups (decay / no decay) of trainers.py lines 504-514 and 4.5.0's create_optimizer."""
    no_decay = ["bias", "LayerNorm.weight"]
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if not any(nd in n for nd in no_decay)], "weight_decay": weight_decay},
            {"params": [p for n, p in named if any(nd in n for nd in no_decay)], "weight_decay": 0.0}]


def linear_schedule(optimizer, num_training_steps: int):
    """4.5.0 ``get_linear_schedule_with_warmup`` with 0 warmup steps (optimization.py lines 91-98)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(
        0.0, float(num_training_steps - step) / float(max(1, num_training_steps))))


def cosine_schedule(optimizer, num_training_steps: int):
    """4.5.0 ``get_cosine_schedule_with_warmup`` with 0 warmup steps (optimization.py lines 126-132)."""
    def lr_lambda(step):
        progress = float(step) / float(max(1, num_training_steps))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)


class MLPLayer(nn.Module):
    """models.py ``MLPLayer``: dense + tanh."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = nn.Tanh()

    def forward(self, features):
        return self.activation(self.dense(features))


class ReferenceModel(nn.Module):
    """BertForCL (VisualCSE/src/models.py; AudioCSE/src/models.py for audio) with pooler_type cls: the text
    path of ``cl_forward`` and the image/audio branch of ``forward``."""

    def __init__(self, bert, hidden_size: int, temp: float, mlp_only_train: bool, modality: str,
                 image_size: int = 16, patch_size: int = 8, audio_patch_size: int = 16):
        super().__init__()
        from transformers import ViTConfig
        from transformers.models.vit.modeling_vit import ViTEmbeddings

        self.bert, self.temp, self.mlp_only_train, self.modality = bert, temp, mlp_only_train, modality
        self.mlp, self.image_mlp = MLPLayer(hidden_size), MLPLayer(hidden_size)
        if modality == "image":
            self.vit_embeddings = ViTEmbeddings(ViTConfig(hidden_size=hidden_size, image_size=image_size,
                                                          patch_size=patch_size, hidden_dropout_prob=0.0))
        else:  # AudioCSE models.py lines 280-298 and 318-324: SSAST's patch embedding and cls token
            self.v_patch_proj = nn.Conv2d(1, hidden_size, kernel_size=audio_patch_size, stride=audio_patch_size)
            self.v_cls_token = nn.Parameter(torch.zeros(1, 1, hidden_size))

    def text_loss(self, input_ids, attention_mask, hard_negative_weight: float = 0.0):
        """models.py ``cl_forward`` lines 98-230 (no MLM, one process)."""
        batch_size, num_sent = input_ids.shape[:2]
        input_ids = input_ids.view((-1, input_ids.size(-1)))
        attention_mask = attention_mask.view((-1, attention_mask.size(-1)))
        outputs = self.bert(input_ids, attention_mask=attention_mask, return_dict=True)
        pooler_output = outputs.last_hidden_state[:, 0].view((batch_size, num_sent, -1))
        pooler_output = self.mlp(pooler_output)
        z1, z2 = pooler_output[:, 0], pooler_output[:, 1]
        cos_sim = F.cosine_similarity(z1.unsqueeze(1), z2.unsqueeze(0), dim=-1) / self.temp
        if num_sent == 3:
            z3 = pooler_output[:, 2]
            z1_z3_cos = F.cosine_similarity(z1.unsqueeze(1), z3.unsqueeze(0), dim=-1) / self.temp
            cos_sim = torch.cat([cos_sim, z1_z3_cos], 1)
            weights = torch.tensor(
                [[0.0] * (cos_sim.size(-1) - z1_z3_cos.size(-1)) + [0.0] * i + [hard_negative_weight]
                 + [0.0] * (z1_z3_cos.size(-1) - i - 1) for i in range(z1_z3_cos.size(-1))], dtype=cos_sim.dtype)
            cos_sim = cos_sim + weights
        return nn.CrossEntropyLoss()(cos_sim, torch.arange(cos_sim.size(0)).long())

    def features(self, inputs):
        """models.py ``BertForCL.forward`` with input_images (VisualCSE lines 340-356) or input_audio (AudioCSE
        lines 392-417)."""
        if self.modality == "image":
            input_embeds = self.vit_embeddings(inputs)
        else:
            x = inputs.unsqueeze(1).transpose(2, 3)
            x = self.v_patch_proj(x).flatten(2).transpose(1, 2)
            input_embeds = torch.cat((self.v_cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        pooler_output = self.bert.encoder(input_embeds).last_hidden_state[:, 0]
        if self.mlp_only_train:
            return self.image_mlp(pooler_output)
        return self.image_mlp(self.mlp(pooler_output))


def new_supcon_forward(features, labels, T):
    """VisualCSE/src/trainers.py ``new_SupCon_forward``, lines 753-769."""
    bsz = labels.shape[0]
    z1, z2 = features[:bsz], features[bsz:]
    cos_sim = nn.CosineSimilarity(dim=-1)(z1.unsqueeze(1), z2.unsqueeze(0)) / T
    new_labels = torch.zeros(labels.shape)
    unique_labels = torch.unique(labels)
    for i in range(len(new_labels)):
        new_labels[i] = (unique_labels == labels[i]).nonzero(as_tuple=True)[0]
    return nn.CrossEntropyLoss()(cos_sim, new_labels.long())


class ReferenceRun:
    """``CLTrainer.train``'s iteration (VisualCSE/src/trainers.py lines 556-692, the fp32 branch) with 4.5.0's
    ``Trainer.training_step`` (trainer.py line 1495): the image/audio update, then the text update,
    each over every parameter of the model, with ``model.zero_grad()`` as torch 1.10 did it (gradients zeroed,
    not dropped)."""

    def __init__(self, model: ReferenceModel, text_lr: float, image_lr: float, total_steps: int,
                 loss_weight: float, supcon_temperature: float):
        self.model, self.loss_weight, self.supcon_temperature = model, loss_weight, supcon_temperature
        self.image_optimizer = AdamW450(grouped(model, 0.0), lr=image_lr)
        self.image_scheduler = cosine_schedule(self.image_optimizer, total_steps)
        self.optimizer = AdamW450(grouped(model, 0.0), lr=text_lr)
        self.lr_scheduler = linear_schedule(self.optimizer, total_steps)

    def iteration(self, images, labels, input_ids, attention_mask):
        model = self.model
        model.train()
        features = model.features(images)
        image_loss = new_supcon_forward(features, labels, self.supcon_temperature) * self.loss_weight
        model.zero_grad(set_to_none=False)
        image_loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        self.image_optimizer.step()
        self.image_scheduler.step()
        model.zero_grad(set_to_none=False)
        loss = model.text_loss(input_ids, attention_mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        self.optimizer.step()
        self.lr_scheduler.step()
        model.zero_grad(set_to_none=False)
