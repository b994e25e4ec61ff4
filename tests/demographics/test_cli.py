"""The `demographics` command, offline and through an injected fetch function."""

from __future__ import annotations

import argparse
import urllib.error
from pathlib import Path

import pytest

from flextape_bench.cli.demographics import add_parser, execute
from flextape_bench.errors import UserError

from .conftest import DATA_DIR, FakeWikidata, needs_data, no_sleep


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@needs_data
def test_cli_offline_counts_missing(tmp_path: Path, capsys: pytest.CaptureFixture):
    args = parse(
        [
            "demographics",
            "--tasks",
            "seesaw_cf_P19_P101,seesaw_cf_P19_P101_eff",
            "--limit",
            "2",
            "--data-dir",
            str(DATA_DIR),
            "--offline",
            "--cache",
            str(tmp_path / "c.sqlite"),
        ]
    )
    assert args.command == "demographics"
    assert execute(args) == 0
    out = capsys.readouterr()
    assert "skipped (no probe ids): seesaw_cf_P19_P101_eff" in out.out
    distinct = int(out.out.split(" distinct QIDs")[0].rsplit(", ", 1)[1])
    assert f"people: {distinct} QIDs, 0 cached before, 0 fetched, {distinct} missing" in out.out
    assert f"P172  ethnic group  0 with a value, 0 without, {distinct} missing" in out.out
    assert "race: 0 of" in out.out and "not in the cache" in out.err


@needs_data
def test_cli_fetches_through_the_injected_function(tmp_path: Path, fixture: dict, capsys: pytest.CaptureFixture):
    args = parse(
        [
            "demographics",
            "--tasks",
            "seesaw_cf_P19_P101",
            "--limit",
            "1",
            "--data-dir",
            str(DATA_DIR),
            "--cache",
            str(tmp_path / "c.sqlite"),
        ]
    )
    fake = FakeWikidata(fixture)
    assert execute(args, fetch=fake, sleep=no_sleep) == 0
    out = capsys.readouterr().out
    assert "people: 200 QIDs, 0 cached before, 200 fetched, 0 missing" in out  # the first case has 200 probes
    assert execute(args, fetch=no_network_at_all, sleep=no_sleep) == 0  # everything cached now
    assert "people: 200 QIDs, 200 cached before, 0 fetched" in capsys.readouterr().out


def no_network_at_all(url: str) -> bytes:
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


@needs_data
def test_cli_network_failure_is_a_one_line_user_error(tmp_path: Path):
    args = parse(
        [
            "demographics",
            "--tasks",
            "seesaw_cf_P19_P101",
            "--limit",
            "1",
            "--data-dir",
            str(DATA_DIR),
            "--cache",
            str(tmp_path / "c.sqlite"),
        ]
    )
    with pytest.raises(UserError) as info:
        execute(args, fetch=no_network_at_all, sleep=lambda s: None)
    message = str(info.value)
    assert "\n" not in message and "cannot reach the Wikidata API" in message and "--offline" in message


def test_cli_rejects_a_bad_limit(tmp_path: Path):
    with pytest.raises(UserError, match="--limit"):
        execute(parse(["demographics", "--limit", "0", "--offline"]))
