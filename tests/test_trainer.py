"""A few real training steps on a tiny backbone: the loss falls, checkpoints load, both modalities run."""

import json

import pytest
import torch

from nlsup_kit.recipes import apply_overrides, get_recipe
from nlsup_kit.trainer import Trainer, train


def tiny_recipe(base, model, *extra):
    return apply_overrides(get_recipe(base), [
        f"model={model}", "max_text_examples=96", "batch_size=16", "learning_rate=5e-4", "eval_steps=1000",
        "log_steps=1", "modality_batch_size=8", "modality_learning_rate=1e-4", "image_size=16", "patch_size=8",
        "audio_frames=64", "audio_patch_size=16", "spec_time_mask=8", "spec_freq_mask=8", *extra])


def optimizer_touched(optimizer, parameter) -> bool:
    """The optimizer holds ``parameter`` and has taken a step with a non-zero gradient for it (AdamW's first
    moment is the gradient's running mean, so it is non-zero exactly when a gradient reached the weight)."""
    held = any(p is parameter for group in optimizer.param_groups for p in group["params"])
    moment = optimizer.state.get(parameter, {}).get("exp_avg")
    return held and moment is not None and bool(moment.abs().sum() > 0)


@pytest.mark.parametrize("base", ["quick-visualcse", "quick-audiocse"])
def test_modality_update_itself_moves_the_shared_layers(tiny_model, data_dir, tmp_path, base):
    """The paper's iteration: the image/audio optimizer updates the shared Transformer layers, not only the
    branch; the text optimizer never sees the branch."""
    trainer = Trainer(tiny_recipe(base, tiny_model, "max_steps=2"), tmp_path / "run", data_dir, progress=False)
    shared = trainer.encoder.backbone.encoder.layer[0].output.dense.weight
    patch = next(trainer.branch.embedding.parameters())
    losses = trainer.iteration.step(next(trainer.text.epoch()), next(trainer.modality_batches))
    assert set(losses) == {"text_loss", "modality_loss"} and all(torch.isfinite(v) for v in losses.values())
    assert optimizer_touched(trainer.iteration.modality_optimizer, shared)
    assert optimizer_touched(trainer.iteration.modality_optimizer, patch)
    assert optimizer_touched(trainer.iteration.text_optimizer, shared)
    assert not any(p is patch for g in trainer.iteration.text_optimizer.param_groups for p in g["params"])


@pytest.mark.parametrize("base", ["quick-visualcse", "quick-audiocse"])
def test_joint_loss_is_one_update_of_everything_by_the_summed_loss(tiny_model, data_dir, tmp_path, base):
    trainer = Trainer(tiny_recipe(base, tiny_model, "max_steps=2", "joint_loss=true"), tmp_path / "run", data_dir,
                      progress=False)
    assert trainer.iteration.modality_optimizer is None
    shared = trainer.encoder.backbone.encoder.layer[0].output.dense.weight
    patch = next(trainer.branch.embedding.parameters())
    losses = trainer.iteration.step(next(trainer.text.epoch()), next(trainer.modality_batches))
    assert set(losses) == {"text_loss", "modality_loss"} and all(torch.isfinite(v) for v in losses.values())
    assert optimizer_touched(trainer.iteration.text_optimizer, shared)
    assert optimizer_touched(trainer.iteration.text_optimizer, patch)  # the modality loss reached the text optimizer


def test_supervised_recipe_trains_on_sick_triples_and_the_hard_negative_enters_the_loss(tiny_model, data_dir,
                                                                                          tmp_path):
    recipe = tiny_recipe("quick-simcse", tiny_model, "supervised=true", "text_data=sick-nli", "max_steps=3",
                         "eval_pooling=cls")
    assert train(recipe, tmp_path / "run", data_dir, progress=False).steps == 3
    losses = []
    for weight in (0.0, 2.0):
        trainer = Trainer(apply_overrides(recipe, [f"hard_negative_weight={weight}"]), tmp_path / f"w{weight}",
                          data_dir, progress=False)
        batch = next(trainer.text.epoch())
        trainer.encoder.eval()  # no dropout: the same embeddings for both weights
        losses.append(trainer.iteration.text_loss_of(batch).item())
    # a larger weight on each anchor's own contradiction makes its positive less likely: the loss grows
    assert losses[1] > losses[0] + 0.05


