"""The SQLite cache: round trip, no refetch, one transaction per store, schema version, default path."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from flextape_bench.demographics.cache import DemographicsCache, default_cache_path
from flextape_bench.demographics.prefetch import fetch_claims
from flextape_bench.demographics.wikidata import Entity
from flextape_bench.errors import UserError

from .conftest import MALE, PEOPLE, FakeWikidata, no_sleep


def test_sqlite_round_trip_and_no_refetch(fixture: dict, tmp_path: Path):
    path = tmp_path / "sub" / "demo.sqlite"
    fake = FakeWikidata(fixture)
    with DemographicsCache(path) as cache:
        fetch_claims(PEOPLE + ["Q999999999999", "Q999999999998"], cache, fetch=fake, sleep=no_sleep)
    with DemographicsCache(path) as cache:  # reopened
        found = cache.lookup(PEOPLE + ["Q999999999999", "Q999999999998", "Q1"])
        assert set(found) == set(PEOPLE) | {"Q999999999999", "Q999999999998"}
        assert found["Q155790"].claims == {"P21": (MALE,), "P172": ("Q7325",), "P27": ("Q28", "Q30"),
                                           "P19": ("Q1781",)}
        assert found["Q488025"].values("P172") == ()  # fetched, no claim: cached as such
        assert found["Q999999999999"].status == "missing" and found["Q999999999998"].redirect == "Q7346"
        assert found["Q42"].fetched_at > 0
        stats = fetch_claims(PEOPLE + ["Q999999999999"], cache, fetch=fake, sleep=no_sleep)
        assert len(fake.urls) == 1 and stats.cached == 8 and stats.fetched == 0
        # a cache filled with fewer properties does not count for more
        assert cache.cached(["Q42"], ("P21", "P999")) == set()
    rows = sqlite3.connect(path).execute("SELECT property, value_qid FROM claims WHERE qid = 'Q9061' ORDER BY 1, 2")
    assert list(rows) == [("P172", "Q34069"), ("P19", "Q3138"), ("P21", MALE), ("P27", "Q223050"), ("P27", "Q27306")]


def test_store_is_one_transaction(cache: DemographicsCache):
    good = Entity("Q1", claims={"P27": (("Q30", "normal"),)})
    bad = Entity("Q2", claims={"P27": ((object(), "normal"),)})  # cannot be bound: fails mid-way
    with pytest.raises(sqlite3.Error):
        cache.store([good, bad])
    assert len(cache) == 0 and cache.lookup(["Q1"]) == {}
    cache.store([good])
    cache.store([Entity("Q1", claims={"P27": (("Q142", "preferred"),)})])  # replaces the old claims
    assert cache.get("Q1").claims == {"P27": ("Q142",)}


def test_foreign_schema_version_is_a_user_error(tmp_path: Path):
    path = tmp_path / "d.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(UserError, match="schema version 99"):
        DemographicsCache(path)


def test_default_cache_path(tmp_path: Path):
    assert default_cache_path() == tmp_path / "user_cache" / "demographics.sqlite"
    assert default_cache_path(tmp_path) == tmp_path / "demographics.sqlite"
