"""The kit's iteration against the reference code's, transcribed in tests/reference_code.py: the optimizer, the
supervised recipes' image/audio head, and two whole iterations of three paper recipes in float64."""

import dataclasses
import json

import pytest
import torch

from reference_code import AdamW450, ReferenceModel, ReferenceRun

from nlsup_kit.errors import NlsupError
from nlsup_kit.recipes import apply_overrides, get_recipe


def test_reference_adamw_takes_transformers_4_5_steps_and_torch_adamw_does_not():
    """Six steps in float64 at the recipes' learning rates and eps, gradients spanning 1e-1..1e-9 (eps matters
    where they are small), one tensor that never has a gradient: ReferenceAdamW (fused and not) against
    4.5.0's AdamW.step to 1e-9 of a step; torch's AdamW differs by more than 1e-3 of a step."""
    from nlsup_kit.optimizers import ReferenceAdamW

    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(40, 3, generator=generator, dtype=torch.float64) for _ in range(3)]
    scales = torch.logspace(-1, -9, 40, dtype=torch.float64).unsqueeze(1)
    grads = [[torch.randn(40, 3, generator=generator, dtype=torch.float64) * scales for _ in start] for _ in range(6)]
    for lr in (3e-5, 1e-6):
        def run(make):
            params = [torch.nn.Parameter(p.clone()) for p in start]
            optimizer = make(params)
            for step_grads in grads:
                for param, grad in zip(params[:2], step_grads):  # the third never gets a gradient
                    param.grad = grad.clone()
                optimizer.step()
            return torch.stack([p.detach() for p in params])

        want = run(lambda params: AdamW450(params, lr=lr, eps=1e-8))
        assert float((want - torch.stack(start))[:2].abs().min()) > 0  # every weight with a gradient moved
        assert torch.equal(want[2], start[2])
        for fused in (False, True):
            got = run(lambda params: ReferenceAdamW(params, lr=lr, fused=fused))
            assert float((got - want).abs().max()) < 1e-9 * lr, fused
        torch_adamw = run(lambda params: torch.optim.AdamW(params, lr=lr, eps=1e-8, weight_decay=0.0))
        assert float((torch_adamw - want).abs().max()) > 1e-3 * lr


def test_reference_adamw_resumes_its_step_count_and_a_checkpoint_of_the_other_optimizer_is_refused(tiny_model):
    """The step count and base eps travel in the optimizer's state: a copy loaded from a state_dict continues
    exactly; AlternatingStep refuses a state written by the other optimizer in one line naming the setting."""
    from nlsup_kit.encoder import SentenceEncoder
    from nlsup_kit.optimizers import ReferenceAdamW
    from nlsup_kit.step import AlternatingStep

    params = [torch.nn.Parameter(torch.ones(5, dtype=torch.float64))]
    optimizer = ReferenceAdamW(params, lr=1e-3)
    for _ in range(3):
        params[0].grad = torch.full((5,), 1e-7, dtype=torch.float64)
        optimizer.step()
    copies = [torch.nn.Parameter(params[0].detach().clone())]
    resumed = ReferenceAdamW(copies, lr=1e-3)
    resumed.load_state_dict(optimizer.state_dict())
    for p, opt in ((params, optimizer), (copies, resumed)):
        p[0].grad = torch.full((5,), 1e-7, dtype=torch.float64)
        opt.step()
    assert resumed.param_groups[0]["reference_steps"] == 4
    assert torch.equal(copies[0], params[0])

    encoder = SentenceEncoder.from_pretrained(str(tiny_model))
    recipe = get_recipe("quick-simcse")
    written = AlternatingStep(apply_overrides(recipe, ["optimizer=torch-adamw"]), encoder, None, 10).state_dict()
    with pytest.raises(NlsupError, match="written by torch-adamw .* resume with --set optimizer=torch-adamw"):
        AlternatingStep(recipe, encoder, None, 10).load_state_dict(written)
    with pytest.raises(NlsupError, match="use --set optimizer=torch-adamw with whole-update graphs"):
        AlternatingStep(recipe, encoder, None, 10, update_graphs=True)


def dropout_free(tiny_model, folder):
    """The tiny BERT without dropout, so two implementations of one iteration can agree."""
    from transformers import AutoTokenizer, BertModel

    model = BertModel.from_pretrained(str(tiny_model), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                      add_pooling_layer=False)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(tiny_model)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def still_model(tiny_model, tmp_path_factory):
    return dropout_free(tiny_model, tmp_path_factory.mktemp("dropout-free"))


