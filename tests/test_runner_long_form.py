"""The runner with a long-form task on tiny random models: texts generated before the edit (cached) and inside the
applied edit, stored in case files and samples.jsonl, the settings recorded, the weights restored, and a second
run giving the same texts from the cache. (The embedded-model end-to-end tests live in test_runner.py.)"""

import json
import textwrap

import pytest

from flextape_bench.generation import TextGenerator
from flextape_bench.runner import RunOptions, run
from flextape_bench.tasks import packaged_tasks_dir


@pytest.fixture
def options(tmp_path, data_dir):
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "mine.yaml").write_text(
        textwrap.dedent(f"""\
        include: {packaged_tasks_dir() / "seesaw_cf_P19_P101_longform.yaml"}
        task: mine_longform
        description: two samples of six tokens
        long_form:
          max_new_tokens: 6
          samples: 2
        """)
    )
    return RunOptions(
        model="tiny",
        editor="ft",
        tasks=["mine_longform"],
        limit=2,
        num_edits=1,
        hparams=["num_steps=2", "layers=[1]", "lr=1e-2", "norm_constraint=1e-2"],
        data_dir=data_dir,
        output=tmp_path / "out",
        cache=tmp_path / "cache",
        include_paths=[folder],
    )


def _count_generations(monkeypatch):
    calls = []
    original = TextGenerator.generate
    monkeypatch.setattr(
        TextGenerator,
        "generate",
        lambda self, requests, desc=None: calls.append((desc, len(requests))) or original(self, requests, desc),
    )
    return calls


def test_long_form_task_end_to_end(tiny, options, monkeypatch):
    before = tiny.weights_fingerprint()
    calls = _count_generations(monkeypatch)
    run_dir, summary = run(options, tiny)
    assert tiny.weights_fingerprint() == before
    # pre-edit: both cases at once (2 prompts x 2 samples each); post-edit: one call per chunk of one case
    assert calls == [
        ("mine_longform: pre-edit texts", 8),
        ("mine_longform: post-edit texts, chunk 1/2", 4),
        ("mine_longform: post-edit texts, chunk 2/2", 4),
    ]
    task_dir = run_dir.path / "mine_longform"
    record = json.loads((task_dir / "case_22775.json").read_text())
    assert record["long_form"] == {
        "prompts": ["John James Rickard Macleod's field of work is", "John James Rickard Macleod is"],
        "samples": 2,
    }
    assert [len(t) for t in record["pre"]["texts"]] == [2, 2] == [len(t) for t in record["post"]["texts"]]
    assert record["probes"] == [] and "generation" not in record["pre"]
    values = record["metrics"]["long_form"]
    assert [(t["prompt"], t["sample"]) for t in values["texts"]] == [
        ("{}'s field of work is", 0),
        ("{}'s field of work is", 1),
        ("{} is", 0),
        ("{} is", 1),
    ]
    lines = [json.loads(x) for x in (task_dir / "samples.jsonl").read_text().splitlines()]
    long_form = [x for x in lines if x["kind"] == "long_form"]
    assert len(long_form) == 8 and [x["kind"] for x in lines].count("edit") == 2
    assert long_form[1]["prompt"] == "John James Rickard Macleod's field of work is" and long_form[1]["sample"] == 1
    assert long_form[1]["pre"]["text"] == record["pre"]["texts"][0][1]
    assert set(long_form[1]["post"]) >= {"text", "reflected", "flags", "entropy_2", "distinct_2"}
    task = summary["tasks"]["mine_longform"]
    assert task["long_form"]["n_texts"] == 8 and len(task["long_form"]["prompts"]) == 2
    settings = task["long_form_settings"]
    assert settings["decoding"]["max_new_tokens"] == 6 and settings["samples"] == 2 and settings["seed"] == 0
    assert settings["eos_token_ids"][0] == tiny.tokenizer.eos_token_id
    config = json.loads((run_dir.path / "config.json").read_text())
    assert config["identity"]["long_form"]["mine_longform"]["lexicon_sha256"] == settings["lexicon"]["sha256"]
    assert set(config["long_form_lexicons"]["mine_longform"]["categories"]) == set(settings["lexicon"]["categories"])
    assert "## long_form" in (run_dir.path / "summary.md").read_text()

    calls.clear()
    second, _ = run(options, tiny)
    assert second.path.name == "run_002"
    assert [desc for desc, _ in calls] == [
        "mine_longform: post-edit texts, chunk 1/2",
        "mine_longform: post-edit texts, chunk 2/2",
    ]  # pre-edit texts cached
    again = json.loads((second.path / "mine_longform" / "case_22775.json").read_text())
    assert again["pre"]["texts"] == record["pre"]["texts"] and again["post"]["texts"] == record["post"]["texts"]

    options.seed = 1
    third, _ = run(options, tiny)
    other = json.loads((third.path / "mine_longform" / "case_22775.json").read_text())
    assert other["pre"]["texts"] != record["pre"]["texts"]  # the run seed reaches the sampler


def test_none_editor_gives_the_same_texts_before_and_after(tiny, options):
    options.editor, options.hparams = "none", []
    run_dir, summary = run(options, tiny)
    record = json.loads((run_dir.path / "mine_longform" / "case_22776.json").read_text())
    assert record["pre"]["texts"] == record["post"]["texts"]  # same seeds, same model: same draws
    rates = summary["tasks"]["mine_longform"]["long_form"]
    assert all(r["change"] == 0 for r in rates["flaws"].values()) and rates["reflected"]["change"] == 0
