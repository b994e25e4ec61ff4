"""The command line as a user types it: listing, validation, and one-line errors with exit code 2."""
from pathlib import Path

import pytest

from flextape_bench.cli import build_parser, main
from flextape_bench.errors import UserError
from flextape_bench.runner import RunOptions, run

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "seesaw_cf"

TASKS = [
    "seesaw_cf_P19_P101", "seesaw_cf_P19_P21", "seesaw_cf_P21_P101", "seesaw_cf_P27_P101", "seesaw_cf_P27_P19",
    "seesaw_cf_P27_P21", "seesaw_cf_P101_P21", "seesaw_cf_P101_P27", "seesaw_cf_P101", "seesaw_cf_P103",
    "seesaw_cf_P101_eff", "seesaw_cf_P103_eff", "seesaw_cf_P19_P101_eff", "seesaw_cf_P21_P101_eff", "seesaw_cf_P27_P101_eff",
]


LONGFORM = [f"{name}_longform" for name in TASKS[:8]]


def test_list_tasks_shows_every_task_and_group(capsys):
    assert main(["list", "tasks"]) == 0
    out = capsys.readouterr().out
    for name in TASKS + LONGFORM + ["all", "seesaw_pair", "seesaw_single", "seesaw_eff", "seesaw_longform"]:
        assert f"\n{name} " in f"\n{out}"


def test_all_expands_to_every_task():
    from flextape_bench.tasks import TaskIndex

    assert sorted(TaskIndex().expand(["all"])) == sorted(TASKS)


@pytest.mark.parametrize("kind, name", [("models", "llamac"), ("editors", "ft"), ("metrics", "gender_shift"),
                                        ("metrics", "long_form")])
def test_list_registries(capsys, kind, name):
    assert main(["list", kind]) == 0
    assert name in capsys.readouterr().out


def test_validate_names_key_and_line(tmp_path, capsys):
    bad = tmp_path / "my_task.yaml"
    bad.write_text("task: my_task\ndescription: x\ndataset:\n  file: a.json\n  url: http://x\n  sah256: abc\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:6" in err and "sah256" in err


def test_packaged_specs_validate(capsys):
    from flextape_bench.tasks import packaged_tasks_dir

    files = sorted(str(p) for p in packaged_tasks_dir().glob("seesaw_cf_*.yaml"))
    assert main(["validate", *files]) == 0


@pytest.mark.parametrize("argv, message", [
    (["--editor", "bogus"], "unknown editor 'bogus'; known editors: "),
    (["--tasks", "nope"], "unknown task 'nope'"),
    (["--editor", "ft", "--hparams", "lrate=1"], "--hparams: unknown key(s) lrate"),
    (["--limit", "0"], "--limit must be a positive integer"),
    (["--tasks", "seesaw_cf_P101", "--data-dir", "/nonexistent"], "--data-dir /nonexistent is not a directory"),
    (["--tasks", "seesaw_cf_P101", "--data-dir", "."], "seesaw_cf_P101.json"),
    (["--tasks", "seesaw_cf_P19_P101_longform", "--lexicon", "/nonexistent/lexicon.yaml", "--data-dir", str(DATA)],
     "lexicon file /nonexistent/lexicon.yaml does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, monkeypatch, tmp_path, argv, message):
    monkeypatch.setenv("FLEXTAPE_CACHE", str(tmp_path))  # no model is loaded: errors come first
    assert main([*argv, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("flextape-bench: error:")
    assert not (tmp_path / "out").exists()


def test_stats_needs_an_editor_with_statistics(capsys):
    assert main(["stats", "--editor", "ft"]) == 2
    assert "uses no key statistics" in capsys.readouterr().err


@pytest.mark.parametrize("argv, batch_tokens, most", [
    ([], "auto", 16384),
    (["--batch-tokens", "auto", "--max-batch-tokens", "2048"], "auto", 2048),
    (["--batch-tokens", "512"], 512, 16384),
])
def test_batch_tokens_parse(argv, batch_tokens, most):
    args = build_parser().parse_args(["run", *argv])
    assert (args.batch_tokens, args.max_batch_tokens) == (batch_tokens, most)


def test_batch_tokens_of_the_library_are_checked(tmp_path):
    with pytest.raises(UserError, match="--batch-tokens must be auto or a positive integer, got 'lots'"):
        run(RunOptions(batch_tokens="lots", output=tmp_path))
