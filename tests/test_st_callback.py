"""NonLinguisticCallback: a SentenceTransformerTrainer with MNRL and the callback takes the kit's own iterations."""

import copy

import pytest
import torch

from test_reference_iteration import dropout_free

SENTENCES = ["A man is playing a guitar.", "The stock market fell sharply today.", "A woman slices an onion.",
             "He won the election."]
STEPS = 4


@pytest.fixture(scope="module")
def still_model(tiny_model, tmp_path_factory):
    return dropout_free(tiny_model, tmp_path_factory.mktemp("dropout-free"))


def image_batches(steps: int, seed: int = 3) -> list:
    """Fixed (view 1, view 2, labels) batches in float64: both implementations see the same images."""
    generator = torch.Generator().manual_seed(seed)
    return [(torch.rand(4, 3, 32, 32, generator=generator, dtype=torch.float64),
             torch.rand(4, 3, 32, 32, generator=generator, dtype=torch.float64), torch.tensor([0, 1, 0, 1]))
            for _ in range(steps)]


def recipe_for(model):
    from nlsup_kit.recipes import apply_overrides, get_recipe

    return apply_overrides(get_recipe("quick-visualcse"), [f"model={model}", "pooler=avg", "optimizer=torch-adamw",
                                                           "batch_size=4", "modality_batch_size=4", f"max_steps={STEPS}"])


def kit_run(recipe, branch, batches):
    """The kit's AlternatingStep on the same sentences each step (one batch: its order does not change the loss)."""
    from nlsup_kit.encoder import SentenceEncoder
    from nlsup_kit.step import AlternatingStep

    encoder = SentenceEncoder.from_pretrained(recipe.model).double()
    tokens = encoder.tokenize(SENTENCES)
    text = {k: torch.cat([tokens[k], tokens[k]]) for k in ("input_ids", "attention_mask")}
    iteration = AlternatingStep(recipe, encoder, branch, total_steps=STEPS)
    for batch in batches:
        iteration.step(text, batch)
    return encoder.backbone, branch


def sentence_transformers_run(recipe, branch, batches, output_dir, order="before"):
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    from nlsup_kit.integrations.sentence_transformers import NonLinguisticCallback

    transformer = Transformer(recipe.model, max_seq_length=recipe.max_length)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean")],
                                device="cpu").double()
    callback = NonLinguisticCallback(model, recipe, batches=iter(batches), branch=branch)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir), max_steps=STEPS, per_device_train_batch_size=len(SENTENCES),
        learning_rate=recipe.learning_rate, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=1.0, optim="adamw_torch", logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
        seed=recipe.seed)
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=Dataset.from_dict({"anchor": SENTENCES, "positive": SENTENCES}),
        loss=MultipleNegativesRankingLoss(model, scale=1 / recipe.temperature), callbacks=[callback])
    trainer.train()
    return model[0].auto_model, callback.branch, trainer


def test_the_callback_gives_the_kits_iterations_to_a_sentence_transformers_trainer(still_model, tmp_path):
    from nlsup_kit.embeddings import build_branch

    recipe = recipe_for(still_model)
    torch.manual_seed(0)
    start = build_branch(recipe, 32).double()
    kit_backbone, kit_branch = kit_run(recipe, copy.deepcopy(start), image_batches(STEPS))
    st_backbone, st_branch, trainer = sentence_transformers_run(recipe, copy.deepcopy(start), image_batches(STEPS), tmp_path)
    ours = dict(kit_backbone.named_parameters()) | {f"branch.{k}": v for k, v in kit_branch.named_parameters()}
    theirs = dict(st_backbone.named_parameters()) | {f"branch.{k}": v for k, v in st_branch.named_parameters()}
    from transformers import AutoModel

    first = dict(AutoModel.from_pretrained(str(still_model)).double().named_parameters()) | {
        f"branch.{k}": v for k, v in start.named_parameters()}
    shared = first.keys() & ours.keys() & theirs.keys()   # the layers and the branch (the BERT pooler is unused)
    assert {k for k in shared if k.startswith("branch.")} == {f"branch.{k}" for k, _ in start.named_parameters()}
    moved = max((ours[k] - first[k]).abs().max().item() for k in shared)
    gap = max((ours[k] - theirs[k]).abs().max().item() for k in shared)
    assert moved > 1e-5 and gap < 1e-6 * moved, f"largest change {moved:.2e}, largest difference {gap:.2e}"
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == STEPS and all("modality_loss" in entry for entry in logged)
