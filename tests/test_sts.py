"""STS readers and scoring against independent computations (sentence-transformers, plain scipy)."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from nlsup_kit.data.senteval import STS_TASKS, load_sts_task
from nlsup_kit.errors import NlsupError

# Scored pairs per task, from ../shared/data/README.md ("checked independently").
EXPECTED_PAIRS = {"STS12": 3108, "STS13": 1500, "STS14": 3750, "STS15": 3000, "STS16": 1186,
                  "STSBenchmark": 1379, "SICKRelatedness": 4927}


@pytest.mark.parametrize("task", STS_TASKS)
def test_reader_counts_match_data_readme(data_dir, task):
    assert len(load_sts_task(task, data_dir)) == EXPECTED_PAIRS[task]


def independent_sts16_all(model, data_dir: Path) -> float:
    """STS16 'all' from the raw files with sentence-transformers' encode and scipy: pool every subset."""
    folder = data_dir / "senteval" / "STS" / "STS16-en-test"
    predicted, gold = [], []
    for gs in sorted(folder.glob("STS.gs.*.txt")):
        inputs = (folder / gs.name.replace(".gs.", ".input.")).read_text(encoding="utf-8").splitlines()
        for line, score in zip(inputs, gs.read_text().splitlines()):
            if score.strip():
                a, b = line.split("\t")
                gold.append(float(score))
                predicted.append((a, b))
    emb_a = model.encode([" ".join(a.split()) for a, _ in predicted])
    emb_b = model.encode([" ".join(b.split()) for _, b in predicted])
    cosine = (emb_a * emb_b).sum(1) / np.linalg.norm(emb_a, axis=1) / np.linalg.norm(emb_b, axis=1)
    return spearmanr(cosine, gold)[0] * 100


