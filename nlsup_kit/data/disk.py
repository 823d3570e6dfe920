"""The disk under the data folder: every OSError of creating, writing or renaming becomes one line that names
the folder and what to do (a read-only or full disk, a folder without permission), never a traceback."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nlsup_kit.errors import NlsupError

MB = 1 << 20
WHERE_TO = "point NLSUP_DATA (or --data-dir) at a folder on a disk you can write to"


def free_megabytes(folder: Path) -> float:
    existing = next((p for p in [folder, *folder.parents] if p.exists()), Path("/"))
    return shutil.disk_usage(existing).free / MB


class DiskProblem(NlsupError):
    """The disk, not the download, failed: what was downloaded is kept."""


def no_space(folder: Path, needed: int | None) -> DiskProblem:
    need = f": {needed / MB:,.1f} MB needed" if needed else ""
    return DiskProblem(f"no space left on {folder}{need}, {free_megabytes(folder):,.1f} MB free; free some space, "
                      f"or {WHERE_TO}")


def disk_problem(err: OSError, folder: Path, needed: int | None = None) -> DiskProblem:
    where = err.filename or folder
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return no_space(folder, needed)
    if err.errno == errno.EROFS:
        return DiskProblem(f"{where}: read-only file system; {WHERE_TO}")
    if err.errno in (errno.EACCES, errno.EPERM):
        return DiskProblem(f"{where}: permission denied; {WHERE_TO}")
    return DiskProblem(f"{where}: cannot write ({err.strerror or err}); {WHERE_TO}")


@contextmanager
def writing(folder: Path, needed: int | None = None) -> Iterator[None]:
    """Disk errors inside the block, as one line about ``folder`` (``needed``: bytes the block writes)."""
    try:
        yield
    except OSError as err:
        raise disk_problem(err, folder, needed) from None


def require_space(folder: Path, needed: int | None) -> None:
    """Fail before the transfer, not when the disk fills halfway (a download never silently fills a disk)."""
    if needed and free_megabytes(folder) * MB < needed:
        raise no_space(folder, needed)
