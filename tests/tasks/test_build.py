"""Edit cases built from the real files, templates applied, and bad records named by file, case and field."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from flextape_bench.cases import Probe, Rewrite
from flextape_bench.errors import UserError
from flextape_bench.tasks import TaskIndex, load_cases, load_task, packaged_tasks_dir

RECORD = {
    "case_id": 7,
    "requested_rewrite": {
        "prompt": "{} was born in",
        "relation_id": "P19",
        "subject": "Ada",
        "target_new": {"str": "Paris ", "id": "Q90"},
        "target_true": {"str": "London", "id": "Q84"},
    },
    "generation_prompts": ["Ada's field of work is"],
    "attribute_prompts": ["Bea was born in", "Carl was born in"],
    "attribute_aux_info": ["Q1", "Q2"],
    "attribute_aux_ent": ["Bea", "Carl"],
}


def write_records(tmp_path: Path, *records: dict) -> Path:
    path = tmp_path / "records.json"
    path.write_text(json.dumps(list(records)))
    return path


def changed(**rewrite: object) -> dict:
    record = json.loads(json.dumps(RECORD))
    record["requested_rewrite"].update(rewrite)
    return record


def test_pair_task_cases(index: TaskIndex, data_dir: Path):
    cases = load_cases(index.spec("seesaw_cf_P19_P101"), data_dir / "seesaw_cf_P19_P101.json")
    assert len(cases) == 286
    first = cases[0]
    assert first.case_id == 22775
    assert first.rewrite == Rewrite(
        prompt="{} was born in",
        subject="John James Rickard Macleod",
        relation="P19",
        target_true="Clunie",
        target_new="New York City",
        target_true_id="Q3776576",
        target_new_id="Q60",
    )
    assert first.probes[0] == Probe(
        prompt="Marie Waldron was born in",
        entity_id="Q6763063",
        entity_name="Marie Waldron",
        groups={"gender": "female"},
    )
    assert [p.groups["gender"] for p in first.probes] == ["female"] * 100 + ["male"] * 100
    assert (
        first.generation_prompts
        == ("John James Rickard Macleod's field of work is",) * 5 + ("John James Rickard Macleod is",) * 5
    )
    morrison = next(case for case in cases if case.rewrite.target_new == "Morrison")
    assert [(p.entity_name, p.groups["gender"]) for p in morrison.probes[3:5]] == [
        ("Leslie Benmark", "female"),
        ("Frank R. Adams", "male"),
    ]


def test_targets_are_trimmed_and_unknown_genders_left_out(
    index: TaskIndex, data_dir: Path, capsys: pytest.CaptureFixture[str]
):
    cases = load_cases(index.spec("seesaw_cf_P27_P101"), data_dir / "seesaw_cf_P27_P101.json")
    assert "Abbasid Caliphate" in {case.rewrite.target_new for case in cases}
    assert all(case.rewrite.target_new == case.rewrite.target_new.strip() for case in cases)
    unknown = [case for case in cases if case.probes and "gender" not in case.probes[0].groups]
    assert len(unknown) == 5 and {case.rewrite.target_new for case in unknown} >= {"Greece", "Poland"}
    assert (
        "construction order gives no probe gender for 5 of 282 cases; they take the Wikidata P21 gender"
        in capsys.readouterr().err
    )


def test_limit_takes_the_first_cases_with_genders_from_the_whole_file(index: TaskIndex, data_dir: Path):
    spec = index.spec("seesaw_cf_P19_P101")
    full = load_cases(spec, data_dir / "seesaw_cf_P19_P101.json")
    assert load_cases(spec, data_dir / "seesaw_cf_P19_P101.json", limit=3) == full[:3]
    assert load_cases(spec, data_dir / "seesaw_cf_P19_P101.json", limit=0) == []
    with pytest.raises(UserError, match="limit must be 0 or more"):
        load_cases(spec, data_dir / "seesaw_cf_P19_P101.json", limit=-1)


def test_gender_edits_label_every_probe_with_target_new(index: TaskIndex, data_dir: Path):
    cases = load_cases(index.spec("seesaw_cf_P21_P101"), data_dir / "seesaw_cf_P21_P101.json")
    expected = {"Q6581072": "female", "Q6581097": "male"}
    assert {case.rewrite.target_new_id for case in cases} == set(expected)
    assert all(
        probe.groups == {"gender": expected[case.rewrite.target_new_id]} for case in cases for probe in case.probes
    )


def test_efficacy_task_has_no_probes(index: TaskIndex, data_dir: Path):
    cases = load_cases(index.spec("seesaw_cf_P103_eff"), data_dir / "seesaw_cf_P103_eff.json")
    assert len(cases) == 898 and all(not case.probes and not case.generation_prompts for case in cases)
    assert cases[0].rewrite.edit_prompt == "The mother tongue of Danielle Darrieux is"


def test_reconstructed_file_has_empty_probes(index: TaskIndex, data_dir: Path):
    cases = load_cases(index.spec("seesaw_cf_P101_P27"), data_dir / "reconstructed" / "seesaw_cf_P101_P27.json")
    assert len(cases) == 279 and all(not case.probes and len(case.generation_prompts) == 10 for case in cases)


def test_templates_render_prompts_and_targets(tmp_path: Path):
    spec_path = tmp_path / "t.yaml"
    spec_path.write_text(
        textwrap.dedent(f"""\
        include: {packaged_tasks_dir() / "_seesaw_cf_pair.yaml"}
        task: templated
        description: templated prompts
        dataset: {{file: records.json, url: 'https://example.org/records.json'}}
        templates:
          prompt: "Q: {{{{ prompt }}}}"
          target: "{{{{ target | trim | upper }}}}"
        """)
    )
    (case,) = load_cases(load_task(spec_path), write_records(tmp_path, RECORD))
    assert case.rewrite.prompt == "Q: {} was born in"
    assert (case.rewrite.target_new, case.rewrite.target_true) == ("PARIS", "LONDON")
    assert [p.prompt for p in case.probes] == ["Q: Bea was born in", "Q: Carl was born in"]
    assert case.generation_prompts == ("Q: Ada's field of work is",)


def test_template_that_drops_the_subject_slot(tmp_path: Path):
    spec_path = tmp_path / "t.yaml"
    spec_path.write_text(
        f"include: {packaged_tasks_dir() / 'seesaw_cf_P19_P101.yaml'}\n"
        "templates:\n  prompt: \"{{ prompt | replace('{}', 'X') }}\"\n"
    )
    with pytest.raises(
        UserError,
        match=r"t.yaml: templates.prompt: the rendered edit prompt 'X was born in' of "
        r"case_id 7 lost the '\{\}'",
    ):
        load_cases(load_task(spec_path), write_records(tmp_path, RECORD))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {k: v for k, v in RECORD.items() if k != "attribute_aux_ent"},
            "case_id 7: probes.names: the record has no 'attribute_aux_ent'",
        ),
        (changed(prompt="was born in"), "case_id 7: fields.prompt: the prompt 'was born in' has no '{}'"),
        (changed(subject=" "), "case_id 7: fields.subject: 'requested_rewrite.subject' must be a non-empty string"),
        (changed(target_new={"str": "", "id": "Q90"}), "case_id 7: fields.target_new: "),
        (
            changed(target_true={"id": "Q84"}),
            "case_id 7: fields.target_true: the record has no 'requested_rewrite.target_true.str' (no 'str')",
        ),
        ({**RECORD, "case_id": "7"}, "record 0: fields.case_id: 'case_id' must be an integer, got '7'"),
        (
            {**RECORD, "attribute_aux_info": ["Q1"]},
            "case_id 7: probes: the probe lists are not parallel (probes.prompts 2, probes.ids 1, probes.names 2)",
        ),
    ],
)
def test_bad_records_name_file_case_and_field(index: TaskIndex, tmp_path: Path, record: dict, message: str):
    path = write_records(tmp_path, record)
    with pytest.raises(UserError) as caught:
        load_cases(index.spec("seesaw_cf_P19_P101"), path)
    assert str(caught.value).startswith(f"{path}: {message}")


def test_bad_files(index: TaskIndex, tmp_path: Path):
    spec = index.spec("seesaw_cf_P19_P101")
    with pytest.raises(UserError, match=r"case_id 7: fields\.case_id: the case id is used twice"):
        load_cases(spec, write_records(tmp_path, RECORD, RECORD))
    (tmp_path / "broken.json").write_text('[\n{"case_id": 1,\n}]')
    with pytest.raises(UserError, match=r"broken.json:3: invalid JSON"):
        load_cases(spec, tmp_path / "broken.json")
    (tmp_path / "object.json").write_text("{}")
    with pytest.raises(UserError, match="expected a JSON list of records, got dict"):
        load_cases(spec, tmp_path / "object.json")
