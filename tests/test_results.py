import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flextape_bench.checksums import read_json, write_json
from flextape_bench.results import RunDir, _new_run, open_run, slug
from flextape_bench.tables import write_summary

# A process that opens a run of identity {"seed": 0} under argv[1] (once the file argv[2], if given, exists), prints
# its name and holds it until its stdin is closed.
HOLD = """
import sys, time
from pathlib import Path
from flextape_bench.results import open_run
while len(sys.argv) > 2 and not Path(sys.argv[2]).exists():
    time.sleep(0.01)
with open_run(Path(sys.argv[1]), "m", "e", {"seed": 0}, {})[0] as run:
    print(run.path.name, flush=True)
    sys.stdin.read()
"""


def _holder(*args: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLD, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _release(proc: subprocess.Popen) -> str:
    """Let a holder finish; its stderr."""
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


def test_write_json_is_atomic_and_leaves_no_temporaries(tmp_path):
    write_json(tmp_path / "a" / "x.json", {"k": 1})
    assert read_json(tmp_path / "a" / "x.json") == {"k": 1}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]


def test_open_run_resumes_only_an_unfinished_identical_run(tmp_path):
    ident = {"model": "m", "seed": 0}
    run1, resumed = open_run(tmp_path, "org/model", "ft", ident, {})
    assert run1.path.name == "run_001" and not resumed
    run1.close()
    again, resumed = open_run(tmp_path, "org/model", "ft", ident, {})
    assert again.path == run1.path and resumed
    again.close()
    other, resumed = open_run(tmp_path, "org/model", "ft", {"model": "m", "seed": 1}, {})
    assert other.path.name == "run_002" and not resumed
    write_json(other.path / "summary.json", {})
    other.close()
    third, resumed = open_run(tmp_path, "org/model", "ft", {"model": "m", "seed": 1}, {})
    assert third.path.name == "run_003" and not resumed
    assert RunDir(third.path).config["identity"] == {"model": "m", "seed": 1}
    third.close()


def test_an_interrupted_run_resumes_after_a_run_of_another_identity(tmp_path):
    first, _ = open_run(tmp_path, "m", "e", {"seed": 0}, {})
    first.close()  # interrupted: no summary
    with open_run(tmp_path, "m", "e", {"seed": 1}, {})[0] as other:
        write_summary(other.path, {"model": "m", "editor": "e", "run": "run_002", "tasks": {}})
    with open_run(tmp_path, "m", "e", {"seed": 2}, {})[0] as unfinished:  # an unrelated unfinished run, newer
        assert unfinished.path.name == "run_003"
    again, resumed = open_run(tmp_path, "m", "e", {"seed": 0}, {})
    assert again.path.name == "run_001" and resumed
    again.close()


