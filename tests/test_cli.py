"""The command line as a user types it: listing, validation, one-line errors with exit code 2, the commands and
their shared flags, and --verbosity."""

import logging
import pkgutil
from pathlib import Path

import pytest

import flextape_bench.cli
from flextape_bench.cli import build_parser, main
from flextape_bench.errors import UserError
from flextape_bench.runner import RunOptions, run

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "seesaw_cf"

TASKS = [
    "seesaw_cf_P19_P101",
    "seesaw_cf_P19_P21",
    "seesaw_cf_P21_P101",
    "seesaw_cf_P27_P101",
    "seesaw_cf_P27_P19",
    "seesaw_cf_P27_P21",
    "seesaw_cf_P101_P21",
    "seesaw_cf_P101_P27",
    "seesaw_cf_P101",
    "seesaw_cf_P103",
    "seesaw_cf_P101_eff",
    "seesaw_cf_P103_eff",
    "seesaw_cf_P19_P101_eff",
    "seesaw_cf_P21_P101_eff",
    "seesaw_cf_P27_P101_eff",
]


LONGFORM = [f"{name}_longform" for name in TASKS[:8]]


def test_list_tasks_shows_every_task_and_group(capsys):
    assert main(["list", "tasks"]) == 0
    out = capsys.readouterr().out
    for name in TASKS + LONGFORM + ["all", "seesaw_pair", "seesaw_single", "seesaw_eff", "seesaw_longform"]:
        assert f"\n{name} " in f"\n{out}"


def test_all_runs_every_case_once():
    from flextape_bench.tasks import TaskIndex

    # every case once: the _eff tasks hold the same cases as the pair tasks, which report efficacy too
    assert sorted(TaskIndex().expand(["all"])) == sorted(t for t in TASKS if not t.endswith("_eff"))


