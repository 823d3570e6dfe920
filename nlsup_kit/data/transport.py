"""One HTTP transfer, checked against its request: the status, ``Content-Range`` and length asked for, the
``Content-Encoding`` (decoded or refused by name), a floor rate under which it stops, redirects only to http(s)
and at most ten, and every failure of the connection or the read as one phrase.

:mod:`nlsup_kit.data.download` decides what to fetch and what to keep; this module only moves bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from nlsup_kit.data.content import HTML_PAGE, is_html_type, looks_like_html
from nlsup_kit.data.disk import disk_problem, require_space, writing
from nlsup_kit.errors import NlsupError
from nlsup_kit.progress import progress_bar

CHUNK = 1 << 20



TIMEOUT = 60.0  # seconds without a single byte (per socket read) before a transfer is given up


FLOOR_VARIABLE = "NLSUP_MIN_RATE"


MAX_REDIRECTS = 10


REFUSED_REDIRECT = "refused redirect to"


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


class RateWatch:
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


# Each connection the opener makes is noted for the thread that asked, so a watchdog can cut one whose answer's
# head trickles in (every read gets a byte inside the per-read timeout, so only a deadline ends it).
_CONNECTIONS = threading.local()


def _noted(connection_class):
    class Noted(connection_class):
        def connect(self):
            super().connect()
            getattr(_CONNECTIONS, "open", []).append(self.sock)

    return Noted


class _NotedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_noted(http.client.HTTPConnection), req)


class _NotedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        extra = {"check_hostname": self._check_hostname} if hasattr(self, "_check_hostname") else {}  # Python < 3.12
        return self.do_open(_noted(http.client.HTTPSConnection), req, context=self._context, **extra)


_OPENER = urllib.request.build_opener(_LimitedRedirects, _NotedHTTPHandler, _NotedHTTPSHandler)


def open_request(request: urllib.request.Request, timeout: float):
    """``request`` opened, its answer's status line and headers read within ``timeout`` in all (not per read):
    past that the connection is cut and the wait ends as a timeout."""
    sockets = _CONNECTIONS.open = []
    cut = threading.Event()

    def cut_off():
        cut.set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(timeout, cut_off)
    watchdog.daemon = True
    watchdog.start()
    try:
        response = _OPENER.open(request, timeout=timeout)
        if cut.is_set():  # the cut can also end the head early, as if it were whole: the answer is not kept
            response.close()
            raise TimeoutError(f"no complete answer head within {timeout:g} s")
        return response
    except NETWORK_ERRORS as err:
        if cut.is_set() and not isinstance(err, urllib.error.HTTPError):
            raise TimeoutError(f"no complete answer head within {timeout:g} s") from None
        raise
    finally:
        watchdog.cancel()
        _CONNECTIONS.open = []


def open_url(url: str, timeout: float, headers: dict[str, str] | None = None, kept: str = ""):
    """The response to a GET of ``url``, asked for as is (no compression); any failure to get one is one line
    (``kept``: what is left on disk)."""
    try:
        return open_request(urllib.request.Request(url, headers={"Accept-Encoding": "identity", **(headers or {})}),
                            timeout)
    except urllib.error.HTTPError:
        raise
    except NETWORK_ERRORS as err:
        raise NlsupError(f"download of {url} failed ({network_problem(err, timeout)}){kept}") from None


def refuse_html(url: str, what: str, response=None, first: bytes = b"", kept: str = "") -> None:
    """A web page (a sign-in portal, an error page) is refused by its declared type before anything is read, and
    by its first bytes before anything is written."""
    if (response is not None and is_html_type(response.headers.get("Content-Type"))) or looks_like_html(first):
        raise NlsupError(f"{url} sent {HTML_PAGE}, not {what}; nothing of it was kept{kept}")


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
    watch = RateWatch(url, floor)

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
