"""Demographic labels of probes from Wikidata: gender (P21), race and geographic group (ethnic group P172 through the
upstream Seesaw-CF mapping tables) and continent (country of birthplace P19, else citizenship P27).

Layers, each usable alone:
- fetching: `wbgetentities` in batches of 50 over urllib, retried with exponential backoff on 429/5xx/connection
  errors (Retry-After honoured); the HTTP function is injectable (`fetch(url) -> bytes`).
- `parse_entities`: a wbgetentities response -> `Entity` per requested id (missing entities, redirects, no claims).
- `DemographicsCache`: SQLite file of (qid, property, value_qid, rank) rows plus one row per fetched qid (status,
  redirect, fetched-at), so an entity without claims is never fetched again; every write is one transaction.
- `fetch_claims` (one hop) and `prefetch` (people, then their birthplaces' countries P17, then countries' continents
  P30 where the tables do not know them); offline mode reads the cache only and counts what is missing.
- `DemographicTables`: ethnic group -> racial/geographic group (upstream P101/P103_ethnic_groups.csv), city ->
  country (upstream city_to_country.csv, country_codes.csv), country -> continent (packaged data/continents.csv
  with the upstream country_codes.csv and P27_cats.csv on top).
- `probe_labels` / `attach_labels`: per probe {gender, race, geography, continent}, "unknown" where missing, with a
  `LabelSummary` counting unlabelled probes per attribute and why.

The runner uses the cache only (no network during a run); `flextape-bench demographics` fills it beforehand.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import email.utils
import gzip
import http.client
import importlib.resources
import io
import json
import os
import re
import sqlite3
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import flextape_bench
from flextape_bench.cases import EditCase, Probe
from flextape_bench.errors import UserError
from flextape_bench.paths import cache_dir
from flextape_bench.tasks.data import DATA_DIR_ENV, resolve_dataset
from flextape_bench.tasks.gender import WIKIDATA_GENDER
from flextape_bench.tasks.spec import DatasetSpec

API_URL = "https://www.wikidata.org/w/api.php"
BATCH_SIZE = 50  # wbgetentities accepts at most 50 ids per request (anonymous clients)
CACHE_FILE = "demographics.sqlite"
UNKNOWN = "unknown"
MULTI_SEPARATOR = "+"  # a probe with several distinct labels gets them sorted and joined, e.g. "Jewish+white"

PERSON_PROPERTIES = ("P21", "P172", "P27", "P19")  # gender, ethnic group, citizenship, place of birth
PLACE_PROPERTIES = ("P17", "P30")  # country (of a birthplace), continent (of a country)
PROPERTIES = PERSON_PROPERTIES + PLACE_PROPERTIES  # kept for every fetched entity
PROPERTY_NAMES = {"P21": "gender", "P172": "ethnic group", "P27": "citizenship", "P19": "birthplace",
                  "P17": "country", "P30": "continent"}
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

UPSTREAM_URL = "https://raw.githubusercontent.com/ENSCMA2/flextape/1a4da271b89d50505811bf4bf5774a82091da9ea/data/"
UPSTREAM_FILES = {  # file -> sha256 (MANIFEST.tsv of the Seesaw-CF copy)
    "P101_ethnic_groups.csv": "bdeadcb222fe124bef4655b7c66b6d8dafc8d0e36b37a983a6cb6db93b485852",
    "P103_ethnic_groups.csv": "19c113e718d3da045c30b4b4d39bdbd795b100995521140bffe962a21a9561dc",
    "country_codes.csv": "550fba318caeeea08e5f57d8a97c376b2630af1c866eb6cda36d163067d81441",
    "city_to_country.csv": "48cf0e179877a73213d3067e1879f9c077864fb3724cd1128f4315d5a53e07d0",
    "P27_cats.csv": "293118a8fcaaff4005d80bf929a548707505b453fcf96d1b7350b2457d612960",
}
ETHNIC_FILES = ("P101_ethnic_groups.csv", "P103_ethnic_groups.csv")  # in precedence order

_QID = re.compile(r"Q[1-9][0-9]*")
_SQL_CHUNK = 500  # ids per `IN (...)` query (SQLite allows 999 parameters on old builds)

Fetch = Callable[[str], bytes]
Sleep = Callable[[float], None]


# ----------------------------------------------------------------------------------------------------------- HTTP

class WikidataError(UserError):
    """The Wikidata API could not be used (network down, refused request, API error); the message says what to do."""


def user_agent() -> str:
    """Descriptive User-Agent (Wikimedia policy): project, version, a URL or contact (the package metadata's
    Project-URL, or $FLEXTAPE_CONTACT when set) and purpose."""
    contact = os.environ.get("FLEXTAPE_CONTACT", "").strip()
    if not contact:
        try:
            from importlib.metadata import metadata

            meta = metadata("flextape-bench")
            urls = [value.split(",", 1)[-1].strip() for value in meta.get_all("Project-URL") or []]
            home = (meta.get("Home-page") or "").strip()
            contact = urls[0] if urls else (home if home.upper() != "UNKNOWN" else "")
        except Exception:  # not installed: no URL to give
            contact = ""
    about = f"{contact}; " if contact else ""
    return (f"flextape-bench/{flextape_bench.__version__} ({about}Seesaw-CF benchmark: demographic labels of "
            f"probe entities) Python-urllib/{sys.version_info.major}.{sys.version_info.minor}")


def urllib_fetch(url: str, timeout: float = 60.0) -> bytes:
    """GET `url` with the project's User-Agent, accepting gzip; raises urllib/OS errors as they come."""
    request = urllib.request.Request(url, headers={"User-Agent": user_agent(), "Accept": "application/json",
                                                   "Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
        if (response.headers.get("Content-Encoding") or "").lower() == "gzip":
            body = gzip.decompress(body)
    return body


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: attempt k (0-based) waits base_delay * 2**k, capped at max_delay, or longer when the
    server's Retry-After says so (up to max_retry_after; a longer demand ends the fetch with an error)."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 600.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.base_delay * (2 ** attempt), self.max_delay)
        return max(backoff, retry_after or 0.0)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def wbgetentities_url(qids: Sequence[str]) -> str:
    """The wbgetentities request for the claims of `qids` (at most BATCH_SIZE), with maxlag as bots should."""
    if not 0 < len(qids) <= BATCH_SIZE:
        raise ValueError(f"wbgetentities takes 1 to {BATCH_SIZE} ids, got {len(qids)}")
    query = urllib.parse.urlencode({"action": "wbgetentities", "ids": "|".join(qids), "props": "claims",
                                    "format": "json", "maxlag": "5"}, safe="|")
    return f"{API_URL}?{query}"


@dataclass
class _Attempts:
    """Retries spent, across requests."""

    retries: int = 0


def get_json(url: str, fetch: Fetch, sleep: Sleep = time.sleep, policy: RetryPolicy = RetryPolicy(),
             attempts: _Attempts | None = None) -> dict[str, Any]:
    """The JSON object at `url`, retrying 429, 5xx, maxlag, connection errors and unreadable bodies.

    Raises WikidataError after `policy.attempts` failures, on any other HTTP error, or on an API error.
    """
    reason = "no attempt made"
    for attempt in range(policy.attempts):
        retry_after: float | None = None
        try:
            payload = json.loads(fetch(url))
        except urllib.error.HTTPError as exc:
            if exc.code != 429 and exc.code < 500:
                raise WikidataError(f"the Wikidata API refused the request (HTTP {exc.code} {exc.reason}); "
                                    f"this is not a network problem, report it with the command you ran") from exc
            reason = f"HTTP {exc.code} {exc.reason}"
            retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, truncated transfers
            reason = f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"
        except (ValueError, UnicodeDecodeError) as exc:  # a cut-off or garbled body
            reason = f"unreadable response ({exc})"
        else:
            error = payload.get("error") if isinstance(payload, dict) else {"info": "not a JSON object"}
            if error is None:
                return payload
            if error.get("code") != "maxlag":
                raise WikidataError(f"the Wikidata API answered with an error ({error.get('code', '?')}: "
                                    f"{error.get('info', '')}); report it with the command you ran")
            reason = f"the servers are lagging ({error.get('info', 'maxlag')})"
        if attempt + 1 == policy.attempts:
            break
        if retry_after is not None and retry_after > policy.max_retry_after:
            raise WikidataError(f"the Wikidata API asks to wait {retry_after:.0f} s ({reason}); try again later, "
                                f"or use the cache only (--offline)")
        if attempts is not None:
            attempts.retries += 1
        sleep(policy.delay(attempt, retry_after))
    raise WikidataError(f"cannot reach the Wikidata API ({reason}) after {policy.attempts} attempts; rerun with "
                        f"network access, or use the cache only (--offline)")


# -------------------------------------------------------------------------------------------------------- parsing

@dataclass(frozen=True)
class Entity:
    """What one wbgetentities answer says about a requested id: `status` "ok" or "missing" (deleted or never
    existed); `redirect` the id it was merged into; `claims` property -> ((value QID, rank), ...), item values only,
    deprecated statements dropped."""

    qid: str
    status: str = "ok"
    redirect: str | None = None
    claims: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


def is_qid(value: object) -> bool:
    return isinstance(value, str) and _QID.fullmatch(value) is not None


def _item_value(statement: Any) -> tuple[str, str] | None:
    """(QID, rank) of a statement whose main snak is an item value; None for other statements."""
    if not isinstance(statement, dict):
        return None
    rank = statement.get("rank", "normal")
    snak = statement.get("mainsnak")
    if rank == "deprecated" or not isinstance(snak, dict) or snak.get("snaktype", "value") != "value":
        return None
    datavalue = snak.get("datavalue")
    if not isinstance(datavalue, dict) or datavalue.get("type") != "wikibase-entityid":
        return None
    value = datavalue.get("value")
    if not isinstance(value, dict):
        return None
    qid = value.get("id")
    if qid is None and value.get("entity-type", "item") == "item" and isinstance(value.get("numeric-id"), int):
        qid = f"Q{value['numeric-id']}"
    return (qid, rank if rank in ("preferred", "normal") else "normal") if is_qid(qid) else None


def parse_entities(payload: Mapping[str, Any], requested: Iterable[str],
                   properties: Sequence[str] = PROPERTIES) -> dict[str, Entity]:
    """Entities of a wbgetentities response, keyed by the requested id (a redirected id keeps its own key, the
    response's outer key, with `redirect` naming the target). Requested ids the response does not mention are left
    out (the caller does not mark them fetched)."""
    entities = payload.get("entities")
    if not isinstance(entities, dict):
        raise WikidataError("the Wikidata API answered without 'entities'; report it with the command you ran")
    by_key = {str(key).upper(): value for key, value in entities.items()}
    out: dict[str, Entity] = {}
    for qid in requested:
        data = by_key.get(qid.upper())
        if not isinstance(data, dict):
            continue
        if "missing" in data:
            out[qid] = Entity(qid, status="missing")
            continue
        redirects = data.get("redirects")
        target = redirects.get("to") if isinstance(redirects, dict) else None
        if target is None and is_qid(data.get("id")) and data["id"] != qid:
            target = data["id"]
        claims = data.get("claims")
        claims = claims if isinstance(claims, dict) else {}  # PHP encodes no claims as []
        values: dict[str, tuple[tuple[str, str], ...]] = {}
        for prop in properties:
            statements = claims.get(prop)
            found = [v for v in map(_item_value, statements if isinstance(statements, list) else []) if v]
            if found:
                values[prop] = tuple(dict.fromkeys(found))
        out[qid] = Entity(qid, status="ok", redirect=target if target != qid else None, claims=values)
    return out


def truthy(values: Iterable[tuple[str, str]]) -> list[str]:
    """Best-ranked values (preferred ones when any, else normal ones), in order, without repeats."""
    values = list(values)
    best = [q for q, rank in values if rank == "preferred"] or [q for q, rank in values if rank == "normal"]
    return list(dict.fromkeys(best))


# ---------------------------------------------------------------------------------------------------------- cache

def default_cache_path(cache_root: Path | None = None) -> Path:
    """`<cache>/demographics.sqlite`, `<cache>` as in flextape_bench.paths.cache_dir()."""
    return (cache_root if cache_root is not None else cache_dir()) / CACHE_FILE


@dataclass(frozen=True)
class CachedEntity:
    """A fetched entity as the cache holds it: claims are truthy values per property."""

    qid: str
    status: str
    redirect: str | None
    fetched_at: float
    claims: Mapping[str, tuple[str, ...]]

    def values(self, prop: str) -> tuple[str, ...]:
        return self.claims.get(prop, ())


class DemographicsCache:
    """SQLite cache of Wikidata item claims. Tables: `claims(qid, property, value_qid, rank)` and
    `fetched(qid, status, redirect, fetched_at, properties)`; a qid is cached when its `fetched` row lists every
    property asked for. Writes happen in single transactions (a crash leaves whole batches or nothing)."""

    SCHEMA_VERSION = 1

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise UserError(f"cannot open the demographics cache {self.path} ({exc}); delete it or pass --cache "
                            f"with another path") from exc
        except OSError as exc:
            raise UserError(f"cannot create the demographics cache {self.path} ({exc}); pass --cache with a "
                            f"writable path") from exc
        if version not in (0, self.SCHEMA_VERSION):
            self._db.close()
            raise UserError(f"the demographics cache {self.path} has schema version {version}, this version of "
                            f"flextape-bench reads {self.SCHEMA_VERSION}; delete the file and fetch again")
        if version == 0:
            with self._transaction():
                self._db.execute("CREATE TABLE IF NOT EXISTS claims (qid TEXT NOT NULL, property TEXT NOT NULL, "
                                 "value_qid TEXT NOT NULL, rank TEXT NOT NULL, "
                                 "PRIMARY KEY (qid, property, value_qid))")
                self._db.execute("CREATE TABLE IF NOT EXISTS fetched (qid TEXT PRIMARY KEY, status TEXT NOT NULL, "
                                 "redirect TEXT, fetched_at REAL NOT NULL, properties TEXT NOT NULL)")
                self._db.execute(f"PRAGMA user_version = {self.SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "DemographicsCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
        for start in range(0, len(items), _SQL_CHUNK):
            yield items[start:start + _SQL_CHUNK]

    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, kind: object, *rest: object) -> None:
            self.db.execute("ROLLBACK" if kind is not None else "COMMIT")

    def _transaction(self) -> "_Tx":
        return self._Tx(self._db)

    def store(self, entities: Iterable[Entity], properties: Sequence[str] = PROPERTIES,
              fetched_at: float | None = None) -> int:
        """Replace the cached claims of `entities` and mark them fetched for `properties`, in one transaction."""
        entities = list(entities)
        when = time.time() if fetched_at is None else fetched_at
        listed = ",".join(sorted(set(properties)))
        with self._transaction():
            for entity in entities:
                self._db.execute("DELETE FROM claims WHERE qid = ?", (entity.qid,))
                self._db.executemany(
                    "INSERT OR REPLACE INTO claims (qid, property, value_qid, rank) VALUES (?, ?, ?, ?)",
                    [(entity.qid, prop, value, rank) for prop, values in entity.claims.items() if prop in properties
                     for value, rank in values])
                self._db.execute("INSERT OR REPLACE INTO fetched (qid, status, redirect, fetched_at, properties) "
                                 "VALUES (?, ?, ?, ?, ?)", (entity.qid, entity.status, entity.redirect, when, listed))
        return len(entities)

    def cached(self, qids: Iterable[str], properties: Sequence[str] = PROPERTIES) -> set[str]:
        """The `qids` fetched with every one of `properties`."""
        need = set(properties)
        ids = list(dict.fromkeys(qids))
        out: set[str] = set()
        for chunk in self._chunks(ids):
            rows = self._db.execute(f"SELECT qid, properties FROM fetched WHERE qid IN ({','.join('?' * len(chunk))})",
                                    list(chunk)).fetchall()
            out.update(qid for qid, listed in rows if need <= set(listed.split(",")))
        return out

    def lookup(self, qids: Iterable[str]) -> dict[str, CachedEntity]:
        """Cached entities of `qids` (absent ones left out), claims reduced to truthy values."""
        ids = list(dict.fromkeys(q for q in qids if q))
        heads: dict[str, tuple[str, str | None, float]] = {}
        raw: dict[str, dict[str, list[tuple[str, str]]]] = {}
        for chunk in self._chunks(ids):
            marks = ",".join("?" * len(chunk))
            for qid, status, redirect, when in self._db.execute(
                    f"SELECT qid, status, redirect, fetched_at FROM fetched WHERE qid IN ({marks})", list(chunk)):
                heads[qid] = (status, redirect, when)
            for qid, prop, value, rank in self._db.execute(
                    f"SELECT qid, property, value_qid, rank FROM claims WHERE qid IN ({marks}) ORDER BY rowid",
                    list(chunk)):
                raw.setdefault(qid, {}).setdefault(prop, []).append((value, rank))
        return {qid: CachedEntity(qid, status, redirect, when,
                                  {p: tuple(truthy(v)) for p, v in raw.get(qid, {}).items()})
                for qid, (status, redirect, when) in heads.items()}

    def get(self, qid: str) -> CachedEntity | None:
        return self.lookup([qid]).get(qid)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM fetched").fetchone()[0]


# -------------------------------------------------------------------------------------------------------- fetching

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
        return (f"{what}: {self.requested} QIDs, {self.cached} cached before, {self.fetched} fetched, "
                f"{self.missing} missing (not in the cache), {self.not_found} not on Wikidata, {self.redirected} "
                f"redirected" + (f", {self.invalid} invalid ids" if self.invalid else "")
                + f"; {self.requests} requests, {self.retries} retries")


def _distinct_qids(qids: Iterable[str]) -> tuple[list[str], int]:
    ids, invalid = [], 0
    for qid in dict.fromkeys(qids):
        if is_qid(qid):
            ids.append(qid)
        else:
            invalid += 1
    return ids, invalid


def fetch_claims(qids: Iterable[str], cache: DemographicsCache, fetch: Fetch | None = None, offline: bool = False, *,
                 sleep: Sleep = time.sleep, policy: RetryPolicy = RetryPolicy(), batch_size: int = BATCH_SIZE,
                 properties: Sequence[str] = PROPERTIES, desc: str | None = None) -> FetchStats:
    """Fetch the claims of the `qids` not cached yet, `batch_size` (<= 50) per request, storing each batch in its
    own transaction. Offline, nothing is fetched and uncached QIDs are counted as missing.

    Raises WikidataError when the API stays unreachable; batches stored before that stay cached.
    """
    if not 0 < batch_size <= BATCH_SIZE:
        raise ValueError(f"batch_size must be 1 to {BATCH_SIZE}, got {batch_size}")
    ids, invalid = _distinct_qids(qids)
    stats = FetchStats(requested=len(ids), invalid=invalid)
    before = cache.cached(ids, properties)
    stats.cached = len(before)
    todo = [q for q in ids if q not in before]
    if todo and not offline:
        from flextape_bench.progress import progress_bar

        fetch = fetch or urllib_fetch
        attempts = _Attempts()
        batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
        try:
            for batch in progress_bar(batches, desc=desc, unit="request"):
                payload = get_json(wbgetentities_url(batch), fetch, sleep, policy, attempts)
                stats.requests += 1
                entities = parse_entities(payload, batch, properties)
                stats.fetched += cache.store(entities.values(), properties)
        except WikidataError as exc:
            raise WikidataError(f"{exc} ({stats.cached + stats.fetched} of {len(ids)} QIDs are cached in "
                                f"{cache.path}; a rerun fetches only the rest)") from exc
        finally:
            stats.retries = attempts.retries
    found = cache.lookup(ids)
    stats.missing = len(ids) - len(cache.cached(ids, properties))
    stats.not_found = sum(1 for e in found.values() if e.status == "missing")
    stats.redirected = sum(1 for e in found.values() if e.redirect)
    return stats


# ---------------------------------------------------------------------------------------------------------- tables

@dataclass(frozen=True)
class EthnicGroup:
    """A row of the upstream ethnic-group tables ("" where the table leaves a group blank)."""

    qid: str
    name: str
    race: str
    geography: str


@dataclass
class DemographicTables:
    """Mappings from Wikidata values to groups. `notes` records merge conflicts and unreadable rows."""

    ethnic_groups: dict[str, EthnicGroup] = field(default_factory=dict)
    country_continent: dict[str, str] = field(default_factory=dict)
    city_country: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_files(cls, ethnic: Sequence[Path] = (), country_codes: Path | None = None,
                   city_to_country: Path | None = None, p27_cats: Path | None = None,
                   packaged: bool = True) -> "DemographicTables":
        """Tables from the upstream CSV files (any may be left out) over the packaged country -> continent table."""
        tables = cls()
        if packaged:
            for qid, name, continent in _packaged_continents():
                tables.country_continent[qid] = continent
        for path in ethnic:
            tables._merge_ethnic(path)
        names: dict[str, str] = {}
        if country_codes is not None:
            for row in _csv_rows(country_codes, 3):
                name, qid, continent = (cell.strip() for cell in row[:3])
                names.setdefault(name.casefold(), qid)
                tables._set_continent(qid, continent, country_codes)
        if p27_cats is not None:
            for row in _csv_rows(p27_cats, 3):
                qid, name, continent = (cell.strip() for cell in row[:3])
                names.setdefault(name.casefold(), qid)
                tables._set_continent(qid, continent, p27_cats)
        if city_to_country is not None:
            unknown = Counter()
            # columns 1-2: city QID, its country's name; columns 3-4 are an unrelated (QID, city name) list
            for row in _csv_rows(city_to_country, 2):
                city, country = row[0].strip(), row[1].strip()
                if not is_qid(city):
                    continue
                if country.casefold() in names:
                    tables.city_country[city] = names[country.casefold()]
                else:
                    unknown[country] += 1
            if unknown:
                tables.notes.append(f"{city_to_country.name}: country names without a QID in the country tables: "
                                    + ", ".join(f"{n} ({c})" for n, c in unknown.most_common()))
        return tables

    def _merge_ethnic(self, path: Path) -> None:
        """Add a table's rows: earlier tables win where both give a group, blanks are filled from later ones; group
        spellings that differ only in case take the first spelling seen ("black" -> "Black")."""
        rows = _csv_dicts(path, ("Code", "Name", "Geo Group", "Racial Group"))
        spelling = {v.casefold(): v for g in self.ethnic_groups.values() for v in (g.race, g.geography) if v}
        for row in rows:
            qid = row["Code"].strip()
            if not is_qid(qid):
                self.notes.append(f"{path.name}: skipped a row with code {qid!r}")
                continue
            race = spelling.setdefault(row["Racial Group"].strip().casefold(), row["Racial Group"].strip())
            geo = spelling.setdefault(row["Geo Group"].strip().casefold(), row["Geo Group"].strip())
            old = self.ethnic_groups.get(qid)
            if old is None:
                self.ethnic_groups[qid] = EthnicGroup(qid, row["Name"].strip(), race, geo)
                continue
            for what, mine, theirs in (("racial group", old.race, race), ("geo group", old.geography, geo)):
                if mine and theirs and mine != theirs:
                    self.notes.append(f"{path.name}: {qid} {old.name}: {what} {theirs!r} ignored, keeping {mine!r}")
            self.ethnic_groups[qid] = EthnicGroup(qid, old.name, old.race or race, old.geography or geo)

    def _set_continent(self, qid: str, continent: str, source: Path) -> None:
        if not is_qid(qid) or not continent or continent == "None":
            return
        old = self.country_continent.get(qid)
        if old is not None and old != continent:
            self.notes.append(f"{source.name}: {qid}: continent {continent!r} replaces {old!r}")
        self.country_continent[qid] = continent

    # lookups ------------------------------------------------------------------------------------------------
    def race(self, ethnic_qid: str) -> str:
        group = self.ethnic_groups.get(ethnic_qid)
        return group.race if group else ""

    def geography(self, ethnic_qid: str) -> str:
        group = self.ethnic_groups.get(ethnic_qid)
        return group.geography if group else ""


def _packaged_continents() -> list[tuple[str, str, str]]:
    text = importlib.resources.files("flextape_bench").joinpath("data/continents.csv").read_text(encoding="utf-8")
    rows = csv.reader(line for line in io.StringIO(text) if line.strip() and not line.startswith("#"))
    header = next(rows)
    if header != ["qid", "name", "continent"]:
        raise RuntimeError(f"flextape_bench/data/continents.csv: unexpected header {header}")
    return [(r[0], r[1], r[2]) for r in rows]


def _csv_rows(path: Path, width: int) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            rows = [row for row in csv.reader(stream) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {path} ({exc}); delete it and let it be downloaded again") from exc
    bad = [i + 1 for i, row in enumerate(rows) if len(row) < width]
    if bad:
        raise UserError(f"{path}:{bad[0]}: expected at least {width} columns; wrong or damaged file?")
    return rows


def _csv_dicts(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            reader = csv.DictReader(stream)
            rows = list(reader)
            header = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {path} ({exc}); delete it and let it be downloaded again") from exc
    missing = [c for c in columns if c not in header]
    if missing:
        raise UserError(f"{path}: no column {missing[0]!r} (columns: {', '.join(header)}); wrong or damaged file?")
    return [{k: (v or "") for k, v in row.items() if k is not None} for row in rows]


def upstream_dataset(name: str) -> DatasetSpec:
    return DatasetSpec(file=name, url=UPSTREAM_URL + name, sha256=UPSTREAM_FILES[name])


def data_file(name: str, data_dir: Path | None = None, cache_root: Path | None = None, offline: bool = False) -> Path:
    """Local path of an upstream table: found like task data (data_dir, $FLEXTAPE_DATA_DIR, cache), else downloaded
    from the pinned upstream commit (not offline) and checked against its sha256."""
    root = cache_root if cache_root is not None else cache_dir()
    return resolve_dataset("demographics", upstream_dataset(name), data_dir, root, offline)


def load_tables(data_dir: Path | None = None, cache_root: Path | None = None,
                offline: bool = False) -> DemographicTables:
    """The mapping tables from the upstream Seesaw-CF files (see `data_file`) and the packaged continents table."""
    get = lambda name: data_file(name, data_dir, cache_root, offline)  # noqa: E731
    return DemographicTables.from_files(ethnic=[get(name) for name in ETHNIC_FILES],
                                        country_codes=get("country_codes.csv"),
                                        city_to_country=get("city_to_country.csv"), p27_cats=get("P27_cats.csv"))


# -------------------------------------------------------------------------------------------------------- prefetch

@dataclass
class PrefetchReport:
    """The three hops: people (the probes), their birthplaces (for P17), countries (for P30)."""

    people: FetchStats
    places: FetchStats
    countries: FetchStats

    def lines(self) -> list[str]:
        return [self.people.line("people"), self.places.line("birthplaces (country P17)"),
                self.countries.line("countries (continent P30)")]


def _places_to_fetch(people: Mapping[str, CachedEntity], tables: DemographicTables | None) -> list[str]:
    known = tables.country_continent.keys() | tables.city_country.keys() if tables else set()
    return [q for e in people.values() for q in e.values("P19") if q not in known]


def _countries_to_fetch(people: Mapping[str, CachedEntity], places: Mapping[str, CachedEntity],
                        tables: DemographicTables | None) -> list[str]:
    known = tables.country_continent.keys() if tables else set()
    countries = [q for e in people.values() for q in e.values("P27")]
    countries += [q for e in places.values() for q in e.values("P17")]
    if tables:
        countries += [tables.city_country[q] for e in people.values() for q in e.values("P19")
                      if q in tables.city_country]
    return [q for q in countries if q not in known]


def prefetch(qids: Iterable[str], cache: DemographicsCache, tables: DemographicTables | None = None,
             fetch: Fetch | None = None, offline: bool = False, *, sleep: Sleep = time.sleep,
             policy: RetryPolicy = RetryPolicy(), progress: bool = False) -> PrefetchReport:
    """Everything labelling the people `qids` needs: their claims, the country (P17) of birthplaces the tables do
    not place, and the continent (P30) of countries the tables do not know."""
    ids = list(dict.fromkeys(qids))
    common = dict(fetch=fetch, offline=offline, sleep=sleep, policy=policy)
    people = fetch_claims(ids, cache, desc="wikidata: people" if progress else None, **common)
    found = cache.lookup(ids)
    place_ids = _places_to_fetch(found, tables)
    places = fetch_claims(place_ids, cache, desc="wikidata: birthplaces" if progress else None, **common)
    country_ids = _countries_to_fetch(found, cache.lookup(place_ids), tables)
    countries = fetch_claims(country_ids, cache, desc="wikidata: countries" if progress else None, **common)
    return PrefetchReport(people, places, countries)


def property_coverage(qids: Iterable[str], cache: DemographicsCache,
                      properties: Sequence[str] = PERSON_PROPERTIES) -> dict[str, dict[str, int]]:
    """Per property: how many of `qids` have a value, have none (fetched, no claim; or not on Wikidata), or are
    missing from the cache."""
    ids, _ = _distinct_qids(qids)
    found = cache.lookup(ids)
    out = {}
    for prop in properties:
        with_value = sum(1 for e in found.values() if e.values(prop))
        out[prop] = {"with_value": with_value, "without": len(found) - with_value, "missing": len(ids) - len(found)}
    return out


# -------------------------------------------------------------------------------------------------------- labelling

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


# ------------------------------------------------------------------------------------------------------------- CLI

def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """The `demographics` command: fill the Wikidata cache for every probe of the tasks and print counts."""
    parser = subparsers.add_parser(
        "demographics", help="fetch the Wikidata claims (gender, ethnic group, citizenship, birthplace) of every "
                             "probe into a local cache, and report label coverage")
    parser.add_argument("--tasks", default="all", help="comma-separated task and group names (default all; tasks "
                                                      "without probe ids are skipped)")
    parser.add_argument("--data-dir", type=Path, help=f"directory with the data files (or set {DATA_DIR_ENV})")
    parser.add_argument("--include-path", type=Path, action="append", default=[],
                        help="extra directory of task YAML files (repeatable)")
    parser.add_argument("--limit", type=int, help="use the first N cases of each task")
    parser.add_argument("--offline", action="store_true",
                        help="no network: use the cache only and count what is missing")
    parser.add_argument("--cache", type=Path,
                        help=f"the SQLite cache file (default <cache>/{CACHE_FILE}, <cache> = $FLEXTAPE_CACHE or "
                             f"~/.cache/flextape_bench)")
    return parser


def _task_cases(args: argparse.Namespace, cache_root: Path) -> tuple[list[tuple[str, list[EditCase]]], list[str]]:
    from flextape_bench.tasks import TaskIndex, load_cases

    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be a positive integer, got {args.limit}")
    index = TaskIndex(list(args.include_path))
    names = index.expand([t.strip() for t in str(args.tasks).split(",") if t.strip()])
    loaded, skipped = [], []
    for name in names:
        spec = index.spec(name)
        if spec.probes is None or spec.probes.ids is None:
            skipped.append(name)
            continue
        path = resolve_dataset(name, spec.dataset, args.data_dir, cache_root, args.offline)
        loaded.append((name, load_cases(spec, path, args.limit)))
    return loaded, skipped


def run(args: argparse.Namespace, fetch: Fetch | None = None, sleep: Sleep = time.sleep) -> int:
    """Prefetch (or, offline, check) the claims of every probe QID of the tasks; print counts; 0 on success."""
    cache_root = cache_dir()
    tasks, skipped = _task_cases(args, cache_root)
    if skipped:
        print(f"skipped (no probe ids): {', '.join(skipped)}")
    qids = [p.entity_id for _, cases in tasks for case in cases for p in case.probes]
    distinct, invalid = _distinct_qids(qids)
    print(f"probes: {len(qids)} in {len(tasks)} tasks, {len(distinct)} distinct QIDs"
          + (f", {invalid} distinct ids that are not QIDs" if invalid else ""))
    tables = load_tables(args.data_dir, cache_root, args.offline)
    with DemographicsCache(args.cache or default_cache_path(cache_root)) as cache:
        report = prefetch(distinct, cache, tables, fetch, args.offline, sleep=sleep, progress=True)
        for line in report.lines():
            print(line)
        print(f"claims of the {len(distinct)} probe QIDs ({cache.path}):")
        for prop, counts in property_coverage(distinct, cache).items():
            print(f"  {prop:<5} {PROPERTY_NAMES[prop]:<13} {counts['with_value']} with a value, {counts['without']} "
                  f"without, {counts['missing']} missing")
        for name, cases in tasks:
            _, summary = attach_labels(cases, cache, tables, ())
            print(f"{name}:")
            for line in summary.lines():
                print(f"  {line}")
    if args.offline and report.people.missing:
        print(f"note: {report.people.missing} probe QIDs are not in the cache; their labels are 'unknown'. Run "
              f"without --offline to fetch them", file=sys.stderr)
    return 0
