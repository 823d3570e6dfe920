"""Beyond English: the multilingual STS-B (stsb_multi_mt) downloaded, checked and scored as the English STS-B is,
through stand-ins reached the way the real things are (a random XLM-R in a local hub cache under the real hub
id; files in the release's format, at the release's size, served by a local mirror under the release's names)."""

import csv
import io
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from httpmirror import Handler, serving
from nlsup_kit.data.multilingual import STSB_MULTI_ROWS, read_stsb_multi
from nlsup_kit.errors import NlsupError

SUBJECTS = ["Ein Mann", "Eine Frau", "Ein Kind", "Zwei Hunde", "Die Katze", "Ein Mädchen", "Der Junge",
            "Eine Gruppe von Männern"]
VERBS = ["spielt", "schneidet", "isst", "sieht", "trägt", "öffnet", "malt", "kauft"]
OBJECTS = ["eine Gitarre", "eine Zwiebel", "einen Apfel", "das Fenster", "ein Buch", "Fußball am Strand", "Tofu",
           "die Tür"]


def german_split(rows: int, seed: int) -> bytes:
    """``rows`` pairs in stsb_multi_mt's format: Excel-dialect CSV, no header, ``sentence1,sentence2,score``;
    the second sentence is the first with one to three words changed, scored lower the more changed; some sentences
    hold a comma (so the writer quotes them) or doubled spaces (which SentEval's normalisation removes)."""
    rng = random.Random(seed)
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel", lineterminator="\n")
    for _ in range(rows):
        words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
        other = list(words)
        changed = rng.sample(range(3), rng.randint(1, 3))  # never the same sentence twice: a cosine of exactly 1
        for i in changed:                                   # would tie, and float rounding would break the tie
            other[i] = rng.choice([w for w in [SUBJECTS, VERBS, OBJECTS][i] if w != words[i]])
        first = " ".join(words) + (", während es regnet." if rng.random() < 0.1 else ".")
        second = "  ".join(other) + "."
        score = round(min(5.0, max(0.0, 5 - 1.6 * len(changed) + rng.uniform(-0.4, 0.4))), 3)
        writer.writerow([first, second, score])
    return buffer.getvalue().encode("utf-8")


@pytest.fixture(scope="module")
def german():
    return {split: german_split(STSB_MULTI_ROWS[split], seed) for split, seed in (("dev", 1), ("test", 2))}


@pytest.fixture(scope="module")
def xlmr_hub(tmp_path_factory):
    """A local Hugging Face hub cache holding a 2-layer random XLM-R (SentencePiece tokenizer) under
    FacebookAI/xlm-roberta-base, as a download would have left it."""
    from conftest import make_tiny_model

    hub = tmp_path_factory.mktemp("hub")
    repo = hub / "models--FacebookAI--xlm-roberta-base"
    make_tiny_model(repo / "snapshots" / ("0" * 40), "xlm-roberta")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    return hub


