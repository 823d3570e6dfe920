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
