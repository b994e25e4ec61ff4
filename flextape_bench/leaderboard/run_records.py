"""Run records: the three files of a finished run that the leaderboard reads (config.json, summary.json and
timing.json), kept apart from the run's case files and samples. A grid run over several machines keeps each finished
run's record in one folder that travels (leaderboard/records/, in git), and the leaderboard reads the records beside
the results root that holds the runs: `python3 -m flextape_bench.leaderboard.run_records RESULTS RECORDS` copies the
records of the finished runs under RESULTS that RECORDS lacks.

A record is `<records>/<model>/<editor>/<key>/`, key = the first 16 hex digits of the sha256 of its summary.json, so
keeping a run twice, or from two machines, writes it once. A record is trusted as far as the checksums of its three
files go: its summary.json names the case files and their sha256, not their content."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

from flextape_bench.checksums import read_intact, write_atomic
from flextape_bench.errors import UserError
from flextape_bench.results import CONFIG, SUMMARY, TIMING, RunDir, run_dirs

FILES = (CONFIG, TIMING, SUMMARY)  # summary.json last: a folder without it is no record


def record_key(summary: bytes) -> str:
    """A record's folder name: the first 16 hex digits of the sha256 of its summary.json's bytes."""
    return hashlib.sha256(summary).hexdigest()[:16]


def record_dirs(records: Path) -> list[Path]:
    """The record folders under `records` (`<model>/<editor>/<key>/` with a summary.json), sorted by path."""
    return sorted(path.parent for path in records.glob(f"*/*/*/{SUMMARY}"))


def is_intact(path: Path) -> bool:
    """Whether the record at `path` has its three files, each matching its checksum (a damaged one is reported)."""
    return all(read_intact(path / name, "the record is left out") is not None for name in FILES)


def keep_records(results: Path, records: Path) -> list[Path]:
    """Copy the record of every finished run under `results` into `records`, byte for byte, unless it is there
    already; returns the record folders written."""
    written = []
    for parent in sorted(p for p in results.glob("*/*") if p.is_dir()):
        for run in run_dirs(parent):
            if not (run / SUMMARY).is_file():
                continue
            summary = (run / SUMMARY).read_bytes()
            folder = records / parent.parent.name / parent.name / record_key(summary)
            if (folder.is_dir() and is_intact(folder)) or not RunDir(run).finished:  # kept already, or unfinished
                continue
            for name in FILES:
                write_atomic(folder / name, summary if name == SUMMARY else (run / name).read_bytes())
            written.append(folder)
    return written


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 -m flextape_bench.leaderboard.run_records RESULTS RECORDS", file=sys.stderr)
        return 2
    results, records = (Path(arg) for arg in argv)
    try:
        if not results.is_dir():
            raise UserError(f"{results}: not a directory; give the results root of the runs")
        written = keep_records(results, records)
    except UserError as error:
        print(f"flextape-bench: error: {error}", file=sys.stderr)
        return 1
    print(f"kept {len(written)} new run record(s) in {records}" + "".join(f"\n  {path}" for path in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