def test_eval_sts_scores_xlmr_on_german_stsb_as_an_independent_computation_does(german, xlmr_hub, tmp_path):
    """The acceptance command, offline: ``xlmr-base`` resolves to the cached stand-in, stsb-de's dev and test
    come over HTTP into an empty data folder, and the score equals sentence-transformers' evaluator on the same
    folder (mean pooling, the kit's ``avg``), fed by Python's csv module with SentEval's whitespace join."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    data, out = tmp_path / "data", tmp_path / "scores.json"
    data.mkdir()  # an empty data folder the user named
    with serving() as address:
        Handler.files = {"/stsb-de-dev.csv": german["dev"], "/stsb-de-test.csv": german["test"]}
        env = dict(os.environ, NLSUP_MIRROR=address, HF_HUB_CACHE=str(xlmr_hub), HF_HUB_OFFLINE="1")
        done = subprocess.run([sys.executable, "-m", "nlsup_kit.cli", "eval-sts", "--model", "xlmr-base", "--tasks",
                               "stsb-de", "--pooling", "avg", "--data-dir", str(data), "--json", str(out)],
                              env=env, capture_output=True, text=True, timeout=300)
        requested = list(Handler.requests)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [r for r in requested if r.endswith(".csv")] == ["/stsb-de-dev.csv", "/stsb-de-test.csv"]
    assert (data / "stsb-multi-mt" / "stsb-de-test.csv").read_bytes() == german["test"]
    printed = done.stdout
    assert "stsb-de: stsb_multi_mt (STS-B machine-translated by DeepL into 'de'), test split, 1,379 pairs" in printed
    scores = json.loads(out.read_text())

    folder = next((xlmr_hub / "models--FacebookAI--xlm-roberta-base" / "snapshots").iterdir())
    rows = list(csv.reader(io.StringIO(german["test"].decode("utf-8"))))
    joined = [[" ".join(cell.split()) for cell in row[:2]] for row in rows]
    evaluator = EmbeddingSimilarityEvaluator([a for a, _ in joined], [b for _, b in joined],
                                             [float(r[2]) for r in rows], main_similarity="cosine")
    reference = evaluator(SentenceTransformer(str(folder), device="cpu"))
    key = next(k for k in reference if k.endswith("spearman_cosine"))
    assert scores["stsb-de"] == pytest.approx(reference[key] * 100, abs=0.01)
    assert abs(scores["stsb-de"]) > 1  # a score that says something about the stand-in, not a constant 0


def test_language_picks_its_sets_and_refuses_an_unknown_one(german, tmp_path, capsys):
    from nlsup_kit.cli import main
    from nlsup_kit.data.multilingual import tasks_for_language

    assert tasks_for_language("de") == ["stsb-de"]
    assert main(["eval-sts", "--model", "minilm-l6", "--language", "xx", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no STS set in language 'xx'") and "de, en, es" in err and "\n" not in err


def test_a_download_that_is_not_the_release_file_is_refused_and_nothing_is_kept(german, tmp_path, monkeypatch):
    """A file one row short (a cut or another file under the same name) or with a broken row: refused in one line
    naming the problem, nothing kept under the real name."""
    from nlsup_kit.data import ensure_data

    short = b"\n".join(german["test"].split(b"\n")[1:])
    broken = german["dev"].replace(b"\n", b"\nnur ein Feld\n", 1)
    for case, (files, problem) in enumerate((({"/stsb-de-dev.csv": german["dev"], "/stsb-de-test.csv": short},
                            "1,378 pairs, but stsb_multi_mt's test split has 1,379 in every language"),
                           ({"/stsb-de-dev.csv": broken, "/stsb-de-test.csv": german["test"]},
                            "2: expected 3 comma-separated fields (sentence1,sentence2,score), found 1"))):
        data = tmp_path / f"case{case}"
        data.mkdir()
        with serving() as address:
            Handler.files = files
            monkeypatch.setenv("NLSUP_MIRROR", address)
            with pytest.raises(NlsupError) as err:
                ensure_data(["stsb-de"], data, progress=False)
        message = str(err.value)
        assert problem in message and "not stsb-de-" in message and "nothing of it was kept" in message, message
        assert "\n" not in message
        assert not (data / "stsb-multi-mt" / "stsb-de-test.csv").exists()
        assert not list((data / "stsb-multi-mt").glob("*.part"))


def test_rows_the_reader_refuses_name_their_file_and_line(tmp_path):
    path = tmp_path / "stsb-de-test.csv"
    for body, problem in ((b'a,b,3.0\n"x, y",z,5.5\n', ":2: gold score 5.5 is outside 0-5"),
                          (b"a,b,3.0\na,,1\n", ":2: empty sentence"),
                          (b"a,b,drei\n", ":1: gold score 'drei' is not a number"),
                          (b"a,b,1\n\xff,c,2\n", ":2: not valid UTF-8 text")):
        path.write_bytes(body)
        with pytest.raises(NlsupError) as err:
            read_stsb_multi(path)
        assert str(err.value) == f"{path}{problem}" or str(err.value).startswith(f"{path}{problem}"), str(err.value)
    path.write_bytes(b'"Ein Mann,  der spielt.",Ein  Mann spielt.,4.2\n')
    pairs = read_stsb_multi(path)
    assert (pairs.sentences1, pairs.sentences2, pairs.scores) == (["Ein Mann, der spielt."], ["Ein Mann spielt."], [4.2])


def test_xlmr_base_is_xlm_roberta_base_by_its_parameter_count():
    """The registry's architecture against an independent count: keras-hub's xlm_roberta_base_multi preset has
    277,450,752 parameters with 512 positions and no token-type table; Hugging Face's layout adds 2 positions
    (RoBERTa's offset past the padding index) and a one-row token-type table, 768 wide each."""
    from nlsup_kit.models import random_backbone

    with torch.device("meta"):
        backbone = random_backbone("xlmr-base", seed=0)
    assert backbone.config.model_type == "xlm-roberta"
    assert sum(p.numel() for p in backbone.parameters()) == 277_450_752 + 2 * 768 + 768
