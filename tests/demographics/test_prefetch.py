"""Filling the cache: batches of 50, retries with backoff and Retry-After, giving up with a user error, offline mode,
and the birthplace/country hops of `prefetch`."""

from __future__ import annotations

import email.utils
import io
import json
import urllib.error
from email.message import Message

import pytest

from flextape_bench.demographics.cache import DemographicsCache
from flextape_bench.demographics.prefetch import fetch_claims, prefetch, property_coverage
from flextape_bench.demographics.tables import DemographicTables
from flextape_bench.demographics.wikidata import RetryPolicy, WikidataError, parse_retry_after
from flextape_bench.errors import UserError

from .conftest import PEOPLE, FakeWikidata, needs_data, no_sleep


def http_error(code: int, retry_after: str | None = None) -> urllib.error.HTTPError:
    headers = Message()
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return urllib.error.HTTPError("https://www.wikidata.org/w/api.php", code, "error", headers, io.BytesIO(b""))


def test_batches_of_50(fixture: dict, cache: DemographicsCache):
    fake = FakeWikidata(fixture)
    qids = PEOPLE + [f"Q{1000 + i}" for i in range(113)]  # 120 distinct
    stats = fetch_claims(qids + PEOPLE + ["", "not-a-qid"], cache, fetch=fake, sleep=no_sleep)
    assert [len(fake.ids(url)) for url in fake.urls] == [50, 50, 20]
    assert [qid for url in fake.urls for qid in fake.ids(url)] == qids  # each once, in order
    assert (stats.requested, stats.cached, stats.fetched, stats.missing, stats.invalid) == (120, 0, 120, 0, 2)
    assert stats.not_found == 113 and stats.requests == 3
    again = fetch_claims(qids, cache, fetch=fake, sleep=no_sleep)
    assert len(fake.urls) == 3 and (again.cached, again.fetched, again.not_found) == (120, 0, 113)


def test_retry_with_backoff_and_retry_after(fixture: dict, cache: DemographicsCache):
    sleeps: list[float] = []
    maxlag = json.dumps({"error": {"code": "maxlag", "info": "Waiting for a database server: 6 seconds lagged"}})
    fake = FakeWikidata(
        fixture,
        [
            http_error(503),
            http_error(429, "7"),
            urllib.error.URLError("connection reset"),
            ConnectionResetError("reset"),
            maxlag.encode(),
            b'{"entities": {"Q7',
        ],
    )
    stats = fetch_claims(
        ["Q7346"],
        cache,
        fetch=fake,
        sleep=sleeps.append,
        policy=RetryPolicy(attempts=7, base_delay=1.0, max_delay=10.0),
    )
    assert sleeps == [1.0, 7.0, 4.0, 8.0, 10.0, 10.0]  # 2**k backoff capped at 10; Retry-After 7 beats 2
    assert stats.fetched == 1 and stats.retries == 6 and stats.requests == 1
    assert cache.get("Q7346").values("P172") == ("Q49085",)


def test_gives_up_with_a_user_error_keeping_finished_batches(fixture: dict, cache: DemographicsCache):
    sleeps: list[float] = []
    down = urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    class HalfDown(FakeWikidata):
        def __call__(self, url: str) -> bytes:
            if len(self.urls) >= 1:
                self.urls.append(url)
                raise down
            return super().__call__(url)

    fake = HalfDown(fixture)
    qids = [f"Q{i}" for i in range(1, 61)]
    with pytest.raises(UserError) as info:
        fetch_claims(qids, cache, fetch=fake, sleep=sleeps.append, policy=RetryPolicy(attempts=3))
    message = str(info.value)
    assert "\n" not in message and "--offline" in message and "network" in message and "50 of 60" in message
    assert sleeps == [1.0, 2.0]  # 3 attempts of the second batch
    assert len(cache.cached(qids)) == 50  # the first batch stayed


def test_refused_request_is_not_retried(fixture: dict, cache: DemographicsCache):
    fake = FakeWikidata(fixture, [http_error(400)])
    with pytest.raises(WikidataError, match="HTTP 400"):
        fetch_claims(["Q42"], cache, fetch=fake, sleep=no_sleep)
    api_error = json.dumps({"error": {"code": "no-such-entity", "info": "Could not find an entity"}}).encode()
    with pytest.raises(WikidataError, match="no-such-entity"):
        fetch_claims(["Q42"], cache, fetch=FakeWikidata(fixture, [api_error]), sleep=no_sleep)
    assert len(cache) == 0


def test_retry_after_forms_and_limit(fixture: dict, cache: DemographicsCache):
    assert parse_retry_after("120") == 120.0 and parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == pytest.approx(30.0)
    fake = FakeWikidata(fixture, [http_error(429, "3600")])
    with pytest.raises(WikidataError, match="wait 3600 s"):
        fetch_claims(["Q42"], cache, fetch=fake, sleep=no_sleep)
    assert RetryPolicy().delay(0, 30.0) == 30.0 and RetryPolicy().delay(10, None) == 60.0


def test_offline_counts_missing_and_never_fetches(fixture: dict, cache: DemographicsCache):
    fetch_claims(PEOPLE[:3], cache, fetch=FakeWikidata(fixture), sleep=no_sleep)

    def no_network(url: str) -> bytes:
        raise AssertionError("offline mode fetched")

    stats = fetch_claims(PEOPLE, cache, fetch=no_network, offline=True)
    assert (stats.requested, stats.cached, stats.fetched, stats.missing) == (7, 3, 0, 4)
    coverage = property_coverage(PEOPLE, cache)
    assert coverage["P21"] == {"with_value": 3, "without": 0, "missing": 4}


@needs_data
def test_prefetch_follows_birthplaces_and_countries(fixture: dict, cache: DemographicsCache, tables: DemographicTables):
    fake = FakeWikidata(fixture)
    report = prefetch(PEOPLE, cache, tables, fetch=fake, sleep=no_sleep)
    assert report.people.fetched == 7
    # birthplaces the tables do not place (Trier, Budapest and Hynčice are in city_to_country.csv)
    assert sorted(fake.ids(fake.urls[1])) == ["Q1885566", "Q350", "Q3630", "Q50345"]
    # citizenships the tables do not know: statelessness only
    assert fake.ids(fake.urls[2]) == ["Q223050"] and report.countries.not_found == 1
    assert len(report.lines()) == 3
    offline = prefetch(PEOPLE, cache, tables, offline=True)
    assert offline.people.cached == 7 and offline.places.missing == 0 and offline.countries.missing == 0
