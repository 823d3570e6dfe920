"""The sentences the notebooks print about their own numbers: each verdict follows the numbers, both ways."""

import math

import pytest

from nlsup_kit.conclusions import change, class_gap_reading, compare, gap_against_spread, repeat_timings


def test_compare_says_above_below_or_within_by_the_gap():
    assert compare("after", 76.39, "untrained, avg", 80.51) == "after 76.39 vs untrained, avg 80.51: 4.12 points below"
    assert compare("after", 80.94, "untrained", 80.51).endswith("0.43 points above")
    assert compare("cls", 73.22, "cls_before_pooler", 73.53, tolerance=0.5).endswith("within 0.5 points of each other")
    assert compare("cls", 73.22, "cls_before_pooler", 73.83, tolerance=0.5).endswith("0.61 points below")
    assert compare("loss", 1.134, "floor", math.log(3), unit="", digits=3).endswith(f"{1.134 - math.log(3):.3f} above")


def test_change_knows_which_direction_is_better():
    assert change("alignment", 0.088, 0.120, better="lower") == "alignment 0.088 -> 0.120: worse (lower is better)"
    assert change("uniformity", -1.64, -2.18, better="lower").endswith("better (lower is better)")
    assert change("accuracy", 0.65, 0.681).endswith("better (higher is better)")
    assert "unchanged" in change("accuracy", 0.65, 0.651, tolerance=0.005)
    with pytest.raises(ValueError):
        change("x", 0, 1, better="up")
    # no source says which way is better: the direction only
    assert change("mean cosine", 0.043, 0.018, better=None) == "mean cosine 0.043 -> 0.018: lower"
    assert change("mean cosine", 0.043, 0.043, better=None) == "mean cosine 0.043 -> 0.043: unchanged"


def test_gap_against_spread_sets_the_gap_of_means_beside_a_t_interval():
    # means 76.4 and 76.7: +0.30; sample variances 0.16 and 0.04 over 3 runs: standard error sqrt(0.2 / 3) = 0.258;
    # 2 degrees of freedom: t = 4.30, so the interval reaches 1.11
    runs = {"SimCSE": [76.0, 76.8, 76.4], "VisualCSE": [76.5, 76.9, 76.7]}
    assert gap_against_spread(runs, "VisualCSE", "SimCSE") == (
        "VisualCSE - SimCSE: +0.30 points (VisualCSE mean of 3 runs, SimCSE mean of 3 runs; from the unrounded scores); from each method's spread "
        "over its runs, unrounded, the gap has a standard error of 0.258 points, and with 2 degrees of freedom a 95% interval, "
        "the gap +-1.11 (t = 4.30), is [-0.81, +1.41]: it contains 0: these runs cannot tell the gap from the seeds' randomness.")
    # +2.07 against sqrt((0.0033 + 0.01) / 3) = 0.067, times 4.30: 0.29; the ends from the printed values, 2.07 -+ 0.29
    assert gap_against_spread({"A": [70.0, 70.1, 70.0], "B": [72.0, 72.2, 72.1]}, "B", "A").endswith(
        "the gap +-0.29 (t = 4.30), is [+1.78, +2.36]: it excludes 0: the gap is larger than the seeds' randomness would "
        "usually give.")
    # seeds that move both methods alike: per-seed differences +0.5, +0.6, +0.5 (sd 0.058, standard error 0.033,
    # reach 0.14) settle a +0.53 gap that each method's own spread (sd 1.0, standard error 0.82) cannot
    shared = {"A": [70.0, 71.0, 72.0], "B": [70.5, 71.6, 72.5]}
    assert gap_against_spread(shared, "B", "A").endswith("it contains 0: these runs cannot tell the gap from "
                                                         "the seeds' randomness.")
    assert gap_against_spread(shared, "B", "A", paired=True).endswith(
        "from the per-seed differences (each seed ran both methods), unrounded, the gap has a standard error of 0.033 points, and "
        "with 2 degrees of freedom a 95% interval, the gap +-0.14 (t = 4.30), is [+0.39, +0.67]: it excludes 0: the gap is "
        "larger than the seeds' randomness would usually give.")
    # per-seed differences 0.08 -+ 0.0318: reach t(2) 4.3027 x 0.0318 / sqrt(3) = 0.0790, which prints as the gap's
    # 0.08 at two decimals: three show the gap is the larger
    close = {"A": [70.0, 71.0, 72.0], "B": [70.0 + 0.08 - 0.0318, 71.08, 72.0 + 0.08 + 0.0318]}
    assert gap_against_spread(close, "B", "A", paired=True).startswith("B - A: +0.080 points")
    # 0.0800 beyond a reach of 0.0790: 1.3% of the reach, inside the 5% read as the edge
    assert ("the gap +-0.079 (t = 4.30), is [+0.001, +0.159]: it excludes 0 by 0.001, within 5% of its reach: at the edge"
            in gap_against_spread(close, "B", "A", paired=True))
    # per-seed differences 0.06 -+ 0.0331: standard error 0.0191, reach 4.3027 x 0.0191 = 0.0822; printed at two places
    # the error would read 0.02, and 0.02 x 4.30 = 0.086 is not the printed 0.08
    tight = {"A": [70.0, 71.0, 72.0], "B": [70.0 + 0.06 - 0.0331, 71.06, 72.0 + 0.06 + 0.0331]}
    assert "a standard error of 0.019 points, and with 2 degrees of freedom a 95% interval, the gap +-0.08 (t = 4.30)" in (
        gap_against_spread(tight, "B", "A", paired=True))
    with pytest.raises(ValueError, match="as many runs"):
        gap_against_spread({"A": [1.0, 2.0, 3.0], "B": [1.0, 2.0, 3.0, 4.0]}, "B", "A", paired=True)
    from nlsup_kit.conclusions import settles_gap

    assert settles_gap(shared, "B", "A", paired=True) and not settles_gap(shared, "B", "A")
    assert not settles_gap({"A": [70.0, 70.2], "B": [72.0, 72.1]}, "B", "A")   # two runs: no interval
    assert not settles_gap(close, "B", "A", paired=True)   # beyond its reach, but at the edge: not settled
    # fewer than three runs cannot estimate a spread: no verdict
    assert gap_against_spread({"SimCSE": [76.0, 76.8], "AudioCSE": [77.5]}, "AudioCSE", "SimCSE") == (
        "AudioCSE - SimCSE: +1.10 points (AudioCSE one run, SimCSE mean of 2 runs; from the unrounded scores); one run of a method cannot "
        "estimate how far its runs spread, and the kit reads a gap only from at least 3 runs of each "
        "(nlsup_kit.evaluation.MIN_RUNS_FOR_A_VERDICT), so no verdict from these runs alone.")
    assert "; 2 runs of a method give only a rough estimate of how far its runs spread" in gap_against_spread(
        {"A": [70.0, 70.2], "B": [72.0, 72.1]}, "B", "A")


