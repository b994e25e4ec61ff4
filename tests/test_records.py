"""The declared case record (flextape_bench.records): what a real run writes conforms to it, `case_record` builds the
same record, key for key and in the same order, and the schema's shape is what the TypedDicts declare."""

import pytest

from flextape_bench.cases import CaseScores, EditCase, Probe, Rewrite
from flextape_bench.checksums import read_json
from flextape_bench.records import (
    SCHEMA,
    CaseRecord,
    ListOf,
    MapOf,
    Open,
    Scalar,
    Struct,
    case_record,
    problems,
    shape_of,
)
from flextape_bench.runner import RunOptions, run

PAIR = "seesaw_cf_P19_P101"


@pytest.fixture(scope="module")
def records(tmp_path_factory, tiny_llama, data_dir) -> list[dict]:
    """The case records of a quick unedited run of the tiny random Llama on two cases of a pair task (whose
    cross-property metric adds a `cross` section)."""
    root = tmp_path_factory.mktemp("records")
    options = RunOptions(
        model="org/tiny-llama",
        editor="none",
        tasks=[PAIR],
        limit=2,
        data_dir=data_dir,
        output=root / "results",
        cache=root / "cache",
    )
    path = run(options, tiny_llama)[0].path
    return [read_json(case) for case in sorted((path / PAIR).glob("case_*.json"))]


def test_a_real_record_conforms(records):
    assert len(records) == 2 and all("cross" in record for record in records)
    assert [problems(record) for record in records] == [[], []]


def test_case_record_builds_the_written_record_in_its_key_order(records):
    for record in records:
        case = EditCase(record["case_id"], Rewrite(**record["rewrite"]), tuple(Probe(**p) for p in record["probes"]))
        sections = {key: record[key] for key in ("cross", "long_form") if key in record}
        built = case_record(
            case,
            record["chunk"],
            sections,
            record["metrics"],
            CaseScores.from_json(record["pre"]),
            CaseScores.from_json(record["post"]),
        )
        assert list(built) == list(record) and built == record


def test_the_schema_is_the_declared_one():
    assert isinstance(SCHEMA, Struct) and set(SCHEMA.fields) == set(CaseRecord.__annotations__)
    assert SCHEMA.optional == {"cross", "long_form"}
    assert SCHEMA.fields["case_id"] == Scalar("int") and SCHEMA.fields["metrics"] == MapOf(Open())
    probes = SCHEMA.fields["probes"]
    assert isinstance(probes, ListOf) and isinstance(probes.item, Struct)
    assert probes.item.fields["groups"] == MapOf(Scalar("str"))
    cross = SCHEMA.fields["cross"]
    assert isinstance(cross, Struct) and cross.fields["truth"] == ListOf(Scalar("str"), nullable=True)
    assert shape_of(float | None) == Scalar("float", nullable=True)


def test_problems_name_the_path_of_each_departure(records):
    record = records[0]
    assert problems({**record, "probes": [{**record["probes"][0], "groups": {"gender": 1}}]}) == [
        "record.probes[0].groups.gender: int, not str"
    ]
    assert problems({**record, "cross": {**record["cross"], "truth": None}}) == []  # truth unknown: null
    assert problems({**record, "pre": None}) == ["record.pre: null where a value is required"]
    assert problems({**record, "metrics": {"anything": [1, "a", None]}}) == []  # open: each metric's own values
    missing = dict(record)
    del missing["post"]
    assert problems(missing) == ["record: no 'post'"]
    assert problems({**record, "chunk": True}) == ["record.chunk: bool, not int"]
    assert problems({**record, "pre": {**record["pre"], "texts": [["a"], [2.5]]}}) == [
        "record.pre.texts[1][0]: float, not str"
    ]
