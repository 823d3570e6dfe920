"""Downloads that keep only the file asked for, and archive extraction that cannot escape.

A download streams to ``<name>.part`` (resuming it with an HTTP Range request when the server allows). It is
moved into place only when it is whole, matches the sha256 its source publishes (the Hugging Face hub's
``X-Linked-Etag``, read by ``huggingface_hub``; a mirror's ``SHA256SUMS`` beside the file) and passes a
content check (:mod:`nlsup_kit.data.content`: never an HTML page). Each answer is checked against the request
before a byte is kept: its status, its ``Content-Range`` on a resume (which asks again for the ``.part``'s last
bytes and must get them back), its length, its ``Content-Encoding``; a transfer under a floor rate stops
(:class:`Floor`). Every failure on the way, of the network or of the disk, is one line (:class:`NlsupError`). A
cut transfer keeps its ``.part`` for the next try; content that is not the file is deleted. Tar archives are unpacked with Python's ``data`` filter, which refuses
absolute paths, ``..`` and links that point outside the target.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import tarfile
import time
import urllib.error
import zlib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from nlsup_kit.data.content import (HTML_PAGE, is_html_type, looks_like_html, parse_checksums,
                                    line_ended, text_corpus_problem, unannounced_length_problem)
from nlsup_kit.data.disk import MB, disk_problem, require_space, writing
from nlsup_kit.data.paths import NLI_CSV, WIKI1M, cache_data_dir
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
TIMEOUT = 60.0  # seconds without a single byte (per socket read) before a transfer is given up
FLOOR_VARIABLE = "NLSUP_MIN_RATE"
MAX_REDIRECTS = 10
REFUSED_REDIRECT = "refused redirect to"
OVERLAP = 4096  # bytes a resume asks for again, to check that the server sends the bytes asked for


@dataclass(frozen=True)
class Floor:
    """The slowest transfer worth waiting for: under ``bytes_per_second`` on average over any ``seconds`` in a row,
    a download stops with one line and keeps its ``.part`` (a trickle would otherwise run for days, each read
    getting a few bytes before the per-read timeout). Set with ``NLSUP_MIN_RATE=BYTES_PER_SECOND/SECONDS``."""

    bytes_per_second: float = 1024.0
    seconds: float = 60.0

    def silence(self, timeout: float) -> float:
        """How long one read may wait for its first byte: a read that gets nothing for ``seconds`` is under any
        positive floor, so it waits no longer than that (a server that announces more than it sends and keeps the
        connection open would otherwise hold it for the whole ``timeout``)."""
        return min(timeout, self.seconds) if self.bytes_per_second > 0 else timeout

    @classmethod
    def from_environment(cls) -> "Floor":
        raw = os.environ.get(FLOOR_VARIABLE, "").strip()
        if not raw:
            return cls()
        try:
            rate, seconds = (float(part) for part in raw.split("/"))
            if rate < 0 or seconds <= 0:
                raise ValueError
        except ValueError:
            raise NlsupError(f"{FLOOR_VARIABLE}={raw!r}: expected BYTES_PER_SECOND/SECONDS, e.g. 1024/60") from None
        return cls(rate, seconds)


class _Watch:
    """Counts a transfer's bytes; under the floor over any ``floor.seconds`` in a row, stops it in one line."""

    def __init__(self, url: str, floor: Floor):
        self.url, self.floor = url, floor
        self.start, self.bytes = time.monotonic(), 0

    def count(self, n: int, kept: str) -> None:
        self.bytes += n
        now = time.monotonic()
        if now - self.start < self.floor.seconds:
            return
        rate = self.bytes / (now - self.start)
        if rate < self.floor.bytes_per_second:
            raise NlsupError(f"download of {self.url} stalled: {rate:,.0f} bytes/s over the last {now - self.start:.0f} s, "
                             f"under the floor of {self.floor.bytes_per_second:,.0f} bytes/s over {self.floor.seconds:g} s "
                             f"({FLOOR_VARIABLE}); try again later or from another mirror{kept}")
        self.start, self.bytes = now, 0


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

def one_line(text: object, limit: int = 200) -> str:
    """Foreign text (a server's reason phrase, Python's own HTTP messages) as one line: they can hold breaks."""
    return " ".join(str(text).split())[:limit]


