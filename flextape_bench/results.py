"""The results tree: `<output>/<model>/<editor>/run_<NNN>/` with config.json, `<task>/case_<id>.json`,
`<task>/samples.jsonl`, summary.{json,md,csv} and timing.json. Files are written whole and carry checksums
(flextape_bench.checksums); a killed run resumes by skipping the cases whose files are there and intact.

Every file but timing.json is the same, byte for byte, when the same command runs again (into another `--output`
too): times, durations and command lines live in timing.json only."""
from __future__ import annotations

import errno
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Sequence

from flextape_bench.checksums import (DamagedFile, check_files, read_intact, read_json, warn_damaged, write_atomic,
                                      write_json)
from flextape_bench.errors import UserError

CONFIG = "config.json"
SUMMARY = "summary.json"
TIMING = "timing.json"
SAMPLES = "samples.jsonl"


def slug(name: str) -> str:
    """A directory name for a model or editor name (Hub ids and paths keep their last two parts)."""
    parts = [p for p in re.split(r"[\\/]+", name) if p and p != "."][-2:]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(parts)) or "model"


class RunDir:
    """One run's directory."""

    def __init__(self, path: Path):
        self.path = path
        self.digests: dict[str, str] = {}  # sha256 of the samples.jsonl files written, for summary.json
        self._timing: dict[str, Any] = {}  # timing.json as this attempt wrote it
        self._started = 0.0  # this attempt's start, time.time()

    @property
    def config(self) -> dict[str, Any]:
        return read_json(self.path / CONFIG)

    @property
    def finished(self) -> bool:
        """Whether summary.json is there and intact, and so is every file it lists (each task's samples.jsonl,
        summary.md, summary.csv); a damaged one is reported and the run counts as unfinished."""
        summary = read_intact(self.path / SUMMARY, "the run counts as unfinished")
        if summary is None:
            return False
        try:
            check_files(self.path, summary.get("files", {}), SUMMARY)
        except DamagedFile as error:
            warn_damaged(error, "the run counts as unfinished")
            return False
        return True

    def case_path(self, task: str, case_id: int) -> Path:
        return self.path / task / f"case_{case_id}.json"

    def has_case(self, task: str, case_id: int) -> bool:
        """Whether the case's file is there and intact (a damaged one is reported, and its chunk done again)."""
        return read_intact(self.case_path(task, case_id), "its chunk is done again") is not None

    def write_case(self, task: str, record: dict[str, Any]) -> None:
        write_json(self.case_path(task, record["case_id"]), record)

    def read_case(self, task: str, case_id: int) -> dict[str, Any]:
        return read_json(self.case_path(task, case_id))

    def write_samples(self, task: str, lines: Iterator[dict[str, Any]]) -> None:
        text = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)
        self.digests[f"{task}/{SAMPLES}"] = write_atomic(self.path / task / SAMPLES, text)

    def remove_temporaries(self) -> None:
        """Delete the temporary files (`.<name>.*.tmp`) that killed attempts left: the attempt that finishes the run
        calls this before writing its summary."""
        for path in self.path.rglob(".*.tmp"):
            if path.is_file():
                path.unlink()

    def log_start(self, argv: Sequence[str], started: float, batch_tokens: dict[str, Any]) -> None:
        """Add this invocation to timing.json: its command line, start time (`time.time()`) and batch size (which
        `--batch-tokens auto` takes from the free memory). timing.json holds one entry per invocation that worked on
        the run, in order; it is the one file of a run that differs between reruns of the same command."""
        earlier = read_intact(self.path / TIMING, "its earlier entries are dropped") or {"attempts": []}
        entry = {"argv": list(argv), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                 "batch_tokens": batch_tokens, "seconds": None}
        self._timing = {"attempts": [*earlier["attempts"], entry]}
        self._started = started
        write_json(self.path / TIMING, self._timing)

    def log_finish(self) -> None:
        """Set this invocation's wall seconds (since `log_start`'s start time) in timing.json; a killed invocation
        keeps null."""
        self._timing["attempts"][-1]["seconds"] = round(time.time() - self._started, 1)
        write_json(self.path / TIMING, self._timing)

    @property
    def timing(self) -> dict[str, Any]:
        """From timing.json: `started` and `argv` of the first invocation recorded (the one that created the run),
        and `seconds`, the wall time of the last one (the one that finished it); None where unknown."""
        attempts = (read_intact(self.path / TIMING, "its times are left out") or {}).get("attempts") or [{}]
        return {"started": attempts[0].get("started"), "argv": attempts[0].get("argv"),
                "seconds": attempts[-1].get("seconds")}


def run_dirs(parent: Path) -> list[Path]:
    """The run directories (`run_NNN`) under a model/editor folder, by run number."""
    runs = [p for p in parent.glob("run_*") if p.is_dir() and re.fullmatch(r"run_\d{3,}", p.name)]
    return sorted(runs, key=lambda p: int(p.name[4:]))


def check_output(output: Path) -> None:
    """Refuse an `--output` that cannot become a writable directory (checked before a model loads; creates
    nothing): the nearest existing part of the path must be a directory this process may write into."""
    existing = Path(output).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"--output {output}: {existing} is a file, not a directory; choose another --output")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--output {output}: cannot write into {existing} (permission denied or read-only); "
                        "choose a writable --output")


def open_run(output: Path, model: str, editor: str, identity: dict[str, Any], config: dict[str, Any],
             resume: bool = True) -> tuple[RunDir, bool]:
    """The run directory to write into, and whether it resumes an unfinished run with the same `identity`.

    With `resume`, the latest run under `<output>/<model>/<editor>/` is continued when it is unfinished and its
    config has the same identity (everything that changes results); otherwise `run_<NNN+1>` is created, with its
    config.json in it from the start.
    """
    parent = output / slug(model) / slug(editor)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--output {output}: cannot create {parent} ({exc.strerror}); choose a writable directory") from exc
    runs = run_dirs(parent)
    if resume and runs:
        last = RunDir(runs[-1])
        if not last.finished:
            earlier = read_intact(last.path / CONFIG, "its run cannot be resumed; starting a new one")
            if earlier is not None and earlier.get("identity") == identity:
                return last, True
    number = int(runs[-1].name[4:]) + 1 if runs else 1
    return RunDir(_new_run(parent, number, {"identity": identity, **config})), False


def _new_run(parent: Path, number: int, config: dict[str, Any]) -> Path:
    """`run_<number>` (or the next free number) with its config.json, which is written into a hidden folder that is
    then renamed: a run directory never exists without its config."""
    staging = parent / f".run_{uuid.uuid4().hex[:12]}.tmp"
    staging.mkdir()
    write_json(staging / CONFIG, config)
    while True:
        path = parent / f"run_{number:03d}"
        try:
            staging.rename(path)  # fails where another process's run directory (never empty) took the number
            return path
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            number += 1
