"""Figures for the notebooks: interactive plotly where it is installed, matplotlib otherwise.

Plotly output carries two representations: the plotly mimetype (JupyterLab draws it natively) and HTML with
plotly.js inlined once per kernel (so exported HTML works offline). Colab gets plotly's own ``colab``
renderer, because every Colab output lives in its own frame. Imports are lazy: the core kit never needs this.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence

import numpy as np

_PLOTLY_JS_SENT = False


def has_plotly() -> bool:
    try:
        import plotly  # noqa: F401
    except ImportError:
        return False
    return True


def show(fig) -> None:
    """Display a plotly or matplotlib figure in whatever front end runs the notebook."""
    global _PLOTLY_JS_SENT
    from IPython.display import display

    if not hasattr(fig, "to_plotly_json"):  # matplotlib
        display(fig)
        import matplotlib.pyplot as plt

        plt.close(fig)
        return
    if "google.colab" in sys.modules:
        fig.show(renderer="colab")
        return
    html = fig.to_html(full_html=False, include_plotlyjs=not _PLOTLY_JS_SENT)
    _PLOTLY_JS_SENT = True
    display({"application/vnd.plotly.v1+json": json.loads(fig.to_json()), "text/html": html}, raw=True)


def _mpl(title: str, size=(7, 4)):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    ax.set_title(title)
    return fig, ax


def score_bars(rows: Mapping[str, Mapping[str, float]], title: str = "STS (Spearman x 100)",
               ylabel: str = "Spearman x 100"):
    """Grouped bars: one group per task (or language), one bar per model; no "avg" group over a single task,
    where it would repeat that task."""
    tasks = list(next(iter(rows.values())))
    if len(tasks) == 2 and "avg" in tasks:
        tasks.remove("avg")
    if has_plotly():
        import plotly.graph_objects as go

        fig = go.Figure([go.Bar(name=name, x=tasks, y=[scores[t] for t in tasks],
                                text=[f"{scores[t]:.1f}" for t in tasks]) for name, scores in rows.items()])
        return fig.update_layout(title=title, barmode="group", yaxis_title=ylabel, height=420)
    fig, ax = _mpl(title, (9, 4))
    width = 0.8 / len(rows)
    for i, (name, scores) in enumerate(rows.items()):
        ax.bar(np.arange(len(tasks)) + i * width, [scores[t] for t in tasks], width, label=name)
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks)
    ax.set_ylabel(ylabel)
    ax.legend()
    return fig


def seed_spread(runs: Mapping[str, Sequence[float]], title: str, ylabel: str = "Spearman x 100", min_runs: int = 3,
                paired: bool = False, reference: tuple[str, float] | None = None):
    """Close scores made visible: every run as a dot and, for a method with ``min_runs`` runs or more (fewer cannot
    estimate a spread: nlsup_kit.evaluation.MIN_RUNS_FOR_A_VERDICT), its mean with a bar of one standard deviation
    over its runs, on an axis zoomed to the data (bars from 0 would hide a 0.3-point difference). ``paired``: run k
    of every method shares seed k, and a grey line joins them, since a paired comparison reads those joins.
    ``reference``: (name, value), a dashed line the axis always takes in (the starting model's score), so that the
    zoom never shows a gap between methods without the distance both moved."""
    names = list(runs)
    joins = list(zip(*(runs[n] for n in names))) if paired else []  # one tuple per seed: its run of each method
    several = [n for n in names if len(runs[n]) >= min_runs]
    means = [float(np.mean(runs[n])) for n in several]
    spreads = [float(np.std(runs[n], ddof=1)) for n in several]
    values = [v for n in names for v in runs[n]]
    framed = values + ([reference[1]] if reference else [])
    pad = max(0.2, 0.15 * (max(framed) - min(framed)))
    low = min(framed + [m - s for m, s in zip(means, spreads)]) - pad
    high = max(framed + [m + s for m, s in zip(means, spreads)]) + pad
    if has_plotly():
        import plotly.graph_objects as go

        fig = go.Figure()
        for k, seed_runs in enumerate(joins):
            fig.add_trace(go.Scatter(x=names, y=list(seed_runs), mode="lines", line=dict(color="lightgrey", width=1),
                                     name="one seed's runs", showlegend=k == 0))
        fig.add_trace(go.Scatter(x=[n for n in names for _ in runs[n]], y=values, mode="markers", name="one run",
                                 marker=dict(size=9, opacity=0.6)))
        if several:
            fig.add_trace(go.Scatter(x=several, y=means, mode="markers", name="mean +- 1 std over runs",
                                     marker=dict(size=14, symbol="line-ew-open", line=dict(width=3)),
                                     error_y=dict(type="data", array=spreads, width=12)))
        if reference:
            fig.add_hline(y=reference[1], line_dash="dash", line_color="grey",
                          annotation_text=f"{reference[0]} {reference[1]:.2f}", annotation_position="bottom right")
        return fig.update_layout(title=title, yaxis_title=f"{ylabel} (axis zoomed: {low:.1f} to {high:.1f})",
                                 yaxis_range=[low, high], xaxis=dict(categoryorder="array", categoryarray=names),
                                 height=380)
    fig, ax = _mpl(title, (6, 4))
    for k, seed_runs in enumerate(joins):
        ax.plot(range(len(names)), seed_runs, color="lightgrey", linewidth=1, label="one seed's runs" if k == 0 else None)
    for i, name in enumerate(names):
        ax.scatter([i] * len(runs[name]), runs[name], alpha=0.6, label="one run" if i == 0 else None)
    if several:
        ax.errorbar([names.index(n) for n in several], means, yerr=spreads, fmt="_", markersize=20, capsize=8,
                    color="black", label="mean +- 1 std over runs")
    if reference:
        ax.axhline(reference[1], linestyle="--", color="grey", label=f"{reference[0]} {reference[1]:.2f}")
    ax.set_xticks(range(len(names)), names)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(low, high)
    ax.set_ylabel(f"{ylabel} (axis zoomed)")
    ax.legend()
    return fig


def histograms(series: Mapping[str, Sequence[float]], title: str, xlabel: str):
    if has_plotly():
        import plotly.graph_objects as go

        fig = go.Figure([go.Histogram(x=list(values), name=name, opacity=0.6, nbinsx=50)
                         for name, values in series.items()])
        return fig.update_layout(title=title, barmode="overlay", xaxis_title=xlabel, height=380)
    fig, ax = _mpl(title)
    for name, values in series.items():
        ax.hist(values, bins=50, alpha=0.6, label=name)
    ax.set_xlabel(xlabel)
    ax.legend()
    return fig


def curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str, xlabel: str, ylabel: str,
           log_axes: bool = False, references: Mapping[str, float] | None = None, log_y: bool = False):
    """Lines over a shared x axis; ``log_axes`` for quantities spanning decades (both axes logarithmic), ``log_y``
    for values spanning decades over a linear x (a loss near 1e-5 beside log B); ``references``: named horizontal
    lines (log B, a loss's floor) a curve should be read against."""
    references = dict(references or {})
    if has_plotly():
        import plotly.graph_objects as go

        fig = go.Figure([go.Scatter(x=list(x), y=list(y), mode="lines+markers", name=name)
                         for name, (x, y) in series.items()])
        for name, level in references.items():
            fig.add_hline(y=level, line_dash="dash", line_color="grey", annotation_text=f"{name} = {level:.3g}",
                          annotation_position="top right")
        if log_axes:
            fig.update_xaxes(type="log")
        if log_axes or log_y:
            fig.update_yaxes(type="log", exponentformat="e")
        return fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, height=380)
    fig, ax = _mpl(title)
    for name, (x, y) in series.items():
        ax.plot(x, y, marker="o", label=name)
    for name, level in references.items():
        ax.axhline(level, linestyle="--", color="grey", label=f"{name} = {level:.3g}")
    if log_axes:
        ax.set_xscale("log")
    if log_axes or log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return fig


def _short(labels: Sequence[str]) -> list[str]:
    return [label if len(label) < 40 else label[:37] + "..." for label in labels]


def heatmap(matrix: np.ndarray, labels: Sequence[str], title: str, value_range: tuple[float, float] = (-1, 1)):
    return heatmaps({"": matrix}, labels, title, value_range)


def heatmaps(matrices: Mapping[str, np.ndarray], labels: Sequence[str], title: str,
             value_range: tuple[float, float] = (-1, 1)):
    """Matrices side by side on one colour scale (each titled by its key), so that they can be compared."""
    short = _short(labels)
    names = list(matrices)
    if has_plotly():
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.12)
        for column, name in enumerate(names, start=1):
            fig.add_trace(go.Heatmap(z=matrices[name], x=short, y=short, colorscale="Viridis", zmin=value_range[0],
                                     zmax=value_range[1], showscale=column == len(names)), row=1, col=column)
            fig.update_yaxes(autorange="reversed", row=1, col=column)
        return fig.update_layout(title=title, height=520, width=None if len(names) == 1 else 460 * len(names))
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(7 * len(names), 6), squeeze=False)
    for ax, name in zip(axes[0], names):
        image = ax.imshow(matrices[name], vmin=value_range[0], vmax=value_range[1])
        ax.set_xticks(range(len(short)), short, rotation=90)
        ax.set_yticks(range(len(short)), short)
        ax.set_title(name)
    fig.colorbar(image, ax=list(axes[0]))
    fig.suptitle(title)
    return fig


