"""Loading task YAML: include merging, and every problem reported with its file, key and line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flextape_bench.specfile import parse_located
from flextape_bench.tasks import GroupSpec, LongForm, TaskSpecError, load_spec, load_task, packaged_tasks_dir
from flextape_bench.tasks.loader import check_base, locate

PACKAGED = packaged_tasks_dir()

FIELDS = """\
fields:
  case_id: case_id
  prompt: requested_rewrite.prompt
  subject: requested_rewrite.subject
  relation: requested_rewrite.relation_id
  target_true: requested_rewrite.target_true.str
  target_true_id: requested_rewrite.target_true.id
  target_new: requested_rewrite.target_new.str
  target_new_id: requested_rewrite.target_new.id
"""
TASK = """\
task: tiny
description: a tiny task
dataset:
  file: tiny.json
  url: https://example.org/tiny.json
probes: null
metrics: [efficacy]
"""
TINY_EFF = """\
include: _seesaw_cf_eff.yaml
task: mine
description: a task of my own
dataset:
  file: mine.json
  url: https://example.org/mine.json
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(TaskSpecError) as caught:
        load_spec(path)
    return [str(p) for p in caught.value.problems]


def test_packaged_task_merges_its_bases():
    spec = load_task(PACKAGED / "seesaw_cf_P21_P101.yaml")
    assert spec.task == "seesaw_cf_P21_P101"
    assert spec.probes is not None
    # gender from the task file, the other probe keys from _seesaw_cf_pair.yaml, fields from _seesaw_cf.yaml
    assert (spec.probes.gender, spec.probes.ids, spec.probes.names) == (
        "target_new",
        "attribute_aux_info",
        "attribute_aux_ent",
    )
    assert spec.fields.target_new == "requested_rewrite.target_new.str"
    assert spec.templates.target == "{{ target | trim }}"
    assert spec.metrics == (
        "efficacy",
        "probe_delta",
        "gender_shift",
        "race_shift",
        "geography_shift",
        "continent_shift",
        "cross_property",
    )
    assert spec.dataset.sha256 == "e9a8631fa04684fefa1f0daea70a5ed5ea9f98c17320663e2b099019551d788a"
    assert spec.source == PACKAGED / "seesaw_cf_P21_P101.yaml"


def test_eff_task_replaces_probes_with_null():
    spec = load_task(PACKAGED / "seesaw_cf_P19_P101_eff.yaml")
    assert spec.probes is None and spec.fields.generation_prompts is None and spec.metrics == ("efficacy",)


def test_spec_hash_follows_content_not_location(tmp_path: Path):
    first = load_task(write(tmp_path, "a.yaml", FIELDS + TASK))
    moved = load_task(write(tmp_path, "b.yaml", FIELDS + TASK))
    changed = load_task(write(tmp_path, "c.yaml", FIELDS + TASK.replace("tiny.json", "other.json")))
    assert re.fullmatch(r"[0-9a-f]{64}", first.spec_hash)
    assert first.spec_hash == moved.spec_hash != changed.spec_hash


def test_unknown_key_suggests_the_closest(tmp_path: Path):
    path = write(tmp_path, "t.yaml", FIELDS + TASK.replace("  url:", "  fiel: x\n  url:"))
    assert problems_of(path) == [f"{path}:14: dataset.fiel: unknown key; did you mean 'file'?"]


def test_duplicate_key_names_both_lines(tmp_path: Path):
    path = write(tmp_path, "t.yaml", FIELDS + TASK + "description: again\n")
    assert problems_of(path) == [f"{path}:17: description: duplicate key (first written at line 11); keep one"]


def test_every_problem_of_a_file_in_one_error(tmp_path: Path):
    text = FIELDS.replace("  subject: requested_rewrite.subject\n", "") + TASK.replace(
        "description: a tiny task", "description: 12"
    ).replace("url: https://example.org/tiny.json", "url: ftp://example.org/tiny.json").replace(
        "probes: null", "probes:\n  prompts: attribute_prompts\n  gender: female_frist"
    )
    path = write(tmp_path, "t.yaml", text)
    assert problems_of(path) == [
        f"{path}:1: fields.subject: required key missing; add `subject:` (path of the edited subject)",
        f"{path}:10: description: expected a string, got the int 12; put it in quotes",
        f"{path}:13: dataset.url: 'ftp://example.org/tiny.json' is not an http(s):// or file:// URL; "
        "give the full download address",
        f"{path}:16: probes.gender: the string 'female_frist' is not one of female_first, male_first, target_new, "
        "none; did you mean 'female_first'?",
    ]


