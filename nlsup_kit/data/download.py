"""Downloads that cannot leave a half-written file behind, and archive extraction that cannot escape.

A download streams to ``<name>.part`` (resuming it with an HTTP Range request when the server allows),
checks the size and, where known, the sha256, then renames into place. Tar archives are unpacked with
Python's ``data`` filter, which refuses absolute paths, ``..`` and links that point outside the target.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path


from nlsup_kit.errors import NlsupError
from nlsup_kit.progress import progress_bar

# SimCSE's dataset release; NLSUP_MIRROR replaces the base, so a course can serve the same file names itself.
OFFICIAL_BASE = "https://huggingface.co/datasets/princeton-nlp/datasets-for-simcse/resolve/main"
MIRROR_VARIABLE = "NLSUP_MIRROR"
FILE_NAMES = {"senteval": "senteval.tar", "wiki1m": "wiki1m_for_simcse.txt", "nli": "nli_for_simcse.csv"}
CHUNK = 1 << 20


def source_url(what: str) -> str:
    """Where ``what`` (senteval, wiki1m, nli) is downloaded from: ``$NLSUP_MIRROR/<file>`` or the official copy."""
    base = os.environ.get(MIRROR_VARIABLE) or OFFICIAL_BASE
    return f"{base.rstrip('/')}/{FILE_NAMES[what]}"


def fetch(url: str, dest: Path, sha256: str | None = None, progress: bool | None = None, timeout: float = 60) -> Path:
    """Download ``url`` to ``dest`` atomically; resumes a previous ``.part`` file."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if offset and response.status != 206:  # server ignored the range: start over
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            with open(part, "ab" if offset else "wb") as out, progress_bar(
                total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name, show=progress
            ) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the .part file is already complete
            total = offset
        else:
            raise NlsupError(f"download of {url} failed: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise NlsupError(f"download of {url} failed ({reason}); offline? the partial file {part} "
                         "is kept and the next try resumes it") from None
    size = part.stat().st_size
    if total is not None and size != total:
        raise NlsupError(f"download of {url} is incomplete ({size} of {total} bytes); run the same command "
                         "again to resume")
    if sha256 is not None:
        digest = file_sha256(part)
        if digest != sha256:
            part.unlink()
            raise NlsupError(f"download of {url} has sha256 {digest}, expected {sha256}; the file was deleted")
    os.replace(part, dest)
    return dest


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def safe_extract(archive: Path, target: Path) -> None:
    """Unpack a tar archive; any member that would land outside ``target`` aborts the whole extraction."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    except tarfile.FilterError as err:
        raise NlsupError(f"{archive}: refused to extract, unsafe member ({err})") from None
    except (tarfile.TarError, EOFError) as err:
        raise NlsupError(f"{archive}: not a complete tar archive ({err}); delete it and download again") from None


def download_senteval(data_dir: Path, url: str | None = None, progress: bool | None = None) -> Path:
    """SimCSE's ``senteval.tar`` unpacked to ``data_dir/senteval`` (its ``downstream/`` folder), then checked
    by reading every STS task; an existing, readable copy is left alone."""
    from nlsup_kit.data.senteval import STS_TASKS, load_sts_task

    target = data_dir / "senteval"
    if target.is_dir():
        return target
    archive = fetch(url or source_url("senteval"), data_dir / "downloads" / "senteval.tar", progress=progress)
    staging = Path(tempfile.mkdtemp(prefix=".senteval-", dir=data_dir))
    try:
        safe_extract(archive, staging / "archive")
        unpacked = next((p for p in (staging / "archive" / "downstream", staging / "archive" / "senteval")
                         if p.is_dir()), None)
        if unpacked is None:
            raise NlsupError(f"{archive}: has no downstream/ or senteval/ folder; not SentEval's archive")
        unpacked.rename(staging / "senteval")
        for task in STS_TASKS:
            load_sts_task(task, staging)
        os.replace(staging / "senteval", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def download_text(what: str, data_dir: Path, url: str | None = None, max_lines: int | None = None,
                  progress: bool | None = None) -> Path:
    """wiki1m or the NLI csv into ``data_dir``; with ``max_lines`` only the head, under its own name
    (``wiki1m_for_simcse.first<N>.txt``) so a slice is never mistaken for the whole file."""
    from nlsup_kit.data.text import NLI_CSV, WIKI1M

    dest = data_dir / (WIKI1M if what == "wiki1m" else NLI_CSV)
    if max_lines is not None:
        dest = dest.with_name(f"{dest.stem}.first{max_lines}{dest.suffix}")
    if dest.is_file():
        return dest
    url = url or source_url(what)
    if max_lines is None:
        return fetch(url, dest, progress=progress)
    return fetch_head(url, dest, max_lines, progress)


def fetch_head(url: str, dest: Path, max_lines: int, progress: bool | None = None) -> Path:
    """The first ``max_lines`` lines of a text file, streamed, written atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            for count, line in enumerate(progress_bar(response, total=max_lines, desc=dest.name,
                                                                 unit="line", show=progress), start=1):
                out.write(line)
                if count >= max_lines:
                    break
    except (urllib.error.URLError, OSError) as err:
        raise NlsupError(f"download of {url} failed ({getattr(err, 'reason', err)}); offline?") from None
    os.replace(part, dest)
    return dest
