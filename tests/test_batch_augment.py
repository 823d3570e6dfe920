"""The cached pipeline's batch augmentation draws what torchvision's per-image SimCLR transform draws: crop
boxes compared with torchvision's own RandomResizedCrop.get_params, colours with torchvision's whole transform
on a one-colour image (where crop and flip change nothing), each over thousands of draws (two-sample
Kolmogorov-Smirnov, fixed seeds); a drawn crop is applied as torchvision's resized_crop applies it."""

import math
from itertools import permutations

import pytest
import torch
from scipy.stats import ks_2samp
from torchvision import transforms as v1
from torchvision.transforms.v2 import functional as TF

from nlsup_kit.data.batch_augment import AudioBatchAugment, ImageBatchAugment, crop_boxes
from nlsup_kit.data.images import IMAGENET_MEAN, IMAGENET_STD, padded_batch, simclr_augment

DRAWS = 4000
SAME = 1e-3  # a KS p-value below this says the two samples come from different distributions


def torchvision_boxes(height: int, width: int) -> torch.Tensor:
    torch.manual_seed(0)
    image = torch.zeros(3, height, width)
    return torch.tensor([v1.RandomResizedCrop.get_params(image, (0.2, 1.0), (3 / 4, 4 / 3))
                         for _ in range(DRAWS)], dtype=torch.float64)


def kit_boxes(height: int, width: int) -> torch.Tensor:
    sizes = torch.tensor([[height, width]] * DRAWS)
    return torch.stack(crop_boxes(sizes[:, 0], sizes[:, 1], torch.Generator().manual_seed(1)), 1).double()


@pytest.mark.parametrize("height,width", [(60, 80), (160, 213), (12, 200)])  # the last mostly falls back
def test_crop_boxes_are_drawn_as_torchvision_draws_them(height, width):
    theirs, ours = torchvision_boxes(height, width), kit_boxes(height, width)
    for boxes in (theirs, ours):
        top, left, h, w = boxes.T
        assert (top >= 0).all() and (left >= 0).all() and (top + h <= height).all() and (left + w <= width).all()
    measures = {
        "area": lambda b: b[:, 2] * b[:, 3] / (height * width),
        "aspect": lambda b: torch.log(b[:, 3] / b[:, 2]),
        "top": lambda b: (b[:, 0] + 0.5) / (height - b[:, 2] + 1),  # where in its free range the box sits
        "left": lambda b: (b[:, 1] + 0.5) / (width - b[:, 3] + 1),
    }
    for name, measure in measures.items():
        p = ks_2samp(measure(theirs).numpy(), measure(ours).numpy()).pvalue
        assert p > SAME, f"{name}: KS p={p:.2g}"


