"""The cross_property section at run time: candidate tables (real upstream files), distinct generation prompts,
and the edited subjects' true values with their coverage."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from flextape_bench.cases import distinct_prompts
from flextape_bench.errors import UserError
from flextape_bench.metrics.cross_property.prepare import (
    AMBIGUOUS,
    NO_SUBJECT,
    NO_VALUE,
    NOT_CANDIDATE,
    CandidateSet,
    SubjectValues,
    attach_cross,
    candidate_set,
    edit_values,
    load_candidates,
    prepare_cross,
    query_of,
    read_candidate_table,
    subject_info_values,
    truth_of,
    unverified_files,
)
from flextape_bench.tasks import Candidates, TaskIndex, load_cases, load_task, packaged_tasks_dir, resolve_data_file

FOW = Candidates(file="fow.csv", url="https://example.org/fow.csv", value_column="String", id_column="Code")
P27 = Candidates(
    file="P27_cats.csv",
    url="https://example.org/P27_cats.csv",
    columns=("id", "country", "continent"),
    value_column="country",
    id_column="id",
)
CITIES = Candidates(
    file="city_to_country.csv",
    url="https://example.org/c.csv",
    columns=("place_id", "place_country", "id", "city"),
    value_column="city",
    id_column="id",
)


def test_fow_table_has_a_header(data_dir: Path):
    found = candidate_set(read_candidate_table(data_dir / "fow.csv", FOW))
    assert len(found.values) == 219 and len(found.by_id) == 219
    assert found.values[:2] == ("mechanical engineering", "magnetic resonance")
    assert found.by_id["Q101333"] == "mechanical engineering" and found.by_id["Q413"] == "physics"


def test_p27_table_without_header_is_stripped_and_deduplicated(data_dir: Path):
    rows = read_candidate_table(data_dir / "P27_cats.csv", P27)
    assert len(rows) == 90 and rows[0] == ("United Kingdom", "Q145")
    found = candidate_set(rows)
    assert len(found.values) == 88  # two countries are listed twice
    assert "Alokopennesos" in found.values  # "Alokopennesos " in the file
    assert found.by_id["Q30"] == "United States of America"


def test_city_table_reads_the_city_columns(data_dir: Path):
    rows = read_candidate_table(data_dir / "city_to_country.csv", CITIES)
    # 286 rows; the right-hand (city QID, city) list is shorter: 54 rows have empty city cells and are skipped
    assert len(rows) == 232
    found = candidate_set(rows)
    assert len(found.values) == 231 and found.values[:3] == ("Clunie", "Indiana", "Manchester")
    assert found.by_id["Q1490"] == found.by_id["Q7473516"] == "Tokyo"  # one string, two QIDs
    assert found.by_id["Q60"] == "New York City"


def test_bad_tables(tmp_path: Path):
    table = tmp_path / "t.csv"
    table.write_text("Code,String\nQ1,physics\n")
    with pytest.raises(
        UserError,
        match=r"t.csv: no column 'Strng' \(columns: Code, String\); fix "
        r"cross_property.candidates.value_column",
    ):
        read_candidate_table(table, dataclasses.replace(FOW, value_column="Strng"))
    table.write_text("Code,String\nQ1,physics\nQ2,law,extra\n")
    with pytest.raises(UserError, match=r"t.csv:3: 3 fields, but 2 columns \(Code, String\)"):
        read_candidate_table(table, FOW)
    table.write_text("Code,String\nQ1,\n")
    with pytest.raises(UserError, match="no candidate in column 'String'"):
        read_candidate_table(table, FOW)
    table.write_text("")
    with pytest.raises(UserError, match=r"t\.csv is empty"):
        read_candidate_table(table, FOW)


def test_generation_prompts_are_five_copies_of_two_prompts(index: TaskIndex, data_dir: Path):
    for name, question in (
        ("seesaw_cf_P19_P101", "'s field of work is"),
        ("seesaw_cf_P19_P21", "'s gender is"),
        ("seesaw_cf_P27_P19", " was born in"),
        ("seesaw_cf_P101_P27", " is a citizen of"),
    ):
        spec = index.spec(name)
        for case in load_cases(spec, resolve_data_file(spec, data_dir, data_dir)):
            subject = case.rewrite.subject
            first, second = f"{subject}{question}", f"{subject} is"
            assert case.generation_prompts == (first,) * 5 + (second,) * 5
            assert distinct_prompts(case.generation_prompts) == (first, second)
    assert distinct_prompts(["b", "a", "b", "c", "a"]) == ("b", "a", "c")


def test_subject_info_values_by_name(data_dir: Path, tmp_path: Path):
    found = subject_info_values(data_dir / "P101_subject_info.json", "P101")
    assert found.values["Yi-Fu Tuan"] == {"Q1071"} and not found.ambiguous
    info = {
        "Q1": {"name": "Ann", "properties": {"P21": ["Q6581072"]}},
        "Q2": {"name": "Ann", "properties": {"P21": ["Q6581097"]}},
        "Q3": {"name": "Bob", "properties": {}},
    }
    (tmp_path / "info.json").write_text(json.dumps(info))
    found = subject_info_values(tmp_path / "info.json", "P21")
    assert found.values == {"Bob": set()} and found.ambiguous == {"Ann"}
    (tmp_path / "info.json").write_text("[]")
    with pytest.raises(UserError, match=r"info\.json: expected a JSON object of subject QID"):
        subject_info_values(tmp_path / "info.json", "P21")


def test_edit_values_read_through_the_field_map(index: TaskIndex, data_dir: Path, tmp_path: Path):
    fields = index.spec("seesaw_cf_P19_P101").fields
    found = edit_values(data_dir / "seesaw_cf_P19_P101_eff.json", "P19", fields)
    assert found.values["John James Rickard Macleod"] == {"Q3776576"}  # Clunie
    assert edit_values(data_dir / "seesaw_cf_P19_P101_eff.json", "P27", fields).values == {}
    (tmp_path / "edits.json").write_text(json.dumps([{"case_id": 1}]))
    with pytest.raises(
        UserError,
        match=r"edits.json: record 0 has no string at fields.relation "
        r"\('requested_rewrite.relation_id'\)",
    ):
        edit_values(tmp_path / "edits.json", "P19", fields)


def test_truth_of_maps_values_to_candidates():
    candidates = CandidateSet(("male", "female"), {"Q6581097": "male", "Q6581072": "female"})
    subjects = SubjectValues(
        {"Ann": {"Q6581072"}, "Bob": set(), "Cy": {"Q1052281"}, "Di": {"Q6581072", "Q6581097"}}, {"Eve"}
    )
    assert truth_of("Ann", subjects, candidates) == (("female",), "known")
    assert truth_of("Di", subjects, candidates) == (("male", "female"), "known")  # candidate order
    assert truth_of("Bob", subjects, candidates) == (None, NO_VALUE)
    assert truth_of("Cy", subjects, candidates) == (None, NOT_CANDIDATE)
    assert truth_of("Eve", subjects, candidates) == (None, AMBIGUOUS)
    assert truth_of("Fay", subjects, candidates) == (None, NO_SUBJECT)


@pytest.mark.parametrize(
    ("name", "prop", "n_candidates", "known", "why_unknown"),
    [
        ("seesaw_cf_P19_P101", "P101", 219, 173, {NO_VALUE: 1, NO_SUBJECT: 112}),
        ("seesaw_cf_P19_P21", "P21", 2, 286, {}),
        ("seesaw_cf_P21_P101", "P101", 219, 175, {NO_VALUE: 1, NO_SUBJECT: 114}),
        ("seesaw_cf_P27_P101", "P101", 219, 170, {NO_VALUE: 1, NO_SUBJECT: 111}),
        ("seesaw_cf_P27_P19", "P19", 231, 279, {NO_SUBJECT: 3}),
        ("seesaw_cf_P101_P21", "P21", 2, 279, {}),
        ("seesaw_cf_P101_P27", "P27", 88, 271, {NO_VALUE: 2, NO_SUBJECT: 6}),
    ],
)
def test_true_value_coverage_of_the_packaged_pair_tasks(
    index: TaskIndex,
    data_dir: Path,
    tmp_path: Path,
    name: str,
    prop: str,
    n_candidates: int,
    known: int,
    why_unknown: dict,
):
    spec = index.spec(name)
    cases = load_cases(spec, resolve_data_file(spec, data_dir, tmp_path))
    out, coverage = prepare_cross(spec, cases, data_dir, tmp_path, offline=True)
    assert coverage == {
        "property": prop,
        "candidates": n_candidates,
        "cases": len(cases),
        "known": known,
        "why_unknown": why_unknown,
    }
    assert sum(query_of(case).truth is not None for case in out) == known
    assert all(len(query_of(case).prompts) == 2 and len(query_of(case).candidates) == n_candidates for case in out)


def test_true_values_of_known_subjects(index: TaskIndex, data_dir: Path, tmp_path: Path):
    def truths(name: str) -> dict[str, tuple[str, ...] | None]:
        spec = index.spec(name)
        cases = load_cases(spec, resolve_data_file(spec, data_dir, tmp_path))
        prepared = prepare_cross(spec, cases, data_dir, tmp_path)[0]
        return {case.rewrite.subject: query_of(case).truth for case in prepared}

    p19 = truths("seesaw_cf_P27_P19")
    assert p19["John James Rickard Macleod"] == ("Clunie",)
    p101 = truths("seesaw_cf_P19_P101")
    assert p101["John James Rickard Macleod"] is None  # in no true-value file
    assert p101["Yi-Fu Tuan"] == ("geography",)  # P101_subject_info.json: Q1071
    assert truths("seesaw_cf_P101_P27")["John James Rickard Macleod"] == ("United Kingdom",)


def test_literal_candidates_are_rendered_through_the_target_template(tmp_path: Path, data_dir: Path):
    spec_path = tmp_path / "t.yaml"
    spec_path.write_text(
        textwrap.dedent(f"""\
        include: {packaged_tasks_dir() / "seesaw_cf_P19_P21.yaml"}
        templates:
          target: "{{{{ target | trim | upper }}}}"
        cross_property:
          candidates:
            values: [male, " male", female]
            ids: [Q6581097, Q6581097, Q6581072]
          true_values: []
        """)
    )
    spec = load_task(spec_path)
    candidates = load_candidates(spec, data_dir, tmp_path)
    assert candidates == CandidateSet(("MALE", "FEMALE"), {"Q6581097": "MALE", "Q6581072": "FEMALE"})
    cases = load_cases(spec, data_dir / "seesaw_cf_P19_P21.json", limit=3)
    out, coverage = attach_cross(spec, cases, candidates, SubjectValues())
    assert coverage["known"] == 0 and coverage["why_unknown"] == {NO_SUBJECT: 3}
    assert query_of(out[0]).candidates == ("MALE", "FEMALE") and query_of(out[0]).property == "P21"


def test_files_no_sha256_verifies_are_listed_before_the_run(index: TaskIndex, tmp_path: Path):
    """The packaged pair tasks pin every file; a task of one's own that drops a checksum gets a note for the list
    of what the run will not verify."""
    assert all(unverified_files(index.spec(name)) == [] for name in ("seesaw_cf_P19_P101", "seesaw_cf_P21_P101"))
    spec_path = tmp_path / "t.yaml"
    spec_path.write_text(
        textwrap.dedent(f"""\
        include: {packaged_tasks_dir() / "seesaw_cf_P19_P101.yaml"}
        cross_property:
          candidates:
            file: fow.csv
            url: https://example.org/fow.csv
            sha256: null  # the included file's would stay otherwise
            value_column: String
          true_values:
            - file: mine.json
              url: https://example.org/mine.json
              format: subject_info
        """)
    )
    assert unverified_files(load_task(spec_path)) == [
        f"cross_property: {name} is not verified: its spec gives no sha256 (add the file's `sha256sum` to the spec)"
        for name in ("fow.csv", "mine.json")
    ]


def test_missing_candidate_file_offline_names_the_file(index: TaskIndex, tmp_path: Path):
    spec = index.spec("seesaw_cf_P19_P101")
    with pytest.raises(UserError, match=r"seesaw_cf_P19_P101: data file fow.csv not found \(looked in "):
        load_candidates(spec, tmp_path, tmp_path / "cache", offline=True)
