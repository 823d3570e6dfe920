"""Data on first use: one call finds what a notebook or a recipe needs, or downloads it once.

``ensure_data(["senteval", "wiki"])`` returns the data directory to read from:
the folder the user named (``data_dir`` / ``NLSUP_DATA``; what it lacks is downloaded into it), else a
checkout's ``../shared/data`` when it holds everything, else the cache folder ``~/.cache/nlsup-kit/data``,
filled from SimCSE's dataset release (the multilingual STS-B from its own repository; either from
``$NLSUP_MIRROR`` when set) with a progress bar, through ``.part`` files
that a later call resumes, checked before they are moved into place. The spoken-word clips and the digits
ship with the kit and scikit-learn, so for them the call only checks that they are there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from nlsup_kit.data.senteval import download_senteval
from nlsup_kit.data.download import (MIRROR_VARIABLE, download_text, fetch_head,
                                     source_url, trusted)
from nlsup_kit.data.disk import writing
from nlsup_kit.data.leipzig import PREFIX as LEIPZIG_PREFIX, corpus_file, corpus_size, download_leipzig
from nlsup_kit.data.multilingual import (STS17_DIR, STSB_MULTI_DIR, STSB_MULTI_LANGUAGES, dev_task, download_sts17,
                                         download_stsb_multi, stsb_multi_name, task_need)
from nlsup_kit.data.paths import (NLI_CSV, WIKI1M, WIKI_SMALL, cache_data_dir, checkout_data_dir, chosen_data_dir,
                                  require_dir, shipped_dir)
from nlsup_kit.errors import NlsupError
from nlsup_kit.net import unreachable_reason

WIKI_SLICE_LINES = 20_000  # the head of wiki1m that QUICK runs train on (the paper: all 1,000,000 lines)


@dataclass(frozen=True)
class Download:
    """A piece of data that lives in the data directory."""

    relative_path: Path  # what must exist there
    source: str  # the release file it comes from (download.release_file): its address is checked first
    fetch: Callable[[Path, bool | None], object]
    plain_file: bool = False  # a text file kept as it arrived: in the cache, present only if the kit's checks put it there

    def present(self, folder: Path) -> bool:
        path = folder / self.relative_path
        return trusted(path) if self.plain_file else path.exists()


DOWNLOADS = {
    "senteval": Download(Path("senteval"), "senteval",
                         lambda folder, progress: download_senteval(folder, progress=progress)),
    "wiki": Download(WIKI_SMALL, "wiki1m", lambda folder, progress: fetch_head(
        source_url("wiki1m"), folder / WIKI_SMALL, WIKI_SLICE_LINES, progress), plain_file=True),
    "wiki1m": Download(WIKI1M, "wiki1m", lambda folder, progress: download_text("wiki1m", folder, progress=progress),
                       plain_file=True),
    "nli": Download(NLI_CSV, "nli", lambda folder, progress: download_text("nli", folder, progress=progress),
                    plain_file=True),
    # stsb-de ...: the multilingual STS-B's dev and test of one language; sts17: every STS17 track
    **{f"stsb-{language}": Download(STSB_MULTI_DIR / f"{stsb_multi_name(language, 'test')}.csv",
                                    stsb_multi_name(language, "test"),
                                    lambda folder, progress, language=language: download_stsb_multi(
                                        language, folder, progress))
       for language in STSB_MULTI_LANGUAGES},
    "sts17": Download(STS17_DIR, "sts17", lambda folder, progress: download_sts17(folder, progress)),
}


def spoken_words_present() -> None:
    shipped_dir("data/spoken_words")


def digits_present() -> None:
    from sklearn.datasets import load_digits

    load_digits()  # bundled with scikit-learn: reads a file inside the package, no network


SHIPPED = {"spoken-words": spoken_words_present, "digits": digits_present}
# A recipe's text_data names the download it reads (sick-nli is SICK's train split, inside SentEval).
TEXT_DATA_NEEDS = {"wiki": "wiki", "wiki1m": "wiki1m", "nli": "nli", "sick-nli": "senteval"}


def ensure_data(needs: Iterable[str] = ("senteval",), data_dir: str | os.PathLike | None = None, *,
                progress: bool | None = None) -> Path:
    """The data directory that holds every item of ``needs`` (senteval, wiki, wiki1m, nli, spoken-words,
    digits), downloading what is missing; offline, one line that says what to do, in about a second."""
    needs = list(dict.fromkeys(needs))
    downloads = {**DOWNLOADS, **{n: leipzig_download(n) for n in needs if n.startswith(LEIPZIG_PREFIX)}}
    unknown = [n for n in needs if n not in downloads and n not in SHIPPED]
    if unknown:
        raise NlsupError(f"unknown data {unknown[0]!r}; choose from {', '.join([*DOWNLOADS, *SHIPPED])} or "
                         f"{LEIPZIG_PREFIX}<corpus>")
    for name in needs:
        if name in SHIPPED:
            SHIPPED[name]()
    wanted = [downloads[n] for n in needs if n in downloads]
    chosen = chosen_data_dir(data_dir)
    if chosen is not None:
        folder = require_dir(*chosen)
    else:
        shared = checkout_data_dir()
        if shared is not None and all(item.present(shared) for item in wanted):
            return shared
        folder = cache_data_dir()
    missing = [name for name in needs if name in downloads and not downloads[name].present(folder)]
    if missing:
        url = source_url(downloads[missing[0]].source)
        reason = unreachable_reason(url)
        if reason is not None:
            raise NlsupError(
                f"{', '.join(missing)} not in {folder} and {url} cannot be reached ({reason}): connect and run "
                f"this again, set {MIRROR_VARIABLE} to a folder that serves the same file names, or point NLSUP_DATA "
                f"at a folder that has it (`nlsup download {missing[0]} --data-dir DIR`)")
        with writing(folder):
            folder.mkdir(parents=True, exist_ok=True)
        for name in missing:
            downloads[name].fetch(folder, progress)
    return folder


def leipzig_download(name: str) -> Download:
    """``leipzig:<corpus>``: a Leipzig corpus's sentences (:mod:`nlsup_kit.data.leipzig`)."""
    corpus = name.removeprefix(LEIPZIG_PREFIX)
    corpus_size(corpus)  # a name that is not a corpus name fails here, before any download
    return Download(corpus_file(Path(), corpus), name,
                    lambda folder, progress: download_leipzig(corpus, folder, progress))


def text_data_needs(text_data: str, text_language: str = "en") -> list[str]:
    """What a run reads: the STS-B whose dev split selects the checkpoint (SentEval's for English, else the
    language's stsb_multi_mt), and what ``text_data`` names."""
    dev = task_need(dev_task(text_language))
    if text_data.startswith(LEIPZIG_PREFIX):
        return [dev, text_data]
    return list(dict.fromkeys([dev] + ([TEXT_DATA_NEEDS[text_data]] if text_data in TEXT_DATA_NEEDS else [])))
