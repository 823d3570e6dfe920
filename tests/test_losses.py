"""Each loss against a plain loop written here from the papers' formulas, values and gradients."""

import math

import pytest
import torch

from nlsup_kit.errors import NlsupError
from nlsup_kit.losses import (MODALITY_LOSSES, InfoNCELoss, NTXentLoss, ReleasedSupConLoss, SupConLoss,
                              SupervisedSimCSELoss, modality_loss)


def cos(a, b):
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def loop_infonce(z1, z2, t, z3=None, w=0.0):
    total = 0.0
    for i in range(len(z1)):
        logits = [cos(z1[i], z2[j]) / t for j in range(len(z2))]
        if z3 is not None:
            logits += [cos(z1[i], z3[j]) / t + (w if i == j else 0.0) for j in range(len(z3))]
        total += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
    return total / len(z1)


def loop_supcon(features, labels, t, base_t):
    """Khosla et al. eq. 2 (L_out), anchors = every view of every example."""
    batch, views, _ = features.shape
    items = [(features[b, v], int(labels[b])) for v in range(views) for b in range(batch)]
    losses = []
    for a, (fa, la) in enumerate(items):
        denominator = sum(math.exp(cos(fa, fk) / t) for k, (fk, _) in enumerate(items) if k != a)
        positives = [p for p, (_, lp) in enumerate(items) if p != a and lp == la]
        if not positives:
            continue
        terms = [cos(fa, items[p][0]) / t - math.log(denominator) for p in positives]
        losses.append(-(t / base_t) * sum(terms) / len(positives))
    return sum(losses) / len(losses)


def loop_released(z1, z2, labels, t):
    distinct = sorted(set(int(x) for x in labels))
    total = 0.0
    for i in range(len(z1)):
        target = distinct.index(int(labels[i]))
        logits = [cos(z1[i], z2[j]) / t for j in range(len(z2))]
        total += -(logits[target] - math.log(sum(math.exp(v) for v in logits)))
    return total / len(z1)


def numeric_grad(loop_fn, inputs, which, eps=1e-6):
    """Central differences of the loop reference with respect to ``inputs[which]``."""
    inputs = [t.detach().clone() for t in inputs]
    flat = inputs[which].view(-1)
    grad = torch.zeros_like(flat)
    for k in range(flat.numel()):
        old = flat[k].item()
        flat[k] = old + eps
        up = loop_fn(*inputs)
        flat[k] = old - eps
        down = loop_fn(*inputs)
        flat[k] = old
        grad[k] = (up - down) / (2 * eps)
    return grad.view_as(inputs[which])


def check(module_fn, loop_fn, *tensors):
    """The real module against the loop: in float32 (what training uses) at a float32 tolerance, then in float64
    (the module keeps float64 inputs in float64) for value and gradients to central differences."""
    single = [t.float() for t in tensors]
    assert module_fn(*single).dtype == torch.float32
    assert module_fn(*single).item() == pytest.approx(loop_fn(*single), rel=2e-6, abs=1e-6)
    tensors = [t.clone().double().requires_grad_(True) for t in tensors]
    value = module_fn(*tensors)
    assert value.dtype == torch.float64
    value.backward()
    assert value.item() == pytest.approx(loop_fn(*[t.detach() for t in tensors]), rel=1e-9, abs=1e-9)
    for which, t in enumerate(tensors):
        torch.testing.assert_close(t.grad, numeric_grad(loop_fn, tensors, which), rtol=1e-5, atol=1e-6)


def test_half_precision_embeddings_are_compared_in_float32():
    torch.manual_seed(6)
    a, b = torch.randn(4, 8), torch.randn(4, 8)
    got = InfoNCELoss(0.05)(a.bfloat16(), b.bfloat16())
    assert got.dtype == torch.float32
    # the loop on the same bf16-rounded numbers, computed in float64
    assert got.item() == pytest.approx(loop_infonce(a.bfloat16().double(), b.bfloat16().double(), 0.05), rel=1e-5)


def test_infonce_matches_loop():
    torch.manual_seed(0)
    check(InfoNCELoss(0.05), lambda a, b: loop_infonce(a, b, 0.05), torch.randn(5, 4), torch.randn(5, 4))