def test_a_file_url_without_a_sha256_is_refused(tmp_path: Path):
    """A file:// URL copies a local file into the cache and on into the results: only a file pinned by sha256."""
    text = FIELDS + TASK.replace("url: https://example.org/tiny.json", "url: file:///home/someone/.ssh/id_rsa")
    path = write(tmp_path, "t.yaml", text)
    assert problems_of(path) == [
        f"{path}:12: dataset.sha256: a file:// url is copied only with the file's sha256 (a task file may not read "
        "just any local file); add `sha256:` from `sha256sum FILE`, or give the file's http(s) download address"
    ]
    pinned = TASK.replace(
        "url: https://example.org/tiny.json", f"url: file://{tmp_path}/tiny.json\n  sha256: {'ab' * 32}"
    )
    assert load_task(write(tmp_path, "u.yaml", FIELDS + pinned)).dataset.sha256 == "ab" * 32


def test_wrong_container_type(tmp_path: Path):
    path = write(tmp_path, "t.yaml", FIELDS + TASK.replace("metrics: [efficacy]", "metrics: efficacy"))
    assert problems_of(path) == [
        f"{path}:16: metrics: expected a list, got the string 'efficacy'; write `[a, b]` or one `- item` per line"
    ]


def test_block_gender_order_needs_probe_ids(tmp_path: Path):
    path = write(
        tmp_path,
        "t.yaml",
        FIELDS + TASK.replace("probes: null", "probes:\n  prompts: attribute_prompts\n  gender: female_first"),
    )
    assert problems_of(path) == [
        f"{path}:17: probes.gender: 'female_first' recovers the gender boundary from probe ids; set `ids` too"
    ]


def test_template_syntax_error_names_key_and_line(tmp_path: Path):
    path = write(tmp_path, "t.yaml", FIELDS + TASK + "templates:\n  prompt: |\n    Q: {{ prompt }}\n    {% if %}\n")
    assert problems_of(path) == [
        f"{path}:18: templates.prompt: template syntax error at template line 2: "
        "Expected an expression, got 'end of statement block'; fix the Jinja2 syntax"
    ]


def test_template_with_an_undefined_variable(tmp_path: Path):
    path = write(tmp_path, "t.yaml", FIELDS + TASK + "templates:\n  target: '{{ targt }}'\n")
    assert problems_of(path) == [
        f"{path}:18: templates.target: template uses undefined variable(s) targt; the only variable here is 'target'"
    ]


