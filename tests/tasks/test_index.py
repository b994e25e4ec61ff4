"""The task index: packaged specs, include paths, groups, and the checks that span files."""

from __future__ import annotations

import csv
import re
import textwrap
from pathlib import Path

import pytest

from flextape_bench.errors import UnknownNameError, UserError
from flextape_bench.tasks import TaskIndex, TaskSpecError, packaged_tasks_dir, select_tasks, validate_file

PAIR = [
    "seesaw_cf_P19_P101",
    "seesaw_cf_P19_P21",
    "seesaw_cf_P21_P101",
    "seesaw_cf_P27_P101",
    "seesaw_cf_P27_P19",
    "seesaw_cf_P27_P21",
    "seesaw_cf_P101_P21",
    "seesaw_cf_P101_P27",
]
SINGLE = ["seesaw_cf_P101", "seesaw_cf_P103"]
EFF = [
    "seesaw_cf_P101_eff",
    "seesaw_cf_P103_eff",
    "seesaw_cf_P19_P101_eff",
    "seesaw_cf_P21_P101_eff",
    "seesaw_cf_P27_P101_eff",
]
LONGFORM = [f"{name}_longform" for name in PAIR]
PINNED = "https://raw.githubusercontent.com/ENSCMA2/flextape/1a4da271b89d50505811bf4bf5774a82091da9ea/"
TINY = """\
include: {base}
task: {name}
description: a task of my own
dataset:
  file: mine.json
  url: https://example.org/mine.json
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def tiny_task(folder: Path, name: str, file: str = "mine.yaml") -> Path:
    return write(folder, file, TINY.format(base=packaged_tasks_dir() / "_seesaw_cf_eff.yaml", name=name))


def test_packaged_tasks_and_groups(index: TaskIndex):
    assert packaged_tasks_dir() == Path(__file__).parents[2] / "tasks_yaml"
    assert index.names() == sorted(PAIR + SINGLE + EFF + LONGFORM)
    assert index.groups() == ["all", "seesaw_eff", "seesaw_longform", "seesaw_pair", "seesaw_single"]
    assert index.expand(["all"]) == PAIR + SINGLE  # efficacy-only and long-form variants are opt-in groups
    assert index.expand(["seesaw_longform"]) == LONGFORM
    index.validate_all()


def test_packaged_data_sources_match_the_manifest(index: TaskIndex, data_dir: Path):
    manifest = {row["file"]: row for row in csv.DictReader((data_dir / "MANIFEST.tsv").open(), delimiter="\t")}
    for name in index.names():
        dataset = index.spec(name).dataset
        row = manifest[dataset.file]
        assert dataset.url == PINNED + row["upstream_path"]
        assert dataset.sha256 == (row["sha256"] or None)
        assert all(alt.sha256 == manifest[alt.file]["sha256"] for alt in dataset.alternates)
    assert [alt.file for alt in index.spec("seesaw_cf_P101_P27").dataset.alternates] == [
        "reconstructed/seesaw_cf_P101_P27.json"
    ]


def test_packaged_cross_property_files_match_the_manifest(index: TaskIndex, data_dir: Path):
    manifest = {row["file"]: row for row in csv.DictReader((data_dir / "MANIFEST.tsv").open(), delimiter="\t")}
    seen = set()
    for name in PAIR:
        cross = index.spec(name).cross_property
        tables = [cross.candidates] if cross.candidates.file else []
        for source in [*tables, *cross.true_values]:
            row = manifest[source.file]
            assert source.url == PINNED + row["upstream_path"] and source.sha256 == row["sha256"]
            seen.add(source.file)
    assert {
        "fow.csv",
        "P27_cats.csv",
        "city_to_country.csv",
        "P101_subject_info.json",
        "P103_subject_info.json",
    } <= seen


def test_packaged_gender_orders_and_metrics(index: TaskIndex):
    genders = {name: (index.spec(name).probes.gender if index.spec(name).probes else None) for name in index.names()}
    assert {name for name, gender in genders.items() if gender == "female_first"} == set(PAIR) - {"seesaw_cf_P21_P101"}
    assert genders["seesaw_cf_P21_P101"] == "target_new"
    assert {name for name, gender in genders.items() if gender == "male_first"} == set(SINGLE)
    assert {name for name, gender in genders.items() if gender is None} == set(EFF + LONGFORM)
    assert {index.spec(name).metrics for name in EFF} == {("efficacy",)}
    assert {index.spec(name).metrics for name in SINGLE} == {("efficacy", "probe_delta", "gender_shift")}
    assert {index.spec(name).metrics for name in PAIR} == {
        (
            "efficacy",
            "probe_delta",
            "gender_shift",
            "race_shift",
            "geography_shift",
            "continent_shift",
            "cross_property",
        )
    }
    assert {index.spec(name).metrics for name in LONGFORM} == {("efficacy", "long_form")}
    assert all(index.spec(name).long_form is None for name in PAIR + SINGLE + EFF)


def test_expand_keeps_order_and_drops_duplicates(index: TaskIndex):
    assert index.expand(["seesaw_cf_P103_eff", "seesaw_single", "seesaw_cf_P101", "seesaw_eff"]) == [
        "seesaw_cf_P103_eff",
        "seesaw_cf_P101",
        "seesaw_cf_P103",
        "seesaw_cf_P101_eff",
        "seesaw_cf_P19_P101_eff",
        "seesaw_cf_P21_P101_eff",
        "seesaw_cf_P27_P101_eff",
    ]


def test_unknown_names(index: TaskIndex):
    with pytest.raises(UnknownNameError) as caught:
        index.expand(["seesaw_cf_P19_P101", "seesaw_cf_P19_P102"])
    assert caught.value.name == "seesaw_cf_P19_P102" and "seesaw_pair" in caught.value.known
    with pytest.raises(UnknownNameError):
        index.spec("nope")
    with pytest.raises(UserError, match="'seesaw_single' is a group, not a task"):
        index.spec("seesaw_single")


def test_include_path_adds_tasks_and_groups(tmp_path: Path):
    tiny_task(tmp_path / "nested", "mine")
    write(tmp_path, "_ignored_base.yaml", "task: not a task\n")
    write(
        tmp_path,
        "mine_group.yaml",
        "group: mine_all\ndescription: mine and one more\ntasks: [mine, seesaw_cf_P101_eff]\n",
    )
    index = TaskIndex([tmp_path])
    assert ("mine", "task", "a task of my own") in index.describe()
    assert ("mine_all", "group", "mine and one more") in index.describe()
    assert index.expand(["mine_all"]) == ["mine", "seesaw_cf_P101_eff"]
    assert index.spec("mine").dataset.file == "mine.json"


def test_same_name_twice_names_both_files(tmp_path: Path):
    path = tiny_task(tmp_path, "seesaw_cf_P19_P101")
    with pytest.raises(TaskSpecError) as caught:
        TaskIndex([tmp_path])
    assert str(caught.value.problems[0]) == (
        f"{path}:1: task: the name 'seesaw_cf_P19_P101' is already defined in "
        f"{packaged_tasks_dir() / 'seesaw_cf_P19_P101.yaml'}; rename one of them or leave one folder out"
    )


def test_packaged_folder_given_again_is_not_a_duplicate():
    assert TaskIndex([packaged_tasks_dir()]).names() == TaskIndex().names()


def test_broken_files_are_all_reported(tmp_path: Path):
    path = tiny_task(tmp_path, "a", "a.yaml")
    path.write_text(path.read_text() + "description: again\n")
    write(tmp_path, "b.yaml", "group: b\ndescription: x\ntasks: all\n")
    with pytest.raises(TaskSpecError) as caught:
        TaskIndex([tmp_path])
    assert [(p.file.name, p.line, p.key) for p in caught.value.problems] == [
        ("a.yaml", 7, "description"),
        ("b.yaml", 3, "tasks"),
    ]


def test_missing_include_path():
    with pytest.raises(UserError, match="task folder /no/such/folder does not exist"):
        TaskIndex([Path("/no/such/folder")])


def test_validate_all_finds_unknown_members_and_cycles(tmp_path: Path):
    path = write(tmp_path, "g.yaml", "group: g\ndescription: x\ntasks:\n  - seesaw_cf_P101\n  - seesaw_cf_P101_ef\n")
    with pytest.raises(TaskSpecError) as caught:
        TaskIndex([tmp_path]).validate_all()
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:5: tasks[1]: unknown task or group 'seesaw_cf_P101_ef'; did you mean 'seesaw_cf_P101_eff'?"
    ]
    write(tmp_path, "g.yaml", "group: g\ndescription: x\ntasks: [h]\n")
    cycle = write(tmp_path, "h.yaml", "group: h\ndescription: x\ntasks: [seesaw_eff, g]\n")
    with pytest.raises(TaskSpecError) as caught:
        TaskIndex([tmp_path]).validate_all()
    assert [str(p) for p in caught.value.problems] == [
        f"{cycle}:3: tasks[1]: group cycle g -> h -> g; remove one of these members"
    ]


def test_validate_file(tmp_path: Path, index: TaskIndex):
    for path in sorted(packaged_tasks_dir().rglob("*.yaml")):
        validate_file(path, index)
    group = write(tmp_path, "g.yaml", "group: g\ndescription: x\ntasks: [seesaw_pair, nothing_here]\n")
    validate_file(group)  # alone, a group file is checked as a file
    with pytest.raises(TaskSpecError, match=r"g.yaml:3: tasks\[1\]: unknown task or group 'nothing_here'"):
        validate_file(group, index)
    with pytest.raises(TaskSpecError, match=r"t.yaml:2: descripton: unknown key; did you mean 'description'\?"):
        validate_file(write(tmp_path, "t.yaml", "task: t\ndescripton: x\n"))


def test_globs_match_task_and_group_names(index: TaskIndex):
    assert index.expand(["seesaw_cf_P19_*"]) == [
        "seesaw_cf_P19_P101",
        "seesaw_cf_P19_P101_eff",
        "seesaw_cf_P19_P101_longform",
        "seesaw_cf_P19_P21",
        "seesaw_cf_P19_P21_longform",
    ]
    assert index.expand(["seesaw_sing?e", "seesaw_cf_P10[13]"]) == SINGLE  # a group, then tasks already in it
    with pytest.raises(UserError) as caught:
        index.expand(["seesaw_cf_P91_*"])
    assert str(caught.value).startswith("--tasks 'seesaw_cf_P91_*' matches no task or group; close names: ")
    assert "seesaw_cf_P19_P101" in str(caught.value) and "\n" not in str(caught.value)


def test_a_spec_file_path_adds_its_own_task_and_runs_it(tmp_path: Path):
    folder = tmp_path / "mine"
    path = write(folder, "variant.yaml", "include: seesaw_cf_P19_P101\ntask: variant\n")
    write(folder, "other.yaml", "task: other\n")  # not a complete spec: only the named file is read
    index, names = select_tasks([str(path), "seesaw_cf_P101"])
    assert names == ["variant", "seesaw_cf_P101"] and "other" not in index.names()
    assert index.spec("variant").include_path == (folder,)  # its folder is an include folder, as --include-path's
    group = write(folder, "group.yaml", "group: mine_group\ndescription: x\ntasks: [variant, seesaw_cf_P101]\n")
    assert select_tasks([str(group), str(path)])[1] == ["variant", "seesaw_cf_P101"]


@pytest.mark.parametrize(
    "item, message",
    [
        ("nowhere/x.yaml", "--tasks nowhere/x.yaml: no such file; fix the path"),
        ("_base.yaml", "--tasks {tmp}/_base.yaml: a file whose name starts with _ is an include-only base"),
    ],
)
def test_a_spec_file_path_that_names_no_task_file(tmp_path: Path, item: str, message: str):
    write(tmp_path, "_base.yaml", "metrics: [efficacy]\n")
    target = item if item.startswith("nowhere") else str(tmp_path / item)
    with pytest.raises(UserError, match=re.escape(message.format(tmp=tmp_path))):
        select_tasks([target])
