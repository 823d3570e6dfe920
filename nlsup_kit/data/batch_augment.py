"""Augmentation of a whole batch on the training device, for the ``cached`` modality pipeline: images
(:class:`ImageBatchAugment`) and audio fbanks (:class:`AudioBatchAugment`).

The shipped (``per-item``) pipeline augments every view in the loader, one image at a time on the CPU: about
3 ms a view at 224 px on this project's machine (benchmarks/RESULTS.md), so a 48-image batch (96 views) takes
longer to make than a GPU takes to train on it. Here the loader only gathers images decoded once (uint8) and this module makes both views of every image
at once, wherever the batch is: the same SimCLR augmentation (torchvision's RandomResizedCrop(scale 0.2-1),
flip, ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale p 0.2, normalisation) with its own random draw per
image and per view. Every parameter is drawn on the CPU from one seeded generator that a checkpoint keeps, in a
fixed number of draws per batch, so a resumed run augments exactly as an uninterrupted one, and goes to the
device in one copy that does not wait for it. The operations are kornia's (crop-and-resize, torchvision's
colour formulas) on the batch.

Where it differs from torchvision, the distributions do not (tests/test_batch_augment.py compares them):
the crop is resized bilinearly without antialiasing (torchvision antialiases a downscaled crop; the images are
stored at most ``image_size`` x 8/7 on the short side, so a crop is rarely shrunk by much), and a crop's
outermost output pixels may blend in up to half a pixel from just outside the crop (torchvision clamps at the
crop's edge; at the image's edge both read the edge). ColorJitter's order is drawn per image, as torchvision
draws it.
"""

from __future__ import annotations

import math

import torch

from nlsup_kit.data.images import normalisation

