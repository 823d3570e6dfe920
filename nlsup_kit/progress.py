"""One rule for progress bars: on when asked, off when asked or when ``TQDM_DISABLE=1`` (the demo sets it for
papermill), otherwise shown in a notebook (as a widget) or on a terminal, and quiet in logs and CI."""

from __future__ import annotations

import os

from tqdm.auto import tqdm


def progress_bar(iterable=None, *, show: bool | None = None, **kwargs) -> tqdm:
    if show is None:
        if os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes"):
            disable = True
        else:
            disable = False if in_notebook() else None  # None: tqdm shows it only on a terminal
    else:
        disable = not show
    return tqdm(iterable, disable=disable, **kwargs)


def in_notebook() -> bool:
    """True inside a Jupyter kernel, where stderr is no TTY but a widget bar is welcome."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return type(get_ipython()).__name__ == "ZMQInteractiveShell"