def test_cli_eval_sts_all_seven_tasks_matches_independent_scores(tiny_model, data_dir, tmp_path, capsys):
    """The acceptance command on all seven tasks; STS-B checked against EmbeddingSimilarityEvaluator, STS16 'all'
    against a from-scratch computation, the average against the rounded mean. A 2-layer random BERT stands in
    for a pretrained one: the protocol does not depend on the weights, and sentence-transformers reads the same
    folder as a plain Hugging Face model with mean pooling, the kit's ``avg``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    from nlsup_kit.cli import main

    out = tmp_path / "sts.json"
    assert main(["eval-sts", "--model", str(tiny_model), "--pooling", "avg", "--data-dir", str(data_dir),
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    scores = json.loads(out.read_text())
    assert all(task in printed for task in STS_TASKS)
    assert list(scores)[:8] == [*STS_TASKS, "avg"]
    assert len(scores) == 9 and all(isinstance(scores[t], float) for t in [*STS_TASKS, "avg"])
    assert scores["avg"] == pytest.approx(round(float(np.mean([scores[t] for t in STS_TASKS])), 2), abs=1e-9)

    model = SentenceTransformer(str(tiny_model), device="cpu")
    assert model.max_seq_length == 128  # the kit's limit for this folder too: both truncate alike
    rows = [line.strip().split("\t") for line in
            (data_dir / "senteval/STS/STSBenchmark/sts-test.csv").read_text(encoding="utf-8").splitlines()]
    evaluator = EmbeddingSimilarityEvaluator([r[5] for r in rows], [r[6] for r in rows],
                                             [float(r[4]) for r in rows], main_similarity="cosine")
    reference = evaluator(model)
    key = next(k for k in reference if k.endswith("spearman_cosine"))
    assert scores["STSBenchmark"] == pytest.approx(reference[key] * 100, abs=0.01)
    assert scores["STS16"] == pytest.approx(independent_sts16_all(model, data_dir), abs=0.01)


def test_missing_task_folder_is_one_line_error(tmp_path):
    (tmp_path / "senteval").mkdir()
    with pytest.raises(NlsupError) as err:
        load_sts_task("STS12", tmp_path)
    assert "STS.input.MSRpar.txt" in str(err.value) and "\n" not in str(err.value)


def test_bad_gold_score_names_file_and_line(tmp_path):
    folder = tmp_path / "senteval" / "STS" / "STSBenchmark"
    folder.mkdir(parents=True)
    (folder / "sts-test.csv").write_text("g\tf\t2012\t1\t3.0\ta b\tc d\ng\tf\t2012\t2\tseven\ta\tb\n")
    with pytest.raises(NlsupError, match=r"sts-test.csv:2: gold score 'seven' is not a number"):
        load_sts_task("STSBenchmark", tmp_path)


def test_all_aggregation_pools_subsets_not_mean(tmp_path):
    """'all' is one Spearman over the pooled pairs; with two subsets built to disagree it differs from the mean."""
    from nlsup_kit.evaluation import score_pairs
    from nlsup_kit.data.senteval import StsPairs

    pairs = StsPairs()
    predicted = []
    for i in range(10):
        pairs.add(f"a{i}", f"b{i}", float(i % 5), "one" if i < 5 else "two")
        predicted.append(i % 5 + (100 if i >= 5 else 0))  # perfect within each subset, shifted between
    result = score_pairs(pairs, np.array(predicted, dtype=float))
    assert result.spearman == pytest.approx(spearmanr(predicted, pairs.scores)[0] * 100)
    assert [s["spearman"] for s in result.subsets.values()] == pytest.approx([100, 100])
    assert result.spearman < 90


def test_average_is_the_mean_of_the_seven_rounded_scores():
    """PAPER.md: the mean of the seven scores rounded to 2 decimals. Six tasks at 60.0049 (shown 60.00) and one
    at 60.02: the shown numbers average to 60.0029 -> 60.00, while the unrounded mean, 60.0071, would give 60.01."""
    from nlsup_kit.evaluation import StsReport, TaskScore

    report = StsReport({task: TaskScore(60.02 if task == "SICKRelatedness" else 60.0049, 0.0, 10)
                        for task in STS_TASKS})
    assert report.as_dict() == {**{task: 60.0 for task in STS_TASKS[:-1]}, "SICKRelatedness": 60.02, "avg": 60.0}
    assert report.table().splitlines()[-1].split("|")[-1].strip() == "60.00"


def test_a_two_level_bootstrap_counts_seeds_that_disagree():
    """Simulated scores: each run's predictions are the gold scores plus noise; less noise scores higher. With
    seed 1 B beats A, with seed 2 A beats B, each clearly on its own pairs. A pairs-only bootstrap of either
    seed excludes 0 (with opposite signs); resampling the seeds too must span both seeds' differences and
    contain 0. When both of B's runs are better, the interval excludes 0 and names B."""
    from nlsup_kit.evaluation import bootstrap_difference

    rng = np.random.default_rng(0)
    gold = rng.normal(size=600)

    def run(noise):
        return gold + rng.normal(scale=noise, size=gold.size)

    a_runs, b_runs = [run(1.0), run(1.0)], [run(0.6), run(1.7)]
    per_seed = [(spearmanr(b, gold)[0] - spearmanr(a, gold)[0]) * 100 for a, b in zip(a_runs, b_runs)]
    assert per_seed[0] > 5 and per_seed[1] < -5  # the construction: the seeds disagree, by a lot
    single = [bootstrap_difference(gold, [a], [b], samples=300) for a, b in zip(a_runs, b_runs)]
    assert single[0].low > 0 and single[1].high < 0  # each seed alone "significant", with opposite signs
    both = bootstrap_difference(gold, a_runs, b_runs, samples=300)
    assert both.per_seed == pytest.approx(per_seed)
    assert both.low < 0.5 * per_seed[1] and both.high > 0.5 * per_seed[0]  # the seeds' spread, not only pairs'
    assert "cannot tell the two methods apart" in both.conclusion("SimCSE", "VisualCSE", "STS-B")

    # B better in every run: three runs each name B; two give no verdict (the seeds barely resampled); one run
    # speaks only for other test pairs
    better = bootstrap_difference(gold, [*a_runs, run(1.0)], [run(0.6), run(0.6), run(0.6)], samples=300)
    assert better.low > 0
    assert better.conclusion("SimCSE", "VisualCSE", "STS-B").endswith(
        "the interval excludes 0: VisualCSE scores higher on STS-B in these runs, as far as resampling their pairs and "
        "their 3 seeds shows; few seeds resample coarsely: read it beside the t interval over the per-seed "
        "differences, which counts the seeds' spread")
    two = bootstrap_difference(gold, a_runs, [run(0.6), run(0.6)], samples=300)
    assert two.low > 0 and two.conclusion("SimCSE", "VisualCSE", "STS-B").endswith(
        "2 runs per method resample the seeds too coarsely for a verdict on the methods (at least 3 runs each)")
    assert single[0].conclusion("SimCSE", "VisualCSE", "STS-B").endswith(
        "on other test pairs like these this run of VisualCSE would likely still score higher (at least 97.5% of the "
        "resamples of the pairs favour it: the interval's end nearer 0, beyond which 2.5% of them fall, is on its side "
        "of 0); one run per method says nothing about "
        "other seeds")


