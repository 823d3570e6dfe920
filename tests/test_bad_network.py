"""Networks and disks as a learner meets them: a Wi-Fi sign-in portal, a cut connection, a reset, an error page,
a mirror address with a typo, a published checksum that does not match, a read-only or full disk. Each is one
``error:`` line (exit 2 from the CLI, NlsupError from ensure_data), and nothing is kept that is not the real
file; a cut transfer resumes to a byte-identical copy. The server is tests/httpmirror.py on 127.0.0.1."""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from httpmirror import Handler, serving, simcse_release

from nlsup_kit.cli import main
from nlsup_kit.data.download import OFFICIAL_REPO, fetch
from nlsup_kit.data.paths import NLI_CSV
from nlsup_kit.data.text import WIKI1M
from nlsup_kit.errors import NlsupError

WHAT = {"senteval": "/senteval.tar", "wiki": "/wiki1m_for_simcse.txt", "wiki1m": "/wiki1m_for_simcse.txt",
        "nli": "/nli_for_simcse.csv"}
NLI = b"sent0,sent1,hard_neg\n" + b"".join(b"a man plays %d,someone plays,nobody plays\n" % i for i in range(300))


@pytest.fixture(scope="module")
def release(data_dir) -> dict[str, bytes]:
    return {**simcse_release(data_dir), "/nli_for_simcse.csv": NLI}


@pytest.fixture
def mirror(release, monkeypatch):
    with serving() as address:
        Handler.files = dict(release)
        monkeypatch.setenv("NLSUP_MIRROR", address)
        yield address