def test_same_seed_twice_gives_identical_weights_and_sts_scores(tiny_model, data_dir, tmp_path):
    """Two full CPU runs with one seed: every weight and every STS score identical; another seed's weights differ."""
    from nlsup_kit.encoder import SentenceEncoder
    from nlsup_kit.evaluation import evaluate_sts

    scores, weights = [], []
    for name, seed in (("a", 42), ("b", 42), ("c", 7)):
        result = train(tiny_recipe("quick-visualcse", tiny_model, "max_steps=4", "eval_steps=4", f"seed={seed}"),
                       tmp_path / name, data_dir, progress=False)
        encoder = SentenceEncoder.from_pretrained(str(result.best_dir))
        weights.append(torch.cat([p.detach().reshape(-1) for p in encoder.parameters()]))
        if seed == 42:
            report = evaluate_sts(lambda s: encoder.encode(s, "cls_before_pooler", progress=False),
                                  ["STS16", "STSBenchmark"], data_dir)
            scores.append({task: score.spearman for task, score in report.scores.items()})
    assert scores[0] == scores[1] and torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


def test_reuse_returns_a_finished_run_of_the_same_recipe_only(tiny_model, data_dir, tmp_path):
    recipe = tiny_recipe("quick-simcse", tiny_model, "max_steps=2")
    first = train(recipe, tmp_path / "run", data_dir, progress=False)
    stamp = (tmp_path / "run" / "metrics.jsonl").stat().st_mtime_ns
    again = train(recipe, tmp_path / "run", data_dir, progress=False, reuse=True)
    assert again == first and (tmp_path / "run" / "metrics.jsonl").stat().st_mtime_ns == stamp
    changed = train(apply_overrides(recipe, ["max_steps=3"]), tmp_path / "run", data_dir, progress=False, reuse=True,
                    overwrite=True)  # another recipe: trained, and only with overwrite (tests/test_runs.py)
    assert changed.steps == 3


def test_a_mean_pooled_run_trains_without_the_head_and_exports_with_mean_pooling(tiny_model, data_dir, tmp_path):
    """SimCSE's --pooler_type avg: the MLP head is never used, the run is evaluated (and exported) with avg."""
    from sentence_transformers import SentenceTransformer

    from nlsup_kit.encoder import SentenceEncoder
    from nlsup_kit.evaluation import evaluate_sts
    from nlsup_kit.export import export_checkpoint

    recipe = tiny_recipe("quick-simcse", tiny_model, "pooler=avg", "max_steps=3", "eval_steps=3")
    assert recipe.pooling_for_evaluation() == "avg"
    start = Trainer(recipe, tmp_path / "start", data_dir, progress=False).encoder  # the state training starts from
    result = train(recipe, tmp_path / "run", data_dir, progress=False)
    saved = SentenceEncoder.from_pretrained(str(result.best_dir))
    for key, value in start.head.state_dict().items():
        assert torch.equal(saved.head.state_dict()[key], value), key  # no gradient ever reached the head
    layer = "encoder.layer.0.output.dense.weight"
    assert not torch.equal(saved.backbone.state_dict()[layer], start.backbone.state_dict()[layer])
    def dev(pooling):
        report = evaluate_sts(lambda s: saved.encode(s, pooling), ["STSBenchmark"], data_dir, split="dev")
        return report.scores["STSBenchmark"].spearman

    assert result.best_dev == pytest.approx(dev("avg"), abs=1e-9)  # selected by its own pooler
    assert result.best_dev != pytest.approx(dev("cls_before_pooler"), abs=1e-3)
    exported = SentenceTransformer(str(export_checkpoint(result.best_dir, tmp_path / "st")), device="cpu")
    sentences = ["A man is playing a guitar.", "Two dogs run in the park."]
    torch.testing.assert_close(torch.tensor(exported.encode(sentences)), saved.encode(sentences, "avg"),
                               rtol=1e-4, atol=1e-5)


