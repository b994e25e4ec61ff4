"""The SQLite cache: round trip, no refetch, one transaction per store, schema version, default path."""

from __future__ import annotations

import os
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
        fetch_claims([*PEOPLE, "Q999999999999", "Q999999999998"], cache, fetch=fake, sleep=no_sleep)
    with DemographicsCache(path) as cache:  # reopened
        found = cache.lookup([*PEOPLE, "Q999999999999", "Q999999999998", "Q1"])
        assert set(found) == set(PEOPLE) | {"Q999999999999", "Q999999999998"}
        assert found["Q155790"].claims == {"P21": (MALE,), "P172": ("Q7325",), "P27": ("Q28", "Q30"), "P19": ("Q1781",)}
        assert found["Q488025"].values("P172") == ()  # fetched, no claim: cached as such
        assert found["Q999999999999"].status == "missing" and found["Q999999999998"].redirect == "Q7346"
        assert found["Q42"].fetched_at > 0
        stats = fetch_claims([*PEOPLE, "Q999999999999"], cache, fetch=fake, sleep=no_sleep)
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


def _filled(path: Path) -> bytes:
    """A real cache of 300 entities at `path`; its bytes."""
    with DemographicsCache(path) as cache:
        cache.store([Entity(f"Q{i}", claims={"P27": ((f"Q{i + 1}", "normal"),)}) for i in range(1, 301)])
    return path.read_bytes()


def _assert_rebuilt(path: Path, damaged: bytes, why: str, capsys) -> None:
    """Opening `path` (holding `damaged`) reports it in one line, moves it aside and starts an empty cache, which
    works from then on."""
    with DemographicsCache(path) as cache:
        assert len(cache) == 0
        cache.store([Entity("Q1", claims={"P27": (("Q30", "normal"),)})])
    (aside,) = path.parent.glob("d.sqlite.damaged.*")
    assert aside.read_bytes() == damaged
    err = capsys.readouterr().err
    assert err == (
        f"flextape-bench: warning: {path}: {why}; moved to {aside.name}, starting an empty cache "
        "(fetch the claims again with `flextape-bench demographics`)\n"
    )
    with DemographicsCache(path) as cache:
        assert cache.get("Q1").claims == {"P27": ("Q30",)}
    assert capsys.readouterr().err == ""


def test_a_file_of_random_bytes_is_moved_aside_and_rebuilt(tmp_path: Path, capsys):
    path = tmp_path / "d.sqlite"
    damaged = os.urandom(8192)
    path.write_bytes(damaged)
    _assert_rebuilt(path, damaged, "not an intact SQLite database (file is not a database)", capsys)


def test_a_truncated_cache_is_moved_aside_and_rebuilt(tmp_path: Path, capsys):
    path = tmp_path / "d.sqlite"
    damaged = _filled(path)[:8192]
    path.write_bytes(damaged)
    _assert_rebuilt(path, damaged, "not an intact SQLite database (database disk image is malformed)", capsys)


def test_damage_only_quick_check_finds_is_moved_aside_and_rebuilt(tmp_path: Path, capsys):
    path = tmp_path / "d.sqlite"
    data = bytearray(_filled(path))
    data[36:40] = (3).to_bytes(4, "big")  # the header's count of free pages: queries still work
    path.write_bytes(bytes(data))
    _assert_rebuilt(
        path, bytes(data), "a damaged SQLite database (quick_check: Main freelist: size is 0 but should be 3)", capsys
    )
