"""Wikidata API requests and response parsing: real claims from the fixture, redirects, missing entities, ranks, the
request URL and User-Agent, and urllib against a local server."""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from flextape_bench.demographics import wikidata
from flextape_bench.demographics.wikidata import (
    API_URL,
    Entity,
    WikidataError,
    parse_entities,
    truthy,
    urllib_fetch,
    user_agent,
    wbgetentities_url,
)

from .conftest import FEMALE, MALE, PEOPLE


def test_parse_real_claims(fixture: dict):
    parsed = parse_entities(fixture, PEOPLE)
    assert set(parsed) == set(PEOPLE)
    coltrane = parsed["Q7346"]
    assert coltrane.status == "ok" and coltrane.redirect is None
    # P31 (not asked for) and P569 (a time value) are dropped; item values keep their rank
    assert dict(coltrane.claims) == {
        "P21": ((MALE, "normal"),),
        "P172": (("Q49085", "normal"),),
        "P27": (("Q30", "normal"),),
        "P19": (("Q1885566", "normal"),),
    }
    marx = parsed["Q9061"]
    assert [q for q, _ in marx.claims["P27"]] == ["Q27306", "Q223050"]  # order kept, both citizenships
    assert "P172" not in parsed["Q488025"].claims and parsed["Q488025"].claims["P21"] == ((FEMALE, "normal"),)


def test_parse_missing_redirect_and_absent(fixture: dict):
    parsed = parse_entities(fixture, ["Q999999999999", "Q999999999998", "Q123"])
    assert parsed["Q999999999999"] == Entity("Q999999999999", status="missing")
    redirect = parsed["Q999999999998"]
    assert redirect.status == "ok" and redirect.redirect == "Q7346"
    assert redirect.claims["P172"] == (("Q49085", "normal"),)
    assert "Q123" not in parsed  # not answered: the caller must not mark it fetched


def test_parse_no_claims_ranks_and_snak_kinds():
    def statement(value, rank="normal", snaktype="value", **extra):
        snak = {"snaktype": snaktype, "property": "P27"}
        if snaktype == "value":
            snak["datavalue"] = {"type": "wikibase-entityid", "value": value}
        return {"mainsnak": snak, "rank": rank, **extra}

    payload = {
        "entities": {
            "Q1": {"id": "Q1", "claims": []},  # PHP's encoding of no claims
            "Q2": {"id": "Q2"},  # no claims key at all
            "Q3": {
                "id": "Q3",
                "claims": {
                    "P27": [
                        statement({"id": "Q30"}),
                        statement({"id": "Q145"}, rank="preferred"),
                        statement({"id": "Q183"}, rank="deprecated"),
                        statement(None, snaktype="somevalue"),
                        statement(None, snaktype="novalue"),
                        statement({"entity-type": "item", "numeric-id": 142}),
                        statement({"id": "P31"}),
                        statement({"id": "Q30"}),  # a property id, a repeat
                    ],
                    "P21": "garbage",
                },
            },
        }
    }
    parsed = parse_entities(payload, ["Q1", "Q2", "Q3"])
    assert parsed["Q1"].claims == {} and parsed["Q2"].claims == {} and parsed["Q1"].status == "ok"
    assert parsed["Q3"].claims == {"P27": (("Q30", "normal"), ("Q145", "preferred"), ("Q142", "normal"))}
    assert truthy(parsed["Q3"].claims["P27"]) == ["Q145"]
    assert truthy([("Q30", "normal"), ("Q142", "normal"), ("Q30", "normal")]) == ["Q30", "Q142"]


def test_parse_rejects_a_response_without_entities():
    with pytest.raises(WikidataError, match="without 'entities'"):
        parse_entities({"success": 1}, ["Q1"])


def test_url_has_at_most_50_ids():
    url = wbgetentities_url(["Q1", "Q2"])
    assert url.startswith(API_URL + "?") and "ids=Q1|Q2" in url and "props=claims" in url and "format=json" in url
    wbgetentities_url([f"Q{i}" for i in range(1, 51)])
    with pytest.raises(ValueError):
        wbgetentities_url([f"Q{i}" for i in range(1, 52)])


def test_user_agent_names_project_and_version(monkeypatch: pytest.MonkeyPatch):
    agent = user_agent()
    assert agent.startswith("flextape-bench/") and "Seesaw-CF" in agent
    monkeypatch.setenv("FLEXTAPE_CONTACT", "someone@example.org")
    assert "(someone@example.org; " in user_agent()


@contextlib.contextmanager
def _serving(body: bytes, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict]]:
    """The URL of a one-request server on localhost (no outside network) that answers `body` as gzip content, and
    the request headers it saw."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(urllib.request, "_opener", None)  # rebuilt without proxies, restored afterwards
    seen: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.update(self.headers)
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/w/api.php", seen
    finally:
        thread.join(10)
        server.server_close()


def test_urllib_fetch_sends_the_user_agent_and_reads_gzip(monkeypatch: pytest.MonkeyPatch):
    with _serving(gzip.compress(b'{"entities": {}}'), monkeypatch) as (url, seen):
        body = urllib_fetch(url, timeout=10)
    assert json.loads(body) == {"entities": {}}
    assert seen["User-Agent"] == user_agent() and "gzip" in seen["Accept-Encoding"]


def test_urllib_fetch_stops_a_gzip_body_that_decompresses_past_its_bound(monkeypatch: pytest.MonkeyPatch):
    """64 MiB of spaces (valid JSON around an object) sent as 64 KB of gzip: refused once 1 MiB is decompressed."""
    monkeypatch.setattr(wikidata, "MAX_REPLY_BYTES", 1 << 20)
    bomb = gzip.compress(b'{"entities": {}}' + b" " * (64 << 20))
    with _serving(bomb, monkeypatch) as (url, _), pytest.raises(WikidataError) as caught:
        urllib_fetch(url, timeout=10)
    assert str(caught.value) == (
        "the Wikidata API sent more than 1048576 bytes for 50 entities' claims, far more than they take; not read "
        "further. Check for a proxy between this machine and wikidata.org"
    )
