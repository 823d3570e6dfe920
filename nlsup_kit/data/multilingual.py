"""STS beyond English, read with the same protocol as SentEval's STS-B: two public sets.

``stsb-<lang>``: stsb_multi_mt (Philip May, github.com/PhilipMay/stsb-multi-mt), STS-B's pairs translated with
DeepL into nine languages, beside the English original, with the human scores (0-5) unchanged. One
``stsb-<lang>-<split>.csv`` per language and split, comma-separated in Excel's dialect, no header,
``sentence1,sentence2,score``. Every language has the same number of pairs per split (the dataset card: train
5,749, dev 1,500, test 1,379), which is how a download is checked to be the file asked for (the release
publishes no checksums). The Japanese file is left out, as the dataset card does (its issue #1).

``sts17-<a>-<b>``: SemEval-2017 Task 1 (Cer et al. 2017, arXiv 1708.00055), monolingual and cross-lingual
tracks of 250 pairs each, as sentence-transformers ships it with the English-German, French-, Italian- and
Dutch-English pairs Reimers & Gurevych added (arXiv 2004.09813): ``STS2017-extended.zip``, holding
``STS2017-extended/STS.<a>-<b>.txt``, tab-separated ``sentence1, sentence2, score``. Sentence 1 is in language
``a``, sentence 2 in ``b``.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

from nlsup_kit.data.senteval import STS_TASKS, StsPairs, load_sts_task, normalise, read_text
from nlsup_kit.errors import NlsupError, at_line

STSB_MULTI_LANGUAGES = ("de", "en", "es", "fr", "it", "nl", "pl", "pt", "ru", "zh")
STSB_MULTI_ROWS = {"train": 5749, "dev": 1500, "test": 1379}
STSB_MULTI_DIR = Path("stsb-multi-mt")  # inside the data directory
STS17_PAIRS = ("ar-ar", "en-ar", "en-de", "en-en", "en-tr", "es-en", "es-es", "fr-en", "it-en", "nl-en")
STS17_ROWS = 250  # every track of SemEval-2017 Task 1, and each pair added to it
STS17_ADDED = ("en-de", "fr-en", "it-en", "nl-en")  # Reimers & Gurevych's, arXiv 2004.09813; the rest SemEval-2017's
STS17_DIR = Path("sts17")  # the archive's STS.<a>-<b>.txt files, inside the data directory
STS17_MEMBER = "STS2017-extended/STS.{pair}.txt"
MULTILINGUAL_TASKS: tuple[str, ...] = (*(f"stsb-{language}" for language in STSB_MULTI_LANGUAGES),
                                       *(f"sts17-{pair}" for pair in STS17_PAIRS))


def stsb_multi_name(language: str, split: str) -> str:
    """The release's file name (and the download's name): ``stsb-de-test``."""
    return f"stsb-{language}-{split}"


def task_languages(task: str) -> tuple[str, ...]:
    """``stsb-de`` -> ``("de",)``; ``sts17-en-de`` -> ``("en", "de")``."""
    if task not in MULTILINGUAL_TASKS:
        raise NlsupError(f"unknown multilingual STS task {task!r}; choose from {', '.join(MULTILINGUAL_TASKS)}")
    return tuple(task.split("-")[1:])


def dev_task(language: str) -> str:
    """The STS-B whose dev split picks a run's checkpoint: SentEval's for English (the paper's), else the
    language's stsb_multi_mt."""
    return "STSBenchmark" if language == "en" else f"stsb-{language}"


def task_need(task: str) -> str:
    """The download (:func:`nlsup_kit.data.sources.ensure_data`) that holds ``task``: senteval for the English
    seven, ``stsb-<lang>`` or ``sts17`` for the others."""
    if task not in MULTILINGUAL_TASKS:
        return "senteval"
    return "sts17" if task.startswith("sts17-") else task


def tasks_for_language(language: str) -> list[str]:
    """The sets that score ``language`` (``--language de``): its STS-B and every STS17 pair it is in."""
    tasks = [task for task in MULTILINGUAL_TASKS if language in task_languages(task)]
    if not tasks:
        languages = sorted({lang for task in MULTILINGUAL_TASKS for lang in task_languages(task)})
        raise NlsupError(f"no STS set in language {language!r}; the kit has {', '.join(languages)}")
    return tasks


def describe_task(task: str, split: str = "test") -> str:
    """Which set and split a multilingual task's number is."""
    languages = task_languages(task)
    if task.startswith("stsb-"):
        return f"stsb_multi_mt (STS-B machine-translated by DeepL into {languages[0]!r}), {split} split"
    kind = "monolingual" if languages[0] == languages[1] else "cross-lingual"
    pair = "-".join(languages)
    origin = ("a pair set Reimers & Gurevych added to it (arXiv 2004.09813)" if pair in STS17_ADDED
              else "SemEval-2017's test (arXiv 1708.00055)")
    return f"STS17, {kind} ({languages[0]} sentence 1, {languages[1]} sentence 2): {origin}"


def _scored_row(path: Path, line: int, row: list[str], separator: str) -> tuple[str, str, float]:
    if len(row) != 3:
        raise at_line(path, line, f"expected 3 {separator} fields (sentence1, sentence2, score), found {len(row)}")
    first, second, raw = row
    if not first.strip() or not second.strip():
        raise at_line(path, line, "empty sentence")
    try:
        score = float(raw)
    except ValueError:
        raise at_line(path, line, f"gold score {raw!r} is not a number") from None
    if not 0.0 <= score <= 5.0:
        raise at_line(path, line, f"gold score {score} is outside 0-5")
    return normalise(first), normalise(second), score


def _check_count(path: Path, pairs: StsPairs, expected: int | None, what: str) -> StsPairs:
    if expected is not None and len(pairs) != expected:
        raise NlsupError(f"{path}: {len(pairs):,} pairs, but {what} has {expected:,}: not the file asked for")
    return pairs


def _hint(path: Path) -> str:
    name = path.name.removesuffix(".part").removesuffix(".csv")
    task = name.rsplit("-", 1)[0]
    return (f"run `nlsup download {task}`, or " if task in MULTILINGUAL_TASKS else "") + \
        f"point --data-dir at a folder holding {STSB_MULTI_DIR}/"


def read_stsb_multi(path: Path, expected_rows: int | None = None) -> StsPairs:
    """One ``stsb-<lang>-<split>.csv``; sentences normalised as SentEval's (whitespace split and re-joined)."""
    text = read_text(path, _hint(path))
    pairs = StsPairs()
    reader = csv.reader(io.StringIO(text, newline=""), dialect="excel")
    try:
        for row in reader:
            pairs.add(*_scored_row(path, reader.line_num, row, "comma-separated"), path.stem)
    except csv.Error as err:
        raise at_line(path, reader.line_num, f"not comma-separated values ({err})") from None
    return _check_count(path, pairs, expected_rows, f"stsb_multi_mt's {split_of(path)} split (in every language)")


def read_sts17(path: Path, expected_rows: int | None = None) -> StsPairs:
    """One ``STS.<a>-<b>.txt`` of STS2017-extended: ``sentence1<TAB>sentence2<TAB>score`` per line."""
    text = read_text(path, "run `nlsup download sts17`, or point --data-dir at a folder holding "
                           f"{STS17_DIR}/")
    pairs = StsPairs()
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            pairs.add(*_scored_row(path, number, line.rstrip("\r\n").split("\t"), "tab-separated"), path.stem)
    return _check_count(path, pairs, expected_rows, "every STS17 track")


def split_of(path: Path) -> str:
    """``stsb-de-test.csv`` (or its ``.part``) -> ``test``."""
    return path.name.removesuffix(".part").removesuffix(".csv").rsplit("-", 1)[1]


def _problem(read, path: Path, *args) -> str | None:
    """Why a download is not the release's file (for :func:`download.fetch`), or None."""
    try:
        read(path, *args)
    except NlsupError as err:
        return str(err).removeprefix(str(path)).lstrip(":").strip()
    return None


def stsb_multi_problem(path: Path) -> str | None:
    problem = _problem(read_stsb_multi, path, STSB_MULTI_ROWS[split_of(path)])
    return None if problem is None else f"rows that are not stsb_multi_mt's ({problem})"


def sts17_archive_problem(path: Path) -> str | None:
    """Why a downloaded ``STS2017-extended.zip`` is not that archive, or None (every track present)."""
    if not zipfile.is_zipfile(path):
        return "a file that is not a zip archive"
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    missing = [pair for pair in STS17_PAIRS if STS17_MEMBER.format(pair=pair) not in names]
    return f"an archive without {STS17_MEMBER.format(pair=missing[0])}" if missing else None


def load_task(task: str, data_dir: str | Path, split: str = "test") -> StsPairs:
    """Any STS task by name: SentEval's English ones (:data:`STS_TASKS`) or the multilingual ones."""
    if task in MULTILINGUAL_TASKS:
        return load_multilingual_task(task, data_dir, split)
    if task in STS_TASKS:
        return load_sts_task(task, data_dir, split)
    raise NlsupError(f"unknown STS task {task!r}; choose from {', '.join((*STS_TASKS, *MULTILINGUAL_TASKS))}")


def load_multilingual_task(task: str, data_dir: str | Path, split: str = "test") -> StsPairs:
    languages = task_languages(task)
    if task.startswith("sts17-"):
        if split != "test":
            raise NlsupError(f"{task} has only a test split (asked for {split!r})")
        return read_sts17(Path(data_dir) / STS17_DIR / f"STS.{'-'.join(languages)}.txt", STS17_ROWS)
    if split not in ("dev", "test"):
        raise NlsupError(f"{task} is scored on its dev or test split (asked for {split!r})")
    path = Path(data_dir) / STSB_MULTI_DIR / f"{stsb_multi_name(languages[0], split)}.csv"
    return read_stsb_multi(path, STSB_MULTI_ROWS[split])


def download_stsb_multi(language: str, data_dir: Path, progress: bool | None = None) -> Path:
    """``stsb-<language>`` dev and test into ``data_dir/stsb-multi-mt`` (test last: its presence means both
    are there), each checked to be stsb_multi_mt's file before it is kept."""
    from nlsup_kit.data.download import fetch, source_url

    folder = Path(data_dir) / STSB_MULTI_DIR
    for split in ("dev", "test"):
        name = stsb_multi_name(language, split)
        dest = folder / f"{name}.csv"
        if not dest.is_file():
            fetch(source_url(name), dest, check=stsb_multi_problem, progress=progress)
    return folder


def download_sts17(data_dir: Path, progress: bool | None = None) -> Path:
    """``STS2017-extended.zip`` into ``data_dir/downloads``, then its ten tracks, each read and counted, into
    ``data_dir/sts17`` in one rename. Only the named members are read, so no path in the archive can escape."""
    from nlsup_kit.data.disk import writing
    from nlsup_kit.data.download import fetch, source_url

    target = Path(data_dir) / STS17_DIR
    if target.is_dir():
        return target
    archive = fetch(source_url("sts17"), Path(data_dir) / "downloads" / "STS2017-extended.zip",
                    check=sts17_archive_problem, progress=progress)
    with writing(data_dir):
        staging = Path(tempfile.mkdtemp(prefix=".sts17-", dir=data_dir))
    try:
        try:
            with zipfile.ZipFile(archive) as members, writing(staging):
                for pair in STS17_PAIRS:
                    (staging / f"STS.{pair}.txt").write_bytes(members.read(STS17_MEMBER.format(pair=pair)))
            for pair in STS17_PAIRS:
                read_sts17(staging / f"STS.{pair}.txt", STS17_ROWS)
        except (NlsupError, zipfile.BadZipFile, zlib.error, EOFError, KeyError) as err:
            archive.unlink(missing_ok=True)
            raise NlsupError(f"{archive} is not the STS17 release ({err}); it was deleted, and the next try "
                             "downloads it again") from None
        with writing(data_dir):
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