def test_the_text_update_clips_the_text_gradients_alone(tiny_model, data_dir):
    """After the modality update the branch still holds its (clipped) gradients; the text update's clip norm
    must not count them (else every text update is shrunk by the image/audio side's gradients)."""
    import copy

    from nlsup_kit.data.batches import TextBatches
    from nlsup_kit.data.text import load_text_data
    from nlsup_kit.embeddings import build_branch
    from nlsup_kit.encoder import SentenceEncoder
    from nlsup_kit.step import AlternatingStep

    recipe = tiny_recipe("quick-visualcse", tiny_model, "modality_loss_weight=10000")
    encoder = SentenceEncoder.from_pretrained(str(tiny_model)).train()
    branch = build_branch(recipe, encoder.hidden_size).train()
    iteration = AlternatingStep(recipe, encoder, branch, total_steps=10)
    text = next(TextBatches(encoder.tokenizer, load_text_data("wiki", data_dir, 16), 8, 32, 0).epoch())
    images = torch.randn(2, 8, 3, 16, 16)
    iteration.modality_update((images[0], images[1], torch.arange(8) % 3))
    left = float(torch.norm(torch.stack([p.grad.norm() for p in branch.parameters()])))
    assert left > 0.1  # left behind by the modality update
    reference = copy.deepcopy(encoder)
    reference.zero_grad()
    torch.manual_seed(1)  # the same dropout masks in both text passes
    AlternatingStep(recipe, reference, None, total_steps=10).text_loss_of(text).backward()
    raw = [p.grad for p in reference.parameters()]
    raw_norm = torch.norm(torch.stack([g.norm() for g in raw if g is not None]))
    torch.manual_seed(1)
    iteration.text_update(text)
    assert float(raw_norm) ** 2 + left ** 2 > 1.0  # counting the branch would change the clipping here
    scale = min(1.0, 1.0 / (float(raw_norm) + 1e-6))  # clip_grad_norm_'s factor, from the text gradients alone
    for got, want in zip(encoder.parameters(), raw):
        if want is not None:
            torch.testing.assert_close(got.grad, want * scale, rtol=1e-5, atol=1e-9)


def test_simcse_loss_falls_each_evaluation_logs_alignment_and_uniformity_and_the_best_checkpoint_loads(data_dir,
                                                                                                    tmp_path):
    """The offline model, a real recipe, 12 steps: the InfoNCE loss falls; each evaluation logs alignment and
    uniformity as the SimCSE paper measures them (section 5: alignment over STS-B dev pairs scored above 4,
    uniformity over all its sentences), recomputed here in float64 numpy from the saved best model (the offline
    MiniLM: a random tiny model's vectors nearly coincide, and float32 cannot resolve their distances)."""
    import numpy as np

    from nlsup_kit.data.senteval import load_sts_task
    from nlsup_kit.encoder import SentenceEncoder

    recipe = apply_overrides(get_recipe("quick-simcse"), ["max_text_examples=192", "batch_size=16", "pooler=cls",
                                                          "log_steps=1", "eval_steps=6"])  # through avg it starts near 0
    result = train(recipe, tmp_path / "run", data_dir, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["text_loss"] for r in records]
    assert result.steps == 12 == len(losses)
    assert sum(losses[-4:]) / 4 < 0.5 * sum(losses[:4]) / 4
    evaluated = [r for r in records if "stsb_dev" in r]
    assert [r["step"] for r in evaluated] == [6, 12] and result.best_dev == pytest.approx(max(r["stsb_dev"] for r in evaluated))
    best = max(evaluated, key=lambda r: r["stsb_dev"])
    pairs = load_sts_task("STSBenchmark", data_dir, "dev")
    model = SentenceEncoder.from_pretrained(str(result.best_dir))
    assert model.encode(["a test sentence"], "cls_before_pooler").shape == (1, 384)
    sentences = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    vectors = model.encode(sentences).double().numpy()  # [CLS], as the run was scored
    everything = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    row = {sentence: i for i, sentence in enumerate(sentences)}
    a, b = (everything[[row[s] for s in side]] for side in (pairs.sentences1, pairs.sentences2))
    positive = np.asarray(pairs.scores) > 4
    squared = (2 - 2 * everything @ everything.T)[np.triu_indices(len(everything), 1)]  # unit vectors: |x-y|^2
    assert best["alignment"] == pytest.approx(((a[positive] - b[positive]) ** 2).sum(1).mean(), rel=1e-4)
    assert best["uniformity"] == pytest.approx(np.log(np.exp(-2 * squared).mean()), rel=1e-4)


