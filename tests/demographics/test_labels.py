"""Labels per probe from the cache and the tables, and the runner's `attach_labels`."""

from __future__ import annotations

import json

import pytest

from flextape_bench.cases import EditCase, Probe, Rewrite
from flextape_bench.demographics.cache import DemographicsCache
from flextape_bench.demographics.labels import (
    LabelSummary,
    attach_labels,
    combined_gender,
    label_task_cases,
    probe_labels,
)
from flextape_bench.demographics.prefetch import fetch_claims
from flextape_bench.demographics.tables import DemographicTables
from flextape_bench.demographics.wikidata import Entity

from .conftest import PEOPLE, FakeWikidata, needs_data, no_sleep


def make_case(ids: list[str], genders: list[str] | None = None) -> EditCase:
    rewrite = Rewrite("{} was born in", "Someone", "P19", "Paris", "Rome", "Q90", "Q220")
    probes = tuple(
        Probe(f"{q} was born in", entity_id=q, groups={"gender": g} if g else {})
        for q, g in zip(ids, genders or [None] * len(ids))
    )
    return EditCase(1, rewrite, probes)


@needs_data
def test_probe_labels(fixture: dict, cache: DemographicsCache, tables: DemographicTables):
    ids = [*PEOPLE, "", "Q5", "Q999999999999"]
    fetch_claims([*PEOPLE, "Q999999999999"], cache, fetch=FakeWikidata(fixture), sleep=no_sleep)
    genders = ["male"] * 7 + ["female", "male", "female"]  # Q488025 (Go Hyeon-jeong) mislabelled on purpose
    summary = LabelSummary()
    labels = probe_labels(make_case(ids, genders), cache, tables, summary, gender_wikidata="prefer")
    by_id = dict(zip(ids, labels))
    assert by_id["Q7346"] == {
        "gender": "male",
        "race": "Black",
        "geography": "North America",
        "continent": "North America",
    }  # birthplace unknown: citizenship (US)
    assert by_id["Q9061"] == {"gender": "male", "race": "Jewish", "geography": "unknown", "continent": "Europe"}
    assert by_id["Q155790"]["continent"] == "Europe"  # Budapest -> Hungary
    assert by_id["Q37970"]["race"] == "white"  # Moravians
    assert by_id["Q732135"] == {"gender": "male", "race": "unknown", "geography": "unknown", "continent": "Asia"}
    assert by_id["Q488025"] == {"gender": "female", "race": "unknown", "geography": "unknown", "continent": "Asia"}
    assert by_id["Q42"] == {"gender": "male", "race": "white", "geography": "Western Europe", "continent": "Europe"}
    assert by_id[""] == {"gender": "female", "race": "unknown", "geography": "unknown", "continent": "unknown"}
    assert by_id["Q5"]["gender"] == "male" and by_id["Q5"]["race"] == "unknown"  # not cached: construction order
    assert summary.probes == 10
    assert summary.labelled["race"] == 5 and summary.unlabelled("race") == 5
    assert summary.unknown["race"] == {
        "unmapped": 1,
        "no_claim": 1,
        "no_entity_id": 1,
        "not_cached": 1,
        "not_on_wikidata": 1,
    }
    assert summary.unmapped["race"] == {"Q1945786": 1}
    assert summary.unmapped["geography"] == {"Q34069": 1, "Q7325": 1, "Q756716": 1, "Q1945786": 1}
    assert summary.unknown["continent"] == {"no_entity_id": 1, "not_cached": 1, "not_on_wikidata": 1}
    assert summary.to_json()["gender_sources"] == {"construction_order": 3, "wikidata_p21": 7, "unlabelled": 0}
    assert summary.gender_disagreements == 1 and summary.cached == 8  # the 7 people and the deleted Q999999999999
    assert summary.labelled["gender"] == 10
    assert any(line.startswith("race: 5 of 10 probes labelled") for line in summary.lines())
    json.dumps(summary.to_json())


