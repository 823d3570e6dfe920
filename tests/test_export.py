"""Export round trip: SentenceTransformer(out) reproduces the kit's embeddings."""

import pytest
import torch

from nlsup_kit.checkpoint import write_manifest
from nlsup_kit.encoder import SentenceEncoder
from nlsup_kit.export import export_checkpoint
from nlsup_kit.recipes import Recipe

SENTENCES = ["A man is playing a guitar.", "Two dogs run.", "The weather is nice today, isn't it?"]


@pytest.mark.parametrize("pooling", ["cls_before_pooler", "cls", "avg"])
def test_sentence_transformers_loads_export_with_same_embeddings(tiny_model, tmp_path, pooling):
    from sentence_transformers import SentenceTransformer

    encoder = SentenceEncoder.from_pretrained(str(tiny_model))
    encoder.reset_head()
    checkpoint = encoder.save(tmp_path / "ckpt")
    (checkpoint / "recipe.json").write_text(Recipe(eval_pooling=pooling).to_json())
    write_manifest(checkpoint)  # as a run's save closes it
    out = export_checkpoint(checkpoint, tmp_path / "st")
    assert not (out / "head.safetensors").exists()
    st = SentenceTransformer(str(out), device="cpu")
    expected = encoder.encode(SENTENCES, pooling)
    torch.testing.assert_close(torch.tensor(st.encode(SENTENCES)), expected, rtol=1e-4, atol=1e-5)


def test_export_refuses_pooling_without_stock_module(tiny_model, tmp_path):
    from nlsup_kit.errors import NlsupError

    with pytest.raises(NlsupError, match="avg_first_last"):
        export_checkpoint(tiny_model, tmp_path / "st", pooling="avg_first_last")
