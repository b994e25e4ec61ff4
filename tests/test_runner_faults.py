"""Reruns and damaged files on a tiny random Llama and real Seesaw-CF cases: the same command into another output
folder gives the same files byte for byte (timing.json aside), and a run whose case file, summary and cache entry
were damaged is repaired, by recomputing them, to exactly the clean run's files."""

import copy
import dataclasses
import errno
import json
from pathlib import Path

import pytest
import torch

from flextape_bench import checksums, runner
from flextape_bench.editors.none import NoEditor
from flextape_bench.results import RunDir
from flextape_bench.runner import RunOptions, run
from flextape_bench.scoring import Scorer
from flextape_bench.weights import read_tensor

TASK = "seesaw_cf_P19_P101"


def _options(root: Path, data_dir: Path) -> RunOptions:
    return RunOptions(
        model="tiny",
        editor="ft",
        tasks=[TASK],
        limit=3,
        num_edits=1,
        hparams=["num_steps=3", "layers=[1]"],
        data_dir=data_dir,
        output=root / "out",
        cache=root / "cache",
    )


def _files(run_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _scoring_calls(monkeypatch) -> list[str | None]:
    """The progress label of every Scorer.score call from now on, in order."""
    calls: list[str | None] = []
    original = Scorer.score
    monkeypatch.setattr(
        Scorer, "score", lambda self, requests, desc=None: calls.append(desc) or original(self, requests, desc)
    )
    return calls


def test_a_case_scores_the_same_bits_whatever_cases_a_run_scores(tiny_llama, data_dir, tmp_path, monkeypatch):
    """The gender pair task, whose cases ask the same probes: the third case scored after two others (--limit 3),
    alone (--samples) or with a later case has the same scores to the last bit, each distinct request of a run is
    scored once, and every case file still has every probe. `none` changes no weight, so its post-edit scores are
    the pre-edit ones, not scored again; a change of zero is scored again, after the edit, to the same bits."""
    pair = "seesaw_cf_P21_P101"
    sizes: list[int] = []
    stages: list[str] = []
    original = Scorer.score

    def counted(self, reqs, desc=None):
        sizes.append(len(reqs))
        stages.append(desc.split(": ")[1].split(" scores")[0])
        return original(self, reqs)

    monkeypatch.setattr(Scorer, "score", counted)

    def pre_scores(name: str, **choice) -> dict[str, dict]:
        options = dataclasses.replace(
            _options(tmp_path / name, data_dir), editor="none", tasks=[pair], hparams=[], num_edits=None, **choice
        )
        run_dir, _ = run(options, tiny_llama)
        return {p.name: json.loads(p.read_text()) for p in (run_dir.path / pair).glob("case_*.json")}

    records = json.loads((data_dir / "seesaw_cf_P21_P101.json").read_text())
    third = f"case_{records[2]['case_id']}.json"
    first_three = pre_scores("limit")
    assert len(first_three) == 3 and all(len(r["pre"]["probes"]) == len(r["probes"]) > 0 for r in first_three.values())
    asked = [
        (prompt, r["requested_rewrite"]["target_new"]["str"], r["requested_rewrite"]["target_true"]["str"])
        for r in records[:3]
        for prompt in [r["requested_rewrite"]["prompt"].format(r["requested_rewrite"]["subject"])]
        + r["attribute_prompts"]
    ]
    cross = sum(len(set(r["generation_prompts"])) for r in records[:3])  # cross_property: each case's own prompts
    assert sizes[0] == len(set(asked)) + cross and len(set(asked)) < len(asked)  # pre-edit: each request once
    alone = pre_scores("alone", limit=None, samples={pair: [2]})
    later = pre_scores("later", limit=None, samples={pair: [2, 9]})
    assert alone[third]["pre"] == first_three[third]["pre"] == later[third]["pre"]  # exact float equality
    assert alone[third]["post"] == alone[third]["pre"] and set(stages) == {"pre-edit"}

    weight = "model.layers.0.mlp.down_proj.weight"
    monkeypatch.setattr(NoEditor, "declared_parameters", lambda self: [weight])
    monkeypatch.setattr(
        NoEditor,
        "compute_delta",
        lambda self, requests: {weight: torch.zeros_like(read_tensor(self.adapter.model, weight))},
    )
    zero = pre_scores("zero", limit=None, samples={pair: [2]})
    assert stages[-2:] == ["pre-edit", "post-edit"]
    assert zero[third]["post"] == zero[third]["pre"] == alone[third]["pre"]  # other batches, the same bits


@pytest.fixture
def clean(tiny_llama, data_dir, tmp_path):
    return run(_options(tmp_path / "clean", data_dir), tiny_llama)[0].path


def test_a_rerun_into_another_folder_is_byte_identical_but_for_timing(clean, tiny_llama, data_dir, tmp_path):
    other, _ = run(_options(tmp_path / "other", data_dir), tiny_llama)
    first, second = _files(clean), _files(other.path)
    assert first.pop("timing.json") != second.pop("timing.json")
    assert first == second
    assert sorted(first) == [
        "config.json",
        f"{TASK}/case_22775.json",
        f"{TASK}/case_22776.json",
        f"{TASK}/case_22777.json",
        f"{TASK}/samples.jsonl",
        "summary.csv",
        "summary.json",
        "summary.md",
    ]
    config, summary = (json.loads(first[name]) for name in ("config.json", "summary.json"))
    assert not {"argv", "started"} & set(config) and "seconds" not in summary
    timing = RunDir(clean).timing
    assert timing["seconds"] >= 0 and timing["started"] and timing["argv"]


def test_damaged_case_summary_and_cache_are_recomputed_to_the_clean_results(
    clean, tiny_llama, data_dir, tmp_path, monkeypatch, capsys
):
    options = _options(tmp_path / "damaged", data_dir)
    run_dir = run(options, tiny_llama)[0].path
    damaged_case = run_dir / TASK / "case_22776.json"
    damaged_case.write_bytes(damaged_case.read_bytes()[:1000])
    summary = run_dir / "summary.json"
    summary.write_text(summary.read_text().replace('"n_cases": 3', '"n_cases": 4'))
    cached = next((options.cache / "prescores").rglob("case_22777.json"))
    cached.write_bytes(cached.read_bytes()[:-50])
    capsys.readouterr()
    calls = _scoring_calls(monkeypatch)

    resumed, _ = run(options, tiny_llama)
    assert resumed.path == run_dir  # the damaged summary made the run unfinished, so it resumed
    assert calls == [  # only what was damaged
        f"{TASK}: pre-edit scores, cases 1-1 of 1",
        f"{TASK}: post-edit scores, chunk 2/3, cases 1-1 of 1",
    ]
    err = capsys.readouterr().err
    assert f"warning: {summary}: the content does not match its content_sha256" in err
    assert f"warning: {damaged_case}: not valid JSON" in err and "its chunk is done again" in err
    assert f"warning: {cached}: not valid JSON" in err and "scoring the case again" in err
    repaired, reference = _files(run_dir), _files(clean)
    assert len(json.loads(repaired.pop("timing.json"))["attempts"]) == 2
    reference.pop("timing.json")
    assert repaired == reference
    assert json.loads(cached.read_text())["content_sha256"]  # the cache entry is whole again


def test_a_case_file_damaged_after_the_run_finished_is_redone_by_the_same_command(
    clean, tiny_llama, data_dir, tmp_path, monkeypatch, capsys
):
    """summary.json lists the case files' sha256: damage to one, after the run finished, makes the run unfinished,
    and the same command redoes that case's chunk alone, to the clean run's files."""
    options = _options(tmp_path / "finished", data_dir)
    run_dir = run(options, tiny_llama)[0].path
    assert f"{TASK}/case_22776.json" in json.loads((run_dir / "summary.json").read_text())["files"]
    damaged_case = run_dir / TASK / "case_22776.json"
    damaged_case.write_bytes(damaged_case.read_bytes()[:-100])
    assert not RunDir(run_dir).finished
    capsys.readouterr()
    calls = _scoring_calls(monkeypatch)

    resumed, _ = run(options, tiny_llama)
    assert resumed.path == run_dir
    assert calls == [f"{TASK}: post-edit scores, chunk 2/3, cases 1-1 of 1"]  # pre-edit scores from the cache
    assert f"warning: {damaged_case}: missing, or the content does not match its sha256 in summary.json" in (
        capsys.readouterr().err
    )
    repaired, reference = _files(run_dir), _files(clean)
    repaired.pop("timing.json"), reference.pop("timing.json")
    assert repaired == reference


def test_another_cases_intact_file_copied_over_a_case_file_is_redone(
    clean, tiny_llama, data_dir, tmp_path, monkeypatch, capsys
):
    """In an unfinished run (no summary.json to list the sha256s) a case file is trusted only if it holds its own
    case: another case's intact file copied over it is reported and its chunk done again, to the clean run's files."""
    options = _options(tmp_path / "swapped", data_dir)
    run_dir = run(options, tiny_llama)[0].path
    (run_dir / "summary.json").unlink()
    swapped = run_dir / TASK / "case_22776.json"
    swapped.write_bytes((run_dir / TASK / "case_22777.json").read_bytes())
    capsys.readouterr()
    calls = _scoring_calls(monkeypatch)

    resumed, _ = run(options, tiny_llama)
    assert resumed.path == run_dir
    assert calls == [f"{TASK}: post-edit scores, chunk 2/3, cases 1-1 of 1"]
    assert f"warning: {swapped}: holds case 22777, not 22776; its chunk is done again" in capsys.readouterr().err
    repaired, reference = _files(run_dir), _files(clean)
    repaired.pop("timing.json"), reference.pop("timing.json")
    assert repaired == reference


def test_a_model_with_the_same_weights_but_another_config_is_scored_anew(tiny_llama, data_dir, tmp_path, monkeypatch):
    """The rotary base lives in the config and in buffers that state_dict leaves out: the weights' fingerprint is
    the same, so only the config in the cache key keeps the first model's pre-edit scores from being served."""
    config = copy.deepcopy(tiny_llama.model.config)
    config.rope_parameters = {**config.rope_parameters, "rope_theta": 100.0}
    other_model = type(tiny_llama.model)(config).eval().requires_grad_(False)
    other_model.load_state_dict(tiny_llama.model.state_dict())
    other = dataclasses.replace(tiny_llama, model=other_model, _fingerprints={})
    assert other.weights_fingerprint() == tiny_llama.weights_fingerprint()
    assert other.config_fingerprint != tiny_llama.config_fingerprint
    options = dataclasses.replace(_options(tmp_path, data_dir), editor="none", hparams=[], limit=1, num_edits=None)
    first = run(options, tiny_llama)[1]["tasks"][TASK]["probe_delta"]["d_pre"]
    calls = _scoring_calls(monkeypatch)
    second = run(dataclasses.replace(options, resume=False), other)[1]["tasks"][TASK]["probe_delta"]["d_pre"]
    assert any("pre-edit" in (desc or "") for desc in calls) and second != first


@pytest.mark.parametrize("stage", ["pre-edit", "post-edit"])
def test_a_stop_while_scoring_keeps_the_rounds_scored_and_the_rerun_ends_as_a_clean_run(
    stage, tiny_llama, data_dir, tmp_path, monkeypatch
):
    """Scoring goes in rounds of SCORING_ROUND cases, each kept as soon as it is scored (pre-edit: in the cache;
    post-edit: as case files). Stopped in its second round, a run of 4 cases edited in one batch keeps the first
    round's 2 cases; the rerun scores only the other 2 and ends with the files, byte for byte, of a run that was
    never stopped and scored all 4 in one round (the gender pair task: its cases share probes, so the rounds
    touch the same groups)."""
    pair = "seesaw_cf_P21_P101"

    def options(name: str) -> RunOptions:
        return dataclasses.replace(_options(tmp_path / name, data_dir), tasks=[pair], limit=4, num_edits=None)

    clean_dir = run(options("clean"), tiny_llama)[0].path  # SCORING_ROUND 8: one round
    stopped = options("stopped")
    run_dir = _stopped_in_the_second_round(stopped, stage, tiny_llama, monkeypatch)
    kept = sorted(p.name for p in (run_dir / pair).glob("case_*.json"))
    cached = sorted(p.name for p in (stopped.cache / "prescores").rglob("case_*.json"))
    first_two = [f"case_{r['case_id']}.json" for r in json.loads((data_dir / f"{pair}.json").read_text())[:2]]
    edit_files = sorted(p.name for p in (run_dir / pair).glob("edit_*"))
    if stage == "pre-edit":
        assert kept == [] and cached == sorted(first_two) and edit_files == []
    else:  # the batch's edit is kept while its cases are scored
        assert kept == sorted(first_two) and len(cached) == 4
        assert edit_files == ["edit_chunk_0.pt", "edit_chunk_0.pt.sha256"]

    calls: list[str] = []
    original = Scorer.score
    monkeypatch.setattr(
        Scorer, "score", lambda self, requests, desc=None: calls.append(desc) or original(self, requests, desc)
    )
    edits = _edit_calls(monkeypatch)
    resumed = run(stopped, tiny_llama)[0].path
    assert resumed == run_dir
    assert calls == [f"{pair}: {stage} scores{', chunk 1/1' if stage == 'post-edit' else ''}, cases 1-2 of 2"] + (
        [f"{pair}: post-edit scores, chunk 1/1, cases 1-2 of 4", f"{pair}: post-edit scores, chunk 1/1, cases 3-4 of 4"]
        if stage == "pre-edit"
        else []
    )
    assert edits == ([0] if stage == "pre-edit" else [])  # stopped after the edit: the rerun takes the kept one
    files, reference = _files(resumed), _files(clean_dir)
    files.pop("timing.json"), reference.pop("timing.json")
    assert files == reference  # the kept edit is gone with its chunk scored


def _edit_calls(monkeypatch) -> list[int]:
    """The chunk index of every edit computed (Runner._edit) from now on, in order."""
    calls: list[int] = []
    original = runner.Runner._edit
    monkeypatch.setattr(
        runner.Runner,
        "_edit",
        lambda self, name, chunk, index, *rest: calls.append(index) or original(self, name, chunk, index, *rest),
    )
    return calls


def _stopped_in_the_second_round(options: RunOptions, stage: str, tiny_llama, monkeypatch) -> Path:
    """The run of `options` (4 cases in one batch) stopped in its second `stage` ("pre-edit" or "post-edit")
    scoring round of 2 cases (SCORING_ROUND stays 2 for the rest of the test); its folder."""
    monkeypatch.setattr(runner, "SCORING_ROUND", 2)
    original = Scorer.score

    def stopping(self, requests, desc=None):
        if f": {stage} scores" in desc and desc.endswith("cases 3-4 of 4"):
            raise KeyboardInterrupt
        return original(self, requests, desc)

    with monkeypatch.context() as patch:
        patch.setattr(Scorer, "score", stopping)
        with pytest.raises(KeyboardInterrupt):
            run(options, tiny_llama)
    return options.output / "tiny" / "ft" / "run_001"


def test_a_damaged_kept_edit_is_reported_and_the_chunk_edited_again(
    tiny_llama, data_dir, tmp_path, monkeypatch, capsys
):
    """A kept edit that does not match its checksum file is never applied: one warning line, the edit is computed
    again, and the run ends with the files of a run never stopped."""
    pair = "seesaw_cf_P21_P101"

    def options(name: str) -> RunOptions:
        return dataclasses.replace(_options(tmp_path / name, data_dir), tasks=[pair], limit=4, num_edits=None)

    clean_dir = run(options("clean"), tiny_llama)[0].path
    stopped = options("stopped")
    run_dir = _stopped_in_the_second_round(stopped, "post-edit", tiny_llama, monkeypatch)
    kept = run_dir / pair / "edit_chunk_0.pt"
    data = bytearray(kept.read_bytes())
    data[-200] ^= 1  # one bit of the tensors' bytes
    kept.write_bytes(bytes(data))
    capsys.readouterr()
    edits = _edit_calls(monkeypatch)

    resumed = run(stopped, tiny_llama)[0].path
    assert edits == [0]
    err = capsys.readouterr().err
    assert f"warning: {kept}: missing, or the content does not match its sha256" in err
    assert "the chunk is edited again" in err
    files, reference = _files(resumed), _files(clean_dir)
    files.pop("timing.json"), reference.pop("timing.json")
    assert files == reference


def test_a_disk_too_full_to_keep_the_edit_is_one_warning_and_the_run_goes_on(
    tiny_llama, data_dir, tmp_path, monkeypatch, capsys
):
    """Keeping the edit is a saving, not a result: no room for it (ENOSPC) is a warning and the run finishes."""
    options = dataclasses.replace(_options(tmp_path, data_dir), limit=1)
    original = checksums.write_atomic

    def full(path, data):
        if path.name.startswith("edit_chunk_"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(path, data)

    monkeypatch.setattr(checksums, "write_atomic", full)
    run_dir, summary = run(options, tiny_llama)
    assert summary["tasks"][TASK]["n_cases"] == 1
    edit = run_dir.path / TASK / "edit_chunk_0.pt"
    assert f"warning: no space left to keep {edit} while its cases are scored" in capsys.readouterr().err
    assert not list((run_dir.path / TASK).glob("edit_*"))