@needs_data
def test_multiple_values_are_joined(cache: DemographicsCache, tables: DemographicTables):
    cache.store(
        [
            Entity(
                "Q1",
                claims={
                    "P172": (("Q7325", "normal"), ("Q42884", "normal"), ("Q1", "normal")),
                    "P27": (("Q30", "normal"), ("Q142", "normal")),
                },
            )
        ]
    )
    [labels] = probe_labels(make_case(["Q1"]), cache, tables)
    assert labels == {
        "gender": "unknown",
        "race": "Jewish+white",
        "geography": "Western Europe",
        "continent": "Europe+North America",
    }


def test_continent_through_wikidata_country_and_continent_claims(fixture: dict, cache: DemographicsCache):
    """With no upstream tables: birthplace -> P17 -> packaged table; citizenship -> P30 of the country."""
    fetch_claims([*PEOPLE, "Q1781", "Q884"], cache, fetch=FakeWikidata(fixture), sleep=no_sleep)
    packaged_only = DemographicTables.from_files()
    labels = probe_labels(make_case(["Q155790", "Q488025"]), cache, packaged_only)
    assert [label["continent"] for label in labels] == ["Europe", "Asia"]  # Q1781 -P17-> Q28; Q884 in the package
    bare = DemographicTables.from_files(packaged=False)
    summary = LabelSummary()
    labels = probe_labels(make_case(["Q155790", "Q488025"]), cache, bare, summary)
    assert [label["continent"] for label in labels] == ["unknown", "Asia"]  # Hungary unknown; Q884 -P30-> Q48 Asia
    assert summary.unmapped["continent"] == {"Q1781": 1, "Q28": 1, "Q30": 1}


@needs_data
def test_attach_labels_for_the_runner(fixture: dict, cache: DemographicsCache, tables: DemographicTables):
    fetch_claims(PEOPLE, cache, fetch=FakeWikidata(fixture), sleep=no_sleep)
    case = make_case(["Q7346", "Q488025"], ["male", "male"])
    [labelled], summary = attach_labels([case], cache, tables)
    assert [p.groups for p in labelled.probes] == [
        {"gender": "male", "race": "Black", "geography": "North America", "continent": "North America"},
        {"gender": "male", "race": "unknown", "geography": "unknown", "continent": "Asia"},
    ]
    assert case.probes[0].groups == {"gender": "male"}  # the input is untouched
    assert labelled.rewrite == case.rewrite and summary.probes == 2
    [with_gender], _ = attach_labels([case], cache, tables, ("gender", "race"), gender_wikidata="prefer")
    assert [p.groups["gender"] for p in with_gender.probes] == ["male", "female"]  # Wikidata over the order
    [kept], _ = attach_labels([case], cache, tables, ("gender", "race"))  # fallback: the order where it has one
    assert [p.groups["gender"] for p in kept.probes] == ["male", "male"]
    with pytest.raises(ValueError):
        attach_labels([case], cache, tables, ("religion",))


# Hand-picked probes for the gender sources: Wikidata P21 in the cache, and the construction order the task builder
# recovered (None where it could not). Q1 is female on Wikidata but in the men's block (a disagreement).
GENDER_PROBES = [
    ("Q1", "male"),
    ("Q2", "male"),
    ("Q3", "female"),
    ("Q4", None),
    ("Q5", None),
    ("Q6", None),
    ("", "female"),
]


def gender_cache(cache: DemographicsCache) -> DemographicsCache:
    cache.store(
        [
            Entity("Q1", claims={"P21": (("Q6581072", "normal"),)}),  # female
            Entity("Q2", claims={"P21": (("Q6581097", "normal"),)}),  # male
            Entity("Q3"),  # on Wikidata, no P21 claim
            Entity("Q4", status="missing"),  # deleted
            Entity("Q5", claims={"P21": (("Q48270", "normal"),)}),
        ]
    )  # non-binary: "other"; Q6 is not cached
    return cache


def gender_case() -> EditCase:
    return make_case([q for q, _ in GENDER_PROBES], [g for _, g in GENDER_PROBES])