def heatmap_slider(matrices: Mapping[float, np.ndarray], labels: Sequence[str], title: str, knob: str,
                   start: float, value_range: tuple[float, float] = (0, 1)):
    """One heatmap per setting of a knob and a slider between them. The slider is plotly's own: it needs no
    kernel, so it moves in JupyterLab, in Colab, in papermill's output and in the exported HTML alike. Without
    plotly: every setting side by side, so the static figure shows the change the slider would."""
    if not has_plotly():
        import matplotlib.pyplot as plt

        settings = list(matrices)
        fig, axes = plt.subplots(1, len(settings), figsize=(2.4 * len(settings), 2.9), squeeze=False)
        fig.suptitle(title)
        for ax, setting in zip(axes[0], settings):
            ax.imshow(matrices[setting], vmin=value_range[0], vmax=value_range[1])
            ax.set_title(f"{knob} {setting:g}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        return fig
    import plotly.graph_objects as go

    short, settings = _short(labels), list(matrices)
    fig = go.Figure([go.Heatmap(z=matrices[k], x=short, y=short, colorscale="Viridis", zmin=value_range[0],
                                zmax=value_range[1], visible=k == start) for k in settings])
    steps = [{"method": "update", "label": f"{k:g}",
              "args": [{"visible": [j == i for j in range(len(settings))]}, {"title": f"{title} ({knob} {k:g})"}]}
             for i, k in enumerate(settings)]
    slider = {"active": settings.index(start), "currentvalue": {"prefix": f"{knob}: "}, "steps": steps,
              "pad": {"t": 140}}
    return fig.update_layout(title=f"{title} ({knob} {start:g})", height=700, yaxis_autorange="reversed",
                             sliders=[slider])


def scatter(points: np.ndarray, labels: Sequence, title: str, hover: Sequence[str] | None = None,
            axes: tuple[str, str] = ("", "")):
    """Points on two axes (titled ``axes``), coloured by label, with the text under the cursor."""
    labels = [str(label) for label in labels]
    if has_plotly():
        import plotly.graph_objects as go

        hover = np.array(hover if hover is not None else labels, dtype=object)
        traces = []
        for label in dict.fromkeys(labels):
            mask = np.array(labels) == label
            traces.append(go.Scattergl(x=points[mask, 0], y=points[mask, 1], mode="markers", name=label,
                                       text=hover[mask], hoverinfo="text", marker={"size": 6}))
        return go.Figure(traces).update_layout(title=title, xaxis_title=axes[0], yaxis_title=axes[1], height=480)
    fig, ax = _mpl(title, (7, 6))
    for label in dict.fromkeys(labels):
        mask = np.array(labels) == label
        ax.scatter(points[mask, 0], points[mask, 1], s=8, label=label)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.legend(markerscale=2, fontsize=7)
    return fig


def view_pairs(pairs: Sequence[tuple[np.ndarray, np.ndarray]], labels: Sequence[str], title: str,
               view_names: tuple[str, str] = ("view 1", "view 2"), axes: tuple[str, str] | None = None,
               scale: str | None = None):
    """Two views of each example, one column per example: images as (H, W, 3) in [0, 1], or 2-D arrays (a
    fbank: time x mel) drawn as heatmaps on one shared colour scale, titled ``scale``, with ``axes`` (x, y) named,
    so that what a printed reading points at (a masked band, a frame range) can be found on the figure."""
    columns = len(pairs)
    flat = [view for views in pairs for view in views if view.ndim == 2]
    low, high = (min(float(v.min()) for v in flat), max(float(v.max()) for v in flat)) if flat else (None, None)
    if has_plotly():
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=2, cols=columns, subplot_titles=[f"{label}, {name}" for name in view_names
                                                                  for label in labels],
                            horizontal_spacing=0.03, vertical_spacing=0.12)
        for col, views in enumerate(pairs, start=1):
            for row, view in enumerate(views, start=1):
                trace = (go.Image(z=(np.clip(view, 0, 1) * 255).astype(np.uint8)) if view.ndim == 3
                         else go.Heatmap(z=view.T, colorscale="Viridis", zmin=low, zmax=high,
                                         showscale=row == 1 and col == 1,
                                         colorbar=dict(title=(scale or "").replace("\n", "<br>"))))
                fig.add_trace(trace, row=row, col=col)
        if flat and axes:
            fig.update_xaxes(title_text=axes[0], row=2).update_yaxes(title_text=axes[1], col=1)
            for col in range(2, columns + 1):  # one column of tick labels, where the axis is named
                fig.update_yaxes(showticklabels=False, col=col)
        else:
            fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
        return fig.update_layout(title=title, height=460, width=max(560, 190 * columns))
    import matplotlib.pyplot as plt

    fig, grid = plt.subplots(2, columns, figsize=(1.9 * columns + 1, 4.2), squeeze=False)
    fig.suptitle(title)
    for col, (views, label) in enumerate(zip(pairs, labels)):
        for row, view in enumerate(views):
            drawn = grid[row][col].imshow(np.clip(view, 0, 1) if view.ndim == 3 else view.T, origin="upper" if view.ndim == 3
                                          else "lower", aspect="auto", vmin=low, vmax=high)
            grid[row][col].set_title(f"{label}, {view_names[row]}", fontsize=8)
            if view.ndim == 3 or not axes:
                grid[row][col].axis("off")
            else:
                grid[row][col].set_xlabel(axes[0] if row == 1 else "", fontsize=7)
                grid[row][col].set_ylabel(axes[1] if col == 0 else "", fontsize=7)
    if flat:
        fig.colorbar(drawn, ax=grid, label=scale or "")
    return fig