def test_repeat_timings_blames_the_machine_when_repeats_disagree_more_than_methods():
    noisy = repeat_timings({"simcse": [8608, 1872], "visualcse": [2100, 2300]})
    assert "x4.60" in noisy and noisy.endswith("measure this machine's load, not the methods.")  # 8608 / 1872
    steady = repeat_timings({"simcse": [1000, 1010], "visualcse": [2000, 2020]})
    assert steady.endswith("the methods differ more than repeats of one method do.")
    assert repeat_timings({"simcse": [1000]}).endswith("no repeat to compare)")


def test_a_departure_from_the_prediction_names_what_differs_and_an_agreement_does_not():
    from nlsup_kit.conclusions import against_prediction

    differences = {"steps": (9, 15626), "model": ("minilm-l6", "bert-base-uncased")}
    assert against_prediction("supervised 73.64 vs unsupervised 76.27: 2.63 points below", False, differences) == (
        "supervised 73.64 vs unsupervised 76.27: 2.63 points below: not what the source predicts. This run differs "
        "from the source's in: steps 9 here, 15626 there; model minilm-l6 here, bert-base-uncased there.")
    assert against_prediction("x 2 vs y 1: 1.00 points above", True, differences) == (
        "x 2 vs y 1: 1.00 points above: as the source predicts.")


def test_the_starting_loss_is_read_against_log_b():
    import math

    from nlsup_kit.conclusions import loss_against_chance

    low = loss_against_chance(0.143, math.log(32), 32, "[CLS]")  # 0.143 / 3.466 = 4%; e^-0.143 = 87%
    assert low == ("the first logged text loss, 0.143, is 4% of log B (3.47: the loss of a model that cannot tell the B = 32 sentences of a batch apart), through [CLS]: at its first text step the "
                   "right second view already takes 87% of the probability among 32 (e^-loss, a geometric mean over "
                   "the batch)")
    beside = loss_against_chance(0.143, math.log(32), 32, "[CLS]", (0.0096, "a log, line 1"))
    assert beside.endswith(". The reference code's BERT-base training log (VisualCSE's, text loss beside its image steps): its "
                           "first logged loss is 0.0096 (a log, line 1): a mean over many steps of another run, not a first step, "
                           "so it stands beside this run's 0.143 as a source's number, not as the same quantity")
    trained = loss_against_chance(1.2e-5, math.log(32), 32, "avg", (0.0096, "a log, line 1"), model="minilm-l6")
    assert trained.endswith("not as the same quantity; this run starts from minilm-l6, already trained for sentence "
                            "similarity, the reference's from raw BERT-base")
    assert loss_against_chance(1.2e-5, math.log(32), 32, "avg", (0.0096, "a log"), model="bert-base-uncased").endswith(
        "this run starts from bert-base-uncased, pretrained only, the reference's from raw BERT-base")
    assert loss_against_chance(1.2e-5, math.log(32), 32, "avg").startswith(
        f"the first logged text loss, 1.2e-05, is {1.2e-5 / math.log(32):.1e} times log B (3.47: the loss of a model that cannot tell the B = 32 sentences of a batch apart), through avg")
    assert "already takes all but 1.2e-05 of the probability among 32" in loss_against_chance(1.2e-5, math.log(32), 32, "avg")
    # 1 - e^-loss is the loss itself to three digits here, printed with the loss's own digits
    assert "all but 8.35e-06 of the probability" in loss_against_chance(8.35e-6, math.log(32), 32, "avg")
    assert loss_against_chance(3.0, math.log(32), 32, "avg").startswith(
        "the first logged text loss, 3, is 87% of log B (3.47: the loss of a model that cannot tell the B = 32 sentences of a batch apart), through avg: at first")


