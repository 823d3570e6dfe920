"""STS evaluation speed: the kit's scorer against a plain SentEval-style loop, same model, same numbers.

The plain loop encodes every pair in file order, 128 pairs a batch, each side padded to its longest sentence
(what SentEval's batcher does). The kit encodes each distinct sentence once, sorted by length.
Usage: python benchmarks/bench_sts.py [--model minilm-l6] [--pooling avg] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nlsup_kit.data import ensure_data
from nlsup_kit.data.senteval import STS_TASKS, load_sts_task
from nlsup_kit.encoder import SentenceEncoder
from nlsup_kit.evaluation import cosine_scores, evaluate_sts, score_pairs


@torch.inference_mode()
def plain_loop(encoder: SentenceEncoder, pooling: str, data_dir, batch_size: int = 128) -> dict[str, float]:
    scores = {}
    for task in STS_TASKS:
        pairs = load_sts_task(task, data_dir)
        sims = []
        for start in range(0, len(pairs), batch_size):
            sides = [encoder(encoder.tokenize(side[start:start + batch_size], encoder.max_input_length), pooling)
                     for side in (pairs.sentences1, pairs.sentences2)]
            sims.append(cosine_scores(*sides))
        scores[task] = round(score_pairs(pairs, np.concatenate(sims)).spearman, 2)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--pooling", default="avg")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    data_dir = ensure_data(["senteval"], args.data_dir)
    encoder = SentenceEncoder.from_pretrained(args.model)
    started = time.perf_counter()
    kit = evaluate_sts(lambda s: encoder.encode(s, args.pooling, progress=False), data_dir=data_dir).as_dict()
    kit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    plain = plain_loop(encoder, args.pooling, data_dir)
    plain_seconds = time.perf_counter() - started
    difference = max(abs(kit[t] - plain[t]) for t in STS_TASKS)
    print(f"{args.model} ({args.pooling}), seven STS tasks, {torch.get_num_threads()} CPU threads")
    print(f"{'path':<34}{'seconds':>9}{'speed-up':>10}")
    print(f"{'plain SentEval loop (batch 128)':<34}{plain_seconds:9.1f}{1.0:10.2f}")
    print(f"{'kit (distinct, length-sorted)':<34}{kit_seconds:9.1f}{plain_seconds / kit_seconds:10.2f}")
    print(f"largest score difference between the two: {difference:.2f}; kit avg {kit['avg']}")


if __name__ == "__main__":
    main()
