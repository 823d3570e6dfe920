"""A data mirror on 127.0.0.1 for the tests: serves in-memory files under SimCSE's release names, honours
HTTP Range, can cut a body short once or misbehave as real networks do (``Handler.faults``), and logs every
GET so a test can tell what was downloaded."""

from __future__ import annotations

import gzip
import http.server
import io
import socket
import struct
import tarfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path


PORTAL_PAGE = (b"<!DOCTYPE html>\n<html>\n<head>\n<title>Sign in to Campus Wi-Fi</title>\n</head>\n<body>\n"
               b"<form action=\"/login\" method=\"post\">\n<input name=\"user\">\n</form>\n</body>\n</html>\n")


class Handler(http.server.BaseHTTPRequestHandler):
    """``faults`` maps a path (or ``"*"``, every path) to how the network misbehaves there:

    - ``portal``: a Wi-Fi sign-in page, 200 text/html, whatever was asked for;
    - ``portal-as-text``: the same page sent as text/plain, after a blank line (only the content tells);
    - ``chunked``: the body as a chunked transfer, with no length announced;
    - ``chunked-cut``: a chunked transfer cut in the middle of a chunk, once;
    - ``reset``: the connection reset before any answer, once;
    - ``error-page``: HTTP 500 with an HTML body;
    - ``range-from-zero``: a Range request answered 206 with the whole file (``Content-Range: bytes 0-...``);
    - ``range-lie``: a Range request answered 206 with the Content-Range asked for, and the whole file as the body;
    - ``ignore-range``: a Range request answered 200 with the whole file;
    - ``trickle``: the headers, then the body at about 600 bytes a second;
    - ``no-length-cut``: no Content-Length, no chunks: the body cut in the middle of a line, then the connection closed;
    - ``redirect-loop``: a redirect to the same address, every time;
    - ``redirect-ftp``: a redirect to an ftp:// address (which urllib alone would follow);
    - ``redirect-nowhere``: a 302 without a Location;
    - ``stall``: the whole file's Content-Length, half the body, then silence on the open connection for 20 s;
    - ``slow-head``: the status line, then the headers a byte every 0.2 s (each read gets a byte in time), for 20 s;
    - ``gzip``: the body gzip-compressed in transit (``Content-Encoding: gzip``), though identity was asked;
    - ``brotli``: ``Content-Encoding: br`` (a compression the kit does not decode).

    ``head_headers`` adds headers to HEAD answers (the hub's ``X-Linked-Etag``)."""

    files: dict[str, bytes] = {}
    truncate: set[str] = set()
    faults: dict[str, str] = {}
    head_headers: dict[str, dict[str, str]] = {}
    requests: list[str] = []

    def fault(self) -> str | None:
        fault = self.faults.get(self.path) or self.faults.get("*")
        if fault in ("chunked-cut", "reset"):
            self.faults.pop(self.path, None)
        return fault

    def do_HEAD(self):  # noqa: N802
        if (self.faults.get(self.path) or self.faults.get("*")) in ("portal", "portal-as-text"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PORTAL_PAGE)))
            self.end_headers()
            return
        ok = self.path in self.files
        self.send_response(200 if ok else 404)
        for name, value in self.head_headers.get(self.path, {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(self.files.get(self.path, b""))))
        self.end_headers()

    def do_GET(self):  # noqa: N802
        self.requests.append(self.path)
        fault = self.fault()
        if fault in ("portal", "portal-as-text", "error-page"):
            self.send_response(500 if fault == "error-page" else 200)
            self.send_header("Content-Type", "text/plain" if fault == "portal-as-text" else "text/html; charset=utf-8")
            page = (b"\n" if fault == "portal-as-text" else b"") + PORTAL_PAGE
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if fault == "redirect-loop":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fault == "slow-head":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            try:
                for byte in b"X-Padding: " + b"." * 100:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up: what a deadline is for
            self.close_connection = True
            return
        if fault in ("redirect-ftp", "redirect-nowhere"):
            self.send_response(302)
            if fault == "redirect-ftp":
                self.send_header("Location", f"ftp://127.0.0.1:1{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range") and fault != "ignore-range":
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            if fault == "range-from-zero":
                start = 0
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            if fault == "range-lie":
                start = 0
                self.send_header("Content-Length", str(len(body) - int(self.headers["Range"].split("=")[1].split("-")[0])))
                self.end_headers()
                self.wfile.write(body)  # more than announced: the whole file from byte 0
                self.close_connection = True
                return
        else:
            self.send_response(200)
        payload = body[start:]
        if fault in ("gzip", "brotli"):
            self.send_header("Content-Encoding", "gzip" if fault == "gzip" else "br")
            payload = gzip.compress(payload) if fault == "gzip" else bytes(range(256)) * 8
        if fault == "no-length-cut":  # HTTP/1.0-style: the end of the body is where the connection closes
            cut = payload.index(b"\n", len(payload) // 2) - 5
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload[:cut])
            self.close_connection = True
            return
        if fault == "stall":
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            time.sleep(20)  # the connection stays open: only the client's own bound ends the wait
            return
        if fault == "trickle":
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            try:
                for at in range(0, len(payload), 60):
                    self.wfile.write(payload[at:at + 60])
                    self.wfile.flush()
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up: what a trickle is for
            return
        if fault in ("chunked", "chunked-cut"):  # no length; a cut: half the body, then half a chunk, and silence
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            end, piece = (len(payload) // 2 if fault == "chunked-cut" else len(payload)), 8192
            for at in range(0, end, piece):
                chunk = payload[at:min(at + piece, end)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"%x\r\n%s" % (piece, payload[end:end + piece // 2]) if fault == "chunked-cut" else b"0\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.path in self.truncate:
            payload = payload[: len(payload) // 2]
            self.truncate.discard(self.path)
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@contextmanager
def serving():
    """The mirror's base address while the block runs; files, truncations and the request log start empty."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.files, Handler.truncate, Handler.faults, Handler.head_headers, Handler.requests = {}, set(), {}, {}, []
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def simcse_release(data_dir: Path) -> dict[str, bytes]:
    """The files of SimCSE's release as the kit asks for them, built from a local data directory:
    ``senteval.tar`` with the tasks under ``downstream/`` (as SimCSE packs it), and the Wikipedia sentences
    as ``wiki1m_for_simcse.txt``."""
    senteval = data_dir / "senteval"
    members = {f"downstream/{path.relative_to(senteval)}": path.read_bytes()
               for path in sorted(senteval.rglob("*")) if path.is_file()}
    return {"/senteval.tar": tarball(members),
            "/wiki1m_for_simcse.txt": (data_dir / "wiki" / "wiki_sentences.txt").read_bytes()}

