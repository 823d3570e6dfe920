"""The figures a learner reads instead of numbers: each shows what its caption promises, with plotly and in the
matplotlib fallback (a learner without plotly; run in a subprocess where plotly cannot be imported)."""

import subprocess
import sys
import textwrap

import numpy as np


def test_the_slider_moves_between_settings_and_the_static_fallback_draws_every_setting():
    from nlsup_kit import viz

    matrices = {t: np.full((2, 2), t) for t in (0.01, 0.1, 1.0)}
    fig = viz.heatmap_slider(matrices, ["a", "b"], "rows", "τ", start=0.1)
    assert [trace.visible for trace in fig.data] == [False, True, False]
    assert [step["label"] for step in fig.layout.sliders[0].steps] == ["0.01", "0.1", "1"]
    fallback = run_without_plotly("""
        fig = viz.heatmap_slider({t: np.full((2, 2), t) for t in (0.01, 0.1, 1.0)}, ["a", "b"], "rows", "τ", start=0.1)
        print([ax.get_title() for ax in fig.axes], [float(ax.images[0].get_array().mean()) for ax in fig.axes])
    """)
    assert fallback == "['τ 0.01', 'τ 0.1', 'τ 1'] [0.01, 0.1, 1.0]"


def test_curves_draw_their_reference_lines_and_the_fbank_hides_its_padding():
    from nlsup_kit import viz

    fig = viz.curves({"loss": ([1, 2], [0.2, 0.1])}, "t", "step", "loss", references={"log B": np.log(32)})
    assert [shape.y0 for shape in fig.layout.shapes] == [np.log(32)]
    fbank = -np.ones((10, 4))
    fbank[6:] = 0.0  # the padding: louder than every real frame
    drawn = viz.waveform_and_fbank(np.zeros(1600), 16000, fbank, 2, "w", frames=6).data[1].z
    assert np.isnan(np.asarray(drawn, dtype=float)[:, 6:]).all() and (np.asarray(drawn)[:, :6] == -1).all()
    fallback = run_without_plotly("""
        fig = viz.curves({"loss": ([1, 2], [0.2, 0.1])}, "t", "step", "loss", references={"log B": 3.0})
        print([tuple(line.get_ydata()) for line in fig.axes[0].lines][1])
    """)
    assert fallback == "(3.0, 3.0)"


def run_without_plotly(code: str) -> str:
    prelude = "import sys; sys.modules['plotly'] = None\nimport numpy as np\nfrom nlsup_kit import viz\n"
    result = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                            env={"MPLBACKEND": "Agg", "PATH": ""}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_one_column_per_number_that_differs_in_tables_bars_and_the_demo_summary():
    """Over a single task the average is that task's score: no table, chart or summary repeats it as "avg"; over
    several tasks "avg" is a number of its own and stays."""
    from nlsup_kit import viz
    from nlsup_kit.demo import results_table
    from nlsup_kit.evaluation import StsReport, TaskScore

    one = StsReport({"STSBenchmark": TaskScore(76.27, 0.0, 10)})
    assert one.table().splitlines()[0].split() == ["STSBenchmark"]
    two = StsReport({"STSBenchmark": TaskScore(76.0, 0.0, 10), "SICKRelatedness": TaskScore(70.0, 0.0, 10)})
    assert two.table().splitlines()[0].replace("|", " ").split() == ["STSBenchmark", "SICKRelatedness", "avg"]
    assert [bar.x for bar in viz.score_bars({"a": one.as_dict()}).data] == [("STSBenchmark",)]
    assert [bar.x for bar in viz.score_bars({"a": two.as_dict()}).data] == [("STSBenchmark", "SICKRelatedness", "avg")]
    assert results_table({"a": one.as_dict(), "b": one.as_dict()}).splitlines()[0].split() == ["run", "STS-B"]
    assert results_table({"a": one.as_dict(), "b": two.as_dict()}).splitlines()[0].split() == ["run", "STS-B", "SICK-R",
                                                                                             "avg"]


def test_heatmaps_share_one_colour_scale_and_the_fallback_draws_each_matrix():
    from nlsup_kit import viz

    fig = viz.heatmaps({"before": np.eye(2), "after": np.ones((2, 2))}, ["a", "b"], "classes", value_range=(0.2, 0.9))
    assert [(trace.zmin, trace.zmax) for trace in fig.data] == [(0.2, 0.9), (0.2, 0.9)]
    assert [annotation.text for annotation in fig.layout.annotations] == ["before", "after"]
    assert [trace.showscale for trace in fig.data] == [False, True]  # one colour bar for both
    fallback = run_without_plotly("""
        fig = viz.heatmaps({"before": np.eye(2), "after": np.ones((2, 2))}, ["a", "b"], "classes", value_range=(0.2, 0.9))
        print([(ax.get_title(), float(ax.images[0].get_array().mean()), ax.images[0].get_clim()) for ax in fig.axes if ax.images])
    """)
    assert fallback == "[('before', 0.5, (0.2, 0.9)), ('after', 1.0, (0.2, 0.9))]"


def test_the_seed_figure_draws_a_mean_and_its_bar_only_for_methods_with_enough_runs_to_spread():
    from nlsup_kit import viz

    fig = viz.seed_spread({"SimCSE": [82.70, 82.75, 82.54], "AudioCSE": [82.78, 82.80]}, "t")
    runs, means = fig.data
    assert list(runs.x) == ["SimCSE"] * 3 + ["AudioCSE"] * 2
    assert list(means.x) == ["SimCSE"] and means.y[0] == np.mean([82.70, 82.75, 82.54])
    assert means.error_y.array[0] == np.std([82.70, 82.75, 82.54], ddof=1)
    assert len(viz.seed_spread({"AudioCSE": [82.78, 82.8]}, "t").data) == 1
    joined = viz.seed_spread({"SimCSE": [82.70, 82.75, 82.54], "VisualCSE": [82.79, 82.82, 82.50]}, "t", paired=True)
    lines = [trace for trace in joined.data if trace.mode == "lines"]  # one per seed, from its SimCSE run to its VisualCSE run
    assert [list(line.y) for line in lines] == [[82.70, 82.79], [82.75, 82.82], [82.54, 82.50]]
    framed = viz.seed_spread({"SimCSE": [82.70, 82.75, 82.54]}, "t", reference=("before training", 82.03))
    low, high = framed.layout.yaxis.range
    assert low < 82.03 < 82.75 < high   # the axis takes in the starting model, not only the runs
    assert [shape.y0 for shape in framed.layout.shapes] == [82.03]
    fallback = run_without_plotly("""
        fig = viz.seed_spread({"SimCSE": [82.70, 82.75, 82.54], "AudioCSE": [82.78]}, "t")
        print(len(fig.axes[0].containers), [t.get_text() for t in fig.axes[0].get_xticklabels()])
    """)
    assert fallback == "1 ['SimCSE', 'AudioCSE']"
