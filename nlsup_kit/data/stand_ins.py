"""Stand-in data of the paper's real kinds, written where no download can happen, to time the data pipelines:
Imagenette-style JPEGs (160 px on the short side, photo-like content, in class folders) and LibriSpeech-style
FLAC clips (16 kHz mono, about 12 s, in speaker folders). Timing only: nothing in them can be learned."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_images(folder: Path, classes: int = 10, per_class: int = 100, size: tuple[int, int] = (213, 160),
                 seed: int = 0) -> int:
    """``classes`` x ``per_class`` JPEGs of ``size`` (width, height) into ``folder/class_k/``: smooth colour
    fields with fine noise, which compress (about 10-20 KB, quality 90) and decode like photographs."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    for k in range(classes):
        (folder / f"class_{k}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            coarse = Image.fromarray(rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8))
            field = np.asarray(coarse.resize((width, height), Image.BICUBIC), dtype=np.int16)
            pixels = np.clip(field + rng.normal(0, 8, field.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"class_{k}" / f"{i:05d}.jpg", quality=90)
    return classes * per_class


def write_clips(folder: Path, speakers: int = 10, per_speaker: int = 20, seconds: float = 12.0,
                sample_rate: int = 16_000, seed: int = 0) -> int:
    """``speakers`` x ``per_speaker`` 16-bit FLAC clips into ``folder/speaker_k/``: a pitched tone with a
    varying envelope under noise, the length of a long LibriSpeech utterance."""
    import soundfile

    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    for k in range(speakers):
        (folder / f"speaker_{k}").mkdir(parents=True, exist_ok=True)
        for i in range(per_speaker):
            pitch = 100 + 20 * k + rng.uniform(-5, 5)
            envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 5) * time) ** 2
            wave = 0.3 * envelope * np.sin(2 * np.pi * pitch * time) + 0.05 * rng.standard_normal(len(time))
            soundfile.write(str(folder / f"speaker_{k}" / f"{i:04d}.flac"), wave.astype(np.float32), sample_rate,
                            subtype="PCM_16")
    return speakers * per_speaker
