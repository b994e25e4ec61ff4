"""The mapping tables, from the real upstream CSVs and the packaged continents table."""

from __future__ import annotations

from pathlib import Path

import pytest

from flextape_bench.demographics.tables import DemographicTables, data_file, load_tables
from flextape_bench.errors import UserError
from flextape_bench.tasks import DATA_DIR_ENV

from .conftest import DATA_DIR, needs_data


@needs_data
def test_ethnic_group_mapping_from_the_upstream_tables(tables: DemographicTables):
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
    assert races == {
        "white",
        "Black",
        "East Asian",
        "South Asian",
        "Southeast Asian",
        "Central Asian",
        "Jewish",
        "Indigenous",
        "Latine",
        "Arab",
        "Romani",
        "multiracial",
    }
    assert not [n for n in tables.notes if "ignored" in n]  # the two tables never disagree on a non-blank group


@needs_data
def test_continents_from_package_and_upstream(tables: DemographicTables):
    packaged = DemographicTables.from_files()
    assert len(packaged.country_continent) > 200
    assert set(packaged.country_continent.values()) == {
        "Africa",
        "Asia",
        "Europe",
        "North America",
        "South America",
        "Oceania",
    }
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
    loaded = load_tables(DATA_DIR, tmp_path / "cache", offline=True)
    assert loaded.race("Q49085") == "Black"
    monkeypatch.setenv(DATA_DIR_ENV, str(DATA_DIR))
    assert data_file("P27_cats.csv", None, tmp_path / "cache", offline=True) == DATA_DIR / "P27_cats.csv"
    monkeypatch.delenv(DATA_DIR_ENV)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"data file P101_ethnic_groups.csv not found .* without --offline"):
        load_tables(tmp_path / "empty", tmp_path / "cache", offline=True)
    with pytest.raises(UserError, match=r"--data-dir .*absent is not a directory"):
        load_tables(tmp_path / "absent", tmp_path / "cache", offline=True)


def test_table_file_with_wrong_columns(tmp_path: Path):
    bad = tmp_path / "P101_ethnic_groups.csv"
    bad.write_text("Code,Name\nQ1,x\n")
    with pytest.raises(UserError, match="no column 'Geo Group'"):
        DemographicTables.from_files(ethnic=[bad])
