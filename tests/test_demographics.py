"""Demographic labels from Wikidata: response parsing, batching, retries, the SQLite cache, offline mode, the mapping
tables (real upstream CSVs), labels per probe and the `demographics` command. No test touches the network: the
HTTP function is a fake serving a fixture of real claims (tests/fixtures/wikidata_wbgetentities.json)."""
from __future__ import annotations

import argparse
import email.utils
import io
import json
import sqlite3
import urllib.error
import urllib.parse
from email.message import Message
from pathlib import Path

import pytest

from flextape_bench import demographics as dm
from flextape_bench.cases import EditCase, Probe, Rewrite
from flextape_bench.errors import UserError
from flextape_bench.tasks import DATA_DIR_ENV

FIXTURE = Path(__file__).parent / "fixtures" / "wikidata_wbgetentities.json"
DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "seesaw_cf"
needs_data = pytest.mark.skipif(not (DATA_DIR / "P101_ethnic_groups.csv").is_file(),
                                reason=f"the Seesaw-CF data copy {DATA_DIR} is absent")

PEOPLE = ["Q7346", "Q9061", "Q155790", "Q37970", "Q732135", "Q488025", "Q42"]
MALE, FEMALE = "Q6581097", "Q6581072"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never use the user's cache or data folders."""
    monkeypatch.setenv("FLEXTAPE_CACHE", str(tmp_path / "user_cache"))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)


@pytest.fixture(scope="module")
def fixture() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


class FakeWikidata:
    """Answers wbgetentities URLs from the fixture (ids it does not hold are 'missing', as Wikidata says for ids
    that do not exist); `failures` are raised first, one per call."""

    def __init__(self, payload: dict, failures: list[BaseException | bytes] = ()):
        self.entities = payload["entities"]
        self.failures = list(failures)
        self.urls: list[str] = []

    def ids(self, url: str) -> list[str]:
        query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
        assert query["action"] == ["wbgetentities"] and query["props"] == ["claims"]
        return query["ids"][0].split("|")

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, bytes):
                return failure
            raise failure
        entities = {q: self.entities.get(q, {"id": q, "missing": ""}) for q in self.ids(url)}
        return json.dumps({"entities": entities, "success": 1}).encode()


def http_error(code: int, retry_after: str | None = None) -> urllib.error.HTTPError:
    headers = Message()
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return urllib.error.HTTPError("https://www.wikidata.org/w/api.php", code, "error", headers, io.BytesIO(b""))


@pytest.fixture
def cache(tmp_path: Path):
    with dm.DemographicsCache(tmp_path / "d.sqlite") as c:
        yield c


@pytest.fixture(scope="module")
def tables() -> dm.DemographicTables:
    if not (DATA_DIR / "P101_ethnic_groups.csv").is_file():
        pytest.skip(f"the Seesaw-CF data copy {DATA_DIR} is absent")
    return dm.DemographicTables.from_files(
        ethnic=[DATA_DIR / name for name in dm.ETHNIC_FILES], country_codes=DATA_DIR / "country_codes.csv",
        city_to_country=DATA_DIR / "city_to_country.csv", p27_cats=DATA_DIR / "P27_cats.csv")


def no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected sleep({seconds})")


# ---------------------------------------------------------------------------------------------------- parsing

def test_parse_real_claims(fixture: dict):
    parsed = dm.parse_entities(fixture, PEOPLE)
    assert set(parsed) == set(PEOPLE)
    coltrane = parsed["Q7346"]
    assert coltrane.status == "ok" and coltrane.redirect is None
    # P31 (not asked for) and P569 (a time value) are dropped; item values keep their rank
    assert dict(coltrane.claims) == {"P21": ((MALE, "normal"),), "P172": (("Q49085", "normal"),),
                                     "P27": (("Q30", "normal"),), "P19": (("Q1885566", "normal"),)}
    marx = parsed["Q9061"]
    assert [q for q, _ in marx.claims["P27"]] == ["Q27306", "Q223050"]  # order kept, both citizenships
    assert "P172" not in parsed["Q488025"].claims and parsed["Q488025"].claims["P21"] == ((FEMALE, "normal"),)


