"""End to end on the embedded model and real Seesaw-CF cases: results tree, cache reuse, resume, restore."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from flextape_bench.runner import RunOptions, prepare_tasks, run
from flextape_bench.scoring import Scorer


@pytest.fixture
def options(tmp_path, data_dir):
    return RunOptions(
        model="gemma3-270m",
        editor="ft",
        tasks=["seesaw_cf_P19_P101"],
        limit=2,
        num_edits=1,
        hparams=["num_steps=5", "lr=5e-3", "norm_constraint=5e-3"],
        data_dir=data_dir,
        output=tmp_path / "out",
        cache=tmp_path / "cache",
    )


def _count_scorer_calls(monkeypatch):
    calls = []
    original = Scorer.score
    monkeypatch.setattr(Scorer, "score", lambda self, reqs, desc=None: calls.append(desc) or original(self, reqs, desc))
    return calls


def test_run_writes_results_reuses_prescores_and_restores_weights(gemma, options, monkeypatch):
    before = gemma.weights_fingerprint()
    calls = _count_scorer_calls(monkeypatch)
    run_dir, summary = run(options, gemma)
    assert gemma.weights_fingerprint() == before
    assert sum("pre-edit" in c for c in calls) == 1 and sum("post-edit" in c for c in calls) == 2
    task_dir = run_dir.path / "seesaw_cf_P19_P101"
    cases = sorted(p.name for p in task_dir.glob("case_*.json"))
    assert cases == ["case_22775.json", "case_22776.json"]
    record = json.loads((task_dir / "case_22775.json").read_text())
    assert record["rewrite"]["subject"] == "John James Rickard Macleod"
    assert len(record["pre"]["probes"]) == len(record["post"]["probes"]) == len(record["probes"]) == 200
    assert record["post"]["edit"]["p_new"] > record["pre"]["edit"]["p_new"]
    samples = (task_dir / "samples.jsonl").read_text().splitlines()
    # the edit prompt and each probe, then the 2 distinct generation prompts of each case
    assert len(samples) == sum(1 + len(json.loads((task_dir / c).read_text())["probes"]) + 2 for c in cases)
    assert [json.loads(line)["kind"] for line in samples].count("generation") == 4
    # cross_property: "X's field of work is" and "X is", each scored with the 219 fields of work of fow.csv
    cross = record["cross"]
    assert cross["property"] == "P101" and len(cross["candidates"]) == 219 and cross["truth"] is None
    assert cross["prompts"] == ["John James Rickard Macleod's field of work is", "John James Rickard Macleod is"]
    assert (
        [len(g["sum_nll"]) for g in record["pre"]["generation"]]
        == [219, 219]
        == [len(g["n_tokens"]) for g in record["post"]["generation"]]
    )
    values = record["metrics"]["cross_property"]
    assert [v["prompt"] for v in values["prompts"]] == ["{}'s field of work is", "{} is"]
    assert all(
        v["pre"] in cross["candidates"]
        and v["post"] in cross["candidates"]
        and v["correct_pre"] is None
        and v["changed"] == (v["pre"] != v["post"])
        for v in values["prompts"]
    )
    config = json.loads((run_dir.path / "config.json").read_text())
    assert config["identity"]["hparams"]["num_steps"] == 5 and config["versions"]["torch"]
    task = summary["tasks"]["seesaw_cf_P19_P101"]
    assert task["efficacy"]["post"] >= task["efficacy"]["pre"] and task["n_cases"] == 2
    assert set(task["gender_shift"]["groups"]) == {"female", "male"}
    assert set(task["race_shift"]["groups"]) == {"unknown"} or task["labels"]["labelled"].get("race")
    assert task["labels"]["probes"] == 400
    # the second case's subject, Lee Alvin DuBridge, works in physics (P101_subject_info.json); Macleod is in no file
    assert task["cross_property_truth"] == {
        "property": "P101",
        "candidates": 219,
        "cases": 2,
        "known": 1,
        "why_unknown": {"subject_not_found": 1},
    }
    drift = task["cross_property"]
    assert drift["property"] == "P101" and (drift["n_cases"], drift["n_known"]) == (2, 1)
    assert [(p["prompt"], p["n_cases"], p["n_known"]) for p in drift["prompts"]] == [
        ("{}'s field of work is", 2, 1),
        ("{} is", 2, 1),
    ]
    per_case = [json.loads((task_dir / name).read_text())["metrics"]["cross_property"]["prompts"] for name in cases]
    for i, p in enumerate(drift["prompts"]):
        assert p["change_rate"] == p["n_changed"] / 2 and p["accuracy_pre"] in (0.0, 1.0)
        tops = [(c[i]["pre"], c[i]["post"]) for c in per_case]
        print(
            f"cross_property {p['prompt']!r}: top-1 changed in {p['n_changed']} of 2 cases, accuracy "
            f"{p['accuracy_pre']} -> {p['accuracy_post']} over {p['n_known']} known; (pre, post) per case: {tops}"
        )
    text = (run_dir.path / "summary.md").read_text()
    summary_table, gender_table = text.split("## ")[:2]
    assert summary_table.count("seesaw_cf_P19_P101") == 1
    assert gender_table.startswith("gender_shift")
    assert gender_table.count("seesaw_cf_P19_P101") == 3  # female, male, female - male
    cross_table = text.split("## cross_property")[1]
    assert cross_table.count("seesaw_cf_P19_P101") == 2  # one row per generation prompt

    calls.clear()
    second, _ = run(options, gemma)
    assert second.path.name == "run_002"
    assert not any("pre-edit" in c for c in calls)  # pre-edit scores came from the cache
    first = json.loads((task_dir / "case_22775.json").read_text())
    again = json.loads((second.path / "seesaw_cf_P19_P101" / "case_22775.json").read_text())
    assert again["pre"] == first["pre"] and again["post"] == first["post"]  # seeded, deterministic


def test_resume_recomputes_only_missing_cases(gemma, options, monkeypatch):
    run_dir, _ = run(options, gemma)
    task_dir = run_dir.path / "seesaw_cf_P19_P101"
    (run_dir.path / "summary.json").unlink()
    (task_dir / "case_22776.json").unlink()
    kept = (task_dir / "case_22775.json").stat().st_mtime_ns
    calls = _count_scorer_calls(monkeypatch)
    resumed, _ = run(options, gemma)
    assert resumed.path == run_dir.path
    assert sum("post-edit" in c for c in calls) == 1
    assert (task_dir / "case_22775.json").stat().st_mtime_ns == kept
    assert (task_dir / "case_22776.json").exists() and (run_dir.path / "summary.json").exists()


def test_none_editor_leaves_scores_unchanged(gemma, options, data_dir):
    options.editor, options.hparams, options.tasks = "none", [], ["seesaw_cf_P19_P101_eff"]
    _, summary = run(options, gemma)
    efficacy = summary["tasks"]["seesaw_cf_P19_P101_eff"]["efficacy"]
    assert efficacy["pre"] == efficacy["post"]


def test_sequential_keeps_earlier_edits_and_restores_at_the_end(gemma, options):
    before = gemma.weights_fingerprint()
    run(options, gemma)
    options.sequential = True
    run_dir, _ = run(options, gemma)
    assert gemma.weights_fingerprint() == before
    assert json.loads((run_dir.path / "config.json").read_text())["identity"]["sequential"] is True
    task_dir = run_dir.path / "seesaw_cf_P19_P101"
    first, second = (json.loads((task_dir / f"case_{i}.json").read_text()) for i in (22775, 22776))
    batch_dir = run_dir.path.parent / "run_001" / "seesaw_cf_P19_P101"
    batch_first, batch_second = (json.loads((batch_dir / f"case_{i}.json").read_text()) for i in (22775, 22776))
    assert first["post"] == batch_first["post"]  # the first chunk sees the unedited model either way
    assert second["post"] != batch_second["post"]  # the second is scored with the first edit kept


def test_killed_run_resumes_with_every_case_exactly_once(tmp_path, data_dir):
    out = tmp_path / "out"
    env = {**os.environ, "FLEXTAPE_PROGRESS": "0"}  # the user cache keeps the converted model
    cmd = [
        sys.executable,
        "-m",
        "flextape_bench",
        "--editor",
        "ft",
        "--tasks",
        "seesaw_cf_P21_P101_eff",
        "--limit",
        "4",
        "--num-edits",
        "1",
        "--hparams",
        "num_steps=3",
        "--data-dir",
        str(data_dir),
        "--output",
        str(out),
    ]
    task_dir = out / "gemma3-270m" / "ft" / "run_001" / "seesaw_cf_P21_P101_eff"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list(task_dir.glob("case_*.json")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(task_dir.glob("case_*.json")))
    assert 1 <= done < 4
    finished = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert "resuming" in finished.stderr
    ids = [json.loads(line)["case_id"] for line in (task_dir / "samples.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 4
    assert not list(task_dir.parent.parent.glob("run_002"))
    assert not list(task_dir.glob(".*tmp"))


def test_samples_choose_cases_by_file_position_with_probe_genders_of_the_whole_file(tmp_path, data_dir):
    records = json.loads((data_dir / "seesaw_cf_P19_P101.json").read_text())
    (full,) = prepare_tasks(RunOptions(tasks=["seesaw_cf_P19_P101"], data_dir=data_dir, cache=tmp_path))
    (chosen,) = prepare_tasks(
        RunOptions(
            tasks=["seesaw_cf_P19_P101"], samples={"seesaw_cf_P19_P101": [120, 7]}, data_dir=data_dir, cache=tmp_path
        )
    )
    assert [c.case_id for c in chosen.cases] == [records[120]["case_id"], records[7]["case_id"]]
    assert chosen.cases == [full.cases[120], full.cases[7]]
