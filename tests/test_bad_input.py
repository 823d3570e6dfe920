"""Bad input of every kind gives one line `error: ...` naming the file and line or the setting, exit code 2,
and leaves what was already written alone. Property-based tests for the STS and corpus readers."""

import json
import re
import tempfile
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlsup_kit.cli import main
from nlsup_kit.data.senteval import load_sts_task
from nlsup_kit.data.text import read_corpus
from nlsup_kit.errors import NlsupError

STSB_ROW = "main-captions\tMSRvid\t2012test\t0001\t{score}\t{first}\t{second}\n"


def one_error_line(capsys, argv) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---- STS files ------------------------------------------------------------------------------------------------

def stsb_tree(root: Path, content: bytes | None) -> Path:
    folder = root / "senteval" / "STS" / "STSBenchmark"
    folder.mkdir(parents=True)
    if content is not None:
        (folder / "sts-test.csv").write_bytes(content)
    return root


GOOD = STSB_ROW.format(score="3.2", first="a man plays", second="a man is playing").encode()


@pytest.mark.parametrize("content, message", [
    (None, "sts-test.csv: file not found (run `nlsup download senteval`"),
    (GOOD + b"main\tMSRvid\t2012\t2\t3.0\tonly one sentence\n", "sts-test.csv:2: expected at least 7"),
    (GOOD + STSB_ROW.format(score="high", first="x", second="y").encode(), "sts-test.csv:2: gold score 'high'"),
    (GOOD + STSB_ROW.format(score="7.5", first="x", second="y").encode(), "sts-test.csv:2: gold score 7.5 is "),
    (b"", "sts-test.csv: file is empty"),
    (GOOD + STSB_ROW.format(score="1", first="caf\xe9", second="y").encode("latin-1"), "sts-test.csv:2: not valid"),
])
def test_sts_file_problems(tiny_model, tmp_path, capsys, content, message):
    root = stsb_tree(tmp_path, content)
    err = one_error_line(capsys, ["eval-sts", "--model", tiny_model, "--tasks", "STSBenchmark", "--data-dir", root])
    assert message in err


def test_sts_input_and_gold_of_different_lengths(tiny_model, tmp_path, capsys):
    folder = tmp_path / "senteval" / "STS" / "STS12-en-test"
    folder.mkdir(parents=True)
    (folder / "STS.input.MSRpar.txt").write_text("a b\tc d\ne f\tg h\n")
    (folder / "STS.gs.MSRpar.txt").write_text("4.0\n")
    err = one_error_line(capsys, ["eval-sts", "--model", tiny_model, "--tasks", "STS12", "--data-dir", tmp_path])
    assert "STS.input.MSRpar.txt: 2 sentence pairs but STS.gs.MSRpar.txt has 1 gold line" in err


# ---- corpora ----------------------------------------------------------------------------------------------------

def train_argv(model, data_dir, out, *sets) -> list:
    argv = ["train", "--recipe", "quick-simcse", "--data-dir", data_dir, "--output-dir", out]
    for s in [f"model={model}", "max_steps=2", "eval_steps=2", "batch_size=4", "device=cpu", *sets]:
        argv += ["--set", s]
    return argv