def test_parse_missing_redirect_and_absent(fixture: dict):
    parsed = dm.parse_entities(fixture, ["Q999999999999", "Q999999999998", "Q123"])
    assert parsed["Q999999999999"] == dm.Entity("Q999999999999", status="missing")
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

    payload = {"entities": {
        "Q1": {"id": "Q1", "claims": []},  # PHP's encoding of no claims
        "Q2": {"id": "Q2"},  # no claims key at all
        "Q3": {"id": "Q3", "claims": {"P27": [
            statement({"id": "Q30"}), statement({"id": "Q145"}, rank="preferred"),
            statement({"id": "Q183"}, rank="deprecated"), statement(None, snaktype="somevalue"),
            statement(None, snaktype="novalue"), statement({"entity-type": "item", "numeric-id": 142}),
            statement({"id": "P31"}), statement({"id": "Q30"}),  # a property id, a repeat
        ], "P21": "garbage"}},
    }}
    parsed = dm.parse_entities(payload, ["Q1", "Q2", "Q3"])
    assert parsed["Q1"].claims == {} and parsed["Q2"].claims == {} and parsed["Q1"].status == "ok"
    assert parsed["Q3"].claims == {"P27": (("Q30", "normal"), ("Q145", "preferred"), ("Q142", "normal"))}
    assert dm.truthy(parsed["Q3"].claims["P27"]) == ["Q145"]
    assert dm.truthy([("Q30", "normal"), ("Q142", "normal"), ("Q30", "normal")]) == ["Q30", "Q142"]


def test_parse_rejects_a_response_without_entities():
    with pytest.raises(dm.WikidataError, match="without 'entities'"):
        dm.parse_entities({"success": 1}, ["Q1"])


def test_url_has_at_most_50_ids():
    url = dm.wbgetentities_url(["Q1", "Q2"])
    assert url.startswith(dm.API_URL + "?") and "ids=Q1|Q2" in url and "props=claims" in url and "format=json" in url
    dm.wbgetentities_url([f"Q{i}" for i in range(1, 51)])
    with pytest.raises(ValueError):
        dm.wbgetentities_url([f"Q{i}" for i in range(1, 52)])


def test_user_agent_names_project_and_version(monkeypatch: pytest.MonkeyPatch):
    agent = dm.user_agent()
    assert agent.startswith("flextape-bench/") and "Seesaw-CF" in agent
    monkeypatch.setenv("FLEXTAPE_CONTACT", "someone@example.org")
    assert "(someone@example.org; " in dm.user_agent()


def test_urllib_fetch_sends_the_user_agent_and_reads_gzip(monkeypatch: pytest.MonkeyPatch):
    """Against a server on localhost (no outside network): headers out, gzip body back."""
    import gzip
    import threading
    import urllib.request
    from http.server import BaseHTTPRequestHandler, HTTPServer

    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(urllib.request, "_opener", None)  # rebuilt without proxies, restored afterwards

    seen = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.update(self.headers)
            body = gzip.compress(b'{"entities": {}}')
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
        body = dm.urllib_fetch(f"http://127.0.0.1:{server.server_port}/w/api.php", timeout=10)
    finally:
        thread.join(10)
        server.server_close()
    assert json.loads(body) == {"entities": {}}
    assert seen["User-Agent"] == dm.user_agent() and "gzip" in seen["Accept-Encoding"]


# --------------------------------------------------------------------------------------------- fetching, batching

def test_batches_of_50(fixture: dict, cache: dm.DemographicsCache):
    fake = FakeWikidata(fixture)
    qids = PEOPLE + [f"Q{1000 + i}" for i in range(113)]  # 120 distinct
    stats = dm.fetch_claims(qids + PEOPLE + ["", "not-a-qid"], cache, fetch=fake, sleep=no_sleep)
    assert [len(fake.ids(url)) for url in fake.urls] == [50, 50, 20]
    assert sum((fake.ids(url) for url in fake.urls), []) == qids  # each once, in order
    assert (stats.requested, stats.cached, stats.fetched, stats.missing, stats.invalid) == (120, 0, 120, 0, 2)
    assert stats.not_found == 113 and stats.requests == 3
    again = dm.fetch_claims(qids, cache, fetch=fake, sleep=no_sleep)
    assert len(fake.urls) == 3 and (again.cached, again.fetched, again.not_found) == (120, 0, 113)


