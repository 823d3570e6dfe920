"""The embedding-space measures on hand-made points, where the answer can be worked out on paper."""

import numpy as np
import pytest
import torch

from nlsup_kit.analysis import class_similarity, classes_nearer_another, knn_accuracy, trunk_vectors, within_and_between


def test_knn_accuracy_on_points_worked_out_by_hand():
    # two tight pairs: (1, 0) with (0.9, 0.1), and (0, 1) with (0.1, 0.9)
    points = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert knn_accuracy(points, torch.tensor([0, 0, 1, 1]), k=1) == 1.0  # each one's neighbour is its partner
    assert knn_accuracy(points, torch.tensor([0, 1, 0, 1]), k=1) == 0.0  # each partner is of the other class
    # k=3 votes among all the others: point 0 sees labels 0, 1, 1 -> 1 (wrong); so do the rest by symmetry
    assert knn_accuracy(points, torch.tensor([0, 0, 1, 1]), k=3) == 0.0
    # scale does not matter (cosine), and a point is never its own neighbour
    assert knn_accuracy(points * torch.tensor([[5.0], [1.0], [3.0], [0.5]]), torch.tensor([0, 0, 1, 1]), k=1) == 1.0


def test_class_similarity_is_the_mean_cosine_over_pairs_of_distinct_examples():
    # three points of class "b" and two of class "a", of unequal lengths; the cosines worked out pair by pair below
    points = torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, 2.0], [1.0, 0.0], [2.0, -2.0]])
    labels = ["b", "b", "b", "a", "a"]
    matrix, classes = class_similarity(points, labels)
    assert classes == ["a", "b"]
    r = 2 ** -0.5  # cos 45 degrees
    # a-a: the one pair (1,0)-(2,-2): r. a-b: (1,0) with b's 1, r, 0; (2,-2) with r, 0, -r: sum 1 + r over 6 pairs.
    # b-b: (3,0)-(1,1) r, (3,0)-(0,2) 0, (1,1)-(0,2) r: mean 2r/3
    np.testing.assert_allclose(matrix, [[r, (1 + r) / 6], [(1 + r) / 6, 2 * r / 3]], atol=1e-12)
    within, between = within_and_between(matrix)  # the diagonal's mean and the off-diagonal's
    assert (within, between) == pytest.approx(((r + 2 * r / 3) / 2, (1 + r) / 6))


def test_the_classes_no_closer_to_themselves_are_named_with_the_class_they_sit_nearest():
    # rows by hand: a is nearest itself (0.9 > 0.5, 0.2); b sits nearer c (0.6 > 0.4); c ties with a (0.3 = 0.3): not apart
    matrix = np.array([[0.9, 0.5, 0.2], [0.5, 0.4, 0.6], [0.3, 0.2, 0.3]])
    assert classes_nearer_another(matrix, ["a", "b", "c"]) == [("b", "c"), ("c", "a")]
    assert classes_nearer_another(np.eye(3), [0, 1, 2]) == []


def test_trunk_vectors_are_the_shared_layers_cls_before_the_branch_head(minilm):
    from nlsup_kit.embeddings import BranchConfig, ModalityBranch

    torch.manual_seed(0)
    branch = ModalityBranch(BranchConfig("image", minilm.hidden_size, patch_size=8, image_size=16))
    images = torch.randn(5, 3, 16, 16)
    got = trunk_vectors(branch, minilm, images, batch_size=2)
    with torch.no_grad():
        tokens = branch.embedding(images)
        expected = minilm.backbone.encoder(tokens).last_hidden_state[:, 0]  # HF's own layer stack, no mask
        head = torch.tanh(expected @ branch.head.dense.weight.T + branch.head.dense.bias)  # the own head: Linear + Tanh
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(trunk_vectors(branch, minilm, images, batch_size=2, through_head=True), head, rtol=1e-4, atol=1e-4)


def test_normalised_digits_match_training_normalisation():
    from nlsup_kit.data.images import digits, normalised_digits

    plain, normalised = digits(16), normalised_digits(16)
    assert torch.equal(normalised.labels, plain.labels)
    torch.testing.assert_close(normalised.images, plain.images * 2 - 1)  # (x - 0.5) / 0.5
    assert normalised.images.min() >= -1 and normalised.images.max() <= 1


def test_translation_retrieval_counts_the_rows_whose_nearest_target_is_their_own_translation():
    """Targets are the sources plus a little noise, with rows 0 and 1 swapped and row 2 replaced by row 3's
    neighbour: by construction rows 0, 1 and 2 miss, the other seven find themselves."""
    from nlsup_kit.analysis import translation_retrieval

    torch.manual_seed(0)
    source = torch.nn.functional.normalize(torch.randn(10, 64), dim=-1)
    target = source + 0.01 * torch.randn(10, 64)
    target[[0, 1]] = target[[1, 0]]
    target[2] = source[3] + 0.02 * torch.randn(64)
    assert translation_retrieval(source, target) == 7 / 10
    assert translation_retrieval(source, source) == 1.0
    # by hand: both targets lean to (1, 0), but each source's nearest target is still its own (cosines 0.995 and
    # 0.196 beat 0.981 and 0.0995); retrieval runs from source to target, not the other way (which finds 1 of 2)
    assert translation_retrieval(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.1], [1.0, 0.2]])) == 1.0


