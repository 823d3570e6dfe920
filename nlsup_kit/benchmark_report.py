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
        if self.projected_epoch_minutes is not None:
            lines.append(f"projected epoch: {self.epoch_steps} iterations + STS-B dev every "
                         f"{self.environment.get('eval_steps')} steps ({self.eval_seconds:.2f} s each; the first "
                         f"{self.first_eval_seconds:.2f} s) = "
                         f"{self.projected_epoch_minutes:.1f} min (a projection from the timed steps)")
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
