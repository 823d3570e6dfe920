"""Regenerate data/spoken_words: ten spoken digits x 3 voices x 2 variants x 2 speeds x 2 pitches (espeak-ng)."""

from pathlib import Path

from nlsup_kit.data.audio import generate_spoken_words

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "spoken_words"
    print(f"wrote {generate_spoken_words(out)} clips to {out}")