def test_unknown_metric_names_the_known_ones(tmp_path: Path):
    path = write(tmp_path, "t.yaml", FIELDS + TASK.replace("[efficacy]", "[efficacy, efficasy]"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:16: metrics[1]: unknown metric 'efficasy'; known metrics: ")
    assert "efficacy" in problem


def test_yaml_syntax_error_has_its_line(tmp_path: Path):
    path = write(tmp_path, "t.yaml", FIELDS + TASK + "templates: [unclosed\n")
    assert problems_of(path) == [
        f"{path}:18: (top level): YAML syntax error: while parsing a flow sequence "
        "(line 17): expected ',' or ']', but got '<stream end>'; close every quote and "
        "bracket, and indent with spaces (not tabs)"
    ]


def test_file_needs_task_or_group(tmp_path: Path):
    assert problems_of(write(tmp_path, "empty.yaml", "")) == [
        f"{tmp_path / 'empty.yaml'}:1: (top level): the file is empty; write a `task:` or `group:` mapping"
    ]
    assert problems_of(write(tmp_path, "none.yaml", "description: x\n")) == [
        f"{tmp_path / 'none.yaml'}:1: (top level): a spec file needs exactly one of `task: NAME` or `group: NAME`"
    ]


def test_group_file(tmp_path: Path):
    spec = load_spec(write(tmp_path, "g.yaml", "group: mine\ndescription: two\ntasks: [a, b]\n"))
    assert spec == GroupSpec(group="mine", description="two", tasks=("a", "b"), source=tmp_path / "g.yaml")
    with pytest.raises(TaskSpecError, match="defines a group"):
        load_task(tmp_path / "g.yaml")
    assert problems_of(write(tmp_path, "e.yaml", "group: e\ndescription: none\ntasks: []\n")) == [
        f"{tmp_path / 'e.yaml'}:3: tasks: the list is empty; name at least one"
    ]


def test_include_deep_merges(tmp_path: Path):
    write(
        tmp_path, "_first.yaml", FIELDS + "metrics: [efficacy, probe_delta]\ntemplates:\n  prompt: 'A {{ prompt }}'\n"
    )
    write(tmp_path, "_second.yaml", "templates:\n  prompt: 'B {{ prompt }}'\n  target: '{{ target }}'\n")
    path = write(
        tmp_path,
        "t.yaml",
        "include: [_first.yaml, _second.yaml]\n"
        + TASK.replace("probes: null", "probes: null\nfields:\n  generation_prompts: generation_prompts"),
    )
    spec = load_task(path)
    assert spec.metrics == ("efficacy",)  # lists are replaced, the including file wins
    assert (spec.templates.prompt, spec.templates.target) == ("B {{ prompt }}", "{{ target }}")  # later include wins
    assert (spec.fields.case_id, spec.fields.generation_prompts) == ("case_id", "generation_prompts")  # dicts merge


def test_diamond_include(tmp_path: Path):
    write(tmp_path, "_root.yaml", FIELDS)
    write(tmp_path, "_left.yaml", "include: _root.yaml\ntemplates:\n  prompt: 'L {{ prompt }}'\n")
    write(tmp_path, "_right.yaml", "include: _root.yaml\nmetrics: [probe_delta]\n")
    spec = load_task(write(tmp_path, "t.yaml", "include: [_left.yaml, _right.yaml]\n" + TASK))
    assert (spec.fields.subject, spec.templates.prompt) == ("requested_rewrite.subject", "L {{ prompt }}")


def test_include_cycle_names_the_chain(tmp_path: Path):
    write(tmp_path, "_a.yaml", "include: _b.yaml\n")
    write(tmp_path, "_b.yaml", "description: x\ninclude: _a.yaml\n")
    path = write(tmp_path, "t.yaml", "include: _a.yaml\n" + FIELDS + TASK)
    assert problems_of(path) == [
        f"{tmp_path / '_b.yaml'}:2: include: include cycle t.yaml -> _a.yaml -> _b.yaml "
        "-> _a.yaml; remove one of these includes"
    ]


def test_missing_include_is_not_echoed_as_missing_keys(tmp_path: Path):
    path = write(tmp_path, "t.yaml", "include: _nowhere.yaml\n" + TASK)
    assert problems_of(path) == [
        f"{path}:1: include: '_nowhere.yaml' names no file next to this file or in {PACKAGED}, nor a packaged "
        "task; give a path relative to this file, a file name in those folders or a packaged task's name"
    ]


def test_problem_in_a_base_points_into_the_base(tmp_path: Path):
    write(tmp_path, "_base.yaml", FIELDS + "probes:\n  prompts: attribute_prompts\n  idz: attribute_aux_info\n")
    path = write(tmp_path, "t.yaml", "include: _base.yaml\n" + TASK.replace("probes: null\n", ""))
    assert problems_of(path) == [f"{tmp_path / '_base.yaml'}:12: probes.idz: unknown key; did you mean 'ids'?"]
    assert locate(path, ["probes", "prompts"]) == (tmp_path / "_base.yaml", 11)


def test_user_task_can_include_a_packaged_base(tmp_path: Path):
    path = write(
        tmp_path,
        "t.yaml",
        f"include: {PACKAGED / '_seesaw_cf_pair.yaml'}\n"
        + TASK.replace("probes: null\n", "").replace("metrics: [efficacy]\n", ""),
    )
    spec = load_task(path)
    assert spec.probes is not None and spec.probes.gender == "female_first"


def test_includes_stay_in_the_spec_folder_the_include_path_and_the_packaged_specs(tmp_path: Path):
    (tmp_path / "tasks" / "bases").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    write(tmp_path, "tasks/bases/_fields.yaml", f"include: {PACKAGED / '_seesaw_cf.yaml'}\n")  # packaged: allowed
    write(tmp_path, "shared/_probes.yaml", "probes: null\nmetrics: [efficacy]\n")
    path = write(
        tmp_path,
        "tasks/t.yaml",
        "include: [bases/_fields.yaml, ../shared/_probes.yaml]\n"
        + TASK.replace("probes: null\nmetrics: [efficacy]\n", ""),
    )
    assert problems_of(path) == [
        f"{path}:1: include[1]: {tmp_path / 'shared/_probes.yaml'} is outside the folders a task file may include "
        f"from ({tmp_path / 'tasks'}, {PACKAGED}); move it into one of them or add its folder with --include-path"
    ]
    spec = load_task(path, [tmp_path / "shared"])
    assert (spec.fields.subject, spec.metrics) == ("requested_rewrite.subject", ("efficacy",))
    assert spec.include_path == (tmp_path / "shared",)
    assert locate(spec.source, ["metrics"], spec.include_path) == (tmp_path / "shared/_probes.yaml", 2)


def test_a_file_that_is_not_a_mapping_is_not_quoted(tmp_path: Path):
    path = write(tmp_path, "t.yaml", "hf_SECRETTOKEN123\n")
    assert problems_of(path) == [
        f"{path}:1: (top level): the file must be a mapping of keys to values, not a single value"
    ]


def test_anchors_and_aliases_are_refused_in_any_yaml_file(tmp_path: Path):
    path = write(tmp_path, "lexicon.yaml", "version: 1\ncategories:\n  a: {terms: [x]}\n  b: *a\n")
    with pytest.raises(TaskSpecError) as caught:
        parse_located(path)  # the lexicon reader
    assert str(caught.value) == (
        f"{path}:4: (top level): YAML anchors (&name) and aliases (*name) are not allowed; write each value out"
    )


def test_base_check_skips_required_keys(tmp_path: Path):
    check_base(PACKAGED / "_seesaw_cf_pair.yaml")
    with pytest.raises(TaskSpecError, match=r"_b.yaml:2: fields.subjet: unknown key; did you mean 'subject'\?"):
        check_base(write(tmp_path, "_b.yaml", "fields:\n  subjet: x\n"))


CROSS_TASK = (
    FIELDS + "  generation_prompts: generation_prompts\n" + TASK.replace("[efficacy]", "[efficacy, cross_property]")
)  # the section starts at line 18


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "cross_property:\n  property: P21\n  candidates:\n    values: [male, female]\n    file: fow.csv\n",
            [
                "22: cross_property.candidates.file: give either `values` (a literal list) or `file` (a CSV table), not both"
            ],
        ),
        (
            "cross_property:\n  property: P21\n  candidates: {}\n",
            [
                "20: cross_property.candidates.values: give the candidates: `values: [a, b]`, or a CSV `file:` with `url:` "
                "and `value_column:`"
            ],
        ),
        (
            "cross_property:\n  property: P21\n  candidates:\n    values: [male, female]\n    ids: [Q6581097]\n",
            ["22: cross_property.candidates.ids: 1 ids for 2 values; give one QID per value, in the same order"],
        ),
        (
            "cross_property:\n  property: P21\n  candidates:\n    values: [male]\n    value_column: x\n",
            [
                "22: cross_property.candidates.value_column: `value_column` belongs to a CSV `file`; remove it or replace "
                "`values` by `file`"
            ],
        ),
        (
            "cross_property:\n  property: P101\n  candidates:\n    file: fow.csv\n    ids: [Q1]\n",
            [
                "20: cross_property.candidates.url: required key missing; add `url:` (the download URL of `file`, pinned to "
                "a commit)",
                "20: cross_property.candidates.value_column: required key missing; add `value_column:` (the column holding "
                "the candidate string)",
                "22: cross_property.candidates.ids: `ids` belongs to literal `values`; use `id_column` for a CSV file",
            ],
        ),
        (
            "cross_property:\n  property: P27\n  candidates:\n    file: P27_cats.csv\n    url: https://example.org/p.csv\n"
            "    columns: [id, country, id]\n    value_column: name\n    id_column: id\n",
            [
                "23: cross_property.candidates.columns: a column name is given twice; name each column once",
                "24: cross_property.candidates.value_column: 'name' is not one of `columns` (id, country, id)",
            ],
        ),
        (
            "cross_property:\n  property: 101\n  candidates:\n    values: []\n    ids: [male]\n",
            [
                "19: cross_property.property: expected a string, got the int 101; put it in quotes",
                "21: cross_property.candidates.values: the list is empty; name at least one",
                "22: cross_property.candidates.ids[0]: 'male' is not a Wikidata item id like Q6581097",
            ],
        ),
        (
            "cross_property:\n  property: 'P-21'\n  candidates: {values: [male]}\n  true_values:\n    - file: x.json\n"
            "      url: https://example.org/x.json\n      format: subject_infos\n    - file: /abs.json\n      format: edits\n",
            [
                "19: cross_property.property: 'P-21' is not a Wikidata property id like P101",
                "24: cross_property.true_values[0].format: the string 'subject_infos' is not one of subject_info, edits; did "
                "you mean 'subject_info'?",
                "25: cross_property.true_values[1].file: '/abs.json' must be a relative file name inside the data folder "
                "(no leading '/', no '..')",
                "25: cross_property.true_values[1].url: required key missing; add `url:` (download URL, pinned to a commit)",
            ],
        ),
        (
            "cross_property:\n  property: P21\n  candidate: {values: [male]}\n",
            [
                "18: cross_property.candidates: required key missing; add `candidates:` (its candidate answers (see "
                "Candidates))",
                "20: cross_property.candidate: unknown key; did you mean 'candidates'?",
            ],
        ),
        (
            "",
            [
                "17: metrics: the cross_property metric needs a `cross_property:` section (property, candidates); add one "
                "or drop the metric"
            ],
        ),
    ],
)
def test_cross_property_section_problems(tmp_path: Path, section: str, expected: list[str]):
    path = write(tmp_path, "t.yaml", CROSS_TASK + section)
    assert problems_of(path) == [f"{path}:{line}" for line in expected]


