"""Group-shift figures: one per model, task and group metric, PNG and SVG with deterministic names and contents."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from flextape_bench.leaderboard.collect import collect
from flextape_bench.leaderboard.plots import plot_group_shifts

from .conftest import WEIRD, pair_task, write_run

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