@pytest.mark.parametrize("content, message", [
    (b"", "corpus.txt: no sentences (the file is empty or only blank lines)"),
    (b"\n   \n\t\n", "corpus.txt: no sentences"),
    (b"fine\nalso fine\nbad \xff byte\n", "corpus.txt:3: not valid UTF-8 text (set bad_text=skip"),
])
def test_corpus_problems_fail_and_leave_the_previous_run_intact(tiny_model, data_dir, tmp_path, capsys,
                                                                 content, message):
    good = tmp_path / "good.txt"
    good.write_text("".join(f"sentence number {i} of the good corpus\n" for i in range(16)))
    out = tmp_path / "run"
    assert main([str(a) for a in train_argv(tiny_model, data_dir, out, f"text_data={good}")]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = tmp_path / "corpus.txt"
    bad.write_bytes(content)
    capsys.readouterr()
    # even with --overwrite, bad data is found before the earlier run is touched
    err = one_error_line(capsys, [*train_argv(tiny_model, data_dir, out, f"text_data={bad}"), "--overwrite"])
    assert message in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_corpus_skip_mode_counts_bad_long_and_duplicate_lines(tiny_model, data_dir, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    lines = [f"plain sentence {i}".encode() for i in range(10)]
    lines += [b"bad \xff byte", b"also \xfe bad", b"plain sentence 3", " ".join(["word"] * 80).encode()]
    corpus.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "run"
    assert main([str(a) for a in train_argv(tiny_model, data_dir, out, f"text_data={corpus}", "bad_text=skip")]) == 0
    err = capsys.readouterr().err
    assert "2 lines skipped (not UTF-8), 1 duplicate sentence, 1 sentence truncated to max_length" in err
    report = json.loads((out / "result.json").read_text())["text_data"]
    assert (report["sentences"], report["skipped_not_utf8"], report["duplicates"], report["truncated"]) == (12, 2, 1, 1)


# ---- images -----------------------------------------------------------------------------------------------------

def image_tree(root: Path, classes=("cat", "dog"), per_class=4) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def image_argv(model, data_dir, out, folder) -> list:
    argv = ["train", "--recipe", "quick-visualcse", "--data-dir", data_dir, "--output-dir", out]
    for s in [f"model={model}", "max_steps=1", "batch_size=4", "modality_batch_size=4", "image_size=16",
              "patch_size=8", f"modality_data={folder}", "device=cpu"]:
        argv += ["--set", s]
    return argv


def test_image_folder_problems(tiny_model, data_dir, tmp_path, capsys):
    folder = image_tree(tmp_path / "images", per_class=2)  # one batch of 4: every image is decoded
    runs = (tmp_path / f"run{i}" for i in range(10))  # a fresh folder each: a failed run's folder is kept
    (folder / "cat" / "notes.png").write_text("this is not an image")
    err = one_error_line(capsys, image_argv(tiny_model, data_dir, next(runs), folder))
    assert "notes.png: not a readable image" in err

    (folder / "cat" / "notes.png").unlink()
    good = (folder / "dog" / "0.png").read_bytes()
    (folder / "dog" / "0.png").write_bytes(good[: len(good) // 2])  # truncated: the header still reads
    err = one_error_line(capsys, image_argv(tiny_model, data_dir, next(runs), folder))
    assert "0.png: not a readable image" in err

    err = one_error_line(capsys, [*image_argv(tiny_model, data_dir, next(runs), folder),
                                  "--set", "num_workers=1"])  # raised in a loader worker: still one line
    assert err.startswith("error: ") and "0.png: not a readable image" in err

    (folder / "dog" / "0.png").write_bytes(good)
    (folder / "owl").mkdir()
    err = one_error_line(capsys, image_argv(tiny_model, data_dir, next(runs), folder))
    assert "class folder 'owl' has no images" in err

    single = image_tree(tmp_path / "single", classes=("cat",), per_class=4)
    err = one_error_line(capsys, image_argv(tiny_model, data_dir, next(runs), single))
    assert "1 class; modality_loss=supcon clusters by class and needs at least 2" in err


def test_sixteen_bit_and_other_modes_become_8_bit_rgb(tmp_path):
    from PIL import Image

    from nlsup_kit.data.decoding import rgb as decoded

    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(ramp).save(tmp_path / "deep.png")  # mode I;16
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    rgb = np.asarray(decoded(str(tmp_path / "deep.png")))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    expected = np.clip(ramp / 65535 * 255, 0, 255).astype(np.uint8)
    assert np.array_equal(rgb[..., 0], expected) and len(np.unique(rgb)) > 32  # not clipped to white
    for mode in ("L", "RGBA", "CMYK", "P", "LA", "1"):
        Image.new(mode, (6, 5)).save(tmp_path / f"{mode}.{'jpg' if mode == 'CMYK' else 'png'}")
        assert decoded(str(tmp_path / f"{mode}.{'jpg' if mode == 'CMYK' else 'png'}")).mode == "RGB"


# ---- audio ------------------------------------------------------------------------------------------------------

def write_wav(path: Path, samples: np.ndarray, rate: int = 16000, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


def test_audio_problems_name_the_file(tmp_path):
    from nlsup_kit.data.audio import load_audio, read_audio

    with pytest.raises(NlsupError, match=r"empty.wav: empty audio file \(0 samples\)"):
        read_audio(write_wav(tmp_path / "empty.wav", np.zeros(0)))
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00junk that is not audio")
    with pytest.raises(NlsupError, match="corrupt.wav: not a readable audio file"):
        read_audio(tmp_path / "corrupt.wav")
    # stereo at 44.1 kHz: mixed to mono and resampled; a 5 ms clip (shorter than a window and a patch) works
    stereo = np.stack([np.sin(np.arange(4410) / 10), np.zeros(4410)], axis=1).reshape(-1) * 0.5
    assert read_audio(write_wav(tmp_path / "stereo.wav", stereo, 44100, 2)).shape == (1600,)
    for label in ("a", "b"):
        (tmp_path / "clips" / label).mkdir(parents=True)
        write_wav(tmp_path / "clips" / label / "short.wav", np.full(80, 0.1))
    clips = load_audio(str(tmp_path / "clips"), tmp_path, 32, 64, None)
    view1, view2, label = clips[0]
    assert view1.shape == (64, 32) and np.isfinite(view1.numpy()).all()


# ---- settings ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["train", "--recipe", "quick-simcce"], "did you mean 'quick-simcse'"),
    (["train", "--recipe", "quick-simcse", "--set", "batch_sise=4"], "did you mean 'batch_size'"),
    (["train", "--recipe", "quick-simcse", "--set", "learning_rate=fast"], "expected float"),
    (["train", "--recipe", "quick-simcse", "--set", "learning_rate=0"], "learning_rate=0.0"),
    (["train", "--recipe", "quick-simcse", "--set", "learning_rate=-1e-5"], "learning_rate=-1e-05"),
    (["train", "--recipe", "quick-simcse", "--set", "batch_size=1"], "at least 2 for a contrastive loss"),
    (["train", "--recipe", "quick-simcse", "--set", "bad_text=ignore"], "bad_text"),
    (["eval-sts", "--model", "minilm-l6", "--data-dir", "/nonexistent/nlsup"], "does not exist"),
    (["train", "--recipe", "quick-simcse", "--data-dir", "/nonexistent/nlsup"], "does not exist"),
])
def test_bad_settings(argv, message, capsys):
    assert message in one_error_line(capsys, argv)


def test_hub_model_while_offline(monkeypatch, capsys, data_dir):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = one_error_line(capsys, ["eval-sts", "--model", "bert-base-uncased", "--data-dir", str(data_dir)])
    assert "cannot be reached" in err and "minilm-l6" in err


# ---- property-based: the readers ------------------------------------------------------------------------------

sentence = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=30).filter(
    lambda s: s.strip() != "")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(sentence, sentence, st.floats(0, 5, allow_nan=False)), min_size=1, max_size=20))
