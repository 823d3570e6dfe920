"""Sentences that state what a run's numbers show, built from the numbers themselves.

The notebooks' markdown asks a question and says what a source predicts; what happened is printed by these
helpers, so the words can never say more than, or other than, the numbers (one place, tested)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def compare(name: str, value: float, reference_name: str, reference: float, unit: str = "points",
            tolerance: float = 0.0, digits: int = 2) -> str:
    """``name`` beside its reference: how far above or below it, or "within ``tolerance``" of it."""
    gap = value - reference
    shown = f"{name} {value:.{digits}f} vs {reference_name} {reference:.{digits}f}: "
    unit = f" {unit}" if unit else ""
    if abs(gap) <= tolerance:
        return shown + f"within {tolerance:g}{unit} of each other"
    return shown + f"{abs(gap):.{digits}f}{unit} {'above' if gap > 0 else 'below'}"


def change(quantity: str, before: float, after: float, better: str = "higher", tolerance: float = 0.0,
           digits: int = 3) -> str:
    """How ``quantity`` moved from ``before`` to ``after``, and whether that is better or worse."""
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', not {better!r}")
    gap = after - before
    if abs(gap) <= tolerance:
        verdict = "unchanged" + (f" (within {tolerance:g})" if tolerance else "")
    else:
        verdict = "better" if (gap > 0) == (better == "higher") else "worse"
    return f"{quantity} {before:.{digits}f} -> {after:.{digits}f}: {verdict} ({better} is better)"


def gap_against_spread(runs: Mapping[str, Sequence[float]], method: str, baseline: str,
                       recorded: tuple[float, str] | None = None) -> str:
    """The gap between two methods' mean scores, set against how far runs (seeds) of one method spread: measured
    here where a method has at least three runs (fewer cannot estimate a spread), else ``recorded`` (the widest
    spread measured elsewhere, and where) when given."""
    from nlsup_kit.evaluation import MIN_RUNS_FOR_A_VERDICT

    gap = float(np.mean(runs[method]) - np.mean(runs[baseline]))
    counted = ", ".join(f"{name} {'one run' if len(runs[name]) == 1 else f'mean of {len(runs[name])} runs'}"
                        for name in (method, baseline))
    line = f"{method} - {baseline}: {gap:+.2f} points ({counted})"
    spans = {name: float(np.ptp(values)) for name, values in runs.items() if len(values) >= MIN_RUNS_FOR_A_VERDICT}
    if spans:
        widest = max(spans, key=spans.get)
        spread, where = spans[widest], f"{widest}, {len(runs[widest])} seeds"
    else:
        most = max(len(values) for values in runs.values())
        line += f"; {'one run' if most == 1 else f'{most} runs'} of a method cannot measure how far its runs spread"
        if recorded is None:
            return line + "."
        spread, where = recorded
    verdict = "within that spread" if abs(gap) <= spread else "wider than that spread"
    return f"{line}; runs of one method span up to {spread:.2f} points ({where}): the gap is {verdict}."


def repeat_timings(milliseconds: Mapping[str, Sequence[float]], unit: str = "ms per iteration") -> str:
    """Runs of identical work (one recipe, other seeds) timed separately: how far their times disagree. Where
    they disagree by more than the methods differ, the times measure the machine's load, not the methods."""
    within = {name: max(times) / min(times) for name, times in milliseconds.items() if len(times) > 1}
    means = {name: float(np.mean(times)) for name, times in milliseconds.items()}
    between = max(means.values()) / min(means.values())
    listing = "; ".join(f"{name} " + ", ".join(f"{t:,.0f}" for t in times) for name, times in milliseconds.items())
    if not within:
        return f"{listing} {unit} (one run each: no repeat to compare)"
    noisiest = max(within, key=within.get)
    line = (f"{listing} {unit}. Runs of identical work ({noisiest}, another seed) differ up to "
            f"x{within[noisiest]:.2f}; the methods' means differ x{between:.2f}")
    if within[noisiest] >= between:
        return line + ": these times measure this machine's load, not the methods."
    return line + ": the methods differ more than repeats of one method do."


def against_prediction(outcome: str, agrees: bool, differences: Mapping[str, tuple[object, object]]) -> str:
    """A result read beside a source's prediction: when it departs, what in this run differs from the source's
    run (``differences``: what -> (here, there)), so a departure is never left unexplained."""
    if agrees:
        return f"{outcome}: as the source predicts."
    listing = "; ".join(f"{name} {here} here, {there} there" for name, (here, there) in differences.items())
    return f"{outcome}: not what the source predicts. This run differs from the source's in: {listing}."


def class_gap_reading(means: Mapping[str, tuple[float, float]], examples: str,
                      differences: Mapping[str, tuple[object, object]]) -> str:
    """The within-class minus between-class mean cosine (``means``: model -> (within, between), first the model
    before training, last the one after), read against supervised contrastive learning's prediction that training
    pulls each class together and the classes apart."""
    (first, (within0, between0)), (last, (within1, between1)) = list(means.items())[0], list(means.items())[-1]
    gap0, gap1 = within0 - between0, within1 - between1
    crowd = (f"; within and between both rose ({within0:.3f} -> {within1:.3f}, {between0:.3f} -> {between1:.3f}): "
             "all the vectors moved closer together" if within1 > within0 and between1 > between0 else "")
    outcome = (f"the {examples}' within-class minus between-class cosine: {gap0:+.3f} {first}, {gap1:+.3f} {last} "
               f"({'wider' if gap1 > gap0 else 'not wider'}{crowd})")
    return against_prediction(outcome, gap1 > gap0, differences)


def loss_against_chance(first: float, log_b: float, batch: int, trained_for_similarity: bool) -> str:
    """The first logged loss beside log B, the loss of a model that cannot tell the batch apart; far below it,
    the model already tells each sentence's second view from the others before training."""
    share = first / log_b
    start = f"the first logged loss, {first:.2g}, is {share:.0%} of log B ({log_b:.2f})"
    if share > 0.5:
        return f"{start}: at first the model barely tells the {batch} sentences apart"
    why = (" (the model ships a sentence-transformers config: it was trained as a sentence encoder before)"
           if trained_for_similarity else "")
    return (f"{start}: before any update the model already picks each sentence's second view out of {batch}{why}, "
            "so there is little left for the loss to fall")
