"""Located YAML: every value with its file and line, duplicate keys and anchors refused, no content in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from flextape_bench.specfile import Located, Problem, SpecFileError, as_located, parse_located


def problems_of(path: Path, **kwargs) -> list[str]:
    with pytest.raises(SpecFileError) as caught:
        parse_located(path, **kwargs)
    return [str(p) for p in caught.value.problems]


def test_every_value_keeps_its_file_and_line(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("top: 1\nnested:\n  inner: x\nitems:\n  - a\n  - b: 2\n")
    root = parse_located(path)
    assert (root.file, root.line) == (path.resolve(), 1)
    nested, items = root.value["nested"], root.value["items"]
    assert (nested.value["inner"].value, nested.value["inner"].line) == ("x", 3)
    assert [item.line for item in items.value] == [5, 6]
    assert items.value[1].value["b"] == Located(2, path.resolve(), 6)


def test_duplicate_keys_anchors_and_non_mappings_are_problems(tmp_path):
    duplicate = tmp_path / "d.yaml"
    duplicate.write_text("a:\n  b: 1\n  b: 2\n")
    assert problems_of(duplicate) == [f"{duplicate}:3: a.b: duplicate key (first written at line 2); keep one"]
    alias = tmp_path / "al.yaml"
    alias.write_text("a: &x secret\nb: *x\n")
    assert problems_of(alias) == [
        f"{alias}:1: (top level): YAML anchors (&name) and aliases (*name) are not allowed; write each value out"
    ]
    listed = tmp_path / "l.yaml"
    listed.write_text("- secret\n")
    assert problems_of(listed) == [f"{listed}:1: (top level): the file must be a mapping of keys to values, not a list"]


def test_syntax_errors_name_the_line_without_quoting_the_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("a: 1\nb: [secret\n")
    (found,) = problems_of(path)
    assert found.startswith(f"{path}:3: (top level): YAML syntax error") and "secret" not in found


def test_an_empty_file_says_what_it_should_hold(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("# nothing\n")
    assert problems_of(path, empty="write a `categories:` mapping") == [
        f"{path}:1: (top level): the file is empty; write a `categories:` mapping"
    ]


def test_error_counts_several_problems_and_sorts_them():
    one, two = Problem(Path("b.yaml"), 2, "x", "bad"), Problem(Path("a.yaml"), 9, "y", "worse")
    assert str(SpecFileError([one])) == "b.yaml:2: x: bad"
    assert str(SpecFileError([one, two])).splitlines() == [
        "2 problems in a.yaml, b.yaml:",
        "a.yaml:9: y: worse",
        "b.yaml:2: x: bad",
    ]


def test_values_from_elsewhere_are_located_throughout():
    where = Path("--flag")
    node = as_located({"a": [1, [2]]}, where, 0)
    assert node.value["a"].value[1].value[0] == Located(2, where, 0)
