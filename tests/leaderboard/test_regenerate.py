"""leaderboard/regenerate.sh schedules its grid in resumable pieces: every (model, editor, task) once, task by task,
MEND trained before a model's first MEND run, each finished piece's run record kept, finished pieces skipped (on
another machine too, where only the records came along), a piece held by another call skipped, a failing piece
neither marked nor followed, the tables made of the tasks whose pieces are all done. `flextape-bench` and
`python3` are replaced on PATH by recorders, so nothing runs a model."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "leaderboard" / "regenerate.sh"
MODELS = ["gemma3-270m", "smollm2-135m"]
EDITORS = ["none", "ft", "memit", "alphaedit", "rome", "mend"]
TASKS = ["seesaw_cf_P21_P101", "seesaw_cf_P19_P101", "seesaw_cf_P27_P101", "seesaw_cf_P19_P21", "seesaw_cf_P27_P19"]
STATS = "--hparams mom2_dataset=model --hparams mom2_n_samples=256 --hparams mom2_max_tokens=64"


def _recorders(tmp_path: Path, fail: str = "") -> dict[str, str]:
    """An environment whose `flextape-bench` and `python3` append their arguments to calls.log (and exit 3 where
    they contain `fail`)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for name in ("flextape-bench", "python3"):
        recorder = folder / name
        failing = f'[[ -n "{fail}" && "$*" == *"{fail}"* ]] && exit 3\n' if fail else ""
        recorder.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "{tmp_path}/calls.log"\n{failing}exit 0\n')
        recorder.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "FLEXTAPE_DATA_DIR": "/data",
        "FLEXTAPE_RECORDS": str(tmp_path / "records"),
    }


def _run(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "results"), *args], env=env, capture_output=True, text=True
    )
    return done, log.read_text().splitlines() if log.exists() else []


def test_every_piece_once_task_by_task_then_the_tables_and_nothing_again(tmp_path):
    env = _recorders(tmp_path)
    done, calls = _run(tmp_path, env)
    assert done.returncode == 0, done.stderr
    results, records = tmp_path / "results", tmp_path / "records"
    expected = []
    for task in TASKS:
        for model in MODELS:
            for editor in EDITORS:
                if editor == "mend" and task == TASKS[0]:
                    expected.append(f"flextape-bench train-mend --model {model} --data-dir /data")
                stats = f" {STATS}" if editor in ("memit", "alphaedit", "rome") else ""
                expected += [
                    f"flextape-bench run --model {model} --editor {editor} --tasks {task} --limit 50 --num-edits 1 "
                    f"--data-dir /data{stats} --output {results}",
                    f"python3 -m flextape_bench.leaderboard.run_records {results} {records}",
                ]
    expected += [
        f"flextape-bench leaderboard --results {results} --records {records} --output leaderboard",
        "python3 -m flextape_bench.leaderboard.screenshot leaderboard/index.html leaderboard/index.png",
    ]
    assert calls == expected
    assert len(list((records / "done").iterdir())) == 2 * 6 * 5  # the run pieces travel with the records
    assert sorted(p.name for p in (results / "done").iterdir()) == [f"{m}__mend__train" for m in MODELS]
    again, calls = _run(tmp_path, env)  # every piece done: only the tables and the screenshot again
    assert again.returncode == 0 and calls == expected[-2:]


def test_a_chosen_subset_runs_alone_and_the_tables_wait_for_the_rest(tmp_path):
    done, calls = _run(tmp_path, _recorders(tmp_path), "7", "^smollm2-135m/memit/")
    assert done.returncode == 0, done.stderr
    runs = [call for call in calls if call.startswith("flextape-bench run")]
    assert [call.split(" --tasks ")[1].split()[0] for call in runs] == TASKS
    assert all("--model smollm2-135m --editor memit" in call and "--limit 7" in call for call in runs)
    assert "55 pieces still to run" in done.stderr  # 2 x 6 x 5 pieces, 5 done, no task whole: no tables yet
    assert not any(" leaderboard " in call or "screenshot" in call for call in calls)


def test_a_piece_held_by_another_call_is_left_to_it(tmp_path):
    locks = tmp_path / "results" / "locks"
    locks.mkdir(parents=True)
    with open(locks / "gemma3-270m__none__seesaw_cf_P21_P101", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        done, calls = _run(tmp_path, _recorders(tmp_path), "50", "^gemma3-270m/none/")
    assert done.returncode == 0, done.stderr
    assert "gemma3-270m/none/seesaw_cf_P21_P101 is being run by another call; skipped" in done.stderr
    runs = [call for call in calls if call.startswith("flextape-bench run")]
    assert [call.split(" --tasks ")[1].split()[0] for call in runs] == TASKS[1:]
    assert not (tmp_path / "records" / "done" / "gemma3-270m__none__seesaw_cf_P21_P101").exists()


def test_a_failing_piece_is_not_marked_and_stops_the_grid(tmp_path):
    done, calls = _run(tmp_path, _recorders(tmp_path, fail="--editor ft"))
    assert done.returncode == 3
    assert len(calls) == 3 and "--editor none" in calls[0] and "records" in calls[1] and "--editor ft" in calls[2]
    assert sorted(p.name for p in (tmp_path / "records" / "done").iterdir()) == [
        "gemma3-270m__none__seesaw_cf_P21_P101"
    ]
    again, calls = _run(tmp_path, _recorders(tmp_path))  # the next call starts at the failed piece
    assert again.returncode == 0 and "--editor ft" in calls[0] and "--model gemma3-270m" in calls[0]


def test_on_a_new_machine_the_pieces_recorded_elsewhere_are_skipped_and_mend_trains_only_for_what_is_left(tmp_path):
    records = tmp_path / "records" / "done"
    records.mkdir(parents=True)
    for model in MODELS:  # every piece of the first task was finished on another machine
        for editor in EDITORS:
            (records / f"{model}__{editor}__{TASKS[0]}").touch()
    done, calls = _run(tmp_path, _recorders(tmp_path), "50", f"/{TASKS[0]}$|/{TASKS[1]}$|/train$")
    assert done.returncode == 0, done.stderr
    first = [call for call in calls if (TASKS[0] in call or "train-mend" in call) and " leaderboard " not in call]
    assert first == [  # nothing of the recorded task runs again; MEND is trained here for the next task's pieces
        "flextape-bench train-mend --model gemma3-270m --data-dir /data",
        "flextape-bench train-mend --model smollm2-135m --data-dir /data",
    ]
    assert calls.index(first[0]) == calls.index(next(c for c in calls if "--editor mend" in c)) - 1
    assert sum(call.startswith("flextape-bench run") for call in calls) == 12
    assert "36 pieces still to run" in done.stderr
    assert calls[-2:] == [  # the two whole tasks' tables so far
        f"flextape-bench leaderboard --results {tmp_path / 'results'} --records {tmp_path / 'records'} "
        f"--tasks {TASKS[0]},{TASKS[1]} --output leaderboard",
        "python3 -m flextape_bench.leaderboard.screenshot leaderboard/index.html leaderboard/index.png",
    ]
    assert f"the tables show the tasks every model and editor has finished: {TASKS[0]} {TASKS[1]}" in done.stderr
