"""One rule for progress bars: on when asked, off when asked or when ``TQDM_DISABLE=1``, otherwise shown only
on a terminal or in a notebook (so logs, CI and papermill stay quiet)."""

from __future__ import annotations

import os

from tqdm.auto import tqdm


def progress_bar(iterable=None, *, show: bool | None = None, **kwargs) -> tqdm:
    if show is None:
        disable = True if os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes") else None
    else:
        disable = not show
    return tqdm(iterable, disable=disable, **kwargs)
