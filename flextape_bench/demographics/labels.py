"""Labels of probes from the cache only: per probe {gender, race, geography, continent}, "unknown" where missing,
with a `LabelSummary` counting unlabelled probes per attribute and why. The group-shift metrics' preparation
(`metrics/groups.py`) calls `label_task_cases`.

Gender combines two sources, as the task's `probes.gender_wikidata` says (`combined_gender`): the construction order
the task builder recovered from the file (`probe.groups["gender"]`) and the probe's Wikidata P21 claims."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from flextape_bench.cases import EditCase, Probe
from flextape_bench.demographics.cache import DemographicsCache, default_cache_path
from flextape_bench.demographics.tables import DemographicTables, load_tables
from flextape_bench.demographics.wikidata import is_qid
from flextape_bench.tasks.gender import WIKIDATA_GENDER
from flextape_bench.tasks.spec import GenderWikidata

UNKNOWN = "unknown"
GENDER_WIKIDATA = get_args(GenderWikidata)  # ProbeSpec.gender_wikidata: prefer, fallback, off
GENDER_SOURCES = ("construction_order", "wikidata_p21", "unlabelled")  # where a probe's gender came from
MULTI_SEPARATOR = "+"  # a probe with several distinct labels gets them sorted and joined, e.g. "Jewish+white"
ATTRIBUTES = ("gender", "race", "geography", "continent")
DEFAULT_ATTACH = ("race", "geography", "continent")

# P21 values: the two the benchmark's probe pools were drawn from, and transgender women/men under their gender.
GENDER_LABELS = {**WIKIDATA_GENDER, "Q1052281": "female", "Q2449503": "male"}
OTHER_GENDER = "other"
# P30 values -> the continent names of the upstream tables.
CONTINENT_QIDS = {
    "Q15": "Africa",
    "Q48": "Asia",
    "Q46": "Europe",
    "Q49": "North America",
    "Q18": "South America",
    "Q538": "Oceania",
    "Q55643": "Oceania",
    "Q3960": "Oceania",
    "Q27611": "North America",
    "Q664609": "North America",
    "Q51": "Antarctica",
}


@dataclass
class LabelSummary:
    """Per attribute: probes labelled, unlabelled by reason, label counts, and the Wikidata values that no table
    maps (e.g. P172 ethnic groups without a racial group). Reasons: no_entity_id, cache_absent (no cache file),
    not_cached, not_on_wikidata, no_claim, unmapped, and for gender wikidata_off (no construction order, and
    gender_wikidata "off"). `cached`: probes whose entity the cache holds.
    `gender_sources`: probes per GENDER_SOURCES; `gender_disagreements`: probes whose Wikidata P21 gender differs
    from the construction order. Reports (`lines`, `to_json`) cover `attributes`, the ones attached."""

    attributes: tuple[str, ...] = ATTRIBUTES
    cache_found: bool = True
    probes: int = 0
    cached: int = 0
    labelled: Counter = field(default_factory=Counter)
    unknown: dict[str, Counter] = field(default_factory=lambda: {a: Counter() for a in ATTRIBUTES})
    labels: dict[str, Counter] = field(default_factory=lambda: {a: Counter() for a in ATTRIBUTES})
    unmapped: dict[str, Counter] = field(default_factory=lambda: {a: Counter() for a in ATTRIBUTES})
    gender_sources: Counter = field(default_factory=Counter)
    gender_disagreements: int = 0

    def unlabelled(self, attribute: str) -> int:
        return self.probes - self.labelled[attribute]

    def add(self, other: LabelSummary) -> None:
        self.cache_found = self.cache_found and other.cache_found
        self.probes += other.probes
        self.cached += other.cached
        self.labelled.update(other.labelled)
        for attribute in ATTRIBUTES:
            self.unknown[attribute].update(other.unknown[attribute])
            self.labels[attribute].update(other.labels[attribute])
            self.unmapped[attribute].update(other.unmapped[attribute])
        self.gender_sources.update(other.gender_sources)
        self.gender_disagreements += other.gender_disagreements

    def lines(self, top: int = 5) -> list[str]:
        out = [] if self.cache_found else ["no demographics cache file: no probe has a Wikidata label"]
        for attribute in self.attributes:
            reasons = ", ".join(f"{r} {n}" for r, n in self.unknown[attribute].most_common())
            line = f"{attribute}: {self.labelled[attribute]} of {self.probes} probes labelled"
            if reasons:
                line += f"; unknown: {reasons}"
            if self.unmapped[attribute]:
                line += "; most frequent unmapped values: " + ", ".join(
                    f"{q} ({n})" for q, n in self.unmapped[attribute].most_common(top)
                )
            out.append(line)
        if "gender" in self.attributes:
            out.append(
                "gender sources: "
                + ", ".join(f"{s} {self.gender_sources[s]}" for s in GENDER_SOURCES)
                + f"; Wikidata P21 disagrees with the construction order for {self.gender_disagreements}"
            )
        return out

    def to_json(self) -> dict[str, Any]:
        out = {
            "attributes": list(self.attributes),
            "cache_found": self.cache_found,
            "probes": self.probes,
            "cached": self.cached,
            "labelled": {a: self.labelled[a] for a in self.attributes},
            "unknown": {a: dict(self.unknown[a]) for a in self.attributes},
            "labels": {a: dict(self.labels[a]) for a in self.attributes},
            "unmapped": {a: dict(self.unmapped[a].most_common(50)) for a in self.attributes},
        }
        if "gender" in self.attributes:
            out |= {
                "gender_sources": {s: self.gender_sources[s] for s in GENDER_SOURCES},
                "gender_disagreements": self.gender_disagreements,
            }
        return out


def _joined(labels: Iterable[str]) -> str:
    distinct = sorted({label for label in labels if label})
    return MULTI_SEPARATOR.join(distinct) if distinct else ""


def combined_gender(order: str, wikidata: str, mode: str) -> tuple[str, str]:
    """(gender, source) from the construction-order gender and the Wikidata P21 gender ("" where unknown): `prefer`
    takes Wikidata's where it has one, `fallback` only where the order gives none, `off` never."""
    if mode not in GENDER_WIKIDATA:
        raise ValueError(f"unknown gender_wikidata {mode!r}; known: {', '.join(GENDER_WIKIDATA)}")
    if wikidata and (mode == "prefer" or (mode == "fallback" and not order)):
        return wikidata, "wikidata_p21"
    return (order, "construction_order") if order else ("", "unlabelled")


