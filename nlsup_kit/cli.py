"""``nlsup``: evaluate, train, export, download, list recipes, run the demo, copy out the notebooks."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from nlsup_kit.errors import NlsupError, Stopped

ONLINE_ONLY = ("imagenette", "librispeech")  # fetched by torchvision / torchaudio, for the paper recipes
# ImageNet needs an account: nothing is downloaded, the user's copy is checked against the paper's list
IMAGENET_SUBSET = "imagenet-subset"


def cmd_eval_sts(args) -> None:
    from nlsup_kit.data import ensure_data
    from nlsup_kit.data.multilingual import tasks_for_language
    from nlsup_kit.data.senteval import STS_TASKS
    from nlsup_kit.encoder import SentenceEncoder
    from nlsup_kit.evaluation import evaluate_sts, task_data_needs
    from nlsup_kit.models import RELEASED_PREFIX, released

    if args.tasks and args.language:
        raise NlsupError("give --tasks or --language, not both")
    tasks = ([t.strip() for t in args.tasks.split(",")] if args.tasks else
             tasks_for_language(args.language) if args.language else list(STS_TASKS))
    release = released(args.model)  # released:<recipe>: the authors' model, scored as they score it
    pooling = args.pooling or (release.pooling if release else "cls_before_pooler")
    # before loading the model: data problems come first
    data_dir = ensure_data(task_data_needs(tasks), args.data_dir)
    encoder = SentenceEncoder.from_pretrained(args.model)
    report = evaluate_sts(lambda s: encoder.encode(s, pooling, args.batch_size, args.device),
                          tasks, data_dir)
    print(report.table(f"{args.model} ({pooling}): Spearman x 100, SentEval protocol"))
    print(report.protocol())
    if release:
        from nlsup_kit.paper import beside_published

        measured = {task: score.spearman for task, score in report.scores.items()}
        if set(measured) == set(STS_TASKS):
            measured["avg"] = report.average
        print(beside_published(args.model.removeprefix(RELEASED_PREFIX), measured))
    if args.json:
        report.write_json(args.json)


def cmd_train(args) -> None:
    from nlsup_kit.recipes import apply_overrides, get_recipe
    from nlsup_kit.trainer import modality_data_description, train

    recipe = apply_overrides(get_recipe(args.recipe), args.set or [])
    output = Path(args.output_dir or Path("build") / "runs" / recipe.name)
    if (described := modality_data_description(recipe)) is not None:
        print(f"{recipe.name}: {recipe.modality} data: {described}", flush=True)
    result = train(recipe, output, args.data_dir, resume=args.resume, overwrite=args.overwrite)
    print(f"{recipe.name}: {result.steps} steps in {result.seconds:.0f}s, best STS-B dev {result.best_dev:.2f}, "
          f"checkpoint {result.best_dir}")


def cmd_recipes(args) -> None:
    import dataclasses

    from nlsup_kit.recipes import RECIPES, SECTIONS, get_recipe

    columns = ("model", "text_data", "batch_size", "learning_rate", "modality", "modality_data",
               "modality_batch_size", "modality_learning_rate", "modality_loss_weight", "modality_temperature",
               "modality_loss", "epochs")
    if args.name:
        settings = dataclasses.asdict(get_recipe(args.name))
        for section, keys in SECTIONS.items():
            print(f"# {section}")
            for key in keys:
                print(f"{key:24} {settings[key]}")
        from nlsup_kit.paper import recipe_source

        print(f"# where these come from\n{recipe_source(args.name)}")
        return
    headers = ["recipe", *(c.replace("modality_", "m_") for c in columns)]
    rows = [[name, *(str(getattr(recipe, c)) for c in columns)] for name, recipe in RECIPES.items()]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print("\nm_ = modality_, the image/audio side; `nlsup recipes NAME` shows every setting")


def cmd_download(args) -> None:
    from nlsup_kit.data.download import download_text
    from nlsup_kit.data.paths import download_dir
    from nlsup_kit.data.leipzig import PREFIX as LEIPZIG_PREFIX
    from nlsup_kit.data.sources import DOWNLOADS, leipzig_download

    if args.what not in (*DOWNLOADS, *ONLINE_ONLY, IMAGENET_SUBSET) and not args.what.startswith(LEIPZIG_PREFIX):
        raise NlsupError(f"nothing to download called {args.what!r}; choose from "
                         f"{', '.join((*DOWNLOADS, *ONLINE_ONLY, IMAGENET_SUBSET))} or {LEIPZIG_PREFIX}<corpus>")
    if args.what != IMAGENET_SUBSET and (args.imagenet_root or args.image_list):
        raise NlsupError(f"--imagenet-root and --image-list go with {IMAGENET_SUBSET}, not {args.what}")
    if args.what == IMAGENET_SUBSET and not args.imagenet_root:
        raise NlsupError(f"{IMAGENET_SUBSET} reads your ImageNet-1k: give its train folder with --imagenet-root DIR")
    if args.what == IMAGENET_SUBSET:
        from nlsup_kit.data.imagenet_subset import PREFIX, checked_subset, describe

        subset = checked_subset(args.imagenet_root, args.image_list)
        print(f"{IMAGENET_SUBSET}: {len(subset):,} images in {len(subset.classes)} classes checked; "
              f"{describe(subset.root, args.image_list)}\n"
              f"train on them with --set modality_data={PREFIX}{subset.root}"
              + (f" --set image_list={args.image_list}" if args.image_list else ""))
        return
    data_dir = download_dir(args.data_dir)
    if args.max_lines is not None:
        if args.what not in ("wiki1m", "nli"):
            raise NlsupError(f"--max-lines applies to wiki1m and nli, not {args.what}")
        path = download_text(args.what, data_dir, max_lines=args.max_lines)
    elif args.what in DOWNLOADS or args.what.startswith(LEIPZIG_PREFIX):
        download = DOWNLOADS.get(args.what) or leipzig_download(args.what)
        download.fetch(data_dir, None)
        path = data_dir / download.relative_path
    elif args.what == "imagenette":
        from nlsup_kit.data.images import imagenette

        path = Path(imagenette(data_dir).root)
    else:
        from nlsup_kit.data.audio import librispeech_clips

        librispeech_clips(data_dir)
        path = data_dir / "librispeech"
    print(f"{args.what}: {path}")


def cmd_export(args) -> None:
    from nlsup_kit.export import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.out, args.pooling)
    print(f"exported to {out} (load with SentenceTransformer({str(out)!r}))")


def cmd_bench(args) -> None:
    from pathlib import Path

    from nlsup_kit.benchmark import run_benchmark
    from nlsup_kit.benchmark_timing import attention_backend
    from nlsup_kit.recipes import apply_overrides, get_recipe

    reports = []
    for name in args.recipe.split(","):
        recipe = apply_overrides(get_recipe(name.strip()), args.set or [])
        with attention_backend(args.attention):
            report = run_benchmark(recipe, args.data_dir, args.steps, args.warmup, args.random_init,
                                   args.tokenizer, compare_st=not args.no_st, compiled=args.compile,
                                   evaluate=not args.no_eval, profile=args.profile,
                                   whole_update_graphs=args.whole_update_graphs, pipeline=args.pipeline,
                                   slice_steps=args.slice)
        report.environment["attention"] = args.attention
        print(report.table() + "\n", flush=True)
        reports.append(report)
    if args.json:
        Path(args.json).write_text("[" + ",\n".join(r.to_json() for r in reports) + "]\n")


def cmd_demo(args) -> None:
    from nlsup_kit.demo import run_demo

    run_demo(args.out, args.data_dir)


def cmd_notebooks(args) -> None:
    from nlsup_kit.demo import copy_notebooks

    for path in copy_notebooks(args.folder):
        print(f"wrote {path}")
    print(f"open them with: jupyter lab {args.folder}")


def build_parser() -> argparse.ArgumentParser:
    from nlsup_kit.encoder import POOLERS

    parser = argparse.ArgumentParser(prog="nlsup", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _model_commands(sub, POOLERS)
    _tool_commands(sub)
    return parser


def _model_commands(sub, poolers: tuple[str, ...]) -> None:
    """Commands that train, score and export models."""
    from nlsup_kit.export import ST_POOLING

    p = sub.add_parser("eval-sts", help="score a model on STS12-16, STS-B, SICK-R (SentEval protocol), the "
                                         "multilingual STS-B or STS17")
    p.add_argument("--model", required=True, help="minilm-l6, bert-base-uncased, xlmr-base, mbert, a hub id, a "
                   "folder, or released:<recipe>, a model its authors published (e.g. released:visualcse-bert-base: "
                   "scored with their pooler and set beside their published scores)")
    p.add_argument("--pooling", choices=poolers, help="default: cls_before_pooler, or a released model's own")
    p.add_argument("--data-dir")
    p.add_argument("--tasks", help="comma-separated, e.g. STS12,STSBenchmark or stsb-de,sts17-en-de (default: "
                                   "the English seven)")
    p.add_argument("--language", help="every set in this language, e.g. de: stsb-de and sts17-en-de")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    p.add_argument("--json", help="write the scores to this JSON file")
    p.set_defaults(run=cmd_eval_sts)

    p = sub.add_parser("train", help="train a recipe")
    p.add_argument("--recipe", required=True)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe setting (repeatable)")
    p.add_argument("--output-dir")
    p.add_argument("--data-dir")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT_DIR/checkpoint, exactly: same settings, except log_steps, eval_steps "
                        "and checkpoint_steps")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run OUTPUT_DIR holds (kept as OUTPUT_DIR.replaced until the new one finishes)")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("recipes", help="list the recipes, or show one in full")
    p.add_argument("name", nargs="?")
    p.set_defaults(run=cmd_recipes)

    p = sub.add_parser("export", help="write a checkpoint as a HF + sentence-transformers folder")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True)
    p.add_argument("--pooling", choices=tuple(ST_POOLING), help="default: the run's evaluation pooler")
    p.set_defaults(run=cmd_export)


def _tool_commands(sub) -> None:
    """Data, benchmarks, the demo and the lessons."""
    from nlsup_kit.data.sources import DOWNLOADS, WIKI_SLICE_LINES

    p = sub.add_parser("download", help="fetch data into --data-dir / NLSUP_DATA / the cache folder "
                                         "(from $NLSUP_MIRROR when set)")
    p.add_argument("what", metavar="WHAT",
                   help=f"{', '.join((*DOWNLOADS, *ONLINE_ONLY, IMAGENET_SUBSET))}, or leipzig:<corpus> (sentences in "
                        f"another language, e.g. leipzig:deu_wikipedia_2021_100K); wiki is the {WIKI_SLICE_LINES:,}-"
                        "line head of wiki1m that the QUICK recipes train on")
    p.add_argument("--data-dir")
    p.add_argument("--max-lines", type=int, help="wiki1m/nli: only the first N lines")
    p.add_argument("--imagenet-root", metavar="DIR", help=f"{IMAGENET_SUBSET}: ImageNet-1k's train folder (one "
                   "folder per class); checks that every image the paper used is there and decodes, copying nothing")
    p.add_argument("--image-list", metavar="FILE", help=f"{IMAGENET_SUBSET}: another list in the format of the "
                   "reference's VisualCSE/sampled-Imagenet.txt (default: that list, shipped)")
    p.set_defaults(run=cmd_download)

    p = sub.add_parser("bench", help="time training steps against a sentence-transformers loop; peak memory")
    p.add_argument("--recipe", required=True, help="a recipe, or several separated by commas")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe setting (repeatable)")
    p.add_argument("--data-dir")
    p.add_argument("--steps", type=int, default=20, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation happens here)")
    p.add_argument("--random-init", action="store_true",
                   help="the recipe's architecture with random weights (no download; speed is the same)")
    p.add_argument("--tokenizer", help="tokenizer folder for --random-init (default: minilm-l6's)")
    p.add_argument("--compile", action="store_true", help="add a row for the torch.compile'd step")
    p.add_argument("--whole-update-graphs", action="store_true",
                   help="with --compile on CUDA: also a row with each whole update one CUDA graph (experimental)")
    p.add_argument("--pipeline", action="store_true", help="also time the making of image/audio batches, shipped "
                   "per-item path beside the cached one, and count it in the projection")
    p.add_argument("--slice", type=int, default=0, metavar="STEPS", help="then train STEPS iterations through the "
                   "trainer by the clock (data, evaluations, checkpoints) beside their projection")
    p.add_argument("--no-st", action="store_true", help="skip the sentence-transformers loop")
    p.add_argument("--no-eval", action="store_true", help="skip the STS-B dev evaluation and the projection")
    p.add_argument("--profile", action="store_true", help="print the profiler's top operators of each eager step")
    p.add_argument("--attention", default="auto", help="prefer this attention kernel: auto (PyTorch's choice), "
                   "flash, efficient, cudnn or math")
    p.add_argument("--json", help="write the reports to this JSON file")
    p.set_defaults(run=cmd_bench)

    p = sub.add_parser("demo", help="the main job: run every notebook in QUICK mode, export HTML, print the STS table")
    p.add_argument("--out", default="build")
    p.add_argument("--data-dir")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("notebooks", help="copy the lesson notebooks into FOLDER to open in JupyterLab")
    p.add_argument("folder", nargs="?", default="nlsup-notebooks")
    p.set_defaults(run=cmd_notebooks)


def continue_command(argv: list[str]) -> str:
    """The command line that continues a stopped ``nlsup train``: the same one, resuming, never overwriting."""
    kept = [a for a in argv if a not in ("--overwrite", "--resume")]
    return f"`{shlex.join(['nlsup', *kept, '--resume'])}`"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except Stopped as stop:  # a checkpoint was written: one line (from one process), the shell's status
        if stop.is_main:
            print(stop.line(continue_command(argv)), file=sys.stderr)
        return stop.exit_status
    except NlsupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