def network_problem(err: BaseException, timeout: float) -> str:
    if isinstance(err, urllib.error.HTTPError):
        location = one_line(err.headers.get("Location") or err.headers.get("URI") or "") if err.headers else ""
        if 300 <= err.code < 400 and str(err.reason).startswith(REFUSED_REDIRECT):
            return f"HTTP {err.code} redirected to {str(err.reason)[len(REFUSED_REDIRECT):].strip()}, not an http or https address"
        if 300 <= err.code < 400 and location:
            return f"redirected in a loop or more than {MAX_REDIRECTS} times (HTTP {err.code}, last to {location})"
        if 300 <= err.code < 400:
            return f"HTTP {err.code} {one_line(err.reason)}: a redirect without an address to follow"
        return f"HTTP {err.code} {one_line(err.reason)}"
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
    text = one_line(getattr(reason, "strerror", None) or reason)
    return f"{type(reason).__name__}: {text}" if text else type(reason).__name__


NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, ValueError)


def online_only_failure(what: str, root: Path, err: BaseException, instead: str) -> NlsupError:
    """A download by torchvision or torchaudio (which check their own published checksums) failed: one line."""
    if isinstance(err, OSError) and err.errno is not None and err.filename is not None:
        return disk_problem(err, root)
    return NlsupError(f"{what} could not be downloaded into {root} ({network_problem(err, TIMEOUT)}); {instead}")


ONLINE_ONLY_ERRORS = (*NETWORK_ERRORS, RuntimeError)


class _LimitedRedirects(urllib.request.HTTPRedirectHandler):
    """At most MAX_REDIRECTS redirects (urllib's own loop check, an address visited twice, stays on), and only to
    http or https: urllib alone would follow one to ftp."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"{REFUSED_REDIRECT} {newurl}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_LimitedRedirects)


def open_url(url: str, timeout: float, headers: dict[str, str] | None = None, kept: str = ""):
    """The response to a GET of ``url``, asked for as is (no compression); any failure to get one is one line
    (``kept``: what is left on disk)."""
    try:
        return _OPENER.open(urllib.request.Request(url, headers={"Accept-Encoding": "identity", **(headers or {})}),
                            timeout=timeout)
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
            reason = one_line(err) or type(err).__name__
            raise NlsupError(f"download of {url} failed: the hub's file record could not be read ({reason})") from None
        # an LFS file's X-Linked-Etag is its sha256; a small file's ETag is a git hash (40 digits), not usable
        return (etag, "the Hugging Face hub publishes") if re.fullmatch(r"[0-9a-f]{64}", etag) else None
    sums_url = f"{url.rsplit('/', 1)[0]}/{CHECKSUM_FILE}"
    try:
        with _OPENER.open(urllib.request.Request(sums_url, headers={"Accept-Encoding": "identity"}),
                          timeout=timeout) as response:
            refuse_html(sums_url, "a checksum list", response)
            body, watch = b"", _Watch(sums_url, Floor.from_environment())
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


def content_range(header: str | None) -> tuple[int, int, int | None] | None:
    """``bytes START-END/TOTAL`` (TOTAL may be ``*``) as (start, end, total), or None if it is not that."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", header or "")
    if match is None or int(match.group(2)) < int(match.group(1)):
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


def _decoder(encoding: str):
    """A streaming decoder for a ``Content-Encoding`` the kit reads (gzip, deflate), or None for identity."""
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":  # zlib-wrapped, as the standard says (a raw stream fails the decode: refused)
        return zlib.decompressobj(zlib.MAX_WBITS)
    return False


