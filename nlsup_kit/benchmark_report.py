"""What ``nlsup bench`` reports: rows of step times, the ratio to the sentence-transformers loop, the machine."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from dataclasses import dataclass, field

import torch


@dataclass
class StepRow:
    step: str  # text, image, audio
    path: str  # kit, kit compiled, sentence-transformers loop
    ms: float
    items_per_second: float
    peak_memory_mb: float | None = None
    speedup_vs_st: float | None = None
    first_step_s: float | None = None  # the first step alone: compilation and graph capture when compiled


ST_PATH = "sentence-transformers loop"
SHIPPED_PIPELINE, CACHED_HOST, CACHED_AUGMENT = "per-item (shipped)", "cached: host share", "cached: augmentation"


@dataclass
class PipelineRow:
    """The time to make one image/audio batch of the recipe, ready on the device, by one part of one pipeline."""

    side: str  # image, audio
    path: str  # SHIPPED_PIPELINE, CACHED_HOST, CACHED_AUGMENT
    ms: float  # per batch
    where: str  # what runs it: "cpu, 0 workers", "cuda", ...
    setup_s: float | None = None  # once per run before the first batch: decoding every image, every fbank


def add_speedups(rows: list[StepRow]) -> None:
    """How many times faster each kit text step is than the sentence-transformers loop (its ms over theirs)."""
    reference = next((r for r in rows if r.path == ST_PATH), None)
    if reference is None:
        return
    for row in rows:
        if row.step == "text" and row is not reference:
            row.speedup_vs_st = reference.ms / row.ms


@dataclass
class BenchReport:
    recipe: str
    model: str
    device: str
    rows: list[StepRow] = field(default_factory=list)
    eval_seconds: float | None = None  # one STS-B dev evaluation (the second: kernels already set up)
    first_eval_seconds: float | None = None
    agreement: dict = field(default_factory=dict)  # fast path vs HF forward: relative differences
    epoch_steps: int | None = None
    projected_epoch_minutes: float | None = None
    environment: dict = field(default_factory=dict)
    profiles: dict = field(default_factory=dict)  # step -> the profiler's table of its top operators
    failures: dict = field(default_factory=dict)  # path -> the error that stopped its rows
    pipeline: list[PipelineRow] = field(default_factory=list)
    iteration_basis: str | None = None  # what the projection's iteration time is made of
    training_slice: dict | None = None  # a measured stretch of real training beside its projection

    def table(self) -> str:
        lines = [f"{self.recipe} ({self.model}) on {self.device}",
                 "| step | path | ms/step | items/s | x ST loop | peak MB | first step s |",
                 "|---|---|---|---|---|---|---|"]
        for r in self.rows:
            ratio = f"{r.speedup_vs_st:.2f}" if r.speedup_vs_st else "-"
            memory = f"{r.peak_memory_mb:.0f}" if r.peak_memory_mb is not None else "-"
            first = f"{r.first_step_s:.2f}" if r.first_step_s is not None else "-"
            lines.append(f"| {r.step} | {r.path} | {r.ms:.1f} | {r.items_per_second:.0f} | {ratio} | {memory} "
                         f"| {first} |")
        for path, error in self.failures.items():
            lines.append(f"FAILED {path}: {error}")
        if self.agreement:
            lines.append("fast path vs HF forward (relative difference): "
                         + ", ".join(f"{k} {v:.1e}" for k, v in self.agreement.items()))
        if self.pipeline:
            batch = self.environment.get("modality_batch_size")
            lines += [f"making one {self.pipeline[0].side} batch of {batch} (read, augment, collate, copy to the "
                      "device):", "| pipeline | part | ms/batch | runs on | once per run, s |", "|---|---|---|---|---|"]
            for r in self.pipeline:
                pipeline, _, part = r.path.partition(": ")
                setup = f"{r.setup_s:.1f}" if r.setup_s is not None else "-"
                lines.append(f"| {pipeline} | {part or 'all'} | {r.ms:.1f} | {r.where} | {setup} |")
            shipped = sum(r.ms for r in self.pipeline if r.path == SHIPPED_PIPELINE)
            cached = sum(r.ms for r in self.pipeline if r.path != SHIPPED_PIPELINE)
            if shipped and cached:
                lines.append(f"shipped / cached: {shipped:.1f} / {cached:.1f} ms = {shipped / cached:.1f}x")
        if self.projected_epoch_minutes is not None:
            lines.append(f"projected epoch: {self.epoch_steps} iterations + STS-B dev every "
                         f"{self.environment.get('eval_steps')} steps ({self.eval_seconds:.2f} s each; the first "
                         f"{self.first_eval_seconds:.2f} s) = "
                         f"{self.projected_epoch_minutes:.1f} min (a projection from the timed steps"
                         + (f"; an iteration: {self.iteration_basis}" if self.iteration_basis else "") + ")")
        if self.training_slice:
            t = self.training_slice
            first, last = t["window"]
            lines.append(
                f"training slice: {t['steps']} iterations through the trainer ({t['pipeline'] or 'text only'} "
                f"pipeline), {t['total_seconds']:.1f} s in all (set-up, data, compilation, {t['evaluations']} "
                f"evaluations and {t['saves']} checkpoints in the window); steps {first}-{last}: measured "
                f"{t['measured_seconds']:.1f} s, projected {t['projected_seconds']:.1f} s (measured / projected "
                f"{t['measured_seconds'] / t['projected_seconds']:.2f}; checkpoints at this run's "
                f"{t['save_seconds']:.2f} s each, evaluations at the timed {self.eval_seconds or 0:.2f} s against "
                f"{t['eval_seconds_in_run']:.2f} s in the run)")
        for step, table in self.profiles.items():
            lines += [f"profile of the {step} step (5 steps; operators and kernels by own time, so a kernel also "
                      "counts in its operator's row):", table]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


def environment() -> dict:
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            # torch.compile's backend: inductor, unless torch's per-graph override names another (the tiny mode's)
            "compile_backend": os.environ.get("TORCH_COMPILE_OVERRIDE_BACKENDS") or "inductor"}
    try:
        import sentence_transformers

        info["sentence_transformers"] = sentence_transformers.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info
