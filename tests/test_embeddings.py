"""Image and audio patch embeddings, alone and through a real backbone's shared layers."""

import numpy as np
import pytest
import torch

from nlsup_kit.data.audio import kaldi_fbank
from nlsup_kit.embeddings import AudioPatchEmbedding, BranchConfig, ImagePatchEmbedding, ModalityBranch


def test_image_embedding_loads_hf_vit_and_matches_its_output(tmp_path):
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=8, hidden_dropout_prob=0.0)
    torch.manual_seed(0)
    ViTModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    vit = ViTModel.from_pretrained(str(tmp_path)).eval()
    ours = ImagePatchEmbedding.from_vit(str(tmp_path), hidden_size=32).eval()
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(pixels), vit.embeddings(pixels))
    assert ours(pixels).shape == (3, 1 + 16, 32)


def test_a_saved_branch_loads_back_by_itself_without_the_vit_it_started_from(tiny_model, tmp_path):
    """The saved config records the shape the ViT gave (image 48, patches 16), so loading needs no hub."""
    import shutil

    from transformers import ViTConfig, ViTModel

    from nlsup_kit.checkpoint import write_manifest
    from nlsup_kit.encoder import SentenceEncoder

    encoder = SentenceEncoder.from_pretrained(str(tiny_model)).eval()
    ViTModel(ViTConfig(hidden_size=encoder.hidden_size, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64, image_size=48, patch_size=16)).save_pretrained(tmp_path / "vit")
    branch = ModalityBranch.with_vit_embeddings(str(tmp_path / "vit"), encoder.hidden_size).eval()
    assert (branch.config.image_size, branch.config.patch_size) == (48, 16)
    (tmp_path / "save").mkdir()
    branch.save(tmp_path / "save")
    write_manifest(tmp_path / "save")
    shutil.rmtree(tmp_path / "vit")
    loaded = ModalityBranch.load(tmp_path / "save")
    assert loaded.config == branch.config
    pixels = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(encoder, pixels), branch(encoder, pixels), rtol=0, atol=0)


def test_image_embedding_rejects_width_mismatch(tmp_path):
    from transformers import ViTConfig, ViTModel

    from nlsup_kit.errors import NlsupError

    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=8)).save_pretrained(tmp_path)
    with pytest.raises(NlsupError, match="hidden size 32"):
        ImagePatchEmbedding.from_vit(str(tmp_path), hidden_size=384)


