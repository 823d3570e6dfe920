"""Downloads and extraction against a local HTTP server on 127.0.0.1."""

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
from httpmirror import Handler, serving, simcse_release, tarball

from nlsup_kit.data.download import download_text, fetch, safe_extract
from nlsup_kit.data.senteval import download_senteval
from nlsup_kit.errors import NlsupError


@pytest.fixture
def server():
    with serving() as address:
        yield address


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
    Handler.files["/senteval.tar"] = simcse_release(data_dir)["/senteval.tar"]
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


# ensure_data: the one call the notebooks, the trainer and the CLI use to find or fetch their data.

def test_ensure_data_fetches_missing_data_from_the_mirror_once(server, tmp_path, data_dir, monkeypatch):
    from nlsup_kit.data import ensure_data
    from nlsup_kit.data.senteval import load_sts_task

    Handler.files = simcse_release(data_dir)
    monkeypatch.setenv("NLSUP_MIRROR", server)
    (tmp_path / "mine").mkdir()
    assert ensure_data(["senteval", "wiki"], tmp_path / "mine", progress=False) == tmp_path / "mine"
    assert sorted(Handler.requests) == ["/SHA256SUMS", "/senteval.tar", "/wiki1m_for_simcse.txt"]  # none published
    assert (tmp_path / "mine/wiki/wiki_sentences.txt").read_bytes() == (data_dir / "wiki/wiki_sentences.txt").read_bytes()
    assert len(load_sts_task("STS12", tmp_path / "mine")) == 3108  # the shared data's README: 3108 scored pairs
    ensure_data(["senteval", "wiki"], tmp_path / "mine", progress=False)
    assert len(Handler.requests) == 3  # the second call finds everything and downloads nothing


def test_ensure_data_downloads_into_the_home_cache_when_no_folder_is_named(server, tmp_path, monkeypatch):
    from nlsup_kit.data import ensure_data

    Handler.files["/nli_for_simcse.csv"] = b"sent0,sent1,hard_neg\na,b,c\n"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NLSUP_DATA", raising=False)
    monkeypatch.setenv("NLSUP_MIRROR", server + "/")  # a trailing slash is fine
    folder = ensure_data(["nli"], progress=False)  # ../shared/data has no NLI file: the cache gets it
    assert folder == tmp_path / ".cache" / "nlsup-kit" / "data"
    assert (folder / "nli" / "nli_for_simcse.csv").read_bytes() == Handler.files["/nli_for_simcse.csv"]
    assert Handler.requests == ["/SHA256SUMS", "/nli_for_simcse.csv"]


def test_ensure_data_in_a_checkout_reads_the_shared_folder_without_downloading(server, data_dir, monkeypatch,
                                                                                 tmp_path):
    from nlsup_kit.data import ensure_data

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NLSUP_DATA", raising=False)
    monkeypatch.setenv("NLSUP_MIRROR", server)
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    assert ensure_data(["senteval", "wiki", "digits", "spoken-words"]) == shared
    assert Handler.requests == [] and not (tmp_path / ".cache").exists()


def test_ensure_data_offline_is_one_line_in_about_a_second(tmp_path, monkeypatch):
    import socket
    import time

    from nlsup_kit.data import ensure_data

    with socket.socket() as held:  # bound, never listening: connections are refused, and no one else takes it
        held.bind(("127.0.0.1", 0))
        monkeypatch.setenv("NLSUP_MIRROR", f"http://127.0.0.1:{held.getsockname()[1]}")
        (tmp_path / "empty").mkdir()
        started = time.perf_counter()
        with pytest.raises(NlsupError) as err:
            ensure_data(["senteval", "wiki"], tmp_path / "empty")
        assert time.perf_counter() - started < 2
    message = str(err.value)
    assert "\n" not in message and "NLSUP_MIRROR" in message and "senteval, wiki not in" in message
    assert list((tmp_path / "empty").iterdir()) == []  # nothing written


def test_ensure_data_names_an_unknown_item():
    from nlsup_kit.data import ensure_data

    with pytest.raises(NlsupError, match="unknown data 'wikipedia'; choose from senteval, wiki"):
        ensure_data(["wikipedia"])


def test_error_shows_as_one_line_in_jupyter(capsys):
    """IPython asks an exception for _render_traceback_: a learner sees the kit's line, not a traceback."""
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.instance().run_cell("from nlsup_kit.errors import NlsupError\n"
                                         "raise NlsupError('data.txt:3: gold score is not a number')")
    shown = capsys.readouterr()
    assert "NlsupError: data.txt:3: gold score is not a number" in shown.out + shown.err
    assert "Traceback" not in shown.out + shown.err
