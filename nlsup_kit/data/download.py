"""What to fetch and what to keep: where each file comes from (SimCSE's release on the hub, a course's mirror,
the multilingual sets, Leipzig), the sha256 its source publishes, and which files the kit itself put in place.

A download streams to ``<name>.part`` through :mod:`nlsup_kit.data.transport` (which checks each answer against
its request and stops under a floor rate), resuming it with an HTTP Range request when the server allows. It is
moved into place only when it is whole, matches the sha256 its source publishes (the Hugging Face hub's
``X-Linked-Etag``, read by ``huggingface_hub``; a mirror's ``SHA256SUMS`` beside the file) and passes a
content check (:mod:`nlsup_kit.data.content`: never an HTML page). Every failure on the way, of the network or
of the disk, is one line (:class:`NlsupError`). A cut transfer keeps its ``.part`` for the next try; content
that is not the file is deleted. Tar archives are unpacked with Python's ``data`` filter, which refuses
absolute paths, ``..`` and links that point outside the target.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from nlsup_kit.data.content import line_ended, parse_checksums, text_corpus_problem, unannounced_length_problem
from nlsup_kit.data.disk import MB, writing
from nlsup_kit.data.paths import NLI_CSV, WIKI1M, cache_data_dir
from nlsup_kit.data.transport import (CHUNK, NETWORK_ERRORS, TIMEOUT, Floor, RateWatch, file_sha256, network_problem,
                                      one_line, open_request, open_url, receive, refuse_html)
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
OVERLAP = 4096  # bytes a resume asks for again, to check that the server sends the bytes asked for






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
            reason = one_line(err) or type(err).__name__
            raise NlsupError(f"download of {url} failed: the hub's file record could not be read ({reason})") from None
        # an LFS file's X-Linked-Etag is its sha256; a small file's ETag is a git hash (40 digits), not usable
        return (etag, "the Hugging Face hub publishes") if re.fullmatch(r"[0-9a-f]{64}", etag) else None
    sums_url = f"{url.rsplit('/', 1)[0]}/{CHECKSUM_FILE}"
    try:
        with open_request(urllib.request.Request(sums_url, headers={"Accept-Encoding": "identity"}), timeout) as response:
            refuse_html(sums_url, "a checksum list", response)
            body, watch = b"", RateWatch(sums_url, Floor.from_environment())
            while len(body) < MB and (raw := response.read1(MB - len(body))):
                watch.count(len(raw), "")
                body += raw
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


# What the kit itself put in place. In its own cache folder only the kit writes, so a file there that the kit's
# checks did not put in place (left by an older version, or by a cut copy) is downloaded again; in a folder the
# user names, the files are the user's and are read as they are.

def _mark(path: Path) -> Path | None:
    """Where the record of ``path``'s checked arrival lives (the cache's ``.verified`` folder), or None outside it."""
    cache = cache_data_dir().resolve()
    try:
        relative = path.resolve().relative_to(cache)
    except ValueError:
        return None
    return cache / ".verified" / f"{relative}.json"


def mark_verified(path: Path) -> None:
    """Record that ``path`` was moved into place after the kit's checks, with its size then."""
    mark = _mark(path)
    if mark is not None:
        with writing(mark.parent):
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.write_text(json.dumps({"size": path.stat().st_size}))


def trusted(path: Path) -> bool:
    """``path`` is a file to read as it is: one the kit's checks put in its cache folder (and unchanged in size since),
    or any file in a folder the user named."""
    if not path.is_file():
        return False
    mark = _mark(path)
    if mark is None:
        return True
    try:
        return json.loads(mark.read_text()).get("size") == path.stat().st_size
    except (OSError, ValueError, AttributeError):
        return False


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
    timeout = Floor.from_environment().silence(timeout)
    expected = (sha256, "the caller expected") if sha256 else published_sha256(url, timeout)
    have = part.stat().st_size if part.exists() else 0
    tail = b""
    if have:  # asked again from a little before the end: the answer must repeat the .part's last bytes
        with open(part, "rb") as handle:
            handle.seek(have - min(OVERLAP, have))
            tail = handle.read()
    offset = have - len(tail)
    kept = f"; the partial file {part} is kept and the next try resumes it" if have else ""
    try:
        response = open_url(url, timeout, {"Range": f"bytes={offset}-"} if have else None, kept)
    except urllib.error.HTTPError as err:
        if err.code != 416 or not have:
            raise NlsupError(f"download of {url} failed: {network_problem(err, timeout)}{kept}") from None
        response = open_url(url, timeout)  # a range the server cannot satisfy: the .part is longer, start over
    with response:
        announced = receive(url, response, part, offset, progress, timeout, tail=tail)
    if expected is not None:
        digest = file_sha256(part)
        if digest != expected[0]:
            part.unlink()
            raise NlsupError(f"download of {url} has sha256 {digest}, but {expected[1]} {expected[0]}: not the "
                             "file asked for; it was deleted, run the same command again")
    problem = check(part) if check else None
    if problem is None and expected is None and not announced:  # no length, no checksum: only the content tells
        problem = unannounced_length_problem(part, dest.name)
    if problem is not None:
        part.unlink()
        raise NlsupError(f"{url} sent {problem}, not {dest.name}; nothing of it was kept")
    with writing(folder):
        os.replace(part, dest)
    mark_verified(dest)
    return dest










