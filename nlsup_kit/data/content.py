"""Is a downloaded file the file that was asked for? Checks for when no checksum is published.

A network can answer any address with something else: a hotel's or campus's sign-in page (HTTP 200, HTML), a
proxy's error page, a cut-off body. A corpus or an archive is never HTML; a text corpus is UTF-8 lines that
are not markup; an archive must open as one (and SentEval's must then read, :mod:`nlsup_kit.data.download`).
"""

from __future__ import annotations

import codecs
import gzip
import re
import tarfile
import zipfile
import zlib
from pathlib import Path

HTML_PAGE = "an HTML page (a sign-in portal or an error page? open the address in a browser)"
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml", b"<!--", b"<meta", b"<title", b"<script")
_MARKUP_LINE = re.compile(r"^\s*</?[A-Za-z!?][^>]*>")
SNIFF_BYTES = 1024
NEWLINE = b"\n"


def is_html_type(content_type: str | None) -> bool:
    """A ``Content-Type`` header that announces a web page."""
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind in ("text/html", "application/xhtml+xml")


def looks_like_html(head: bytes) -> bool:
    """The first bytes of a body (after a byte-order mark and white space) open an HTML or XML document."""
    start = head[:SNIFF_BYTES].lstrip(codecs.BOM_UTF8).lstrip().lower()
    return start.startswith(_HTML_STARTS) or b"<html" in start


def text_corpus_problem(path: Path, sample_lines: int = 1000) -> str | None:
    """Why ``path`` is not a text corpus (one short phrase), or None: it must be UTF-8, hold a line that is
    not blank, and its lines must not be markup (more than a fifth of the first ``sample_lines``)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line_number, non_blank, markup, tail = 1, 0, 0, ""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            try:
                text = tail + decoder.decode(chunk)
            except UnicodeDecodeError as err:
                before = err.object[:err.start].count(NEWLINE)
                return f"not UTF-8 text (line {line_number + before})"
            *lines, tail = text.split("\n")
            for line in lines:
                if non_blank < sample_lines and line.strip():
                    non_blank += 1
                    markup += bool(_MARKUP_LINE.match(line))
                line_number += 1
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return f"not UTF-8 text (line {line_number}: cut inside a character)"
    if tail.strip() and non_blank < sample_lines:
        non_blank += 1
        markup += bool(_MARKUP_LINE.match(tail))
    if non_blank == 0:
        return "empty (no line of text)"
    if markup * 5 > non_blank:
        return (f"markup, not sentences ({markup} of its first {non_blank} lines are tags: an HTML or XML page; "
                "a sign-in portal or an error page? open the address in a browser)")
    return None


def archive_problem(path: Path) -> str | None:
    """Why ``path`` is not a tar archive, or None."""
    try:
        return None if tarfile.is_tarfile(path) else "not a tar archive"
    except OSError as err:
        return f"not readable ({err.strerror or err})"


def line_ended(path: Path) -> bool:
    """The file is not empty and its last byte is a line break."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        if handle.tell() == 0:
            return False
        handle.seek(-1, 2)
        return handle.read(1) == NEWLINE


def unannounced_length_problem(path: Path, name: str) -> str | None:
    """For a body sent without its length (and no published checksum): why it looks cut short, or None. An archive
    must read to its end; a text file must end with a line break."""
    lowered = name.lower()
    try:
        if lowered.endswith((".tar", ".tar.gz", ".tgz")):
            with tarfile.open(path) as tar:
                for member in tar:
                    if member.isfile():
                        with tar.extractfile(member) as handle:
                            while handle.read(1 << 20):
                                pass
        elif lowered.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
                if bad is not None:
                    return f"an archive whose member {bad} is damaged (sent without its length: cut short?)"
        elif lowered.endswith(".gz"):
            with gzip.open(path) as handle:
                while handle.read(1 << 20):
                    pass
        elif not line_ended(path):
            return "text that stops in the middle of a line, or nothing (sent without its length: cut short?)"
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error) as err:
        return f"an archive that does not read to its end ({type(err).__name__}; sent without its length: cut short?)"
    return None


def parse_checksums(text: str, source: str) -> dict[str, str]:
    """``sha256sum`` output (``<64 hex>  <name>``, ``*`` before binary names) as {name: digest}; any other
    line makes the whole file untrusted, one line naming where."""
    from nlsup_kit.errors import at_line

    sums = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([0-9a-fA-F]{64}) [ *](.+)", line.strip())
        if match is None:
            raise at_line(source, number, "not a sha256sum line (`<64 hex digits>  <file name>`)")
        sums[match.group(2).strip()] = match.group(1).lower()
    return sums
