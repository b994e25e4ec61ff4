"""Bad input ends the CLI with one line on stderr, exit code 2, and no run directory (or, for running out of memory
after the run started, one that the same command resumes). Everything but the tokenizer check and memory is
refused before the model loads: here `models.load` fails the test if it is reached."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch
from bad_input import PREFIX, error_of, record, refused

from flextape_bench import models
from flextape_bench.cases import ScoreRequest
from flextape_bench.cli import main
from flextape_bench.scoring import Scorer
from flextape_bench.tasks import packaged_tasks_dir

# 1. malformed YAML ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, line, why",
    [
        ("task: broken\ndescription: x\nmetrics: [efficacy\n", 4, "expected ',' or ']'"),
        ("task: broken\ndescription: x\ndataset:\n\tfile: a.json\n", 4, "found character '\\t'"),
    ],
)
@pytest.mark.parametrize("how", ["include-path", "validate"])
def test_malformed_yaml(capsys, ws, no_model, text, line, why, how):
    path = ws.tasks / "broken.yaml"
    path.write_text(text)
    argv = ["validate", str(path)] if how == "validate" else ws.run_args("seesaw_cf_P101_eff")
    refused(
        capsys,
        ws,
        argv,
        f"{path}:{line}: (top level): YAML syntax error",
        why,
        "close every quote and bracket, and indent with spaces (not tabs)",
    )


# 2. unknown key --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["include-path", "validate"])
def test_unknown_key_names_file_line_and_close_match(capsys, ws, no_model, how):
    path = ws.task("mine", [record(1)])
    path.write_text(path.read_text().replace("  sha256:", "  alternate: []\n  sha256:"))
    argv = ["validate", str(path)] if how == "validate" else ws.run_args("mine")
    refused(capsys, ws, argv, f"{path}:7: dataset.alternate: unknown key; did you mean 'alternates'?")


# 3. unknown names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, facts",
    [
        (
            ["--model", "gemma3-27m"],
            [
                "unknown model 'gemma3-27m'; did you mean 'gemma3-270m'? known models: gemma3-270m, gptj",
                "or give a Hugging Face Hub id (owner/name) or an existing local directory",
            ],
        ),
        (["--model", "/no/such/model"], ["unknown model '/no/such/model'; known models: ", "existing local directory"]),
        (
            ["--editor", "rom"],
            ["unknown editor 'rom'; did you mean 'rome'? known editors: alphaedit, ft, memit, mend, none, rome"],
        ),
        (
            ["--tasks", "seesaw_cf_P101_ef"],
            ["unknown task 'seesaw_cf_P101_ef'; did you mean 'seesaw_cf_P101_eff'? known tasks: "],
        ),
    ],
)
def test_unknown_name_suggests_the_nearest(capsys, ws, no_model, flags, facts):
    refused(capsys, ws, [*ws.run_args("seesaw_cf_P101_eff"), *flags], *facts)


# 4. data files ---------------------------------------------------------------------------------------------------


def test_missing_data_file(capsys, ws, no_model):
    ws.task("mine", [record(1)])
    (ws.data / "mine.json").unlink()
    refused(
        capsys,
        ws,
        ws.run_args("mine"),
        "task mine: data file mine.json not found",
        f"looked in {ws.data / 'mine.json'}",
        f"download of file://{ws.root}/nowhere/mine.json failed",
        "put it in",
        "or pass --data-dir",
    )


def test_data_file_with_another_sha256(capsys, ws, no_model):
    ws.task("mine", [record(1)])
    expected = hashlib.sha256((ws.data / "mine.json").read_bytes()).hexdigest()
    (ws.data / "mine.json").write_text(json.dumps([record(1, target_new="chemistry")]))
    actual = hashlib.sha256((ws.data / "mine.json").read_bytes()).hexdigest()
    refused(
        capsys,
        ws,
        ws.run_args("mine"),
        f"data file {ws.data / 'mine.json'} has sha256 {actual}",
        f"the task spec expects {expected}",
        "delete it and download",
        f"`sha256: {actual}`",
    )


# 5. bad cases ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field, why",
    [
        (
            {"prompt": "The field of work is"},
            "fields.prompt",
            "the prompt 'The field of work is' has no '{}' where the subject goes",
        ),
        ({"subject": ""}, "fields.subject", "'requested_rewrite.subject' must be a non-empty string, got ''"),
        ({"target_new": " "}, "fields.target_new", "'requested_rewrite.target_new.str' must be a non-empty string"),
        ({"target_true": ""}, "fields.target_true", "'requested_rewrite.target_true.str' must be a non-empty string"),
    ],
)
def test_bad_case_names_file_case_and_field(capsys, ws, no_model, changes, field, why):
    ws.task("mine", [record(1), record(2, **changes)])
    refused(
        capsys,
        ws,
        [*ws.run_args("mine"), "--limit", "1"],  # every case is checked, not only the first N
        f"{ws.data / 'mine.json'}: case_id 2: {field}: {why}",
        "fix the data file",
    )


# 6. a target that tokenizes to nothing ---------------------------------------------------------------------------


def test_target_that_tokenizes_to_nothing(capsys, ws, monkeypatch, tiny_llama):
    monkeypatch.setattr(models, "load", lambda *args, **kwargs: tiny_llama)
    eos = tiny_llama.tokenizer.eos_token  # a special token: the scorer drops it from targets
    ws.task("mine", [record(1), record(2, target_new=eos)])
    refused(
        capsys,
        ws,
        ws.run_args("mine"),
        f"task mine: case_id 2: fields.target_new: target {eos!r} after prompt 'Ada Lovelace works in the field "
        f"of' tokenizes to nothing (special tokens and dropped characters do not count) with the tokenizer "
        f"{type(tiny_llama.tokenizer).__name__}",
        "fix the target in the data file or the task's templates.target",
    )


# 7. flags that contradict each other or the machine --------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, facts",
    [
        (
            ["--sequential", "--num-edits", "all"],
            [
                "--sequential needs chunks: with --num-edits all each task is edited in one chunk",
                "give --num-edits K (1 = one edit at a time) or drop --sequential",
            ],
        ),
        (["--limit", "0"], ["--limit must be a positive integer, got 0"]),
        (["--num-edits", "-1"], ["--num-edits must be a positive integer, got -1"]),
        (
            ["--num-edits", "some"],
            [
                "argument --num-edits: invalid value 'some': give a positive integer (1 = one edit at a time) or all "
                "(the whole task at once) (see `flextape-bench run --help`)"
            ],
        ),
        (["--batch-tokens", "0"], ["--batch-tokens must be a positive integer, got 0"]),
        (
            ["--batch-tokens", "lots"],
            [
                "argument --batch-tokens: invalid value 'lots': give auto or a positive integer",
                "(see `flextape-bench run --help`)",
            ],
        ),
        (["--max-batch-tokens", "0"], ["--max-batch-tokens must be a positive integer, got 0"]),
        (["--limit", "five"], ["argument --limit: invalid int value: 'five' (see `flextape-bench run --help`)"]),
        (["--device", "gpu"], ["argument --device: invalid choice: 'gpu'", "(see `flextape-bench run --help`)"]),
        pytest.param(
            ["--device", "cuda"],
            ["--device cuda was given but torch sees no CUDA device; use --device cpu"],
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here"),
        ),
        (
            ["--max-memory", "cpu=1GiB"],
            [
                "--max-memory and --offload-folder place a model over devices: they need "
                "--device spread (got --device auto)"
            ],
        ),
        (["--device", "spread", "--max-memory", "20GiB"], ["--max-memory '20GiB': '20GiB' is not DEVICE=SIZE"]),
        (
            ["--device", "spread", "--max-memory", "gpu0=1GiB"],
            ["--max-memory 'gpu0=1GiB': device 'gpu0' is neither a GPU index (0, 1, ...) nor cpu"],
        ),
        (
            ["--device", "spread", "--max-memory", "cpu=lots"],
            ["--max-memory 'cpu=lots': size 'lots' of cpu is not bytes or a number with a unit"],
        ),
        pytest.param(
            ["--device", "spread", "--max-memory", "0=20GiB,cpu=60GiB"],
            ["--max-memory '0=20GiB,cpu=60GiB': there is no GPU 0 (torch sees 0 CUDA device(s))"],
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here"),
        ),
        (["--samples", '{"mine": [0]}', "--limit", "1"], ["--samples and --limit both choose cases; give one of them"]),
        (
            ["--samples", '{"mine": []}'],
            ["--samples: mine: the case positions must be a non-empty list of distinct integers of 0 or more, got []"],
        ),
        (
            ["--samples", '{"mine": [0, "1"]}'],
            ["argument --samples: must map each task name to a list of case indices"],
        ),
        (["--samples", "{not json"], ["argument --samples: not a JSON object or a readable JSON file"]),
        (["--samples", '{"theirs": [0]}'], ["--samples names theirs, which --tasks does not run; the tasks are mine"]),
        (
            ["--samples", '{"mine": [0, 1]}'],
            ["--samples: case position 1 is past the end of", "(1 cases, positions 0-0)"],
        ),
        (
            ["--lexicon", "mine.yaml"],
            [
                "--lexicon applies to long_form tasks only, and none of mine has one",
                "add a *_longform task to --tasks or drop --lexicon",
            ],
        ),
    ],
)
def test_conflicting_flags(capsys, ws, no_model, flags, facts):
    ws.task("mine", [record(1)])
    refused(capsys, ws, [*ws.run_args("mine"), *flags], *facts)


def test_judge_base_url_with_a_local_judge(capsys, ws, no_model):
    run_dir = ws.out / "m" / "e" / "run_001"
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text("{}")
    line = error_of(capsys, ["judge", str(run_dir), "--judge", "hf:gemma3-270m", "--base-url", "http://x/v1"])
    assert "--base-url is for openai:MODEL judges, and --judge hf:gemma3-270m is a local model" in line


def test_offload_folder_that_is_a_file(capsys, ws, no_model):
    ws.task("mine", [record(1)])
    blocker = ws.root / "blocker"
    blocker.write_text("not a folder")
    refused(
        capsys,
        ws,
        [*ws.run_args("mine"), "--device", "spread", "--offload-folder", str(blocker)],
        f"--offload-folder {blocker} is a file, not a directory",
    )


# 8. an output folder that cannot be written ----------------------------------------------------------------------


@pytest.mark.parametrize("where", ["file", "under a file", "read-only"])
def test_unwritable_output_before_the_model_loads(capsys, ws, no_model, where):
    ws.task("mine", [record(1)])
    blocker = ws.root / "blocker"
    if where == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        blocker.mkdir(mode=0o555)
        output, fact = blocker / "results", f"cannot write into {blocker} (permission denied or read-only)"
    else:
        blocker.write_text("not a folder")
        output = blocker if where == "file" else blocker / "results"
        fact = f"{blocker} is a file, not a directory; choose another --output"
    line = refused(capsys, ws, [*ws.run_args("mine"), "--output", str(output)], f"--output {output}: ", fact)
    assert blocker.is_file() or not any(blocker.iterdir()), line


# 9. out of memory ------------------------------------------------------------------------------------------------

OOM_ERRORS = [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
    MemoryError(),
]


def _raise(error: BaseException):
    def fail(*args, **kwargs):
        raise error

    return fail


@pytest.mark.parametrize("error", OOM_ERRORS, ids=["cuda", "cpu", "python"])
def test_out_of_memory_while_scoring_names_batch_tokens_and_resumes(capsys, ws, monkeypatch, tiny_llama, error):
    monkeypatch.setattr(models, "load", lambda *args, **kwargs: tiny_llama)
    ws.task("mine", [record(1), record(2, subject="Alan Turing")])
    with monkeypatch.context() as patch:
        patch.setattr(Scorer, "score", _raise(error))
        line = error_of(capsys, [*ws.run_args("mine"), "--batch-tokens", "4096"])
    assert line == (
        f"{PREFIX}out of memory while scoring (mine: pre-edit scores); lower --batch-tokens (now 4096), "
        "e.g. --batch-tokens 2048; the run resumes where it stopped"
    )
    run_dir = ws.out / "gemma3-270m" / "none" / "run_001"
    assert ws.run_files() == [run_dir / "config.json", run_dir / "timing.json"]  # complete, no case written
    assert main([*ws.run_args("mine"), "--batch-tokens", "2048"]) == 0
    assert f"resuming {run_dir}" in capsys.readouterr().err
    assert (run_dir / "summary.json").exists()


PROBES = ["Grace Hopper works in the field of", "Alan Turing works in the field of"]


def test_auto_batch_tokens_halve_after_out_of_memory(capsys, ws, monkeypatch, tiny_llama, out_of_memory_above):
    """An explicit --batch-tokens that runs out of memory is the one-line error; `auto` (the same run, resumed)
    halves its budget, retries the batch and scores as whole batches did; the budget is in config.json, outside
    the identity. (FT-L, one step: an edit that changes weights is scored again after it.)"""
    monkeypatch.setattr(models, "load", lambda *args, **kwargs: tiny_llama)
    data = ws.data / "probed.json"  # a task whose cases have probes: three rows per case, scored together
    data.write_text(json.dumps([record(1) | {"attribute_prompts": PROBES}]))
    (ws.tasks / "probed.yaml").write_text(
        f"include: {packaged_tasks_dir() / '_seesaw_cf.yaml'}\ntask: probed\ndescription: three rows\ndataset:\n"
        f"  file: probed.json\n  url: file://{ws.root}/nowhere/probed.json\n"
        f"  sha256: {hashlib.sha256(data.read_bytes()).hexdigest()}\nfields:\n  generation_prompts: null\n"
        "probes:\n  prompts: attribute_prompts\nmetrics: [efficacy, probe_delta]\n"
    )
    args = [*ws.run_args("probed"), "--editor", "ft", "--hparams", "num_steps=1"]
    assert main([*args, "--batch-tokens", "4096"]) == 0  # whole batches; caches pre-edit scores
    whole = ws.out / "gemma3-270m" / "ft" / "run_001"
    requests = [
        ScoreRequest(prompt, ("physics", "mathematics")) for prompt in ["Ada Lovelace works in the field of", *PROBES]
    ]
    out_of_memory_above(tiny_llama, Scorer(tiny_llama).longest_row(requests))  # one row per batch fits, two do not
    line = error_of(capsys, [*args, "--batch-tokens", "64"])
    assert line == (
        f"{PREFIX}out of memory while scoring (probed: post-edit scores, chunk 1/1); lower --batch-tokens "
        "(now 64), e.g. --batch-tokens 32; the run resumes where it stopped"
    )
    assert main([*args, "--max-batch-tokens", "64"]) == 0
    err = capsys.readouterr().err
    halved = whole.parent / "run_002"
    assert f"resuming {halved}" in err and "batch tokens: auto -> 64 (" in err
    assert "out of memory scoring a batch of " in err
    config = json.loads((whole / "config.json").read_text())
    assert "batch_tokens" not in config["identity"] and "batch_tokens" not in config
    attempts = [json.loads((run / "timing.json").read_text())["attempts"] for run in (whole, halved)]
    assert attempts[0][0]["batch_tokens"] == {"option": 4096, "used": 4096}
    assert [a["batch_tokens"]["option"] for a in attempts[1]] == [64, "auto"]  # the failed attempt, then the resume
    a, b = (json.loads((run / "probed" / "case_1.json").read_text())["post"] for run in (whole, halved))
    for x, y in zip([a["edit"], *a["probes"]], [b["edit"], *b["probes"]], strict=True):
        assert [x["nll_new"], x["nll_true"]] == pytest.approx([y["nll_new"], y["nll_true"]], abs=1e-4)


def test_auto_batch_tokens_give_up_after_halving(capsys, ws, monkeypatch, tiny_llama, out_of_memory_above):
    monkeypatch.setattr(models, "load", lambda *args, **kwargs: tiny_llama)
    ws.task("mine", [record(1)])
    out_of_memory_above(tiny_llama, 0)  # nothing fits
    line = error_of(capsys, [*ws.run_args("mine"), "--max-batch-tokens", "64"])
    assert line.startswith(
        f"{PREFIX}out of memory while scoring (mine: pre-edit scores); lower --batch-tokens (now auto -> "
    )
    timing = json.loads(next(ws.out.rglob("timing.json")).read_text())
    batch_tokens = timing["attempts"][-1]["batch_tokens"]
    assert batch_tokens["option"] == "auto" and batch_tokens["used"] == 64


def test_auto_batch_tokens_without_free_memory_take_one_longest_row(capsys, ws, monkeypatch, tiny_llama):
    from flextape_bench import runner

    monkeypatch.setattr(models, "load", lambda *args, **kwargs: tiny_llama)
    monkeypatch.setattr(runner, "model_free_bytes", lambda adapter: 0)
    ws.task("mine", [record(1), record(2, subject="Alan Turing")])
    assert main(ws.run_args("mine")) == 0
    requests = [
        ScoreRequest(f"{subject} works in the field of", ("physics", "mathematics"))
        for subject in ("Ada Lovelace", "Alan Turing")
    ]
    longest = Scorer(tiny_llama).longest_row(requests)
    assert f"batch tokens: auto -> {longest} (0.0 GiB free)" in capsys.readouterr().err
    timing = json.loads(next(ws.out.rglob("timing.json")).read_text())
    assert timing["attempts"][-1]["batch_tokens"] == {"option": "auto", "max": 16384, "used": longest}


@pytest.mark.parametrize(
    "num_edits, advice",
    [
        (None, "edit fewer at once, e.g. --num-edits 1"),
        (1, "a single edit does not fit: use --dtype bfloat16, or --device spread (GPUs, then CPU, then disk)"),
    ],
)
def test_out_of_memory_while_editing_names_num_edits(capsys, ws, monkeypatch, tiny_llama, num_edits, advice):
    from flextape_bench.editors.ft import FTEditor

    monkeypatch.setattr(models, "load", lambda *args, **kwargs: tiny_llama)
    monkeypatch.setattr(FTEditor, "compute_delta", _raise(OOM_ERRORS[0]))
    ws.task("mine", [record(1), record(2, subject="Alan Turing")])
    flags = ["--editor", "ft", "--hparams", "layers=[1]", "--num-edits", str(num_edits or "all")]
    line = error_of(capsys, [*ws.run_args("mine"), *flags])
    chunk = "chunk 1/1: 2 edits" if num_edits is None else "chunk 1/2: 1 edit"
    assert line == f"{PREFIX}out of memory while editing (ft, mine {chunk} at once); {advice}"
    assert [p.name for p in ws.run_files()] == ["config.json", "timing.json"]