def test_fp16_updates_scale_the_loss_skip_overflows_and_clip_true_gradients(tiny_model, data_dir):
    """The precision of GPUs without bf16 (a Colab T4), run on the CPU: an update whose scaled gradients
    overflow fp16 leaves every weight as it was and halves the scale; a normal one unscales before clipping, so
    the gradients it steps with match the fp32 update's (clipping scaled ones would shrink them by the scale)."""
    import copy

    from nlsup_kit.data.batches import TextBatches
    from nlsup_kit.data.text import load_text_data
    from nlsup_kit.encoder import SentenceEncoder
    from nlsup_kit.step import AlternatingStep

    recipe = tiny_recipe("quick-simcse", tiny_model, "learning_rate=1e-3", "pooler=cls")  # every weight gets a gradient
    start = SentenceEncoder.from_pretrained(str(tiny_model)).train()
    text = next(TextBatches(start.tokenizer, load_text_data("wiki", data_dir, 16), 8, 32, 0).epoch())

    def updated(precision, scale=None):
        encoder = copy.deepcopy(start)
        iteration = AlternatingStep(recipe, encoder, None, total_steps=10, precision=precision)
        if scale is not None:
            iteration.scaler = torch.amp.GradScaler("cpu", init_scale=scale)
        torch.manual_seed(1)  # the same dropout masks in every update
        iteration.text_update(text)
        return encoder, iteration

    overflowed, iteration = updated(torch.float16, scale=2.0 ** 120)
    for got, want in zip(overflowed.parameters(), start.parameters()):
        assert torch.equal(got, want)
    assert iteration.scaler.get_scale() == 2.0 ** 119
    assert iteration.state_dict()["loss_scale"]["scale"] == 2.0 ** 119  # resumes with the scale it reached

    fp16, iteration = updated(torch.float16, scale=2.0 ** 8)
    assert iteration.scaler.get_scale() == 2.0 ** 8  # no overflow: this update was taken
    fp32, _ = updated(None)
    # the gradients each update clipped and stepped with: fp16's are the true ones, up to fp16 rounding
    got, want = (torch.cat([p.grad.flatten() for p in model.parameters()]) for model in (fp16, fp32))
    assert float(want.norm()) > 0.1
    assert float((got - want).norm() / want.norm()) < 0.02