class _Labeller:
    """Labels probes from bulk cache lookups (people, then their birthplaces and countries); no cache (None) holds
    nothing. `gender_wikidata` combines the two gender sources (see `combined_gender`)."""

    def __init__(
        self,
        ids: Iterable[str],
        cache: DemographicsCache | None,
        tables: DemographicTables,
        gender_wikidata: str = "fallback",
    ):
        self.tables, self.cache_found, self.gender_wikidata = tables, cache is not None, gender_wikidata
        lookup = cache.lookup if cache is not None else (lambda qids: {})
        self.people = lookup(q for q in ids if is_qid(q))
        place_ids = {q for e in self.people.values() for q in e.values("P19")}
        self.places = lookup(place_ids)
        country_ids = {q for e in self.people.values() for q in e.values("P27")}
        country_ids |= {q for e in self.places.values() for q in e.values("P17")}
        country_ids |= {tables.city_country[q] for q in place_ids if q in tables.city_country}
        self.countries = lookup(country_ids)

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
        summary.cached += entity is not None
        if not probe.entity_id:
            absent = "no_entity_id"
        elif entity is None:
            absent = "not_cached" if self.cache_found else "cache_absent"
        elif entity.status == "missing":
            absent = "not_on_wikidata"
        else:
            absent = ""
        values = (lambda prop: entity.values(prop)) if entity is not None and not absent else (lambda prop: ())
        out: dict[str, str] = {}

        def settle(
            attribute: str, label: str, claims: Sequence[str], unmapped: Iterable[str] = (), reason: str = ""
        ) -> None:
            if label:
                out[attribute] = label
                summary.labelled[attribute] += 1
                summary.labels[attribute][label] += 1
                return
            out[attribute] = UNKNOWN
            summary.unknown[attribute][reason or absent or ("unmapped" if claims else "no_claim")] += 1
            summary.unmapped[attribute].update(unmapped)

        # gender: the construction order and Wikidata P21, combined as `gender_wikidata` says
        p21 = values("P21")
        wikidata_gender = _joined(GENDER_LABELS.get(q, OTHER_GENDER) for q in p21)
        order_gender = probe.groups.get("gender", UNKNOWN)
        order_gender = "" if order_gender == UNKNOWN else order_gender
        gender, source = combined_gender(order_gender, wikidata_gender, self.gender_wikidata)
        summary.gender_sources[source] += 1
        summary.gender_disagreements += bool(order_gender and wikidata_gender and order_gender != wikidata_gender)
        settle("gender", gender, p21, reason="wikidata_off" if self.gender_wikidata == "off" else "")

        # race and geographic group: P172 through the ethnic-group tables
        p172 = values("P172")
        for attribute, lookup in (("race", self.tables.race), ("geography", self.tables.geography)):
            settle(attribute, _joined(lookup(q) for q in p172), p172, [q for q in p172 if not lookup(q)])

        # continent: of the birthplace's country, else of the citizenships
        p19, p27 = values("P19"), values("P27")
        continent = _joined(c for q in p19 for c in self.continent_of_place(q))
        if not continent:
            continent = _joined(c for q in p27 for c in self.continent_of_country(q))
        unresolved = [q for q in p19 if not self.continent_of_place(q)] + [
            q for q in p27 if not self.continent_of_country(q)
        ]
        settle("continent", continent, list(p19) + list(p27), unresolved)
        return out


