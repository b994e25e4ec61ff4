from flextape_bench.results import RunDir, open_run, read_json, slug, write_json


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


def test_slug_keeps_hub_ids_readable():
    assert slug("meta-llama/Llama-2-7b-hf") == "meta-llama__Llama-2-7b-hf"
    assert slug("/home/me/models/tiny") == "models__tiny"
    assert slug("gemma3-270m") == "gemma3-270m"