CROP_SCALE = (0.2, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
CROP_ATTEMPTS = 10  # torchvision's RandomResizedCrop tries 10 boxes before it falls back to a centre crop
JITTER = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
JITTER_P, GRAYSCALE_P, FLIP_P = 0.8, 0.2, 0.5


def to_device(tensors: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """Small host tensors (drawn parameters, indices) on ``device`` in one copy: packed into one float64 tensor
    (exact for their integers and flags), pinned on a GPU so that the copy does not wait for the device (a
    pageable copy would), unpacked there."""
    packed = torch.cat([t.reshape(-1).double() for t in tensors])
    if device.type == "cuda":
        packed = packed.pin_memory()
    packed = packed.to(device, non_blocking=True)
    unpacked, start = [], 0
    for t in tensors:
        unpacked.append(packed[start:start + t.numel()].view(t.shape).to(t.dtype))
        start += t.numel()
    return unpacked


def crop_boxes(heights: torch.Tensor, widths: torch.Tensor, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """RandomResizedCrop's boxes (top, left, height, width) for images of these sizes, drawn as torchvision draws
    them: up to 10 (area, log aspect ratio) tries, the first that fits, a uniform position; else the centre crop
    of the clamped aspect ratio. Every try is drawn whether needed or not (a fixed number of draws)."""
    n = len(heights)
    height, width = heights.double()[:, None], widths.double()[:, None]
    area = height * width * torch.empty(n, CROP_ATTEMPTS, dtype=torch.float64).uniform_(*CROP_SCALE,
                                                                                        generator=generator)
    log_ratio = torch.empty(n, CROP_ATTEMPTS, dtype=torch.float64).uniform_(
        math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]), generator=generator)
    ratio = torch.exp(log_ratio)
    w = torch.round(torch.sqrt(area * ratio))
    h = torch.round(torch.sqrt(area / ratio))
    fits = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    first = torch.argmax(fits.int(), dim=1)  # the first try that fits (0 when none does: masked below)
    found = fits.any(dim=1)
    pick = lambda t: t.gather(1, first[:, None]).squeeze(1)  # noqa: E731
    h, w = pick(h), pick(w)
    # the fallback: the whole image, cut to the nearest allowed aspect ratio, centred
    in_ratio = widths.double() / heights.double()
    fallback_w = torch.where(in_ratio < CROP_RATIO[0], widths.double(),
                             torch.where(in_ratio > CROP_RATIO[1],
                                         torch.round(heights.double() * CROP_RATIO[1]), widths.double()))
    fallback_h = torch.where(in_ratio < CROP_RATIO[0], torch.round(widths.double() / CROP_RATIO[0]),
                             heights.double())
    h, w = torch.where(found, h, fallback_h), torch.where(found, w, fallback_w)
    position = torch.rand(n, 2, dtype=torch.float64, generator=generator)
    top = torch.where(found, torch.floor(position[:, 0] * (heights.double() - h + 1)),
                      torch.div(heights.double() - h, 2, rounding_mode="floor"))
    left = torch.where(found, torch.floor(position[:, 1] * (widths.double() - w + 1)),
                       torch.div(widths.double() - w, 2, rounding_mode="floor"))
    return top.long(), left.long(), h.long(), w.long()


class ImageBatchAugment:
    """Two SimCLR views of every image in a batch of decoded images, on the batch's device.

    ``__call__((images, sizes, labels), device)`` takes uint8 images padded to the batch's largest (B, 3, H, W),
    each image's real (height, width) on the host, and the labels; returns (view1, view2, labels) as float32,
    normalised, on ``device``.
    """

    def __init__(self, image_size: int, source: str, seed: int):
        self.image_size = image_size
        self.mean, self.std = (torch.tensor(values) for values in normalisation(source))
        self.generator = torch.Generator().manual_seed(seed)

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def restore(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    def draw(self, sizes: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every random choice for one view of each image of these (height, width) sizes, on the CPU."""
        n, g = len(sizes), self.generator
        top, left, height, width = crop_boxes(sizes[:, 0], sizes[:, 1], g)
        factors = torch.empty(n, 4)
        for k, spread in enumerate(JITTER[:3]):
            factors[:, k].uniform_(1 - spread, 1 + spread, generator=g)
        factors[:, 3].uniform_(-JITTER[3], JITTER[3], generator=g)
        uniforms = torch.rand(n, 3, generator=g)
        order = torch.argsort(torch.rand(n, 4, generator=g), dim=1)  # ColorJitter's random order, per image
        return {"top": top, "left": left, "height": height, "width": width, "factors": factors, "order": order,
                "flip": uniforms[:, 0] < FLIP_P, "jitter": uniforms[:, 1] < JITTER_P,
                "grayscale": uniforms[:, 2] < GRAYSCALE_P}

    def view(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """One augmented view of each image (float in [0, 1] before normalisation), from drawn ``params``."""
        from kornia.color import rgb_to_grayscale
        from kornia.enhance import (adjust_brightness_accumulative, adjust_contrast_with_mean_subtraction,
                                    adjust_hue, adjust_saturation_with_gray_subtraction)
        from kornia.geometry.transform import crop_and_resize

        device = images.device
        # which images take which adjustment at each of ColorJitter's four positions, worked out on the host (a
        # boolean mask on a GPU would wait for it): an image not jittered takes none
        chosen = [torch.nonzero(params["jitter"] & (params["order"][:, position] == k)).squeeze(1)
                  for position in range(4) for k in range(4)]
        factors = params["factors"] * torch.tensor([1.0, 1.0, 1.0, 2 * math.pi])  # kornia's hue is in radians
        keys = ("top", "left", "height", "width", "flip", "grayscale")
        moved = to_device([params[k] for k in keys] + [factors, self.mean, self.std] + chosen, device)
        p = dict(zip(keys, moved))
        factors, mean, std = moved[len(keys):len(keys) + 3]
        chosen = moved[len(keys) + 3:]
        # the box's corner pixels are sampled at torchvision's resize positions (pixel centres, align_corners
        # False): output pixel i of S reads crop coordinate (i + 1/2) x size / S - 1/2
        size = self.image_size
        height, width = p["height"].float(), p["width"].float()
        top = p["top"].float() + height / (2 * size) - 0.5
        left = p["left"].float() + width / (2 * size) - 0.5
        bottom, right = top + height * (size - 1) / size, left + width * (size - 1) / size
        boxes = torch.stack([torch.stack([left, top], 1), torch.stack([right, top], 1),
                             torch.stack([right, bottom], 1), torch.stack([left, bottom], 1)], 1)
        x = crop_and_resize(images.float() / 255.0, boxes, (size, size), padding_mode="border",
                            align_corners=True).clamp_(0.0, 1.0)
        x = torch.where(p["flip"][:, None, None, None], x.flip(-1), x)
        adjust = (adjust_brightness_accumulative, adjust_contrast_with_mean_subtraction,
                  adjust_saturation_with_gray_subtraction, adjust_hue)
        for position in range(4):
            for k, function in enumerate(adjust):
                images_here = chosen[4 * position + k]
                if len(images_here):  # a shape, known on the host
                    x[images_here] = function(x[images_here], factors[images_here, k]).clamp(0.0, 1.0)
        gray = rgb_to_grayscale(x).expand_as(x)
        x = torch.where(p["grayscale"][:, None, None, None], gray, x)
        return (x - mean[:, None, None]) / std[:, None, None]

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], device: torch.device | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Both views of a loaded batch, made on ``device`` (where it is, by default)."""
        images, sizes, labels = batch
        device = device or images.device
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        first, second = self.draw(sizes), self.draw(sizes)  # sizes stay on the host: no wait for the device
        return self.view(images, first), self.view(images, second), labels


def mask_spans(n: int, size: int, mask_param: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """torchaudio's ``mask_along_axis`` draw, once per example: a width uniform in [0, mask_param), a start
    uniform in [0, size - width); the span [start, end) is masked."""
    uniforms = torch.rand(n, 2, generator=generator)
    width = uniforms[:, 0] * mask_param
    start = uniforms[:, 1] * (size - width)
    return start.long(), start.long() + width.long()


def beta_10_10(n: int, generator: torch.Generator) -> torch.Tensor:
    """Beta(10, 10) draws (mixup's weight in the reference code) from one generator: the 10th smallest of 19
    uniforms has exactly that distribution."""
    return torch.rand(n, 19, generator=generator, dtype=torch.float64).sort(dim=1).values[:, 9].float()


class AudioBatchAugment:
    """AudioCSE's augmentation of a whole batch of cached fbanks, on the batch's device: mixup (with probability
    ``mixup``, a Beta(10, 10) weight and a partner drawn from the batch), then one frequency and one time mask
    per clip, as the reference code (AST's loader) does per clip. Returns the same input twice (the two views
    come from dropout) and the labels (mixup keeps the label of the larger share, as the reference's argmax).

    The reference mixes waveforms and computes the fbank of the mix; a cached fbank can only be mixed as what it
    measures, so the mel energies are mixed: log(w^2 e^a + (1 - w)^2 e^b), the energy of w x + (1 - w) y without
    the cross term of the two signals, which averages out over a mel band (tests/test_batch_augment.py measures
    how close it comes). The partner is another clip of the same batch, not of the whole set.
    """

    def __init__(self, freq_mask: int, time_mask: int, mixup: float, seed: int):
        self.freq_mask, self.time_mask, self.mixup = freq_mask, time_mask, mixup
        self.generator = torch.Generator().manual_seed(seed)

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def restore(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    def draw(self, n: int, frames: int, mel_bins: int) -> dict[str, torch.Tensor]:
        """Every random choice for a batch of ``n`` fbanks of (frames, mel_bins), on the CPU."""
        g = self.generator
        mix = torch.rand(n, generator=g) < self.mixup
        weight = beta_10_10(n, g)
        partner = torch.randint(0, n, (n,), generator=g)
        freq_start, freq_end = mask_spans(n, mel_bins, self.freq_mask, g)
        time_start, time_end = mask_spans(n, frames, self.time_mask, g)
        return {"mix": mix, "weight": weight, "partner": partner, "freq_start": freq_start, "freq_end": freq_end,
                "time_start": time_start, "time_end": time_end}

    def apply(self, fbanks: torch.Tensor, frames: torch.Tensor, labels: torch.Tensor,
              params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The augmented fbanks (float32) and labels, from drawn ``params``; ``frames`` counts each clip's frames
        that hold sound (zero padding after them)."""
        p = dict(zip(params, to_device(list(params.values()), fbanks.device)))
        x = fbanks.float()
        n, length, mel_bins = x.shape
        time = torch.arange(length, device=x.device)
        sounding = time[None, :] < frames[:, None]  # (n, frames)
        partner = p["partner"]
        w = p["weight"][:, None, None]
        # mel energies: the partner's padding is silence (no energy), not the padding's log energy 0
        energy = w ** 2 * torch.exp(x) + (1 - w) ** 2 * torch.exp(x[partner]) * sounding[partner][:, :, None]
        mixed = torch.where(sounding[:, :, None], torch.log(energy), x)  # the clip's own padding stays
        x = torch.where(p["mix"][:, None, None], mixed, x)
        labels = torch.where(p["mix"] & (p["weight"] < 0.5), labels[partner], labels)
        bins = torch.arange(mel_bins, device=x.device)
        masked = (((bins[None, :] >= p["freq_start"][:, None]) & (bins[None, :] < p["freq_end"][:, None]))[:, None, :]
                  | ((time[None, :] >= p["time_start"][:, None]) & (time[None, :] < p["time_end"][:, None]))[:, :, None])
        return x.masked_fill(masked, 0.0), labels

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], device: torch.device | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fbanks, frames, labels = batch
        device = device or fbanks.device
        params = self.draw(*fbanks.shape)
        fbanks, labels = self.apply(fbanks.to(device, non_blocking=True), frames.to(device, non_blocking=True),
                                    labels.to(device, non_blocking=True), params)
        return fbanks, fbanks, labels


def batch_augment_for(recipe, seed: int) -> ImageBatchAugment | AudioBatchAugment:
    """The batch augmentation of a recipe's cached pipeline (its image or audio side), drawing from ``seed``."""
    if recipe.modality == "image":
        return ImageBatchAugment(recipe.image_size, recipe.modality_data, seed)
    return AudioBatchAugment(recipe.spec_freq_mask, recipe.spec_time_mask, recipe.audio_mixup, seed)