def test_cross_property_section_needs_generation_prompts(tmp_path: Path):
    section = "cross_property:\n  property: P21\n  candidates: {values: [male]}\n"
    path = write(tmp_path, "t.yaml", FIELDS + TASK + section)
    assert problems_of(path) == [
        f"{path}:17: cross_property: asks the generation prompts, but "
        "fields.generation_prompts is null; set it or remove the section"
    ]


def test_cross_property_section_loads(tmp_path: Path):
    section = (
        "cross_property:\n  property: P19\n  candidates:\n    file: c.csv\n    url: https://example.org/c.csv\n"
        "    columns: [a, b]\n    value_column: b\n    id_column: a\n  true_values:\n    - file: s.json\n"
        "      url: https://example.org/s.json\n      format: subject_info\n"
    )
    spec = load_task(write(tmp_path, "t.yaml", CROSS_TASK + section))
    cross = spec.cross_property
    assert (cross.property, cross.candidates.columns, cross.candidates.value_column) == ("P19", ("a", "b"), "b")
    assert cross.candidates.dataset.file == "c.csv" and cross.true_values[0].format == "subject_info"
    literal = load_task(
        write(
            tmp_path,
            "u.yaml",
            CROSS_TASK + "cross_property:\n  property: P21\n  candidates:\n    values: [male, female]\n",
        )
    )
    assert literal.cross_property.candidates.values == ("male", "female") and literal.cross_property.true_values == ()
    assert literal.spec_hash != spec.spec_hash