def kit_and_reference(recipe, folder):
    """The kit's encoder and branch in float64, and the reference model holding the same weights."""
    from transformers import BertModel

    from nlsup_kit.embeddings import build_branch
    from nlsup_kit.encoder import SentenceEncoder

    encoder = SentenceEncoder.from_pretrained(str(folder)).double()
    encoder.reset_head()
    branch = build_branch(recipe, encoder.hidden_size).double()
    bert = BertModel.from_pretrained(str(folder), add_pooling_layer=False, attn_implementation="eager").double()
    reference = ReferenceModel(bert, encoder.hidden_size, recipe.temperature, recipe.modality_head == "own",
                               recipe.modality, recipe.image_size, recipe.patch_size, recipe.audio_patch_size).double()
    reference.mlp.load_state_dict(encoder.head.state_dict())
    reference.image_mlp.load_state_dict(branch.head.state_dict())
    if recipe.modality == "image":
        reference.vit_embeddings.load_state_dict(branch.embedding.state_dict(), strict=False)
    else:
        reference.v_patch_proj.load_state_dict(branch.embedding.projection.state_dict())
        reference.v_cls_token.data.copy_(branch.embedding.cls_token.data)
    return encoder, branch, reference


def pairs(encoder, branch, reference):
    """(kit tensor, reference tensor, name) for every weight the two share."""
    kit = {"bert." + k: v for k, v in encoder.backbone.named_parameters()}
    kit.update({"mlp." + k: v for k, v in encoder.head.named_parameters()})
    kit.update({"image_mlp." + k: v for k, v in branch.head.named_parameters()})
    if branch.config.modality == "image":
        kit.update({"vit_embeddings." + k: v for k, v in branch.embedding.named_parameters()})
    else:
        kit["v_patch_proj.weight"], kit["v_patch_proj.bias"] = branch.embedding.projection.parameters()
        kit["v_cls_token"] = branch.embedding.cls_token
    ref = dict(reference.named_parameters())
    assert set(ref) <= set(kit), sorted(set(ref) - set(kit))
    return [(kit[name], ref[name], name) for name in ref]


PAPER_SETTINGS = ["batch_size=6", "modality_batch_size=6", "image_size=16", "patch_size=8", "vit_embeddings=none",
                  "audio_frames=64", "audio_mel_bins=32", "audio_patch_size=16"]


@pytest.mark.parametrize("name", ["visualcse-bert-base", "audiocse-bert-base", "sup-visualcse-bert-base"])
def test_two_iterations_of_a_paper_recipe_take_the_reference_codes_steps(still_model, name):
    """Two iterations in float64 from the same weights and batches: the kit's AlternatingStep against
    tests/reference_code.py's transcription of the reference code (its model's forward through Hugging Face's
    BERT, new_SupCon_forward, transformers 4.5.0's AdamW and schedules, clipping over the whole model). The
    recipe's learning rates, lambda and temperatures are the paper's; a tiny BERT stands in for BERT-base. Every
    weight tensor the reference moves ends within 1e-4 of its largest change there."""
    from nlsup_kit.step import AlternatingStep

    recipe = apply_overrides(get_recipe(name), [f"model={still_model}", *PAPER_SETTINGS])
    encoder, branch, reference = kit_and_reference(recipe, still_model)
    start = {name: ref.detach().clone() for _, ref, name in pairs(encoder, branch, reference)}
    generator = torch.Generator().manual_seed(3)
    sentences = ["a man plays a guitar .", "two dogs run through the grass", "the stock market fell sharply today",
                 "a woman slices an onion", "children play football in the park", "the cat sleeps on the sofa",
                 "rain is expected tomorrow", "he reads the newspaper every morning", "a plane lands at night",
                 "she paints a portrait of her mother", "the river floods the valley", "they sing in a choir",
                 "a boy kicks a red ball", "the train leaves at noon", "an old man feeds the pigeons",
                 "the band plays loud music", "snow covers the mountain", "a chef cuts fresh vegetables"]
    views = 3 if recipe.supervised else 2
    total = 10
    kit_step = AlternatingStep(recipe, encoder, branch, total_steps=total, precision=None)
    run = ReferenceRun(reference, recipe.learning_rate, recipe.modality_learning_rate, total,
                       recipe.modality_loss_weight, recipe.modality_temperature)
    for iteration in range(2):
        chosen = torch.randperm(len(sentences), generator=generator)[:views * 6]
        tokens = encoder.tokenize([sentences[i] for i in chosen])
        ids, mask = (tokens[k].view(views, 6, -1) for k in ("input_ids", "attention_mask"))
        if recipe.modality == "image":
            inputs = torch.randn(2, 6, 3, 16, 16, generator=generator, dtype=torch.float64)
        else:
            inputs = torch.randn(2, 6, 64, 32, generator=generator, dtype=torch.float64)
        labels = torch.tensor([4, 1, 4, 0, 1, 1])
        kit_step.step({"input_ids": ids.flatten(0, 1), "attention_mask": mask.flatten(0, 1)},
                      (inputs[0], inputs[1], labels))
        run.iteration(torch.cat([inputs[0], inputs[1]]), labels, ids.transpose(0, 1).contiguous(),
                      mask.transpose(0, 1).contiguous())
    moved = 0
    for kit, ref, name in pairs(encoder, branch, reference):
        change = float((ref - start[name]).abs().max())
        gap = float((kit - ref).abs().max())
        assert gap <= 1e-4 * change or gap < 1e-15, f"{name}: {gap:.3g} off, against a change of {change:.3g}"
        moved += change > 0
    assert moved > 10


