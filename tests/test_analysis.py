"""The embedding-space measures on hand-made points, where the answer can be worked out on paper."""

import torch

from nlsup_kit.analysis import knn_accuracy, trunk_vectors


def test_knn_accuracy_on_points_worked_out_by_hand():
    # two tight pairs: (1, 0) with (0.9, 0.1), and (0, 1) with (0.1, 0.9)
    points = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert knn_accuracy(points, torch.tensor([0, 0, 1, 1]), k=1) == 1.0  # each one's neighbour is its partner
    assert knn_accuracy(points, torch.tensor([0, 1, 0, 1]), k=1) == 0.0  # each partner is of the other class
    # k=3 votes among all the others: point 0 sees labels 0, 1, 1 -> 1 (wrong); so do the rest by symmetry
    assert knn_accuracy(points, torch.tensor([0, 0, 1, 1]), k=3) == 0.0
    # scale does not matter (cosine), and a point is never its own neighbour
    assert knn_accuracy(points * torch.tensor([[5.0], [1.0], [3.0], [0.5]]), torch.tensor([0, 0, 1, 1]), k=1) == 1.0


def test_trunk_vectors_are_the_shared_layers_cls_before_the_branch_head(minilm):
    from nlsup_kit.embeddings import BranchConfig, ModalityBranch

    torch.manual_seed(0)
    branch = ModalityBranch(BranchConfig("image", minilm.hidden_size, patch_size=8, image_size=16))
    images = torch.randn(5, 3, 16, 16)
    got = trunk_vectors(branch, minilm, images, batch_size=2)
    with torch.no_grad():
        tokens = branch.embedding(images)
        expected = minilm.backbone.encoder(tokens).last_hidden_state[:, 0]  # HF's own layer stack, no mask
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_normalised_digits_match_training_normalisation():
    from nlsup_kit.data.images import digits, normalised_digits

    plain, normalised = digits(16), normalised_digits(16)
    assert torch.equal(normalised.labels, plain.labels)
    torch.testing.assert_close(normalised.images, plain.images * 2 - 1)  # (x - 0.5) / 0.5
    assert normalised.images.min() >= -1 and normalised.images.max() <= 1