def reference_fbank(wave: np.ndarray, num_mel_bins: int) -> np.ndarray:
    """Kaldi's log-mel filterbank written out from its documentation, in float64 (what SSAST/AST and the
    reference code ask torchaudio for: 16 kHz, 25 ms Hanning frames every 10 ms, no dither, pre-emphasis 0.97,
    DC removed per frame, power spectrum on 512 points, triangular mel bins from 20 Hz to Nyquist on
    mel = 1127 ln(1 + f/700), natural log floored at float32's epsilon). The clip's mean is removed first."""
    rate, length, shift, fft = 16000, 400, 160, 512
    wave = wave - wave.mean()
    frames = np.stack([wave[i * shift: i * shift + length] for i in range(1 + (len(wave) - length) // shift)])
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = np.concatenate([frames[:, :1] * (1 - 0.97), frames[:, 1:] - 0.97 * frames[:, :-1]], axis=1)
    frames = frames * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / (length - 1)))
    power = np.abs(np.fft.rfft(frames, n=fft)) ** 2  # 257 bins, the last (Nyquist) gets no mel weight
    mel = lambda f: 1127 * np.log(1 + f / 700)  # noqa: E731
    edges = np.linspace(mel(20), mel(rate / 2), num_mel_bins + 2)
    bin_mel = mel(np.arange(fft // 2) * rate / fft)
    weights = np.zeros((num_mel_bins, fft // 2 + 1))
    for b in range(num_mel_bins):
        left, centre, right = edges[b], edges[b + 1], edges[b + 2]
        weights[b, : fft // 2] = np.maximum(0, np.minimum((bin_mel - left) / (centre - left),
                                                          (right - bin_mel) / (right - centre)))
    return np.log(np.maximum(power @ weights.T, np.finfo(np.float32).eps))


def test_kaldi_fbank_matches_the_documented_computation_and_pads():
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t) + 0.01 * rng.standard_normal(8000)
    ours = kaldi_fbank(torch.tensor(wave, dtype=torch.float32), 16000, num_mel_bins=64, target_frames=100)
    expected = reference_fbank(wave, 64)
    assert ours.shape == (100, 64) and expected.shape == (48, 64)  # 1 + (8000 - 400) // 160 frames
    np.testing.assert_allclose(ours[:48].numpy(), expected, atol=2e-3, rtol=1e-4)
    assert torch.all(ours[48:] == 0)
    assert kaldi_fbank(torch.zeros(50), 16000, 64, 10).shape == (10, 64)  # shorter than one window


def test_audio_patches_match_an_independent_patching():
    """Patch (m, t) covers mel bins m*p.. and frames t*p..; tokens run over mel rows first, then time, after
    [CLS]. Frames and mel bins differ in number, so a lost (frames, mel) transpose cannot pass."""
    torch.manual_seed(0)
    p, frames, mel = 4, 12, 8
    embedding = AudioPatchEmbedding(hidden_size=5, num_mel_bins=mel, target_frames=frames, patch_size=p)
    fbank = torch.randn(2, frames, mel)
    tokens = embedding(fbank).detach()
    assert tokens.shape == (2, 1 + (mel // p) * (frames // p), 5)
    weight, bias = embedding.projection.weight[:, 0].detach(), embedding.projection.bias.detach()
    for b in range(2):
        torch.testing.assert_close(tokens[b, 0], embedding.cls_token[0, 0].detach())
        for m in range(mel // p):
            for t in range(frames // p):
                patch = fbank[b, t * p:(t + 1) * p, m * p:(m + 1) * p].T  # (mel, time)
                expected = (weight * patch).sum(dim=(1, 2)) + bias
                torch.testing.assert_close(tokens[b, 1 + m * (frames // p) + t], expected)


def test_audio_patch_count_at_the_paper_size():
    embedding = AudioPatchEmbedding(hidden_size=16, num_mel_bins=128, target_frames=1024, patch_size=24)
    assert embedding(torch.randn(1, 1024, 128)).shape == (1, 1 + 5 * 42, 16)  # 210 patches + [CLS]


@pytest.mark.parametrize("family", ["tiny_model", "tiny_roberta"])
@pytest.mark.parametrize("modality", ["image", "audio"])
def test_branch_runs_through_shared_layers_and_trains_them(request, family, modality):
    from nlsup_kit.encoder import SentenceEncoder

    encoder = SentenceEncoder.from_pretrained(str(request.getfixturevalue(family)))
    if modality == "image":
        branch, inputs = ModalityBranch(BranchConfig("image", 32, 8, image_size=16)), torch.randn(4, 3, 16, 16)
    else:
        branch, inputs = ModalityBranch(BranchConfig("audio", 32, 16, mel_bins=32, frames=64)), torch.randn(4, 64, 32)
    z = branch(encoder, inputs)
    assert z.shape == (4, 32)
    z.sum().backward()
    layer = encoder.backbone.encoder.layer[0].attention.self.query.weight
    assert layer.grad is not None and layer.grad.abs().sum() > 0
    assert encoder.backbone.embeddings.word_embeddings.weight.grad is None  # word embeddings are skipped


def test_real_backbone_takes_image_and_audio_tokens(minilm):
    image = ModalityBranch(BranchConfig("image", 384, 8, image_size=32))
    audio = ModalityBranch(BranchConfig("audio", 384, 16, mel_bins=128, frames=128))
    assert image(minilm, torch.randn(2, 3, 32, 32)).shape == (2, 384)
    assert audio(minilm, torch.randn(2, 128, 128)).shape == (2, 384)
    out = minilm.encode_tokens(ImagePatchEmbedding(384, 32, 8)(torch.randn(1, 3, 32, 32)))
    assert out.shape == (1, 17, 384) and np.isfinite(out.detach().numpy()).all()


def test_shuffled_patches_move_whole_squares_so_the_embedding_sees_the_same_patches_reordered():
    from nlsup_kit.embeddings.audio import AudioPatchEmbedding, shuffled_patches

    torch.manual_seed(0)
    embedding = AudioPatchEmbedding(8, num_mel_bins=20, target_frames=50, patch_size=8)  # leftovers: 4 bins, 2 frames
    fbank = torch.randn(2, 50, 20)
    order = torch.randperm(embedding.num_patches)
    moved = shuffled_patches(fbank, 8, order)
    assert not torch.equal(moved, fbank)
    assert torch.equal(moved[:, 48:], fbank[:, 48:]) and torch.equal(moved[:, :, 16:], fbank[:, :, 16:])
    # patch k of the moved fbank, cut out by hand: the square the embedding reads as patch order[k] of the original
    grid_columns = 50 // 8
    def square(x, k):
        row, column = divmod(int(k), grid_columns)
        return x[:, column * 8:(column + 1) * 8, row * 8:(row + 1) * 8]
    for k in range(embedding.num_patches):
        assert torch.equal(square(moved, k), square(fbank, order[k]))
    with torch.no_grad():
        assert torch.allclose(embedding(moved)[:, 1:], embedding(fbank)[:, 1:][:, order], atol=1e-6)
