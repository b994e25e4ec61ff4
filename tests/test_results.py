import json

from flextape_bench.checksums import read_json, write_json
from flextape_bench.results import RunDir, _new_run, open_run, slug
from flextape_bench.tables import write_summary


def test_write_json_is_atomic_and_leaves_no_temporaries(tmp_path):
    write_json(tmp_path / "a" / "x.json", {"k": 1})
    assert read_json(tmp_path / "a" / "x.json") == {"k": 1}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]


def test_open_run_resumes_only_an_unfinished_identical_run(tmp_path):
    ident = {"model": "m", "seed": 0}
    run1, resumed = open_run(tmp_path, "org/model", "ft", ident, {})
    assert run1.path.name == "run_001" and not resumed
    again, resumed = open_run(tmp_path, "org/model", "ft", ident, {})
    assert again.path == run1.path and resumed
    other, resumed = open_run(tmp_path, "org/model", "ft", {"model": "m", "seed": 1}, {})
    assert other.path.name == "run_002" and not resumed
    write_json(other.path / "summary.json", {})
    third, resumed = open_run(tmp_path, "org/model", "ft", {"model": "m", "seed": 1}, {})
    assert third.path.name == "run_003" and not resumed
    assert RunDir(third.path).config["identity"] == {"model": "m", "seed": 1}


def test_a_run_directory_never_exists_without_its_config(tmp_path):
    parent = tmp_path / "m" / "e"
    parent.mkdir(parents=True)
    (parent / "run_001").mkdir()
    (parent / "run_001" / "config.json").write_text("{}")  # another process's run took the number
    assert _new_run(parent, 1, {"identity": {}}).name == "run_002"
    assert sorted(p.name for p in parent.iterdir()) == ["run_001", "run_002"]  # the staging folder was renamed
    assert read_json(parent / "run_002" / "config.json") == {"identity": {}}


def test_damaged_config_or_summary(tmp_path, capsys):
    ident = {"model": "m"}
    run, _ = open_run(tmp_path, "m", "e", ident, {})
    (run.path / "config.json").write_text(json.dumps({"identity": ident}))  # valid JSON, but no checksum
    fresh, resumed = open_run(tmp_path, "m", "e", ident, {})
    assert fresh.path.name == "run_002" and not resumed
    assert f"warning: {run.path / 'config.json'}: no content_sha256" in capsys.readouterr().err
    write_summary(fresh.path, {"model": "m", "editor": "e", "run": "run_002", "tasks": {}})
    assert fresh.finished
    summary = fresh.path / "summary.json"
    summary.write_bytes(summary.read_bytes()[:-10])  # a damaged summary: the run is unfinished and resumes
    assert not fresh.finished
    again, resumed = open_run(tmp_path, "m", "e", ident, {})
    assert again.path == fresh.path and resumed
    assert f"warning: {summary}: not valid JSON" in capsys.readouterr().err


def test_a_finished_run_needs_every_file_its_summary_lists(tmp_path, capsys):
    run = RunDir(tmp_path / "run_001")
    run.write_samples("t", iter([{"case_id": 1}]))
    write_summary(run.path, {"model": "m", "editor": "e", "run": "run_001", "tasks": {}}, run.digests)
    assert sorted(read_json(run.path / "summary.json")["files"]) == ["summary.csv", "summary.md", "t/samples.jsonl"]
    assert run.finished
    (run.path / "t" / "samples.jsonl").write_text('{"case_id": 2}\n')
    assert not run.finished
    assert f"warning: {run.path / 't' / 'samples.jsonl'}: missing, or the content does not match its sha256 in " \
           "summary.json; the run counts as unfinished" in capsys.readouterr().err


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
