"""Training-step benchmark: the kit's steps beside a sentence-transformers loop, peak memory, epoch projection.

The kit rows time the trainer's own update functions (forward, loss, backward, clip, AdamW, schedule) on
batches prepared beforehand, so data loading is not measured (the trainer overlaps it with pinned memory and
loader workers). The sentence-transformers row is what ``SentenceTransformerTrainer`` does per step with
``MultipleNegativesRankingLoss`` (SimCSE's loss at scale 1/T): tokenise the batch, one forward per column,
loss, backward, clip, AdamW, under the same autocast. Image/audio inputs are random tensors of the recipe's
shapes (speed does not depend on pixel values). ``random_init`` builds the recipe's backbone from its
architecture alone, so a GPU machine without the hub can time BERT-base; speed does not depend on the weights.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
import warnings
from pathlib import Path

import torch

from nlsup_kit.data.sources import ensure_data
from nlsup_kit.data.text import load_text_data
from nlsup_kit.device import autocast_for, pick_device
from nlsup_kit.encoder import SentenceEncoder
from nlsup_kit.embeddings import build_branch
from nlsup_kit.errors import NlsupError
from nlsup_kit.evaluation import stsb_dev_measures
from nlsup_kit.recipes import Recipe
from nlsup_kit.benchmark_report import (CACHED_AUGMENT, CACHED_HOST, SHIPPED_PIPELINE, ST_PATH, BenchReport,
                                       PipelineRow, StepRow, add_speedups, environment)
from nlsup_kit.benchmark_inputs import build_encoder, first_batches, modality_inputs
from nlsup_kit.benchmark_timing import peak_memory_mb, profile_steps, reset_memory, synchronize, time_steps
from nlsup_kit.layers import fast_path_differences
from nlsup_kit.step import AlternatingStep

WHOLE_UPDATE_GRAPHS = "kit compiled, whole-update graphs (torch-adamw)"

# Training examples per epoch of the paper's corpora, for projections on a machine without them: wiki1m is "1
# million sentences from English Wikipedia" (princeton-nlp/SimCSE README.md; the reference log
# VisualCSE/training_logs/unsup-VisualCSE-bert-base-uncased.txt counts "Num examples = 1000001", 15,626 steps at
# batch 64), nli_for_simcse.csv has 275,601 rows (github.com/princeton-nlp/SimCSE/issues/238).
PAPER_CORPUS_SIZES = {"wiki1m": 1_000_000, "nli": 275_601}






















def kit_rows(recipe: Recipe, encoder: SentenceEncoder, text_batches: list[dict], warmup: int, steps: int,
             label: str, profiles: dict[str, str] | None = None, update_graphs: bool = False) -> list[StepRow]:
    """Each side's update of :class:`AlternatingStep` timed on its own: the text update on ``text_batches``,
    the image/audio update (when the recipe has one) on random batches of its shape (under ``joint_loss`` the
    one update takes both). With ``profiles``, each step's profiler table is added to it after the timing (so
    profiling never slows a timed step)."""
    device = pick_device(recipe.device)
    reset_memory(device)
    branch = build_branch(recipe, encoder.hidden_size)
    encoder.to(device)
    if branch is not None:
        branch.to(device)
    # the schedules' length only scales learning rates, never the time a step takes
    iteration = AlternatingStep(recipe, encoder, branch, total_steps=10_000, device=device,
                                update_graphs=update_graphs)
    encoder.train()
    rows = []
    modality_batches = None
    if branch is not None:
        branch.train()
        modality_batches = modality_inputs(recipe, 2)
    if branch is not None and not recipe.joint_loss:

        def modality_step(batch):
            iteration.begin_iteration()
            iteration.modality_update(batch)

        seconds, first = time_steps(modality_step, modality_batches, warmup, steps, device)
        rows.append(StepRow(recipe.modality, label, seconds * 1e3, recipe.modality_batch_size / seconds,
                            first_step_s=first))
        if profiles is not None:
            profiles[f"{recipe.modality} ({label})"] = profile_steps(modality_step, modality_batches, 5, device)
    joint_batch = modality_batches[0] if recipe.joint_loss and branch is not None else None

    def text_step(batch):
        iteration.begin_iteration()
        iteration.text_update(batch, joint_batch)

    seconds, first = time_steps(text_step, text_batches, warmup, steps, device)
    rows.insert(0, StepRow("text", label, seconds * 1e3, recipe.batch_size / seconds, first_step_s=first))
    peak = peak_memory_mb(device)
    if profiles is not None:
        profiles[f"text ({label})"] = profile_steps(text_step, text_batches, 5, device)
    for row in rows:
        row.peak_memory_mb = peak
    return rows


def st_loop_row(recipe: Recipe, encoder: SentenceEncoder, examples: list, warmup: int, steps: int) -> StepRow:
    """sentence-transformers' MNRL training step on the same backbone, exported through the kit's exporter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sentence_transformers import SentenceTransformer, losses

    from nlsup_kit.export import export_checkpoint

    device = pick_device(recipe.device)
    with tempfile.TemporaryDirectory() as tmp:
        encoder.save(Path(tmp) / "checkpoint")
        export_checkpoint(Path(tmp) / "checkpoint", Path(tmp) / "st", "cls_before_pooler")
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the exported folder has no pooler weights, as intended
        try:
            model = SentenceTransformer(str(Path(tmp) / "st"), device=str(device))
        finally:
            hf_logging.set_verbosity(verbosity)
    model.max_seq_length = recipe.max_length
    model.train()
    reset_memory(device)
    loss = losses.MultipleNegativesRankingLoss(model, scale=1.0 / recipe.temperature)
    # fused AdamW: the Hugging Face Trainer's default (under SentenceTransformerTrainer) since torch 2.8
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=0.0,
                                  fused=device.type in ("cuda", "cpu"))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    preprocess = getattr(model, "preprocess", None) or model.tokenize
    size = recipe.batch_size
    batches = []
    for i in range(0, size * max(2, min(steps, 8)), size):
        chunk = examples[i:i + size]
        # unsupervised SimCSE in ST: the sentence as anchor and as positive (two dropout masks);
        # supervised: anchor, positive, hard negative columns
        batches.append([list(column) for column in zip(*chunk)] if isinstance(chunk[0], tuple) else [chunk, chunk])

    def step(columns):
        features = [{k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
                     for k, v in preprocess(texts).items()} for texts in columns]
        optimizer.zero_grad(set_to_none=True)
        with autocast_for(device):
            value = loss(features, None)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()

    seconds, first = time_steps(step, batches, warmup, steps, device)
    return StepRow("text", ST_PATH, seconds * 1e3, size / seconds, peak_memory_mb(device), first_step_s=first)