def test_retry_with_backoff_and_retry_after(fixture: dict, cache: dm.DemographicsCache):
    sleeps: list[float] = []
    maxlag = json.dumps({"error": {"code": "maxlag", "info": "Waiting for a database server: 6 seconds lagged"}})
    fake = FakeWikidata(fixture, [http_error(503), http_error(429, "7"), urllib.error.URLError("connection reset"),
                                  ConnectionResetError("reset"), maxlag.encode(), b'{"entities": {"Q7'])
    stats = dm.fetch_claims(["Q7346"], cache, fetch=fake, sleep=sleeps.append,
                            policy=dm.RetryPolicy(attempts=7, base_delay=1.0, max_delay=10.0))
    assert sleeps == [1.0, 7.0, 4.0, 8.0, 10.0, 10.0]  # 2**k backoff capped at 10; Retry-After 7 beats 2
    assert stats.fetched == 1 and stats.retries == 6 and stats.requests == 1
    assert cache.get("Q7346").values("P172") == ("Q49085",)


def test_gives_up_with_a_user_error_keeping_finished_batches(fixture: dict, cache: dm.DemographicsCache):
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
        dm.fetch_claims(qids, cache, fetch=fake, sleep=sleeps.append, policy=dm.RetryPolicy(attempts=3))
    message = str(info.value)
    assert "\n" not in message and "--offline" in message and "network" in message and "50 of 60" in message
    assert sleeps == [1.0, 2.0]  # 3 attempts of the second batch
    assert len(cache.cached(qids)) == 50  # the first batch stayed


def test_refused_request_is_not_retried(fixture: dict, cache: dm.DemographicsCache):
    fake = FakeWikidata(fixture, [http_error(400)])
    with pytest.raises(dm.WikidataError, match="HTTP 400"):
        dm.fetch_claims(["Q42"], cache, fetch=fake, sleep=no_sleep)
    api_error = json.dumps({"error": {"code": "no-such-entity", "info": "Could not find an entity"}}).encode()
    with pytest.raises(dm.WikidataError, match="no-such-entity"):
        dm.fetch_claims(["Q42"], cache, fetch=FakeWikidata(fixture, [api_error]), sleep=no_sleep)
    assert len(cache) == 0


def test_retry_after_forms_and_limit(fixture: dict, cache: dm.DemographicsCache):
    assert dm.parse_retry_after("120") == 120.0 and dm.parse_retry_after(None) is None
    assert dm.parse_retry_after("soon") is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert dm.parse_retry_after(date, now=1_000_000) == pytest.approx(30.0)
    fake = FakeWikidata(fixture, [http_error(429, "3600")])
    with pytest.raises(dm.WikidataError, match="wait 3600 s"):
        dm.fetch_claims(["Q42"], cache, fetch=fake, sleep=no_sleep)
    assert dm.RetryPolicy().delay(0, 30.0) == 30.0 and dm.RetryPolicy().delay(10, None) == 60.0


# ------------------------------------------------------------------------------------------------ cache, offline

def test_sqlite_round_trip_and_no_refetch(fixture: dict, tmp_path: Path):
    path = tmp_path / "sub" / "demo.sqlite"
    fake = FakeWikidata(fixture)
    with dm.DemographicsCache(path) as cache:
        dm.fetch_claims(PEOPLE + ["Q999999999999", "Q999999999998"], cache, fetch=fake, sleep=no_sleep)
    with dm.DemographicsCache(path) as cache:  # reopened
        found = cache.lookup(PEOPLE + ["Q999999999999", "Q999999999998", "Q1"])
        assert set(found) == set(PEOPLE) | {"Q999999999999", "Q999999999998"}
        assert found["Q155790"].claims == {"P21": (MALE,), "P172": ("Q7325",), "P27": ("Q28", "Q30"),
                                           "P19": ("Q1781",)}
        assert found["Q488025"].values("P172") == ()  # fetched, no claim: cached as such
        assert found["Q999999999999"].status == "missing" and found["Q999999999998"].redirect == "Q7346"
        assert found["Q42"].fetched_at > 0
        stats = dm.fetch_claims(PEOPLE + ["Q999999999999"], cache, fetch=fake, sleep=no_sleep)
        assert len(fake.urls) == 1 and stats.cached == 8 and stats.fetched == 0
        # a cache filled with fewer properties does not count for more
        assert cache.cached(["Q42"], ("P21", "P999")) == set()
    rows = sqlite3.connect(path).execute("SELECT property, value_qid FROM claims WHERE qid = 'Q9061' ORDER BY 1, 2")
    assert list(rows) == [("P172", "Q34069"), ("P19", "Q3138"), ("P21", MALE), ("P27", "Q223050"), ("P27", "Q27306")]