def test_the_kits_copy_of_the_papers_table_matches_paper_md(data_dir):
    """Parsed afresh from the reported-results table of PAPER.md (beside the data folder): every score of every
    row, and the averages are the means of the seven scores (the paper's own arithmetic)."""
    from nlsup_kit.paper import PAPER_STS

    paper_md = Path(data_dir).parent / "PAPER.md"
    rows = {}
    for line in paper_md.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[0].split()[0] in ("SimCSE", "VisualCSE", "AudioCSE"):
            method, backbone = cells[0].split()
            rows[f"{method.lower()}-{backbone.lower()}"] = [float(c) for c in cells[1:]]
    assert len(rows) == 9 and set(rows) == set(PAPER_STS)
    for recipe, scores in rows.items():
        assert list(PAPER_STS[recipe].values()) == scores, recipe
        assert round(sum(scores[:7]) / 7, 2) == pytest.approx(scores[7], abs=0.011), recipe


def test_the_commands_for_the_kits_own_gpu_numbers_name_every_method_of_the_family():
    from nlsup_kit.paper import SUPERVISED_SIMCSE_BERT_BASE, own_run_commands
    from nlsup_kit.recipes import get_recipe

    text = own_run_commands("roberta-base")
    assert "not run yet on a GPU" in text
    for method in ("simcse", "visualcse", "audiocse"):
        for recipe in (f"{method}-roberta-base", f"class-{method}"):
            assert (f"for seed in 42 1 2; do nlsup train --recipe {recipe} --set seed=$seed --output-dir "
                    f"build/runs/{recipe}-seed$seed && nlsup eval-sts --model build/runs/{recipe}-seed$seed/best; done") in text
        assert get_recipe(f"{method}-roberta-base").model == "roberta-base"
    assert round(sum(list(SUPERVISED_SIMCSE_BERT_BASE.values())[:7]) / 7, 2) == SUPERVISED_SIMCSE_BERT_BASE["avg"]


def test_a_paired_bootstrap_draws_the_seeds_of_both_methods_together():
    """Each seed moves both methods alike (its noise draw, scaled per seed) and B is a little better at every seed.
    Drawn separately, the seeds' large shared swings hide that; drawn together, they cancel and the interval
    excludes 0."""
    from nlsup_kit.evaluation import bootstrap_difference

    rng = np.random.default_rng(1)
    gold = rng.normal(size=600)
    draws = [scale * rng.normal(size=gold.size) for scale in (0.5, 1.0, 1.6)]
    a_runs, b_runs = [gold + noise for noise in draws], [gold + 0.9 * noise for noise in draws]
    apart = bootstrap_difference(gold, a_runs, b_runs, samples=300)
    together = bootstrap_difference(gold, a_runs, b_runs, samples=300, paired=True)
    assert together.difference == pytest.approx(apart.difference)
    assert apart.low < 0 < apart.high and together.low > 0
    with pytest.raises(ValueError, match="as many runs"):
        bootstrap_difference(gold, a_runs, b_runs[:2], paired=True)


def test_an_interval_end_near_zero_is_printed_with_the_digits_that_show_its_side():
    from nlsup_kit.evaluation import DifferenceInterval

    near = DifferenceInterval(0.06, 0.0004, 0.12, 0.95, [0.09, 0.07, 0.02]).conclusion("SimCSE", "VisualCSE", "STS-B")
    assert "95% interval [+0.0004, +0.1200]; the interval excludes 0" in near
    assert "[-0.13, +0.24]" in DifferenceInterval(0.06, -0.13, 0.24, 0.95, [0.1, 0.0, 0.1]).conclusion("A", "B", "STS-B")