def receive(url: str, response, part: Path, offset: int, progress: bool | None, timeout: float,
            floor: Floor | None = None, tail: bytes = b"") -> bool:
    """Stream the body into ``part`` after checking that it answers what was asked: the whole file (200), or,
    resuming with the bytes from ``offset`` (206 from exactly that byte, else from byte 0: started over), the
    rest of it, whose first bytes must repeat ``tail``, the ``.part``'s last bytes (so a server that sends other
    bytes than the ones asked for is caught before any is appended). The first bytes are looked at before anything
    is written, so a web page never lands on disk; a body compressed in transit is decoded; a transfer under
    ``floor`` stops. Returns whether the file's length was announced (without it, only the file's content can
    tell a whole file from a cut one)."""
    floor = floor or Floor.from_environment()
    kept_after = f"; the partial file {part} is kept and the next try resumes it"
    kept = kept_after if offset else ""
    what = part.name.removesuffix(".part")
    length = response.headers.get("Content-Length")
    length = int(length) if length is not None and length.strip().isdigit() else None
    if response.status == 206:
        ranged = content_range(response.headers.get("Content-Range"))
        if ranged is None:
            raise NlsupError(f"download of {url} failed: a partial answer (HTTP 206) without a readable Content-Range "
                             f"({one_line(response.headers.get('Content-Range') or 'none')}); nothing of it was kept{kept}")
        start, end, total = ranged
        if start not in (offset, 0):
            raise NlsupError(f"download of {url} failed: asked for the bytes from {offset:,}, the server sent bytes "
                             f"{start:,}-{end:,}; nothing of it was kept{kept}")
        if (length is not None and length != end - start + 1) or (total is not None and end >= total):
            raise NlsupError(f"download of {url} failed: the server's Content-Range (bytes {start:,}-{end:,}/"
                             f"{total if total is not None else '*'}) and Content-Length ({length}) disagree; nothing "
                             f"of it was kept{kept}")
        resumed, body_end = start > 0, end + 1
    elif response.status == 200:  # the whole file: a .part there was is started over (the server ignored the range)
        resumed, total, body_end = False, length, length
    else:
        raise NlsupError(f"download of {url} failed: HTTP {response.status} {one_line(response.reason)}, not the "
                         f"file; nothing of it was kept{kept}")
    offset = offset if resumed else 0
    encoding = one_line(response.headers.get("Content-Encoding") or "identity").lower()
    decoder = _decoder(encoding)
    if decoder is False or (decoder is not None and resumed):
        why = "which the kit does not decode" if decoder is False else "on a resumed transfer"
        raise NlsupError(f"download of {url}: the server sent it {encoding}-compressed (Content-Encoding: {encoding}) "
                         f"{why}; nothing of it was kept{kept}")
    refuse_html(url, what, response, kept=kept_after if part.exists() else "")
    needed = total - offset if total is not None and decoder is None else None
    require_space(part.parent, needed)
    received = 0  # bytes as sent (compressed, if so), against the announced length
    written = offset + len(tail) if resumed else 0  # what the .part holds once the file closes
    watch = _Watch(url, floor)

    def read() -> bytes:
        nonlocal received
        kept = kept_after if written else ""
        try:
            raw = response.read1(CHUNK)  # whatever has arrived, at most CHUNK: the bar moves from the first bytes
        except NETWORK_ERRORS as err:
            raise NlsupError(f"download of {url} failed ({network_problem(err, timeout)}){kept}") from None
        received += len(raw)
        watch.count(len(raw), kept)
        return raw

    def decoded(raw: bytes) -> bytes:
        if decoder is None:
            return raw
        try:
            return decoder.decompress(raw) + (b"" if raw else decoder.flush())
        except zlib.error as err:
            raise NlsupError(f"download of {url}: its {encoding}-compressed body does not decode ({err}); nothing "
                             f"of it was kept") from None

    raw = read()
    if resumed and tail:  # the answer must start with the bytes the .part ends with
        while len(raw) < len(tail) and (more := read()):
            raw += more
        if raw[:len(tail)] != tail:
            part.unlink()
            raise NlsupError(f"download of {url}: the bytes sent for the resume from byte {offset:,} differ from the "
                             "ones the partial file holds there (the file changed on the server, or the server does "
                             "not send the bytes asked for); the partial file was deleted, run the same command again")
        raw = raw[len(tail):]
    data = decoded(raw)
    if not resumed:
        refuse_html(url, what, first=data)
    try:
        with writing(part.parent, needed), open(part, "ab" if resumed else "wb") as out, progress_bar(
                total=total, initial=offset + (len(tail) if resumed else 0), unit="B", unit_scale=True, desc=what,
                show=progress) as bar:
            while data or raw:
                out.write(data)
                written += len(data)
                bar.update(len(raw))
                raw = read()
                data = decoded(raw)
        if decoder is not None and not decoder.eof:
            raise NlsupError(f"download of {url} is incomplete (its {encoding}-compressed body stops before its end); "
                             "nothing of it was kept")
    except NlsupError as err:
        if decoder is not None:  # decoded bytes cannot be resumed by a byte range of the compressed body
            part.unlink(missing_ok=True)
            raise NlsupError(str(err).replace(kept_after, "; nothing of it was kept")) from None
        raise
    if body_end is not None and offset + received != body_end:
        raise NlsupError(f"download of {url} is incomplete ({offset + received:,} of {body_end:,} bytes; the connection "
                         f"was cut){kept_after}")
    if total is not None and offset + received != total:
        raise NlsupError(f"download of {url} is incomplete: the server sent bytes up to {offset + received:,} of "
                         f"{total:,}{kept_after}")
    return total is not None


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
            watch = _Watch(url, Floor.from_environment())
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
