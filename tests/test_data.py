"""Text, image and audio readers."""

import numpy as np
import pytest
import torch

from nlsup_kit.data.text import load_text_data, read_corpus, sick_triples
from nlsup_kit.errors import NlsupError


def test_corpus_reader_skips_blank_lines_and_names_bad_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"first sentence\n\n  second one  \n")
    assert read_corpus(path) == ["first sentence", "second one"]
    path.write_bytes(b"fine\nalso fine\nbad \xff byte\n")
    with pytest.raises(NlsupError, match=r"corpus.txt:3: not valid UTF-8"):
        read_corpus(path)
    path.write_text("\n \n")
    with pytest.raises(NlsupError, match="no sentences"):
        read_corpus(path)


def test_sick_triples_follow_the_rule(data_dir):
    """Recount from the raw file: ENTAILMENT pairs whose premise has a CONTRADICTION partner on either side."""
    lines = (data_dir / "senteval/SICK/SICK_train.txt").read_text(encoding="utf-8").splitlines()[1:]
    rows = [line.split("\t") for line in lines]
    in_contradiction = {s for r in rows if r[4].strip() == "CONTRADICTION" for s in (r[1], r[2])}
    expected = sum(1 for r in rows if r[4].strip() == "ENTAILMENT" and r[1] in in_contradiction)
    triples = sick_triples(data_dir / "senteval/SICK/SICK_train.txt")
    assert len(triples) == expected > 200
    entails = {(r[1], r[2]) for r in rows if r[4].strip() == "ENTAILMENT"}
    contradicts = {frozenset((r[1], r[2])) for r in rows if r[4].strip() == "CONTRADICTION"}
    for premise, positive, negative in triples:  # each triple: one premise, its entailment, its contradiction
        assert (premise, positive) in entails and frozenset((premise, negative)) in contradicts


def test_text_sources(data_dir):
    lines = (data_dir / "wiki" / "wiki_sentences.txt").read_text(encoding="utf-8").splitlines()
    assert len(load_text_data("wiki", data_dir)) == sum(1 for line in lines if line.strip()) > 10_000
    assert len(load_text_data("wiki", data_dir, 50)) == 50
    with pytest.raises(NlsupError, match="wiki1m"):
        load_text_data("wiki1m", data_dir / "nowhere")
    with pytest.raises(NlsupError, match="neither a known source"):
        load_text_data("wikipedia", data_dir)


def test_digits_two_views_differ_and_keep_label():
    from nlsup_kit.data.images import load_images

    dataset = load_images("digits", None, image_size=32)
    view1, view2, label = dataset[0]
    assert len(dataset) == 1797 and view1.shape == (3, 32, 32) and label == 0
    assert not torch.equal(view1, view2)


def test_colour_steps_change_a_colour_image_and_leave_a_grey_one_as_it_was():
    from nlsup_kit.data.images import augmentation_effects, simclr_augment

    torch.manual_seed(1)
    grey = torch.rand(1, 16, 16).expand(3, 16, 16).clone()  # red = green = blue: saturation and hue are 0 everywhere
    colour = torch.rand(3, 16, 16)
    on_grey, on_colour = augmentation_effects(grey), augmentation_effects(colour)
    steps = simclr_augment(16).transforms
    assert len(on_grey) == len(steps) - 3 + 3  # ToImage, ToDtype, Normalize out; colour jitter's one step is four
    colour_only = {"saturation 0.4", "hue 0.1", "greyscale"}
    assert colour_only < set(on_grey)
    for name, changed in on_grey.items():
        assert (changed < 1e-4) == (name in colour_only), (name, changed)
    assert all(changed > 1e-2 for changed in on_colour.values()), on_colour
    # greyscale alone, written out: the luma of a colour image replaces every channel (ITU-R 601 weights)
    luma = (0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]).expand(3, 16, 16)
    assert on_colour["greyscale"] == pytest.approx(float((luma - colour).abs().mean()), rel=1e-3)


