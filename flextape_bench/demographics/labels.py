"""Labels of probes from the cache only: per probe {gender, race, geography, continent}, "unknown" where missing,
with a `LabelSummary` counting unlabelled probes per attribute and why. The runner calls `label_task_cases`."""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from flextape_bench.cases import EditCase, Probe
from flextape_bench.demographics.cache import DemographicsCache, default_cache_path
from flextape_bench.demographics.tables import DemographicTables, load_tables
from flextape_bench.demographics.wikidata import is_qid
from flextape_bench.tasks.gender import WIKIDATA_GENDER

UNKNOWN = "unknown"
MULTI_SEPARATOR = "+"  # a probe with several distinct labels gets them sorted and joined, e.g. "Jewish+white"
ATTRIBUTES = ("gender", "race", "geography", "continent")
DEFAULT_ATTACH = ("race", "geography", "continent")

# P21 values: the two the benchmark's probe pools were drawn from, and transgender women/men under their gender.
GENDER_LABELS = {**WIKIDATA_GENDER, "Q1052281": "female", "Q2449503": "male"}
OTHER_GENDER = "other"
# P30 values -> the continent names of the upstream tables.
CONTINENT_QIDS = {
    "Q15": "Africa", "Q48": "Asia", "Q46": "Europe", "Q49": "North America", "Q18": "South America",
    "Q538": "Oceania", "Q55643": "Oceania", "Q3960": "Oceania", "Q27611": "North America", "Q664609": "North America",
    "Q51": "Antarctica",
}


@dataclass
class LabelSummary:
    """Per attribute: probes labelled, unlabelled by reason, label counts, and the Wikidata values that no table
    maps (e.g. P172 ethnic groups without a racial group). Reasons: no_entity_id, not_cached, not_on_wikidata,
    no_claim, unmapped. `gender_sources`: wikidata / file_order; `gender_disagreements`: Wikidata P21 differs from
    the file's construction order."""

    probes: int = 0
    labelled: Counter = field(default_factory=Counter)
    unknown: dict[str, Counter] = field(default_factory=lambda: {a: Counter() for a in ATTRIBUTES})
    labels: dict[str, Counter] = field(default_factory=lambda: {a: Counter() for a in ATTRIBUTES})
    unmapped: dict[str, Counter] = field(default_factory=lambda: {a: Counter() for a in ATTRIBUTES})
    gender_sources: Counter = field(default_factory=Counter)
    gender_disagreements: int = 0

    def unlabelled(self, attribute: str) -> int:
        return self.probes - self.labelled[attribute]

    def add(self, other: "LabelSummary") -> None:
        self.probes += other.probes
        self.labelled.update(other.labelled)
        for attribute in ATTRIBUTES:
            self.unknown[attribute].update(other.unknown[attribute])
            self.labels[attribute].update(other.labels[attribute])
            self.unmapped[attribute].update(other.unmapped[attribute])
        self.gender_sources.update(other.gender_sources)
        self.gender_disagreements += other.gender_disagreements

    def lines(self, top: int = 5) -> list[str]:
        out = []
        for attribute in ATTRIBUTES:
            reasons = ", ".join(f"{r} {n}" for r, n in self.unknown[attribute].most_common())
            line = f"{attribute}: {self.labelled[attribute]} of {self.probes} probes labelled"
            if reasons:
                line += f"; unknown: {reasons}"
            if self.unmapped[attribute]:
                line += "; most frequent unmapped values: " + ", ".join(
                    f"{q} ({n})" for q, n in self.unmapped[attribute].most_common(top))
            out.append(line)
        if self.gender_sources:
            out.append("gender sources: " + ", ".join(f"{s} {n}" for s, n in self.gender_sources.most_common())
                       + f"; Wikidata disagrees with the file order for {self.gender_disagreements}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"probes": self.probes, "labelled": dict(self.labelled),
                "unknown": {a: dict(c) for a, c in self.unknown.items()},
                "labels": {a: dict(c) for a, c in self.labels.items()},
                "unmapped": {a: dict(c.most_common(50)) for a, c in self.unmapped.items()},
                "gender_sources": dict(self.gender_sources), "gender_disagreements": self.gender_disagreements}


def _joined(labels: Iterable[str]) -> str:
    distinct = sorted({label for label in labels if label})
    return MULTI_SEPARATOR.join(distinct) if distinct else ""