def test_graphed_updates_take_the_same_steps_as_direct_ones(tiny_model, data_dir):
    """The whole-update CUDA graph's data path on the CPU (where nothing is captured): inputs copied into static
    tensors, a capturable AdamW whose learning rate is a tensor the schedules refill. Three iterations on three
    different batches give the weights of three direct iterations, and the rates the schedules' formulas give."""
    import copy
    import math

    from nlsup_kit.data.batches import TextBatches
    from nlsup_kit.data.text import load_text_data
    from nlsup_kit.embeddings import build_branch
    from nlsup_kit.encoder import SentenceEncoder
    from nlsup_kit.step import AlternatingStep

    recipe = tiny_recipe("quick-visualcse", tiny_model, "optimizer=torch-adamw")  # the one a graph can capture
    encoder = SentenceEncoder.from_pretrained(str(tiny_model)).train()
    branch = build_branch(recipe, encoder.hidden_size).train()
    texts = list(TextBatches(encoder.tokenizer, load_text_data("wiki", data_dir, 48), 16, 32, 0).epoch())
    images = torch.randn(3, 2, 8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(8) % 3
    trained = {}
    for graphed in (False, True):
        model, side = copy.deepcopy(encoder), copy.deepcopy(branch)
        iteration = AlternatingStep(recipe, model, side, total_steps=10, update_graphs=graphed)
        torch.manual_seed(1)  # the same dropout masks in both runs
        for text, views in zip(texts, images):
            iteration.step(text, (views[0], views[1], labels))
        trained[graphed] = (model, side, iteration)
    (direct, direct_side, _), (graphed, graphed_side, iteration) = trained[False], trained[True]
    assert set(iteration.graphs) == {"modality", "text"}
    def moved(model, side):  # what the three iterations changed, as one vector
        start = [*encoder.parameters(), *branch.parameters()]
        return torch.cat([(p - q).detach().flatten() for p, q in zip([*model.parameters(), *side.parameters()], start)])

    want, got = moved(direct, direct_side), moved(graphed, graphed_side)
    # not element by element: AdamW's step is about lr x sign for a weight whose gradients are rounding noise
    # (embedding rows, summed in varying order), so a few such weights differ by up to 2 x lr between any runs
    assert float(want.norm()) > 0.01
    assert float((got - want).norm() / want.norm()) < 1e-3
    text_rate = iteration.text_optimizer.param_groups[0]["lr"]
    modality_rate = iteration.modality_optimizer.param_groups[0]["lr"]
    assert torch.is_tensor(text_rate) and torch.is_tensor(modality_rate)
    assert float(text_rate) == pytest.approx(recipe.learning_rate * (10 - 3) / 10)  # linear decay after 3 steps
    assert float(modality_rate) == pytest.approx(recipe.modality_learning_rate * 0.5 * (1 + math.cos(math.pi * 3 / 10)))
    # resuming across kinds of run: a direct run's checkpoint (float rates) into a graphed one and back
    for graphed_run, source in ((True, trained[False][2]), (False, iteration)):
        resumed = AlternatingStep(recipe, copy.deepcopy(encoder), copy.deepcopy(branch), total_steps=10,
                                  update_graphs=graphed_run)
        resumed.load_state_dict(source.state_dict())
        rates = [group["lr"] for group in resumed.text_optimizer.param_groups]
        assert all(torch.is_tensor(rate) == graphed_run for rate in rates)
        assert float(rates[0]) == pytest.approx(recipe.learning_rate * (10 - 3) / 10)


@pytest.mark.parametrize("base, extra", [("visualcse-bert-base", []), ("audiocse-bert-base", ["modality_loss=supcon"]),
                                         ("quick-visualcse", ["modality_loss=simclr"]), ("sup-simcse-bert-base", [])])
def test_a_whole_iteration_has_shapes_that_follow_from_its_input_shapes(tiny_model, base, extra):
    """What a CUDA graph of whole updates needs: no shape that depends on the data (such an op waits for the
    GPU, and a capture cannot). Fake tensors carry shapes without data, so on a CPU an iteration of each loss
    (released SupCon, SupCon, SimCLR, supervised SimCSE) runs through forward, loss, backward, clip and AdamW
    only if every shape follows from the input shapes; ``torch.unique`` or boolean indexing raise here. Both
    were in the image/audio losses when an H200's capture failed."""
    import dataclasses

    from torch._subclasses.fake_tensor import FakeTensorMode
    from transformers import AutoTokenizer, BertConfig, BertModel

    from nlsup_kit.embeddings import build_branch
    from nlsup_kit.encoder import SentenceEncoder
    from nlsup_kit.step import AlternatingStep

    recipe = dataclasses.replace(tiny_recipe(base, tiny_model, *extra), vit_embeddings=None)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    views = 3 if recipe.supervised else 2
    with FakeTensorMode():
        encoder = SentenceEncoder(BertModel(BertConfig.from_pretrained(str(tiny_model))), tokenizer, max_length=32)
        encoder.fast_path = "fixed"  # a compiled run's layers (packing counts tokens on the host)
        branch = build_branch(recipe, encoder.hidden_size)
        iteration = AlternatingStep(recipe, encoder, branch, total_steps=10)
        text = {"input_ids": torch.randint(0, 100, (views * 16, 32)),
                "attention_mask": torch.ones(views * 16, 32, dtype=torch.long)}
        shape = (3, 16, 16) if recipe.modality == "image" else (64, recipe.audio_mel_bins)
        modality = (torch.randn(8, *shape), torch.randn(8, *shape), torch.arange(8) % 3) if branch else None
        losses = iteration.step(text, modality)
    assert set(losses) == ({"text_loss", "modality_loss"} if branch else {"text_loss"})
    assert all(loss.shape == () for loss in losses.values())