def test_image_folder_reads_any_mode(tmp_path):
    from PIL import Image

    from nlsup_kit.data.images import load_images

    for label, mode in [("cat", "RGB"), ("dog", "L"), ("owl", "RGBA"), ("owl", "CMYK")]:
        (tmp_path / label).mkdir(exist_ok=True)
        Image.new(mode, (40, 30)).save(tmp_path / label / f"{mode}.{'jpg' if mode == 'CMYK' else 'png'}")
    dataset = load_images(str(tmp_path), None, image_size=24)
    assert len(dataset) == 4
    assert all(dataset[i][0].shape == (3, 24, 24) for i in range(4))


def test_read_audio_mixes_stereo_and_resamples(tmp_path):
    import soundfile

    from nlsup_kit.data.audio import read_audio

    t = np.linspace(0, 1, 8000, endpoint=False)
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1).astype("float32")
    soundfile.write(str(tmp_path / "a.wav"), stereo, 8000)
    waveform = read_audio(tmp_path / "a.wav")
    assert waveform.shape == (16000,) and 0.4 < waveform.abs().max() < 0.6
    (tmp_path / "b.wav").write_bytes(b"RIFF not really audio")
    with pytest.raises(NlsupError, match="b.wav: not a readable audio file"):
        read_audio(tmp_path / "b.wav")


def test_spoken_words_dataset_gives_fbank_views(data_dir):
    from nlsup_kit.data.audio import load_audio

    dataset = load_audio("spoken-words", data_dir, num_mel_bins=64, target_frames=128, augment=None)
    fbank1, fbank2, label = dataset[5]
    assert len(dataset) == 240 and fbank1.shape == (128, 64) and torch.equal(fbank1, fbank2)  # views: dropout
    assert sorted(set(dataset.labels)) == list(range(10))


def tone_clips(folder):
    """Two one-second clips in two classes: a 440 Hz tone and a 3 kHz tone."""
    import soundfile

    t = np.arange(16000) / 16000
    for name, hz in (("low", 440), ("high", 3000)):
        (folder / name).mkdir()
        soundfile.write(str(folder / name / f"{name}.wav"), (0.5 * np.sin(2 * np.pi * hz * t)).astype("float32"), 16000)
    return str(folder)


def test_spec_augment_masks_whole_mel_bands_and_time_spans_with_zeros(tmp_path):
    from nlsup_kit.data.audio import AudioAugment, load_audio

    source = tone_clips(tmp_path)
    plain = load_audio(source, None, num_mel_bins=64, target_frames=96, augment=None)[1][0]
    masked = load_audio(source, None, num_mel_bins=64, target_frames=96,
                        augment=AudioAugment(freq_mask=16, time_mask=32, mixup=0.0))
    rows_seen = columns_seen = 0
    for _ in range(20):
        view = masked[1][0]
        changed = view != plain
        assert torch.all(view[changed] == 0)  # masked cells are set to zero
        rows = changed.all(dim=1)  # whole frames (time mask)
        columns = changed.all(dim=0)  # whole mel bins (frequency mask)
        assert torch.equal(changed, rows[:, None] | columns[None, :])  # nothing else changed
        assert int(rows.sum()) < 32 and int(columns.sum()) < 16
        rows_seen += bool(rows.any())
        columns_seen += bool(columns.any())
    assert rows_seen > 10 and columns_seen > 10


def test_mixup_blends_in_another_clip(tmp_path):
    """With mixup on every draw, the 440 Hz clip picks up the 3 kHz clip's band whenever its partner is the
    other clip (half the draws), and then takes the label of whichever clip weighs more."""
    from nlsup_kit.data.audio import AudioAugment, load_audio

    source = tone_clips(tmp_path)
    plain = load_audio(source, None, num_mel_bins=64, target_frames=96, augment=None)
    index = [p.parent.name for p, _ in plain.clips].index("low")
    low = plain.labels[index]
    band = slice(38, 46)  # mel bins around 3 kHz: mel(3000) is 66% of the way from mel(20) to mel(8000)
    quiet = plain[index][0][:, band].mean()
    mixed = load_audio(source, None, num_mel_bins=64, target_frames=96,
                       augment=AudioAugment(freq_mask=0, time_mask=0, mixup=1.0))
    draws = [mixed[index] for _ in range(40)]
    blended = [label for view, _, label in draws if view[:, band].mean() > quiet + 5]
    alone = [label for view, _, label in draws if view[:, band].mean() <= quiet + 5]
    assert 8 <= len(blended) <= 32  # about half the partners are the other clip
    assert set(blended) == {0, 1}  # Beta(10, 10) weights: either clip may weigh more
    assert set(alone) == {low}


