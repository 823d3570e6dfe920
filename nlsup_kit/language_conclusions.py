"""What notebook 6 reads from other languages: an English tokenizer's cut of the same text, and retrieval moved by
training, each read against its source's prediction (as :mod:`nlsup_kit.conclusions` reads the other notebooks)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from nlsup_kit.conclusions import against_prediction, sign_test

UNSPACED_WORDS_PER_UNIT = 3  # a text with fewer space-separated words a unit is written without spaces (Chinese)


def tokenizer_reading(report: Mapping[str, Mapping], max_length: int, reference: str = "en") -> list[str]:
    """One :func:`nlsup_kit.analysis.tokenizer_report` read against what BERT's sources predict of an English
    uncased vocabulary: other languages cut into more pieces, less of them kept within ``max_length`` tokens,
    characters it lacks as the unknown token, accented letters stripped. Each prediction gets one line."""
    others = {language: r for language, r in report.items() if language != reference}
    base = report[reference]

    def span(key: str, scale: float, unit: str, among: Mapping = others) -> str:
        low, high = min(among, key=lambda l: among[l][key]), max(among, key=lambda l: among[l][key])
        return f"{low} {scale * among[low][key]:.{2 if unit == 'x' else 1}f}{unit} to {high} {scale * among[high][key]:.{2 if unit == 'x' else 1}f}{unit}"

    # a language whose pieces are mostly the unknown token says little of how finely words are cut: counted out
    mostly_unknown = {language: r["unknown"] for language, r in others.items() if r["unknown"] >= 0.1}
    counted = {language: r for language, r in others.items() if language not in mostly_unknown}
    left_out = "".join(f"; {language} left out: its pieces are {100 * u:.1f}% the unknown token, so its count and its kept "
                       "share measure unknown tokens more than cut words" for language, u in mostly_unknown.items())
    longer = [language for language, r in counted.items() if r["ratio"] > 1.0]
    lines = [against_prediction(f"pieces: {len(longer)} of {len(counted)} languages take more pieces than {reference} for the "
                                f"same text ({span('ratio', 1, 'x', counted)}){left_out}", len(longer) == len(counted),
                                {"languages no longer than " + reference: (", ".join(sorted(set(counted) - set(longer))), "none")})]
    if "per_word" in base:  # the cut itself, apart from how many words a language says it in
        unspaced = sorted(language for language, r in others.items() if r["words_per_unit"] < UNSPACED_WORDS_PER_UNIT)
        spaced = {language: r for language, r in others.items() if language not in unspaced}
        finer = [language for language, r in spaced.items() if r["per_word"] > base["per_word"]]
        low, high = min(spaced, key=lambda l: spaced[l]["per_word"]), max(spaced, key=lambda l: spaced[l]["per_word"])
        unspaced_out = (f"; {', '.join(unspaced)} left out, written without spaces between words ("
                        + ", ".join(f"{language}: {others[language]['words_per_unit']:.3g} space-separated 'words' per unit"
                                    for language in unspaced)
                        + f", under the kit's line of {UNSPACED_WORDS_PER_UNIT} for a text written without spaces, "
                        "nlsup_kit.language_conclusions.UNSPACED_WORDS_PER_UNIT: its "
                        + ", ".join(f"{language} {others[language]['per_word']:.2f}" for language in unspaced)
                        + " pieces per 'word' count pieces per run of text between spaces, not per word)" if unspaced else "")
        lines.append(against_prediction(
            f"pieces per word: {reference} {base['per_word']:.2f}; {len(finer)} of {len(spaced)} others cut their words "
            f"finer ({low} {spaced[low]['per_word']:.2f} to {high} {spaced[high]['per_word']:.2f}){unspaced_out}",
            len(finer) == len(spaced), {"languages cut no finer than " + reference: (", ".join(sorted(set(spaced) - set(finer))), "none")}))
    shorter = [language for language, r in counted.items() if r["kept"] < base["kept"]]
    own_cut = f" (its units run longer than {max_length} pieces too)" if base["kept"] < 1 else ""
    lines.append(against_prediction(f"kept in {max_length} tokens: {reference} itself keeps {100 * base['kept']:.1f}% of a unit on "
                                    f"average{own_cut}; {len(shorter)} of {len(counted)} others keep less "
                                    f"({span('kept', 100, '%', counted)}){'; ' + ', '.join(mostly_unknown) + ' left out, as above' if mostly_unknown else ''}",
                                    len(shorter) == len(counted),
                                    {"languages that keep as much as " + reference: (", ".join(sorted(set(counted) - set(shorter))), "none")}))
    unknown = {language: r["unknown"] for language, r in report.items() if r["unknown"] > 0}
    whole = [language for language in report if language not in unknown]
    single = [l for l in unknown if report[l].get("words_per_unit", UNSPACED_WORDS_PER_UNIT) < UNSPACED_WORDS_PER_UNIT]
    lines.append("unknown pieces: " + (", ".join(f"{l} {100 * u:.1f}%" for l, u in unknown.items()) if unknown else "none")
                 + (f"; {', '.join(whole)} 0%: every word of theirs, as the normaliser left it (the last column says what it changed), was cut into pieces the vocabulary holds"
                    if whole else "")
                 + (f"; {', '.join(unknown)}: words the vocabulary cannot cut into known pieces"
                    + (f" (in {', '.join(single)}, written without spaces, single characters: the tokenizer cuts them apart first)"
                       if single else "") + ", which WordPiece turns into the unknown token, as BERT's tokenizer predicts" if unknown else ""))
    changed = {language: r["changed_words"] for language, r in report.items() if "changed_words" in r}
    if changed:
        marked = sorted(language for language, r in report.items() if r.get("changed_characters"))
        moved = sorted(language for language, share in changed.items() if share > 0)
        lines.append(against_prediction(
            "word occurrences the normaliser changes beyond lower-casing: "
            + ", ".join(f"{language} {100 * share:.1f}%" for language, share in changed.items())
            + f"; the languages with changed words: {', '.join(moved) or 'none'} (the normaliser decomposes each letter, "
            "Unicode NFD, and drops every nonspacing mark, Unicode category Mn, an accent or another, such as the breve of Russian й: "
            "_run_strip_accents in BERT's tokenization.py)", moved == marked,
            {"languages whose letters it changes (listed below)": (", ".join(marked) or "none", "the same languages")}))
    for language, r in report.items():
        changes = r.get("changed_characters", {})
        if not changes:
            continue
        marked = {c: n for c, n in changes.items() if " WITH " in unicodedata.name(c, "")}
        own = {c: n for c, n in changes.items() if c not in marked}
        listing = ", ".join(f"{c}->{n}" for c, n in changes.items())
        line = f"normaliser, {language}: {listing}"
        if own:
            line += ("; Unicode names " + "; ".join(f"{c} {unicodedata.name(c, '?')}" for c in own)
                     + ": a letter of its own name, not a letter WITH a mark, changed all the same (the normaliser drops every nonspacing "
                     "mark, Unicode category Mn, after Unicode decomposition, NFD: google-research/bert, tokenization.py, _run_strip_accents)")
        else:
            line += " (each a letter WITH a mark in its Unicode name: the 'accent markers' that BERT's README says the uncased model strips)"
        lines.append(line)
    return lines


def units_moved_reading(before: Mapping[str, float], after: Mapping[str, float], units: int) -> str:
    """Per-language retrieval (percent of ``units`` items) before and after: how many items moved, in which
    direction, and whether one text of ``units`` items can tell such a move from chance (a move of one or two items
    in a language is within what it resolves; a sign test asks whether the directions agree beyond coin tosses)."""
    moves = {language: round((after[language] - before[language]) * units / 100) for language in before}
    down, up = [l for l, m in moves.items() if m < 0], [l for l, m in moves.items() if m > 0]
    widest = max(abs(m) for m in moves.values())
    n = len(down) + len(up)
    p = sign_test(len(up), len(down))
    line = (f"in units: {sum(moves.values()):+d} of {len(moves) * units} retrievals; {len(down)} languages lost units"
            f"{' (' + ', '.join(down) + ')' if down else ''}, {len(up)} gained{' (' + ', '.join(up) + ')' if up else ''}, "
            f"{len(moves) - n} unchanged in count (net counts: a language that lost one unit and found another reads as "
            f"unchanged); at most {widest} in one language")
    if n:
        line += (f". {max(len(down), len(up))} of {n} moves went one way, which coin tosses give with probability {p:.0%} "
                 "(two-sided sign test: each move taken as a fair coin toss, up or down, and a split this uneven counted "
                 "either way)")
    if widest <= 2 and p >= 0.05:
        return line + ": below what one text resolves, so this text cannot say that training moved the other languages."
    return line + ": more than one text of this size resolves by chance."


def length_baseline_reading(found: Mapping[str, int], baseline: int, trials: int) -> str:
    """Retrievals found by each model (``found``: model -> count of ``trials``) beside a baseline that reads only
    length (:func:`nlsup_kit.analysis.length_retrieval`): a model at or below it has not shown that it matches
    meaning across languages rather than length; one text of a few units has no spread, so above it is a description."""
    counts = ", ".join(f"{name} {count}" for name, count in found.items())
    line = (f"a baseline that reads only length (each unit matched to the English unit nearest in its share of the text's "
            f"characters: nlsup_kit.analysis.length_retrieval) finds {baseline} of {trials}; the models: {counts}")
    above = [name for name, count in found.items() if count > baseline]
    if not above:
        return line + (": none above it, so on these units length alone finds the translation at least as often as "
                       f"each model ({baseline} against {', '.join(str(c) for c in found.values())}), and this "
                       "retrieval cannot show that a model matches meaning across languages beyond length")
    return line + (f": {', '.join(above)} above it by {', '.join(str(found[n] - baseline) for n in above)} of {trials} "
                   "(one text, no spread measured: a description, not a finding)")
