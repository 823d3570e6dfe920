"""Text training data: one-sentence-per-line corpora (unsupervised) and NLI-style triples (supervised)."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from nlsup_kit.data.leipzig import PREFIX as LEIPZIG_PREFIX, corpus_file
from nlsup_kit.data.paths import NLI_CSV, WIKI1M, WIKI_SMALL, require_file
from nlsup_kit.data.senteval import read_sick_entailment
from nlsup_kit.errors import NlsupError, at_line, count

SICK_TRAIN = Path("senteval") / "SICK" / "SICK_train.txt"


BAD_TEXT_CHOICES = ("fail", "skip")


@dataclass
class TextReport:
    """What reading a corpus found; the trainer prints it when something was off and keeps it in result.json."""

    path: str
    sentences: int = 0
    blank_lines: int = 0
    skipped_not_utf8: int = 0
    duplicates: int = 0  # kept (SimCSE trains on the file as it is), only counted
    truncated: int = 0  # longer than the recipe's max_length tokens; filled in by the trainer
    fingerprint: str = ""  # of the sentences kept (sha256, 16 hex digits): which text a run trained on

    def problems(self) -> str:
        found = [(self.skipped_not_utf8, "line", " skipped (not UTF-8)"), (self.duplicates, "duplicate sentence", ""),
                 (self.truncated, "sentence", " truncated to max_length")]
        return ", ".join(f"{count(n, noun)}{what}" for n, noun, what in found if n)


class Sentences(list):
    """A list of sentences that also carries its :class:`TextReport`."""

    report: TextReport


def text_fingerprint(sentences: list[str]) -> str:
    """Which sentences, in which order: two runs trained on the same text share it, whatever the file's name."""
    return hashlib.sha256("\n".join(sentences).encode("utf-8")).hexdigest()[:16]


def read_corpus(path: Path, max_sentences: int | None = None, bad_text: str = "fail") -> Sentences:
    """Non-blank stripped lines of a UTF-8 file, in file order. A line that is not UTF-8 is an error naming
    it, or with ``bad_text="skip"`` is skipped and counted."""
    if bad_text not in BAD_TEXT_CHOICES:
        raise NlsupError(f"bad_text={bad_text!r}: choose from {', '.join(BAD_TEXT_CHOICES)}")
    require_file(path, "a text file with one sentence a line")
    sentences, report, seen = Sentences(), TextReport(str(path)), set()
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                if bad_text == "fail":
                    raise at_line(path, number, "not valid UTF-8 text (set bad_text=skip to skip such "
                                                "lines)") from None
                report.skipped_not_utf8 += 1
                continue
            if not line:
                report.blank_lines += 1
                continue
            report.duplicates += line in seen
            seen.add(line)
            sentences.append(line)
            if max_sentences is not None and len(sentences) >= max_sentences:
                break
    if not sentences:
        raise NlsupError(f"{path}: no sentences (the file is empty or only blank lines"
                         f"{', or every line was skipped' if report.skipped_not_utf8 else ''})")
    report.sentences = len(sentences)
    report.fingerprint = text_fingerprint(sentences)
    sentences.report = report
    return sentences


def read_nli_csv(path: Path, max_rows: int | None = None) -> list[tuple[str, str, str]]:
    """SimCSE's ``nli_for_simcse.csv``: header sent0,sent1,hard_neg; one (anchor, positive, hard negative) a row."""
    require_file(path, "run `nlsup download nli`")
    triples = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise NlsupError(f"{path}: file is empty")
        for number, row in enumerate(reader, start=2):
            if len(row) != 3:
                raise at_line(path, number, f"expected 3 columns (sent0, sent1, hard_neg), found {len(row)}")
            triples.append((row[0], row[1], row[2]))
            if max_rows is not None and len(triples) >= max_rows:
                break
    return triples


def sick_triples(path: Path) -> list[tuple[str, str, str]]:
    """Offline NLI triples from SICK train: an ENTAILMENT pair with a CONTRADICTION partner of the same
    premise as hard negative. Contradiction is symmetric, so either side of a CONTRADICTION row counts;
    the first partner in file order is used, so the set is deterministic (259 triples)."""
    rows = read_sick_entailment(path)
    contradictions: dict[str, str] = {}
    for premise, hypothesis, label in rows:
        if label == "CONTRADICTION":
            contradictions.setdefault(premise, hypothesis)
            contradictions.setdefault(hypothesis, premise)
    return [(premise, hypothesis, contradictions[premise]) for premise, hypothesis, label in rows
            if label == "ENTAILMENT" and premise in contradictions]


TEXT_SOURCES = ("wiki", "wiki1m", "nli", "sick-nli")


def load_text_data(source: str, data_dir: Path, max_examples: int | None = None, bad_text: str = "fail") -> list:
    """Sentences (str) or triples (anchor, positive, negative) by source name or file path."""
    if source == "wiki":
        return read_corpus(data_dir / WIKI_SMALL, max_examples, bad_text)
    if source == "wiki1m":
        return read_corpus(require_file(data_dir / WIKI1M, "run `nlsup download wiki1m`"), max_examples, bad_text)
    if source == "nli":
        return read_nli_csv(data_dir / NLI_CSV, max_examples)
    if source == "sick-nli":
        return sick_triples(data_dir / SICK_TRAIN)[:max_examples]
    if source.startswith(LEIPZIG_PREFIX):
        corpus = source.removeprefix(LEIPZIG_PREFIX)
        return read_corpus(require_file(corpus_file(data_dir, corpus), f"run `nlsup download {source}`"),
                           max_examples, bad_text)
    path = Path(source).expanduser()
    if path.suffix == ".csv":
        return read_nli_csv(path, max_examples)
    if path.exists():
        return read_corpus(path, max_examples, bad_text)
    raise NlsupError(f"text data {source!r} is neither a known source ({', '.join(TEXT_SOURCES)}, "
                     f"{LEIPZIG_PREFIX}<corpus>) nor a file")
