"""The mapping tables from Wikidata values to groups: ethnic group -> racial/geographic group (upstream
P101/P103_ethnic_groups.csv), city -> country (upstream city_to_country.csv, country_codes.csv), country ->
continent (packaged data/continents.csv with the upstream country_codes.csv and P27_cats.csv on top). The upstream
files are resolved like task data."""

from __future__ import annotations

import csv
import importlib.resources
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flextape_bench.demographics.wikidata import is_qid
from flextape_bench.errors import UserError
from flextape_bench.paths import cache_dir
from flextape_bench.tasks.data import resolve_dataset
from flextape_bench.tasks.spec import DatasetSpec

UPSTREAM_URL = "https://raw.githubusercontent.com/ENSCMA2/flextape/1a4da271b89d50505811bf4bf5774a82091da9ea/data/"
UPSTREAM_FILES = {  # file -> sha256 (MANIFEST.tsv of the Seesaw-CF copy)
    "P101_ethnic_groups.csv": "bdeadcb222fe124bef4655b7c66b6d8dafc8d0e36b37a983a6cb6db93b485852",
    "P103_ethnic_groups.csv": "19c113e718d3da045c30b4b4d39bdbd795b100995521140bffe962a21a9561dc",
    "country_codes.csv": "550fba318caeeea08e5f57d8a97c376b2630af1c866eb6cda36d163067d81441",
    "city_to_country.csv": "48cf0e179877a73213d3067e1879f9c077864fb3724cd1128f4315d5a53e07d0",
    "P27_cats.csv": "293118a8fcaaff4005d80bf929a548707505b453fcf96d1b7350b2457d612960",
}
ETHNIC_FILES = ("P101_ethnic_groups.csv", "P103_ethnic_groups.csv")  # in precedence order


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
    def from_files(
        cls,
        ethnic: Sequence[Path] = (),
        country_codes: Path | None = None,
        city_to_country: Path | None = None,
        p27_cats: Path | None = None,
        packaged: bool = True,
    ) -> DemographicTables:
        """Tables from the upstream CSV files (any may be left out) over the packaged country -> continent table."""
        tables = cls()
        if packaged:
            for qid, _name, continent in _packaged_continents():
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
            unknown: Counter[str] = Counter()
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
                tables.notes.append(
                    f"{city_to_country.name}: country names without a QID in the country tables: "
                    + ", ".join(f"{n} ({c})" for n, c in unknown.most_common())
                )
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


def load_tables(
    data_dir: Path | None = None, cache_root: Path | None = None, offline: bool = False
) -> DemographicTables:
    """The mapping tables from the upstream Seesaw-CF files (see `data_file`) and the packaged continents table."""
    get = lambda name: data_file(name, data_dir, cache_root, offline)
    return DemographicTables.from_files(
        ethnic=[get(name) for name in ETHNIC_FILES],
        country_codes=get("country_codes.csv"),
        city_to_country=get("city_to_country.csv"),
        p27_cats=get("P27_cats.csv"),
    )
