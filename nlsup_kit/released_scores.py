"""The paper's effect where a learner can see it: the authors' released models (nlsup_kit.models.RELEASED),
scored with the kit's scorer beside the numbers published for them, next to untrained BERT-base.

A model is measured when it is already on this machine (the Hugging Face cache) or the hub can be reached; before
anything downloads, the download's size is printed. When neither holds, or measuring is switched off, the same
call prints the published numbers with their sources and one line saying what would be measured online."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nlsup_kit.conclusions import compare
from nlsup_kit.data.senteval import STS_TASKS, short_task_name
from nlsup_kit.models import RELEASED, RELEASED_PREFIX, resolve_model
from nlsup_kit.net import hub_unreachable_reason
from nlsup_kit.paper import RELEASED_SOURCES, UNTRAINED_BERT, published_scores

UNTRAINED = "bert-base-uncased"
UNTRAINED_POOLING = "avg_embeddings_last"  # the definition behind SimCSE's paper's row (UNTRAINED_BERT)
ASSUMED_MEGABYTES_PER_SECOND = 10.0   # only for the printed estimate; the measured time is printed afterwards
# how close a released model must come to its published score for the notebooks' final checks: published and
# measured are the same model through the same protocol, so only library versions and hardware separate them; a
# random model (the tests' stand-ins), a wrong pooler or a wrong model misses by more
REPRODUCED_WITHIN = 2.0


@dataclass(frozen=True)
class Row:
    """One model of the comparison: what to load, through which pooler, and its published scores."""

    label: str
    model: str
    pooling: str
    published: dict[str, float]
    source: str

    @property
    def hub_id(self) -> str:
        return resolve_model(self.model)


def rows_for(methods: Sequence[str], family: str = "bert-base") -> list[Row]:
    """Untrained BERT-base (BERT families only), then ``released:<method>-<family>`` for each method."""
    rows = []
    if family == "bert-base":
        untrained = UNTRAINED_BERT["simcse-paper"]
        rows.append(Row(f"{UNTRAINED} untrained ({UNTRAINED_POOLING})", UNTRAINED, UNTRAINED_POOLING,
                        untrained.scores, untrained.source))
    for method in methods:
        recipe = f"{method}-{family}"
        published = published_scores(recipe)
        if recipe not in RELEASED or published is None:
            raise ValueError(f"no released model with published scores for {recipe!r}")
        listed = RELEASED_SOURCES[recipe]
        rows.append(Row(f"{RELEASED_PREFIX}{recipe}", f"{RELEASED_PREFIX}{recipe}", RELEASED[recipe].pooling,
                        published[0], f"{published[1]}; the model: {listed}"))
    return rows


def is_cached(hub_id: str) -> bool:
    """Whether a download of ``hub_id`` is already in the local Hugging Face cache (or it is a folder)."""
    from huggingface_hub import try_to_load_from_cache

    if Path(hub_id).is_dir():
        return True
    return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # the order in which transformers prefers them
SMALL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt",
               "special_tokens_map.json")


def download_bytes(sizes: dict[str, int]) -> int:
    """What loading a repository fetches, from its files' sizes: the preferred weight file and the small files."""
    weight = next((sizes[name] for name in WEIGHT_FILES if name in sizes), 0)
    return weight + sum(sizes.get(name, 0) for name in SMALL_FILES)


def hub_download_bytes(hub_id: str) -> int | None:
    """The download's size as the hub lists it, or None when the hub does not say."""
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(hub_id, files_metadata=True, timeout=10)
    except Exception:  # noqa: BLE001 (any failure only means the size is not known in advance)
        return None
    return download_bytes({s.rfilename: s.size or 0 for s in info.siblings or []}) or None


