"""Downloads that keep only the file asked for, and archive extraction that cannot escape.

A download streams to ``<name>.part`` (resuming it with an HTTP Range request when the server allows). It is
moved into place only when it is whole, matches the sha256 its source publishes (the Hugging Face hub's
``X-Linked-Etag``, read by ``huggingface_hub``; a mirror's ``SHA256SUMS`` beside the file) and passes a
content check (:mod:`nlsup_kit.data.content`: never an HTML page). Every failure on the way, of the network
or of the disk, is one line (:class:`NlsupError`). A cut transfer keeps its ``.part`` for the next try; content
that is not the file is deleted. Tar archives are unpacked with Python's ``data`` filter, which refuses
absolute paths, ``..`` and links that point outside the target.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from nlsup_kit.data.content import (HTML_PAGE, is_html_type, looks_like_html, parse_checksums,
                                    text_corpus_problem)
from nlsup_kit.data.disk import MB, disk_problem, require_space, writing
from nlsup_kit.data.paths import NLI_CSV, WIKI1M
from nlsup_kit.errors import NlsupError
from nlsup_kit.net import hub_endpoint
from nlsup_kit.progress import progress_bar

# SimCSE's dataset release on the hub (or the hub mirror HF_ENDPOINT names); NLSUP_MIRROR replaces the whole
# base, so a course can serve the same file names itself, with a SHA256SUMS file beside them if it likes.
OFFICIAL_REPO = "princeton-nlp/datasets-for-simcse"
MIRROR_VARIABLE = "NLSUP_MIRROR"
CHECKSUM_FILE = "SHA256SUMS"
FILE_NAMES = {"senteval": "senteval.tar", "wiki1m": "wiki1m_for_simcse.txt", "nli": "nli_for_simcse.csv"}
# the multilingual STS-B (stsb_multi_mt): its repository's data folder, stsb-<lang>-<split>.csv; STS17 as
# sentence-transformers publishes it (nlsup_kit.data.multilingual)
STSB_MULTI_MT_BASE = "https://raw.githubusercontent.com/PhilipMay/stsb-multi-mt/main/data"
STS17_BASE = "https://sbert.net/datasets"
LEIPZIG_BASE = "https://downloads.wortschatz-leipzig.de/corpora"  # text in other languages (data/leipzig.py)
CHUNK = 1 << 20
TIMEOUT = 60.0


def official_base() -> str:
    return f"{hub_endpoint()}/datasets/{OFFICIAL_REPO}/resolve/main"


def release_file(what: str) -> tuple[str, str]:
    """(file name, official base) of ``what``: SimCSE's release for senteval, wiki1m and nli; stsb_multi_mt's
    repository for ``stsb-<lang>-<split>``; sentence-transformers' datasets for sts17; the Leipzig Corpora
    Collection for ``leipzig:<corpus>``."""
    if what in FILE_NAMES:
        return FILE_NAMES[what], official_base()
    if re.fullmatch(r"stsb-[a-z]{2}-(train|dev|test)", what):
        return f"{what}.csv", STSB_MULTI_MT_BASE
    if what == "sts17":
        return "STS2017-extended.zip", STS17_BASE
    if what.startswith("leipzig:"):
        return f"{what.removeprefix('leipzig:')}.tar.gz", LEIPZIG_BASE
    raise NlsupError(f"unknown download {what!r}")


def source_url(what: str) -> str:
    """Where ``what`` is downloaded from: ``$NLSUP_MIRROR/<file>`` (one folder holds every file name), or the
    official copy."""
    name, official = release_file(what)
    mirror = os.environ.get(MIRROR_VARIABLE, "").strip()
    if mirror:
        require_address(mirror, MIRROR_VARIABLE)
    return f"{(mirror or official).rstrip('/')}/{name}"


def require_address(url: str, where: str) -> None:
    """``url`` must be an http(s) address with a host, or a file:// path: a typo fails here, in one line."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a port that is not a number from 0 to 65535
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        ok = ok or (parts.scheme == "file" and bool(parts.path))
    except ValueError:
        ok = False
    if not ok:
        raise NlsupError(f"{where}={url!r} is not an address: expected http://HOST/FOLDER, https://... or file:///FOLDER")


# The network: every failure of the connection or the read becomes one phrase.

def network_problem(err: BaseException, timeout: float) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, socket.gaierror):
        return "cannot resolve the host name; offline, or a typo in the address?"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, http.client.IncompleteRead):
        return "the connection was cut in the middle of the transfer"
    if isinstance(reason, http.client.RemoteDisconnected):
        return "the server closed the connection without an answer"
    if isinstance(reason, ConnectionResetError):
        return "the connection was reset"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, ValueError):
        return f"not a usable address ({reason})"
    text = (str(getattr(reason, "strerror", None) or reason).strip().splitlines() or [""])[0][:200]
    return f"{type(reason).__name__}: {text}" if text else type(reason).__name__


NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, ValueError)


def online_only_failure(what: str, root: Path, err: BaseException, instead: str) -> NlsupError:
    """A download by torchvision or torchaudio (which check their own published checksums) failed: one line."""
    if isinstance(err, OSError) and err.errno is not None and err.filename is not None:
        return disk_problem(err, root)
    return NlsupError(f"{what} could not be downloaded into {root} ({network_problem(err, TIMEOUT)}); {instead}")


ONLINE_ONLY_ERRORS = (*NETWORK_ERRORS, RuntimeError)


def open_url(url: str, timeout: float, headers: dict[str, str] | None = None, kept: str = ""):
    """The response to a GET of ``url``; any failure to get one is one line (``kept``: what is left on disk)."""
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout)
    except urllib.error.HTTPError:
        raise
    except NETWORK_ERRORS as err:
        raise NlsupError(f"download of {url} failed ({network_problem(err, timeout)}){kept}") from None


def refuse_html(url: str, what: str, response=None, first: bytes = b"", kept: str = "") -> None:
    """A web page (a sign-in portal, an error page) is refused by its declared type before anything is read, and
    by its first bytes before anything is written."""
    if (response is not None and is_html_type(response.headers.get("Content-Type"))) or looks_like_html(first):
        raise NlsupError(f"{url} sent {HTML_PAGE}, not {what}; nothing of it was kept{kept}")


# Checksums the source publishes.