def test_a_run_in_use_by_another_process_is_not_resumed(tmp_path, capsys):
    first = _holder(tmp_path)
    assert first.stdout.readline() == "run_001\n"
    second = subprocess.run(
        [sys.executable, "-c", HOLD, str(tmp_path)], input="", capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout == "run_002\n"
    assert second.stderr == f"run_001 is in use by another process (pid {first.pid}); writing run_002\n"
    third = _holder(tmp_path)  # the newest run of the identity that no process holds
    assert third.stdout.readline() == "run_002\n"
    assert _release(first) == ""
    parent = tmp_path / "m" / "e"
    assert sorted(os.listdir(parent / "run_001")) == ["config.json"]  # the lock went with the process's work
    with open_run(tmp_path, "m", "e", {"seed": 0}, {})[0] as again:
        assert again.path.name == "run_001"
    assert capsys.readouterr().err == f"run_002 is in use by another process (pid {third.pid}); resuming run_001\n"
    assert _release(third) == ""
    assert sorted(os.listdir(parent / "run_002")) == ["config.json"]


def test_the_run_of_a_killed_process_resumes(tmp_path, capsys):
    killed = _holder(tmp_path)
    assert killed.stdout.readline() == "run_001\n"
    killed.kill()  # no `close`: its lock file stays, unlocked by the kernel
    killed.communicate(timeout=60)
    assert (tmp_path / "m" / "e" / "run_001" / ".lock").read_text() == f"{killed.pid}\n"
    with open_run(tmp_path, "m", "e", {"seed": 0}, {})[0] as again:
        assert again.path.name == "run_001"
        assert (again.path / ".lock").read_text() == f"{os.getpid()}\n"
    assert capsys.readouterr().err == ""


def test_processes_starting_together_take_different_runs(tmp_path):
    go = tmp_path / "go"
    holders = [_holder(tmp_path / "out", go) for _ in range(4)]
    time.sleep(1.0)  # let them all wait for `go`
    go.touch()
    names = [proc.stdout.readline().strip() for proc in holders]
    for proc in holders:
        _release(proc)
    assert sorted(names) == ["run_001", "run_002", "run_003", "run_004"]
    assert sorted(os.listdir(tmp_path / "out" / "m" / "e")) == sorted(names) and all(
        os.listdir(tmp_path / "out" / "m" / "e" / name) == ["config.json"] for name in names
    )


def test_results_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with open_run(tmp_path, "m", "e", {"seed": 0}, {})[0] as run:
            run.write_case("t", {"case_id": 1})
    finally:
        os.umask(old)
    assert oct((run.path / "config.json").stat().st_mode & 0o777) == oct(0o644)
    assert oct((run.path / "t" / "case_1.json").stat().st_mode & 0o777) == oct(0o644)
    assert oct(run.path.stat().st_mode & 0o777) == oct(0o755)


def test_a_run_directory_never_exists_without_its_config(tmp_path):
    parent = tmp_path / "m" / "e"
    parent.mkdir(parents=True)
    (parent / "run_001").mkdir()
    (parent / "run_001" / "config.json").write_text("{}")  # another process's run took the number
    with _new_run(parent, 1, {"identity": {}}) as run:
        assert run.path.name == "run_002"
        assert sorted(p.name for p in run.path.iterdir()) == [".lock", "config.json"]  # locked from the start
    assert sorted(p.name for p in parent.iterdir()) == ["run_001", "run_002"]  # the staging folder was renamed
    assert read_json(parent / "run_002" / "config.json") == {"identity": {}}


def test_damaged_config_or_summary(tmp_path, capsys):
    ident = {"model": "m"}
    run, _ = open_run(tmp_path, "m", "e", ident, {})
    run.close()
    (run.path / "config.json").write_text(json.dumps({"identity": ident}))  # valid JSON, but no checksum
    fresh, resumed = open_run(tmp_path, "m", "e", ident, {})
    assert fresh.path.name == "run_002" and not resumed
    fresh.close()
    assert f"warning: {run.path / 'config.json'}: no content_sha256" in capsys.readouterr().err
    write_summary(fresh.path, {"model": "m", "editor": "e", "run": "run_002", "tasks": {}})
    assert fresh.finished
    summary = fresh.path / "summary.json"
    summary.write_bytes(summary.read_bytes()[:-10])  # a damaged summary: the run is unfinished and resumes
    assert not fresh.finished
    again, resumed = open_run(tmp_path, "m", "e", ident, {})
    assert again.path == fresh.path and resumed
    again.close()
    assert f"warning: {summary}: not valid JSON" in capsys.readouterr().err


def test_a_finished_run_needs_every_file_its_summary_lists(tmp_path, capsys):
    run = RunDir(tmp_path / "run_001")
    run.write_samples("t", iter([{"case_id": 1}]))
    write_summary(run.path, {"model": "m", "editor": "e", "run": "run_001", "tasks": {}}, run.digests)
    assert sorted(read_json(run.path / "summary.json")["files"]) == ["summary.csv", "summary.md", "t/samples.jsonl"]
    assert run.finished
    (run.path / "t" / "samples.jsonl").write_text('{"case_id": 2}\n')
    assert not run.finished
    assert (
        f"warning: {run.path / 't' / 'samples.jsonl'}: missing, or the content does not match its sha256 in "
        "summary.json; the run counts as unfinished" in capsys.readouterr().err
    )


def test_timing_lists_every_attempt(tmp_path):
    run = RunDir(tmp_path)
    assert run.timing == {"started": None, "argv": None, "seconds": None}
    run.log_start(["flextape-bench", "--limit", "2"], 0.0, {"option": "auto", "used": 64})  # killed: no seconds
    later = RunDir(tmp_path)
    later.log_start(["flextape-bench", "--limit", "2", "--batch-tokens", "64"], 100.0, {"option": 64, "used": 64})
    later.log_finish()
    attempts = read_json(tmp_path / "timing.json")["attempts"]
    assert [a["seconds"] is None for a in attempts] == [True, False]
    timing = RunDir(tmp_path).timing
    assert timing["argv"] == ["flextape-bench", "--limit", "2"] and timing["seconds"] == attempts[1]["seconds"]
    assert timing["started"] == attempts[0]["started"]


def test_slug_keeps_hub_ids_readable():
    assert slug("meta-llama/Llama-2-7b-hf") == "meta-llama__Llama-2-7b-hf"
    assert slug("/home/me/models/tiny") == "models__tiny"
    assert slug("gemma3-270m") == "gemma3-270m"


@pytest.mark.parametrize("name", ["..", "../..", "..\\..", "a/..", "...", "/"])
def test_slug_is_never_a_path_out_of_its_folder(name):
    assert slug(name) not in ("", ".", "..") and "/" not in slug(name) and not slug(name).startswith(".")
