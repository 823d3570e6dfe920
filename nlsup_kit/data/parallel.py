"""Parallel text for looking at other languages offline: the preamble of the Universal Declaration of Human
Rights (UN General Assembly resolution 217 A, 1948) in seven languages, shipped inside the kit
(``data/udhr_preamble``). Each file holds the same eight units in the same order: the seven recitals
("Whereas ...") and the proclamation, so line *i* of one language translates line *i* of every other.

The texts are the translations collected by the Unicode UDHR project (unicode.org/udhr), taken
from the rendering in github.com/lancejpollard/text (``content/universal-declaration-of-rights/<code>.md``,
commit bf6f8555), each unit kept exactly as there; the proclamation's lines are joined with one space (none in
Chinese). The United Nations lets the Declaration be freely reproduced. Chinese is the Traditional-script
version (``cmn.md``)."""

from __future__ import annotations

from pathlib import Path

from nlsup_kit.data.paths import shipped_dir
from nlsup_kit.errors import NlsupError

UDHR_LANGUAGES = ("en", "de", "fr", "es", "ru", "tr", "zh")
UDHR_UNITS = 8  # seven recitals and the proclamation


def udhr_dir() -> Path:
    return shipped_dir("data/udhr_preamble")


def read_parallel_file(path: Path, units: int = UDHR_UNITS) -> list[str]:
    """One language's units, one a line; a missing, short, long or blank line fails naming the file and line."""
    if not path.is_file():
        raise NlsupError(f"{path}: file not found (it ships with the kit; reinstall nlsup-kit)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise NlsupError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise NlsupError(f"{path}:{number}: empty line; each line is one unit of the text")
    if len(lines) != units:
        raise NlsupError(f"{path}:{min(len(lines), units) + 1}: {len(lines)} lines, expected {units} "
                         f"(one per unit, in the same order in every language)")
    return lines


def udhr_preamble(languages: tuple[str, ...] = UDHR_LANGUAGES, folder: Path | None = None) -> dict[str, list[str]]:
    """``{language: [eight units]}``, aligned line by line across languages."""
    unknown = [code for code in languages if code not in UDHR_LANGUAGES]
    if unknown:
        raise NlsupError(f"no UDHR preamble for {unknown[0]!r}; the kit ships {', '.join(UDHR_LANGUAGES)}")
    folder = folder or udhr_dir()
    return {code: read_parallel_file(folder / f"{code}.txt") for code in languages}