@pytest.mark.parametrize(
    "kind, name", [("models", "llamac"), ("editors", "ft"), ("metrics", "gender_shift"), ("metrics", "long_form")]
)
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


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--editor", "bogus"], "unknown editor 'bogus'; known editors: "),
        (["--tasks", "nope"], "unknown task 'nope'"),
        (["--editor", "ft", "--hparams", "lrate=1"], "--hparams: unknown key(s) lrate"),
        (["--limit", "0"], "--limit must be a positive integer"),
        (["--tasks", "seesaw_cf_P101", "--data-dir", "/nonexistent"], "--data-dir /nonexistent is not a directory"),
        (["--tasks", "seesaw_cf_P101", "--data-dir", "."], "seesaw_cf_P101.json"),
        (
            [
                "--tasks",
                "seesaw_cf_P19_P101_longform",
                "--lexicon",
                "/nonexistent/lexicon.yaml",
                "--data-dir",
                str(DATA),
            ],
            "lexicon file /nonexistent/lexicon.yaml does not exist",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, monkeypatch, tmp_path, argv, message):
    monkeypatch.setenv("FLEXTAPE_CACHE", str(tmp_path))  # no model is loaded: errors come first
    assert main([*argv, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("flextape-bench: error:")
    assert not (tmp_path / "out").exists()


def test_stats_needs_an_editor_with_statistics(capsys):
    assert main(["stats", "--editor", "ft"]) == 2
    assert "uses no key statistics" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, batch_tokens, most",
    [
        ([], "auto", 16384),
        (["--batch-tokens", "auto", "--max-batch-tokens", "2048"], "auto", 2048),
        (["--batch-tokens", "512"], 512, 16384),
    ],
)
def test_batch_tokens_parse(argv, batch_tokens, most):
    args = build_parser().parse_args(["run", *argv])
    assert (args.batch_tokens, args.max_batch_tokens) == (batch_tokens, most)


def test_batch_tokens_of_the_library_are_checked(tmp_path):
    with pytest.raises(UserError, match="--batch-tokens must be auto or a positive integer, got 'lots'"):
        run(RunOptions(batch_tokens="lots", output=tmp_path))


def test_every_command_module_is_a_registered_command():
    modules = {info.name for info in pkgutil.iter_modules(flextape_bench.cli.__path__)} - {"arguments"}
    assert {command.__name__.rsplit(".", 1)[1] for command in flextape_bench.cli.COMMANDS} == modules
    names = [command.NAME for command in flextape_bench.cli.COMMANDS]
    assert names == [
        "run",
        "list",
        "stats",
        "train-mend",
        "demographics",
        "agreement",
        "leaderboard",
        "judge",
        "validate",
    ]
    for name in names:
        assert build_parser().parse_args(_minimal(name)).command == name


def _minimal(name: str) -> list[str]:
    """The shortest argv of each command that parses."""
    return {
        "list": ["list", "tasks"],
        "agreement": ["agreement", "a.csv"],
        "validate": ["validate", "t.yaml"],
        "judge": ["judge", "run_001", "--judge", "hf:x"],
    }.get(name, [name])


@pytest.mark.parametrize("command", ["run", "stats", "train-mend"])
def test_commands_that_load_a_model_share_the_model_flags(command):
    from flextape_bench.models import DEFAULT_MODEL

    defaults = build_parser().parse_args([command])
    assert (defaults.model, defaults.device, defaults.max_memory, defaults.offload_folder, defaults.dtype) == (
        DEFAULT_MODEL,
        "cpu",
        None,
        None,
        "auto",
    )
    args = build_parser().parse_args(
        [
            command,
            "--model",
            "tiny",
            "--device",
            "auto",
            "--max-memory",
            "0=1GiB",
            "--offload-folder",
            "off",
            "--dtype",
            "bfloat16",
        ]
    )
    assert (args.model, args.device, args.max_memory, args.offload_folder, args.dtype) == (
        "tiny",
        "auto",
        "0=1GiB",
        Path("off"),
        "bfloat16",
    )


@pytest.fixture
def logger_level():
    """The `flextape_bench` logger's level as it was before the test, restored after it (commands set it)."""
    logger = logging.getLogger("flextape_bench")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.mark.parametrize(
    "flag, shown",
    [
        ([], ["an info", "a warning"]),
        (["--verbosity", "WARNING"], ["a warning"]),
        (["--verbosity", "error"], []),
        (["--verbosity", "DEBUG"], ["a debug line", "an info", "a warning"]),
    ],
)
def test_verbosity_sets_the_diagnostics_on_stderr(capsys, logger_level, flag, shown):
    assert main(["list", "editors", *flag]) == 0
    logger = logging.getLogger("flextape_bench.some_module")
    logger.debug("a debug line")
    logger.info("an info")
    logger.warning("a warning")
    assert capsys.readouterr().err.splitlines() == shown


def test_verbosity_reaches_the_default_command_and_is_checked(capsys, logger_level):
    assert build_parser().parse_args(["run", "--verbosity", "debug"]).verbosity == "DEBUG"
    assert main(["--verbosity", "WARNING", "--editor", "bogus"]) == 2  # no command: run
    assert "unknown editor 'bogus'" in capsys.readouterr().err
    assert main(["list", "tasks", "--verbosity", "loud"]) == 2
    assert capsys.readouterr().err.startswith("flextape-bench: error: argument --verbosity: invalid choice: 'LOUD'")


def test_bare_command_prints_help_and_runs_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: flextape-bench") and "run" in out and "leaderboard" in out
    assert list(tmp_path.iterdir()) == []  # no results folder: nothing ran


def test_lm_eval_spellings_of_flags_are_accepted(tmp_path, capsys):
    from flextape_bench.cli.arguments import canonical_argv

    assert canonical_argv(
        ["--output_path", "o", "--include_path=d", "--num_edits", "1", "--hparams", "mom2_n_samples=8"]
    ) == ["--output", "o", "--include-path=d", "--num-edits", "1", "--hparams", "mom2_n_samples=8"]
    # through the command line: the same one-line error as with this project's spellings, so the flags were parsed
    argv = ["--tasks", "no_such_task", "--data-dir", str(tmp_path)]
    assert main([*argv, "--output_path", str(tmp_path / "o"), "--include_path", str(tmp_path)]) == 2
    underscored = capsys.readouterr().err
    assert main([*argv, "--output", str(tmp_path / "o"), "--include-path", str(tmp_path)]) == 2
    assert underscored == capsys.readouterr().err and "no_such_task" in underscored
