"""NonLinguisticCallback: a SentenceTransformerTrainer with MNRL and the callback takes the kit's own iterations."""

import copy

import pytest
import torch
from transformers import TrainerCallback

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


def recipe_for(model, *overrides):
    from nlsup_kit.recipes import apply_overrides, get_recipe

    return apply_overrides(get_recipe("quick-visualcse"), [f"model={model}", "pooler=avg", "optimizer=torch-adamw",
                                                           "batch_size=4", "modality_batch_size=4", f"max_steps={STEPS}",
                                                           *overrides])


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


def st_trainer(recipe, output_dir, sentences=SENTENCES, callback_kwargs=None, max_steps=STEPS, extra=(), **args):
    """The kit's sentence-transformers SimCSE trainer (MNRL, scale 1/temperature, no warmup, linear decay, clip 1.0)
    with the callback."""
    from nlsup_kit.integrations.sentence_transformers import NonLinguisticCallback, mean_pooled_model, simcse_trainer

    model = mean_pooled_model(recipe, device="cpu")
    if args.pop("double", False):
        model.double()
    callback = NonLinguisticCallback(model, recipe, **(callback_kwargs or {}))
    trainer = simcse_trainer(model, sentences, recipe, output_dir, callbacks=[callback, *extra], max_steps=max_steps,
                             logging_steps=1, use_cpu=True, **args)
    return trainer, model, callback


def test_the_callback_gives_the_kits_iterations_to_a_sentence_transformers_trainer(still_model, tmp_path):
    from nlsup_kit.embeddings import build_branch

    recipe = recipe_for(still_model)
    torch.manual_seed(0)
    start = build_branch(recipe, 32).double()
    kit_backbone, kit_branch = kit_run(recipe, copy.deepcopy(start), image_batches(STEPS))
    trainer, model, callback = st_trainer(recipe, tmp_path, double=True,
                                          callback_kwargs=dict(batches=iter(image_batches(STEPS)), branch=copy.deepcopy(start)))
    trainer.train()
    st_backbone, st_branch = model[0].auto_model, callback.branch
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
    from nlsup_kit.trainer import RUN_COUNTS   # the notebooks' runtime line counts it as a run trained here
    assert str(tmp_path.resolve()) in RUN_COUNTS["trained"]


class StopAt(TrainerCallback):
    """Stops the trainer after ``step`` (its checkpoint there is written first): a run cut short."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_a_trainer_cut_short_and_resumed_from_its_checkpoint_ends_as_an_uninterrupted_run(tiny_model, data_dir, tmp_path):
    """Dropout on and the digits through the kit's own loader, augmented at random: the branch, its optimizer and
    schedule, the data position and the random state must all come back for the weights to match."""
    recipe = recipe_for(tiny_model, "max_steps=6")
    sentences = load_text_data_for_test(data_dir, 24)
    kwargs = dict(callback_kwargs=dict(data_dir=data_dir), sentences=sentences, max_steps=6, save_strategy="steps",
                  save_steps=2)
    whole, whole_model, whole_callback = st_trainer(recipe, tmp_path / "whole", **kwargs)
    whole.train()
    cut, _, _ = st_trainer(recipe, tmp_path / "cut", extra=[StopAt(4)], **kwargs)
    cut.train()
    assert (tmp_path / "cut" / "checkpoint-4" / "nonlinguistic" / "update_state.pt").is_file()
    resumed, resumed_model, resumed_callback = st_trainer(recipe, tmp_path / "cut", **kwargs)
    resumed.train(resume_from_checkpoint=str(tmp_path / "cut" / "checkpoint-4"))
    ours = dict(whole_model.named_parameters()) | {f"branch.{k}": v for k, v in whole_callback.branch.named_parameters()}
    theirs = dict(resumed_model.named_parameters()) | {f"branch.{k}": v for k, v in resumed_callback.branch.named_parameters()}
    assert ours.keys() == theirs.keys()
    for name in ours:
        torch.testing.assert_close(theirs[name], ours[name], rtol=0, atol=1e-6)


def load_text_data_for_test(data_dir, count):
    from nlsup_kit.data.text import load_text_data

    return load_text_data("wiki", data_dir, count)


def test_a_model_the_callback_cannot_serve_gets_one_line_naming_what_it_found(still_model):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    from nlsup_kit.errors import NlsupError
    from nlsup_kit.integrations.sentence_transformers import NonLinguisticCallback

    transformer = Transformer(str(still_model))
    cls_pooled = SentenceTransformer(modules=[transformer, Pooling(32, "cls")], device="cpu")
    with pytest.raises(NlsupError, match=r"^the model pools with 'cls' and the recipe trains pooler=avg; the callback "
                                         r"pairs pooler=avg with 'mean', pooler=cls_before_pooler with 'cls'$"):
        NonLinguisticCallback(cls_pooled, recipe_for(still_model))
    pooling_first = SentenceTransformer(modules=[Pooling(32, "mean")], device="cpu")
    with pytest.raises(NlsupError, match=r"^the model's first module holds Pooling; NonLinguisticCallback serves"):
        NonLinguisticCallback(pooling_first, recipe_for(still_model))
    with pytest.raises(NlsupError, match="has no image or audio side"):
        NonLinguisticCallback.from_recipe("quick-simcse", cls_pooled)


def test_under_gradient_accumulation_the_image_update_runs_once_per_optimizer_step(tiny_model, data_dir, tmp_path):
    """Two micro-batches per optimizer step, three optimizer steps: three image updates, not six."""
    recipe = recipe_for(tiny_model, "max_steps=3", "batch_size=2")
    trainer, _, callback = st_trainer(recipe, tmp_path, sentences=load_text_data_for_test(data_dir, 12), max_steps=3,
                                      callback_kwargs=dict(data_dir=data_dir), gradient_accumulation_steps=2)
    trainer.train()
    assert trainer.state.global_step == 3 and callback.updates == 3
    assert len([entry for entry in trainer.state.log_history if "modality_loss" in entry]) == 3
