"""One run over two CPU processes (gloo) gives the one-process run's results, in both ways of sharing the work: a
batch edited once and scored by both (started with --num-processes), and one edit a process (started as a launcher
would); a UserError in the second process ends both with rank 0's one-line message."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flextape_bench.cli import main
from flextape_bench.distributed import free_port

TASK = "seesaw_cf_P19_P101"
PREFIX = "flextape-bench: error: "


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_llama) -> Path:
    """The tiny random Llama and its tokenizer, saved for `--model DIR` in every process."""
    folder = tmp_path_factory.mktemp("tiny_llama")
    tiny_llama.model.save_pretrained(folder)
    tiny_llama.tokenizer.save_pretrained(folder)
    return folder


def _args(model_dir: Path, data_dir: Path, output: Path, *extra: str, tasks: str = TASK) -> list[str]:
    return [
        "--model",
        str(model_dir),
        "--editor",
        "ft",
        "--tasks",
        tasks,
        "--limit",
        "4",
        "--data-dir",
        str(data_dir),
        "--output",
        str(output),
        "--batch-tokens",
        "4096",
        "--hparams",
        "layers=[1]",
        "--hparams",
        "num_steps=5",
        "--hparams",
        "lr=5e-3",
        "--hparams",
        "norm_constraint=5e-3",
        *extra,
    ]


def _env(cache: Path, **more: str) -> dict[str, str]:
    return {**os.environ, "FLEXTAPE_CACHE": str(cache), "FLEXTAPE_PROGRESS": "0", **more}


def _alone(monkeypatch, tmp_path: Path, args: list[str]) -> Path:
    """The one-process run, in this process, with its own cache; its run directory."""
    monkeypatch.setenv("FLEXTAPE_CACHE", str(tmp_path / "cache_alone"))
    assert main(args) == 0
    (run_dir,) = (tmp_path / "alone").glob("*/ft/run_001")
    return run_dir


def _launched(args: list[str], cache: Path, *, code: str | None = None) -> list[subprocess.CompletedProcess]:
    """Ranks 0 and 1 started the way accelerate launch and torchrun start them (RANK, WORLD_SIZE, MASTER_ADDR and
    MASTER_PORT in the environment), running the CLI, or `code` with the CLI's arguments."""
    command = [sys.executable, *(["-c", code] if code else ["-m", "flextape_bench"]), *args]
    group = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}
    processes = [
        subprocess.Popen(
            command,
            env=_env(cache, **group, RANK=str(rank), LOCAL_RANK=str(rank)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    return [subprocess.CompletedProcess(command, p.returncode, *out) for p, out in zip(processes, outputs)]


def _assert_same(expected: object, actual: object, where: str) -> None:
    """Equal structure and values; floats within 1e-5."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and expected.keys() == actual.keys(), where
        for key in expected:
            _assert_same(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(expected) == len(actual), where
        for i, (a, b) in enumerate(zip(expected, actual)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, float) and isinstance(actual, float):
        assert math.isclose(expected, actual, rel_tol=0, abs_tol=1e-5) or expected == actual, (where, expected, actual)
    elif where.endswith("content_sha256"):  # the checksum of values that may differ in their last bits
        assert isinstance(actual, str)
    else:
        assert expected == actual, (where, expected, actual)


def _assert_same_results(alone: Path, shared: Path, tasks: int = 1) -> None:
    """The same case files (ids, structure, scores within 1e-5, long-form texts), summary and run identity."""
    cases = sorted(p.relative_to(alone) for p in alone.glob("*/case_*.json"))
    assert len(cases) == 4 * tasks and cases == sorted(p.relative_to(shared) for p in shared.glob("*/case_*.json"))
    for case in cases:
        _assert_same(json.loads((alone / case).read_text()), json.loads((shared / case).read_text()), str(case))
    summaries = [json.loads((run / "summary.json").read_text()) for run in (alone, shared)]
    for summary in summaries:
        summary.pop("seconds", None)  # wall time, where the summary still holds it
    _assert_same(*summaries, "summary")
    assert (
        json.loads((alone / "config.json").read_text())["identity"]
        == json.loads((shared / "config.json").read_text())["identity"]
    )


def test_batch_edited_once_and_scored_by_two_processes(monkeypatch, tmp_path, model_dir, data_dir):
    alone = _alone(monkeypatch, tmp_path, _args(model_dir, data_dir, tmp_path / "alone"))
    shared = subprocess.run(
        [
            sys.executable,
            "-m",
            "flextape_bench",
            "--num-processes",
            "2",
            *_args(model_dir, data_dir, tmp_path / "shared"),
        ],
        env=_env(tmp_path / "cache_shared"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shared.returncode == 0, shared.stderr
    assert shared.stdout.count("results: ") == 1  # only rank 0 prints the summary
    (run_dir,) = (tmp_path / "shared").glob("*/ft/run_001")
    _assert_same_results(alone, run_dir)
    assert (tmp_path / "cache_shared" / "prescores").is_dir()  # rank 0 cached the pre-edit scores


def test_one_edit_a_process_and_resume_alone(monkeypatch, tmp_path, model_dir, data_dir):
    tasks = f"{TASK},{TASK}_longform"  # the second process also generates the texts of the chunks it edits
    alone = _alone(
        monkeypatch, tmp_path, _args(model_dir, data_dir, tmp_path / "alone", "--num-edits", "1", tasks=tasks)
    )
    args = _args(model_dir, data_dir, tmp_path / "shared", "--num-edits", "1", tasks=tasks)
    for rank, result in enumerate(_launched(args, tmp_path / "cache_shared")):
        assert result.returncode == 0, (rank, result.stderr)
    (run_dir,) = (tmp_path / "shared").glob("*/ft/run_001")
    _assert_same_results(alone, run_dir, tasks=2)

    # a run started with two processes resumes with one: same identity, only the missing case is redone
    (run_dir / "summary.json").unlink()
    case = next(run_dir.glob("*/case_*.json"))
    expected = json.loads(case.read_text())
    case.unlink()
    monkeypatch.setenv("FLEXTAPE_CACHE", str(tmp_path / "cache_shared"))
    assert main(args) == 0
    assert not list((tmp_path / "shared").glob("*/ft/run_002"))
    _assert_same(expected, json.loads(case.read_text()), case.name)
    assert (run_dir / "summary.json").exists()


FAILING_SECOND_PROCESS = """\
import os, sys
from flextape_bench.cli import main
from flextape_bench.scoring import Scorer

def out_of_memory(self, batch):
    raise MemoryError()

if os.environ["RANK"] == "1":
    Scorer._score_batch = out_of_memory
raise SystemExit(main(sys.argv[1:]))
"""


def test_user_error_in_the_second_process_ends_both_with_one_line(tmp_path, model_dir, data_dir):
    args = _args(model_dir, data_dir, tmp_path / "out", "--batch-tokens", "1024")
    first, second = _launched(args, tmp_path / "cache", code=FAILING_SECOND_PROCESS)
    assert (first.returncode, second.returncode) == (2, 2), (first.stderr, second.stderr)
    lines = [line for line in first.stderr.splitlines() if line.startswith(PREFIX)]
    assert lines == [
        f"{PREFIX}out of memory while scoring ({TASK}: pre-edit scores); lower --batch-tokens (now 1024), "
        "e.g. --batch-tokens 512; the run resumes where it stopped"
    ], first.stderr
    assert "Traceback" not in first.stderr + second.stderr and PREFIX not in second.stderr
    (run_dir,) = (tmp_path / "out").glob("*/ft/run_001")
    assert not list(run_dir.glob("*/case_*.json"))  # nothing written but config.json