def fetch_head(url: str, dest: Path, max_lines: int, progress: bool | None = None, timeout: float = TIMEOUT) -> Path:
    """The first ``max_lines`` lines of a text file, streamed, checked as a corpus, written atomically. A slice
    cut short by the network is deleted, never kept as if it were the whole head."""
    dest = Path(dest)
    folder = dest.parent
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    timeout = Floor.from_environment().silence(timeout)
    try:
        response = open_url(url, timeout)
    except urllib.error.HTTPError as err:
        raise NlsupError(f"download of {url} failed: {network_problem(err, timeout)}") from None
    try:
        with response:
            if response.status != 200:
                raise NlsupError(f"download of {url} failed: HTTP {response.status} {one_line(response.reason)} to a "
                                 "request for the whole file; nothing of it was kept")
            encoding = one_line(response.headers.get("Content-Encoding") or "identity").lower()
            if encoding != "identity":
                raise NlsupError(f"download of {url}: the server sent it {encoding}-compressed (Content-Encoding: "
                                 f"{encoding}) though it was asked for as is; nothing of it was kept")
            refuse_html(url, dest.name, response)
            length = response.headers.get("Content-Length")
            lines = received = 0
            watch = RateWatch(url, Floor.from_environment())
            pending = b""  # the start of a line whose end has not arrived
            with writing(folder), open(part, "wb") as out, progress_bar(total=max_lines, desc=dest.name, unit="line",
                                                                      show=progress) as bar:
                while lines < max_lines:
                    try:  # whatever has arrived, not a whole line: a trickle without line breaks is watched too
                        raw = response.read1(CHUNK)
                    except NETWORK_ERRORS as err:
                        raise NlsupError(f"download of {url} failed ({network_problem(err, timeout)}); "
                                         "the partial slice was deleted") from None
                    if not raw:
                        out.write(pending)  # a last line without its line break (checked below)
                        break
                    watch.count(len(raw), "; the partial slice was deleted")
                    if not received:
                        refuse_html(url, dest.name, first=raw)
                    received += len(raw)
                    *complete, pending = (pending + raw).split(b"\n")
                    if len(pending) > MB:
                        raise NlsupError(f"{url} sent a line longer than 1 MB, not sentences; nothing of it was kept")
                    for line in complete[:max_lines - lines]:
                        out.write(line + b"\n")
                        lines += 1
                        bar.update()
            if lines < max_lines and length is not None and length.isdigit() and received != int(length):
                raise NlsupError(f"download of {url} is incomplete ({received:,} of {int(length):,} bytes; the "
                                 "connection was cut); the partial slice was deleted")
            if lines < max_lines and not (length or "").isdigit() and not line_ended(part):
                raise NlsupError(f"download of {url} is incomplete (sent without its length, it stops in the middle "
                                 "of a line); the partial slice was deleted")
        problem = text_corpus_problem(part)
        if problem is not None:
            raise NlsupError(f"{url} sent {problem}, not {dest.name}; nothing of it was kept")
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    with writing(folder):
        os.replace(part, dest)
    mark_verified(dest)
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
    if trusted(dest):
        return dest
    url = url or source_url(what)
    if max_lines is None:
        return fetch(url, dest, check=text_corpus_problem, progress=progress)
    return fetch_head(url, dest, max_lines, progress)
