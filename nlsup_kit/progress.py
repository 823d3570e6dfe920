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


def map_on_all_cores(function, items: list, desc: str, unit: str, show: bool | None = None) -> list:
    """``function`` of every item, in order, on a thread per core (for work that releases the GIL: decoding,
    torch's kernels), with a progress bar."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(progress_bar(pool.map(function, items), total=len(items), desc=desc, unit=unit, show=show))


def in_notebook() -> bool:
    """True inside a Jupyter kernel, where stderr is no TTY but a widget bar is welcome."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return type(get_ipython()).__name__ == "ZMQInteractiveShell"