def time_pipelines(recipe: Recipe, data_dir: Path, device: torch.device, batches: int = 10) -> list[PipelineRow]:
    """Both ways of making the recipe's image/audio batches, each timed over ``batches`` batches after a first
    untimed one (which starts any loader workers), with the recipe's ``num_workers``: the shipped per-item path
    (read, decode, augment each view in the loader, collate, copy to ``device``), and the cached path's two
    parts: the host's share (gather from the decoded store, collate, pin, start the copy) and the batch
    augmentation on ``device``. The cached store's one-off construction is its row's ``setup_s``."""
    from nlsup_kit.data.batch_augment import batch_augment_for
    from nlsup_kit.data.batches import Repeating, modality_loader

    def host(pipeline: str) -> str:
        processes = recipe.loader_workers(device.type, pipeline)
        return f"cpu, {processes} loader processes" if processes else "cpu, the training process"

    def per_batch(make) -> float:
        make()
        synchronize(device)
        start = time.perf_counter()
        for _ in range(batches):
            make()
        synchronize(device)
        return (time.perf_counter() - start) / batches * 1e3

    shipped = Repeating(modality_loader(recipe, data_dir, device=device.type, pipeline="per-item"))
    rows = [PipelineRow(recipe.modality, SHIPPED_PIPELINE, per_batch(
        lambda: [t.to(device, non_blocking=True) for t in next(shipped)]), host("per-item"))]
    start = time.perf_counter()
    cached = Repeating(modality_loader(recipe, data_dir, device=device.type, pipeline="cached"))
    setup = time.perf_counter() - start
    on_device = []

    def host_share():  # the copy of the images/fbanks is started, not waited for: it overlaps the running step
        items, sizes, labels = next(cached)
        on_device.append((items.to(device, non_blocking=True), sizes, labels))

    rows.append(PipelineRow(recipe.modality, CACHED_HOST, per_batch(host_share), host("cached"), setup))
    augment = batch_augment_for(recipe, recipe.seed)
    loaded = iter(on_device * 2)
    rows.append(PipelineRow(recipe.modality, CACHED_AUGMENT, per_batch(lambda: augment(next(loaded), device)),
                            str(device)))
    return rows