def one_colour_views(rgb: tuple[float, float, float], size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """DRAWS augmented views of a one-colour image by torchvision's transform and by the batch augmentation,
    as colours in [0, 1] (the normalisation undone)."""
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None], torch.tensor(IMAGENET_STD)[:, None]
    pixels = torch.tensor(rgb)[:, None, None].expand(3, size, size)
    image = (pixels * 255).round().to(torch.uint8)
    torch.manual_seed(0)
    transform = simclr_augment(size)
    # torchvision on the float image: the same draws, without the per-item path's rounding to uint8 after
    # every adjustment (which the batch augmentation, computing in float, does not do)
    theirs = torch.stack([transform(image.float() / 255).flatten(1).mean(1) for _ in range(DRAWS)])
    augment = ImageBatchAugment(size, "imagenette", seed=3)
    first, second, _ = augment(padded_batch([(image, 0)] * (DRAWS // 2)))
    ours = torch.cat([first, second]).flatten(2).mean(2)
    return theirs * std.T + mean.T, ours * std.T + mean.T


def test_colours_are_jittered_and_greyed_as_torchvision_does():
    theirs, ours = one_colour_views((0.7, 0.45, 0.2))
    # a fifth of the views keep their colour and a fifth turn grey: atoms in both samples, which rounding noise
    # (1e-7) would place a hair apart; compared on a 1e-4 grid, each atom is one value again
    on_grid = lambda views: (views * 1e4).round().numpy()  # noqa: E731
    for channel in range(3):
        p = ks_2samp(on_grid(theirs[:, channel]), on_grid(ours[:, channel])).pvalue
        assert p > SAME, f"channel {channel}: KS p={p:.2g}"
    grey = lambda views: ((views.max(1).values - views.min(1).values) < 1e-3).double().mean().item()  # noqa: E731
    bound = 4 * math.sqrt(0.2 * 0.8 / DRAWS)  # grayscale p 0.2 (a jitter never makes this colour grey)
    assert abs(grey(ours) - 0.2) < bound and abs(grey(theirs) - 0.2) < bound


def test_flips_and_jitters_are_drawn_at_their_rates():
    augment = ImageBatchAugment(8, "imagenette", seed=5)
    drawn = augment.draw(torch.tensor([[20, 30]] * DRAWS))
    for key, rate in (("flip", 0.5), ("jitter", 0.8), ("grayscale", 0.2)):
        assert abs(drawn[key].double().mean().item() - rate) < 4 * math.sqrt(rate * (1 - rate) / DRAWS), key
    assert sorted(map(tuple, drawn["order"].unique(dim=0).tolist())) == sorted(permutations(range(4)))
    factors = drawn["factors"]
    for k, (low, high) in enumerate([(0.6, 1.4)] * 3 + [(-0.1, 0.1)]):
        assert low <= factors[:, k].min() and factors[:, k].max() <= high
        assert ks_2samp(factors[:, k].numpy(), torch.empty(DRAWS).uniform_(low, high).numpy()).pvalue > SAME


@pytest.mark.parametrize("flip", [False, True])
def test_a_drawn_crop_is_applied_as_torchvision_resized_crop_applies_it(flip):
    """No jitter, no grey: the view is the crop of the box, resized, as torchvision computes it without
    antialiasing (upscaling: both interpolate bilinearly), up to the outermost pixels (half a pixel of
    context), on an image narrower than the other in its batch (read through the padding)."""
    torch.manual_seed(0)
    small = torch.randint(0, 256, (3, 40, 50), dtype=torch.uint8)
    large = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    augment = ImageBatchAugment(48, "imagenette", seed=0)
    images, sizes, _ = padded_batch([(small, 0), (large, 1)])
    box = {"top": torch.tensor([7, 0]), "left": torch.tensor([21, 0]), "height": torch.tensor([33, 64]),
           "width": torch.tensor([29, 64])}  # the first reaches the small image's right and bottom edges
    params = {**box, "factors": torch.tensor([[1.0, 1.0, 1.0, 0.0]] * 2), "order": torch.tensor([[0, 1, 2, 3]] * 2),
              "flip": torch.tensor([flip, flip]), "jitter": torch.tensor([False, False]),
              "grayscale": torch.tensor([False, False])}
    ours = augment.view(images, params) * augment.std[:, None, None] + augment.mean[:, None, None]
    for row, image in enumerate((small, large)):
        expected = TF.resized_crop(image.float() / 255, int(box["top"][row]), int(box["left"][row]),
                                   int(box["height"][row]), int(box["width"][row]), [48, 48], antialias=False)
        expected = expected.flip(-1) if flip else expected
        inner = (slice(None), slice(1, -1), slice(1, -1))
        assert torch.allclose(ours[row][inner], expected[inner], atol=1e-4), row
        assert (ours[row] - expected).abs().max() < 0.5  # the border: a blend, never something else


def test_the_same_seed_draws_the_same_views_and_a_restored_state_continues_them():
    batch = padded_batch([(torch.randint(0, 256, (3, 30, 40), dtype=torch.uint8), 0)] * 4)
    augment = ImageBatchAugment(16, "imagenette", seed=7)
    augment(batch)
    state = augment.state()
    after = augment(batch)
    again = ImageBatchAugment(16, "imagenette", seed=0)
    again.restore(state)
    for mine, theirs in zip(after, again(batch)):
        assert torch.equal(mine, theirs)
    assert not torch.equal(after[0], after[1])  # two views of one image differ


# ---- audio: SpecAugment's masks and mixup on a batch of cached fbanks ----------------------------------------

def masked_spans(fbanks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Where each (frames, mel) fbank of ones was masked: its zero rows (time) and columns (frequency)."""
    spans = {}
    for name, axis in (("time", 2), ("freq", 1)):
        zero = (fbanks == 0).all(dim=axis)  # (n, length) along the masked axis
        width = zero.sum(1)
        start = torch.where(width > 0, zero.float().argmax(1), -1)
        spans[f"{name}_width"], spans[f"{name}_start"] = width, start
    return spans


def test_spec_augment_masks_are_drawn_as_torchaudio_draws_them():
    from torchaudio.transforms import FrequencyMasking, TimeMasking

    frames, mel, freq_mask, time_mask = 128, 64, 12, 24
    torch.manual_seed(0)
    theirs = []
    for _ in range(DRAWS):  # the per-clip path: (1, mel, frames), as AudioClips masks
        image = FrequencyMasking(freq_mask)(torch.ones(1, mel, frames))
        theirs.append(TimeMasking(time_mask)(image).squeeze(0).T)
    theirs = masked_spans(torch.stack(theirs))
    augment = AudioBatchAugment(freq_mask, time_mask, mixup=0.0, seed=2)
    ones = torch.ones(DRAWS, frames, mel)
    ours = masked_spans(augment((ones, torch.full((DRAWS,), frames), torch.zeros(DRAWS).long()))[0])
    for key in theirs:
        p = ks_2samp(theirs[key].numpy(), ours[key].numpy()).pvalue
        assert p > SAME, f"{key}: KS p={p:.2g}"
    assert (ours["freq_width"] < freq_mask).all() and (ours["time_width"] < time_mask).all()


def test_mixup_happens_at_its_rate_with_a_beta_10_10_weight_and_the_larger_share_label():
    from scipy.stats import beta

    augment = AudioBatchAugment(12, 24, mixup=0.5, seed=4)
    drawn = augment.draw(DRAWS, 128, 64)
    assert abs(drawn["mix"].double().mean().item() - 0.5) < 4 * math.sqrt(0.25 / DRAWS)
    assert ks_2samp(drawn["weight"].numpy(), beta(10, 10).rvs(DRAWS, random_state=0)).pvalue > SAME
    labels = torch.arange(DRAWS)
    _, mixed_labels = augment.apply(torch.zeros(DRAWS, 128, 64), torch.full((DRAWS,), 128), labels, drawn)
    expected = [int(drawn["partner"][i]) if drawn["mix"][i] and drawn["weight"][i] < 0.5 else i
                for i in range(DRAWS)]
    assert mixed_labels.tolist() == expected


def test_mixing_cached_fbanks_comes_closer_to_the_fbank_of_the_mixed_waveforms_than_mixing_their_logs():
    """The reference mixes waveforms, then computes the fbank. The cached fbanks are mixed as energies; on the
    shipped spoken words (pairs of different lengths, weights from the Beta(10, 10) range) that is measured
    against the true fbank of the mix, beside the plain average of the two log fbanks."""
    from nlsup_kit.data.audio import SPOKEN_WORDS, clip_frames, kaldi_fbank, read_audio, spoken_words_dir

    clips = [read_audio(sorted((spoken_words_dir() / word).iterdir())[0]) for word in SPOKEN_WORDS[:6]]
    mel, length = 64, 128
    fbanks = torch.stack([kaldi_fbank(c, num_mel_bins=mel, target_frames=length) for c in clips])
    frames = torch.tensor([clip_frames(len(c), target_frames=length) for c in clips])
    augment = AudioBatchAugment(0, 0, mixup=1.0, seed=0)
    errors = {"energies": [], "logs": []}
    for weight in (0.3, 0.45, 0.6, 0.75):
        partner = torch.roll(torch.arange(len(clips)), 1)
        params = {"mix": torch.ones(len(clips), dtype=torch.bool), "weight": torch.full((len(clips),), weight),
                  "partner": partner, **{k: torch.zeros(len(clips), dtype=torch.long) for k in
                                         ("freq_start", "freq_end", "time_start", "time_end")}}
        ours, _ = augment.apply(fbanks.half(), frames, torch.zeros(len(clips)).long(), params)
        for i, clip in enumerate(clips):
            other = torch.nn.functional.pad(clips[partner[i]], (0, max(0, len(clip) - len(clips[partner[i]]))))
            truth = kaldi_fbank(weight * clip + (1 - weight) * other[: len(clip)], num_mel_bins=mel,
                                target_frames=length)[: frames[i]]
            logs = (weight * fbanks[i] + (1 - weight) * fbanks[partner[i]])[: frames[i]]
            errors["energies"].append((ours[i, : frames[i]] - truth).abs().mean())
            errors["logs"].append((logs - truth).abs().mean())
    energies, logs = torch.stack(errors["energies"]).mean(), torch.stack(errors["logs"]).mean()
    print(f"mean |error| in log-mel units: mixed energies {energies:.3f}, mixed logs {logs:.3f}")
    assert energies < logs