def test_absent_cross_property_section_leaves_the_spec_hash_alone(tmp_path: Path):
    import hashlib
    import json

    from flextape_bench.tasks.spec import _yaml_value

    spec = load_task(write(tmp_path, "a.yaml", FIELDS + TASK))
    explicit = load_task(write(tmp_path, "b.yaml", FIELDS + TASK + "cross_property: null\n"))
    assert "cross_property" not in _yaml_value(spec)  # specs written before the section keep their hash
    text = json.dumps(_yaml_value(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert spec.spec_hash == explicit.spec_hash == hashlib.sha256(text.encode()).hexdigest()


def test_packaged_pair_tasks_have_their_cross_property_section():
    expected = {
        "seesaw_cf_P19_P101": "P101",
        "seesaw_cf_P19_P21": "P21",
        "seesaw_cf_P21_P101": "P101",
        "seesaw_cf_P27_P101": "P101",
        "seesaw_cf_P27_P19": "P19",
        "seesaw_cf_P27_P21": "P21",
        "seesaw_cf_P101_P21": "P21",
        "seesaw_cf_P101_P27": "P27",
    }
    for name, prop in expected.items():
        spec = load_task(PACKAGED / f"{name}.yaml")
        assert spec.cross_property.property == prop and "cross_property" in spec.metrics
        assert [s.format for s in spec.cross_property.true_values] == ["subject_info", "subject_info", "edits"]
    assert load_task(PACKAGED / "seesaw_cf_P19_P21.yaml").cross_property.candidates.ids == ("Q6581097", "Q6581072")
    for base in (
        "_seesaw_cf_pair_P101.yaml",
        "_seesaw_cf_pair_P19.yaml",
        "_seesaw_cf_pair_P21.yaml",
        "_seesaw_cf_pair_P27.yaml",
    ):
        check_base(PACKAGED / base)


LONG_TASK = (
    FIELDS + "  generation_prompts: generation_prompts\n" + TASK.replace("[efficacy]", "[efficacy, long_form]")
)  # the section starts at line 18


def test_long_form_section_takes_defaults(tmp_path: Path):
    spec = load_task(write(tmp_path, "t.yaml", LONG_TASK + "long_form: {}\n"))
    assert spec.long_form == LongForm() and spec.long_form.max_new_tokens == 100
    section = (
        "long_form:\n  prompts: templates\n  templates: ['{} is', 'Tell me about {}.']\n  samples: 3\n"
        "  max_new_tokens: 40\n  do_sample: true\n  temperature: 0.7\n  top_k: 0\n  top_p: 0.9\n"
        "  lexicon: [mine.yaml]\n"
    )
    custom = load_task(write(tmp_path, "u.yaml", LONG_TASK + section)).long_form
    assert custom == LongForm(
        prompts="templates",
        templates=("{} is", "Tell me about {}."),
        samples=3,
        max_new_tokens=40,
        do_sample=True,
        temperature=0.7,
        top_k=0,
        top_p=0.9,
        lexicon=("mine.yaml",),
    )
    assert isinstance(
        load_task(write(tmp_path, "v.yaml", LONG_TASK + "long_form: {temperature: 1}\n")).long_form.temperature, float
    )


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "long_form:\n  samples: '2'\n  max_new_tokens: 1.5\n  do_sample: yes please\n  temperature: 1e-3\n",
            [
                "19: long_form.samples: expected a whole number, got the string '2'; drop the quotes",
                "20: long_form.max_new_tokens: expected a whole number, got the float 1.5",
                "21: long_form.do_sample: expected true or false, got the string 'yes please'",
                "22: long_form.temperature: expected a number, got the string '1e-3'; drop the quotes, and write exponents "
                "with a decimal point (1.0e-3, not 1e-3)",
            ],
        ),
        (
            "long_form:\n  samples: 0\n  temperature: 0\n  top_k: -1\n  top_p: 1.5\n  max_new_tokens: true\n",
            [
                "19: long_form.samples: 0 must be greater than 0",
                "20: long_form.temperature: 0.0 must be greater than 0",
                "21: long_form.top_k: -1 must be 0 (off) or more",
                "22: long_form.top_p: 1.5 must be in (0, 1]; 1.0 turns nucleus sampling off",
                "23: long_form.max_new_tokens: expected a whole number, got the boolean true",
            ],
        ),
        (
            "long_form:\n  prompts: template\n  lexicon: [words.txt]\n",
            [
                "19: long_form.prompts: the string 'template' is not one of generation_prompts, templates; did you mean "
                "'templates'?",
                "20: long_form.lexicon[0]: 'words.txt' is not a lexicon file; name a .yaml file (relative to the file that "
                "names it, or absolute)",
            ],
        ),
        (
            "long_form:\n  prompts: templates\n  do_sample: false\n  samples: 2\n",
            [
                "18: long_form.templates: `prompts: templates` needs the templates, e.g. `templates: ['{} is']`",
                "21: long_form.samples: greedy decoding (do_sample: false) gives the same text every time; set samples: 1 or "
                "do_sample: true",
            ],
        ),
        (
            "long_form:\n  templates: ['{} is', 'no subject', '{} and {}']\n",
            [
                "19: long_form.templates[1]: 'no subject' needs exactly one '{}' where the subject goes, e.g. '{} is'",
                "19: long_form.templates[2]: '{} and {}' needs exactly one '{}' where the subject goes, e.g. '{} is'",
            ],
        ),
        (
            "long_form:\n  templates: ['{} is']\n",
            [
                "19: long_form.templates: `templates` is used only with `prompts: templates`; remove it or set "
                "`prompts: templates`"
            ],
        ),
        ("long_form:\n  sample: 2\n", ["19: long_form.sample: unknown key; did you mean 'samples'?"]),
        (
            "",
            [
                "17: metrics: the long_form metric needs a `long_form:` section (`long_form: {}` takes the defaults); add "
                "one or drop the metric"
            ],
        ),
    ],
)
def test_long_form_section_problems(tmp_path: Path, section: str, expected: list[str]):
    path = write(tmp_path, "t.yaml", LONG_TASK + section)
    assert problems_of(path) == [f"{path}:{line}" for line in expected]


