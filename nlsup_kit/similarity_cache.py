"""The cosine similarities of a task's sentence pairs under one encoder, kept on disk: the notebooks score the
same checkpoints again and again (the untrained model and the shared SimCSE runs in notebooks 1 to 4, every
evaluation again when a notebook is rerun), and encoding is nearly all the cost of a score.

An entry is found only by a fingerprint of everything that makes its numbers: the encoder's weights, buffers
and tokenizer, the pooler, the device and precision, this kit's own code, the torch and transformers versions,
and the task's sentences. Anything else changed is a miss, never a stale hit. The Spearman and Pearson scores
are always computed afresh from the similarities. Entries live in ``~/.cache/nlsup-kit/similarities``, a few
kilobytes each; deleting the folder only costs time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from nlsup_kit.data.senteval import StsPairs
from nlsup_kit.device import autocast_dtype


def cache_dir() -> Path:
    """Read at call time, so a changed ``HOME`` is honoured (as for the data cache)."""
    return Path.home() / ".cache" / "nlsup-kit" / "similarities"


@functools.cache
def code_fingerprint() -> bytes:
    """This kit's source files and the versions of the libraries that compute the embeddings."""
    import transformers

    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(f"torch {torch.__version__} transformers {transformers.__version__}".encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.digest()


def encoder_fingerprint(encoder, pooling: str, device: torch.device) -> str:
    """Hex digest of what makes an encoder's vectors: weights and buffers, tokenizer, input limit, pooler,
    device and precision, code."""
    digest = hashlib.sha256(code_fingerprint())
    digest.update(f"{pooling}|{device.type}|{autocast_dtype(device)}|{encoder.max_input_length}".encode())
    digest.update(tokenizer_fingerprint(encoder.tokenizer))
    for name, tensor in sorted(encoder.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def tokenizer_fingerprint(tokenizer) -> bytes:
    """The vocabulary and rules, without the truncation and padding state that each call sets anew."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return repr(sorted(tokenizer.get_vocab().items())).encode()
    rules = json.loads(backend.to_str())
    rules.pop("truncation", None)
    rules.pop("padding", None)
    return json.dumps(rules, sort_keys=True).encode()


def pairs_fingerprint(pairs: StsPairs) -> str:
    digest = hashlib.sha256()
    for first, second in zip(pairs.sentences1, pairs.sentences2):
        digest.update(first.encode() + b"\0" + second.encode() + b"\0")
    return digest.hexdigest()


class SimilarityCache:
    """The stored similarities of one encoder (as fingerprinted), per task."""

    def __init__(self, encoder_key: str):
        self.encoder_key = encoder_key
        self.folder = cache_dir()

    @classmethod
    def of(cls, encoder, pooling: str, device: torch.device) -> SimilarityCache:
        return cls(encoder_fingerprint(encoder, pooling, device))

    def path(self, task: str, pairs: StsPairs) -> Path:
        return self.folder / f"{task}-{self.encoder_key[:32]}-{pairs_fingerprint(pairs)[:16]}.npy"

    def get(self, task: str, pairs: StsPairs) -> np.ndarray | None:
        """The stored similarities, or None when there are none or the file is not one cosine per pair."""
        try:
            similarities = np.load(self.path(task, pairs), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        ok = (similarities.dtype == np.float64 and similarities.shape == (len(pairs),)
              and bool(np.all(np.abs(similarities) <= 1 + 1e-6)))
        return similarities if ok else None

    def put(self, task: str, pairs: StsPairs, similarities: np.ndarray) -> None:
        """Write atomically (a partial file is never read); a folder that cannot be written is no error."""
        temporary = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".part")
            with os.fdopen(handle, "wb") as out:
                np.save(out, np.asarray(similarities, dtype=np.float64), allow_pickle=False)
            os.replace(temporary, self.path(task, pairs))
        except OSError:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
