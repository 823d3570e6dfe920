"""The authors' released models by name (``released:<recipe>``): resolved to their hub ids, scored with their
authors' pooler and set beside their published scores. Offline, tiny stand-ins sit in a local hub cache under the
real hub ids, as the multilingual tests do."""

import os
import re
import subprocess
import sys

import pytest

from nlsup_kit.errors import NlsupError


@pytest.fixture(scope="module")
def released_hub(tmp_path_factory):
    from conftest import hub_stand_in

    hub = tmp_path_factory.mktemp("hub")
    for repo_id in ("gcyzsl/unsup-VisualCSE-bert-base-uncased", "gcyzsl/sup-AudioCSE-bert-base-uncased"):
        hub_stand_in(hub, repo_id)
    return hub


def eval_sts(hub, data_dir, *args):
    env = dict(os.environ, HF_HUB_CACHE=str(hub), HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
    return subprocess.run([sys.executable, "-m", "nlsup_kit.cli", "eval-sts", *args, "--tasks", "STSBenchmark",
                           "--data-dir", str(data_dir)], env=env, capture_output=True, text=True, timeout=300)


def test_a_released_model_is_scored_with_its_authors_pooler_beside_its_published_score(released_hub, data_dir):
    """``released:visualcse-bert-base`` is gcyzsl/unsup-VisualCSE-bert-base-uncased (VisualCSE/README.md line 98),
    scored before its MLP head as its README's command does: the score of that hub folder named by its path with
    ``--pooling cls_before_pooler`` (not ``cls``, which scores otherwise). The published STS-B is 80.03
    (VisualCSE/README.md line 76, the paper's table); the difference is the measured minus that. (The scorer itself
    is checked against sentence-transformers' evaluator in test_sts.py; on a random model's [CLS], whose cosines
    all crowd near 1, float rounding alone reorders them, so that comparison is made with mean pooling.)"""
    done = eval_sts(released_hub, data_dir, "--model", "released:visualcse-bert-base")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "released:visualcse-bert-base (cls_before_pooler)" in done.stdout
    snapshot = released_hub / "models--gcyzsl--unsup-VisualCSE-bert-base-uncased" / "snapshots" / ("0" * 40)
    from nlsup_kit.encoder import SentenceEncoder
    from nlsup_kit.evaluation import evaluate_sts

    encoder = SentenceEncoder.from_pretrained(str(snapshot))  # the hub folder by its path, in this process
    scores = {pooling: evaluate_sts(lambda s: encoder.encode(s, pooling), ["STSBenchmark"], data_dir)
              .scores["STSBenchmark"].spearman for pooling in ("cls_before_pooler", "cls")}
    assert abs(scores["cls"] - scores["cls_before_pooler"]) > 0.1
    want = scores["cls_before_pooler"]
    line = re.search(r"STSBenchmark +measured +(-?[\d.]+) +published +([\d.]+) +difference +([+-][\d.]+)",
                     done.stdout)
    assert line, done.stdout
    measured, published, difference = (float(x) for x in line.groups())
    assert measured == pytest.approx(want, abs=0.01)
    assert published == 80.03 and difference == pytest.approx(measured - 80.03, abs=0.011)
    assert ("listed in yiren-jian/NonLing-CSE, VisualCSE/README.md line 98: gcyzsl/unsup-VisualCSE-bert-base-uncased"
            in done.stdout)


def test_a_supervised_release_goes_through_its_head_and_says_no_source_here_scores_it(released_hub, data_dir):
    done = eval_sts(released_hub, data_dir, "--model", "released:sup-audiocse-bert-base")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "released:sup-audiocse-bert-base (cls)" in done.stdout
    assert "no source here publishes its STS scores" in done.stdout


def test_an_unknown_or_unreachable_release_is_one_line(released_hub, data_dir, tmp_path):
    from nlsup_kit.models import resolve_model

    with pytest.raises(NlsupError, match="no released model 'released:visualcse-bert'; choose from released:simcse"):
        resolve_model("released:visualcse-bert")
    done = eval_sts(tmp_path, data_dir, "--model", "released:audiocse-bert-base")  # an empty hub cache, offline
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "model 'released:audiocse-bert-base' is not on this machine" in done.stderr


def test_every_release_is_listed_where_the_kit_says_and_the_published_rows_are_the_papers():
    from nlsup_kit.models import RELEASED
    from nlsup_kit.paper import PAPER_STS, RELEASED_SOURCES, published_scores

    assert set(RELEASED_SOURCES) == set(RELEASED)
    for recipe, source in RELEASED_SOURCES.items():
        assert source.value == RELEASED[recipe].hub_id and source.value in source.shows
        assert RELEASED[recipe].pooling == ("cls" if recipe.startswith("sup-") else "cls_before_pooler")
        if recipe in PAPER_STS:
            assert published_scores(recipe)[0] is PAPER_STS[recipe]
    assert published_scores("sup-visualcse-bert-base") is None
    assert published_scores("sup-simcse-bert-base")[0]["avg"] == 81.58


# ---- the lessons' comparison: untrained BERT-base and the released models, measured or published ----------------

RELEASED_SCRIPT = """
import json, sys
from nlsup_kit.released_scores import released_scores
result = released_scores(["simcse", "visualcse"], ["STSBenchmark"], sys.argv[1], measure=sys.argv[2] == "1",
                         show=lambda line: None)
print(json.dumps({"measured": result.measured, "lines": result.lines, "check": result.check()}))
"""


def released_lesson(hub, data_dir, measure=True):
    import json

    env = dict(os.environ, HF_HUB_CACHE=str(hub), HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
    done = subprocess.run([sys.executable, "-c", RELEASED_SCRIPT, str(data_dir), "1" if measure else "0"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def lesson_hub(tmp_path_factory):
    """Stand-ins under the hub ids of untrained BERT-base and the released SimCSE and VisualCSE, each from its
    own seed, so the rows differ."""
    from conftest import hub_stand_in

    hub = tmp_path_factory.mktemp("lesson-hub")
    for seed, repo_id in enumerate(("google-bert/bert-base-uncased", "princeton-nlp/unsup-simcse-bert-base-uncased",
                                    "gcyzsl/unsup-VisualCSE-bert-base-uncased")):
        hub_stand_in(hub, repo_id, seed=seed)
    return hub


def test_the_lesson_measures_each_model_through_its_own_pooler_beside_its_published_score(lesson_hub, data_dir):
    """Untrained BERT-base through the mean of its static word embeddings and last layer (the definition of the
    53.87 of SimCSE's paper it is set beside, SimCSE's README line 201), the released ones before their MLP head; each number equals the score of that hub folder
    by its path, the difference is measured minus published (SimCSE 76.85, VisualCSE 80.03 on STS-B), and the
    notebooks' check refuses the random stand-ins, which reproduce no published score."""
    from nlsup_kit.encoder import SentenceEncoder
    from nlsup_kit.evaluation import evaluate_sts

    got = released_lesson(lesson_hub, data_dir)
    expected = {}
    for label, repo_id, pooling in (("bert-base-uncased untrained (avg_embeddings_last)", "google-bert--bert-base-uncased",
                                     "avg_embeddings_last"),
                                    ("released:simcse-bert-base", "princeton-nlp--unsup-simcse-bert-base-uncased",
                                     "cls_before_pooler"),
                                    ("released:visualcse-bert-base", "gcyzsl--unsup-VisualCSE-bert-base-uncased",
                                     "cls_before_pooler")):
        encoder = SentenceEncoder.from_pretrained(str(lesson_hub / f"models--{repo_id}" / "snapshots" / ("0" * 40)))
        expected[label] = evaluate_sts(lambda s: encoder.encode(s, pooling), ["STSBenchmark"], data_dir) \
            .scores["STSBenchmark"].spearman
    assert {label: scores["STSBenchmark"] for label, scores in got["measured"].items()} == pytest.approx(expected,
                                                                                                          abs=1e-6)
    assert len(set(round(v, 4) for v in expected.values())) == 3  # three different models, not one loaded thrice
    lines = got["lines"]
    for label, published in (("released:simcse-bert-base", 76.85), ("released:visualcse-bert-base", 80.03),
                             ("bert-base-uncased untrained (avg_embeddings_last)", 53.87)):
        at = next(i for i, line in enumerate(lines) if line.startswith(label) and line.endswith("published"))
        assert float(lines[at].split()[-2]) == published
        assert float(lines[at + 1].split()[0]) == pytest.approx(expected[label], abs=0.005)
        assert float(lines[at + 2].split()[0]) == pytest.approx(expected[label] - published, abs=0.011)
    gain = next(line for line in lines if line.startswith("released:visualcse-bert-base over released:simcse"))
    assert "published +3.18" in gain
    assert f"measured here {expected['released:visualcse-bert-base'] - expected['released:simcse-bert-base']:+.2f}" \
        in gain
    assert got["check"] == [f"{label} measured {expected[label]:.2f}, published {published:.2f}: it did not "
                            "reproduce its published score within 2 points"
                            for label, published in (("bert-base-uncased untrained (avg_embeddings_last)", 53.87),
                                                     ("released:simcse-bert-base", 76.85),
                                                      ("released:visualcse-bert-base", 80.03))]


def test_offline_or_switched_off_the_lesson_prints_the_published_numbers_and_what_it_would_measure(
        lesson_hub, data_dir, tmp_path):
    offline = released_lesson(tmp_path, data_dir)  # an empty cache, the hub unreachable
    assert offline["measured"] == {} and offline["check"] == []
    assert offline["lines"][0] == ("Published scores (Spearman x 100), not measured here: the hub cannot be reached "
                                   "(HF_HUB_OFFLINE is set).")
    assert offline["lines"][-1] == ("Online, this cell downloads google-bert/bert-base-uncased, "
                                    "princeton-nlp/unsup-simcse-bert-base-uncased, gcyzsl/unsup-VisualCSE-bert-base-"
                                    "uncased and scores each on STSBenchmark with the kit's scorer, beside these "
                                    "numbers.")
    assert any("VisualCSE/README.md line 98" in line for line in offline["lines"])
    assert any("row 'BERTbase (first-last avg.)'" in line for line in offline["lines"])
    skipped = released_lesson(lesson_hub, data_dir, measure=False)  # cached, but switched off
    assert skipped["measured"] == {} and "measuring switched off" in skipped["lines"][0]


def test_the_download_size_is_the_preferred_weight_file_and_the_small_files():
    from nlsup_kit.released_scores import download_bytes

    files = {"model.safetensors": 440_000_000, "pytorch_model.bin": 440_100_000, "flax_model.msgpack": 439_000_000,
             "config.json": 600, "vocab.txt": 232_000, "README.md": 9_000}
    assert download_bytes(files) == 440_000_000 + 600 + 232_000
    del files["model.safetensors"]
    assert download_bytes(files) == 440_100_000 + 600 + 232_000


def test_every_method_is_set_against_simcse_and_simcse_against_the_untrained_model(data_dir):
    """The paper's comparison: VisualCSE and AudioCSE each over SimCSE (its results table: 76.85, 80.03, 79.94 on
    STS-B), SimCSE over untrained BERT-base (53.87, SimCSE's paper)."""
    from nlsup_kit.released_scores import released_scores

    lines = released_scores(["simcse", "visualcse", "audiocse"], ["STSBenchmark"], data_dir, measure=False,
                            show=lambda line: None).lines
    gains = [line for line in lines if " over " in line]
    assert gains == ["released:simcse-bert-base over bert-base-uncased untrained (avg_embeddings_last), STSBenchmark: "
                     "published +22.98",
                     "released:visualcse-bert-base over released:simcse-bert-base, STSBenchmark: published +3.18",
                     "released:audiocse-bert-base over released:simcse-bert-base, STSBenchmark: published +3.09"]
