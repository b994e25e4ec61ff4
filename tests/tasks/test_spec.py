"""The key reference of task and group files in docs/tasks.md, generated from the `spec_field` declarations."""

from __future__ import annotations

from pathlib import Path

from flextape_bench.tasks.spec import TaskSpec, field_reference, field_rows

DOCS = Path(__file__).parents[2] / "docs" / "tasks.md"
START, END = "<!-- field reference: ", "<!-- field reference end -->"


def test_the_key_reference_in_the_docs_is_current():
    text = DOCS.read_text()
    block = text[text.index("-->", text.index(START)) + len("-->") : text.index(END)].strip()
    assert block == field_reference(), f"regenerate the key reference in {DOCS} with the command in its comment"


def test_nested_sections_and_lists_of_sections_are_listed_with_types_and_defaults():
    rows = {key: (type_name, default) for key, type_name, default, _ in field_rows(TaskSpec)}
    assert rows["task"] == ("str", "required")
    assert rows["probes"] == ("mapping or null", "required")
    assert rows["probes.gender"] == ("female_first / male_first / target_new / none", "`none`")
    assert rows["dataset.alternates"] == ("list of mapping", "`[]`")
    assert rows["dataset.alternates[].note"] == ("str", "required")
    assert rows["templates"] == ("mapping", "its defaults")
    assert rows["templates.target"] == ("str", "`{{ target | trim }}`")
    assert rows["long_form.do_sample"] == ("bool", "`true`")
    assert "source" not in rows and "include_path" not in rows  # set by the loader, not written in YAML