def published_sha256(url: str, timeout: float = TIMEOUT) -> tuple[str, str] | None:
    """(sha256, who publishes it) for ``url``, or None where its source publishes none."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    if url.startswith(hub_endpoint() + "/"):
        from huggingface_hub import get_hf_file_metadata

        try:
            etag = (get_hf_file_metadata(url, timeout=timeout).etag or "").lower()
        except Exception as err:  # noqa: BLE001 - the library's transport errors changed with each release
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise NlsupError(f"download of {url} failed: the hub's file record could not be read ({reason})") from None
        # an LFS file's X-Linked-Etag is its sha256; a small file's ETag is a git hash (40 digits), not usable
        return (etag, "the Hugging Face hub publishes") if re.fullmatch(r"[0-9a-f]{64}", etag) else None
    sums_url = f"{url.rsplit('/', 1)[0]}/{CHECKSUM_FILE}"
    try:
        with urllib.request.urlopen(sums_url, timeout=timeout) as response:
            refuse_html(sums_url, "a checksum list", response)
            body = response.read(MB)
    except urllib.error.HTTPError as err:
        if err.code in (403, 404, 410):
            return None  # a plain mirror: nothing published
        raise NlsupError(f"download of {sums_url} failed ({network_problem(err, timeout)})") from None
    except NETWORK_ERRORS as err:  # the file's server, not its checksum list: name the file asked for
        raise NlsupError(f"download of {url} failed ({network_problem(err, timeout)})") from None
    refuse_html(sums_url, "a checksum list", first=body)
    try:
        sums = parse_checksums(body.decode("utf-8"), sums_url)
    except UnicodeDecodeError:
        raise NlsupError(f"{sums_url}: not a checksum list (not UTF-8 text); nothing was downloaded") from None
    name = url.rsplit("/", 1)[1]
    return (sums[name], f"{sums_url} publishes") if name in sums else None


# The transfer.

def fetch(url: str, dest: Path, sha256: str | None = None, check: Callable[[Path], str | None] | None = None,
          progress: bool | None = None, timeout: float = TIMEOUT) -> Path:
    """Download ``url`` to ``dest`` atomically, resuming a previous ``.part``; ``sha256`` (else the source's
    published one) and ``check`` (why the file is not what was asked for, or None) decide whether it is kept."""
    dest = Path(dest)
    folder = dest.parent
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    expected = (sha256, "the caller expected") if sha256 else published_sha256(url, timeout)
    offset = part.stat().st_size if part.exists() else 0
    kept = f"; the partial file {part} is kept and the next try resumes it" if offset else ""
    try:
        response = open_url(url, timeout, {"Range": f"bytes={offset}-"} if offset else None, kept)
    except urllib.error.HTTPError as err:
        if not (err.code == 416 and offset):  # 416 with a .part: the .part is already whole
            raise NlsupError(f"download of {url} failed: HTTP {err.code} {err.reason}{kept}") from None
        response = None
    if response is not None:
        with response:
            receive(url, response, part, offset, progress, timeout)
    if expected is not None:
        digest = file_sha256(part)
        if digest != expected[0]:
            part.unlink()
            raise NlsupError(f"download of {url} has sha256 {digest}, but {expected[1]} {expected[0]}: not the "
                             "file asked for; it was deleted, run the same command again")
    problem = check(part) if check else None
    if problem is not None:
        part.unlink()
        raise NlsupError(f"{url} sent {problem}, not {dest.name}; nothing of it was kept")
    with writing(folder):
        os.replace(part, dest)
    return dest


def receive(url: str, response, part: Path, offset: int, progress: bool | None, timeout: float) -> None:
    """Stream the body into ``part`` (appending when the server honoured the range); the first bytes are
    looked at before anything is written, so a web page never lands on disk."""
    resumed = bool(offset) and response.status == 206
    offset = offset if resumed else 0
    kept_after = f"; the partial file {part} is kept and the next try resumes it"
    what = part.name.removesuffix(".part")
    refuse_html(url, what, response, kept=kept_after if part.exists() else "")
    length = response.headers.get("Content-Length")
    total = offset + int(length) if length is not None and length.isdigit() else None
    needed = total - offset if total is not None else None
    require_space(part.parent, needed)

    def read() -> bytes:
        try:
            return response.read(CHUNK)
        except NETWORK_ERRORS as err:
            kept = kept_after if part.exists() and part.stat().st_size else ""
            raise NlsupError(f"download of {url} failed ({network_problem(err, timeout)}){kept}") from None

    chunk = read()
    if not resumed:
        refuse_html(url, what, first=chunk)
    with writing(part.parent, needed), open(part, "ab" if resumed else "wb") as out, progress_bar(
            total=total, initial=offset, unit="B", unit_scale=True, desc=what,
            show=progress) as bar:
        while chunk:
            out.write(chunk)
            bar.update(len(chunk))
            chunk = read()
    size = part.stat().st_size
    if total is not None and size != total:
        raise NlsupError(f"download of {url} is incomplete ({size:,} of {total:,} bytes; the connection was cut){kept_after}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_head(url: str, dest: Path, max_lines: int, progress: bool | None = None, timeout: float = TIMEOUT) -> Path:
    """The first ``max_lines`` lines of a text file, streamed, checked as a corpus, written atomically. A slice
    cut short by the network is deleted, never kept as if it were the whole head."""
    dest = Path(dest)
    folder = dest.parent
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        response = open_url(url, timeout)
    except urllib.error.HTTPError as err:
        raise NlsupError(f"download of {url} failed: HTTP {err.code} {err.reason}") from None
    try:
        with response:
            refuse_html(url, dest.name, response)
            length = response.headers.get("Content-Length")
            lines = received = 0
            with writing(folder), open(part, "wb") as out, progress_bar(total=max_lines, desc=dest.name, unit="line",
                                                                      show=progress) as bar:
                while lines < max_lines:
                    try:
                        line = response.readline(MB)
                    except NETWORK_ERRORS as err:
                        raise NlsupError(f"download of {url} failed ({network_problem(err, timeout)}); "
                                         "the partial slice was deleted") from None
                    if not line:
                        break
                    if not received:
                        refuse_html(url, dest.name, first=line)
                    out.write(line)
                    received += len(line)
                    lines += 1
                    bar.update()
            if lines < max_lines and length is not None and length.isdigit() and received != int(length):
                raise NlsupError(f"download of {url} is incomplete ({received:,} of {int(length):,} bytes; the "
                                 "connection was cut); the partial slice was deleted")
        problem = text_corpus_problem(part)
        if problem is not None:
            raise NlsupError(f"{url} sent {problem}, not {dest.name}; nothing of it was kept")
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    with writing(folder):
        os.replace(part, dest)
    return dest


def safe_extract(archive: Path, target: Path) -> None:
    """Unpack a tar archive; any member that would land outside ``target`` aborts the whole extraction."""
    with writing(target):
        target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            needed = sum(member.size for member in tar.getmembers())
            with writing(target, needed):
                tar.extractall(target, filter="data")
    except tarfile.FilterError as err:
        raise NlsupError(f"{archive}: refused to extract, unsafe member ({err})") from None
    except (tarfile.TarError, EOFError) as err:
        raise NlsupError(f"{archive}: not a complete tar archive ({err})") from None


def download_text(what: str, data_dir: Path, url: str | None = None, max_lines: int | None = None,
                  progress: bool | None = None) -> Path:
    """wiki1m or the NLI csv into ``data_dir``; with ``max_lines`` only the head, under its own name
    (``wiki1m_for_simcse.first<N>.txt``) so a slice is never mistaken for the whole file."""
    dest = data_dir / (WIKI1M if what == "wiki1m" else NLI_CSV)
    if max_lines is not None:
        dest = dest.with_name(f"{dest.stem}.first{max_lines}{dest.suffix}")
    if dest.is_file():
        return dest
    url = url or source_url(what)
    if max_lines is None:
        return fetch(url, dest, check=text_corpus_problem, progress=progress)
    return fetch_head(url, dest, max_lines, progress)
