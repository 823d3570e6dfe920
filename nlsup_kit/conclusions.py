"""Sentences that state what a run's numbers show, built from the numbers themselves.

The notebooks' markdown asks a question and says what a source predicts; what happened is printed by these
helpers, so the words can never say more than, or other than, the numbers (one place, tested)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def printed_gap(value: float, reference: float, digits: int = 3) -> float:
    """The gap between two values as printed to ``digits`` places: a printed gap that adds up with the printed
    values (0.964 and 0.957 give 0.007, never the 0.008 their unrounded gap may round to)."""
    return round(value, digits) - round(reference, digits)


def compare(name: str, value: float, reference_name: str, reference: float, unit: str = "points",
            tolerance: float = 0.0, digits: int = 2) -> str:
    """``name`` beside its reference: how far above or below it, or "within ``tolerance``" of it."""
    gap = printed_gap(value, reference, digits)
    shown = f"{name} {value:.{digits}f} vs {reference_name} {reference:.{digits}f}: "
    unit = f" {unit}" if unit else ""
    if abs(gap) <= tolerance:
        return shown + f"within {tolerance:g}{unit} of each other"
    return shown + f"{abs(gap):.{digits}f}{unit} {'above' if gap > 0 else 'below'}"


def change(quantity: str, before: float, after: float, better: str | None = "higher", tolerance: float = 0.0,
           digits: int = 3) -> str:
    """How ``quantity`` moved, and whether that is better (``better`` None: the direction only, no source says)."""
    if better not in ("higher", "lower", None):
        raise ValueError(f"better must be 'higher', 'lower' or None, not {better!r}")
    gap = after - before
    if abs(gap) <= tolerance:
        verdict = "unchanged" + (f" (within {tolerance:g})" if tolerance else "")
    else:
        verdict = ("higher" if gap > 0 else "lower") if better is None else (
            "better" if (gap > 0) == (better == "higher") else "worse")
    return f"{quantity} {before:.{digits}f} -> {after:.{digits}f}: {verdict}" + (f" ({better} is better)" if better else "")


def gap_interval(runs: Mapping[str, Sequence[float]], method: str, baseline: str,
                 paired: bool = False) -> tuple[float, float, int] | None:
    """The gap between two methods' mean scores, its standard error and its degrees of freedom; None with fewer
    than three runs (seeds) of either, which cannot estimate a spread. ``paired``: run k of each method shares seed
    k (and so its text batches), and the error comes from the per-seed differences, sd(d)/sqrt(n); else from each
    method's own spread, sqrt(s_a^2/n_a + s_b^2/n_b)."""
    from nlsup_kit.evaluation import MIN_RUNS_FOR_A_VERDICT

    gap = float(np.mean(runs[method]) - np.mean(runs[baseline]))
    if min(len(runs[name]) for name in (method, baseline)) < MIN_RUNS_FOR_A_VERDICT:
        return None
    if paired:
        if len(runs[method]) != len(runs[baseline]):
            raise ValueError(f"paired runs need as many runs of each method, not {len(runs[method])} and {len(runs[baseline])}")
        differences = np.asarray(runs[method]) - np.asarray(runs[baseline])
        return gap, float(np.std(differences, ddof=1) / np.sqrt(len(differences))), len(differences) - 1
    error = float(np.sqrt(sum(np.var(runs[name], ddof=1) / len(runs[name]) for name in (method, baseline))))
    return gap, error, min(len(runs[method]), len(runs[baseline])) - 1


def t_reach(error: float, freedom: int) -> float:
    """How far a 95% interval reaches from so few runs: Student's t quantile, not 2, times the standard error."""
    from scipy.stats import t

    return float(t.ppf(0.975, freedom)) * error


def settles_gap(runs: Mapping[str, Sequence[float]], method: str, baseline: str, paired: bool = False) -> bool:
    """Whether the gap lies clearly beyond its 95% t interval (:func:`gap_interval`): by more than :data:`EDGE` of
    its reach, since a gap at the edge is one more seed from either verdict (:func:`gap_against_spread` reads it so).
    False where no interval exists."""
    interval = gap_interval(runs, method, baseline, paired)
    return interval is not None and abs(interval[0]) > (1 + EDGE) * t_reach(*interval[1:])


EDGE = 0.05  # a gap this close to its interval's reach (as a share of it) is read as at the edge