def test_the_modality_loss_is_read_between_its_uniform_level_and_its_floor():
    from nlsup_kit.conclusions import modality_loss_reading

    levels = {"uniform": 4.0, "floor": 1.5}
    # logged x lambda 0.1: divided by lambda, the first two average 6.0 and the last two 3.0
    logged = [0.62, 0.58, 0.5, 0.4, 0.31, 0.29]
    line = modality_loss_reading("SupCon", logged, 0.1, levels, 30, 10, window=2)
    assert line == ("SupCon loss (the logged value divided by lambda 0.1), mean of the first 2 logged steps 6.000, of the "
                    "last 2 3.000 (lower); uniform level 4.000 (every view alike, 30 examples of two views), floor 1.500 "
                    "(for 30 examples spread evenly over 10 classes, the lowest any batch's floor can be; a batch drawn at "
                    "random is rarely even, and its floor is higher): it started above the uniform level and ended below "
                    "the uniform level, toward the floor, 1.500 above that lowest floor; above the uniform level is a "
                    "higher loss than a model that tells no views apart would get: the loss is the mean -log of the "
                    "probability the softmax gives each positive, so it exceeds log(2B-1) (B = 30 examples of this loss's "
                    "batch: log 59) when the positives get less than 1/(2B-1) each (a geometric mean), the rest going to other examples; which ones, these logged "
                    "values do not say")
    # 4.063 against 4.078: within 2% of the level, read as at it
    at_it = modality_loss_reading("SupCon", [0.4063, 0.4063], 0.1, {"uniform": 4.078, "floor": 1.609}, 30, 10, window=1)
    assert "ended at about the uniform level (within 2% of it, the kit's own line)" in at_it
    assert "a higher loss than" not in at_it  # nothing above the level to explain
    # the last two: (0.45 + 0.43) / 2 / 0.1 = 4.4, above 4.0 and 2.9 above the floor
    still_above = modality_loss_reading("SupCon", [0.62, 0.58, 0.45, 0.43], 0.1, levels, 30, 10)
    # from 6.0 to 4.4: a fall of 1.600, 0.400 above the level of 4.0
    assert "(lower)" in still_above and ("ended above the uniform level (a fall of 1.600, 0.400 still above the uniform "
                                         "level), 2.900 above that lowest floor") in still_above
    assert "a fall of" not in line and "a fall of" not in at_it  # below the level, or at it: nothing left above
    # printed as 4.245 and 1.609, the gap is printed as their difference, 2.636 (unrounded: 2.6352)
    rounded = modality_loss_reading("supcon", [5.0, 4.2446], 1.0, {"uniform": 4.078, "floor": 1.6094}, 30, 10, window=1)
    assert "of the last 1 4.245" in rounded and "floor 1.609" in rounded and "2.636 above that lowest floor" in rounded
    assert "(a fall of 0.755, 0.167 still above the uniform level)" in rounded   # 5.000 - 4.245, 4.245 - 4.078


def test_class_gap_reading_compares_the_gaps_and_names_what_differs_when_they_narrow():
    differences = {"steps": (20, "one epoch")}
    # gaps: 0.887 - 0.864 = +0.023 before, 0.964 - 0.957 = +0.007 after: narrower, so the differences are listed
    narrower = class_gap_reading({"before": (0.887, 0.864), "after": (0.964, 0.957)}, "digits", differences)
    assert narrower == ("within-class minus between-class cosine, digits: +0.023 before, +0.007 after (not wider; "
                        "the mean cosine rose both within and between classes (0.887 -> 0.964, 0.864 -> 0.957): on "
                        "average, pairs moved closer together): not what the source predicts. This run differs from the source's in: steps 20 here, "
                        "one epoch there.")
    # +0.010 before, +0.150 after (between fell): wider, as supervised contrastive learning predicts
    wider = class_gap_reading({"before": (0.5, 0.49), "after": (0.6, 0.45)}, "digits", differences)
    assert wider.endswith("+0.010 before, +0.150 after (wider): as the source predicts.")
    below_head = class_gap_reading({"before": (0.5, 0.49), "after": (0.6, 0.45)}, "digits")
    assert below_head.endswith("+0.010 before, +0.150 after (wider): a measurement; no source predicts it here")
    # the gap of the printed values: 0.9644 - 0.9566 is 0.0078 (printed alone, +0.008), but printed as 0.964 and 0.957
    unrounded = class_gap_reading({"before": (0.9644, 0.9566), "after": (0.9644, 0.9566)}, "digits")
    assert "+0.007 before, +0.007 after" in unrounded
    # 6 -> 7 of 10 classes beat their nearest other class while the gap narrowed (+0.037 -> +0.024): read as apart
    counted = class_gap_reading({"before": (0.800, 0.763), "after": (0.892, 0.868)}, "words",
                                apart={"before": (6, 10), "after": (7, 10)})
    assert ("classes closer to themselves than to any other class: 6 -> 7 of 10 (more, while the gap narrowed: the "
            "count asks only whether each class's own cosine beats its nearest other class") in counted
    same = class_gap_reading({"before": (0.887, 0.864), "after": (0.964, 0.957)}, "digits",
                             apart={"before": (9, 10), "after": (9, 10)})
    assert "classes closer to themselves than to any other class: 9 -> 9 of 10 (as many)" in same


def test_knn_changes_are_read_as_examples_beside_the_calibration_seeds():
    from nlsup_kit.notebook import calibration_reading, knn_change_reading

    # 62.5% - 61.25% of 240 clips: a net 3 clips
    assert knn_change_reading("quick-audiocse", 0.6125, 0.625, 240, "clips") == (
        "+1.2 points is a net +3 of the 240 clips; over the kit's calibration runs (nlsup_kit.notebook.QUICK_SEED_KNN_CHANGES: "
        "seeds 1, 2, 3 and 42 of the quick recipes, on the first 640 sentences of a 16,926-line Wikipedia sample), "
        "this change ranged -1.7 to +2.9 points, and "
        "this run's lies inside that range: a range that holds both signs, so one run cannot say whether this training "
        "tends to raise or lower it")
    assert knn_change_reading("quick-visualcse", 0.59, 0.613, 1797, "digits").endswith(
        "ranged +1.7 to +9.9 points, and this run's lies inside that range: every calibration seed raised it")
    assert "this run's lies outside that range" in knn_change_reading("quick-visualcse", 0.59, 0.70, 1797, "digits")
    assert knn_change_reading("class-visualcse", 0.5, 0.55, 1797, "digits") == "+5.0 points is a net +90 of the 1797 digits"
    # STS-B gains, recorded to two decimals: quick-simcse 0.50 to 0.72
    assert calibration_reading(0.67, "quick-simcse", "QUICK_SEED_GAINS", digits=2).endswith(
        "ranged +0.50 to +0.72 points, and this run's lies inside that range: every calibration seed raised it")
    assert "outside" in calibration_reading(0.73, "quick-simcse", "QUICK_SEED_GAINS", digits=2)
    assert calibration_reading(0.67, "class-simcse", "QUICK_SEED_GAINS", digits=2) == ""
    # a calibration seed made the range: it is said so, and whether this run landed inside it (0.50 to 0.72)
    assert ("and this run, seed 42, repeats the settings of one of those runs, and its change lies inside that range: "
            "every calibration seed raised it") in calibration_reading(0.67, "quick-simcse", "QUICK_SEED_GAINS", digits=2, seed=42)
    assert "its change lies outside that range (it did not land where that run did" in calibration_reading(
        0.80, "quick-simcse", "QUICK_SEED_GAINS", digits=2, seed=42)
    assert "this run's lies inside" in calibration_reading(0.67, "quick-simcse", "QUICK_SEED_GAINS", digits=2, seed=7)
    # ... but only a run on the calibration's own sentences: on other text (a learner's wiki1m head) seed 42 made
    # no part of the range, which is then a rough guide
    from nlsup_kit.notebook import CALIBRATION_TEXT

    other = calibration_reading(0.67, "quick-simcse", "QUICK_SEED_GAINS", digits=2, seed=42, text="0123456789abcdef")
    assert "one of those runs" not in other and "inside that range (this run trained on other sentences, so the " \
        "range is only a rough guide" in other
    assert f"seed 42, trained on those same sentences (fingerprint {CALIBRATION_TEXT}, a hash of the sentences), repeats the settings of one of those runs" in \
        calibration_reading(0.67, "quick-simcse", "QUICK_SEED_GAINS", digits=2, seed=42, text=CALIBRATION_TEXT)
    # a run on triples is read beside the supervised calibration, which trained on those triples, not on Wikipedia
    supervised = calibration_reading(0.8, "quick-simcse supervised", "QUICK_SEED_GAINS", digits=2, seed=42)
    assert supervised.startswith("over the kit's calibration runs (nlsup_kit.notebook.QUICK_SEED_GAINS: seeds 1, 2, 3 and 42 "
                                 "of the quick supervised run on sick-nli's triples),")
    assert "Wikipedia" not in supervised
    # said a second time in one cell, the line refers back instead of repeating the runs and the fingerprint
    again = calibration_reading(0.67, "quick-simcse", "QUICK_SEED_GAINS", digits=2, seed=42, text=CALIBRATION_TEXT, again=True)
    assert again == ("over the same calibration runs, this change ranged +0.50 to +0.72 points, and this run, seed 42, repeats "
                     "the settings of one of those runs, and its change lies inside that range: every calibration seed raised it")