def projected_iteration(report: BenchReport, recipe: Recipe, device: torch.device) -> tuple[float, str]:
    """Seconds per training iteration from the fastest kit step of each side and, when timed, the batch making
    of the recipe's pipeline on this device: on a GPU the host makes the next batch while the device trains (the
    slower of the two sets the pace), on a CPU one after the other."""
    fastest = {}
    for row in report.rows:
        if row.path != ST_PATH:
            fastest[row.step] = min(fastest.get(row.step, math.inf), row.ms)
    update = sum(fastest.values())
    if not report.pipeline:
        return update / 1e3, f"the timed updates, {update:.1f} ms"
    parts = {row.path: row.ms for row in report.pipeline}
    if recipe.pipeline_on(device.type) == "cached":
        device_ms, host_ms, name = update + parts[CACHED_AUGMENT], parts[CACHED_HOST], "cached"
    else:
        device_ms, host_ms, name = update, parts[SHIPPED_PIPELINE], "per-item"
    if device.type == "cuda":
        return max(device_ms, host_ms) / 1e3, (f"the slower of the device's {device_ms:.1f} ms (updates"
                                              f"{' + augmentation' if name == 'cached' else ''}) and the host's "
                                              f"{host_ms:.1f} ms ({name} batch making)")
    return (device_ms + host_ms) / 1e3, (f"updates{' + augmentation' if name == 'cached' else ''} "
                                         f"{device_ms:.1f} ms + {name} batch making {host_ms:.1f} ms, in turn")


def training_slice(recipe: Recipe, data_dir: Path, encoder: SentenceEncoder, report: BenchReport, steps: int,
                   device: torch.device) -> dict:
    """``steps`` iterations of ``recipe`` through the trainer itself, by the clock: data loading (and the cached
    store's decoding), evaluations and checkpoints as the recipe sets them, compilation. The stretch from
    the second logged step group to the end is set beside the projection of the same stretch from ``report``'s
    timed steps and batch making, its evaluations at the timed evaluation cost and its checkpoints at their cost
    in this run (the step timings do not save)."""
    from nlsup_kit.trainer import Trainer

    recipe = dataclasses.replace(recipe, max_steps=steps, epochs=steps)  # max_steps ends it, in any corpus
    first = 2 * recipe.log_steps  # a logged step: the loss read there waits for the device
    if not 0 < first < steps:
        raise NlsupError(f"a training slice of {steps} steps needs more than 2 x log_steps={recipe.log_steps}")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        trainer = Trainer(recipe, out, data_dir, progress=False, encoder=encoder)
        trainer.train()
        total = time.perf_counter() - start
    clock = dict(trainer.clock)
    evaluations = [s for s in range(1, steps + 1) if s % recipe.eval_steps == 0 or s == steps]
    saves = [s for s in range(1, steps + 1) if s % recipe.checkpoint_steps == 0 or s == steps]
    save_seconds = trainer.checkpoint_seconds / len(saves)
    iteration, basis = projected_iteration(report, recipe, device)
    in_window = lambda marks: sum(first < s <= steps for s in marks)  # noqa: E731
    projected = ((steps - first) * iteration + in_window(evaluations) * (report.eval_seconds or 0.0)
                 + in_window(saves) * save_seconds)
    return {"steps": steps, "total_seconds": total, "window": [first, steps],
            "measured_seconds": clock[steps] - clock[first], "projected_seconds": projected,
            "evaluations": in_window(evaluations), "saves": in_window(saves), "save_seconds": save_seconds,
            "eval_seconds_in_run": trainer.eval_seconds / len(evaluations), "iteration_basis": basis,
            "pipeline": recipe.pipeline_on(device.type) if recipe.modality != "none" else None}