def probe_labels(
    case: EditCase,
    cache: DemographicsCache | None,
    tables: DemographicTables,
    summary: LabelSummary | None = None,
    gender_wikidata: str = "fallback",
) -> list[dict[str, str]]:
    """{gender, race, geography, continent} of each probe of `case`, "unknown" where missing; counts go into
    `summary` when given. Reads the cache only."""
    labeller = _Labeller((p.entity_id for p in case.probes), cache, tables, gender_wikidata)
    summary = summary if summary is not None else LabelSummary()
    return [labeller.label(probe, summary) for probe in case.probes]


def attach_labels(
    cases: Sequence[EditCase],
    cache: DemographicsCache | None,
    tables: DemographicTables,
    attributes: Sequence[str] = DEFAULT_ATTACH,
    gender_wikidata: str = "fallback",
) -> tuple[list[EditCase], LabelSummary]:
    """Copies of `cases` whose probes' `groups` also hold `attributes` (default race, geography, continent; add
    "gender" to combine the construction-order gender with Wikidata's as `gender_wikidata` says), and the summary
    of those attributes. Reads the cache only, in bulk; no cache (None) holds nothing."""
    unknown = [a for a in attributes if a not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"unknown attributes {unknown}; known: {', '.join(ATTRIBUTES)}")
    labeller = _Labeller((p.entity_id for case in cases for p in case.probes), cache, tables, gender_wikidata)
    summary = LabelSummary(attributes=tuple(attributes), cache_found=cache is not None)
    out = []
    for case in cases:
        probes = []
        for probe in case.probes:
            labels = labeller.label(probe, summary)
            groups = {**probe.groups, **{a: labels[a] for a in attributes}}
            probes.append(dataclasses.replace(probe, groups=groups))
        out.append(dataclasses.replace(case, probes=tuple(probes)))
    return out, summary


def label_task_cases(
    cases: Sequence[EditCase],
    cache_path: Path | None = None,
    data_dir: Path | None = None,
    cache_root: Path | None = None,
    attributes: Sequence[str] = DEFAULT_ATTACH,
    offline: bool = False,
    gender_wikidata: str = "fallback",
) -> tuple[list[EditCase], LabelSummary]:
    """The runner's one call: load the tables that `attributes` need (like task data: local copies, else a download
    unless `offline`; gender needs none), open the cache (default `<cache>/demographics.sqlite`) and attach labels
    from it (no Wikidata requests). A cache file that does not exist is not created: its probes count as
    `cache_absent`."""
    needs_tables = any(a != "gender" for a in attributes)
    tables = load_tables(data_dir, cache_root, offline) if needs_tables else DemographicTables()
    path = cache_path or default_cache_path(cache_root)
    if not path.is_file():
        return attach_labels(cases, None, tables, attributes, gender_wikidata)
    with DemographicsCache(path) as cache:
        return attach_labels(cases, cache, tables, attributes, gender_wikidata)