def test_a_corpus_fingerprint_is_the_sha256_of_the_sentences_kept(tmp_path):
    import hashlib

    from nlsup_kit.data.text import read_corpus

    path = tmp_path / "corpus.txt"
    path.write_bytes(b"  first sentence \n\nsecond one\r\nthird\n")
    expected = hashlib.sha256(b"first sentence\nsecond one").hexdigest()[:16]
    assert read_corpus(path, max_sentences=2).report.fingerprint == expected
    assert read_corpus(path).report.fingerprint != expected  # three sentences: another text


def test_the_tokenizer_reading_checks_each_prediction_and_tells_marked_letters_from_letters_of_their_own():
    from nlsup_kit.language_conclusions import tokenizer_reading

    row = dict(unknown=0.0, changed_characters={}, words_per_unit=20)
    report = {"en": {**row, "ratio": 1.0, "kept": 0.9, "per_word": 1.2},
              "de": {**row, "ratio": 2.0, "kept": 0.5, "changed_characters": {"ä": "a"}, "per_word": 2.0},
              "xx": {**row, "ratio": 0.8, "kept": 0.95, "per_word": 1.5},
              "ru": {**row, "ratio": 4.0, "kept": 0.2, "changed_characters": {"й": "и"}, "per_word": 3.1},
              "zh": {**row, "ratio": 1.3, "kept": 0.6, "unknown": 0.618, "per_word": 40.0, "words_per_unit": 1}}
    pieces, per_word, kept, unknown, german, russian = tokenizer_reading(report, 32)
    assert per_word.startswith("pieces per word: en 1.20; 3 of 3 others cut their words finer (xx 1.50 to ru 3.10); zh "
                               "left out, written without spaces between words (zh: 1 space-separated 'words' per unit, under the kit's line "
                               "of 3 for a text written without spaces") \
        and "as the source predicts" in per_word
    assert "its zh 40.00 pieces per 'word' count pieces per run of text between spaces, not per word)" in per_word
    # zh, mostly unknown tokens, is counted out of the pieces and the kept share, and said so
    assert pieces.startswith("pieces: 2 of 3 languages") and "not what the source predicts" in pieces and "xx here" in pieces
    assert "xx 0.80x to ru 4.00x" in pieces and "zh left out: its pieces are 61.8% the unknown token" in pieces
    assert "en itself keeps 90.0%" in kept and "2 of 3 others keep less (ru 20.0% to xx 95.0%); zh left out" in kept
    assert "xx here" in kept
    assert unknown.startswith("unknown pieces: zh 61.8%; en, de, xx, ru 0%") and unknown.endswith(
        "zh: words the vocabulary cannot cut into known pieces (in zh, written without spaces, single characters: the "
        "tokenizer cuts them apart first), which WordPiece turns into the unknown token, as BERT's tokenizer predicts")
    assert "ä->a" in german and "WITH a mark in its Unicode name" in german and "NFD" not in german
    assert "CYRILLIC SMALL LETTER SHORT I" in russian and "NFD" in russian
    agreeing = {k: v for k, v in report.items() if k != "xx"}
    assert all("as the source predicts" in line for line in tokenizer_reading(agreeing, 32)[:3])
    counted = {language: {**r, "changed_words": 0.25 if r["changed_characters"] else 0.0} for language, r in report.items()}
    words = tokenizer_reading(counted, 32)[4]
    assert words.startswith("word occurrences the normaliser changes beyond lower-casing: en 0.0%, de 25.0%") and \
        "languages with changed words: de, ru" in words and "as the source predicts" in words
    unlisted = {**counted, "xx": {**counted["xx"], "changed_words": 0.1}}  # words changed, no letter listed
    assert "not what the source predicts" in tokenizer_reading(unlisted, 32)[4]
    coarse = {**report, "xx": {**report["xx"], "per_word": 1.1}}
    assert "2 of 3 others cut their words finer" in tokenizer_reading(coarse, 32)[1]
    assert "not what the source predicts" in tokenizer_reading(coarse, 32)[1]


