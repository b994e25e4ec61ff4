"""End to end on the embedded model and real Seesaw-CF cases: results tree, cache reuse, resume, restore."""

import dataclasses
import hashlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from bad_input import record
from split_checks import save

from flextape_bench.cases import ScoreRequest
from flextape_bench.cli import main
from flextape_bench.editors.none import NoEditor
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


def _stored_parameters(folder: str) -> int:
    """The number of values in a model folder's model.safetensors, from the file's header."""
    with open(os.path.join(folder, "model.safetensors"), "rb") as handle:
        header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
    return sum(math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__")


def _checkout_commit() -> str:
    """HEAD of this checkout, with -dirty when tracked files differ from it (git's own answers)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    git = ["git", "-C", root]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run([*git, "diff", "--quiet", "HEAD"]).returncode != 0
    return head + ("-dirty" if dirty else "")


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
    assert config["torch_threads"] == torch.get_num_threads() and "torch_threads" not in config["identity"]
    assert config["model_parameters"] == _stored_parameters(gemma.location) == 268_098_176  # tied head once
    assert config["versions"]["flextape_bench_commit"] == _checkout_commit()
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


def test_edits_that_did_not_take_are_named_with_the_hyperparameters_used(gemma, tmp_path, data_dir):
    """FT with a step too small to move anything: every case whose edit prompt still prefers the true target after
    the edit is listed (read here from the case files' scores), with the hyperparameter file the edit used."""
    flags = ["num_steps=1", "lr=1e-9"]
    options = RunOptions(
        model="gemma3-270m",
        editor="ft",
        tasks=["seesaw_cf_P19_P101_eff"],
        limit=5,
        hparams=flags,
        data_dir=data_dir,
        output=tmp_path / "out",
        cache=tmp_path / "cache",
    )
    run_dir, summary = run(options, gemma)
    task_dir = run_dir.path / "seesaw_cf_P19_P101_eff"
    records = [json.loads(p.read_text()) for p in sorted(task_dir.glob("case_*.json"))]
    missed = [r["case_id"] for r in records if r["post"]["edit"]["p_new"] <= r["post"]["edit"]["p_true"]]
    assert missed  # gemma prefers the new target on 2 of these 5 edit prompts before any edit
    task = summary["tasks"]["seesaw_cf_P19_P101_eff"]
    assert task["efficacy"]["not_taken"] == missed
    first, pointer = task["warnings"]
    assert first.startswith(f"{len(missed)} of 5 edits did not take") and first.endswith(", ".join(map(str, missed)))
    assert "flextape_bench/editors/hparams/ft/gemma3.yaml with --hparams num_steps=1 lr=1e-9" in pointer
    text = (run_dir.path / "summary.md").read_text()
    assert f"## Warnings\n\n- seesaw_cf_P19_P101_eff: {first}\n- seesaw_cf_P19_P101_eff: {pointer}\n" in text
    _, none_summary = run(dataclasses.replace(options, editor="none", hparams=[]), gemma)
    assert "warnings" not in none_summary["tasks"]["seesaw_cf_P19_P101_eff"]  # nothing was edited


def test_chat_template_scores_through_it_while_edits_get_the_plain_prompt(gemma, gemma_chat, ws, tmp_path, monkeypatch):
    """--apply-chat-template: the edit prompt is scored after the template's rendering (as the scorer's own chat
    test checks against a full forward pass), the editor still gets the plain prompt, and the template is part of
    the run identity and of the pre-score cache key (a plain run's cached scores are not reused)."""
    edited = []
    monkeypatch.setattr(NoEditor, "compute_delta", lambda self, requests: edited.extend(requests) or {})
    ws.task("mine", [record(1)])
    options = RunOptions(
        model="gemma3-270m",
        editor="none",
        tasks=["mine"],
        include_paths=[ws.tasks],
        data_dir=ws.data,
        output=ws.out,
        cache=tmp_path / "cache",
    )
    plain_dir, _ = run(options, gemma)
    calls = _count_scorer_calls(monkeypatch)
    chat_dir, _ = run(dataclasses.replace(options, apply_chat_template=True), gemma_chat)
    assert sum("pre-edit" in c for c in calls) == 1  # not from the plain run's cache
    plain_request = ("{} works in the field of", "Ada Lovelace", "physics", "mathematics")
    assert [(r.prompt, r.subject, r.target_new, r.target_true) for r in edited] == [plain_request] * 2

    def pre_edit(run_dir):
        return json.loads((run_dir.path / "mine" / "case_1.json").read_text())["pre"]["edit"]

    request = ScoreRequest("Ada Lovelace works in the field of", ("physics", "mathematics"))
    (new, true), (plain_new, _) = Scorer(gemma_chat).score([request])[0], Scorer(gemma).score([request])[0]
    assert (pre_edit(chat_dir)["nll_new"], pre_edit(chat_dir)["nll_true"]) == (new.sum_nll, true.sum_nll)
    assert pre_edit(plain_dir)["nll_new"] == plain_new.sum_nll != new.sum_nll
    identities = [json.loads((d.path / "config.json").read_text())["identity"] for d in (plain_dir, chat_dir)]
    assert "chat_template" not in identities[0]
    assert identities[1]["chat_template"] == hashlib.sha256(gemma_chat.tokenizer.chat_template.encode()).hexdigest()
    assert chat_dir.path != plain_dir.path


def test_device_auto_on_a_cpu_machine_is_the_run_of_device_cpu_and_model_args_are_its_own(
    tiny_llama, ws, tmp_path, monkeypatch, capsys
):
    """The identity records the resolved device: `--device auto` where torch sees no CUDA device resumes and shares
    the pre-edit scores of `--device cpu`; --model-args make another run, recorded in config.json."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ws.task("mine", [record(1)])
    argv = ["--model", str(save(tiny_llama, tmp_path / "tiny")), *ws.run_args("mine")]
    assert main([*argv, "--device", "cpu"]) == 0
    assert main(argv) == 0  # --device auto, the default
    assert "pre-edit scores for 1 of 1 cases from the cache" in capsys.readouterr().err
    assert main([*argv, "--model-args", "attn_implementation=eager"]) == 0
    configs = [json.loads(path.read_text()) for path in sorted(ws.out.rglob("config.json"))]
    assert [config["identity"]["device"] for config in configs] == ["cpu"] * 3
    assert configs[0]["identity"] == configs[1]["identity"]
    assert configs[2]["identity"]["model_args"] == {"attn_implementation": "eager"}
    # the attention kernel is in the config's fingerprint too (so the eager run scored its own cases)
    assert configs[2]["identity"]["model_config"] != configs[0]["identity"]["model_config"]
    different = ("model_args", "model_config")
    assert {k: v for k, v in configs[2]["identity"].items() if k not in different} == {
        k: v for k, v in configs[0]["identity"].items() if k not in different
    }


def test_what_will_be_missing_is_listed_before_the_model_loads(no_model, tmp_path, data_dir, caplog):
    """A stand-in data file (its probes lost) and probes without cached Wikidata claims: one warning, each note once
    with its task, before any model loads."""
    options = RunOptions(
        model="gemma3-270m",
        tasks=["seesaw_cf_P101_P21", "seesaw_cf_P19_P101", "seesaw_cf_P27_P101"],
        limit=1,
        data_dir=data_dir,
        output=tmp_path / "out",
        cache=tmp_path / "cache",  # no demographics cache in it
    )
    with caplog.at_level(logging.WARNING), pytest.raises(AssertionError, match="the model was loaded"):
        run(options)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    title, stand_in, labels = warning.splitlines()
    assert title == "before the run, what will be missing or unverified:"
    assert stand_in.startswith(
        f"  - seesaw_cf_P101_P21: the stand-in {data_dir / 'reconstructed' / 'seesaw_cf_P101_P21.json'} is read"
    )
    assert labels.startswith("  - seesaw_cf_P19_P101, seesaw_cf_P27_P101: no probe's Wikidata claims are cached")