def test_the_augmentation_is_read_back_from_the_fbanks_alone():
    from nlsup_kit.data.audio import augmentation_seen, augmentation_seen_line

    torch.manual_seed(0)
    as_read = torch.zeros(40, 16)
    as_read[:30] = torch.randn(30, 16)  # 30 frames filled, 10 of zero padding
    masked = as_read.clone()
    masked[:, 3:6] = 0
    masked[10:14] = 0
    masked[35:38] = 0  # a time mask in the padding changes nothing there
    seen = augmentation_seen(as_read, masked, 30)
    assert seen == {"masked_bins": (3, 5), "masked_frames": (10, 13), "mixed": False}
    assert augmentation_seen_line(seen, 30) == ("not mixed; mel bins 3-5 masked (3); frames 10-13 masked (4) of the 30 "
                                                "the clip fills")
    mixed = 0.6 * as_read + 0.4 * torch.randn(40, 16)
    mixed[30:] = 0
    assert augmentation_seen(as_read, mixed, 30) == {"masked_bins": None, "masked_frames": None, "mixed": True}
    assert augmentation_seen_line(augmentation_seen(as_read, mixed, 30), 30) == (
        "mixed with another clip; no mel bins masked (a width of 0 drawn); none of the 30 frames the clip fills masked "
        "(a width of 0 drawn, or the mask fell in the zero padding)")


def test_librispeech_keeps_most_frequent_speakers(tmp_path):
    """A LibriSpeech-shaped tree (no download): speakers 11 (3 clips), 22 (2), 33 (1); keep the top two."""
    import soundfile

    from nlsup_kit.data.audio import librispeech_clips

    base = tmp_path / "librispeech" / "LibriSpeech" / "train-clean-100"
    for speaker, count in [(11, 3), (22, 2), (33, 1)]:
        chapter = base / str(speaker) / "100"
        chapter.mkdir(parents=True)
        lines = []
        for utterance in range(count):
            name = f"{speaker}-100-{utterance:04d}"
            soundfile.write(str(chapter / f"{name}.flac"), np.zeros(1600, dtype="float32"), 16000)
            lines.append(f"{name} HELLO WORLD")
        (chapter / f"{speaker}-100.trans.txt").write_text("\n".join(lines) + "\n")
    clips = librispeech_clips(tmp_path, speakers=2, download=False)
    assert sorted(label for _, label in clips) == [0, 0, 0, 1, 1]
    assert all(path.is_file() and path.parts[-3] in ("11", "22") for path, _ in clips)


@pytest.mark.parametrize("seconds", [0.01, 0.3, 0.72, 2.0])
def test_clip_frames_counts_the_rows_the_clip_fills_before_the_zero_padding(seconds):
    """Against torchaudio's own fbank: the unpadded frame count (rows after it are the kit's zero padding)."""
    from torchaudio.compliance.kaldi import fbank

    from nlsup_kit.data.audio import clip_frames, kaldi_fbank

    samples = int(seconds * 16000)
    waveform = torch.randn(samples) * 0.1
    unpadded = fbank(torch.nn.functional.pad(waveform, (0, max(0, 400 - samples))).reshape(1, -1), num_mel_bins=64,
                     sample_frequency=16000, frame_shift=10, dither=0.0)
    assert clip_frames(samples, 16000, 1024) == len(unpadded)
    padded = kaldi_fbank(waveform, 16000, 64, 128)
    filled = clip_frames(samples, 16000, 128)
    assert filled == min(128, len(unpadded))
    assert (padded[filled:] == 0).all() and (padded[:filled] != 0).any(dim=1).all()