def test_store_is_one_transaction(cache: dm.DemographicsCache):
    good = dm.Entity("Q1", claims={"P27": (("Q30", "normal"),)})
    bad = dm.Entity("Q2", claims={"P27": ((object(), "normal"),)})  # cannot be bound: fails mid-way
    with pytest.raises(sqlite3.Error):
        cache.store([good, bad])
    assert len(cache) == 0 and cache.lookup(["Q1"]) == {}
    cache.store([good])
    cache.store([dm.Entity("Q1", claims={"P27": (("Q142", "preferred"),)})])  # replaces the old claims
    assert cache.get("Q1").claims == {"P27": ("Q142",)}


def test_foreign_schema_version_is_a_user_error(tmp_path: Path):
    path = tmp_path / "d.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(UserError, match="schema version 99"):
        dm.DemographicsCache(path)


def test_default_cache_path(tmp_path: Path):
    assert dm.default_cache_path() == tmp_path / "user_cache" / "demographics.sqlite"
    assert dm.default_cache_path(tmp_path) == tmp_path / "demographics.sqlite"


def test_offline_counts_missing_and_never_fetches(fixture: dict, cache: dm.DemographicsCache):
    dm.fetch_claims(PEOPLE[:3], cache, fetch=FakeWikidata(fixture), sleep=no_sleep)

    def no_network(url: str) -> bytes:
        raise AssertionError("offline mode fetched")

    stats = dm.fetch_claims(PEOPLE, cache, fetch=no_network, offline=True)
    assert (stats.requested, stats.cached, stats.fetched, stats.missing) == (7, 3, 0, 4)
    coverage = dm.property_coverage(PEOPLE, cache)
    assert coverage["P21"] == {"with_value": 3, "without": 0, "missing": 4}


# ----------------------------------------------------------------------------------------------------- tables

@needs_data
def test_ethnic_group_mapping_from_the_upstream_tables(tables: dm.DemographicTables):
    groups = tables.ethnic_groups
    assert len(groups) == 166  # 123 + 80 rows, 37 codes in both
    assert (tables.race("Q49085"), tables.geography("Q49085")) == ("Black", "North America")  # African Americans
    assert (tables.race("Q7325"), tables.geography("Q7325")) == ("Jewish", "")  # no geographic group upstream
    assert (tables.race("Q161652"), tables.geography("Q161652")) == ("East Asian", "East Asia")
    assert tables.race("Q23445") == "Black"  # P103 spells it "black"
    assert tables.race("Q846570") == "white"  # Americans: blank in P101, filled from P103
    assert tables.race("Q1196645") == "white"  # Canadians: P101's value kept over P103's blank
    assert tables.race("Q1945786") == "" and tables.race("Q15916203") == ""  # not in the tables; a blank row
    races = {g.race for g in groups.values()} - {""}
    assert races == {"white", "Black", "East Asian", "South Asian", "Southeast Asian", "Central Asian", "Jewish",
                     "Indigenous", "Latine", "Arab", "Romani", "multiracial"}
    assert not [n for n in tables.notes if "ignored" in n]  # the two tables never disagree on a non-blank group


@needs_data
def test_continents_from_package_and_upstream(tables: dm.DemographicTables):
    packaged = dm.DemographicTables.from_files()
    assert len(packaged.country_continent) > 200
    assert set(packaged.country_continent.values()) == {"Africa", "Asia", "Europe", "North America",
                                                        "South America", "Oceania"}
    assert packaged.country_continent["Q30"] == "North America" and packaged.country_continent["Q884"] == "Asia"
    # the upstream tables agree with the packaged one wherever both have a country
    assert not [n for n in tables.notes if "replaces" in n]
    assert tables.country_continent["Q12536"] == "Asia"  # Abbasid Caliphate, only upstream
    assert "Q223050" not in tables.country_continent  # statelessness: "None" upstream
    # city -> country through the country names; every name in city_to_country.csv resolves
    assert tables.city_country["Q1781"] == "Q28" and tables.city_country["Q60"] == "Q30"
    assert len(tables.city_country) == 232 and not tables.notes