def test_stsb_reader_round_trips_any_sentences_and_scores(rows):
    with tempfile.TemporaryDirectory() as tmp:
        content = "".join(STSB_ROW.format(score=repr(score), first=a, second=b) for a, b, score in rows)
        root = stsb_tree(Path(tmp), content.encode("utf-8"))
        pairs = load_sts_task("STSBenchmark", root)
    # SentEval's whitespace round trip, written here independently of the kit's normalise()
    assert pairs.sentences1 == [re.sub(r"\s+", " ", a).strip() for a, _, _ in rows]
    assert pairs.sentences2 == [re.sub(r"\s+", " ", b).strip() for _, b, _ in rows]
    assert pairs.scores == [score for _, _, score in rows]


def test_sentences_are_whitespace_normalised_as_senteval_does(tmp_path):
    root = stsb_tree(tmp_path, STSB_ROW.format(score="2.5", first="  A  man\u00a0plays ", second="a\u2003guitar .").encode())
    pairs = load_sts_task("STSBenchmark", root)
    assert (pairs.sentences1, pairs.sentences2, pairs.scores) == (["A man plays"], ["a guitar ."], [2.5])


@settings(max_examples=60, deadline=None)
@given(st.lists(sentence, min_size=1, max_size=20), st.floats(allow_nan=True).filter(lambda x: not 0 <= x <= 5),
       st.integers(0, 19))
def test_stsb_reader_names_the_line_of_any_bad_score(rows, bad_score, where):
    where = min(where, len(rows) - 1)
    lines = [STSB_ROW.format(score=bad_score if i == where else "2.5", first=s, second=s) for i, s in enumerate(rows)]
    with tempfile.TemporaryDirectory() as tmp:
        root = stsb_tree(Path(tmp), "".join(lines).encode("utf-8"))
        with pytest.raises(NlsupError, match=rf"sts-test.csv:{where + 1}: gold score"):
            load_sts_task("STSBenchmark", root)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(sentence, st.just(""), st.just("   "), st.binary(min_size=1, max_size=8).map(
    lambda b: b"\xff" + b.replace(b"\n", b""))), min_size=1, max_size=30))
def test_corpus_reader_keeps_good_lines_and_counts_the_rest(lines):
    raw = [line if isinstance(line, bytes) else line.encode("utf-8") for line in lines]
    good = [line.strip() for line in lines if isinstance(line, str) and line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.txt"
        path.write_bytes(b"\n".join(raw) + b"\n")
        if not good:
            with pytest.raises(NlsupError, match="no sentences"):
                read_corpus(path, bad_text="skip")
            return
        sentences = read_corpus(path, bad_text="skip")
        assert sentences == good
        assert sentences.report.skipped_not_utf8 == sum(isinstance(line, bytes) for line in lines)
        assert sentences.report.duplicates == len(good) - len(set(good))
        if any(isinstance(line, bytes) for line in lines):
            with pytest.raises(NlsupError, match=r"corpus.txt:\d+: not valid UTF-8"):
                read_corpus(path)
