"""Where the kit looks for data: ``--data-dir``, else ``NLSUP_DATA``, else a per-user cache folder."""

from __future__ import annotations

import os
from pathlib import Path

from nlsup_kit.errors import NlsupError

DEFAULT_DATA_DIR = Path.home() / ".cache" / "nlsup-kit" / "data"
REPO_DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None = None, *, must_exist: bool = True) -> Path:
    """The data directory the user asked for, checked to exist when we are about to read from it."""
    if data_dir is not None:
        chosen, source = Path(data_dir), "--data-dir"
    elif os.environ.get("NLSUP_DATA"):
        chosen, source = Path(os.environ["NLSUP_DATA"]), "NLSUP_DATA"
    else:
        chosen, source = DEFAULT_DATA_DIR, "the default data directory"
    chosen = chosen.expanduser()
    if must_exist and not chosen.is_dir():
        raise NlsupError(
            f"data directory {chosen} ({source}) does not exist: point --data-dir or NLSUP_DATA at it, "
            f"or run `nlsup download senteval` to fetch the evaluation data"
        )
    return chosen


def require_file(path: Path, hint: str) -> Path:
    """Fail with one line that says which file is missing and how to get it."""
    if not path.is_file():
        raise NlsupError(f"{path}: file not found ({hint})")
    return path