@needs_data
def test_load_tables_resolves_like_task_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    loaded = dm.load_tables(DATA_DIR, tmp_path / "cache", offline=True)
    assert loaded.race("Q49085") == "Black"
    monkeypatch.setenv(DATA_DIR_ENV, str(DATA_DIR))
    assert dm.data_file("P27_cats.csv", None, tmp_path / "cache", offline=True) == DATA_DIR / "P27_cats.csv"
    monkeypatch.delenv(DATA_DIR_ENV)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="data file P101_ethnic_groups.csv not found .* without --offline"):
        dm.load_tables(tmp_path / "empty", tmp_path / "cache", offline=True)
    with pytest.raises(UserError, match="--data-dir .*absent is not a directory"):
        dm.load_tables(tmp_path / "absent", tmp_path / "cache", offline=True)


def test_table_file_with_wrong_columns(tmp_path: Path):
    bad = tmp_path / "P101_ethnic_groups.csv"
    bad.write_text("Code,Name\nQ1,x\n")
    with pytest.raises(UserError, match="no column 'Geo Group'"):
        dm.DemographicTables.from_files(ethnic=[bad])


# --------------------------------------------------------------------------------------------------- labelling

def make_case(ids: list[str], genders: list[str] | None = None) -> EditCase:
    rewrite = Rewrite("{} was born in", "Someone", "P19", "Paris", "Rome", "Q90", "Q220")
    probes = tuple(Probe(f"{q} was born in", entity_id=q, groups={"gender": g} if g else {})
                   for q, g in zip(ids, genders or [None] * len(ids)))
    return EditCase(1, rewrite, probes)


@needs_data
def test_probe_labels(fixture: dict, cache: dm.DemographicsCache, tables: dm.DemographicTables):
    ids = PEOPLE + ["", "Q5", "Q999999999999"]
    dm.fetch_claims(PEOPLE + ["Q999999999999"], cache, fetch=FakeWikidata(fixture), sleep=no_sleep)
    genders = ["male"] * 7 + ["female", "male", "female"]  # Q488025 (Go Hyeon-jeong) mislabelled on purpose
    summary = dm.LabelSummary()
    labels = dm.probe_labels(make_case(ids, genders), cache, tables, summary)
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
def test_multiple_values_are_joined(cache: dm.DemographicsCache, tables: dm.DemographicTables):
    cache.store([dm.Entity("Q1", claims={"P172": (("Q7325", "normal"), ("Q42884", "normal"), ("Q1", "normal")),
                                         "P27": (("Q30", "normal"), ("Q142", "normal"))})])
    [labels] = dm.probe_labels(make_case(["Q1"]), cache, tables)
    assert labels == {"gender": "unknown", "race": "Jewish+white", "geography": "Western Europe",
                      "continent": "Europe+North America"}


def test_continent_through_wikidata_country_and_continent_claims(fixture: dict, cache: dm.DemographicsCache):
    """With no upstream tables: birthplace -> P17 -> packaged table; citizenship -> P30 of the country."""
    dm.fetch_claims(PEOPLE + ["Q1781", "Q884"], cache, fetch=FakeWikidata(fixture), sleep=no_sleep)
    packaged_only = dm.DemographicTables.from_files()
    labels = dm.probe_labels(make_case(["Q155790", "Q488025"]), cache, packaged_only)
    assert [l["continent"] for l in labels] == ["Europe", "Asia"]  # Q1781 -P17-> Q28; Q884 in the package
    bare = dm.DemographicTables.from_files(packaged=False)
    summary = dm.LabelSummary()
    labels = dm.probe_labels(make_case(["Q155790", "Q488025"]), cache, bare, summary)
    assert [l["continent"] for l in labels] == ["unknown", "Asia"]  # Hungary unknown; Q884 -P30-> Q48 Asia
    assert summary.unmapped["continent"] == {"Q1781": 1, "Q28": 1, "Q30": 1}


