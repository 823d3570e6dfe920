"""Audio data for the non-linguistic task: labelled clips turned into fbank "images".

Offline: a spoken-digit set the project made with ``espeak-ng`` (``data/spoken_words`` in the repository,
shipped inside the package). Online:
LibriSpeech train-clean-100 through ``torchaudio.datasets``, labelled by speaker, the 50 most frequent.
Audio is read with ``soundfile``, mixed to mono and resampled to 16 kHz.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from nlsup_kit.data.paths import shipped_dir
from nlsup_kit.errors import NlsupError

AUDIO_SOURCES = ("spoken-words", "librispeech")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
SPOKEN_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VOICES = ("en-us", "en-gb", "en-gb-scotland")
VARIANTS = ("m3", "f2")
SPEEDS = (130, 175)  # words per minute
PITCHES = (35, 65)
CACHE_CLIPS = 5_000  # small sets are decoded once and kept in memory


SAMPLE_RATE = 16_000


def kaldi_fbank(waveform: torch.Tensor, sample_rate: int = SAMPLE_RATE, num_mel_bins: int = 128,
                target_frames: int = 1024) -> torch.Tensor:
    """A mono waveform (samples,) -> (target_frames, num_mel_bins) log-mel filterbank, zero-padded or cut."""
    from torchaudio.compliance.kaldi import fbank

    waveform = waveform.reshape(1, -1).float()
    waveform = waveform - waveform.mean()
    minimum = int(0.025 * sample_rate)  # one 25 ms window
    if waveform.shape[1] < minimum:
        waveform = F.pad(waveform, (0, minimum - waveform.shape[1]))
    features = fbank(waveform, htk_compat=True, sample_frequency=sample_rate, use_energy=False,
                     window_type="hanning", num_mel_bins=num_mel_bins, dither=0.0, frame_shift=10)
    if len(features) < target_frames:
        return F.pad(features, (0, 0, 0, target_frames - len(features)))
    return features[:target_frames]


def clip_frames(num_samples: int, sample_rate: int = SAMPLE_RATE, target_frames: int = 1024) -> int:
    """How many of ``kaldi_fbank``'s ``target_frames`` rows a clip of ``num_samples`` fills (25 ms windows every
    10 ms, whole windows only, as Kaldi's ``snip_edges``); the rest is zero padding."""
    window, shift = int(0.025 * sample_rate), int(0.010 * sample_rate)
    return min(target_frames, 1 + (max(num_samples, window) - window) // shift)


def read_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """A clip as a mono float32 waveform at ``sample_rate``."""
    import soundfile

    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise NlsupError(f"{path}: not a readable audio file ({err})") from None
    if len(samples) == 0:
        raise NlsupError(f"{path}: empty audio file (0 samples)")
    waveform = torch.from_numpy(samples).mean(dim=1)
    if rate != sample_rate:
        from torchaudio.functional import resample

        waveform = resample(waveform, rate, sample_rate)
    return waveform


@dataclass
class AudioAugment:
    """SpecAugment (one frequency and one time mask) and waveform mixup, as in the reference code."""

    freq_mask: int = 48
    time_mask: int = 192
    mixup: float = 0.5


class AudioClips(Dataset):
    """(path, label) clips -> (fbank, fbank, label): the same input twice, the views come from dropout."""

    def __init__(self, clips: list[tuple[Path, int]], num_mel_bins: int = 128, target_frames: int = 1024,
                 augment: AudioAugment | None = None, seed: int = 0):
        if not clips:
            raise NlsupError("no audio clips found")
        self.clips, self.num_mel_bins, self.target_frames = clips, num_mel_bins, target_frames
        self.augment = augment
        self.rng = random.Random(seed)
        self.cache: dict[int, torch.Tensor] | None = {} if len(clips) <= CACHE_CLIPS else None

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.clips]

    def _waveform(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.clips[index]
        if self.cache is None:
            return read_audio(path), label
        if index not in self.cache:
            self.cache[index] = read_audio(path)
        return self.cache[index], label

    def __getitem__(self, index: int):
        waveform, label = self._waveform(index)
        if self.augment and self.rng.random() < self.augment.mixup:
            other, other_label = self._waveform(self.rng.randrange(len(self.clips)))
            other = torch.nn.functional.pad(other, (0, max(0, len(waveform) - len(other))))[: len(waveform)]
            weight = self.rng.betavariate(10, 10)
            waveform = weight * waveform + (1 - weight) * other
            label = label if weight >= 0.5 else other_label  # the reference takes the argmax of the soft label
        fbank = kaldi_fbank(waveform, SAMPLE_RATE, self.num_mel_bins, self.target_frames)
        if self.augment:
            from torchaudio.transforms import FrequencyMasking, TimeMasking

            image = fbank.T.unsqueeze(0)  # (1, mel, frames)
            image = FrequencyMasking(self.augment.freq_mask)(image)
            image = TimeMasking(self.augment.time_mask)(image)
            fbank = image.squeeze(0).T
        return fbank, fbank, label


def _zero_runs(zero: torch.Tensor) -> tuple[int, int] | None:
    """The first and last index of the True entries of a 1-D mask (one mask makes one run), or None."""
    where = torch.nonzero(zero).flatten()
    return (int(where[0]), int(where[-1])) if len(where) else None


def augmentation_seen(as_read: torch.Tensor, augmented: torch.Tensor, frames: int) -> dict[str, object]:
    """What SpecAugment and mixup did to one (frames, mel) fbank, read from the fbanks alone, as an eye reads
    the figure: the mel bins zeroed in every frame, the frames (of the ``frames`` the clip fills; masking the
    zero padding changes nothing) zeroed in every bin, and whether the cells left unmasked differ from the clip
    as read (another clip mixed in)."""
    filled = augmented[:frames]
    masked_bins = _zero_runs((filled == 0).all(dim=0))
    masked_frames = _zero_runs((filled == 0).all(dim=1))
    kept = filled != 0
    return {"masked_bins": masked_bins, "masked_frames": masked_frames,
            "mixed": bool(kept.any() and not torch.allclose(filled[kept], as_read[:frames][kept], atol=1e-5))}


def augmentation_seen_line(seen: dict[str, object], frames: int) -> str:
    """:func:`augmentation_seen` in words, with why a mask can leave no trace: its width is drawn below m, so 0
    with probability 1/m, and a time mask that falls in the zero padding zeroes what was 0 already."""
    bins, spans = seen["masked_bins"], seen["masked_frames"]
    return (f"{'mixed with another clip' if seen['mixed'] else 'not mixed'}; "
            + (f"mel bins {bins[0]}-{bins[1]} masked ({bins[1] - bins[0] + 1})" if bins
               else "no mel bins masked (a width of 0 drawn)")
            + "; "
            + (f"frames {spans[0]}-{spans[1]} masked ({spans[1] - spans[0] + 1}) of the {frames} the clip fills" if spans
               else f"none of the {frames} frames the clip fills masked (a width of 0 drawn, or the mask fell in the "
                    "zero padding)"))


def spoken_words_dir(data_dir: Path | None = None) -> Path:
    """``data_dir/spoken_words`` when present (a set of your own), else the clips shipped inside the kit."""
    if data_dir is not None and (Path(data_dir) / "spoken_words").is_dir():
        return Path(data_dir) / "spoken_words"
    return shipped_dir("data/spoken_words")


def clips_by_folder(root: Path) -> list[tuple[Path, int]]:
    """``root/<label>/<clip>`` files, labels numbered in sorted folder order."""
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    return [(clip, label) for label, folder in enumerate(classes)
            for clip in sorted(folder.iterdir()) if clip.suffix.lower() in AUDIO_SUFFIXES]


def librispeech_clips(data_dir: Path, speakers: int = 50, download: bool = True) -> list[tuple[Path, int]]:
    """LibriSpeech train-clean-100 utterances of the ``speakers`` speakers with the most of them."""
    from torchaudio.datasets import LIBRISPEECH

    from nlsup_kit.data.disk import writing
    from nlsup_kit.data.transport import ONLINE_ONLY_ERRORS, online_only_failure

    root = data_dir / "librispeech"
    with writing(root):
        root.mkdir(parents=True, exist_ok=True)
    try:
        corpus = LIBRISPEECH(str(root), url="train-clean-100", download=download)
    except ONLINE_ONLY_ERRORS as err:
        raise online_only_failure("LibriSpeech", root, err, "offline, use --set modality_data=spoken-words") from None
    items = [corpus.get_metadata(i) for i in range(len(corpus))]
    top = [speaker for speaker, _ in Counter(item[3] for item in items).most_common(speakers)]
    label = {speaker: i for i, speaker in enumerate(sorted(top))}
    return [(Path(corpus._archive) / item[0], label[item[3]]) for item in items if item[3] in label]


def describe_audio(source: str) -> str:
    """What a source name trains on, in words for the run's log and result.json."""
    if source == "librispeech":
        return "LibriSpeech train-clean-100, the 50 speakers with the most utterances (the paper's audio)"
    if source == "spoken-words":
        return ("the kit's spoken digits (espeak-ng, 10 words, offline): a stand-in for the paper's 50 LibriSpeech "
                "speakers (--set modality_data=librispeech)")
    return f"the audio folder {source} (a folder per label)"


def audio_clips(source: str, data_dir: Path) -> list[tuple[Path, int]]:
    """The (clip, label) list of a source name (spoken-words, librispeech) or a ``<label>/<clip>`` folder."""
    if source == "spoken-words":
        return clips_by_folder(spoken_words_dir(data_dir))
    if source == "librispeech":
        return librispeech_clips(data_dir)
    path = Path(source).expanduser()
    if not path.is_dir():
        raise NlsupError(f"audio data {source!r} is neither a known source ({', '.join(AUDIO_SOURCES)}) "
                         "nor a folder of <label>/<clip> files")
    return clips_by_folder(path)


def load_audio(source: str, data_dir: Path, num_mel_bins: int, target_frames: int,
               augment: AudioAugment | None, seed: int = 0) -> AudioClips:
    return AudioClips(audio_clips(source, data_dir), num_mel_bins, target_frames, augment, seed)


class FbankClips(Dataset):
    """Every clip's fbank computed once, in float16, with the number of its frames that hold sound (the rest
    is padding): the ``cached`` pipeline's store, augmented per batch on the training device
    (:class:`nlsup_kit.data.batch_augment.AudioBatchAugment`). Computed on all cores once, with a progress bar."""

    def __init__(self, clips: list[tuple[Path, int]], num_mel_bins: int = 128, target_frames: int = 1024,
                 progress: bool | None = None):
        from nlsup_kit.progress import map_on_all_cores

        if not clips:
            raise NlsupError("no audio clips found")

        def features(clip: tuple[Path, int]) -> tuple[torch.Tensor, int]:
            waveform = read_audio(clip[0])
            return (kaldi_fbank(waveform, SAMPLE_RATE, num_mel_bins, target_frames).half(),
                    clip_frames(len(waveform), SAMPLE_RATE, target_frames))

        computed = map_on_all_cores(features, clips, "audio fbanks", "clip", progress)  # torch releases the GIL
        self.fbanks = torch.stack([fbank for fbank, _ in computed])
        self.frames = torch.tensor([frames for _, frames in computed])
        self.labels = [label for _, label in clips]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.fbanks[index], self.frames[index], self.labels[index]


def generate_spoken_words(out_dir: Path, words=SPOKEN_WORDS) -> int:
    """Speak every word with each voice, variant, speed and pitch into ``out_dir/<word>/*.flac`` (16 kHz mono)."""
    import soundfile

    if shutil.which("espeak-ng") is None:
        raise NlsupError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        for word in words:
            (out_dir / word).mkdir(parents=True, exist_ok=True)
            for voice in VOICES:
                for variant in VARIANTS:
                    for speed in SPEEDS:
                        for pitch in PITCHES:
                            wav = Path(tmp) / "clip.wav"
                            subprocess.run(["espeak-ng", "-v", f"{voice}+{variant}", "-s", str(speed),
                                            "-p", str(pitch), "-w", str(wav), word], check=True)
                            waveform = read_audio(wav)
                            name = f"{voice}_{variant}_s{speed}_p{pitch}.flac"
                            soundfile.write(str(out_dir / word / name), waveform.numpy(), SAMPLE_RATE,
                                            subtype="PCM_16")
                            count += 1
    return count
