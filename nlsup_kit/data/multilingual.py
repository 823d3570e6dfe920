"""STS beyond English: the machine-translated STS Benchmark, read with the same protocol as SentEval's STS-B.

``stsb_multi_mt`` (Philip May, github.com/PhilipMay/stsb-multi-mt) is STS-B's pairs translated with DeepL into
nine languages, beside the English original, with the human scores (0-5) unchanged: one ``stsb-<lang>-<split>.csv``
per language and split, comma-separated in Excel's dialect, no header, ``sentence1,sentence2,score``. Every
language has the same number of pairs per split (the dataset card: train 5,749, dev 1,500, test 1,379), which
is how a download is checked to be the file asked for (the release publishes no checksums). The Japanese file
is left out, as the dataset card does (its issue #1).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from nlsup_kit.data.senteval import StsPairs, normalise, read_text
from nlsup_kit.errors import NlsupError, at_line

STSB_MULTI_LANGUAGES = ("de", "en", "es", "fr", "it", "nl", "pl", "pt", "ru", "zh")
STSB_MULTI_ROWS = {"train": 5749, "dev": 1500, "test": 1379}
STSB_MULTI_DIR = Path("stsb-multi-mt")  # inside the data directory
MULTILINGUAL_TASKS: tuple[str, ...] = tuple(f"stsb-{language}" for language in STSB_MULTI_LANGUAGES)


def stsb_multi_name(language: str, split: str) -> str:
    """The release's file name (and the download's name): ``stsb-de-test``."""
    return f"stsb-{language}-{split}"


def task_language(task: str) -> str:
    """``stsb-de`` -> ``de``."""
    if task not in MULTILINGUAL_TASKS:
        raise NlsupError(f"unknown multilingual STS task {task!r}; choose from {', '.join(MULTILINGUAL_TASKS)}")
    return task.removeprefix("stsb-")


def tasks_for_language(language: str) -> list[str]:
    """The sets that score ``language`` (``--language de``)."""
    tasks = [task for task in MULTILINGUAL_TASKS if task_language(task) == language]
    if not tasks:
        raise NlsupError(f"no STS set in language {language!r}; the kit has {', '.join(STSB_MULTI_LANGUAGES)}")
    return tasks


def read_stsb_multi(path: Path, expected_rows: int | None = None) -> StsPairs:
    """One ``stsb-<lang>-<split>.csv``; sentences normalised as SentEval's (whitespace split and re-joined)."""
    task = path.name.removesuffix(".csv").rsplit("-", 1)[0]
    text = read_text(path, (f"run `nlsup download {task}`, or " if task in MULTILINGUAL_TASKS else "")
                     + f"point --data-dir at a folder holding {STSB_MULTI_DIR}/")
    pairs = StsPairs()
    reader = csv.reader(io.StringIO(text, newline=""), dialect="excel")
    try:
        for row in reader:
            line = reader.line_num
            if len(row) != 3:
                raise at_line(path, line, f"expected 3 comma-separated fields (sentence1,sentence2,score), found "
                                          f"{len(row)}")
            first, second, raw = row
            if not first.strip() or not second.strip():
                raise at_line(path, line, "empty sentence")
            try:
                score = float(raw)
            except ValueError:
                raise at_line(path, line, f"gold score {raw!r} is not a number") from None
            if not 0.0 <= score <= 5.0:
                raise at_line(path, line, f"gold score {score} is outside 0-5")
            pairs.add(normalise(first), normalise(second), score, path.stem)
    except csv.Error as err:
        raise at_line(path, reader.line_num, f"not comma-separated values ({err})") from None
    if expected_rows is not None and len(pairs) != expected_rows:
        raise NlsupError(f"{path}: {len(pairs):,} pairs, but stsb_multi_mt's {split_of(path)} split has "
                         f"{expected_rows:,} in every language: not the file asked for")
    return pairs


def split_of(path: Path) -> str:
    """``stsb-de-test.csv`` (or its ``.part``) -> ``test``."""
    return path.name.removesuffix(".part").removesuffix(".csv").rsplit("-", 1)[1]


def stsb_multi_problem(path: Path) -> str | None:
    """Why a downloaded ``stsb-<lang>-<split>.csv`` is not that file (for :func:`download.fetch`), or None."""
    try:
        read_stsb_multi(path, STSB_MULTI_ROWS[split_of(path)])
    except NlsupError as err:
        return f"rows that are not stsb_multi_mt's ({str(err).removeprefix(str(path)).lstrip(':').strip()})"
    return None


def load_multilingual_task(task: str, data_dir: str | Path, split: str = "test") -> StsPairs:
    if split not in ("dev", "test"):
        raise NlsupError(f"{task} is scored on its dev or test split (asked for {split!r})")
    path = Path(data_dir) / STSB_MULTI_DIR / f"{stsb_multi_name(task_language(task), split)}.csv"
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
