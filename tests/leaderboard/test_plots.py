"""Figures: the gender charts (one per task with women's or men's probes: per model and editor the two shifts with
their intervals) and the group-shift figures (one per model, task and group metric), PNG and SVG with deterministic
names and contents."""

from __future__ import annotations

import statistics
import xml.etree.ElementTree as ElementTree

import matplotlib.pyplot as plt
import pytest

from flextape_bench.leaderboard.collect import collect
from flextape_bench.leaderboard.plots import gender_chart, plot_gender_charts, plot_group_shifts

from .conftest import FEMALE, MALE, WEIRD, group_seed, pair_task, percentile_interval, write_run

PNG = b"\x89PNG\r\n\x1a\n"


def test_png_and_svg_per_model_task_and_metric(results, tmp_path):
    plots = plot_group_shifts(collect(results).records, tmp_path / "plots")
    assert [p.svg.name for p in plots] == ["_b_x___b_y___pair__race_shift.svg", "gemma3-270m__pair__gender_shift.svg"]
    assert [(p.models, p.task, p.metric) for p in plots] == [
        ((WEIRD,), "pair", "race_shift"),
        (("gemma3-270m",), "pair", "gender_shift"),
    ]
    for plot in plots:
        assert plot.png.read_bytes().startswith(PNG) and plot.png.stat().st_size > 1000
        svg = ElementTree.parse(plot.svg).getroot()
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    text = plots[1].svg.read_text()
    assert "<!-- gemma3-270m - pair: gender_shift -->" in text
    assert all(f"<!-- {label} -->" in text for label in ("female", "male", "ft", "none"))  # text drawn as paths


def test_same_results_same_files(results, tmp_path):
    records = collect(results).records
    first, second = plot_group_shifts(records, tmp_path / "a"), plot_group_shifts(records, tmp_path / "b")
    assert [p.svg.read_bytes() for p in first] == [p.svg.read_bytes() for p in second]
    assert [p.png.read_bytes() for p in first] == [p.png.read_bytes() for p in second]


def test_series_name_their_run_when_an_editor_repeats(results, tmp_path):
    plots = plot_group_shifts(collect(results, all_runs=True).records, tmp_path)
    text = next(p for p in plots if p.metric == "gender_shift").svg.read_text()
    assert all(f"<!-- {label} -->" in text for label in ("ft run_001", "ft run_002", "none"))


def test_no_figure_without_a_labelled_group(tmp_path):
    write_run(tmp_path, "m", "ft", 1, {"pair": pair_task([(False, True)], {"unknown": [0.1]}, [(True, True)])})
    assert plot_group_shifts(collect(tmp_path).records, tmp_path / "plots") == []


def _points(figure) -> dict[str, list[list[float]]]:
    """Per legend label, the drawn [shift, row, left end, right end] of each dot with its interval."""
    drawn = {}
    for container in figure.axes[0].containers:
        dots, _, (bars,) = container.lines  # an errorbar: data line, caps, bar lines
        ends = [(segment[0][0], segment[1][0]) for segment in bars.get_segments()]
        points = zip(dots.get_xdata(), dots.get_ydata(), ends)
        drawn[container.get_label()] = [[float(x), float(y), low, high] for x, y, (low, high) in points]
    return drawn


def test_gender_chart_per_task_women_and_men_side_by_side_with_their_intervals(results, tmp_path):
    records = collect(results).records
    charts = plot_gender_charts(records, tmp_path / "plots")
    assert [(c.task, c.models, c.svg.name) for c in charts] == [("pair", ("gemma3-270m",), "pair__women_men.svg")]
    text = charts[0].svg.read_text()
    assert all(f"<!-- {label} -->" in text for label in ("ft", "none", "women (female probes)", "men (male probes)"))
    assert charts[0].png.read_bytes().startswith(PNG)

    rows = sorted((r for r in records if r.task == "pair" and r.model == "gemma3-270m"), key=lambda r: r.editor)
    figure = gender_chart(rows, "pair")
    drawn = _points(figure)
    # ft (row 0): women 0.30 and men 0.00 from run_002's case shifts; none (row 1): 0 and 0, zero-width intervals
    women, men = drawn["women (female probes)"], drawn["men (male probes)"]
    assert [p[:2] for p in women] == [pytest.approx([statistics.mean(FEMALE), -0.16]), pytest.approx([0.0, 0.84])]
    assert [p[:2] for p in men] == [pytest.approx([statistics.mean(MALE), 0.16]), pytest.approx([0.0, 1.16])]
    assert women[0][2:] == pytest.approx(percentile_interval(FEMALE, group_seed("female")))
    assert men[0][2:] == pytest.approx(percentile_interval(MALE, group_seed("male")))
    assert women[1][2:] == men[1][2:] == pytest.approx((0.0, 0.0))
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["ft", "none"]
    plt.close(figure)


def test_gender_chart_rows_name_the_model_when_there_are_several_and_the_run_when_it_repeats(results, tmp_path):
    task = pair_task([(False, True)] * 2, {"female": [0.1, 0.2], "male": [0.0, 0.1]}, [(True, True)] * 2)
    write_run(results, "other", "ft", 1, {"pair": task})
    (chart,) = plot_gender_charts(collect(results, all_runs=True).records, tmp_path)
    assert chart.models == ("gemma3-270m", "other")
    text = chart.svg.read_text()
    labels = ("gemma3-270m / ft run_001", "gemma3-270m / ft run_002", "gemma3-270m / none", "other / ft")
    assert all(f"<!-- {label} -->" in text for label in labels)


def test_no_gender_chart_without_women_or_men(tmp_path):
    write_run(tmp_path, "m", "ft", 1, {"pair": pair_task([(False, True)], {"Asian": [0.1]}, [(True, True)], "race")})
    assert plot_gender_charts(collect(tmp_path).records, tmp_path / "plots") == []


def test_gender_chart_without_men_has_no_men_in_its_legend(tmp_path):
    # a gender-edit task whose edits all make the subject a woman: every probe is a woman
    write_run(
        tmp_path, "m", "ft", 1, {"p21": pair_task([(False, True)] * 2, {"female": [0.8, 0.9]}, [(True, True)] * 2)}
    )
    figure = gender_chart(collect(tmp_path).records, "p21")
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["women (female probes)"]
    assert [x for x, *_ in _points(figure)["women (female probes)"]] == [pytest.approx(0.85)]
    plt.close(figure)
