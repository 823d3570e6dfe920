"""Export a kit checkpoint as a Hugging Face + sentence-transformers folder.

Stock modules only: ``Transformer`` and ``Pooling`` (CLS or mean), plus a ``Dense`` (Linear+Tanh) when the
evaluation pooler is ``cls`` (the MLP head); otherwise the training-only MLP is dropped, so
``SentenceTransformer(out_dir).encode`` gives the same vectors as the kit's ``encode``.
"""

from __future__ import annotations

import json
from pathlib import Path

from nlsup_kit.checkpoint import HEAD_FILE, RECIPE_FILE
from nlsup_kit.encoder import SentenceEncoder
from nlsup_kit.errors import NlsupError, read_back
from nlsup_kit.recipes import Recipe

ST_POOLING = {"cls": "cls", "cls_before_pooler": "cls", "avg": "mean"}


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, pooling: str | None = None) -> Path:
    """Write ``out_dir`` from a kit checkpoint (or any model name); ``pooling`` defaults to the recipe's."""
    from safetensors.torch import save_file

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    recipe_file = checkpoint / RECIPE_FILE
    if pooling is None and recipe_file.exists():
        pooling = read_back(recipe_file, Recipe.from_json, "the run's recipe",
                            "or pass --pooling").pooling_for_evaluation()
    pooling = pooling or "cls_before_pooler"
    if pooling not in ST_POOLING:
        raise NlsupError(f"pooling {pooling!r} has no stock sentence-transformers module; export with "
                         f"--pooling one of {', '.join(ST_POOLING)}")
    encoder = SentenceEncoder.from_pretrained(str(checkpoint))
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder.save(out_dir)
    (out_dir / HEAD_FILE).unlink()  # the head lives in 2_Dense when used, else it is dropped
    hidden = encoder.hidden_size
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    _write_json(out_dir / "sentence_bert_config.json",
                {"max_seq_length": encoder.max_input_length, "do_lower_case": False})
    _write_json(out_dir / "1_Pooling" / "config.json", {
        "word_embedding_dimension": hidden,
        "pooling_mode_cls_token": ST_POOLING[pooling] == "cls",
        "pooling_mode_mean_tokens": ST_POOLING[pooling] == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    if pooling == "cls":
        modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
        _write_json(out_dir / "2_Dense" / "config.json", {
            "in_features": hidden, "out_features": hidden, "bias": True,
            "activation_function": "torch.nn.modules.activation.Tanh"})
        state = encoder.head.dense.state_dict()
        save_file({f"linear.{k}": v.contiguous() for k, v in state.items()},
                  str(out_dir / "2_Dense" / "model.safetensors"))
    _write_json(out_dir / "modules.json", modules)
    return out_dir


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))