def test_the_text_then_own_head_is_the_two_heads_applied_by_hand_and_old_branches_load_as_own(still_model, tmp_path):
    """z = image_mlp(text_mlp(h)) with h the [CLS] vector through Hugging Face's layers, computed by hand; a branch
    saved with that choice loads back with it; a branch saved before the setting existed loads with its own head
    alone, as it was trained."""
    from transformers import BertModel

    from nlsup_kit.embeddings import ModalityBranch, build_branch
    from nlsup_kit.encoder import SentenceEncoder

    recipe = apply_overrides(get_recipe("sup-visualcse-bert-base"), [f"model={still_model}", *PAPER_SETTINGS])
    encoder = SentenceEncoder.from_pretrained(str(still_model)).double().eval()
    encoder.reset_head()
    branch = build_branch(recipe, encoder.hidden_size).double().eval()
    assert branch.config.head == "text-then-own"
    pixels = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    bert = BertModel.from_pretrained(str(still_model), add_pooling_layer=False).double().eval()
    with torch.no_grad():
        h = bert.encoder(branch.embedding(pixels)).last_hidden_state[:, 0]
        text = torch.tanh(h @ encoder.head.dense.weight.T + encoder.head.dense.bias)
        want = torch.tanh(text @ branch.head.dense.weight.T + branch.head.dense.bias)
        own = torch.tanh(h @ branch.head.dense.weight.T + branch.head.dense.bias)
        assert float((branch(encoder, pixels) - want).abs().max()) < 1e-12
        branch.save(tmp_path)
        loaded = ModalityBranch.load(tmp_path).double()
        assert loaded.config.head == "text-then-own"
        assert float((loaded(encoder, pixels) - want).abs().max()) < 1e-12
        config = json.loads((tmp_path / "modality.json").read_text())
        del config["head"]
        (tmp_path / "modality.json").write_text(json.dumps(config))
        old = ModalityBranch.load(tmp_path).double()
        assert old.config.head == "own"
        assert float((old(encoder, pixels) - own).abs().max()) < 1e-12
        assert float((own - want).abs().max()) > 1e-3


def test_every_paper_recipe_steps_with_the_reference_adamw_and_only_supervised_ones_chain_the_heads():
    """What nlsup_kit.paper cites, checked by the recipes' own values: transformers' AdamW everywhere; the text
    head before the branch's exactly where the reference passes no --mlp_only_train (the supervised scripts);
    runs saved before these settings existed read back as what they were (torch's AdamW, the branch's head)."""
    from nlsup_kit.recipes import RECIPES

    for name, recipe in RECIPES.items():
        if not name.startswith(("quick-", "class-")):
            assert recipe.optimizer == "reference-adamw", name
        if recipe.modality != "none":
            assert recipe.modality_head == ("text-then-own" if recipe.supervised else "own"), name
    with pytest.raises(NlsupError, match="modality_head=text-then-own needs the text head"):
        apply_overrides(get_recipe("sup-visualcse-bert-base"), ["pooler=avg"])


def test_a_recipe_saved_before_the_optimizer_and_head_settings_reads_back_as_it_ran(tmp_path):
    from nlsup_kit.recipes import Recipe

    saved = json.loads(get_recipe("sup-visualcse-bert-base").to_json())
    del saved["optimizer"], saved["modality_head"]
    (tmp_path / "recipe.json").write_text(json.dumps(saved))
    old = Recipe.from_json(tmp_path / "recipe.json")
    assert (old.optimizer, old.modality_head) == ("torch-adamw", "own")
    assert dataclasses.replace(old, optimizer="reference-adamw", modality_head="text-then-own") == get_recipe(
        "sup-visualcse-bert-base")
