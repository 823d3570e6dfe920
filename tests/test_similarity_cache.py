"""The similarity cache (nlsup_kit.similarity_cache): a second score of the same encoder reads its stored
cosines, and anything that changes the vectors finds no entry. HOME points at the test's folder, where the
kit keeps its per-user caches."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from nlsup_kit.data.senteval import load_sts_task
from nlsup_kit.encoder import SentenceEncoder
from nlsup_kit.evaluation import evaluate_model
from nlsup_kit.similarity_cache import cache_dir, encoder_fingerprint

TASK = "STSBenchmark"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def entries() -> list:
    return sorted(cache_dir().glob(f"{TASK}-*.npy"))


def test_a_second_score_of_the_same_encoder_reads_the_stored_similarities(home, tiny_model, data_dir):
    encoder = SentenceEncoder.from_pretrained(str(tiny_model))
    first = evaluate_model(encoder, "avg", [TASK], data_dir)
    [entry] = entries()
    assert np.array_equal(np.load(entry), first.scores[TASK].predicted)
    reversed_cosines = np.load(entry)[::-1].copy()  # a valid entry with other numbers: read back, they show
    np.save(entry, reversed_cosines)
    gold = np.asarray(load_sts_task(TASK, data_dir).scores)
    again = evaluate_model(str(tiny_model), "avg", [TASK], data_dir)  # the same weights, loaded afresh
    assert again.scores[TASK].spearman == pytest.approx(100 * spearmanr(reversed_cosines, gold)[0], abs=1e-9)
    fresh = evaluate_model(encoder, "avg", [TASK], data_dir, cache=False)
    assert fresh.scores[TASK].spearman == pytest.approx(first.scores[TASK].spearman, abs=1e-9)


def test_weights_pooler_and_damage_each_miss_and_a_tokenizer_call_does_not(home, tiny_model, data_dir):
    encoder = SentenceEncoder.from_pretrained(str(tiny_model))
    cpu = torch.device("cpu")
    key = encoder_fingerprint(encoder, "avg", cpu)
    evaluate_model(encoder, "avg", [TASK], data_dir)
    encoder.tokenize(["Each call sets the tokenizer's truncation and padding."], max_length=7)
    assert encoder_fingerprint(encoder, "avg", cpu) == key  # ... which change no vector
    assert encoder_fingerprint(encoder, "cls_before_pooler", cpu) != key
    with torch.no_grad():
        encoder.backbone.encoder.layer[0].output.dense.bias[0] += 1e-3
    assert encoder_fingerprint(encoder, "avg", cpu) != key
    moved = evaluate_model(encoder, "avg", [TASK], data_dir)
    assert len(entries()) == 2
    assert moved.scores[TASK].spearman == pytest.approx(
        evaluate_model(encoder, "avg", [TASK], data_dir, cache=False).scores[TASK].spearman, abs=1e-9)
    for entry in entries():  # damaged: a short array, then bytes that are no array at all
        np.save(entry, np.zeros(3))
    short = evaluate_model(encoder, "avg", [TASK], data_dir)
    assert short.scores[TASK].spearman == pytest.approx(moved.scores[TASK].spearman, abs=1e-9)
    for entry in entries():
        entry.write_bytes(b"not an array")
    assert evaluate_model(encoder, "avg", [TASK], data_dir).scores[TASK].spearman == pytest.approx(
        moved.scores[TASK].spearman, abs=1e-9)
    assert not list(cache_dir().glob("*.part"))