def run_benchmark(recipe: Recipe, data_dir=None, steps: int = 20, warmup: int = 5, random_init: bool = False,
                  tokenizer: str | None = None, compare_st: bool = True, compiled: bool = False,
                  evaluate: bool = True, profile: bool = False, whole_update_graphs: bool = False,
                  pipeline: bool = False, slice_steps: int = 0) -> BenchReport:
    """Time the recipe's steps (eager, and compiled when asked), the ST loop, one STS-B dev evaluation; project
    one epoch of the recipe's corpus (the paper's size for wiki1m/nli, else the local data). ``profile`` adds
    the profiler's top operators of each kit step; ``whole_update_graphs`` (CUDA) a compiled row whose CUDA
    graphs hold whole updates (experimental: see :class:`AlternatingStep`). A compiled variant that fails is
    reported with its error, after the rows that do not depend on it. ``pipeline`` also times the making of the
    image/audio batches (:func:`time_pipelines`), and the projection then counts it; ``slice_steps`` then trains
    that many iterations by the clock and sets them beside their projection (:func:`training_slice`)."""
    if slice_steps and not evaluate:
        raise NlsupError("--slice sets the run beside a projection that needs the evaluation's time; drop --no-eval")
    device = pick_device(recipe.device)
    report = BenchReport(recipe.name, recipe.model, str(device), environment=environment())
    report.environment["eval_steps"] = recipe.eval_steps
    paper_corpus = PAPER_CORPUS_SIZES.get(recipe.text_data)
    data_dir = ensure_data(["senteval", "wiki"], data_dir)  # STS-B dev, and the stand-in corpus
    try:
        examples = load_text_data(recipe.text_data, data_dir, recipe.max_text_examples)
    except NlsupError:
        if paper_corpus is None:
            raise
        # the paper's corpus is not here: time on the local stand-in, project with the paper's size
        stand_in = "sick-nli" if recipe.supervised else "wiki"
        recipe = dataclasses.replace(recipe, text_data=stand_in)
        examples = load_text_data(stand_in, data_dir, recipe.max_text_examples)
        report.environment["timed_on"] = stand_in
    if random_init:  # the image side too: ViT-shaped patch embeddings, random weights
        recipe = dataclasses.replace(recipe, vit_embeddings=None)
    encoder = build_encoder(recipe, random_init, tokenizer)
    initial = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
    batches = max(2, min(steps, 8))
    eager = dataclasses.replace(recipe, compile=False)
    text_batches = first_batches(eager, encoder, examples, batches)
    report.rows += kit_rows(eager, encoder, text_batches, warmup, steps, "kit",
                            report.profiles if profile else None)
    if encoder.fast_path != "off":
        report.agreement = fast_path_differences(encoder, text_batches[0], recipe.temperature, device)
    if evaluate:  # the second evaluation is what a run pays 124 times of 125 (the first sets up kernels)
        seconds = []
        for _ in range(2):
            synchronize(device)
            start = time.perf_counter()
            stsb_dev_measures(encoder, recipe.pooling_for_evaluation(), device, data_dir)
            seconds.append(time.perf_counter() - start)
        report.first_eval_seconds, report.eval_seconds = seconds
    if compare_st:
        encoder.load_state_dict(initial)
        # the kit's first batches exactly: TextBatches' first epoch order comes from this seeded permutation
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(recipe.seed)).tolist()
        report.rows.append(st_loop_row(recipe, encoder, [examples[i] for i in order], warmup, steps))
    if compiled:
        fixed = dataclasses.replace(recipe, compile=True)
        fixed_batches = first_batches(fixed, encoder, examples, batches)
        variants = [("kit compiled", False)]
        if whole_update_graphs and device.type == "cuda":  # last: a failed capture can leave CUDA unusable
            variants.append((WHOLE_UPDATE_GRAPHS, True))
        for label, update_graphs in variants:
            encoder.load_state_dict(initial)
            # a captured graph keeps one eps, so whole-update graphs step with torch's AdamW (nlsup_kit.optimizers)
            variant = dataclasses.replace(fixed, optimizer="torch-adamw") if update_graphs else fixed
            try:
                report.rows += kit_rows(variant, encoder, fixed_batches, warmup, steps, label,
                                        report.profiles if profile else None, update_graphs)
            except Exception as error:  # noqa: BLE001 -- a benchmark reports what broke and goes on
                report.failures[label] = f"{type(error).__name__}: {error}"
    add_speedups(report.rows)
    if pipeline and recipe.modality != "none":
        report.environment["modality_batch_size"] = recipe.modality_batch_size
        report.pipeline = time_pipelines(recipe, data_dir, device)
    report.epoch_steps = math.ceil((paper_corpus or len(examples)) / recipe.batch_size) * recipe.epochs
    if report.eval_seconds is not None:
        iteration_seconds, report.iteration_basis = projected_iteration(report, recipe, device)
        evaluations = math.ceil(report.epoch_steps / recipe.eval_steps)
        report.projected_epoch_minutes = (report.epoch_steps * iteration_seconds
                                          + evaluations * report.eval_seconds) / 60
    if slice_steps:
        encoder.load_state_dict(initial)
        report.training_slice = training_slice(recipe, data_dir, encoder, report, slice_steps, device)
    return report