@dataclass
class ReleasedScores:
    """What one call measured (``measured`` is empty when nothing was) and the lines it printed."""

    rows: list[Row]
    tasks: list[str]
    measured: dict[str, dict[str, float]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def check(self) -> list[str]:
        """The notebooks' final check: every measured model within REPRODUCED_WITHIN points of its published
        score (averaged over the tasks measured). Empty when nothing was measured; one sentence per failure."""
        failures = []
        for row in self.rows:
            if row.label not in self.measured:
                continue
            measured, published = self.measured[row.label]["avg"], _published_average(row, self.tasks)
            if abs(measured - published) > REPRODUCED_WITHIN:
                failures.append(f"{row.label} measured {measured:.2f}, published {published:.2f}: it did not "
                                f"reproduce its published score within {REPRODUCED_WITHIN:g} points")
        return failures

    def summary_rows(self) -> dict[str, dict[str, float]]:
        """The measured rows for the demo's summary table."""
        return dict(self.measured)


def _published_average(row: Row, tasks: Sequence[str]) -> float:
    """The printed average over the seven tasks, else the mean of the published scores of ``tasks``."""
    if set(tasks) == set(STS_TASKS):
        return row.published["avg"]
    return sum(row.published[t] for t in tasks) / len(tasks)


def _table(rows: Sequence[Row], tasks: Sequence[str], measured: dict[str, dict[str, float]]) -> list[str]:
    columns = [*tasks, "avg"] if len(tasks) > 1 else list(tasks)
    width = max(len(r.label) for r in rows) + 2
    head = " " * width + "".join(f"{short_task_name(t):>9}" for t in columns)
    lines = [head]
    for row in rows:
        published = {**row.published, "avg": _published_average(row, tasks)}
        lines.append(row.label.ljust(width) + "".join(f"{published[t]:9.2f}" for t in columns) + "  published")
        if row.label in measured:
            got = measured[row.label]
            lines.append(" " * width + "".join(f"{got[t]:9.2f}" for t in columns) + "  measured here")
            lines.append(" " * width + "".join(f"{got[t] - published[t]:+9.2f}" for t in columns) + "  difference")
    return lines


def _gain_lines(rows: Sequence[Row], tasks: Sequence[str], measured: dict[str, dict[str, float]]) -> list[str]:
    """The gains the papers report, published and measured: the first method (SimCSE) over the untrained model,
    then every other method over that first method."""
    lines = []
    what = "mean of the tasks" if len(tasks) > 1 else tasks[0]
    pairs = [(rows[0], rows[1])] + [(rows[1], row) for row in rows[2:]] if len(rows) > 1 else []
    for earlier, later in pairs:
        published = _published_average(later, tasks) - _published_average(earlier, tasks)
        line = f"{later.label} over {earlier.label}, {what}: published {published:+.2f}"
        if later.label in measured and earlier.label in measured:
            got = measured[later.label]["avg"] - measured[earlier.label]["avg"]
            line += f", measured here {got:+.2f} ({compare('measured', got, 'published', published, tolerance=0.5)})"
        lines.append(line)
    return lines


def released_scores(methods: Sequence[str], tasks: Sequence[str], data_dir, family: str = "bert-base",
                    measure: bool = True, device: str | None = None, show=print) -> ReleasedScores:
    """Score untrained BERT-base and the released ``methods`` of ``family`` on ``tasks`` where they can be had,
    printing as it goes; else print the published numbers and what would be measured online."""
    from nlsup_kit.evaluation import evaluate_model

    rows = rows_for(methods, family)
    result = ReleasedScores(rows, list(tasks))

    def say(line: str = "") -> None:
        result.lines.append(line)
        show(line)

    missing = [row for row in rows if not is_cached(row.hub_id)]
    unreachable = hub_unreachable_reason() if missing and measure else None
    offline = not measure or unreachable is not None
    if offline:
        why = ("measuring switched off" if not measure else f"the hub cannot be reached ({unreachable})")
        say(f"Published scores (Spearman x 100), not measured here: {why}.")
    else:
        if missing:
            sizes = {row.hub_id: hub_download_bytes(row.hub_id) for row in missing}
            known = sum(size for size in sizes.values() if size)
            listing = ", ".join(f"{hub} {size / 1e6:,.0f} MB" if size else f"{hub} (size not listed)"
                                for hub, size in sizes.items())
            say(f"to download: {listing}; about {known / 1e6:,.0f} MB, about "
                f"{known / 1e6 / ASSUMED_MEGABYTES_PER_SECOND:,.0f} s at {ASSUMED_MEGABYTES_PER_SECOND:g} MB/s "
                f"(set RELEASED_MODELS = False to skip)")
        started = time.time()
        for row in rows:
            report = evaluate_model(row.model, row.pooling, tasks, data_dir, device=device)
            scores = {task: report.scores[task].spearman for task in tasks}
            average = report.average if len(tasks) > 1 else scores[tasks[0]]  # SentEval's mean of rounded scores
            result.measured[row.label] = {**scores, "avg": average}
            say(f"{row.label} ({row.pooling}): {', '.join(f'{short_task_name(t)} {s:.2f}' for t, s in scores.items())}")
        say(f"{'downloaded and scored' if missing else 'scored'} in {time.time() - started:,.0f} s")
    for line in _table(rows, tasks, result.measured) + _gain_lines(rows, tasks, result.measured):
        say(line)
    say("sources:")
    for row in rows:
        say(f"  {row.label}: {row.source}")
    if offline:
        say(f"Online, this cell downloads {', '.join(row.hub_id for row in missing)} and scores each on "
            f"{', '.join(tasks)} with the kit's scorer, beside these numbers.")
    return result


def released_tasks(on_gpu: bool) -> list[str]:
    """All seven tasks on a GPU; STS-B alone on a CPU, where encoding every task's sentences with BERT-base is
    slow."""
    return list(STS_TASKS) if on_gpu else ["STSBenchmark"]