class _Labeller:
    """Labels probes from bulk cache lookups (people, then their birthplaces and countries)."""

    def __init__(self, ids: Iterable[str], cache: DemographicsCache, tables: DemographicTables):
        self.tables = tables
        self.people = cache.lookup(q for q in ids if is_qid(q))
        place_ids = {q for e in self.people.values() for q in e.values("P19")}
        self.places = cache.lookup(place_ids)
        country_ids = {q for e in self.people.values() for q in e.values("P27")}
        country_ids |= {q for e in self.places.values() for q in e.values("P17")}
        country_ids |= {tables.city_country[q] for q in place_ids if q in tables.city_country}
        self.countries = cache.lookup(country_ids)

    def continent_of_country(self, qid: str) -> set[str]:
        if qid in self.tables.country_continent:
            return {self.tables.country_continent[qid]}
        entity = self.countries.get(qid) or self.places.get(qid)
        return {CONTINENT_QIDS[c] for c in entity.values("P30") if c in CONTINENT_QIDS} if entity else set()

    def continent_of_place(self, qid: str) -> set[str]:
        if qid in self.tables.country_continent:  # a birthplace recorded as a country
            return {self.tables.country_continent[qid]}
        if qid in self.tables.city_country:
            found = self.continent_of_country(self.tables.city_country[qid])
            if found:
                return found
        place = self.places.get(qid)
        return {c for country in (place.values("P17") if place else ()) for c in self.continent_of_country(country)}

    def label(self, probe: Probe, summary: LabelSummary) -> dict[str, str]:
        summary.probes += 1
        entity = self.people.get(probe.entity_id) if probe.entity_id else None
        if not probe.entity_id:
            absent = "no_entity_id"
        elif entity is None:
            absent = "not_cached"
        elif entity.status == "missing":
            absent = "not_on_wikidata"
        else:
            absent = ""
        values = (lambda prop: entity.values(prop)) if entity is not None and not absent else (lambda prop: ())
        out: dict[str, str] = {}

        def settle(attribute: str, label: str, claims: Sequence[str], unmapped: Iterable[str] = ()) -> None:
            if label:
                out[attribute] = label
                summary.labelled[attribute] += 1
                summary.labels[attribute][label] += 1
                return
            out[attribute] = UNKNOWN
            summary.unknown[attribute][absent or ("unmapped" if claims else "no_claim")] += 1
            summary.unmapped[attribute].update(unmapped)

        # gender: Wikidata P21, else the pair files' construction order
        p21 = values("P21")
        wikidata_gender = _joined(GENDER_LABELS.get(q, OTHER_GENDER) for q in p21)
        file_gender = probe.groups.get("gender", "")
        file_gender = "" if file_gender == UNKNOWN else file_gender
        if wikidata_gender:
            summary.gender_sources["wikidata"] += 1
            summary.gender_disagreements += bool(file_gender and file_gender != wikidata_gender)
        elif file_gender:
            summary.gender_sources["file_order"] += 1
        settle("gender", wikidata_gender or file_gender, p21)

        # race and geographic group: P172 through the ethnic-group tables
        p172 = values("P172")
        for attribute, lookup in (("race", self.tables.race), ("geography", self.tables.geography)):
            settle(attribute, _joined(lookup(q) for q in p172), p172, [q for q in p172 if not lookup(q)])

        # continent: of the birthplace's country, else of the citizenships
        p19, p27 = values("P19"), values("P27")
        continent = _joined(c for q in p19 for c in self.continent_of_place(q))
        if not continent:
            continent = _joined(c for q in p27 for c in self.continent_of_country(q))
        unresolved = [q for q in p19 if not self.continent_of_place(q)] + \
                     [q for q in p27 if not self.continent_of_country(q)]
        settle("continent", continent, list(p19) + list(p27), unresolved)
        return out


def probe_labels(case: EditCase, cache: DemographicsCache, tables: DemographicTables,
                 summary: LabelSummary | None = None) -> list[dict[str, str]]:
    """{gender, race, geography, continent} of each probe of `case`, "unknown" where missing; counts go into
    `summary` when given. Reads the cache only."""
    labeller = _Labeller((p.entity_id for p in case.probes), cache, tables)
    summary = summary if summary is not None else LabelSummary()
    return [labeller.label(probe, summary) for probe in case.probes]


def attach_labels(cases: Sequence[EditCase], cache: DemographicsCache, tables: DemographicTables,
                  attributes: Sequence[str] = DEFAULT_ATTACH) -> tuple[list[EditCase], LabelSummary]:
    """Copies of `cases` whose probes' `groups` also hold `attributes` (default race, geography, continent; add
    "gender" to replace the file-order gender by Wikidata's where Wikidata has one), and the summary. Reads the
    cache only, in bulk."""
    unknown = [a for a in attributes if a not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"unknown attributes {unknown}; known: {', '.join(ATTRIBUTES)}")
    labeller = _Labeller((p.entity_id for case in cases for p in case.probes), cache, tables)
    summary = LabelSummary()
    out = []
    for case in cases:
        probes = []
        for probe in case.probes:
            labels = labeller.label(probe, summary)
            groups = {**probe.groups, **{a: labels[a] for a in attributes}}
            probes.append(dataclasses.replace(probe, groups=groups))
        out.append(dataclasses.replace(case, probes=tuple(probes)))
    return out, summary


def label_task_cases(cases: Sequence[EditCase], cache_path: Path | None = None, data_dir: Path | None = None,
                     cache_root: Path | None = None, attributes: Sequence[str] = DEFAULT_ATTACH,
                     offline: bool = False) -> tuple[list[EditCase], LabelSummary]:
    """The runner's one call: load the tables (like task data: local copies, else a download unless `offline`),
    open the cache (default `<cache>/demographics.sqlite`) and attach labels from it (no Wikidata requests)."""
    tables = load_tables(data_dir, cache_root, offline)
    with DemographicsCache(cache_path or default_cache_path(cache_root)) as cache:
        return attach_labels(cases, cache, tables, attributes)
