"""Image data for the non-linguistic task: labelled images, two SimCLR-augmented views each.

Offline: scikit-learn's bundled digits (10 classes, 8x8, upsampled). Online: torchvision's Imagenette. From
the user's disk: the paper's 60-class ImageNet subset (``imagenet-subset:DIR``,
:mod:`nlsup_kit.data.imagenet_subset`), or any ImageFolder directory.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from nlsup_kit.data.decoding import rgb
from nlsup_kit.errors import NlsupError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
DIGITS_MEAN, DIGITS_STD = (0.5,) * 3, (0.5,) * 3  # strokes in [0, 1]: centred on 0, spread to [-1, 1]
IMAGE_SOURCES = ("digits", "imagenette")


def simclr_augment(image_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """SimCLR's view: random resized crop (scale 0.2-1), flip, colour jitter (p 0.8), grayscale (p 0.2). A
    decoded image stays uint8 until the normalisation (a quarter of float32's memory traffic); a float image
    (the digits) stays float."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.ToImage(),
        v2.RandomResizedCrop(image_size, scale=(0.2, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])


JITTER_FACTORS = ("brightness", "contrast", "saturation", "hue")
STEP_NAMES = {"RandomResizedCrop": "crop", "RandomHorizontalFlip": "flip", "RandomGrayscale": "greyscale"}


def augmentation_parts(image_size: int) -> dict[str, object]:
    """Each random step of :func:`simclr_augment` alone and always applied (its probability set to 1, colour
    jitter split into its four factors): to ask which of them change a given kind of image at all."""
    import copy

    from torchvision.transforms import v2

    parts: dict[str, object] = {}
    for step in simclr_augment(image_size).transforms:
        if isinstance(step, v2.RandomApply):
            (step,) = step.transforms
        if isinstance(step, v2.ColorJitter):
            for factor in JITTER_FACTORS:
                alone = copy.copy(step)
                for other in JITTER_FACTORS:
                    if other != factor:
                        setattr(alone, other, None)
                parts[f"{factor} {getattr(step, factor)[1] - (0 if factor == 'hue' else 1):g}"] = alone
        elif type(step).__name__ in STEP_NAMES:
            alone = copy.copy(step)
            if hasattr(alone, "p"):
                alone.p = 1.0
            parts[STEP_NAMES[type(step).__name__]] = alone
    return parts


def augmentation_effects(image: torch.Tensor, draws: int = 20, seed: int = 0) -> dict[str, float]:
    """Mean absolute pixel change (image in [0, 1]) each step of :func:`augmentation_parts` makes, over
    ``draws`` random draws: a step whose change is 0 does nothing to images like this one."""
    torch.manual_seed(seed)
    return {name: float(torch.stack([(step(image) - image).abs().mean() for _ in range(draws)]).mean())
            for name, step in augmentation_parts(image.shape[-1]).items()}


class TwoViews(Dataset):
    """(image, label) items -> (view1, view2, label), two independent augmentations of one image."""

    def __init__(self, images: Dataset, augment):
        self.images, self.augment = images, augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image, label = self.images[index]
        return self.augment(image), self.augment(image), label

    @property
    def labels(self) -> list[int] | None:
        """Every item's class, where the image set can say without decoding (None otherwise)."""
        for name in ("targets", "labels"):
            labels = getattr(self.images, name, None)
            if labels is not None:
                return [int(label) for label in labels]
        samples = getattr(self.images, "_samples", None)  # torchvision's Imagenette
        return [int(label) for _, label in samples] if samples is not None else None


class TensorImages(Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.images[index], int(self.labels[index])


def digits(image_size: int = 32) -> TensorImages:
    """scikit-learn's 1,797 handwritten digits as 3-channel float images in [0, 1], upsampled."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return TensorImages(images.expand(-1, 3, -1, -1).contiguous(), torch.tensor(bunch.target))


def normalised_digits(image_size: int = 32) -> TensorImages:
    """The digits exactly as training normalises them, without the random augmentation: for looking at what
    the image branch makes of them (maps, nearest neighbours)."""
    images = digits(image_size)
    mean, std = torch.tensor(DIGITS_MEAN)[:, None, None], torch.tensor(DIGITS_STD)[:, None, None]
    return TensorImages((images.images - mean) / std, images.labels)


def image_folder(path: Path):
    """Any ``class/image`` folder tree, decoded to RGB; every file's header is checked up front, so a stray
    non-image fails now, by name, not an hour into training."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.datasets import ImageFolder

    if not Path(path).is_dir():
        raise NlsupError(f"{path}: image folder not found (and not one of the sources {', '.join(IMAGE_SOURCES)}, "
                         f"or imagenet-subset:DIR)")
    empty = sorted(p.name for p in Path(path).iterdir() if p.is_dir() and not any(f.is_file() for f in p.rglob("*")))
    if empty:
        raise NlsupError(f"{path}: class folder {empty[0]!r} has no images; remove it or add images")
    try:
        dataset = ImageFolder(str(path), loader=rgb)
    except FileNotFoundError as err:
        raise NlsupError(f"{path}: {err}") from None
    for file, _ in dataset.samples:
        try:
            with Image.open(file):
                pass
        except (UnidentifiedImageError, OSError) as err:
            raise NlsupError(f"{file}: not a readable image ({type(err).__name__}); remove or replace it") from None
    return dataset


def imagenette(data_dir: Path, download: bool = True):
    """torchvision's Imagenette (10 ImageNet classes, 160 px), downloaded into ``data_dir/imagenette``."""
    from torchvision.datasets import Imagenette

    from nlsup_kit.data.transport import ONLINE_ONLY_ERRORS, online_only_failure

    root = data_dir / "imagenette"
    already = (root / "imagenette2-160").is_dir()
    try:
        return Imagenette(str(root), split="train", size="160px", download=download and not already,
                          loader=rgb)
    except ONLINE_ONLY_ERRORS as err:
        raise online_only_failure("Imagenette", root, err, "offline, use --set modality_data=digits or an "
                                  "ImageFolder path") from None


class DecodedImages(Dataset):
    """Every image decoded once, as uint8 (3, H, W) with the short side at most ``max_side``: the ``cached``
    pipeline's store, from which a batch is gathered in milliseconds and augmented on the training device
    (:mod:`nlsup_kit.data.batch_augment`). JPEG decoding runs on all cores once, with a progress bar."""

    def __init__(self, images: Dataset, max_side: int, progress: bool | None = None):
        from nlsup_kit.progress import map_on_all_cores

        if isinstance(images, TensorImages):  # floats in [0, 1], already small
            self.images = [(image * 255).round().to(torch.uint8) for image in images.images]
            self.labels = [int(label) for label in images.labels]
            return
        samples = getattr(images, "samples", None) or getattr(images, "_samples", None)  # torchvision's Imagenette
        if samples is None:
            raise NlsupError(f"{type(images).__name__}: the cached pipeline reads image files; "
                             "use --set modality_pipeline=per-item")
        self.images = map_on_all_cores(lambda sample: _decoded(sample[0], max_side), samples, "decoding images",
                                       "image", progress)  # PIL decodes without the GIL
        self.labels = [int(label) for _, label in samples]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], self.labels[index]


def _decoded(path: str, max_side: int) -> torch.Tensor:
    """One image file as uint8 (3, H, W), shrunk (antialiased) so its short side is at most ``max_side``."""
    import numpy as np
    from PIL import Image

    image = rgb(path)
    short = min(image.size)
    if short > max_side:
        scale = max_side / short
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous()


def padded_batch(items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decoded images of different sizes -> (uint8 batch padded to the largest, each (height, width), labels).
    The padding repeats each image's last row and column, so sampling at its edge reads the edge, as
    torchvision's resize does."""
    sizes = torch.tensor([image.shape[1:] for image, _ in items])
    batch = torch.empty(len(items), 3, *sizes.max(dim=0).values.tolist(), dtype=torch.uint8)
    for row, (image, _) in zip(batch, items):
        height, width = image.shape[1:]
        row[:, :height, :width] = image
        row[:, :height, width:] = image[:, :, -1:]
        row[:, height:] = row[:, height - 1:height]
    return batch, sizes, torch.tensor([label for _, label in items])


def stored_side(image_size: int) -> int:
    """The short side an image is kept at for crops of ``image_size``: ImageNet's customary 256 for 224."""
    return math.ceil(image_size * 8 / 7)


def base_images(source: str, data_dir: Path, image_size: int, image_list: str | None = None,
                progress: bool | None = None) -> Dataset:
    """The labelled images of a source name (digits, imagenette, imagenet-subset:DIR with ``image_list``) or
    ImageFolder path, before augmentation."""
    from nlsup_kit.data.imagenet_subset import PREFIX, checked_subset

    if source == "digits":
        return digits(image_size)
    if source.startswith(PREFIX):
        return checked_subset(source.removeprefix(PREFIX), image_list, progress)
    return imagenette(data_dir) if source == "imagenette" else image_folder(Path(source).expanduser())


def describe_images(source: str, image_list: str | None = None) -> str:
    """What a source name trains on, in words for the run's log and result.json."""
    from nlsup_kit.data.imagenet_subset import PREFIX, REFERENCE_SHAPE, describe

    if source.startswith(PREFIX):
        return describe(source.removeprefix(PREFIX), image_list)
    stand_in = (f"a stand-in for the paper's ImageNet subset ({REFERENCE_SHAPE[0]} classes x {REFERENCE_SHAPE[1]}), "
                f"which --set modality_data={PREFIX}DIR reads from ImageNet-1k's train folder")
    if source == "imagenette":
        return f"Imagenette (10 ImageNet classes, torchvision's 160 px release): {stand_in}"
    if source == "digits":
        return f"scikit-learn's digits (10 classes, 8 x 8 px, offline): {stand_in}"
    return f"the image folder {source} (a folder per class)"


def normalisation(source: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel mean and std a source's views are normalised with."""
    return (DIGITS_MEAN, DIGITS_STD) if source == "digits" else (IMAGENET_MEAN, IMAGENET_STD)


def load_images(source: str, data_dir: Path, image_size: int, image_list: str | None = None,
                progress: bool | None = None) -> Dataset:
    """Two-view image dataset by source name (see :func:`base_images`) or ImageFolder path."""
    return TwoViews(base_images(source, data_dir, image_size, image_list, progress),
                    simclr_augment(image_size, *normalisation(source)))
