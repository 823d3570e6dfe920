"""A data mirror on 127.0.0.1 for the tests: serves in-memory files under SimCSE's release names, honours
HTTP Range, can cut a body short once, and logs every request so a test can tell what was downloaded."""

from __future__ import annotations

import http.server
import io
import tarfile
import threading
from contextlib import contextmanager
from pathlib import Path


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    truncate: set[str] = set()
    requests: list[str] = []

    def do_GET(self):  # noqa: N802
        self.requests.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
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
    Handler.files, Handler.truncate, Handler.requests = {}, set(), []
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