@pytest.mark.parametrize("weight", [0.0, 1.5])
def test_supervised_simcse_matches_loop(weight):
    torch.manual_seed(1)
    check(SupervisedSimCSELoss(0.05, weight), lambda a, b, c: loop_infonce(a, b, 0.05, c, weight),
          torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3))


@pytest.mark.parametrize("views", [1, 2, 3])  # one view: label 2's anchor has no positive and does not count
def test_supcon_matches_loop(views):
    torch.manual_seed(2)
    labels = torch.tensor([0, 1, 0, 2, 1])
    check(lambda f: SupConLoss(0.07, 0.1)(f, labels), lambda f: loop_supcon(f, labels, 0.07, 0.1),
          torch.randn(5, views, 4))


def test_ntxent_is_supcon_with_unique_labels_and_matches_loop():
    torch.manual_seed(3)
    features = torch.randn(4, 2, 3)
    check(lambda f: NTXentLoss(0.5)(f), lambda f: loop_supcon(f, torch.arange(4), 0.5, 0.5), features)


def test_released_supcon_matches_loop_and_is_not_supcon():
    torch.manual_seed(4)
    labels = torch.tensor([7, 3, 7, 9, 3, 3])
    check(lambda a, b: ReleasedSupConLoss(0.07)(a, b, labels), lambda a, b: loop_released(a, b, labels, 0.07),
          torch.randn(6, 4), torch.randn(6, 4))
    z = torch.randn(6, 4)
    real = modality_loss("supcon", 0.07)(z, z, labels)
    assert abs(ReleasedSupConLoss(0.07)(z, z, labels).item() - real.item()) > 1e-3


def test_infonce_equals_sentence_transformers_mnrl():
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    torch.manual_seed(5)
    anchors, positives = torch.randn(16, 8), torch.randn(16, 8)
    mnrl = MultipleNegativesRankingLoss(model=None, scale=20.0)
    expected = mnrl.compute_loss_from_embeddings([anchors, positives], labels=None)
    torch.testing.assert_close(InfoNCELoss(0.05)(anchors, positives), expected, rtol=1e-5, atol=1e-6)


def test_every_modality_loss_is_a_module_called_with_two_views_and_labels():
    torch.manual_seed(6)
    z1, z2, labels = torch.randn(6, 4), torch.randn(6, 4), torch.tensor([0, 1, 0, 2, 1, 2])
    stacked = torch.stack([z1, z2], dim=1)
    expected = {"supcon": SupConLoss(0.1)(stacked, labels), "simclr": NTXentLoss(0.1)(stacked),
                "released-supcon": ReleasedSupConLoss(0.1)(z1, z2, labels)}
    for name in MODALITY_LOSSES:
        loss = modality_loss(name, 0.1)
        assert isinstance(loss, torch.nn.Module), name
        torch.testing.assert_close(loss(z1, z2, labels), expected[name], rtol=0, atol=0)
    with pytest.raises(NlsupError, match="unknown modality_loss 'supcom'"):
        modality_loss("supcom", 0.1)


@pytest.mark.parametrize("name", ["supcon", "simclr", "released-supcon"])
def test_loss_levels_are_what_the_loss_module_gives_at_uniform_and_at_its_best(name):
    from nlsup_kit.losses import label_ranks, loss_levels

    batch, classes = 6, 3
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    loss = modality_loss(name, 0.001)   # a tiny temperature: the best embedding's softmax is all but exact
    levels = loss_levels(name, batch, classes)
    same = torch.ones(batch, 4)         # every cosine equal: uniform rows
    assert levels["uniform"] == pytest.approx(loss(same, same, labels).item(), abs=1e-6)
    directions = torch.eye(batch)
    if name == "supcon":                # each class one direction, the classes orthogonal
        best = (directions[labels], directions[labels])
    elif name == "simclr":              # each example its own direction, both views on it
        best = (directions, directions)
    else:                               # each anchor on the column its target names
        best = (directions[label_ranks(labels)], directions)
    assert levels["floor"] == pytest.approx(loss(*best, labels).item(), abs=1e-4)
    assert levels["floor"] < levels["uniform"]