def test_long_form_from_generation_prompts_needs_them(tmp_path: Path):
    path = write(tmp_path, "t.yaml", FIELDS + TASK.replace("[efficacy]", "[efficacy, long_form]") + "long_form: {}\n")
    assert problems_of(path) == [
        f"{path}:17: long_form: generates from the generation prompts, but "
        "fields.generation_prompts is null; set it, or use `prompts: templates`"
    ]
    ok = write(
        tmp_path,
        "u.yaml",
        FIELDS
        + TASK.replace("[efficacy]", "[efficacy, long_form]")
        + "long_form: {prompts: templates, templates: ['{} is']}\n",
    )
    assert load_task(ok).long_form.templates == ("{} is",)


def test_long_form_hash_covers_decoding_but_not_the_lexicon(tmp_path: Path):
    base = load_task(write(tmp_path, "a.yaml", LONG_TASK + "long_form: {}\n"))
    lexicon = load_task(write(tmp_path, "b.yaml", LONG_TASK + "long_form: {lexicon: [mine.yaml]}\n"))
    hotter = load_task(write(tmp_path, "c.yaml", LONG_TASK + "long_form: {temperature: 1.5}\n"))
    assert base.spec_hash == lexicon.spec_hash != hotter.spec_hash
    plain = load_task(write(tmp_path, "d.yaml", FIELDS + TASK))
    explicit = load_task(write(tmp_path, "e.yaml", FIELDS + TASK + "long_form: null\n"))
    assert plain.spec_hash == explicit.spec_hash  # specs without the section keep their hash