@pytest.mark.parametrize(
    ("mode", "genders", "sources", "reasons"),
    [
        # single-property tasks: Wikidata where the cache has a P21 value, else the construction order
        (
            "prefer",
            ["female", "male", "female", "unknown", "other", "unknown", "female"],
            {"construction_order": 2, "wikidata_p21": 3, "unlabelled": 2},
            {"not_on_wikidata": 1, "not_cached": 1},
        ),
        # pair tasks: the construction order, Wikidata only where the order gives none (Q5)
        (
            "fallback",
            ["male", "male", "female", "unknown", "other", "unknown", "female"],
            {"construction_order": 4, "wikidata_p21": 1, "unlabelled": 2},
            {"not_on_wikidata": 1, "not_cached": 1},
        ),
        (
            "off",
            ["male", "male", "female", "unknown", "unknown", "unknown", "female"],
            {"construction_order": 4, "wikidata_p21": 0, "unlabelled": 3},
            {"wikidata_off": 3},
        ),
    ],
)
def test_gender_sources_per_mode(cache: DemographicsCache, mode: str, genders: list[str], sources: dict, reasons: dict):
    [labelled], summary = attach_labels(
        [gender_case()], gender_cache(cache), DemographicTables(), ("gender",), gender_wikidata=mode
    )
    assert [p.groups["gender"] for p in labelled.probes] == genders
    report = summary.to_json()
    assert report["gender_sources"] == sources and sum(sources.values()) == report["probes"] == 7
    assert report["unknown"] == {"gender": reasons} and report["labelled"] == {"gender": 5 if mode != "off" else 4}
    assert report["gender_disagreements"] == 1 and report["cached"] == 5 and report["cache_found"] is True
    assert report["attributes"] == ["gender"] and "race" not in report["labels"]
    assert summary.lines()[-1].startswith(
        f"gender sources: construction_order {sources['construction_order']}, "
        f"wikidata_p21 {sources['wikidata_p21']}, unlabelled"
    )


def test_combined_gender_rule():
    assert combined_gender("male", "female", "prefer") == ("female", "wikidata_p21")
    assert combined_gender("male", "female", "fallback") == ("male", "construction_order")
    assert combined_gender("", "female", "fallback") == ("female", "wikidata_p21")
    assert combined_gender("", "female", "off") == ("", "unlabelled")
    assert combined_gender("male", "", "prefer") == ("male", "construction_order")
    with pytest.raises(ValueError, match="unknown gender_wikidata 'always'"):
        combined_gender("male", "", "always")


def test_label_task_cases_without_a_cache_file_keeps_the_order_and_says_so(tmp_path):
    missing = tmp_path / "nowhere" / "demographics.sqlite"
    [labelled], summary = label_task_cases(
        [gender_case()], cache_path=missing, attributes=("gender",), gender_wikidata="prefer"
    )
    assert not missing.exists() and not missing.parent.exists()  # not created
    assert [p.groups["gender"] for p in labelled.probes] == [
        "male",
        "male",
        "female",
        "unknown",
        "unknown",
        "unknown",
        "female",
    ]
    report = summary.to_json()
    assert report["cache_found"] is False and report["cached"] == 0
    assert report["gender_sources"] == {"construction_order": 4, "wikidata_p21": 0, "unlabelled": 3}
    assert report["unknown"]["gender"] == {"cache_absent": 3}
    assert summary.lines()[0] == "no demographics cache file: no probe has a Wikidata label"


def test_label_task_cases_reads_the_cache_file_for_gender_without_tables(tmp_path):
    path = tmp_path / "demographics.sqlite"
    with DemographicsCache(path) as cache:
        gender_cache(cache)
    # no data folder at all: gender needs none of the upstream tables
    [labelled], summary = label_task_cases(
        [gender_case()],
        cache_path=path,
        data_dir=tmp_path / "no_data",
        cache_root=tmp_path,
        attributes=("gender",),
        offline=True,
        gender_wikidata="prefer",
    )
    assert [p.groups["gender"] for p in labelled.probes][:3] == ["female", "male", "female"]
    assert summary.to_json()["gender_sources"] == {"construction_order": 2, "wikidata_p21": 3, "unlabelled": 2}
