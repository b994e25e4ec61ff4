"""Shared fixtures of the demographics tests. No test touches the network: the HTTP function is a fake serving a
fixture of real claims (tests/fixtures/wikidata_wbgetentities.json); the mapping tables are the real upstream CSVs."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from flextape_bench.demographics.cache import DemographicsCache
from flextape_bench.demographics.tables import ETHNIC_FILES, DemographicTables
from flextape_bench.tasks import DATA_DIR_ENV

FIXTURE = Path(__file__).parents[1] / "fixtures" / "wikidata_wbgetentities.json"
DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "seesaw_cf"
needs_data = pytest.mark.skipif(
    not (DATA_DIR / "P101_ethnic_groups.csv").is_file(), reason=f"the Seesaw-CF data copy {DATA_DIR} is absent"
)

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


@pytest.fixture
def cache(tmp_path: Path):
    with DemographicsCache(tmp_path / "d.sqlite") as c:
        yield c


@pytest.fixture(scope="module")
def tables() -> DemographicTables:
    if not (DATA_DIR / "P101_ethnic_groups.csv").is_file():
        pytest.skip(f"the Seesaw-CF data copy {DATA_DIR} is absent")
    return DemographicTables.from_files(
        ethnic=[DATA_DIR / name for name in ETHNIC_FILES],
        country_codes=DATA_DIR / "country_codes.csv",
        city_to_country=DATA_DIR / "city_to_country.csv",
        p27_cats=DATA_DIR / "P27_cats.csv",
    )


def no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected sleep({seconds})")
