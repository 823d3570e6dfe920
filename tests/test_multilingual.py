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
import tarfile
import zipfile

import pytest
import torch

from httpmirror import Handler, serving
from nlsup_kit.data.multilingual import STS17_PAIRS, STS17_ROWS, STSB_MULTI_ROWS, read_sts17, read_stsb_multi
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


ENGLISH = (["A man", "A woman", "A child", "Two dogs", "The cat", "A girl", "The boy", "A group of men"],
           ["plays", "cuts", "eats", "sees", "carries", "opens", "paints", "buys"],
           ["a guitar", "an onion", "an apple", "the window", "a book", "football on the beach", "tofu", "the door"])


def sts17_track(pair: str, seed: int, rows: int = STS17_ROWS) -> bytes:
    """A track of STS2017-extended: ``sentence1<TAB>sentence2<TAB>score``, sentence 1 in the pair's first language
    (English words, or German for ``de``), sentence 2 in its second, scored by how many words differ."""
    rng = random.Random(seed)
    words = {"de": (SUBJECTS, VERBS, OBJECTS)}
    first_words, second_words = (words.get(language, ENGLISH) for language in pair.split("-"))
    lines = []
    for _ in range(rows):
        picks = [rng.randrange(8) for _ in range(3)]
        other = list(picks)
        changed = rng.sample(range(3), rng.randint(0, 3))
        for i in changed:
            other[i] = (picks[i] + rng.randrange(1, 8)) % 8
        score = round(min(5.0, max(0.0, 5 - 1.6 * len(changed) + rng.uniform(-0.4, 0.4))), 2)
        lines.append(f"{' '.join(first_words[i][k] for i, k in enumerate(picks))}.\t"
                     f"{' '.join(second_words[i][k] for i, k in enumerate(other))}.\t{score}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def sts17_archive(tracks: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for pair, body in tracks.items():
            archive.writestr(f"STS2017-extended/STS.{pair}.txt", body)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def sts17():
    return {pair: sts17_track(pair, seed) for seed, pair in enumerate(STS17_PAIRS)}


@pytest.fixture(scope="module")
def german():
    return {split: german_split(STSB_MULTI_ROWS[split], seed) for split, seed in (("dev", 1), ("test", 2))}


@pytest.fixture(scope="module")
def xlmr_hub(tmp_path_factory):
    """A local Hugging Face hub cache holding a 2-layer random XLM-R (SentencePiece tokenizer) under
    FacebookAI/xlm-roberta-base, as a download would have left it."""
    from conftest import hub_stand_in

    return hub_stand_in(tmp_path_factory.mktemp("hub"), "FacebookAI/xlm-roberta-base", "xlm-roberta")


def independent_spearman(model, rows: list[list[str]]) -> float:
    """sentence-transformers' evaluator on rows read by Python's csv module, joined as SentEval joins tokens."""
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    joined = [[" ".join(cell.split()) for cell in row[:2]] for row in rows]
    evaluator = EmbeddingSimilarityEvaluator([a for a, _ in joined], [b for _, b in joined],
                                             [float(r[2]) for r in rows], main_similarity="cosine")
    reference = evaluator(model)
    return 100 * reference[next(k for k in reference if k.endswith("spearman_cosine"))]


def test_eval_sts_scores_xlmr_in_german_as_an_independent_computation_does(german, sts17, xlmr_hub, tmp_path):
    """The acceptance command, offline: ``xlmr-base`` resolves to the cached stand-in; ``--language de`` picks the
    German STS-B and STS17's English-German track, whose files come over HTTP into an empty data folder; each
    score equals sentence-transformers' evaluator on the same folder (mean pooling, the kit's ``avg``)."""
    from sentence_transformers import SentenceTransformer

    data, out = tmp_path / "data", tmp_path / "scores.json"
    data.mkdir()  # an empty data folder the user named
    with serving() as address:
        Handler.files = {"/stsb-de-dev.csv": german["dev"], "/stsb-de-test.csv": german["test"],
                         "/STS2017-extended.zip": sts17_archive(sts17)}
        env = dict(os.environ, NLSUP_MIRROR=address, HF_HUB_CACHE=str(xlmr_hub), HF_HUB_OFFLINE="1")
        done = subprocess.run([sys.executable, "-m", "nlsup_kit.cli", "eval-sts", "--model", "xlmr-base",
                               "--language", "de", "--pooling", "avg", "--data-dir", str(data), "--json", str(out)],
                              env=env, capture_output=True, text=True, timeout=300)
        requested = list(Handler.requests)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [r for r in requested if r != "/SHA256SUMS"] == ["/stsb-de-dev.csv", "/stsb-de-test.csv",
                                                             "/STS2017-extended.zip"]
    assert (data / "stsb-multi-mt" / "stsb-de-test.csv").read_bytes() == german["test"]
    assert sorted(p.name for p in (data / "sts17").iterdir()) == sorted(f"STS.{pair}.txt" for pair in STS17_PAIRS)
    assert "stsb-de: stsb_multi_mt (STS-B machine-translated by DeepL into 'de'), test split, 1,379 pairs" in done.stdout
    assert ("sts17-en-de: STS17, cross-lingual (en sentence 1, de sentence 2): a pair set Reimers & Gurevych added to it "
            "(arXiv 2004.09813), 250 pairs") in done.stdout
    scores = json.loads(out.read_text())
    assert list(scores)[:3] == ["stsb-de", "sts17-en-de", "avg"]

    model = SentenceTransformer(str(next((xlmr_hub / "models--FacebookAI--xlm-roberta-base" / "snapshots").iterdir())),
                                device="cpu")
    expected = {"stsb-de": list(csv.reader(io.StringIO(german["test"].decode("utf-8")))),
                "sts17-en-de": [line.split("\t") for line in sts17["en-de"].decode("utf-8").splitlines()]}
    for task, rows in expected.items():
        reference = independent_spearman(model, rows)
        assert scores[task] == pytest.approx(reference, abs=0.01), task
        assert abs(reference) > 1  # a score that says something about the stand-in, not a constant 0


def test_language_picks_its_sets_and_refuses_an_unknown_one(tmp_path, capsys):
    from nlsup_kit.cli import main
    from nlsup_kit.data.multilingual import tasks_for_language

    assert tasks_for_language("de") == ["stsb-de", "sts17-en-de"]
    assert tasks_for_language("ar") == ["sts17-ar-ar", "sts17-en-ar"]
    assert main(["eval-sts", "--model", "minilm-l6", "--language", "xx", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no STS set in language 'xx'") and "ar, de, en, es" in err and "\n" not in err


def test_a_download_that_is_not_the_release_file_is_refused_and_nothing_is_kept(german, tmp_path, monkeypatch):
    """A file one row short (a cut or another file under the same name) or with a broken row: refused in one line
    naming the problem, nothing kept under the real name."""
    from nlsup_kit.data import ensure_data

    short = b"\n".join(german["test"].split(b"\n")[1:])
    broken = german["dev"].replace(b"\n", b"\nnur ein Feld\n", 1)
    for case, (files, problem) in enumerate((({"/stsb-de-dev.csv": german["dev"], "/stsb-de-test.csv": short},
                            "1,378 pairs, but stsb_multi_mt's test split (in every language) has 1,379"),
                           ({"/stsb-de-dev.csv": broken, "/stsb-de-test.csv": german["test"]},
                            "2: expected 3 comma-separated fields (sentence1, sentence2, score), found 1"))):
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


def test_an_sts17_archive_that_is_not_the_release_is_refused_and_nothing_is_kept(sts17, tmp_path, monkeypatch):
    """A zip without one of the ten tracks is refused before it is kept; one whose track is a row short is
    deleted after it is read; neither leaves an sts17/ folder behind."""
    from nlsup_kit.data import ensure_data

    without = sts17_archive({pair: body for pair, body in sts17.items() if pair != "nl-en"})
    short = sts17_archive({**sts17, "en-de": b"\n".join(sts17["en-de"].split(b"\n")[1:])})
    for case, (archive, problem) in enumerate(((without, "an archive without STS2017-extended/STS.nl-en.txt"),
                                               (short, "STS.en-de.txt: 249 pairs, but every STS17 track has 250"))):
        data = tmp_path / f"case{case}"
        data.mkdir()
        with serving() as address:
            Handler.files = {"/STS2017-extended.zip": archive}
            monkeypatch.setenv("NLSUP_MIRROR", address)
            with pytest.raises(NlsupError) as err:
                ensure_data(["sts17"], data, progress=False)
        message = str(err.value)
        assert problem in message and "\n" not in message, message
        assert not (data / "sts17").exists() and not list(data.glob(".sts17-*"))
        assert not (data / "downloads" / "STS2017-extended.zip").exists()


def test_an_sts17_track_reads_as_tab_separated_pairs_and_names_a_bad_line(tmp_path):
    path = tmp_path / "STS.en-de.txt"
    path.write_bytes("A man  plays.\tEin Mann spielt.\t4.5\n".encode())
    pairs = read_sts17(path)
    assert (pairs.sentences1, pairs.sentences2, pairs.scores) == (["A man plays."], ["Ein Mann spielt."], [4.5])
    path.write_bytes(b"a\tb\t1\na\tb\n")
    with pytest.raises(NlsupError) as err:
        read_sts17(path)
    assert str(err.value) == f"{path}:2: expected 3 tab-separated fields (sentence1, sentence2, score), found 2"


def leipzig_archive(corpus: str, lines: list[str]) -> bytes:
    """``<corpus>.tar.gz`` as the Leipzig Corpora Collection packs it: ``<corpus>/<corpus>-sentences.txt``."""
    body = ("\n".join(lines) + "\n").encode("utf-8")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"{corpus}/{corpus}-sentences.txt")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


CORPUS = "deu_wikipedia_2021_10K"
GERMAN_SENTENCES = [f"{SUBJECTS[i % 8]} {VERBS[i // 8 % 8]} {OBJECTS[i // 64 % 8]}, zum {i}. Mal." for i in range(10_000)]


def test_the_german_class_recipes_train_on_a_leipzig_corpus_and_german_sts_b_dev_picks_the_checkpoint(
        german, tiny_xlmr, tmp_path, monkeypatch):
    """class-simcse-xlmr and class-visualcse-xlmr, with the small XLM-R standing in for XLM-R base: their Leipzig
    corpus comes over HTTP (a stand-in of its size), its sentences kept without their ids in one fixed random
    order; both train two steps, and the logged STS-B dev score is the German one (sentence-transformers'
    evaluator on the best checkpoint and stsb-de's dev rows). SentEval is never needed: the data folder has none."""
    from sentence_transformers import SentenceTransformer

    from nlsup_kit.checkpoint import read_metrics
    from nlsup_kit.data.text import load_text_data
    from nlsup_kit.recipes import RECIPES, apply_overrides
    from nlsup_kit.trainer import train

    corpus = RECIPES["class-simcse-xlmr"].text_data.removeprefix("leipzig:")
    sentences = [f"{SUBJECTS[i % 8]} {VERBS[i // 8 % 8]} {OBJECTS[i // 64 % 8]}, zum {i}. Mal." for i in range(100_000)]
    data = tmp_path / "data"
    data.mkdir()
    runs = {}
    with serving() as address:
        Handler.files = {f"/{corpus}.tar.gz": leipzig_archive(corpus, [f"{i + 1}\t{s}" for i, s in enumerate(sentences)]),
                         "/stsb-de-dev.csv": german["dev"], "/stsb-de-test.csv": german["test"]}
        monkeypatch.setenv("NLSUP_MIRROR", address)
        for name in ("class-simcse-xlmr", "class-visualcse-xlmr"):
            recipe = RECIPES[name]
            assert (recipe.model, recipe.text_language, recipe.max_text_examples) == ("xlmr-base", "de", 20_000)
            small = apply_overrides(recipe, [f"model={tiny_xlmr}", "pooler=avg", "max_steps=2", "eval_steps=2",
                                             "batch_size=8", "modality_batch_size=4", "max_text_examples=64",
                                             "device=cpu"])
            runs[name] = train(small, tmp_path / name, data, progress=False)
    random.Random(0).shuffle(sentences)  # the collection sorts its sentences; the kit keeps seed 0's order
    assert load_text_data(f"leipzig:{corpus}", data) == sentences
    assert not (data / "senteval").exists()
    rows = list(csv.reader(io.StringIO(german["dev"].decode("utf-8"))))
    for name, run in runs.items():
        [evaluated] = [m for m in read_metrics(run.output_dir) if "stsb_dev" in m]
        reference = independent_spearman(SentenceTransformer(str(run.best_dir), device="cpu"), rows)
        assert evaluated["step"] == 2 and evaluated["stsb_dev"] == pytest.approx(reference, abs=0.01), name
        assert run.best_dev == pytest.approx(evaluated["stsb_dev"])


def test_a_leipzig_download_that_is_not_the_corpus_is_refused_and_nothing_is_kept(tmp_path, monkeypatch):
    from nlsup_kit.data import ensure_data

    good = [f"{i + 1}\t{s}" for i, s in enumerate(GERMAN_SENTENCES)]
    cases = [(leipzig_archive(CORPUS, good[:-1]), f"9,999 sentences, but {CORPUS} has 10,000: not the corpus"),
             (leipzig_archive(CORPUS, good[:4] + ["ohne Nummer"] + good[5:]), ":5: expected <id><TAB><sentence>"),
             (leipzig_archive("deu_news_2020_10K", good), f"an archive without {CORPUS}/{CORPUS}-sentences.txt"),
             (b"\x1f\x8b not really gzip", "a file that is not a gzipped tar archive")]
    for case, (archive, problem) in enumerate(cases):
        data = tmp_path / f"case{case}"
        data.mkdir()
        with serving() as address:
            Handler.files = {f"/{CORPUS}.tar.gz": archive}
            monkeypatch.setenv("NLSUP_MIRROR", address)
            with pytest.raises(NlsupError) as err:
                ensure_data([f"leipzig:{CORPUS}"], data, progress=False)
        assert problem in str(err.value) and "\n" not in str(err.value), str(err.value)
        assert not (data / "leipzig" / f"{CORPUS}.txt").exists() and not list(data.rglob("*.part"))
        assert not (data / "downloads" / f"{CORPUS}.tar.gz").exists()
    with pytest.raises(NlsupError, match="leipzig:german: not a Leipzig corpus name"):
        ensure_data(["leipzig:german"], tmp_path, progress=False)
