"""The paper's images: 60 ImageNet-1k classes x 500 training images, read in place from the user's ImageNet.

The reference code names them file by file in VisualCSE/sampled-Imagenet.txt (github.com/yiren-jian/NonLing-CSE
at 3e1e01c, 30,000 lines ``/datasets/sampled-Imagenet/<wnid>/<wnid>_<n>.JPEG``, MIT licence), shipped here
byte for byte, xz-compressed (``data/sampled_imagenet/``, with its licence). ImageNet itself comes only with an
account, so the kit downloads nothing: ``modality_data=imagenet-subset:DIR`` reads the listed files from DIR,
ImageNet-1k's train folder (one folder per class, e.g. ILSVRC/Data/CLS-LOC/train), without copying or linking
them. Labels are the class folders in sorted order, as the reference's ``ImageFolder`` numbers them.

Every listed file must be there and decode: the first that is missing or broken is one line naming it and its
line in the list. A check decodes all of them once (on every core, with a progress bar) and records each file's
size and modification time in the cache folder, so a later run checks by ``stat`` alone and decodes only files
that changed. ``image_list`` names another list in the same format (any ``.../<class>/<file>`` lines).
"""

from __future__ import annotations

import hashlib
import json
import lzma
import sys
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from nlsup_kit.data.decoding import rgb
from nlsup_kit.errors import NlsupError

PREFIX = "imagenet-subset:"
REFERENCE_LIST = "VisualCSE/sampled-Imagenet.txt"  # in the reference repository (nlsup_kit.paper.REFERENCE_REPO)
REFERENCE_LIST_SHA256 = "dca31e7bfb42686d76b1f4c86dd77b6bc015bab792059dcaacba8ede5c3f760d"
REFERENCE_SHAPE = (60, 500)  # classes, images per class: VisualCSE/README.md line 64


@dataclass(frozen=True)
class Listed:
    """One line of a list: the image ``<label>/<file>`` under the ImageNet folder."""

    line: int
    label: str
    file: str

    @property
    def relative(self) -> str:
        return f"{self.label}/{self.file}"


def shipped_list() -> Path:
    from nlsup_kit.data.paths import shipped_dir

    return shipped_dir("data/sampled_imagenet") / "sampled-Imagenet.txt.xz"


def read_list(path: str | Path | None = None) -> tuple[list[Listed], str, str]:
    """The listed images, the list's name for messages and its sha256 (of the text, uncompressed). ``None``:
    the reference's list, shipped, checked against its published sha256 and its 60 x 500 shape."""
    source = Path(path).expanduser() if path is not None else shipped_list()
    name = str(source) if path is not None else f"{REFERENCE_LIST} (shipped as {source})"
    try:
        raw = lzma.decompress(source.read_bytes()) if source.suffix == ".xz" else source.read_bytes()
    except (OSError, lzma.LZMAError) as err:
        raise NlsupError(f"{source}: cannot read the image list ({getattr(err, 'strerror', None) or err})") from None
    digest = hashlib.sha256(raw).hexdigest()
    if path is None and digest != REFERENCE_LIST_SHA256:
        raise NlsupError(f"{source}: not the reference's list (sha256 {digest[:12]}...); reinstall nlsup-kit")
    listed, seen = [], {}
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        parts = [part for part in line.strip().replace("\\", "/").split("/") if part]
        if not parts:
            continue
        if len(parts) < 2 or ".." in parts[-2:]:
            raise NlsupError(f"{name}:{number}: expected a path ending in <class>/<image file>, got {line.strip()!r}")
        entry = Listed(number, parts[-2], parts[-1])
        if entry.relative in seen:
            raise NlsupError(f"{name}:{number}: {entry.relative} is listed twice (first at line "
                             f"{seen[entry.relative]})")
        seen[entry.relative] = number
        listed.append(entry)
    if not listed:
        raise NlsupError(f"{name}: lists no image")
    return listed, name, digest


