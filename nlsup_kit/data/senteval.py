"""Readers for the SentEval STS layout (the files SimCSE's ``senteval.tar`` unpacks to).

They follow SentEval exactly where it matters for the score: sentences are whitespace-tokenised and
re-joined with single spaces (SimCSE's batcher does ``' '.join(tokens)``), and STS12-16 pairs whose gold
line is empty are dropped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from nlsup_kit.data.content import archive_problem
from nlsup_kit.data.disk import DiskProblem, writing
from nlsup_kit.data.download import fetch, safe_extract, source_url
from nlsup_kit.data.paths import require_file
from nlsup_kit.errors import NlsupError, at_line, count

STS_YEARS: dict[str, tuple[str, ...]] = {
    "STS12": ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"),
    "STS13": ("FNWN", "headlines", "OnWN"),
    "STS14": ("deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"),
    "STS15": ("answers-forums", "answers-students", "belief", "headlines", "images"),
    "STS16": ("answer-answer", "headlines", "plagiarism", "postediting", "question-question"),
}
STS_TASKS: tuple[str, ...] = (*STS_YEARS, "STSBenchmark", "SICKRelatedness")


def short_task_name(task: str) -> str:
    """A task's column heading in tables: STS-B and SICK-R, as the papers print them."""
    return task.replace("Benchmark", "-B").replace("Relatedness", "-R")


def score_label(tasks) -> str:
    """What a report's average is called: over one task it is that task's score (STS-B), over several the "avg"."""
    tasks = list(tasks)
    return short_task_name(tasks[0]) if len(tasks) == 1 else "avg"
SCORE_RANGE = {"STSBenchmark": (0.0, 5.0), "SICKRelatedness": (1.0, 5.0)}
DOWNLOAD_HINT = "run `nlsup download senteval`, or point --data-dir at a folder holding senteval/"


@dataclass
class StsPairs:
    """Sentence pairs with gold scores; ``subsets`` names the SemEval subset of each pair."""

    sentences1: list[str] = field(default_factory=list)
    sentences2: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    subsets: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.scores)

    def add(self, s1: str, s2: str, score: float, subset: str) -> None:
        self.sentences1.append(s1)
        self.sentences2.append(s2)
        self.scores.append(score)
        self.subsets.append(subset)


def normalise(sentence: str) -> str:
    """SentEval's tokenisation round trip: split on whitespace, join with one space."""
    return " ".join(sentence.split())


def read_text(path: Path, hint: str = DOWNLOAD_HINT) -> str:
    """A data file's text: missing (with ``hint``: how to get it), not UTF-8 (the line) or empty is one line."""
    require_file(path, hint)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise at_line(path, line, "not valid UTF-8 text") from None
    if not text.strip():
        raise NlsupError(f"{path}: file is empty")
    return text


def _read_lines(path: Path) -> list[str]:
    return read_text(path).splitlines()