def test_units_moved_reading_counts_the_moves_by_sign_and_tests_their_agreement_against_coin_tosses():
    from scipy.stats import binomtest

    from nlsup_kit.language_conclusions import units_moved_reading

    before = {"de": 62.5, "fr": 87.5, "es": 62.5, "ru": 25.0, "tr": 25.0, "zh": 50.0}
    after = {**before, "de": 50.0, "ru": 12.5, "tr": 12.5}  # three languages one unit (12.5 points) down
    line = units_moved_reading(before, after, 8)
    assert "-3 of 48 retrievals; 3 languages lost units (de, ru, tr), 0 gained, 3 unchanged in count (net counts" in line
    assert f"probability {binomtest(3, 3, 0.5).pvalue:.0%}" in line and "cannot say" in line
    everywhere = {language: value - 12.5 for language, value in {**before, **{f"x{i}": 50.0 for i in range(4)}}.items()}
    ten_down = units_moved_reading({**before, **{f"x{i}": 50.0 for i in range(4)}}, everywhere, 8)
    assert f"probability {binomtest(10, 10, 0.5).pvalue:.0%}" in ten_down and "more than one text" in ten_down
    mixed = units_moved_reading(before, {**before, "de": 50.0, "fr": 100.0}, 8)
    assert "1 languages lost units (de), 1 gained (fr)" in mixed and "probability 100%" in mixed


def test_length_baseline_reading_says_a_model_at_or_below_length_alone_shows_nothing_beyond_it():
    from nlsup_kit.language_conclusions import length_baseline_reading

    at_or_below = length_baseline_reading({"before": 26, "after": 22}, 26, 48)
    assert "finds 26 of 48; the models: before 26, after 22: none above it" in at_or_below
    assert ("length alone finds the translation at least as often as each model (26 against 26, 22), and this retrieval "
            "cannot show that a model matches meaning across languages beyond length") in at_or_below
    above = length_baseline_reading({"before": 25, "after": 30}, 26, 48)
    assert above.endswith(": after above it by 4 of 48 (one text, no spread measured: a description, not a finding)")


def test_setting_differences_name_each_setting_where_a_run_departs_from_the_paper():
    from nlsup_kit.method_comparison import setting_differences
    from nlsup_kit.recipes import apply_overrides, get_recipe

    paper = get_recipe("visualcse-bert-base")
    assert setting_differences(paper, paper) == {}
    run = apply_overrides(paper, ["modality_loss=supcon", "batch_size=32", "modality_loss_weight=0.1"])
    # each of the paper's values with where the reference code shows it (nlsup_kit.paper.RECIPE_SOURCES)
    assert setting_differences(run, paper) == {
        "modality loss": ("supcon", "released-supcon (the reference code's new_supcon: VisualCSE/run_unsup_example.sh line 57)"),
        "lambda": ("0.1", "0.05 (VisualCSE/README.md line 69)"), "text batch": ("32", "64 (VisualCSE/run_unsup_example.sh line 37)")}
    random_patches = apply_overrides(paper, ["vit_embeddings="])
    assert setting_differences(random_patches, paper) == {"patch embedding": (
        "random (initialised, not pretrained)", "google/vit-base-patch16-224-in21k's, pretrained (VisualCSE/src/models.py line 291)")}
    scored_avg = apply_overrides(get_recipe("audiocse-bert-base"), ["eval_pooling=avg"])
    assert setting_differences(scored_avg, get_recipe("audiocse-bert-base")) == {
        "pooler scored": ("avg", "cls_before_pooler (AudioCSE/README.md line 80)")}
    # trained through the mean of the tokens: trained and scored through another pooler than the paper's
    mean_pooled = setting_differences(apply_overrides(paper, ["pooler=avg"]), paper)
    assert mean_pooled == {"pooler trained": ("avg, no head", "cls through the MLP head (VisualCSE/run_unsup_example.sh line 44)"),
                           "pooler scored": ("avg", "cls_before_pooler (VisualCSE/README.md line 93)")}
    small_patches = apply_overrides(paper, ["patch_size=8"])
    assert setting_differences(small_patches, paper) == {"patch size": ("8", "16 (VisualCSE/src/models.py line 291)")}
    simcse = get_recipe("simcse-bert-base")   # SimCSE's own script: its repository named
    assert setting_differences(apply_overrides(simcse, ["batch_size=32"]), simcse) == {
        "text batch": ("32", "64 (princeton-nlp/SimCSE run_unsup_example.sh line 12)")}


def test_the_checkpoint_scored_counts_the_dev_evaluations_each_trainer_makes():
    from nlsup_kit.method_comparison import checkpoint_kept
    from nlsup_kit.paper import recipe_sources
    from nlsup_kit.recipes import apply_overrides, get_recipe

    quick = get_recipe("quick-visualcse")   # eval_steps 20: a 20-step run is evaluated once
    assert checkpoint_kept(quick, 20) == "its one STS-B dev evaluation, at step 20"
    # the kit's trainer also evaluates at the end: steps 20 and 30
    assert checkpoint_kept(quick, 30) == "the best of 2 STS-B dev evaluations, every 20 of 30 steps and at the end"
    paper = get_recipe("visualcse-bert-base")   # transformers' Trainer: at 125, 250, ..., 15,625 only (15626 // 125)
    assert checkpoint_kept(paper, 15626, recipe_sources(paper.name)["eval_steps"]) == (
        "the best of 125 STS-B dev evaluations, every 125 of 15,626 steps (VisualCSE/run_unsup_example.sh lines 41-43: "
        "metric_for_best_model, load_best_model_at_end, eval_steps)")
    assert checkpoint_kept(apply_overrides(quick, ["eval_steps=5"]), 20).startswith("the best of 4 STS-B dev evaluations, every 5 of 20 steps")


