"""The command line as a user types it: listing, validation, one-line errors with exit code 2, the commands and
their shared flags, and --verbosity."""

import contextlib
import json
import logging
import pkgutil
from pathlib import Path

import pytest
import torch
from bad_input import Workspace, record
from split_checks import save
from transformers import AutoModelForCausalLM

import flextape_bench.cli
from flextape_bench import models
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
        (["--tasks", "seesaw_cf_P91_*"], "--tasks 'seesaw_cf_P91_*' matches no task or group; close names: "),
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


@pytest.mark.parametrize("argv, num_edits", [([], 1), (["--num-edits", "7"], 7), (["--num-edits", "all"], None)])
def test_num_edits_is_one_at_a_time_unless_told(argv, num_edits):
    """The seed's reference (ENSCMA2/flextape experiments/eval_pair.py) edits each case alone unless told
    (--num_edits 1); `all` (RunOptions' None) is the whole task in one batch."""
    assert build_parser().parse_args(["run", *argv]).num_edits == num_edits


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
        "auto",
        None,
        None,
        "auto",
    )
    assert defaults.model_args == {}
    args = build_parser().parse_args(
        [
            command,
            "--model",
            "tiny",
            "--device",
            "spread",
            "--max-memory",
            "0=1GiB",
            "--offload-folder",
            "off",
            "--dtype",
            "bfloat16",
            "--model-args",
            "revision=0123,trust_remote_code=True",
        ]
    )
    assert (args.model, args.device, args.max_memory, args.offload_folder, args.dtype) == (
        "tiny",
        "spread",
        "0=1GiB",
        Path("off"),
        "bfloat16",
    )
    assert args.model_args == {"revision": "0123", "trust_remote_code": True}
    assert hasattr(args, "apply_chat_template") == (command == "run")  # only where prompts are scored


@pytest.mark.parametrize(
    "cuda, line",
    [(False, "device: cpu (auto: torch sees no CUDA device)"), (True, "device: cuda (auto: torch sees a CUDA device)")],
)
def test_device_auto_is_said_once_before_the_model_loads(capsys, monkeypatch, tmp_path, tiny_llama, cuda, line):
    """Said once it is needed: after every check of the input, before the model loads (here its weights never
    load: its tokenizer has no chat template)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("weights loaded"))
    ws = Workspace(tmp_path)
    ws.task("mine", [record(1)])
    argv = ["--model", str(save(tiny_llama, tmp_path / "tiny")), *ws.run_args("mine"), "--apply-chat-template"]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert [entry for entry in err if entry.startswith("device:")] == [line]
    assert err.index(line) < len(err) - 1 and "has no chat template" in err[-1]
    assert main([*argv, "--device", "cpu"]) == 2
    assert "device:" not in capsys.readouterr().err


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


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h"]])
def test_top_level_help_shows_the_run_flags(argv, capsys):
    """As lm-eval's top-level help, the flags of the default command are on the first page, after the commands."""
    with contextlib.suppress(SystemExit):
        main(argv)
    out = capsys.readouterr().out
    commands, _, run_flags = out.partition("flextape-bench run (the default command")
    assert "train-mend" in commands and "leaderboard" in commands
    for flag in ("--model", "--editor", "--tasks", "--limit", "--num-edits", "--output", "--device"):
        assert flag in run_flags, flag


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


# a task folder of the user's own, outside the checkout, including the packaged specs -------------------------------


def own_tasks(root: Path) -> tuple[Path, Path]:
    """A folder with a task that includes a packaged base by file name, with its own prompt template, and a task
    file elsewhere that includes a packaged task by its name (without its probes, to run quickly)."""
    folder, elsewhere = root / "my_tasks", root / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "my_pair.yaml").write_text(
        "include: _seesaw_cf_pair.yaml\ntask: my_pair\ndescription: my own pair task, prompts wrapped\n"
        "dataset:\n  file: seesaw_cf_P19_P101.json\n  url: https://example.org/seesaw_cf_P19_P101.json\n"
        "templates:\n  prompt: 'Fact: {{ prompt }}'\n"
    )
    variant = elsewhere / "my_variant.yaml"
    variant.write_text(
        "include: seesaw_cf_P19_P101\ntask: my_variant\ndescription: the packaged task, edits only\n"
        "probes: null\nmetrics: [efficacy]\n"
    )
    return folder, variant


def test_own_tasks_including_packaged_specs_validate_and_list(tmp_path, capsys):
    folder, variant = own_tasks(tmp_path)
    assert not tmp_path.resolve().is_relative_to(Path(__file__).resolve().parents[1])  # outside the checkout
    assert main(["validate", str(folder / "my_pair.yaml"), str(variant)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{folder / 'my_pair.yaml'}: ok", f"{variant}: ok"]
    assert main(["list", "tasks", "--include-path", str(folder), "--include-path", str(variant.parent)]) == 0
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in capsys.readouterr().out.splitlines()}
    assert rows["my_pair"] == ["task", "my own pair task, prompts wrapped"]
    assert rows["my_variant"] == ["task", "the packaged task, edits only"]


def test_own_tasks_run_by_name_and_by_file(tmp_path, monkeypatch, gemma):
    """`--tasks` names a task of an --include-path folder and gives a task file by its path; the real model runs
    both, and the prompt template of the first wraps its edit prompt (keeping its '{}') and its probes."""
    monkeypatch.setattr(models, "load", lambda *args, **kwargs: gemma)
    monkeypatch.setenv("FLEXTAPE_CACHE", str(tmp_path / "cache"))
    folder, variant = own_tasks(tmp_path)
    argv = ["--model", "gemma3-270m", "--editor", "none", "--tasks", f"my_pair,{variant}", "--limit", "1"]
    out = tmp_path / "out"
    assert main([*argv, "--data-dir", str(DATA), "--include-path", str(folder), "--output", str(out)]) == 0
    run_dir = out / "gemma3-270m" / "none" / "run_001"
    first = json.loads((DATA / "seesaw_cf_P19_P101.json").read_text())[0]
    (wrapped,) = [json.loads(p.read_text()) for p in (run_dir / "my_pair").glob("case_*.json")]
    (plain,) = [json.loads(p.read_text()) for p in (run_dir / "my_variant").glob("case_*.json")]
    assert wrapped["rewrite"]["prompt"] == "Fact: " + first["requested_rewrite"]["prompt"]
    assert wrapped["probes"][0]["prompt"] == "Fact: " + first["attribute_prompts"][0]
    assert plain["rewrite"]["prompt"] == first["requested_rewrite"]["prompt"] and plain["probes"] == []


@pytest.mark.parametrize(
    "spelling, shown, hidden",
    [
        ("list", {"seesaw_cf_P101", "seesaw_pair"}, set()),
        ("list_tasks", {"seesaw_cf_P101"}, {"seesaw_pair"}),
        ("list_groups", {"seesaw_pair"}, {"seesaw_cf_P101"}),
    ],
)
def test_tasks_list_spellings_list_and_run_nothing(capsys, tmp_path, monkeypatch, spelling, shown, hidden):
    """lm-eval's `--tasks list`, `list_tasks` and `list_groups`."""
    monkeypatch.chdir(tmp_path)
    assert main(["--tasks", spelling]) == 0
    names = {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert shown <= names and not hidden & names
    assert list(tmp_path.iterdir()) == []  # no results folder: nothing ran


def test_ls_is_list(capsys):
    """lm-eval's `ls` spelling of `list`: the same output."""
    assert main(["list", "editors"]) == 0
    listed = capsys.readouterr().out
    assert main(["ls", "editors"]) == 0
    assert capsys.readouterr().out == listed and "memit" in listed