def gap_against_spread(runs: Mapping[str, Sequence[float]], method: str, baseline: str, paired: bool = False) -> str:
    """The gap between two methods' mean scores beside its own noise (:func:`gap_interval`): a gap within its 95%
    t interval is one these runs cannot tell from the seeds' randomness."""
    from nlsup_kit.evaluation import MIN_RUNS_FOR_A_VERDICT

    gap = float(np.mean(runs[method]) - np.mean(runs[baseline]))
    counted = ", ".join(f"{name} {'one run' if len(runs[name]) == 1 else f'mean of {len(runs[name])} runs'}"
                        for name in (method, baseline))
    interval = gap_interval(runs, method, baseline, paired)
    reach = t_reach(*interval[1:]) if interval is not None else None
    digits = 2  # enough to show which is larger where gap and reach print alike
    while reach is not None and round(abs(gap), digits) == round(reach, digits) and digits < 6:
        digits += 1
    line = f"{method} - {baseline}: {gap:+.{digits}f} points ({counted}; from the unrounded scores)"
    if interval is None:
        fewest = min(len(runs[name]) for name in (method, baseline))
        return (line + f"; {'one run of a method cannot estimate' if fewest == 1 else f'{fewest} runs of a method give only a rough estimate of'} "
                f"how far its runs spread, and the kit reads a gap only from at least {MIN_RUNS_FOR_A_VERDICT} runs of each "
                "(nlsup_kit.evaluation.MIN_RUNS_FOR_A_VERDICT), so no verdict from these runs alone.")
    _, error, freedom = interval
    source = ("from the per-seed differences (each seed ran both methods), unrounded" if paired
              else "from each method's spread over its runs, unrounded")
    verdict = ("it contains 0: these runs cannot tell the gap from the seeds' randomness" if abs(gap) <= reach
               else "it excludes 0: the gap is larger than the seeds' randomness would usually give")
    if abs(abs(gap) - reach) < EDGE * reach:
        verdict = (f"it {'contains' if abs(gap) <= reach else 'excludes'} 0 by {abs(abs(gap) - reach):.{digits}f}, within "
                   f"{EDGE:.0%} of its reach: at the edge, where one more seed could tip the verdict either way")
    # the error one place finer than the reach, so that error x t, worked by hand, rounds to the printed reach
    return (f"{line}; {source}, the gap has a standard error of {error:.{digits + 1}f} points, and with {freedom} degrees of "
            f"freedom a 95% interval, the gap +-{reach:.{digits}f} (t = {reach / error:.2f}), is "
            f"[{round(gap, digits) - round(reach, digits):+.{digits}f}, {round(gap, digits) + round(reach, digits):+.{digits}f}]: "
            f"{verdict}.")  # its ends from the printed gap and reach, so that they add up as printed


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


def against_prediction(outcome: str, agrees: bool | None, differences: Mapping[str, tuple[object, object]],
                       runs: int = 1) -> str:
    """A result read beside a source's prediction: when it departs, what in this run differs from the source's
    run (``differences``: what -> (here, there)), so a departure is never left unexplained; ``agrees`` None: the
    runs cannot judge it, and the differences are listed all the same. ``runs``: how many runs the outcome reads."""
    if agrees:
        return f"{outcome}: as the source predicts."
    listing = "; ".join(f"{name} {here} here, {there} there" for name, (here, there) in differences.items())
    subject = "This run differs" if runs == 1 else "These runs differ"
    if agrees is None:
        return (f"{outcome}: these runs cannot judge it against the source's prediction. {subject} from the "
                f"source's in: {listing}.")
    return f"{outcome}: not what the source predicts. {subject} from the source's in: {listing}."


def class_gap_reading(means: Mapping[str, tuple[float, float]], examples: str,
                      differences: Mapping[str, tuple[object, object]] | None = None,
                      apart: Mapping[str, tuple[int, int]] | None = None) -> str:
    """The within-class minus between-class mean cosine (``means``: model -> (within, between), first the model
    before training, last the one after), read against supervised contrastive learning's prediction that training
    pulls each class together and the classes apart where its loss compares the vectors; ``differences`` None:
    where no source predicts it (below the head), reported as a measurement only. ``apart``: model -> (classes
    closer to themselves than to any other class, classes), read beside the gap."""
    (first, (within0, between0)), (last, (within1, between1)) = list(means.items())[0], list(means.items())[-1]
    gap0, gap1 = printed_gap(within0, between0), printed_gap(within1, between1)
    crowd = (f"; the mean cosine rose both within and between classes ({within0:.3f} -> {within1:.3f}, {between0:.3f} -> "
             f"{between1:.3f}): on average, pairs moved closer together" if within1 > within0 and between1 > between0 else "")
    if apart:
        (count0, classes), (count1, _) = apart[first], apart[last]
        moved = "more" if count1 > count0 else "fewer" if count1 < count0 else "as many"
        against = ("narrowed" if count1 > count0 and gap1 <= gap0 else "widened" if count1 < count0 and gap1 > gap0
                   else None)
        crowd += (f"; classes closer to themselves than to any other class: {count0} -> {count1} of {classes} ({moved}"
                  + (f", while the gap {against}: the count asks only whether each class's own cosine beats its nearest "
                     "other class, the gap averages every pair of classes, and the two can move apart)" if against else ")"))
    outcome = (f"within-class minus between-class cosine, {examples}: {gap0:+.3f} {first}, {gap1:+.3f} {last} "
               f"({'wider' if gap1 > gap0 else 'not wider'}{crowd})")
    if differences is None:
        return f"{outcome}: a measurement; no source predicts it here"
    return against_prediction(outcome, gap1 > gap0, differences)


