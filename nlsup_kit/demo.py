"""The main job, offline on a CPU: STS of the offline model before training, then quick SimCSE,
VisualCSE (digits) and AudioCSE (spoken digits) runs on the Wikipedia sentences, and one table."""

from __future__ import annotations

import json
import time
from pathlib import Path

from nlsup_kit.data.paths import resolve_data_dir
from nlsup_kit.encoder import OFFLINE_MODEL, SentenceEncoder
from nlsup_kit.evaluation import StsReport, evaluate_sts
from nlsup_kit.recipes import get_recipe
from nlsup_kit.trainer import train

DEMO_RECIPES = ("quick-simcse", "quick-visualcse", "quick-audiocse")


def ensure_data(data_dir: Path) -> None:
    """Online fallback: fetch SentEval and a wiki1m slice when the data directory lacks them."""
    from nlsup_kit.data.download import SOURCES, download_senteval, fetch_head
    from nlsup_kit.data.text import WIKI_SMALL

    if not (data_dir / "senteval").is_dir():
        download_senteval(data_dir)
    if not (data_dir / WIKI_SMALL).is_file():
        fetch_head(SOURCES["wiki1m"], data_dir / WIKI_SMALL, max_lines=20_000)


def sts_of(model: str, pooling: str, data_dir: Path) -> StsReport:
    encoder = SentenceEncoder.from_pretrained(model)
    return evaluate_sts(lambda s: encoder.encode(s, pooling), data_dir=data_dir)


def results_table(rows: dict[str, dict[str, float]]) -> str:
    tasks = list(next(iter(rows.values())))
    width = max(map(len, rows)) + 2
    header = "model".ljust(width) + "".join(t.replace("Benchmark", "-B").replace("Relatedness", "-R").rjust(9)
                                            for t in tasks)
    lines = [header, "-" * len(header)]
    lines += [name.ljust(width) + "".join(f"{v:9.2f}" for v in values.values()) for name, values in rows.items()]
    return "\n".join(lines)


def run_demo(out_dir: str | Path = "build", data_dir: str | Path | None = None) -> dict[str, dict[str, float]]:
    out_dir = Path(out_dir)
    data_dir = resolve_data_dir(data_dir, must_exist=False)
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_data(data_dir)
    started = time.time()
    pooling = get_recipe(DEMO_RECIPES[0]).eval_pooling
    rows = {f"{OFFLINE_MODEL} (before training)": sts_of(OFFLINE_MODEL, pooling, data_dir).as_dict()}
    print(f"[{time.time() - started:5.0f}s] {OFFLINE_MODEL} before training: avg {rows[next(iter(rows))]['avg']}")
    for name in DEMO_RECIPES:
        result = train(get_recipe(name), out_dir / "runs" / name, data_dir)
        rows[name] = sts_of(str(result.best_dir), pooling, data_dir).as_dict()
        print(f"[{time.time() - started:5.0f}s] {name}: {result.steps} steps, loss {result.first_loss:.3f} -> "
              f"{result.last_loss:.3f}, best STS-B dev {result.best_dev:.2f}, STS avg {rows[name]['avg']}")
    table = results_table(rows)
    (out_dir / "demo_sts.json").write_text(json.dumps(rows, indent=2))
    (out_dir / "demo_sts.md").write_text(table + "\n")
    print(f"\nSTS test, Spearman x 100 ({pooling} pooling), SentEval protocol:\n{table}")
    return rows