def test_length_retrieval_matches_each_unit_to_the_target_nearest_in_its_share_of_the_characters():
    from nlsup_kit.analysis import length_retrieval

    # shares of the characters, by hand: source 2/10, 3/10, 5/10; target 4/20, 10/20, 6/20 (0.2, 0.5, 0.3), so the
    # units are found at 0, 2, 1: only the first is its own translation
    assert length_retrieval(["aa", "bbb", "ccccc"], ["x" * 4, "y" * 10, "z" * 6]) == 1 / 3
    # a translation twice as long in every unit keeps every share: all found
    assert length_retrieval(["aa", "bbb", "ccccc"], ["aaaa", "bbbbbb", "cccccccccc"]) == 1.0


def test_tokenizer_report_matches_counts_taken_straight_from_the_tokenizer_and_unicode(minilm):
    """Pieces and unknown pieces from the tokenizer's ids, the share kept from its own truncation at 32, and the
    changed words from Unicode (lower case, then accents removed: what an uncased BERT normaliser does)."""
    import unicodedata

    import numpy as np

    from nlsup_kit.analysis import tokenizer_report
    from nlsup_kit.data.parallel import udhr_preamble

    tokenizer = minilm.tokenizer
    parallel = udhr_preamble()
    report = tokenizer_report(tokenizer, parallel, max_length=32)
    english = sum(len(tokenizer(u, add_special_tokens=False)["input_ids"]) for u in parallel["en"])
    for language, units in parallel.items():
        ids = [tokenizer(u, add_special_tokens=False)["input_ids"] for u in units]
        cut = [tokenizer(u, truncation=True, max_length=32)["input_ids"] for u in units]
        assert report[language]["pieces"] == sum(map(len, ids))
        assert report[language]["ratio"] == sum(map(len, ids)) / english
        assert report[language]["unknown"] == sum(i.count(tokenizer.unk_token_id) for i in ids) / sum(map(len, ids))
        assert report[language]["kept"] == np.mean([(len(c) - 2) / len(i) for c, i in zip(cut, ids)])
        words = [w for u in units for w in u.split()]  # Chinese: one "word" per clause, unchanged (no case, no accents)
        stripped = ["".join(c for c in unicodedata.normalize("NFD", w.lower()) if unicodedata.category(c) != "Mn")
                    for w in words]
        assert report[language]["changed_words"] == sum(s != w.lower() for s, w in zip(stripped, words)) / len(words)
        assert report[language]["per_word"] == sum(map(len, ids)) / len(words)
        assert report[language]["words_per_unit"] == len(words) / len(units)
        letters = {c for u in units for c in u.lower() if not c.isspace() and unicodedata.category(c) != "Mn"}
        letters |= {c for u in units for c in u if len(c.lower()) > 1}  # Turkish İ: its lower case carries a mark
        strip = {c: "".join(d for d in unicodedata.normalize("NFD", c.lower()) if unicodedata.category(d) != "Mn")
                 for c in letters}
        assert report[language]["changed_characters"] == {c: s for c, s in strip.items() if s != c}
    assert report["de"]["ratio"] > 1.5 and report["zh"]["unknown"] > 0.5  # the English vocabulary, measured
    assert report["ru"]["changed_characters"] == {"й": "и"} and report["en"]["changed_characters"] == {}
    assert report["tr"]["changed_characters"]["İ"] == "i"  # "İnsan": its dot goes, as the normaliser strips marks


def test_tokenizer_facts_say_what_the_tokenizer_does_to_text(minilm):
    """Its kind, vocabulary size and normaliser, checked against what it does: its pieces are ##-continued
    (WordPiece), its vocabulary is that long, "A" comes out "a" and "é" comes out "e"."""
    from nlsup_kit.analysis import tokenizer_facts

    tokenizer = minilm.tokenizer
    normalise = tokenizer.backend_tokenizer.normalizer.normalize_str
    assert any(piece.startswith("##") for piece in tokenizer.tokenize("untranslatability"))
    assert tokenizer_facts(tokenizer) == (f"WordPiece over {len(tokenizer.get_vocab()):,} pieces; its normaliser lower-cases: "
                                          f"{normalise('A') == 'a'}, strips accents: {normalise('é') == 'e'}, puts spaces around "
                                          f"each Chinese character (so each is a word of its own): {normalise('人權') == ' 人  權 '}")


def test_the_shipped_parallel_text_reads_as_eight_units_in_seven_languages_and_a_bad_file_names_its_line(tmp_path):
    from nlsup_kit.data.parallel import UDHR_LANGUAGES, read_parallel_file, udhr_preamble
    from nlsup_kit.errors import NlsupError

    parallel = udhr_preamble()
    assert list(parallel) == list(UDHR_LANGUAGES) and all(len(units) == 8 for units in parallel.values())
    assert len({units[0] for units in parallel.values()}) == 7  # no language a copy of another
    short, blank = tmp_path / "short.txt", tmp_path / "blank.txt"
    short.write_text("\n".join(parallel["de"][:7]) + "\n", encoding="utf-8")
    blank.write_text("\n".join(parallel["de"][:3] + ["  "] + parallel["de"][4:]) + "\n", encoding="utf-8")
    with pytest.raises(NlsupError) as error:
        read_parallel_file(short)
    assert str(error.value) == f"{short}:8: 7 lines, expected 8 (one per unit, in the same order in every language)"
    with pytest.raises(NlsupError) as error:
        read_parallel_file(blank)
    assert str(error.value) == f"{blank}:4: empty line; each line is one unit of the text"
    with pytest.raises(NlsupError, match="no UDHR preamble for 'xx'; the kit ships en, de"):
        udhr_preamble(("de", "xx"))