class ListedImages(Dataset):
    """The listed images of ``root``, decoded to RGB on access: ``samples`` and ``targets`` as torchvision's
    ``ImageFolder`` has them (the cached pipeline decodes from ``samples``)."""

    def __init__(self, root: Path, listed: list[Listed]):
        self.root = root
        self.classes = sorted({entry.label for entry in listed})
        index = {label: i for i, label in enumerate(self.classes)}
        self.samples = [(str(root / entry.relative), index[entry.label]) for entry in listed]
        self.targets = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        return rgb(path), label


def record_path(root: Path, digest: str) -> Path:
    """Where the check of ``root`` against the list with sha256 ``digest`` is remembered."""
    from nlsup_kit.data.paths import cache_data_dir

    key = hashlib.sha256(f"{root}\n{digest}".encode()).hexdigest()[:16]
    return cache_data_dir().parent / "imagenet-subset" / f"{key}.json"


def _stamp(path: Path) -> list[int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return [status.st_size, status.st_mtime_ns]


def _decodes(path: str) -> str | None:
    """None when the file decodes whole, as training will decode it, else why not."""
    try:
        rgb(path)
    except NlsupError as err:
        return str(err).removeprefix(f"{path}: ")
    return None


def checked_subset(root: str | Path, image_list: str | Path | None = None, progress: bool | None = None
                   ) -> ListedImages:
    """The listed images of ``root`` once every one is there and decodes (see the module's docstring)."""
    from nlsup_kit.progress import map_on_all_cores

    root = Path(root).expanduser().resolve()
    listed, name, digest = read_list(image_list)
    if not root.is_dir():
        raise NlsupError(f"{root}: no such folder; give ImageNet-1k's train folder (one folder per class, e.g. "
                         f"ILSVRC/Data/CLS-LOC/train): --set modality_data={PREFIX}DIR")
    stamps = [_stamp(root / entry.relative) for entry in listed]
    for entry, stamp in zip(listed, stamps):
        if stamp is None:
            raise NlsupError(f"{root / entry.relative}: missing; {name} line {entry.line} lists it (is {root} "
                             f"ImageNet-1k's train folder, one folder per class?)")
    record = record_path(root, digest)
    try:
        known = json.loads(record.read_text())
    except (OSError, ValueError):
        known = {}
    unchecked = [i for i, (entry, stamp) in enumerate(zip(listed, stamps)) if known.get(entry.relative) != stamp]
    if unchecked:
        problems = map_on_all_cores(lambda i: _decodes(str(root / listed[i].relative)), unchecked,
                                    f"checking {len(unchecked):,} listed images", "image", progress)
        for i, problem in zip(unchecked, problems):
            if problem is not None:
                raise NlsupError(f"{root / listed[i].relative}: {problem}; {name} line {listed[i].line} lists "
                                 f"it: replace it from ImageNet-1k")
        _remember(record, {entry.relative: stamp for entry, stamp in zip(listed, stamps)})
    return ListedImages(root, listed)


def _remember(record: Path, stamps: dict[str, list[int]]) -> None:
    """Keep the check for next time; a cache folder that cannot be written costs only a new check."""
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        partial = record.with_suffix(".part")
        partial.write_text(json.dumps(stamps))
        partial.rename(record)
    except OSError as err:
        print(f"note: {record.parent}: cannot record the image check ({err.strerror}); the next run checks again",
              file=sys.stderr)


def describe(root: str | Path, image_list: str | Path | None) -> str:
    """What ``imagenet-subset:root`` trains on, for the run's log and result.json."""
    which = f"the images listed in {image_list}" if image_list else (
        f"the paper's ImageNet subset ({REFERENCE_SHAPE[0]} classes x {REFERENCE_SHAPE[1]} images, "
        f"{REFERENCE_LIST} of the reference code)")
    return f"{which}, read from {Path(root).expanduser()}"
