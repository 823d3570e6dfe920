"""Downloads and extraction against a local HTTP server on 127.0.0.1."""

import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest

from nlsup_kit.data.download import download_senteval, download_text, fetch, safe_extract
from nlsup_kit.errors import NlsupError


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    truncate: set[str] = set()

    def do_GET(self):  # noqa: N802
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


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.files, Handler.truncate = {}, set()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_fetch_checks_sha_and_writes_atomically(server, tmp_path):
    Handler.files["/f.txt"] = b"hello world\n" * 100
    good = hashlib.sha256(Handler.files["/f.txt"]).hexdigest()
    assert fetch(f"{server}/f.txt", tmp_path / "f.txt", sha256=good, progress=False).read_bytes() \
        == Handler.files["/f.txt"]
    with pytest.raises(NlsupError, match="sha256"):
        fetch(f"{server}/f.txt", tmp_path / "g.txt", sha256="0" * 64, progress=False)
    assert not (tmp_path / "g.txt").exists() and not (tmp_path / "g.txt.part").exists()


def test_truncated_download_is_kept_as_part_and_resumed(server, tmp_path):
    body = bytes(range(256)) * 1000
    Handler.files["/big.bin"] = body
    Handler.truncate.add("/big.bin")
    with pytest.raises(NlsupError):
        fetch(f"{server}/big.bin", tmp_path / "big.bin", progress=False)
    assert not (tmp_path / "big.bin").exists()
    assert 0 < (tmp_path / "big.bin.part").stat().st_size < len(body)
    assert fetch(f"{server}/big.bin", tmp_path / "big.bin", progress=False).read_bytes() == body


def test_unreachable_server_is_one_line_error(tmp_path):
    with pytest.raises(NlsupError, match="failed"):
        fetch("http://127.0.0.1:9/nothing", tmp_path / "x", progress=False)


def test_archive_escaping_the_target_is_refused(tmp_path):
    archive = tmp_path / "evil.tar"
    archive.write_bytes(tarball({"ok.txt": b"fine", "../escape.txt": b"bad"}))
    with pytest.raises(NlsupError, match="unsafe"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_archive_link_to_outside_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        link = tarfile.TarInfo("passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    (tmp_path / "link.tar").write_bytes(buffer.getvalue())
    with pytest.raises(NlsupError, match="unsafe"):
        safe_extract(tmp_path / "link.tar", tmp_path / "out")


def test_absolute_member_lands_inside_the_target(tmp_path):
    name = f"/tmp/nlsup-absolute-{tmp_path.name}.txt"
    (tmp_path / "abs.tar").write_bytes(tarball({name: b"contained"}))
    safe_extract(tmp_path / "abs.tar", tmp_path / "out")
    assert not Path(name).exists()
    assert (tmp_path / "out" / name.lstrip("/")).read_bytes() == b"contained"


def test_senteval_download_unpacks_and_verifies_layout(server, tmp_path, data_dir):
    """SimCSE's senteval.tar keeps the tasks under downstream/; build one from the real files."""
    members = {}
    for path in (data_dir / "senteval").rglob("*"):
        if path.is_file() and path.suffix in (".txt", ".csv"):
            members[f"downstream/{path.relative_to(data_dir / 'senteval')}"] = path.read_bytes()
    Handler.files["/senteval.tar"] = tarball(members)
    target = download_senteval(tmp_path, f"{server}/senteval.tar", progress=False)
    assert target == tmp_path / "senteval"
    assert (target / "STS" / "STS12-en-test" / "STS.input.MSRpar.txt").is_file()
    assert not list(tmp_path.glob(".senteval-*"))


def test_senteval_download_rejects_broken_archive(server, tmp_path):
    Handler.files["/senteval.tar"] = tarball({"downstream/STS/readme.txt": b"nothing useful"})
    with pytest.raises(NlsupError, match="STS.input"):
        download_senteval(tmp_path, f"{server}/senteval.tar", progress=False)
    assert not (tmp_path / "senteval").exists()


def test_wiki_slice_keeps_first_lines(server, tmp_path):
    Handler.files["/wiki.txt"] = "".join(f"sentence {i}\n" for i in range(1000)).encode()
    path = download_text("wiki1m", tmp_path, f"{server}/wiki.txt", max_lines=10, progress=False)
    assert path.read_text().splitlines() == [f"sentence {i}" for i in range(10)]
    assert path.name == "wiki1m_for_simcse.first10.txt"  # never mistaken for the full corpus


def test_served_archive_escaping_the_target_is_refused(server, tmp_path):
    """A malicious archive from the server: nothing lands outside the data directory, no senteval/ appears."""
    Handler.files["/senteval.tar"] = tarball({"downstream/STS/readme.txt": b"x", "../../escape.txt": b"bad"})
    with pytest.raises(NlsupError, match="unsafe"):
        download_senteval(tmp_path / "data", f"{server}/senteval.tar", progress=False)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "data" / "escape.txt").exists()
    assert not (tmp_path / "data" / "senteval").exists()


def test_served_truncated_archive_is_one_line_error_and_leaves_no_folder(server, tmp_path):
    whole = tarball({f"downstream/STS/file{i}.txt": bytes(5000) for i in range(20)})
    Handler.files["/senteval.tar"] = whole[: len(whole) // 3]
    with pytest.raises(NlsupError) as err:
        download_senteval(tmp_path, f"{server}/senteval.tar", progress=False)
    assert "senteval.tar" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "senteval").exists()