def test_the_gap_compared_says_which_runs_it_sets_against_each_other():
    from nlsup_kit.method_comparison import compared_runs

    assert compared_runs(3, 3, 3, "VisualCSE") == "the mean over 3 paired seeds of one trainer"
    assert compared_runs(1, 1, 1, "VisualCSE") == "one run of each, one seed, one trainer"
    # notebook 3: one AudioCSE run against SimCSE's two seeds, one of them shared
    assert compared_runs(1, 2, 1, "AudioCSE") == "1 AudioCSE run against the mean of 2 SimCSE runs (1 seed shared), one trainer"


def test_the_number_format_is_this_machines_beside_the_reference_scripts():
    from nlsup_kit.method_comparison import number_format
    from nlsup_kit.recipes import apply_overrides, get_recipe

    on_cpu = apply_overrides(get_recipe("quick-audiocse"), ["device=cpu"])   # a CPU computes in fp32: no autocast
    assert number_format(on_cpu, "audiocse-bert-base") == {"number format": (
        "fp32 (this machine's)", "fp16 with a gradient scaler (AudioCSE/run_unsup_example.sh line 58: --fp16)")}
    assert number_format(on_cpu, "simcse-bert-base") == {}   # no format recorded for it


def test_per_seed_differences_are_read_by_their_signs():
    from nlsup_kit.conclusions import per_seed_reading, sign_test

    # three of three one way: 2 * (1/2)^3 = 25%; six of six: 2 / 64 = 3%
    assert sign_test(3, 0) == 0.25 and sign_test(0, 6) == 2 / 64 and sign_test(2, 1) == 1.0
    line = per_seed_reading([42, 1, 2], [0.09, 0.07, 0.02], "VisualCSE", "SimCSE")
    assert line == ("VisualCSE - SimCSE per seed: seed 42 +0.09, seed 1 +0.07, seed 2 +0.02; 3 of 3 seeds favour "
                    "VisualCSE, 0 SimCSE: coin tosses split 3 seeds at least this unevenly with probability 25% "
                    "(two-sided sign test); with 3 seeds the test can give no less than 25%, so the signs alone cannot "
                    "settle it: the sizes of the differences must, read against their spread (the t interval: a range for the mean difference, its width set by how far the differences spread and by Student's t multiplier for so few runs, in place of the normal distribution's 1.96, which assumes many runs; the kit draws it from 3 seeds)")
    assert per_seed_reading(range(6), [0.1] * 6, "A", "B").endswith("the seeds agree beyond coin tosses")
    # six seeds could reach 3%, but 4 of 6 one way is 69%
    assert per_seed_reading(range(6), [0.1] * 4 + [-0.1] * 2, "A", "B").endswith("these seeds alone cannot say which "
                                                                                  "method is higher")


def test_a_method_gap_is_sized_against_the_largest_gap_the_runs_leave_open():
    """Two seeds: the calibration seeds' ranges bound the gap (0.79 - 0.50 = 0.29, below the paper's 3.18); three
    seeds: the upper end of the t interval does; no calibration and two seeds: no judgement, the differences listed."""
    import dataclasses

    from nlsup_kit.evaluation import StsReport, TaskScore
    from nlsup_kit.method_comparison import method_readings
    from nlsup_kit.recipes import apply_overrides, get_recipe

    def reports(**runs):
        return {name: [StsReport({"STSBenchmark": TaskScore(v, v, 1379)}) for v in values] for name, values in runs.items()}

    recipe = apply_overrides(get_recipe("quick-visualcse"), ["max_steps=20"])
    args = (recipe, "visualcse-bert-base", 20, ("digits (32 px)", "ImageNet"), ["STSBenchmark"])
    two = method_readings(reports(SimCSE=[82.70, 82.75], VisualCSE=[82.79, 82.82]), [42, 1], 82.03, "VisualCSE", *args)
    assert ("the kit's trainer's gain over the starting model ranged +0.50 to +0.79 points for quick-visualcse and "
            "+0.50 to +0.72 for quick-simcse: the difference between a run of each (unpaired) spans -0.22 to +0.29 points, "
            "the widest, +0.29, being the highest gain of one minus the lowest of the other. That width comes from those "
            "runs, not from this notebook's") in two[-2]   # 0.50 - 0.72 and 0.79 - 0.50
    from nlsup_kit.notebook import CALIBRATION_TEXT

    ours = method_readings(reports(SimCSE=[82.70, 82.75], VisualCSE=[82.79, 82.82]), [42, 1], 82.03, "VisualCSE", *args,
                           text=CALIBRATION_TEXT)
    assert ours[-2].endswith(f"This notebook's runs (SimCSE seeds 42, 1; VisualCSE seeds 42, 1, trained on those same "
                             f"sentences, fingerprint {CALIBRATION_TEXT}, a hash of the sentences) are among those runs: that "
                             "width describes them, it is no evidence beyond them.")
    # one run of the method beside two of SimCSE (notebook 3): each method's own seeds
    one = method_readings(reports(SimCSE=[82.70, 82.75], VisualCSE=[82.79]), [42, 1], 82.03, "VisualCSE", *args,
                          text=CALIBRATION_TEXT)
    assert "This notebook's runs (SimCSE seeds 42, 1; VisualCSE seed 42, trained" in one[-2]
    assert "That width comes from those runs" in method_readings(
        reports(SimCSE=[82.70, 82.75], VisualCSE=[82.79, 82.82]), [42, 1], 82.03, "VisualCSE", *args, text="0" * 16)[-2]
    # 80.03 - 76.85, each from where it is published
    assert ("VisualCSE - SimCSE: +0.08 points here (its sign not established by these runs), +3.18 between the reported "
            "results on STSBenchmark (visualcse-bert-base: yiren-jian/NonLing-CSE VisualCSE/README.md line 76; "
            "simcse-bert-base: SimCSE's paper, arXiv 2104.08821v4, Table 5)") in two[-1]
    assert ("the widest difference the calibration runs show (above), +0.29, is below the paper's; "
            "its size: not what the source") in two[-1]
    # three seeds, per-seed differences 1, 3, 5: mean 3, sd 2, error 2 / sqrt(3), reach 4.303 x 1.155 = 4.97, upper end 7.97
    three = method_readings(reports(SimCSE=[80.0, 80.0, 80.0], VisualCSE=[81.0, 83.0, 85.0]), [42, 1, 2], 79.0,
                            "VisualCSE", *args)
    assert ("the largest gap these runs leave open (the t interval's upper end, +3.00 + 4.97), +7.97, is at least the "
            "paper's; its size: as the source predicts") in three[-1]
    uncalibrated = dataclasses.replace(recipe, name="my-visualcse")   # a recipe of one's own: no calibration seeds
    other = method_readings(reports(SimCSE=[80.0, 80.2], VisualCSE=[81.0, 81.1]), [42, 1], 79.0, "VisualCSE",
                            uncalibrated, *args[1:])
    assert "its size: these runs cannot judge it against the source's prediction. These runs differ" in other[-1]
    elsewhere = method_readings(reports(SimCSE=[82.99, 82.99], VisualCSE=[83.02, 83.05]), [42, 1], 82.03, "VisualCSE",
                                *args, kit_trainer=False)
    # each method's gains in this trainer beside its own range: 82.99 - 82.03 = +0.96, above +0.50 to +0.72 by 0.24;
    # 83.02 - 82.03 = +0.99, above +0.50 to +0.79 by 0.20
    assert elsewhere[-2].endswith("but they show where the kit's trainer's runs ended: VisualCSE's gains here, +0.99, "
                                  "+1.02, beside quick-visualcse's +0.50 to +0.79: all above it, by at least 0.20; SimCSE's "
                                  "gains here, +0.96, +0.96, beside quick-simcse's +0.50 to +0.72: all above it, by at least 0.24.")
    single = method_readings(reports(SimCSE=[82.99], VisualCSE=[83.02]), [42], 82.03, "VisualCSE", *args, kit_trainer=False)
    assert single[-2].endswith("VisualCSE's gains here, +0.99, beside quick-visualcse's +0.50 to +0.79: above it, by 0.20; "
                               "SimCSE's gains here, +0.96, beside quick-simcse's +0.50 to +0.72: above it, by 0.24.")
    straddling = method_readings(reports(SimCSE=[82.60, 82.99], VisualCSE=[82.60, 82.70]), [42, 1], 82.03, "VisualCSE",
                                 *args, kit_trainer=False)
    # +0.57, +0.67 inside +0.50 to +0.79; +0.57 inside and +0.96 above +0.50 to +0.72
    assert straddling[-2].endswith("+0.57, +0.67, beside quick-visualcse's +0.50 to +0.79: all inside it; SimCSE's gains "
                                   "here, +0.57, +0.96, beside quick-simcse's +0.50 to +0.72: some inside it, some not.")
    assert "these runs cannot judge it against the source's prediction" in elsewhere[-1]