def download(what: str, folder: Path, capsys) -> tuple[int, str]:
    """``nlsup download WHAT --data-dir FOLDER``: the exit code and what it printed to stderr."""
    code = main(["download", what, "--data-dir", str(folder)])
    return code, capsys.readouterr().err


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def one_error_line(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("fault", ["portal", "portal-as-text"])
@pytest.mark.parametrize("what", list(WHAT))
def test_a_sign_in_portal_is_never_kept_as_data(mirror, tmp_path, capsys, what, fault):
    Handler.faults["*"] = fault
    line = one_error_line(*download(what, tmp_path, capsys))
    assert f"{mirror}{WHAT[what]}" in line or f"{mirror}/SHA256SUMS" in line, line
    assert "a sign-in portal or an error page? open the address in a browser" in line
    assert files_under(tmp_path) == []


def test_ensure_data_behind_a_portal_is_one_line_and_writes_nothing(mirror, tmp_path):
    from nlsup_kit.data import ensure_data

    Handler.faults["*"] = "portal-as-text"
    with pytest.raises(NlsupError) as err:
        ensure_data(["wiki", "senteval"], tmp_path, progress=False)
    assert "\n" not in str(err.value) and "sign-in portal" in str(err.value)
    assert files_under(tmp_path) == []


def test_an_error_page_is_its_status_in_one_line(mirror, tmp_path, capsys):
    Handler.faults["/senteval.tar"] = "error-page"
    line = one_error_line(*download("senteval", tmp_path, capsys))
    assert f"download of {mirror}/senteval.tar failed: HTTP 500" in line
    assert files_under(tmp_path) == []


def test_a_cut_chunked_transfer_keeps_its_part_and_the_next_run_resumes_it_byte_for_byte(mirror, release,
                                                                                       tmp_path, capsys):
    Handler.faults["/senteval.tar"] = "chunked-cut"
    line = one_error_line(*download("senteval", tmp_path, capsys))
    assert "the connection was cut in the middle of the transfer" in line and "is kept" in line
    part = tmp_path / "downloads" / "senteval.tar.part"
    assert 0 < part.stat().st_size < len(release["/senteval.tar"])
    assert files_under(tmp_path) == ["downloads/senteval.tar.part"]
    assert download("senteval", tmp_path, capsys)[0] == 0
    assert (tmp_path / "downloads" / "senteval.tar").read_bytes() == release["/senteval.tar"]
    assert (tmp_path / "senteval" / "STS" / "STSBenchmark" / "sts-test.csv").is_file()


def test_ensure_data_after_a_cut_wiki_slice_keeps_nothing_and_then_gets_it_whole(mirror, release, tmp_path):
    from nlsup_kit.data import ensure_data

    Handler.faults["/wiki1m_for_simcse.txt"] = "chunked-cut"
    (tmp_path / "senteval").symlink_to(Path(ensure_data(["senteval"])) / "senteval")
    with pytest.raises(NlsupError) as err:
        ensure_data(["senteval", "wiki"], tmp_path, progress=False)
    assert "cut" in str(err.value) and "the partial slice was deleted" in str(err.value)
    assert not (tmp_path / "wiki").exists() or files_under(tmp_path / "wiki") == []
    ensure_data(["senteval", "wiki"], tmp_path, progress=False)
    assert (tmp_path / "wiki" / "wiki_sentences.txt").read_bytes() == release["/wiki1m_for_simcse.txt"]


def test_a_body_shorter_than_its_length_resumes_to_the_same_bytes(mirror, release, tmp_path, capsys):
    Handler.truncate.add("/wiki1m_for_simcse.txt")
    line = one_error_line(*download("wiki1m", tmp_path, capsys))
    assert "is incomplete" in line and "is kept" in line
    assert download("wiki1m", tmp_path, capsys)[0] == 0
    assert (tmp_path / WIKI1M).read_bytes() == release["/wiki1m_for_simcse.txt"]


def test_a_reset_connection_is_one_line(mirror, tmp_path, capsys):
    Handler.faults["/nli_for_simcse.csv"] = "reset"
    line = one_error_line(*download("nli", tmp_path, capsys))
    assert f"{mirror}/nli_for_simcse.csv failed (" in line
    assert any(words in line for words in ("reset", "closed the connection")), line
    assert files_under(tmp_path) == []


def test_a_server_that_never_answers_is_one_line_after_the_timeout(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/wiki1m_for_simcse.txt"
        with pytest.raises(NlsupError, match=r"no answer within 0.5 s"):
            fetch(url, tmp_path / "w.txt", sha256="0" * 64, progress=False, timeout=0.5)
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("address", ["htp://mirror.example", "http://", "localhost:8000/data", "http://[::1"])
def test_a_mirror_address_that_is_not_an_address_is_one_line(address, tmp_path, monkeypatch, capsys):
    from nlsup_kit.data import ensure_data

    monkeypatch.setenv("NLSUP_MIRROR", address)
    line = one_error_line(*download("senteval", tmp_path / "cli", capsys))
    assert f"NLSUP_MIRROR={address!r} is not an address" in line
    with pytest.raises(NlsupError, match="is not an address"):
        ensure_data(["wiki"], tmp_path / "cli", progress=False)
    assert files_under(tmp_path) == []


def test_a_mirror_sha256sums_is_checked_before_the_file_is_kept(mirror, release, tmp_path, capsys):
    body = release["/nli_for_simcse.csv"]
    Handler.files["/SHA256SUMS"] = f"{hashlib.sha256(body).hexdigest()}  nli_for_simcse.csv\n".encode()
    assert download("nli", tmp_path / "good", capsys)[0] == 0
    assert (tmp_path / "good" / "nli" / "nli_for_simcse.csv").read_bytes() == body

    Handler.files["/SHA256SUMS"] = f"{'ab' * 32} *nli_for_simcse.csv\n".encode()
    line = one_error_line(*download("nli", tmp_path / "bad", capsys))
    assert f"but {mirror}/SHA256SUMS publishes {'ab' * 32}: not the file asked for; it was deleted" in line
    assert files_under(tmp_path / "bad") == []

    Handler.files["/SHA256SUMS"] = b"# checksums\nthis is not a checksum\n"
    line = one_error_line(*download("nli", tmp_path / "garbled", capsys))
    assert f"{mirror}/SHA256SUMS:2: not a sha256sum line" in line
    assert files_under(tmp_path / "garbled") == []


def test_the_hubs_published_sha256_decides(release, tmp_path, monkeypatch, capsys):
    """The official source is the hub (HF_ENDPOINT here): huggingface_hub reads the file's X-Linked-Etag."""
    monkeypatch.delenv("NLSUP_MIRROR", raising=False)
    path = f"/datasets/{OFFICIAL_REPO}/resolve/main/senteval.tar"
    with serving() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub)
        Handler.files[path] = release["/senteval.tar"]
        Handler.head_headers[path] = {"X-Linked-Etag": f'"{hashlib.sha256(release["/senteval.tar"]).hexdigest()}"'}
        assert download("senteval", tmp_path / "good", capsys)[0] == 0
        whole = release["/senteval.tar"]
        Handler.files[path] = whole[:len(whole) // 2] + b"x" + whole[len(whole) // 2 + 1:]  # one byte differs
        line = one_error_line(*download("senteval", tmp_path / "bad", capsys))
    assert "but the Hugging Face hub publishes" in line and "it was deleted" in line
    assert "/SHA256SUMS" not in Handler.requests  # the hub's own record, not a mirror's list
    assert files_under(tmp_path / "bad") == []


def test_a_data_folder_under_a_file_is_one_line(mirror, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    line = one_error_line(*download("wiki", tmp_path / "file" / "data", capsys))
    assert f"{tmp_path / 'file' / 'data'}" in line and "NLSUP_DATA" in line


DISK_DRIVER = """
import contextlib, io, json, sys
from nlsup_kit.cli import main
out = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(args)
    out.append([code, err.getvalue()])
print(json.dumps(out))
"""


def test_a_read_only_or_full_disk_is_one_line_and_keeps_nothing_broken(mirror, tmp_path):
    """Real file systems in a mount namespace of their own: a read-only tmpfs, and a 256 KB tmpfs that the
    archive (announced length: refused before the transfer) or the chunked corpus (no length: the disk fills
    during it) cannot fit."""
    if not shutil.which("unshare"):
        pytest.fail("unshare not found: install util-linux (.ci/run does)", pytrace=False)
    read_only, full = tmp_path / "read-only", tmp_path / "full"
    read_only.mkdir(), full.mkdir()
    Handler.faults["/wiki1m_for_simcse.txt"] = "chunked"  # no Content-Length: the disk fills as it arrives
    cases = [["download", "wiki", "--data-dir", str(read_only)], ["download", "senteval", "--data-dir", str(full)],
             ["download", "wiki1m", "--data-dir", str(full)]]
    script = (f"mount -t tmpfs -o ro tmpfs {read_only} && mount -t tmpfs -o size=256k tmpfs {full} && "
              f'"$0" "$@" && ls -R {read_only} {full}')
    done = subprocess.run(["unshare", "--mount", "sh", "-c", script, sys.executable, "-c", DISK_DRIVER,
                           json.dumps(cases)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TQDM_DISABLE": "1"})
    assert done.returncode == 0, done.stderr
    printed, listing = done.stdout.split("\n", 1)
    (ro_code, ro_err), (space_code, space_err), (fill_code, fill_err) = json.loads(printed)
    assert f"{read_only / 'wiki'}: read-only file system; point NLSUP_DATA" in one_error_line(ro_code, ro_err)
    line = one_error_line(space_code, space_err)
    assert f"no space left on {full / 'downloads'}: " in line and "MB needed" in line, line
    line = one_error_line(fill_code, fill_err)
    assert f"no space left on {full}" in line, line
    assert "senteval.tar" not in listing and "wiki1m_for_simcse.txt\n" not in listing, listing


ONLINE_DRIVER = textwrap.dedent("""
    import contextlib, io, json, sys
    from nlsup_kit.cli import main
    out = []
    for what in ("imagenette", "librispeech"):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            out.append([main(["download", what, "--data-dir", sys.argv[1]]), err.getvalue()])
    from nlsup_kit.errors import NlsupError
    from nlsup_kit.embeddings.branch import ModalityBranch
    try:
        ModalityBranch.with_vit_embeddings("google/vit-base-patch16-224-in21k", 768)
        out.append([0, ""])
    except NlsupError as error:
        out.append([2, f"error: {error}\\n"])
    print(json.dumps(out))
""")


def test_online_only_sources_fail_in_one_line_that_says_what_to_do(tmp_path):
    """Imagenette (torchvision), LibriSpeech (torchaudio) and the ViT weights (the hub, here HF_ENDPOINT on a
    closed port, with an empty hub cache): no network for any of them."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{closed.getsockname()[1]}",
               "HF_HOME": str(tmp_path / "hf"), "TQDM_DISABLE": "1"}
        done = subprocess.run(["unshare", "--net", sys.executable, "-c", ONLINE_DRIVER, str(tmp_path / "data")],
                              capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    (image_code, image_err), (audio_code, audio_err), (vit_code, vit_err) = json.loads(done.stdout)
    assert "modality_data=digits" in one_error_line(image_code, image_err)
    assert "modality_data=spoken-words" in one_error_line(audio_code, audio_err)
    line = one_error_line(vit_code, vit_err)
    assert "google/vit-base-patch16-224-in21k" in line and "vit_embeddings" in line, line


# Responses that do not answer what was asked (a misbehaving mirror): each ends with the exact file, or in one line
# with exit 2 and nothing wrong kept.

def half_part(folder: Path, release: dict[str, bytes]) -> Path:
    """A ``.part`` of wiki1m holding its first half, as a cut transfer leaves it."""
    part = folder / WIKI1M.with_name(WIKI1M.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    whole = release["/wiki1m_for_simcse.txt"]
    part.write_bytes(whole[:len(whole) // 2])
    return part


@pytest.mark.parametrize("fault", ["range-from-zero", "ignore-range"])
def test_a_resume_answered_from_byte_zero_starts_over_and_keeps_the_exact_file(mirror, release, tmp_path, capsys,
                                                                              fault):
    half_part(tmp_path, release)
    Handler.faults["/wiki1m_for_simcse.txt"] = fault
    assert download("wiki1m", tmp_path, capsys)[0] == 0
    assert (tmp_path / WIKI1M).read_bytes() == release["/wiki1m_for_simcse.txt"]
    assert files_under(tmp_path) == [str(WIKI1M)]


def test_a_resume_answered_with_other_bytes_than_announced_keeps_nothing_of_them(mirror, release, tmp_path, capsys):
    """The Content-Range says the bytes asked for; the body is the file from byte 0. Only the bytes the resume asks
    for again (the .part's last ones) can tell."""
    half_part(tmp_path, release)
    Handler.faults["/wiki1m_for_simcse.txt"] = "range-lie"
    line = one_error_line(*download("wiki1m", tmp_path, capsys))
    assert "differ from the ones the partial file holds" in line and "was deleted" in line
    assert files_under(tmp_path) == []
    Handler.faults.clear()
    assert download("wiki1m", tmp_path, capsys)[0] == 0
    assert (tmp_path / WIKI1M).read_bytes() == release["/wiki1m_for_simcse.txt"]


def test_a_trickle_stops_at_the_floor_rate_in_one_line_and_keeps_what_arrived(mirror, release, tmp_path, capsys,
                                                                             monkeypatch):
    import time

    monkeypatch.setenv("NLSUP_MIN_RATE", "2000/1")  # the test's short floor: 2,000 bytes/s over 1 s
    Handler.faults["/nli_for_simcse.csv"] = "trickle"  # about 600 bytes/s
    started = time.monotonic()
    line = one_error_line(*download("nli", tmp_path, capsys))
    assert time.monotonic() - started < 10
    assert "stalled" in line and "under the floor of 2,000 bytes/s over 1 s" in line and "is kept" in line
    part = tmp_path / NLI_CSV.with_name(NLI_CSV.name + ".part")
    assert 0 < part.stat().st_size < len(release["/nli_for_simcse.csv"])  # written from the first bytes
    assert part.read_bytes() == release["/nli_for_simcse.csv"][:part.stat().st_size]
    Handler.faults.clear()
    assert download("nli", tmp_path, capsys)[0] == 0
    assert (tmp_path / NLI_CSV).read_bytes() == release["/nli_for_simcse.csv"]


def test_a_floor_setting_that_is_not_one_is_one_line(mirror, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NLSUP_MIN_RATE", "fast")
    line = one_error_line(*download("nli", tmp_path, capsys))
    assert "NLSUP_MIN_RATE='fast': expected BYTES_PER_SECOND/SECONDS" in line


@pytest.mark.parametrize("what", ["wiki1m", "wiki"])
def test_a_body_without_its_length_cut_cleanly_is_not_kept(mirror, tmp_path, capsys, what):
    Handler.faults["/wiki1m_for_simcse.txt"] = "no-length-cut"
    line = one_error_line(*download(what, tmp_path, capsys))
    assert "middle of a line" in line
    assert files_under(tmp_path) == []


def test_a_redirect_loop_is_named_in_one_line(mirror, tmp_path, capsys):
    Handler.faults["/nli_for_simcse.csv"] = "redirect-loop"
    line = one_error_line(*download("nli", tmp_path, capsys))
    assert "redirected in a loop or more than 10 times (HTTP 302" in line
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("fault, words", [("redirect-ftp", "redirected to ftp://127.0.0.1:1/nli_for_simcse.csv, not an http or https address"),
                                          ("redirect-nowhere", "a redirect without an address to follow")])
def test_a_redirect_to_another_scheme_or_to_no_address_is_named_in_one_line(mirror, tmp_path, capsys, fault, words):
    Handler.faults["/nli_for_simcse.csv"] = fault
    line = one_error_line(*download("nli", tmp_path, capsys))
    assert words in line and "loop" not in line, line
    assert files_under(tmp_path) == []


def test_a_body_short_of_its_length_on_an_open_connection_stops_at_the_floor_and_resumes(mirror, release, tmp_path,
                                                                                          capsys, monkeypatch):
    import time

    monkeypatch.setenv("NLSUP_MIN_RATE", "1024/2")  # the test's short floor: no byte for 2 s is under it
    Handler.faults["/nli_for_simcse.csv"] = "stall"  # half the body, then 20 s of silence with the connection open
    started = time.monotonic()
    line = one_error_line(*download("nli", tmp_path, capsys))
    assert time.monotonic() - started < 10
    assert "no answer within 2 s" in line and "is kept" in line, line
    part = tmp_path / NLI_CSV.with_name(NLI_CSV.name + ".part")
    assert part.read_bytes() == release["/nli_for_simcse.csv"][:len(release["/nli_for_simcse.csv"]) // 2]
    Handler.faults.clear()
    assert download("nli", tmp_path, capsys)[0] == 0
    assert (tmp_path / NLI_CSV).read_bytes() == release["/nli_for_simcse.csv"]


@pytest.mark.parametrize("path", ["/nli_for_simcse.csv", "/SHA256SUMS"])
def test_an_answer_head_that_trickles_in_ends_at_the_floor_time_in_one_line(mirror, tmp_path, capsys, monkeypatch, path):
    import time

    monkeypatch.setenv("NLSUP_MIN_RATE", "1024/2")  # the test's short floor: 2 s for the whole head
    Handler.faults[path] = "slow-head"  # a header byte every 0.2 s, inside any per-read timeout
    started = time.monotonic()
    line = one_error_line(*download("nli", tmp_path, capsys))
    assert time.monotonic() - started < 10
    assert f"{mirror}/nli_for_simcse.csv failed (no answer within 2 s)" in line, line
    assert files_under(tmp_path) == []


def test_a_body_compressed_in_transit_is_decoded_and_an_unknown_compression_refused(mirror, release, tmp_path, capsys):
    Handler.faults["/wiki1m_for_simcse.txt"] = "gzip"
    assert download("wiki1m", tmp_path, capsys)[0] == 0
    assert (tmp_path / WIKI1M).read_bytes() == release["/wiki1m_for_simcse.txt"]
    Handler.faults["/nli_for_simcse.csv"] = "brotli"
    line = one_error_line(*download("nli", tmp_path, capsys))
    assert "br-compressed (Content-Encoding: br) which the kit does not decode" in line
    assert files_under(tmp_path) == [str(WIKI1M)]


def test_a_text_file_the_kit_did_not_check_into_its_cache_is_downloaded_again(mirror, release, tmp_path, capsys,
                                                                             monkeypatch):
    """An older version's spliced resume (half the file, then the whole file) left in the cache folder is not
    trusted; once the kit's own checks have put the file there, it is read as it is."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NLSUP_DATA", raising=False)
    cache = tmp_path / ".cache" / "nlsup-kit" / "data"
    (cache / WIKI1M).parent.mkdir(parents=True)
    whole = release["/wiki1m_for_simcse.txt"]
    (cache / WIKI1M).write_bytes(whole[:len(whole) // 2] + whole)
    assert main(["download", "wiki1m"]) == 0
    assert (cache / WIKI1M).read_bytes() == whole
    asked = len(Handler.requests)
    assert main(["download", "wiki1m"]) == 0
    assert len(Handler.requests) == asked  # the kit's own copy: not downloaded again
    named = tmp_path / "mine"
    (named / WIKI1M).parent.mkdir(parents=True)
    (named / WIKI1M).write_bytes(b"my own sentences\n")  # a folder the user names holds the user's files
    assert main(["download", "wiki1m", "--data-dir", str(named)]) == 0
    assert (named / WIKI1M).read_bytes() == b"my own sentences\n" and len(Handler.requests) == asked


def test_a_trickle_without_line_breaks_stops_the_wiki_slice_at_the_floor_too(mirror, tmp_path, capsys, monkeypatch):
    """The slice is read line by line; a line that never ends arrives in pieces, and each piece counts."""
    import time

    monkeypatch.setenv("NLSUP_MIN_RATE", "2000/1")
    Handler.files["/wiki1m_for_simcse.txt"] = b"a sentence that never ends " * 800  # 21,600 bytes, no line break
    Handler.faults["/wiki1m_for_simcse.txt"] = "trickle"  # about 600 bytes/s: 36 s for the whole body
    started = time.monotonic()
    line = one_error_line(*download("wiki", tmp_path, capsys))
    assert time.monotonic() - started < 10
    assert "stalled" in line and "the partial slice was deleted" in line
    assert files_under(tmp_path) == []
