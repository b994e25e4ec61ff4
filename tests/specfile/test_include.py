"""`include`: deep merge, later includes and the file winning, confinement to the allowed folders, cycles."""

from __future__ import annotations

from pathlib import Path

from flextape_bench.specfile import Located, Problems, include_roots, load_merged, merge


def plain(node: Located):
    if isinstance(node.value, dict):
        return {key: plain(item) for key, item in node.value.items()}
    if isinstance(node.value, list):
        return [plain(item) for item in node.value]
    return node.value


def load(path: Path, *folders: Path) -> tuple[Located, list[str]]:
    problems = Problems()
    merged = load_merged(path.resolve(), include_roots(path, folders), problems, "write something")
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
    (tmp_path / "b.yaml").write_text("include: [a.yaml, gone.yaml]\n")
    _, problems = load(tmp_path / "a.yaml")
    assert [p.split(": ", 2)[2] for p in problems] == [
        "include cycle a.yaml -> b.yaml -> a.yaml; remove one of these includes",
        f"included file {(tmp_path / 'gone.yaml').resolve()} does not exist; fix the path (relative to this file)",
    ]


def test_merge_replaces_anything_but_mappings():
    where = Path("x.yaml")
    base = Located({"a": Located([1], where, 1)}, where, 1)
    over = Located({"a": Located("s", where, 2)}, where, 2)
    assert merge(base, over).value["a"].value == "s"