def test_the_loss_course_is_read_against_log_b_and_says_whether_it_fell():
    from nlsup_kit.conclusions import loss_course

    # means of the first and last 5 of 20 logged losses: 2 and 0.013 (each step's batch is other sentences)
    logged = [2.2, 1.8, 2.0, 2.1, 1.9] + [0.5] * 10 + [0.013, 0.02, 0.006, 0.01, 0.016]
    fell = loss_course(logged, 3.4657, 20)   # log 32
    assert fell.startswith("Over the 20 steps the text loss, mean of the first 5 logged steps 2 and of the last 5 "
                           "0.013 (0.4% of log B): it fell")
    assert loss_course([1.0, 2.0], 3.4657, 20).endswith(
        "first logged step 1, last 2 (57.7% of log B): it did not fall over these steps")
    # 0.3 is below a tenth of log 32 (0.347): saturated from the start, whichever way it then moved
    saturated = loss_course([0.3, 0.03], 3.4657, 20)
    # e^-0.3 = 0.741: a geometric mean over the rows, not each row
    assert saturated.endswith("below 0.1 x log B from the start (the kit's own line), it was saturated: on average (a "
                              "geometric mean over each batch) the right second view already took 74% of the probability; "
                              "the last steps' mean is 10% of the first steps': at losses this small a change says only how "
                              "much further apart views already told apart on average moved; whether STS moved, the STS "
                              "scores measure")
    assert "; it did not fall: at losses this small" in loss_course([0.3, 0.31], 3.4657, 20)
    assert "it fell" in loss_course([0.4, 0.0001], 3.4657, 20)


def test_the_augmentation_reading_names_the_steps_below_one_grey_level_as_idle():
    from nlsup_kit.conclusions import augmentation_reading

    reading = augmentation_reading({"crop": 0.2, "hue 0.1": 0.0, "greyscale": 3e-5, "flip": 0.004}, "grey digits")
    assert "hue 0.1, greyscale change the pixels by less than 0.0039" in reading
    assert reading.endswith("differ through crop, flip only")
    assert "every step changes" in augmentation_reading({"crop": 0.2, "flip": 0.004}, "photos")


def test_the_neighbours_cosines_are_read_against_the_shift_of_random_pairs():
    from nlsup_kit.conclusions import neighbour_cosine_reading

    # means 0.472 -> 0.396: -0.076 against random pairs' 0.043 -> 0.018: -0.025, a larger fall by 0.051
    reading = neighbour_cosine_reading([0.533, 0.465, 0.419], [0.455, 0.379, 0.354], 0.043, 0.018)
    assert reading == ("  the 3 best cosines, mean 0.472 -> 0.396 (-0.076; the cosine at 3 of the 3 ranks fell); the mean cosine of two "
                       "random different sentences 0.043 -> 0.018 (-0.025): the neighbours' cosines fell more than random "
                       "pairs' mean cosine, by 0.051 (3 cosines of one query, no spread measured: a description of this "
                       "query, not a finding)")
    assert "fell less than random pairs' mean cosine, by 0.015" in neighbour_cosine_reading([0.4, 0.4], [0.39, 0.39], 0.043, 0.018)
    assert "moved against random pairs' mean cosine (" in neighbour_cosine_reading([0.4, 0.4], [0.41, 0.41], 0.043, 0.018)
    assert "held while random pairs' mean cosine moved (" in neighbour_cosine_reading([0.4, 0.4], [0.4, 0.4], 0.043, 0.018)
    assert neighbour_cosine_reading([0.4, 0.3], [0.5, 0.1], 0.02, 0.02).startswith(
        "  the 2 best cosines, mean 0.350 -> 0.300 (-0.050; the cosine at 1 of the 2 ranks fell)")


