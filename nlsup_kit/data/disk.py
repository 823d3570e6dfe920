"""The disk under a folder the kit writes (the data folder, a run folder): every OSError of creating, writing or
renaming becomes one line that names the folder and what to do (a read-only or full disk, a folder without
permission), never a traceback."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nlsup_kit.errors import NlsupError

MB = 1 << 20
WHERE_TO = "point NLSUP_DATA (or --data-dir) at a folder on a disk you can write to"
PROBE_BYTES = MB  # what :func:`check_writable` writes: a disk with less free is full for any use here


def free_megabytes(folder: Path) -> float:
    existing = next((p for p in [folder, *folder.parents] if p.exists()), Path("/"))
    return shutil.disk_usage(existing).free / MB


class DiskProblem(NlsupError):
    """The disk, not the download, failed: what was downloaded is kept."""


def no_space(folder: Path, needed: int | None, remedy: str = WHERE_TO) -> DiskProblem:
    need = f": {needed / MB:,.1f} MB needed" if needed else ""
    return DiskProblem(f"no space left on {folder}{need}, {free_megabytes(folder):,.1f} MB free; free some space, "
                      f"or {remedy}")


def disk_problem(err: OSError, folder: Path, needed: int | None = None, remedy: str = WHERE_TO) -> DiskProblem:
    where = err.filename or folder
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return no_space(folder, needed, remedy)
    if err.errno == errno.EROFS:
        return DiskProblem(f"{where}: read-only file system; {remedy}")
    if err.errno in (errno.EACCES, errno.EPERM):
        return DiskProblem(f"{where}: permission denied; {remedy}")
    if err.errno in (errno.ENOTDIR, errno.EEXIST):
        return DiskProblem(f"{where}: exists and is not a folder; {remedy}")
    return DiskProblem(f"{where}: cannot write ({err.strerror or err}); {remedy}")


@contextmanager
def writing(folder: Path, needed: int | None = None, remedy: str = WHERE_TO) -> Iterator[None]:
    """Disk errors inside the block, as one line about ``folder`` (``needed``: bytes the block writes)."""
    try:
        yield
    except OSError as err:
        raise disk_problem(err, folder, needed, remedy) from None


def require_space(folder: Path, needed: int | None, remedy: str = WHERE_TO) -> None:
    """Fail before the transfer, not when the disk fills halfway (a download never silently fills a disk)."""
    if needed and free_megabytes(folder) * MB < needed:
        raise no_space(folder, needed, remedy)


def check_writable(folder: Path, remedy: str = WHERE_TO) -> None:
    """Create ``folder`` if needed and write, then delete, a probe of :data:`PROBE_BYTES`: a read-only disk, a
    file in the folder's place, a folder without permission or a full disk is one line now, before any work
    whose result would have nowhere to go (permission bits alone do not stop root; a real write does)."""
    folder = Path(folder)
    with writing(folder, PROBE_BYTES, remedy):
        if folder.exists() and not folder.is_dir():
            raise FileExistsError(errno.EEXIST, "not a folder", str(folder))
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".nlsup-probe-{os.getpid()}"
        try:
            with open(probe, "wb") as f:
                f.write(bytes(PROBE_BYTES))
                f.flush()
                os.fsync(f.fileno())
        finally:
            probe.unlink(missing_ok=True)