def test_packaged_long_form_variants():
    for pair in ("P19_P101", "P19_P21", "P21_P101", "P27_P101", "P27_P19", "P27_P21", "P101_P21", "P101_P27"):
        spec = load_task(PACKAGED / f"seesaw_cf_{pair}_longform.yaml")
        original = load_task(PACKAGED / f"seesaw_cf_{pair}.yaml")
        assert spec.task == f"seesaw_cf_{pair}_longform" and spec.metrics == ("efficacy", "long_form")
        assert spec.long_form == LongForm() and spec.probes is None and spec.cross_property is None
        assert (spec.dataset, spec.fields) == (original.dataset, original.fields)
        assert spec.fields.generation_prompts == "generation_prompts"
    check_base(PACKAGED / "_seesaw_cf_longform.yaml")


def test_metric_options_are_checked_left_out_of_the_hash_and_listed(tmp_path: Path):
    from flextape_bench.tasks.spec import metric_options

    cross = "cross_property:\n  property: P21\n  candidates: {values: [male]}\n"
    default = load_task(write(tmp_path, "a.yaml", CROSS_TASK + cross))
    mean = load_task(write(tmp_path, "b.yaml", CROSS_TASK + cross + "  ranking: mean_nll\n"))
    assert default.cross_property.ranking == "sum_nll" and mean.cross_property.ranking == "mean_nll"
    assert default.spec_hash == mean.spec_hash  # the same scores: cached pre-edit scores are reused
    assert metric_options(default) == {"cross_property.ranking": "sum_nll"}
    assert metric_options(mean) == {"cross_property.ranking": "mean_nll"}
    bad = write(tmp_path, "c.yaml", CROSS_TASK + cross + "  ranking: max_p\n")
    assert problems_of(bad)[0].startswith(
        f"{bad}:21: cross_property.ranking: the string 'max_p' is not one of sum_nll, mean_nll"
    )
    probes = "probes:\n  prompts: attribute_prompts\n  ids: attribute_aux_info\n  gender: male_first\n"
    plain = load_task(write(tmp_path, "d.yaml", FIELDS + TASK.replace("probes: null", probes)))
    prefer = load_task(
        write(tmp_path, "e.yaml", FIELDS + TASK.replace("probes: null", probes + "  gender_wikidata: prefer"))
    )
    assert (plain.probes.gender_wikidata, prefer.probes.gender_wikidata) == ("fallback", "prefer")
    assert plain.spec_hash == prefer.spec_hash and metric_options(prefer) == {"probes.gender_wikidata": "prefer"}
    wrong = write(tmp_path, "f.yaml", FIELDS + TASK.replace("probes: null", probes + "  gender_wikidata: always"))
    assert problems_of(wrong)[0].startswith(
        f"{wrong}:19: probes.gender_wikidata: the string 'always' is not one of prefer, fallback, off"
    )
    assert metric_options(load_task(write(tmp_path, "g.yaml", FIELDS + TASK))) == {}