def test_another_trainers_gaps_are_read_against_the_width_of_the_kit_trainers_calibration_range():
    from nlsup_kit.method_comparison import calibration_position, trainer_gaps_reading

    # quick-simcse's range +0.50 to +0.72 (width 0.22), quick-visualcse's +0.50 to +0.79 (width 0.29)
    assert calibration_position("quick-simcse", [0.96, 0.80]) == ("above", pytest.approx(0.08))
    assert calibration_position("quick-simcse", [0.40, 0.45]) == ("below", pytest.approx(0.05))
    assert calibration_position("quick-simcse", [0.50, 0.72])[0] == "inside"
    assert calibration_position("quick-simcse", [0.49, 0.60])[0] == "mixed"
    names = {"SimCSE": "quick-simcse", "VisualCSE": "quick-visualcse"}
    # one seed: 0.29 > 0.22, 0.23 < 0.29; both gains above their ranges (0.96 > 0.72, 0.99 > 0.79)
    one = trainer_gaps_reading({"SimCSE": [0.29], "VisualCSE": [0.23]}, {"SimCSE": [0.96], "VisualCSE": [0.99]}, names)
    assert "SimCSE: trainer gap +0.29 against a width of 0.22, wider; VisualCSE: trainer gap +0.23 against a width of 0.29, not wider." in one
    assert ("SimCSE: wider than the kit's seeds move its side, a lean toward the trainers; VisualCSE: not, so there the "
            "trainers are not told from the seeds; yet every sentence-transformers run here gained more") in one
    assert one.endswith("How far the sentence-transformers trainer's own seeds move its side is not measured here (one "
                        "seed of each): a lean, not a verdict.")
    # a gap below the kit's run counts by its size: -0.30 is wider than 0.22
    every = trainer_gaps_reading({"SimCSE": [-0.30], "VisualCSE": [0.40]}, {"SimCSE": [0.6], "VisualCSE": [0.6]}, names)
    assert "Every gap is wider than the kit's seeds move its side" in every and "yet" not in every
    # two seeds, one gap of two wider for SimCSE; gains inside the ranges: no lean from them
    two = trainer_gaps_reading({"SimCSE": [0.29, 0.10], "VisualCSE": [0.10, -0.20]},
                               {"SimCSE": [0.6, 0.7], "VisualCSE": [0.6, 0.6]}, names)
    assert "trainer gaps +0.29, +0.10 against a width of 0.22, 1 of 2 wider" in two
    assert ("Some gaps are wider than the kit's seeds move its side, though no method's in every seed: these gaps "
            "cannot tell the trainers from the seeds. How far the sentence-transformers trainer's own seeds move its side is known from 2 "
            "seeds only.") in two
    none = trainer_gaps_reading({"SimCSE": [0.1], "VisualCSE": [0.1]}, {"SimCSE": [0.96], "VisualCSE": [0.6]}, names)
    assert "No gap is wider than the kit's seeds move its side: these gaps cannot tell the trainers from the seeds." in none
    assert none.endswith("(one seed of each).")
    # no gap wider, yet every run above its range: that alone leans
    lean = trainer_gaps_reading({"SimCSE": [0.1], "VisualCSE": [0.1]}, {"SimCSE": [0.96], "VisualCSE": [0.99]}, names)
    assert lean.endswith("cannot tell the trainers from the seeds; yet every sentence-transformers run here gained more "
                         "than all of the kit trainer's calibration runs of its method (the reading above), a lean toward "
                         "the trainers. How far the sentence-transformers trainer's own seeds move its side is not measured here (one "
                         "seed of each): a lean, not a verdict.")


def test_a_hand_steps_loss_is_read_as_a_share_of_log_b():
    from nlsup_kit.conclusions import share_of_log_b

    # log 8 = 2.0794: 0.025983 is 1.2% of it, below a tenth; 1.5 is 72.1%
    # e^-0.025983 = 0.974; 8 x 0.025983 = 0.208 < log 2 = 0.693: no row can be below half
    assert share_of_log_b(0.025983, 8) == ("1.2% of log B, B = 8: below 0.1 x log B (the kit's own line): at this text update "
                                           "the right second view already takes 97% of the probability on average (a "
                                           "geometric mean over the 8 rows); B x loss = 0.208 < log 2, so in every row the "
                                           "right second view takes over half")
    # 0.143 is 4.1% of log 32, yet 32 x 0.143 = 4.58 > log 2: up to six rows could sit below half, so no "every row"
    assert share_of_log_b(0.143, 32).endswith("takes 87% of the probability on average (a geometric mean over the 32 rows)")
    assert share_of_log_b(1.5, 8) == ("72.1% of log B, B = 8: at or above 0.1 x log B (the kit's own line), so this step "
                                      "still has second views to tell apart")


def test_modality_budget_says_what_a_run_gave_its_image_loss_from_the_recipe():
    from nlsup_kit.conclusions import modality_budget
    from nlsup_kit.recipes import apply_overrides, get_recipe

    quick = get_recipe("quick-visualcse")   # 20 updates at 1e-05, lambda 0.1, no pretrained ViT (nlsup recipes)
    assert modality_budget(20, quick) == {"the image loss's training": (
        "20 updates at learning rate 1e-05, the loss weighted by lambda 0.1, from a patch embedding initialised at "
        "random and a head initialised at random", "as many updates as the loss needs to come down")}
    vit = apply_overrides(quick, ["vit_embeddings=google/vit-base-patch16-224-in21k"])
    assert "from a pretrained google/vit-base-patch16-224-in21k patch embedding" in modality_budget(7, vit)["the image loss's training"][0]