def image_patches(image: np.ndarray, patch_size: int, title: str):
    """An (H, W, C) image in [0, 1] with the patch grid the Transformer sees drawn over it."""
    height, width = image.shape[:2]
    if has_plotly():
        import plotly.graph_objects as go

        pixels = (np.clip(image, 0, 1) * 255).astype(np.uint8)
        fig = go.Figure(go.Image(z=pixels)).update_layout(title=title)
        for edge in range(0, width + 1, patch_size):
            fig.add_vline(x=edge - 0.5, line_color="red", line_width=1)
        for edge in range(0, height + 1, patch_size):
            fig.add_hline(y=edge - 0.5, line_color="red", line_width=1)
        return fig.update_layout(height=420, width=440)
    fig, ax = _mpl(title, (5, 5))
    ax.imshow(image)
    for edge in range(0, width + 1, patch_size):
        ax.axvline(edge - 0.5, color="red", linewidth=1)
    for edge in range(0, height + 1, patch_size):
        ax.axhline(edge - 0.5, color="red", linewidth=1)
    return fig


def waveform_and_fbank(waveform: np.ndarray, sample_rate: int, fbank: np.ndarray, patch_size: int, title: str,
                       frames: int | None = None):
    """The clip, its log-mel filterbank (mel x frames) and the patch grid over it. ``frames``: how many frames
    the clip filled; the zero padding after them (louder than any real log energy, which is negative) is drawn
    blank behind a marker instead of as the brightest colour."""
    seconds = np.arange(len(waveform)) / sample_rate
    shown = fbank.astype(float).copy()
    if frames is not None and frames < len(shown):
        shown[frames:] = np.nan
    if has_plotly():
        from plotly.subplots import make_subplots
        import plotly.graph_objects as go

        fig = make_subplots(rows=2, cols=1, subplot_titles=("waveform", "fbank (mel x 10 ms frames) and patches"))
        fig.add_trace(go.Scatter(x=seconds, y=waveform, mode="lines", name="waveform"), row=1, col=1)
        fig.add_trace(go.Heatmap(z=shown.T, colorscale="Magma", colorbar=dict(title="log energy", y=0.25, len=0.5)),
                      row=2, col=1)
        for edge in range(0, fbank.shape[0] + 1, patch_size):
            fig.add_vline(x=edge - 0.5, line_color="cyan", line_width=1, row=2, col=1)
        for edge in range(0, fbank.shape[1] + 1, patch_size):
            fig.add_hline(y=edge - 0.5, line_color="cyan", line_width=1, row=2, col=1)
        if frames is not None and frames < len(shown):
            fig.add_vline(x=frames - 0.5, line_color="white", line_width=3, line_dash="dash", row=2, col=1,
                          annotation_text="zero padding from here (blank)", annotation_position="top right")
        fig.update_xaxes(title_text="seconds", row=1, col=1).update_xaxes(title_text="frame (10 ms)", row=2, col=1)
        fig.update_yaxes(title_text="amplitude", row=1, col=1).update_yaxes(title_text="mel bin", row=2, col=1)
        return fig.update_layout(title=title, height=600, showlegend=False)
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6))
    top.plot(seconds, waveform)
    top.set(xlabel="seconds", ylabel="amplitude")
    drawn = bottom.imshow(shown.T, origin="lower", aspect="auto")
    bottom.set(xlabel="frame (10 ms)", ylabel="mel bin")
    fig.colorbar(drawn, ax=bottom, label="log energy")
    if frames is not None and frames < len(shown):
        bottom.axvline(frames - 0.5, color="black", linestyle="--", label="zero padding from here (blank)")
        bottom.legend(loc="upper right", fontsize=8)
    fig.suptitle(title)
    return fig
