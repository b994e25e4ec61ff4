"""`include`: deep merge, later includes and the file winning, the search order (next to the file, the folders,
names), confinement to the allowed folders, cycles."""

from __future__ import annotations

from pathlib import Path

from flextape_bench.specfile import Located, Problems, load_merged, merge
from flextape_bench.specfile.include import IncludeSearch


def plain(node: Located):
    if isinstance(node.value, dict):
        return {key: plain(item) for key, item in node.value.items()}
    if isinstance(node.value, list):
        return [plain(item) for item in node.value]
    return node.value


def load(path: Path, *folders: Path, named: dict[str, Path] | None = None) -> tuple[Located, list[str]]:
    problems = Problems()
    merged = load_merged(path.resolve(), IncludeSearch.of(path, folders, named), problems, "write something")
    return merged or Located(None, path, 0), [str(p) for p in problems]


def test_bases_deep_merge_and_the_file_wins(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "one.yaml").write_text("a: {x: 1, y: 1}\nlist: [1, 2]\n")
    (tmp_path / "two.yaml").write_text("a: {y: 2, z: 2}\n")
    main = tmp_path / "main.yaml"
    main.write_text("include: [sub/one.yaml, two.yaml]\na: {z: 3}\nlist: [9]\n")
    merged, problems = load(main)
    assert problems == []
    assert plain(merged) == {"a": {"x": 1, "y": 2, "z": 3}, "list": [9]}
    assert merged.value["a"].value["x"].file == (tmp_path / "sub" / "one.yaml").resolve()  # errors point into bases


def test_includes_outside_the_allowed_folders_are_refused_before_reading(tmp_path):
    outside, inside = tmp_path / "outside", tmp_path / "inside"
    outside.mkdir()
    inside.mkdir()
    (outside / "secret.yaml").write_text("a: secret\n")
    main = inside / "main.yaml"
    main.write_text("include: ../outside/secret.yaml\nb: 1\n")
    merged, problems = load(main)
    assert len(problems) == 1 and "is outside the folders a task file may include from" in problems[0]
    assert problems[0].startswith(f"{main.resolve()}:1: include: ") and "secret'" not in problems[0]
    merged, problems = load(main, outside)  # an allowed folder (--include-path)
    assert problems == [] and plain(merged) == {"a": "secret", "b": 1}


def test_include_cycles_and_missing_files(tmp_path):
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: [a.yaml, b.yml]\n")
    _, problems = load(tmp_path / "a.yaml")
    assert [p.split(": ", 2)[2] for p in problems] == [
        "include cycle a.yaml -> b.yaml -> a.yaml; remove one of these includes",
        "'b.yml' names no file next to this file; did you mean 'b.yaml'?",
    ]


def test_merge_replaces_anything_but_mappings():
    where = Path("x.yaml")
    base = Located({"a": Located([1], where, 1)}, where, 1)
    over = Located({"a": Located("s", where, 2)}, where, 2)
    assert merge(base, over).value["a"].value == "s"


def test_a_name_is_looked_up_next_to_the_file_then_in_the_folders_in_order_then_by_name(tmp_path):
    own, first, second = tmp_path / "own", tmp_path / "first", tmp_path / "second"
    for folder, value in ((own, "own"), (first, "first"), (second, "second")):
        folder.mkdir()
        (folder / "_base.yaml").write_text(f"from: {value}\n")
    (second / "_only_second.yaml").write_text("from: second\n")
    (second / "defines_t.yaml").write_text("from: the file of t\n")
    main = own / "main.yaml"
    main.write_text("include: _base.yaml\n")
    assert plain(load(main, first, second)[0]) == {"from": "own"}
    (own / "_base.yaml").unlink()
    assert plain(load(main, first, second)[0]) == {"from": "first"}
    assert plain(load(main, second, first)[0]) == {"from": "second"}
    main.write_text("include: [_only_second.yaml, t]\n")
    merged, problems = load(main, first, second, named={"t": second / "defines_t.yaml"})
    assert problems == [] and plain(merged) == {"from": "the file of t"}
    _, problems = load(main, first, second)
    assert problems == [
        f"{main.resolve()}:1: include[1]: 't' names no file next to this file or in {first.resolve()}, "
        f"{second.resolve()}; give a path relative to this file or a file name there"
    ]


def test_a_base_found_in_a_folder_looks_for_its_own_includes_next_to_itself_first(tmp_path):
    own, bases = tmp_path / "own", tmp_path / "bases"
    own.mkdir()
    bases.mkdir()
    (own / "_common.yaml").write_text("from: own\n")
    (bases / "_common.yaml").write_text("from: bases\n")
    (bases / "_base.yaml").write_text("include: _common.yaml\n")
    (own / "main.yaml").write_text("include: _base.yaml\n")
    assert plain(load(own / "main.yaml", bases)[0]) == {"from": "bases"}