@needs_data
def test_attach_labels_for_the_runner(fixture: dict, cache: dm.DemographicsCache, tables: dm.DemographicTables):
    dm.fetch_claims(PEOPLE, cache, fetch=FakeWikidata(fixture), sleep=no_sleep)
    case = make_case(["Q7346", "Q488025"], ["male", "male"])
    [labelled], summary = dm.attach_labels([case], cache, tables)
    assert [p.groups for p in labelled.probes] == [
        {"gender": "male", "race": "Black", "geography": "North America", "continent": "North America"},
        {"gender": "male", "race": "unknown", "geography": "unknown", "continent": "Asia"}]
    assert case.probes[0].groups == {"gender": "male"}  # the input is untouched
    assert labelled.rewrite == case.rewrite and summary.probes == 2
    [with_gender], _ = dm.attach_labels([case], cache, tables, ("gender", "race"))
    assert [p.groups["gender"] for p in with_gender.probes] == ["male", "female"]  # Wikidata over file order
    with pytest.raises(ValueError):
        dm.attach_labels([case], cache, tables, ("religion",))


@needs_data
def test_prefetch_follows_birthplaces_and_countries(fixture: dict, cache: dm.DemographicsCache,
                                                    tables: dm.DemographicTables):
    fake = FakeWikidata(fixture)
    report = dm.prefetch(PEOPLE, cache, tables, fetch=fake, sleep=no_sleep)
    assert report.people.fetched == 7
    # birthplaces the tables do not place (Trier, Budapest and Hynčice are in city_to_country.csv)
    assert sorted(fake.ids(fake.urls[1])) == ["Q1885566", "Q350", "Q3630", "Q50345"]
    # citizenships the tables do not know: statelessness only
    assert fake.ids(fake.urls[2]) == ["Q223050"] and report.countries.not_found == 1
    assert len(report.lines()) == 3
    offline = dm.prefetch(PEOPLE, cache, tables, offline=True)
    assert offline.people.cached == 7 and offline.places.missing == 0 and offline.countries.missing == 0


# ------------------------------------------------------------------------------------------------------------- CLI

def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    dm.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@needs_data
def test_cli_offline_counts_missing(tmp_path: Path, capsys: pytest.CaptureFixture):
    args = parse(["demographics", "--tasks", "seesaw_cf_P19_P101,seesaw_cf_P19_P101_eff", "--limit", "2",
                  "--data-dir", str(DATA_DIR), "--offline", "--cache", str(tmp_path / "c.sqlite")])
    assert args.command == "demographics"
    assert dm.run(args) == 0
    out = capsys.readouterr()
    assert "skipped (no probe ids): seesaw_cf_P19_P101_eff" in out.out
    distinct = int(out.out.split(" distinct QIDs")[0].rsplit(", ", 1)[1])
    assert f"people: {distinct} QIDs, 0 cached before, 0 fetched, {distinct} missing" in out.out
    assert f"P172  ethnic group  0 with a value, 0 without, {distinct} missing" in out.out
    assert "race: 0 of" in out.out and "not in the cache" in out.err


@needs_data
def test_cli_fetches_through_the_injected_function(tmp_path: Path, fixture: dict, capsys: pytest.CaptureFixture):
    args = parse(["demographics", "--tasks", "seesaw_cf_P19_P101", "--limit", "1", "--data-dir", str(DATA_DIR),
                  "--cache", str(tmp_path / "c.sqlite")])
    fake = FakeWikidata(fixture)
    assert dm.run(args, fetch=fake, sleep=no_sleep) == 0
    out = capsys.readouterr().out
    assert "people: 200 QIDs, 0 cached before, 200 fetched, 0 missing" in out  # the first case has 200 probes
    assert dm.run(args, fetch=no_network_at_all, sleep=no_sleep) == 0  # everything cached now
    assert "people: 200 QIDs, 200 cached before, 0 fetched" in capsys.readouterr().out


def no_network_at_all(url: str) -> bytes:
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


@needs_data
def test_cli_network_failure_is_a_one_line_user_error(tmp_path: Path):
    args = parse(["demographics", "--tasks", "seesaw_cf_P19_P101", "--limit", "1", "--data-dir", str(DATA_DIR),
                  "--cache", str(tmp_path / "c.sqlite")])
    with pytest.raises(UserError) as info:
        dm.run(args, fetch=no_network_at_all, sleep=lambda s: None)
    message = str(info.value)
    assert "\n" not in message and "cannot reach the Wikidata API" in message and "--offline" in message


def test_cli_rejects_a_bad_limit(tmp_path: Path):
    with pytest.raises(UserError, match="--limit"):
        dm.run(parse(["demographics", "--limit", "0", "--offline"]))
