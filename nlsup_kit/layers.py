"""The shared BERT-family layer stack, run without wasted arithmetic; the same function as HF's forward.

Two exact savings over ``backbone(**features)``:

* **packed tokens**: the linear layers (most of the arithmetic) see only real tokens, not padding; attention
  scatters them back to a padded grid with a key mask. Wikipedia batches at length 32 are ~20% padding.
* **CLS-only last layer**: when the pooler reads only [CLS] (``cls``, ``cls_before_pooler``, the image/audio
  branch), the last layer still needs keys and values of every token but queries, output projection and
  feed-forward only for [CLS]: 10/12 of that layer's arithmetic is skipped (14% of MiniLM-L6, 7% of BERT-base).

Shapes are data-dependent when packing, so a compiled CUDA-graph step uses ``packed=False`` (fixed shapes).
Works for the layer modules of BERT, RoBERTa and XLM-R (``attention.self.query``... ``output.LayerNorm``);
:func:`supports_fast_layers` says whether a backbone has them, else the encoder falls back to HF's forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FAST_MODEL_TYPES = ("bert", "roberta", "xlm-roberta")


def supports_fast_layers(backbone: nn.Module) -> bool:
    config = backbone.config
    layers = getattr(getattr(backbone, "encoder", None), "layer", None)
    return (getattr(config, "model_type", None) in FAST_MODEL_TYPES and layers is not None
            and not getattr(config, "is_decoder", False)
            and getattr(config, "position_embedding_type", "absolute") == "absolute"
            and all(hasattr(layer, "intermediate") and hasattr(layer.attention, "self") for layer in layers))


def _attention(layer: nn.Module, queries: torch.Tensor, keys_values: torch.Tensor, key_mask: torch.Tensor | None,
               query_rows: torch.Tensor | None, grid: tuple[int, int], index: torch.Tensor | None) -> torch.Tensor:
    """Self-attention of one layer. ``queries``/``keys_values`` are token rows (packed or the full grid);
    ``index`` places packed rows on the (batch x length) grid; ``query_rows`` (CLS-only) are one per sequence."""
    attn = layer.attention.self
    heads, size = attn.num_attention_heads, attn.attention_head_size
    batch, length = grid

    def to_grid(rows: torch.Tensor) -> torch.Tensor:
        if index is not None:
            rows = rows.new_zeros(batch * length, rows.shape[-1]).index_copy(0, index, rows)
        return rows.view(batch, length, heads, size).transpose(1, 2)

    keys, values = to_grid(attn.key(keys_values)), to_grid(attn.value(keys_values))
    query = attn.query(queries)
    query = query.view(batch, 1, heads, size).transpose(1, 2) if query_rows is not None else to_grid(query)
    context = F.scaled_dot_product_attention(query, keys, values, attn_mask=key_mask,
                                             dropout_p=attn.dropout.p if layer.training else 0.0)
    context = context.transpose(1, 2).reshape(-1, heads * size)
    return context if (index is None or query_rows is not None) else context[index]


def _layer(layer: nn.Module, hidden: torch.Tensor, key_mask, grid, index, cls_rows: torch.Tensor | None):
    """One BERT layer on token rows; with ``cls_rows`` only those rows leave it."""
    queries = hidden if cls_rows is None else hidden[cls_rows]
    context = _attention(layer, queries, hidden, key_mask, cls_rows, grid, index)
    out = layer.attention.output
    attended = out.LayerNorm(out.dropout(out.dense(context)) + queries)
    ffn = layer.output
    return ffn.LayerNorm(ffn.dropout(ffn.dense(layer.intermediate(attended))) + attended)


def run_layers(layers: nn.ModuleList, embedded: torch.Tensor, attention_mask: torch.Tensor | None = None,
               cls_only: bool = False, packed: bool = True) -> torch.Tensor:
    """The layer stack on ``embedded`` (batch, length, hidden): the last hidden states (batch, length, hidden),
    padding rows zero when packed; with ``cls_only`` just the [CLS] vectors (batch, hidden)."""
    batch, length, width = embedded.shape
    grid = (batch, length)
    rows = embedded.reshape(batch * length, width)
    key_mask = index = None
    cls_rows = torch.arange(batch, device=embedded.device) * length
    if packed and attention_mask is not None and bool(attention_mask.all()):
        attention_mask = None  # no padding (length-sorted evaluation batches): nothing to pack or mask
    if attention_mask is not None:
        key_mask = attention_mask.bool()[:, None, None, :]
        if packed:  # host syncs (fine on a CPU): the number of real tokens
            lengths = attention_mask.sum(1)
            index = attention_mask.reshape(-1).nonzero().squeeze(1)
            rows = rows[index]
            cls_rows = torch.cumsum(lengths, 0) - lengths  # each sequence's first row among the packed rows
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        rows = _layer(layer, rows, key_mask, grid, index, cls_rows if (cls_only and i == last) else None)
    if cls_only:
        return rows if len(layers) else rows[cls_rows]
    if index is not None:
        rows = rows.new_zeros(batch * length, width).index_copy(0, index, rows)
    return rows.view(batch, length, width)


def fast_path_differences(encoder, batch: dict[str, torch.Tensor], temperature: float,
                          device: torch.device) -> dict[str, float]:
    """Loss and gradients of the kit's fast layers against HF's forward on one batch, dropout off, under the
    device's autocast: relative differences of the loss and of the whole gradient vector (its norm), in bf16
    on a GPU and fp32 on a CPU."""
    from nlsup_kit.device import autocast_for
    from nlsup_kit.losses import InfoNCELoss

    dropouts = [m for m in encoder.modules() if isinstance(m, torch.nn.Dropout)]
    saved = [m.p for m in dropouts]
    attention = [layer.attention.self.dropout for layer in encoder.backbone.encoder.layer]
    for m in dropouts + attention:
        m.p = 0.0
    fast_path = encoder.fast_path
    batch = {k: v.to(device) for k, v in batch.items()}
    results = {}
    for name, mode in (("hf", "off"), ("fast fixed-shape", "fixed"), ("fast packed", "packed")):
        encoder.zero_grad(set_to_none=True)
        encoder.fast_path = mode
        with autocast_for(device):
            z = encoder(batch, pooling="cls")
        loss = InfoNCELoss(temperature)(*z.chunk(2))
        loss.backward()
        grads = torch.cat([p.grad.float().reshape(-1) for p in encoder.parameters() if p.grad is not None])
        results[name] = (loss.detach().float(), grads)
    encoder.fast_path = fast_path
    for m, p in zip(dropouts, saved):
        m.p = p
    encoder.zero_grad(set_to_none=True)
    want_loss, want_grads = results.pop("hf")
    agreement = {}
    for name, (loss, grads) in results.items():
        agreement[f"{name} loss"] = float((loss - want_loss).abs() / want_loss.abs())
        agreement[f"{name} gradients"] = float((grads - want_grads).norm() / want_grads.norm())
    return agreement