def test_packaged_gender_sources():
    for name in ("seesaw_cf_P101", "seesaw_cf_P103"):  # block order ambiguous: Wikidata P21 first
        assert load_task(PACKAGED / f"{name}.yaml").probes.gender_wikidata == "prefer"
    for name in ("seesaw_cf_P19_P101", "seesaw_cf_P27_P19", "seesaw_cf_P21_P101"):  # construction order first
        assert load_task(PACKAGED / f"{name}.yaml").probes.gender_wikidata == "fallback"


def test_packaged_specs_are_a_resource_package_in_an_installed_layout(tmp_path: Path):
    """Laid out as a wheel installs it (tasks_yaml/ inside the flextape_bench package, no source tree beside it),
    `importlib.resources.files` gives the specs' folder, and that is where the packaged specs are read."""
    root, site = Path(__file__).parents[2], tmp_path.resolve() / "site"
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(root / "flextape_bench", site / "flextape_bench", ignore=skip)
    shutil.copytree(root / "tasks_yaml", site / "flextape_bench" / "tasks_yaml", ignore=skip)
    code = (
        "import importlib.resources, pathlib; from flextape_bench.tasks.loader import packaged_tasks_dir; "
        "found = importlib.resources.files('flextape_bench.tasks_yaml'); "
        "print(isinstance(found, pathlib.Path), found, packaged_tasks_dir())"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", *[str(site / "flextape_bench" / "tasks_yaml")] * 2]


def test_includes_find_packaged_bases_by_file_name_and_packaged_tasks_by_name(tmp_path: Path):
    own = write(
        tmp_path,
        "own.yaml",
        "include: _seesaw_cf_pair.yaml\ntask: own\ndescription: x\n"
        "dataset:\n  file: own.json\n  url: https://example.org/own.json\n",
    )
    spec = load_task(own)
    assert spec.probes is not None and (spec.probes.prompts, spec.probes.gender) == (
        "attribute_prompts",
        "female_first",
    )
    variant = load_task(write(tmp_path, "variant.yaml", "include: seesaw_cf_P19_P101\ntask: variant\n"))
    packaged = load_task(PACKAGED / "seesaw_cf_P19_P101.yaml")
    assert variant.task == "variant" and variant.source == (tmp_path / "variant.yaml").resolve()
    assert (variant.description, variant.dataset, variant.cross_property, variant.metrics) == (
        packaged.description,
        packaged.dataset,
        packaged.cross_property,
        packaged.metrics,
    )


def test_an_include_path_base_comes_before_the_packaged_base_of_that_name(tmp_path: Path):
    (tmp_path / "bases").mkdir()
    write(
        tmp_path / "bases",
        "_seesaw_cf_eff.yaml",
        f"include: {PACKAGED / '_seesaw_cf_eff.yaml'}\nmetrics: [efficacy, probe_delta]\n",
    )
    task = write(tmp_path, "mine.yaml", TINY_EFF)
    assert load_task(task).metrics == ("efficacy",)  # the packaged base
    assert load_task(task, [tmp_path / "bases"]).metrics == ("efficacy", "probe_delta")


def test_every_packaged_task_can_be_included_by_its_name(tmp_path: Path):
    for path in sorted(PACKAGED.glob("[!_]*.yaml")):
        packaged = load_task(path)
        spec = load_task(write(tmp_path, "t.yaml", f"include: {packaged.task}\ntask: t\n"))
        assert (spec.description, spec.dataset) == (packaged.description, packaged.dataset)
