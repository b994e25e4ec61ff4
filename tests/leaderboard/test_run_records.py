"""Run records: a finished run's config, summary and timing kept apart from its cases, byte for byte, once per
summary; the leaderboard read from records alone equals the one read from the runs, a run beside its own record is
counted once and preferred to another machine's record, and a damaged record is left out and listed."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from flextape_bench.cli import main
from flextape_bench.errors import UserError
from flextape_bench.leaderboard.collect import collect
from flextape_bench.leaderboard.run_records import keep_records
from flextape_bench.leaderboard.tables import leaderboard_rows

from .conftest import FEMALE, MALE, pair_task, write_run

FILES = ("config.json", "summary.json", "timing.json")
EFF = [(False, True), (True, True), (False, True), (False, True)]


def _run(root: Path, number: int, female: list[float], editor: str = "ft") -> Path:
    task = pair_task(EFF, {"female": female, "male": MALE}, [(True, True)] * 4)
    return write_run(root, "gemma3-270m", editor, number, {"pair": task}, case_ids=[11, 12, 13, 14])


def _without_links(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("run", "config")} for row in rows]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    _run(root, 1, FEMALE)
    _run(root, 1, [0.0, 0.1, 0.0, 0.1], editor="none")
    write_run(root, "gemma3-270m", "ft", 2, None)  # unfinished: no record
    return root


def test_each_finished_run_is_kept_byte_for_byte_once(runs, tmp_path):
    records = tmp_path / "records"
    written = keep_records(runs, records)
    ft = runs / "gemma3-270m" / "ft" / "run_001"
    key = hashlib.sha256((ft / "summary.json").read_bytes()).hexdigest()[:16]
    assert records / "gemma3-270m" / "ft" / key in written and len(written) == 2
    assert sorted(p.name for p in (records / "gemma3-270m" / "ft" / key).iterdir()) == sorted(FILES)
    assert all((records / "gemma3-270m" / "ft" / key / name).read_bytes() == (ft / name).read_bytes() for name in FILES)
    assert keep_records(runs, records) == []  # kept already


def test_the_leaderboard_from_records_alone_equals_the_one_from_the_runs(runs, tmp_path):
    records = tmp_path / "records"
    keep_records(runs, records)
    empty = tmp_path / "new_machine"
    empty.mkdir()
    from_runs, from_records = collect(runs), collect(empty, records=records)
    assert _without_links(leaderboard_rows(from_records.records)) == _without_links(leaderboard_rows(from_runs.records))
    assert [r.case_ids for r in from_records.records] == [[11, 12, 13, 14]] * 2  # from summary.json's files
    assert all(r.run.recorded for r in from_records.records) and from_records.unfinished == ()


def test_the_page_names_the_records_folder_beside_the_results(runs, tmp_path):
    records = tmp_path / "records"
    keep_records(runs, records)
    empty = tmp_path / "new_machine"
    empty.mkdir()
    assert (
        main(["leaderboard", "--results", str(empty), "--records", str(records), "--output", str(tmp_path / "a")]) == 0
    )
    assert main(["leaderboard", "--results", str(runs), "--output", str(tmp_path / "b")]) == 0
    with_records = (tmp_path / "a" / "index.html").read_text()
    assert (
        f"Results under <code>{empty}</code>, run records" in with_records and f"<code>{records}</code>" in with_records
    )
    assert "run records" not in (tmp_path / "b" / "index.html").read_text()


def test_a_run_and_its_own_record_count_once_and_a_run_here_wins_over_a_record(runs, tmp_path):
    records = tmp_path / "records"
    keep_records(runs, records)
    assert len(collect(runs, all_runs=True, records=records).records) == 2  # each run once, not once more as a record
    elsewhere = tmp_path / "elsewhere"
    _run(elsewhere, 1, [0.5, 0.5, 0.5, 0.5])  # another machine's ft run of the same task, its record kept too
    keep_records(elsewhere, records)
    ft = next(r for r in collect(runs, records=records).records if r.editor == "ft")
    assert ft.run.path == runs / "gemma3-270m" / "ft" / "run_001" and not ft.run.recorded
    (runs / "gemma3-270m" / "ft" / "run_001" / "summary.json").unlink()  # here unfinished now: the record is read
    ft = next(r for r in collect(runs, records=records).records if r.editor == "ft")
    assert ft.run.recorded and ft.values["gender_shift"]["groups"]["female"]["shift"] == pytest.approx(0.5)


def test_a_damaged_record_is_left_out_and_listed(runs, tmp_path, capsys):
    records = tmp_path / "records"
    keep_records(runs, records)
    summary = next(records.glob("gemma3-270m/ft/*/summary.json"))
    summary.write_bytes(summary.read_bytes()[:-20])
    empty = tmp_path / "new_machine"
    empty.mkdir()
    collection = collect(empty, records=records)
    assert [r.editor for r in collection.records] == ["none"] and collection.unfinished == (summary.parent,)
    assert f"warning: {summary}: not valid JSON" in capsys.readouterr().err


def test_no_records_folder_and_nothing_at_all_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match=r"^--records .*absent: not a directory; give the folder of run records$"):
        collect(tmp_path, records=tmp_path / "absent")
    (tmp_path / "records").mkdir()
    with pytest.raises(UserError, match=r"no run directories .* found and --records .*: no run records"):
        collect(tmp_path, records=tmp_path / "records")


def test_push_to_hub_with_records_is_refused_before_anything_is_written(runs, tmp_path, capsys):
    output = tmp_path / "board"
    flags = ["--records", str(tmp_path), "--output", str(output), "--push-to-hub", "org/name", "--dry-run"]
    code = main(["leaderboard", "--results", str(runs), *flags])
    assert code != 0 and not output.exists()
    assert "--push-to-hub publishes the runs' cases, which run records (--records) do not hold" in (
        capsys.readouterr().err
    )


def test_the_module_keeps_records_and_says_how(runs, tmp_path):
    command = [sys.executable, "-m", "flextape_bench.leaderboard.run_records"]
    done = subprocess.run([*command, str(runs), str(tmp_path / "records")], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith(f"kept 2 new run record(s) in {tmp_path / 'records'}")
    done = subprocess.run([*command, str(tmp_path / "absent"), "x"], capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.strip() == (
        f"flextape-bench: error: {tmp_path / 'absent'}: not a directory; give the results root of the runs"
    )
    assert subprocess.run(command, capture_output=True, text=True).returncode == 2
