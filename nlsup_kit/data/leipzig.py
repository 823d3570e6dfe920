"""Unlabelled sentences in other languages: the Leipzig Corpora Collection (Goldhahn, Eckart & Quasthoff, LREC
2012), a recipe's ``text_data="leipzig:<corpus>"``.

A corpus is ``<corpus>.tar.gz`` at downloads.wortschatz-leipzig.de/corpora, named
``<language>_<source>_<year>_<size>``: ``deu_wikipedia_2021_100K`` is 100,000 sentences of the German Wikipedia
of 2021 (ISO 639-3 language codes; sizes 10K, 30K, 100K, 300K, 1M; the collection's download page lists what
exists). Its ``<corpus>/<corpus>-sentences.txt`` holds one ``<id><TAB><sentence>`` line per sentence. The
collection publishes no checksums, so a download is kept only when that member is there, every line is an id and
a sentence, and it holds the number of sentences its name says. The kit keeps the sentences alone, one a line
(``leipzig/<corpus>.txt`` in the data directory, which is what SimCSE's trainer reads), in a fixed random order
(:data:`SHUFFLE_SEED`). The corpora come with the collection's terms of use (wortschatz.uni-leipzig.de).
"""

from __future__ import annotations

import os
import random
import re
import tarfile
from pathlib import Path

from nlsup_kit.errors import NlsupError, at_line

PREFIX = "leipzig:"
# The collection lists a corpus's sentences in alphabetical order, so its first N would all begin alike: the kit
# keeps them in one fixed random order (this seed), and a recipe's max_text_examples head is then a sample.
SHUFFLE_SEED = 0
LEIPZIG_DIR = Path("leipzig")  # inside the data directory
_NAME = re.compile(r"[a-z]{3}(?:-[a-z]{2})?_[a-z0-9-]+_\d{4}_(\d+)([KM])")


def corpus_size(corpus: str) -> int:
    """The number of sentences a corpus name promises: ``deu_wikipedia_2021_100K`` -> 100,000."""
    match = _NAME.fullmatch(corpus)
    if match is None:
        raise NlsupError(f"text_data={PREFIX}{corpus}: not a Leipzig corpus name (language_source_year_size, e.g. "
                         f"{PREFIX}deu_wikipedia_2021_100K)")
    return int(match.group(1)) * (1_000 if match.group(2) == "K" else 1_000_000)


def corpus_file(data_dir: Path, corpus: str) -> Path:
    return Path(data_dir) / LEIPZIG_DIR / f"{corpus}.txt"


def sentences_member(corpus: str) -> str:
    return f"{corpus}/{corpus}-sentences.txt"


def archive_problem(corpus: str):
    """A check for :func:`download.fetch`: why a downloaded file is not ``<corpus>.tar.gz``, or None."""
    def problem(path: Path) -> str | None:
        try:
            with tarfile.open(path, "r:gz") as archive:
                names = archive.getnames()
        except (tarfile.TarError, EOFError, OSError) as err:
            return f"a file that is not a gzipped tar archive ({err})"
        return None if sentences_member(corpus) in names else f"an archive without {sentences_member(corpus)}"
    return problem


def download_leipzig(corpus: str, data_dir: Path, progress: bool | None = None) -> Path:
    """``<corpus>.tar.gz`` into ``data_dir/downloads``, then its sentences, checked line by line and counted,
    into ``data_dir/leipzig/<corpus>.txt`` (written to ``.part`` and renamed: whole or absent)."""
    from nlsup_kit.data.content import text_corpus_problem
    from nlsup_kit.data.disk import writing
    from nlsup_kit.data.download import fetch, source_url

    dest = corpus_file(data_dir, corpus)
    if dest.is_file():
        return dest
    expected = corpus_size(corpus)
    archive = fetch(source_url(f"{PREFIX}{corpus}"), Path(data_dir) / "downloads" / f"{corpus}.tar.gz",
                    check=archive_problem(corpus), progress=progress)
    member = f"{archive}:{sentences_member(corpus)}"
    part = dest.with_name(dest.name + ".part")
    with writing(dest.parent):
        dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        sentences = []
        with tarfile.open(archive, "r:gz") as tar:
            for number, raw in enumerate(tar.extractfile(sentences_member(corpus)), start=1):
                try:
                    text = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    raise at_line(member, number, "not valid UTF-8 text") from None
                identifier, tab, sentence = text.partition("\t")
                if not tab or not identifier.strip().isdigit() or not sentence.strip():
                    raise at_line(member, number, "expected <id><TAB><sentence>")
                sentences.append(sentence.strip())
        if len(sentences) != expected:
            raise NlsupError(f"{member}: {len(sentences):,} sentences, but {corpus} has {expected:,}: not the "
                             "corpus asked for")
        random.Random(SHUFFLE_SEED).shuffle(sentences)
        with writing(dest.parent), open(part, "w", encoding="utf-8") as out:
            out.writelines(sentence + "\n" for sentence in sentences)
        problem = text_corpus_problem(part)
        if problem is not None:
            raise NlsupError(f"{member}: {problem}")
    except (NlsupError, tarfile.TarError, EOFError) as err:
        part.unlink(missing_ok=True)
        archive.unlink(missing_ok=True)
        raise NlsupError(f"{err}; the archive was deleted, and the next try downloads it again") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    with writing(dest.parent):
        os.replace(part, dest)
    return dest
