"""A SentenceTransformerTrainer with NonLinguisticCallback against the kit's own trainer, on one recipe: each run
trains from the recipe's model, is saved as a sentence-transformers folder (the kit's run through `nlsup export`'s
code), and is scored by the kit's scorer on STS-B dev and test; the trainer's scores are read against the spread
the kit's trainer shows over seeds.

    python benchmarks/st_callback_against_kit.py [--recipe quick-visualcse] [--steps 250] [--kit-seeds 1 2 3]
        [--st-seeds 1] [--set KEY=VALUE ...] [--out DIR] [--data-dir DIR] [--json FILE]
    python benchmarks/st_callback_against_kit.py --from-json FILE   # the reading of saved runs, training nothing

Both sides take one epoch of the recipe's text (its first steps x batch_size sentences, in each trainer's own
shuffled order),
its image/audio data, batch sizes, learning rates, lambda and seed; the kit's run evaluates STS-B dev once, at the
last step, so both keep their last weights. Finished runs in --out are reused. Times are wall seconds of each
training, data loading and model load included, scoring excluded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from nlsup_kit.data import ensure_data
from nlsup_kit.device import pick_device
from nlsup_kit.encoder import SentenceEncoder
from nlsup_kit.evaluation import evaluate_sts
from nlsup_kit.export import export_checkpoint
from nlsup_kit.integrations.sentence_transformers import train_sentence_transformer
from nlsup_kit.recipes import apply_overrides, get_recipe
from nlsup_kit.trainer import train

SPLITS = ("dev", "test")


def scores(folder: Path, pooler: str, data_dir: Path) -> dict[str, float]:
    """Spearman x 100 on STS-B dev and test, the folder read back as any user would load it."""
    encoder = SentenceEncoder.from_pretrained(str(folder))
    where = pick_device()
    return {split: evaluate_sts(lambda s: encoder.encode(s, pooler, device=where), ("STSBenchmark",), data_dir,
                                split=split).scores["STSBenchmark"].spearman for split in SPLITS}


def recorded(folder: Path, data_dir: Path, train_and_save) -> dict:
    """``folder``/run.json, or else the run: ``train_and_save()`` gives the saved folder, its pooler and the
    training's wall seconds; the folder is scored."""
    record = folder / "run.json"
    if record.is_file():
        return json.loads(record.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    saved, pooler, seconds = train_and_save()
    run = {"seconds": seconds, **scores(saved, pooler, data_dir)}
    record.write_text(json.dumps(run, indent=2))
    return run


def kit_run(recipe, out: Path, data_dir: Path) -> dict:
    folder = out / f"kit-seed{recipe.seed}"

    def train_and_save():
        started = time.perf_counter()
        result = train(recipe, folder / "run", data_dir, reuse=True)
        seconds = time.perf_counter() - started  # the whole call: model and data load, training, evaluation, saves
        return export_checkpoint(result.best_dir, folder / "exported"), recipe.pooling_for_evaluation(), seconds

    return {"seed": recipe.seed, **recorded(folder, data_dir, train_and_save)}


def sentence_transformers_run(recipe, out: Path, data_dir: Path) -> dict:
    folder = out / f"st-seed{recipe.seed}"

    def train_and_save():
        run = train_sentence_transformer(recipe, folder / "run", data_dir)  # its seconds: model load to saved
        return run.folder, recipe.pooling_for_evaluation(), run.seconds

    return {"seed": recipe.seed, **recorded(folder, data_dir, train_and_save)}


def reading(kit: list[dict], theirs: list[dict], split: str) -> list[str]:
    """Each trainer run against the kit's seeds: their range, and the 95% prediction interval for one more run of
    the kit's trainer, mean +- t(0.975, n-1) sd sqrt(1 + 1/n) (the seeds' scores taken as normal): a range of n
    runs is where those n fell, the interval where the next one would fall 95 times in 100."""
    from scipy.stats import t

    values = [run[split] for run in kit]
    mean, low, high = statistics.mean(values), min(values), max(values)
    lines = [f"STS-B {split}: kit's trainer, seeds {', '.join(str(r['seed']) for r in kit)}: "
             f"{', '.join(f'{v:.2f}' for v in values)} (mean {mean:.2f}, range {low:.2f}-{high:.2f})"]
    if len(values) < 2:
        return lines + ["  one kit seed: no spread to read a run against"]
    spread = statistics.stdev(values)
    reach = t.ppf(0.975, len(values) - 1) * spread * (1 + 1 / len(values)) ** 0.5
    lines[0] = lines[0][:-1] + f", sd {spread:.2f}; one more kit run: 95% prediction interval {mean - reach:.2f}-{mean + reach:.2f})"
    for run in theirs:
        score = run[split]
        lines.append(f"  sentence-transformers + callback, seed {run['seed']}: {score:.2f}, {score - mean:+.2f} from the "
                     f"kit's mean ({(score - mean) / spread:+.1f} sd), {'inside' if low <= score <= high else 'outside'} "
                     f"the kit's seed range, {'inside' if abs(score - mean) <= reach else 'outside'} the prediction interval")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="quick-visualcse")
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--kit-seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--st-seeds", type=int, nargs="*", default=[1],
                        help="none: only the kit's runs (to add kit seeds to a saved comparison)")
    parser.add_argument("--out", default="build/st-callback-against-kit")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe setting for both sides, as `nlsup train --set` takes it")
    parser.add_argument("--json", default=None, help="write the runs here as well")
    parser.add_argument("--from-json", default=None, metavar="FILE",
                        help="print the reading of the runs a --json FILE holds, training nothing")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        print(f"{saved['recipe']}{''.join(f' --set {o}' for o in saved['overrides'])} for {saved['steps']} steps "
              f"({args.from_json})")
        for split in SPLITS:
            print("\n".join(reading(saved["kit"], saved["sentence_transformers_with_callback"], split)))
        return
    data_dir = ensure_data(["senteval", "wiki"], args.data_dir)
    out = Path(args.out)

    def recipe(seed: int):
        base = get_recipe(args.recipe)  # one epoch of as many sentences as the steps take
        return apply_overrides(base, [f"max_text_examples={args.steps * base.batch_size}", f"max_steps={args.steps}",
                                      f"eval_steps={args.steps}", f"seed={seed}", *args.overrides])

    kit = [kit_run(recipe(seed), out, data_dir) for seed in args.kit_seeds]
    theirs = [sentence_transformers_run(recipe(seed), out, data_dir) for seed in args.st_seeds]
    base = recipe(args.kit_seeds[0])
    settings = "".join(f" --set {override}" for override in args.overrides)
    print(f"{base.name}{settings} for {args.steps} steps: {base.model}, text batch {base.batch_size} from the first "
          f"{base.max_text_examples} sentences of {base.text_data}, {base.modality_data} batch {base.modality_batch_size}, "
          f"scored through {base.pooling_for_evaluation()} by the kit's scorer")
    for split in SPLITS:
        print("\n".join(reading(kit, theirs, split)))
    for name, runs in (("kit's trainer", kit), ("sentence-transformers + callback", theirs)):
        timings = ", ".join(f"seed {run['seed']} {run['seconds']:.0f} s" for run in runs)
        print(f"{name}: {timings} of training")
    if args.json:
        Path(args.json).write_text(json.dumps({"recipe": base.name, "overrides": args.overrides, "steps": args.steps, "kit": kit,
                                               "sentence_transformers_with_callback": theirs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