SATURATED = 0.1  # the kit's own line: a text loss starting below this share of log B has almost nothing left to lose


def taken_share(loss: float) -> str:
    """The probability the right second view takes, e^-loss: a geometric mean over the batch's rows, so it says
    nothing of any one row."""
    right = float(np.exp(-loss))
    return f"all but {1 - right:.3g} of" if 1 - right < 0.005 else f"{right:.0%} of"


def share_of_log_b(loss: float, batch: int) -> str:
    """A text loss as a share of log B, read: below :data:`SATURATED` of it, the right second views already take
    nearly all the probability on average; every row's right view takes over half only when B x loss < log 2
    (a row below half alone adds more than log 2 to the batch's total)."""
    share = loss / float(np.log(batch))
    every = (f"; B x loss = {batch * loss:.3f} < log 2, so in every row the right second view takes over half"
             if batch * loss < np.log(2) else "")
    return (f"{share:.1%} of log B, B = {batch}: "
            + (f"below {SATURATED:g} x log B (the kit's own line): at this text update the right second view already takes "
               f"{taken_share(loss)} the probability on average (a geometric mean over the {batch} rows){every}"
               if share < SATURATED else
               f"at or above {SATURATED:g} x log B (the kit's own line), so this step still has second views to tell apart"))


def loss_course(logged: Sequence[float], log_b: float, steps: int, window: int = 5) -> str:
    """The text loss's course over a run, read against log B (the loss of a model that cannot tell the batch apart).
    Each step draws a new batch, so the reading compares the means of the first and the last ``window`` logged
    steps. A loss that starts below :data:`SATURATED` of log B is saturated: its changes are too small to read."""
    n = max(1, min(window, len(logged) // 2))
    first, last = float(np.mean(logged[:n])), float(np.mean(logged[-n:]))
    share = f"{last / log_b:.1%} of" if last / log_b >= 0.001 else f"{last / log_b:.1e} times"
    ends = (f"mean of the first {n} logged steps {first:.3g} and of the last {n} {last:.3g}" if n > 1
            else f"first logged step {first:.3g}, last {last:.3g}")
    line = f"Over the {steps} steps the text loss, {ends} ({share} log B): "
    if first < SATURATED * log_b:
        moved = (f"the last steps' mean is {last / first:.0%} of the first steps'" if last < first
                 else "it did not fall")
        return line + (f"below {SATURATED:g} x log B from the start (the kit's own line), it was saturated: on average (a "
                       f"geometric mean over each batch) the right second view already took {taken_share(first)} the "
                       f"probability; {moved}: at losses this small a change says only how much further apart views "
                       "already told apart on average moved; whether STS moved, the STS scores measure")
    return line + ("it fell: on the last steps' batches the two views of each sentence stood out from the rest of the "
                   "batch more than on the first steps'" if last < first else "it did not fall over these steps")


def loss_against_chance(first: float, log_b: float, batch: int, through: str,
                        reference: tuple[float, str] | None = None, model: str | None = None) -> str:
    """The first logged text loss beside log B, the loss of a model that cannot tell the batch apart; far below
    it, the model already tells each sentence's second view from the others at its first text step. ``through``:
    the vector the loss compares, which sets how low a start can be (a pooler the model was trained with, or
    ``[CLS]`` through a head initialised afresh). ``reference``: the source run's first logged loss and where it is
    written (a mean over many steps there, so it is printed as such, not as a first step); ``model``: this run's
    starting model, said beside the reference's raw BERT-base."""
    share = first / log_b
    shown = f"{share:.0%} of" if share >= 0.01 else f"{share:.1e} times"
    start = f"the first logged text loss, {first:.3g}, is {shown} log B ({log_b:.2f}: the loss of a model that cannot tell the B = {batch} sentences of a batch apart), through {through}"
    if share > 0.5:
        return f"{start}: at first the model barely tells the {batch} sentences apart"
    line = (f"{start}: at its first text step the right second view already takes {taken_share(first)} the probability among "
            f"{batch} (e^-loss, a geometric mean over the batch)")
    if reference is not None:
        line += (f". The reference code's BERT-base training log (VisualCSE's, text loss beside its image steps): its first "
                 f"logged loss is {reference[0]:g} ({reference[1]}): a mean over many steps of another run, not a first step, so it "
                 f"stands beside this run's {first:.3g} as a source's number, not as the same quantity")
        if model is not None:
            from nlsup_kit.models import native_pooling_config

            line += (f"; this run starts from {model}" + (", already trained for sentence similarity"
                                                          if native_pooling_config(model) else ", pretrained only")
                     + ", the reference's from raw BERT-base")
    return line


AT_THE_LEVEL = 0.02  # the kit's own line: within 2% of the uniform level counts as at it


def modality_budget(steps: int, recipe) -> dict[str, tuple[str, str]]:
    """What a run gave its image/audio loss to come down with, beside what SupCon's prediction presumes (a loss
    trained down): a difference for :func:`class_gap_reading`."""
    embedding = (f"a pretrained {recipe.vit_embeddings} patch embedding" if recipe.vit_embeddings
                 else "a patch embedding initialised at random")
    return {f"the {recipe.modality} loss's training": (
        f"{steps} updates at learning rate {recipe.modality_learning_rate:g}, the loss weighted by lambda "
        f"{recipe.modality_loss_weight:g}, from {embedding} and a head initialised at random",
        "as many updates as the loss needs to come down")}


def level_of(value: float, uniform: float) -> str:
    """Where a loss sits against the uniform level (views not told apart): at it, within :data:`AT_THE_LEVEL`
    (the kit's own line), else above it or below it."""
    if abs(value - uniform) <= AT_THE_LEVEL * uniform:
        return f"at about the uniform level (within {AT_THE_LEVEL:.0%} of it, the kit's own line)"
    return "above the uniform level" if value > uniform else "below the uniform level, toward the floor"


# What a loss above the uniform level means: worse than views not told apart. A contrastive loss is the mean
# -log of the probability the softmax over the batch gives each positive; it exceeds log(2B-1) when that
# probability sits on one or a few examples instead of spreading over all the positives, as when each example's
# own second view takes nearly all of it (what a loss asking only for that pair, SimCLR, trains toward), or at a
# low temperature whichever example happens to lie closest.
ABOVE_UNIFORM = ("above the uniform level is a higher loss than a model that tells no views apart would get: the loss is "
                 "the mean -log of the probability the softmax gives each positive, so it exceeds log(2B-1) (B = {batch} "
                 "examples of this loss's batch: log {views}) when the positives get less than 1/(2B-1) each (a geometric "
                 "mean), the rest going to other examples; which ones, these logged values do not say")


_LOSS_NAMES = {"supcon": "SupCon", "simclr": "SimCLR", "released-supcon": "new_supcon"}  # recipe value -> printed


def modality_loss_reading(loss: str, logged: Sequence[float], weight: float, levels: Mapping[str, float],
                          batch: int, classes: int, window: int = 5) -> str:
    """The image/audio loss over a run (``logged``: per logged step, times lambda ``weight``, as the trainer logs
    it), divided by lambda, from the mean of its first ``window`` logs to the mean of its last, beside the two
    marks of :func:`nlsup_kit.losses.loss_levels`: uniform (the views not told apart) and the loss's floor."""
    values = np.asarray(logged, dtype=float) / weight
    window = max(1, min(window, len(values) // 2))
    first, last = float(values[:window].mean()), float(values[-window:].mean())
    uniform, floor = levels["uniform"], levels["floor"]
    supcon = _LOSS_NAMES.get(loss, loss) == "SupCon"  # the only floor that depends on how the batch's classes fall

    def where(value: float) -> str:
        return level_of(value, uniform)

    return (f"{_LOSS_NAMES.get(loss, loss)} loss (the logged value divided by lambda {weight:g}), mean of the first {window} logged steps "
            f"{first:.3f}, of the last {window} {last:.3f} ({'lower' if last < first else 'not lower'}); uniform level "
            f"{uniform:.3f} (every view alike, {batch} examples of two views), floor {floor:.3f}"
            + (f" (for {batch} examples spread evenly over {classes} classes, the lowest any batch's floor can be; a batch "
               "drawn at random is rarely even, and its floor is higher)" if supcon else "")
            + f": it started {where(first)} and ended {where(last)}"
            + (f" (a fall of {printed_gap(first, last):.3f}, {printed_gap(last, uniform):.3f} still above the uniform level)"
               if last < first and last > uniform * (1 + AT_THE_LEVEL) else "")
            + f", {printed_gap(last, floor):.3f} above "
            + ("that lowest floor" if supcon else "the floor")
            + ("; " + ABOVE_UNIFORM.format(batch=batch, views=2 * batch - 1) if max(first, last) > uniform * (1 + AT_THE_LEVEL)
               else ""))


def sign_test(up: int, down: int) -> float:
    """Two-sided sign test: how often fair coin tosses split ``up + down`` moves at least as unevenly."""
    from math import comb

    n = up + down
    return min(1.0, 2 * sum(comb(n, i) for i in range(min(up, down) + 1)) / 2 ** n) if n else 1.0


def per_seed_reading(seeds: Sequence[int], differences: Sequence[float], method: str, baseline: str) -> str:
    """Two methods' per-seed differences (one seed gives both the same text batches), read by their signs: how
    many seeds favour each method, and how often coin tosses split as unevenly (two-sided sign test), which with
    few seeds can never fall below 5%: then the signs alone cannot settle it, and the sizes must."""
    up, down = sum(d > 0 for d in differences), sum(d < 0 for d in differences)
    listing = ", ".join(f"seed {s} {d:+.2f}" for s, d in zip(seeds, differences))
    p, least = sign_test(up, down), sign_test(up + down, 0)
    line = (f"{method} - {baseline} per seed: {listing}; {up} of {len(differences)} seeds favour {method}, {down} "
            f"{baseline}: coin tosses split {up + down} seeds at least this unevenly with probability {p:.0%} (two-sided "
            "sign test)")
    if p < 0.05:
        return line + ", so the seeds agree beyond coin tosses"
    if least >= 0.05:
        return (line + f"; with {up + down} seeds the test can give no less than {least:.0%}, so the signs alone cannot "
                "settle it: the sizes of the differences must, read against their spread (the t interval: a range for the mean difference, its width set by how far the differences spread and by Student's t multiplier for so few runs, in place of the normal distribution's 1.96, which assumes many runs; the kit draws it from 3 seeds)")
    return line + ", so these seeds alone cannot say which method is higher"


def augmentation_reading(effects: Mapping[str, float], images: str, floor: float = 1 / 255) -> str:
    """Which augmentation steps act on ``images``: one whose mean pixel change is below ``floor`` (an 8-bit level) does not."""
    idle = [name for name, changed in effects.items() if changed < floor]
    acting = [name for name in effects if name not in idle]
    if not idle:
        return f"on {images} every step changes the pixels (each more than {floor:.4f} on average)"
    return (f"on {images} {', '.join(idle)} change the pixels by less than {floor:.4f} on average (one level in "
            f"255; largest {max(effects[name] for name in idle):.1g}): they do nothing here, and the two views differ "
            f"through {', '.join(acting) or 'no step at all'} only")


def neighbour_cosine_reading(before: Sequence[float], after: Sequence[float], background_before: float,
                             background_after: float) -> str:
    """A query's nearest neighbours' cosines before and after training (the k best each time, whichever sentences
    they are), read against how the mean cosine of two unrelated sentences moved: a cosine is a position on the
    model's own scale, and training can shift the whole scale."""
    before_mean, after_mean = float(np.mean(before)), float(np.mean(after))
    fell = sum(a < b for b, a in zip(before, after))
    moved = printed_gap(after_mean, before_mean)
    background = printed_gap(background_after, background_before)
    random_pairs, excess = "random pairs' mean cosine", abs(abs(moved) - abs(background))
    if not moved or not background or moved * background < 0:
        relative = ("held" if not moved else "moved") + (f" while {random_pairs} {'held' if not background else 'moved'}"
                                                         if moved * background == 0 else f" against {random_pairs}")
    else:
        relative = (f"{'fell' if moved < 0 else 'rose'} " + ("more than" if abs(moved) > abs(background) else "less than"
                    if excess else "as much as") + f" {random_pairs}" + (f", by {excess:.3f}" if excess else ""))
    return (f"  the {len(before)} best cosines, mean {before_mean:.3f} -> {after_mean:.3f} ({moved:+.3f}; the cosine at "
            f"{fell} of the {len(before)} ranks fell); the mean cosine of two random different sentences {background_before:.3f} -> "
            f"{background_after:.3f} ({background:+.3f}): the neighbours' cosines {relative} ({len(before)} cosines of one query, no spread "
            "measured: a description of this query, not a finding)")