def _score(raw: str, path: Path, line: int, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise at_line(path, line, f"gold score {raw!r} is not a number") from None
    if not low <= value <= high:
        raise at_line(path, line, f"gold score {value} is outside {low:g}-{high:g}")
    return value


def read_sts_year(task_dir: Path, subsets: tuple[str, ...]) -> StsPairs:
    """One STS12-16 folder: ``STS.input.<subset>.txt`` with ``STS.gs.<subset>.txt`` beside it."""
    pairs = StsPairs()
    for subset in subsets:
        input_path = task_dir / f"STS.input.{subset}.txt"
        gold_path = task_dir / f"STS.gs.{subset}.txt"
        inputs, golds = _read_lines(input_path), _read_lines(gold_path)
        if len(inputs) != len(golds):
            raise NlsupError(
                f"{input_path}: {count(len(inputs), 'sentence pair')} but {gold_path.name} has "
                f"{count(len(golds), 'gold line')}"
            )
        for number, (line, gold) in enumerate(zip(inputs, golds), start=1):
            columns = line.split("\t")
            if len(columns) != 2:
                raise at_line(input_path, number, f"expected 2 tab-separated sentences, found {len(columns)}")
            if not gold.strip():
                continue
            score = _score(gold.strip(), gold_path, number, 0.0, 5.0)
            pairs.add(normalise(columns[0]), normalise(columns[1]), score, subset)
    return pairs


def _read_scored_rows(path: Path, first_line: int, columns: tuple[int, int, int], task: str) -> StsPairs:
    """Tab-separated rows from ``first_line`` on; ``columns`` = (sentence 1, sentence 2, score)."""
    pairs = StsPairs()
    low, high = SCORE_RANGE[task]
    needed = max(columns) + 1
    for number, line in enumerate(_read_lines(path)[first_line - 1:], start=first_line):
        cells = line.strip().split("\t")
        if len(cells) < needed:
            raise at_line(path, number, f"expected at least {needed} tab-separated columns, found {len(cells)}")
        first, second, score = (cells[i] for i in columns)
        pairs.add(normalise(first), normalise(second), _score(score, path, number, low, high), path.stem)
    return pairs


def read_stsb(path: Path) -> StsPairs:
    """STS Benchmark csv: genre, file, year, id, score, sentence1, sentence2 (tab-separated)."""
    return _read_scored_rows(path, 1, (5, 6, 4), "STSBenchmark")


def read_sick(path: Path) -> StsPairs:
    """SICK with header: pair_ID, sentence_A, sentence_B, relatedness_score, entailment_judgment."""
    return _read_scored_rows(path, 2, (1, 2, 3), "SICKRelatedness")


def read_sick_entailment(path: Path) -> list[tuple[str, str, str]]:
    """Raw SICK rows as (sentence_A, sentence_B, entailment label), for NLI-style triples."""
    rows = []
    for number, line in enumerate(_read_lines(path)[1:], start=2):
        columns = line.strip().split("\t")
        if len(columns) < 5:
            raise at_line(path, number, f"expected 5 tab-separated columns, found {len(columns)}")
        rows.append((normalise(columns[1]), normalise(columns[2]), columns[4].strip().upper()))
    return rows


def load_sts_task(task: str, data_dir: str | Path, split: str = "test") -> StsPairs:
    """Pairs of one task; STS12-16 only have a test split, STS-B and SICK also train/dev; the multilingual
    STS-B (``stsb-de``...) dev and test (:mod:`nlsup_kit.data.multilingual`)."""
    root = Path(data_dir) / "senteval"
    if task in STS_YEARS:
        if split != "test":
            raise NlsupError(f"{task} has only a test split (asked for {split!r})")
        return read_sts_year(root / "STS" / f"{task}-en-test", STS_YEARS[task])
    if task == "STSBenchmark":
        return read_stsb(root / "STS" / "STSBenchmark" / f"sts-{split}.csv")
    if task == "SICKRelatedness":
        files = {"train": "SICK_train.txt", "dev": "SICK_trial.txt", "test": "SICK_test_annotated.txt"}
        if split not in files:
            raise NlsupError(f"SICKRelatedness has splits train, dev, test (asked for {split!r})")
        return read_sick(root / "SICK" / files[split])
    raise NlsupError(f"unknown STS task {task!r}; choose from {', '.join(STS_TASKS)} (other languages: "
                     f"nlsup_kit.data.multilingual.load_task)")


def download_senteval(data_dir: Path, url: str | None = None, progress: bool | None = None) -> Path:
    """SimCSE's ``senteval.tar`` unpacked to ``data_dir/senteval`` (its ``downstream/`` folder), then checked
    by reading every STS task; an existing, readable copy is left alone. An archive that is not SentEval's is
    deleted; one that could not be unpacked for want of space is kept."""
    target = data_dir / "senteval"
    if target.is_dir():
        return target
    url = url or source_url("senteval")
    archive = fetch(url, data_dir / "downloads" / "senteval.tar", check=archive_problem, progress=progress)
    with writing(data_dir):
        staging = Path(tempfile.mkdtemp(prefix=".senteval-", dir=data_dir))
    try:
        try:
            safe_extract(archive, staging / "archive")
            unpacked = next((p for p in (staging / "archive" / "downstream", staging / "archive" / "senteval")
                             if p.is_dir()), None)
            if unpacked is None:
                raise NlsupError(f"{archive}: has no downstream/ or senteval/ folder; not SentEval's archive")
            unpacked.rename(staging / "senteval")
            for task in STS_TASKS:
                load_sts_task(task, staging)
        except DiskProblem:
            raise  # the archive is fine: kept, and unpacked by the next try
        except NlsupError as err:
            archive.unlink(missing_ok=True)
            raise NlsupError(f"{err}; it was deleted, and the next try downloads it again") from None
        with writing(data_dir):
            os.replace(staging / "senteval", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
