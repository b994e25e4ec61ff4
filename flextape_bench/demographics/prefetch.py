"""Filling the cache from Wikidata: `fetch_claims` (one hop: the uncached ids in batches, each stored in its own
transaction) and `prefetch` (people, then their birthplaces' countries P17, then countries' continents P30 where the
tables do not know them); offline, only the cache is read and what is missing is counted."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from flextape_bench.demographics.cache import CachedEntity, DemographicsCache
from flextape_bench.demographics.tables import DemographicTables
from flextape_bench.demographics.wikidata import (
    BATCH_SIZE,
    DEFAULT_RETRY,
    PERSON_PROPERTIES,
    PROPERTIES,
    Attempts,
    Fetch,
    RetryPolicy,
    Sleep,
    WikidataError,
    distinct_qids,
    get_json,
    parse_entities,
    urllib_fetch,
    wbgetentities_url,
)


@dataclass
class FetchStats:
    """One hop of fetching. `requested` distinct valid QIDs; `cached` found in the cache beforehand; `fetched` now;
    `missing` still not cached (offline, or unanswered); `not_found` and `redirected` over all requested QIDs in the
    cache; `invalid` inputs that are not QIDs (e.g. empty ids)."""

    requested: int = 0
    cached: int = 0
    fetched: int = 0
    missing: int = 0
    not_found: int = 0
    redirected: int = 0
    invalid: int = 0
    requests: int = 0
    retries: int = 0

    def line(self, what: str) -> str:
        return (
            f"{what}: {self.requested} QIDs, {self.cached} cached before, {self.fetched} fetched, "
            f"{self.missing} missing (not in the cache), {self.not_found} not on Wikidata, {self.redirected} "
            f"redirected"
            + (f", {self.invalid} invalid ids" if self.invalid else "")
            + f"; {self.requests} requests, {self.retries} retries"
        )


def fetch_claims(
    qids: Iterable[str],
    cache: DemographicsCache,
    fetch: Fetch | None = None,
    offline: bool = False,
    *,
    sleep: Sleep = time.sleep,
    policy: RetryPolicy = DEFAULT_RETRY,
    batch_size: int = BATCH_SIZE,
    properties: Sequence[str] = PROPERTIES,
    desc: str | None = None,
) -> FetchStats:
    """Fetch the claims of the `qids` not cached yet, `batch_size` (<= 50) per request, storing each batch in its
    own transaction. Offline, nothing is fetched and uncached QIDs are counted as missing.

    Raises WikidataError when the API stays unreachable; batches stored before that stay cached.
    """
    if not 0 < batch_size <= BATCH_SIZE:
        raise ValueError(f"batch_size must be 1 to {BATCH_SIZE}, got {batch_size}")
    ids, invalid = distinct_qids(qids)
    stats = FetchStats(requested=len(ids), invalid=invalid)
    before = cache.cached(ids, properties)
    stats.cached = len(before)
    todo = [q for q in ids if q not in before]
    if todo and not offline:
        from flextape_bench.progress import progress_bar

        fetch = fetch or urllib_fetch
        attempts = Attempts()
        batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
        try:
            for batch in progress_bar(batches, desc=desc, unit="request"):
                payload = get_json(wbgetentities_url(batch), fetch, sleep, policy, attempts)
                stats.requests += 1
                entities = parse_entities(payload, batch, properties)
                stats.fetched += cache.store(entities.values(), properties)
        except WikidataError as exc:
            raise WikidataError(
                f"{exc} ({stats.cached + stats.fetched} of {len(ids)} QIDs are cached in "
                f"{cache.path}; a rerun fetches only the rest)"
            ) from exc
        finally:
            stats.retries = attempts.retries
    found = cache.lookup(ids)
    stats.missing = len(ids) - len(cache.cached(ids, properties))
    stats.not_found = sum(1 for e in found.values() if e.status == "missing")
    stats.redirected = sum(1 for e in found.values() if e.redirect)
    return stats


@dataclass
class PrefetchReport:
    """The three hops: people (the probes), their birthplaces (for P17), countries (for P30)."""

    people: FetchStats
    places: FetchStats
    countries: FetchStats

    def lines(self) -> list[str]:
        return [
            self.people.line("people"),
            self.places.line("birthplaces (country P17)"),
            self.countries.line("countries (continent P30)"),
        ]


def _places_to_fetch(people: Mapping[str, CachedEntity], tables: DemographicTables | None) -> list[str]:
    known = tables.country_continent.keys() | tables.city_country.keys() if tables else set()
    return [q for e in people.values() for q in e.values("P19") if q not in known]


def _countries_to_fetch(
    people: Mapping[str, CachedEntity], places: Mapping[str, CachedEntity], tables: DemographicTables | None
) -> list[str]:
    known = tables.country_continent.keys() if tables else set()
    countries = [q for e in people.values() for q in e.values("P27")]
    countries += [q for e in places.values() for q in e.values("P17")]
    if tables:
        countries += [
            tables.city_country[q] for e in people.values() for q in e.values("P19") if q in tables.city_country
        ]
    return [q for q in countries if q not in known]


def prefetch(
    qids: Iterable[str],
    cache: DemographicsCache,
    tables: DemographicTables | None = None,
    fetch: Fetch | None = None,
    offline: bool = False,
    *,
    sleep: Sleep = time.sleep,
    policy: RetryPolicy = DEFAULT_RETRY,
    progress: bool = False,
) -> PrefetchReport:
    """Everything labelling the people `qids` needs: their claims, the country (P17) of birthplaces the tables do
    not place, and the continent (P30) of countries the tables do not know."""

    def claims(ids: list[str], what: str) -> FetchStats:
        return fetch_claims(
            ids, cache, fetch, offline, sleep=sleep, policy=policy, desc=f"wikidata: {what}" if progress else None
        )

    ids = list(dict.fromkeys(qids))
    people = claims(ids, "people")
    found = cache.lookup(ids)
    place_ids = _places_to_fetch(found, tables)
    places = claims(place_ids, "birthplaces")
    country_ids = _countries_to_fetch(found, cache.lookup(place_ids), tables)
    countries = claims(country_ids, "countries")
    return PrefetchReport(people, places, countries)


def property_coverage(
    qids: Iterable[str], cache: DemographicsCache, properties: Sequence[str] = PERSON_PROPERTIES
) -> dict[str, dict[str, int]]:
    """Per property: how many of `qids` have a value, have none (fetched, no claim; or not on Wikidata), or are
    missing from the cache."""
    ids, _ = distinct_qids(qids)
    found = cache.lookup(ids)
    out = {}
    for prop in properties:
        with_value = sum(1 for e in found.values() if e.values(prop))
        out[prop] = {"with_value": with_value, "without": len(found) - with_value, "missing": len(ids) - len(found)}
    return out
