"""Where the kit looks for data, and for the folders it ships.

Data: ``--data-dir`` / the ``data_dir`` argument, else ``NLSUP_DATA``, else (in a checkout of the repository
only) ``../shared/data`` beside it, else the per-user cache folder ``~/.cache/nlsup-kit/data``, which
:func:`nlsup_kit.data.sources.ensure_data` fills from the internet on first use.

Shipped folders (the notebooks, the spoken-word clips) sit inside the installed package; in a checkout
(an editable install) they are read from the repository, where they are kept and regenerated.
"""

from __future__ import annotations

import os
from pathlib import Path

from nlsup_kit.errors import NlsupError

PACKAGE_DIR = Path(__file__).resolve().parents[1]
# A checkout of the repository (editable install), not an installed wheel: the package's parent holds the
# project file. An installed kit has site-packages there instead.
CHECKOUT_DIR = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None

# Where each text corpus lives in the data directory (the downloader writes there, the readers read there).
WIKI_SMALL = Path("wiki") / "wiki_sentences.txt"
WIKI1M = Path("wiki") / "wiki1m_for_simcse.txt"
NLI_CSV = Path("nli") / "nli_for_simcse.csv"


def cache_data_dir() -> Path:
    """The per-user download folder (read at call time, so a changed ``HOME`` is honoured)."""
    return Path.home() / ".cache" / "nlsup-kit" / "data"


def checkout_data_dir() -> Path | None:
    """``../shared/data`` beside a checkout: the development machines' stand-in for the internet."""
    if CHECKOUT_DIR is None:
        return None
    shared = CHECKOUT_DIR.parent / "shared" / "data"
    return shared if shared.is_dir() else None


def chosen_data_dir(data_dir: str | os.PathLike | None = None) -> tuple[Path, str] | None:
    """The folder the user named (argument, else ``NLSUP_DATA``) and where the name came from; None if neither."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), "--data-dir"
    if os.environ.get("NLSUP_DATA"):
        return Path(os.environ["NLSUP_DATA"]).expanduser(), "NLSUP_DATA"
    return None


def require_dir(folder: Path, source: str) -> Path:
    """A folder the user named must exist: a typo should not silently become a fresh download elsewhere."""
    if not folder.is_dir():
        raise NlsupError(
            f"data directory {folder} ({source}) does not exist: point --data-dir or NLSUP_DATA at it, "
            f"or leave both unset to use {cache_data_dir()}, filled on first use"
        )
    return folder


def download_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Where ``nlsup download`` writes: the folder the user named (created if need be), else the cache folder."""
    chosen = chosen_data_dir(data_dir)
    from nlsup_kit.data.disk import writing

    folder = chosen[0] if chosen else cache_data_dir()
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def shipped_dir(relative: str) -> Path:
    """A folder that ships with the kit, e.g. ``notebooks`` or ``data/spoken_words``: inside the installed
    package, or at the same place in the repository of a checkout."""
    roots = [PACKAGE_DIR] + ([CHECKOUT_DIR] if CHECKOUT_DIR else [])
    for root in roots:
        if (root / relative).is_dir():
            return root / relative
    raise NlsupError(f"{PACKAGE_DIR / relative}: missing from the installed kit; reinstall nlsup-kit")


def require_file(path: Path, hint: str) -> Path:
    """Fail with one line that says which file is missing and how to get it."""
    if not path.is_file():
        raise NlsupError(f"{path}: file not found ({hint})")
    return path
