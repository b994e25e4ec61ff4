"""Collecting runs: the newest finished run per model, editor and task, every run with all_runs, unfinished runs
skipped and listed, unreadable files named in one-line errors."""

from __future__ import annotations

import pytest

from flextape_bench.checksums import read_json, write_json
from flextape_bench.errors import UserError
from flextape_bench.leaderboard.collect import collect

from .conftest import COMMIT, PARAMETERS, WEIGHTS, WEIRD, pair_task, write_run


def _keys(collection):
    return [(r.task, r.model, r.editor, r.run.name) for r in collection.records]


def test_latest_finished_run_per_model_editor_and_task(results):
    collection = collect(results)
    assert _keys(collection) == [
        ("eff", "gemma3-270m", "ft", "run_001"),  # run_002 does not have it
        ("lf", WEIRD, "rome", "run_001"),
        ("pair", "gemma3-270m", "ft", "run_002"),  # newer than run_001; run_003 is unfinished
        ("pair", "gemma3-270m", "none", "run_001"),
        ("pair", WEIRD, "rome", "run_001"),
    ]
    assert collection.unfinished == (results / "gemma3-270m" / "ft" / "run_003",)
    assert [run.path.relative_to(results).as_posix() for run in collection.runs] == [
        "_b_x___b_y_/rome/run_001",
        "gemma3-270m/ft/run_001",
        "gemma3-270m/ft/run_002",
        "gemma3-270m/none/run_001",
    ]


def test_record_carries_config_and_wall_time(results):
    record = next(r for r in collect(results).records if r.task == "pair" and r.editor == "ft")
    run = record.run
    assert (run.limit, run.num_edits, run.sequential, run.seed, run.dtype) == (4, None, False, 2, "torch.float32")
    assert run.hparams == {"layer": 4, "lr": 0.5}
    assert (run.seconds, run.started, run.tasks) == (69.0, "2025-01-02T10:00:00+0000", ("pair",))
    assert {key: record.values["efficacy"][key] for key in ("pre", "post", "n_cases")} == {
        "pre": 0.25,
        "post": 1.0,
        "n_cases": 4,
    }
    assert record.summary == {"tasks": {"pair": record.values}}


def test_run_metadata_as_recorded_and_blank_where_an_older_run_lacks_it(results):
    runs = {run.key: run for run in collect(results).runs}
    new, old = runs["gemma3-270m/ft/run_002"], runs["gemma3-270m/ft/run_001"]
    assert (new.version, new.commit, new.parameters) == ("0.1.0", COMMIT, PARAMETERS)
    assert (old.version, old.commit, old.parameters) == ("0.0.9", None, None)
    assert new.weights == old.weights == WEIGHTS["gemma3-270m"] and new.revision is None  # "" in config.json
    assert list(runs) == [
        "_b_x___b_y_/rome/run_001",
        "gemma3-270m/ft/run_001",
        "gemma3-270m/ft/run_002",
        "gemma3-270m/none/run_001",
    ]


def test_all_runs_keeps_every_run(results):
    keys = _keys(collect(results, all_runs=True))
    assert keys[2:4] == [("pair", "gemma3-270m", "ft", "run_001"), ("pair", "gemma3-270m", "ft", "run_002")]
    assert len(keys) == 6


def test_a_newer_run_wins_even_past_run_999(tmp_path):
    task = pair_task([(False, True)], {"female": [0.1], "male": [0.2]}, [(True, True)])
    write_run(tmp_path, "m", "ft", 999, {"pair": task})
    newer = write_run(tmp_path, "m", "ft", 1000, {"pair": task})
    assert [r.run.path for r in collect(tmp_path).records] == [newer]


@pytest.mark.parametrize(
    "text, why",
    [
        ("{not json", "not valid JSON"),
        ("[]", "no content_sha256"),
        ('{"model": "m", "editor": "e", "tasks": {}}', "no content_sha256"),
    ],
)
def test_a_damaged_summary_makes_the_run_unfinished(results, capsys, text, why):
    run = results / "gemma3-270m" / "none" / "run_001"
    (run / "summary.json").write_text(text)
    collection = collect(results)
    assert run in collection.unfinished and all(r.run.path != run for r in collection.records)
    assert f"warning: {run / 'summary.json'}: {why}" in capsys.readouterr().err


def test_a_summary_of_another_shape_is_a_user_error_naming_the_file(results):
    path = results / "gemma3-270m" / "none" / "run_001" / "summary.json"
    write_json(path, read_json(path) | {"tasks": {"t": 3}})
    with pytest.raises(UserError, match="the values of task 't' are not an object") as error:
        collect(results)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_finished_run_without_config_is_a_user_error(results):
    path = results / "gemma3-270m" / "none" / "run_001" / "config.json"
    path.unlink()
    with pytest.raises(UserError, match=f"{path}: missing"):
        collect(results)


def test_no_runs_and_no_finished_runs(tmp_path):
    with pytest.raises(UserError, match=r"--results .*: not a directory"):
        collect(tmp_path / "absent")
    with pytest.raises(UserError, match="no run directories"):
        collect(tmp_path)
    write_run(tmp_path, "m", "ft", 1, None)
    with pytest.raises(UserError, match=r"no finished run \(1 unfinished"):
        collect(tmp_path)
