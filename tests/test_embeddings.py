"""Image and audio patch embeddings, alone and through a real backbone's shared layers."""

import numpy as np
import pytest
import torch

from nlsup_kit.embeddings import AudioPatchEmbedding, ImagePatchEmbedding, ModalityBranch, kaldi_fbank


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


def test_image_embedding_rejects_width_mismatch(tmp_path):
    from transformers import ViTConfig, ViTModel

    from nlsup_kit.errors import NlsupError

    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=8)).save_pretrained(tmp_path)
    with pytest.raises(NlsupError, match="hidden size 32"):
        ImagePatchEmbedding.from_vit(str(tmp_path), hidden_size=384)


def test_kaldi_fbank_matches_torchaudio_and_pads():
    from torchaudio.compliance.kaldi import fbank

    wave = torch.sin(torch.linspace(0, 2000, 8000)) * 0.3
    ours = kaldi_fbank(wave, 16000, num_mel_bins=64, target_frames=100)
    direct = fbank((wave - wave.mean()).unsqueeze(0), htk_compat=True, sample_frequency=16000, use_energy=False,
                   window_type="hanning", num_mel_bins=64, dither=0.0, frame_shift=10)
    assert ours.shape == (100, 64)
    torch.testing.assert_close(ours[: len(direct)], direct)
    assert torch.all(ours[len(direct):] == 0)
    assert kaldi_fbank(torch.zeros(50), 16000, 64, 10).shape == (10, 64)  # shorter than one window


def test_audio_patches_count():
    embedding = AudioPatchEmbedding(hidden_size=16, num_mel_bins=128, target_frames=1024, patch_size=24)
    tokens = embedding(torch.randn(2, 1024, 128))
    assert tokens.shape == (2, 1 + (128 // 24) * (1024 // 24), 16) == (2, 211, 16)


@pytest.mark.parametrize("family", ["tiny_model", "tiny_roberta"])
@pytest.mark.parametrize("modality", ["image", "audio"])
def test_branch_runs_through_shared_layers_and_trains_them(request, family, modality):
    from nlsup_kit.encoder import SentenceEncoder

    encoder = SentenceEncoder.from_pretrained(str(request.getfixturevalue(family)))
    if modality == "image":
        branch, inputs = ModalityBranch(ImagePatchEmbedding(32, 16, 8), 32), torch.randn(4, 3, 16, 16)
    else:
        branch, inputs = ModalityBranch(AudioPatchEmbedding(32, 32, 64, 16), 32), torch.randn(4, 64, 32)
    z = branch(encoder, inputs)
    assert z.shape == (4, 32)
    z.sum().backward()
    layer = encoder.backbone.encoder.layer[0].attention.self.query.weight
    assert layer.grad is not None and layer.grad.abs().sum() > 0
    assert encoder.backbone.embeddings.word_embeddings.weight.grad is None  # word embeddings are skipped


def test_real_backbone_takes_image_and_audio_tokens(minilm):
    image = ModalityBranch(ImagePatchEmbedding(384, 32, 8), 384)
    audio = ModalityBranch(AudioPatchEmbedding(384, 128, 128, 16), 384)
    assert image(minilm, torch.randn(2, 3, 32, 32)).shape == (2, 384)
    assert audio(minilm, torch.randn(2, 128, 128)).shape == (2, 384)
    out = minilm.encode_tokens(ImagePatchEmbedding(384, 32, 8)(torch.randn(1, 3, 32, 32)))
    assert out.shape == (1, 17, 384) and np.isfinite(out.detach().numpy()).all()
