"""Labels per probe from the cache and the tables, and the runner's `attach_labels`."""
from __future__ import annotations

import json

import pytest

from flextape_bench.cases import EditCase, Probe, Rewrite
from flextape_bench.demographics.cache import DemographicsCache
from flextape_bench.demographics.labels import LabelSummary, attach_labels, probe_labels
from flextape_bench.demographics.prefetch import fetch_claims
from flextape_bench.demographics.tables import DemographicTables
from flextape_bench.demographics.wikidata import Entity

from .conftest import PEOPLE, FakeWikidata, needs_data, no_sleep


def make_case(ids: list[str], genders: list[str] | None = None) -> EditCase:
    rewrite = Rewrite("{} was born in", "Someone", "P19", "Paris", "Rome", "Q90", "Q220")
    probes = tuple(Probe(f"{q} was born in", entity_id=q, groups={"gender": g} if g else {})
                   for q, g in zip(ids, genders or [None] * len(ids)))
    return EditCase(1, rewrite, probes)


@needs_data
def test_probe_labels(fixture: dict, cache: DemographicsCache, tables: DemographicTables):
    ids = PEOPLE + ["", "Q5", "Q999999999999"]
    fetch_claims(PEOPLE + ["Q999999999999"], cache, fetch=FakeWikidata(fixture), sleep=no_sleep)
    genders = ["male"] * 7 + ["female", "male", "female"]  # Q488025 (Go Hyeon-jeong) mislabelled on purpose
    summary = LabelSummary()
    labels = probe_labels(make_case(ids, genders), cache, tables, summary)
    by_id = dict(zip(ids, labels))
    assert by_id["Q7346"] == {"gender": "male", "race": "Black", "geography": "North America",
                              "continent": "North America"}  # birthplace unknown: citizenship (US)
    assert by_id["Q9061"] == {"gender": "male", "race": "Jewish", "geography": "unknown", "continent": "Europe"}
    assert by_id["Q155790"]["continent"] == "Europe"  # Budapest -> Hungary
    assert by_id["Q37970"]["race"] == "white"  # Moravians
    assert by_id["Q732135"] == {"gender": "male", "race": "unknown", "geography": "unknown", "continent": "Asia"}
    assert by_id["Q488025"] == {"gender": "female", "race": "unknown", "geography": "unknown", "continent": "Asia"}
    assert by_id["Q42"] == {"gender": "male", "race": "white", "geography": "Western Europe", "continent": "Europe"}
    assert by_id[""] == {"gender": "female", "race": "unknown", "geography": "unknown", "continent": "unknown"}
    assert by_id["Q5"]["gender"] == "male" and by_id["Q5"]["race"] == "unknown"  # not cached: file order
    assert summary.probes == 10
    assert summary.labelled["race"] == 5 and summary.unlabelled("race") == 5
    assert summary.unknown["race"] == {"unmapped": 1, "no_claim": 1, "no_entity_id": 1, "not_cached": 1,
                                       "not_on_wikidata": 1}
    assert summary.unmapped["race"] == {"Q1945786": 1}
    assert summary.unmapped["geography"] == {"Q34069": 1, "Q7325": 1, "Q756716": 1, "Q1945786": 1}
    assert summary.unknown["continent"] == {"no_entity_id": 1, "not_cached": 1, "not_on_wikidata": 1}
    assert summary.gender_sources == {"wikidata": 7, "file_order": 3} and summary.gender_disagreements == 1
    assert summary.labelled["gender"] == 10
    assert any(line.startswith("race: 5 of 10 probes labelled") for line in summary.lines())
    json.dumps(summary.to_json())


@needs_data
def test_multiple_values_are_joined(cache: DemographicsCache, tables: DemographicTables):
    cache.store([Entity("Q1", claims={"P172": (("Q7325", "normal"), ("Q42884", "normal"), ("Q1", "normal")),
                                         "P27": (("Q30", "normal"), ("Q142", "normal"))})])
    [labels] = probe_labels(make_case(["Q1"]), cache, tables)
    assert labels == {"gender": "unknown", "race": "Jewish+white", "geography": "Western Europe",
                      "continent": "Europe+North America"}


def test_continent_through_wikidata_country_and_continent_claims(fixture: dict, cache: DemographicsCache):
    """With no upstream tables: birthplace -> P17 -> packaged table; citizenship -> P30 of the country."""
    fetch_claims(PEOPLE + ["Q1781", "Q884"], cache, fetch=FakeWikidata(fixture), sleep=no_sleep)
    packaged_only = DemographicTables.from_files()
    labels = probe_labels(make_case(["Q155790", "Q488025"]), cache, packaged_only)
    assert [l["continent"] for l in labels] == ["Europe", "Asia"]  # Q1781 -P17-> Q28; Q884 in the package
    bare = DemographicTables.from_files(packaged=False)
    summary = LabelSummary()
    labels = probe_labels(make_case(["Q155790", "Q488025"]), cache, bare, summary)
    assert [l["continent"] for l in labels] == ["unknown", "Asia"]  # Hungary unknown; Q884 -P30-> Q48 Asia
    assert summary.unmapped["continent"] == {"Q1781": 1, "Q28": 1, "Q30": 1}


@needs_data
def test_attach_labels_for_the_runner(fixture: dict, cache: DemographicsCache, tables: DemographicTables):
    fetch_claims(PEOPLE, cache, fetch=FakeWikidata(fixture), sleep=no_sleep)
    case = make_case(["Q7346", "Q488025"], ["male", "male"])
    [labelled], summary = attach_labels([case], cache, tables)
    assert [p.groups for p in labelled.probes] == [
        {"gender": "male", "race": "Black", "geography": "North America", "continent": "North America"},
        {"gender": "male", "race": "unknown", "geography": "unknown", "continent": "Asia"}]
    assert case.probes[0].groups == {"gender": "male"}  # the input is untouched
    assert labelled.rewrite == case.rewrite and summary.probes == 2
    [with_gender], _ = attach_labels([case], cache, tables, ("gender", "race"))
    assert [p.groups["gender"] for p in with_gender.probes] == ["male", "female"]  # Wikidata over file order
    with pytest.raises(ValueError):
        attach_labels([case], cache, tables, ("religion",))
