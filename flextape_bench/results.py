"""The results tree: `<output>/<model>/<editor>/run_<NNN>/` with config.json, `<task>/case_<id>.json`,
`<task>/samples.jsonl`, summary.{json,md,csv} and timing.json. Files are written whole and carry checksums
(flextape_bench.checksums); a killed run resumes by skipping the cases whose files are there and intact, and takes
the edit of a chunk it was scoring from `<task>/edit_chunk_<index>.pt`, kept only until the chunk's cases are written.

Every file but timing.json is the same, byte for byte, when the same command runs again (into another `--output`
too): times, durations and command lines live in timing.json only.

A process works in a run only while it holds the run's lock (an flock on `.lock` in it, which names the process's
pid): another process started with the same command meanwhile writes the next run instead."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from flextape_bench.checksums import (
    DamagedFile,
    check_files,
    fsync_folder,
    load_torch,
    read_intact,
    read_json,
    read_json_digest,
    save_torch,
    sums_file,
    warn_damaged,
    write_atomic,
    write_json,
)
from flextape_bench.errors import UserError
from flextape_bench.records import CaseRecord
from flextape_bench.tasks.spec import name_problem

if TYPE_CHECKING:
    from flextape_bench.weights import WeightDelta

logger = logging.getLogger(__name__)
CONFIG = "config.json"
SUMMARY = "summary.json"
TIMING = "timing.json"
SAMPLES = "samples.jsonl"
LOCK = ".lock"


def slug(name: str) -> str:
    """A directory name for a model or editor name (Hub ids and paths keep their last two parts)."""
    parts = [p for p in re.split(r"[\\/]+", name) if p and p not in (".", "..")][-2:]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(parts)).strip(".") or "model"  # never "." or ".."


def check_names(path: Path, summary: Mapping[str, Any]) -> None:
    """Refuse a run's summary.json (read from `path`) whose task, editor or run names are not task-spec names: they
    become file and folder names of judges and exports, and must not lead out of their folder. (Model names are
    free-form; `slug` makes them folder names.)"""
    named = [("task", task) for task in summary.get("tasks") or {}]
    named += [(key, summary[key]) for key in ("editor", "run") if key in summary]
    for what, value in named:
        problem = name_problem(value) if isinstance(value, str) else f"{value!r} is not a valid name"
        if problem:
            raise UserError(f"{path}: {what} {problem}; repair or remove this run")


class RunDir:
    """One run's directory; as `open_run` gives it, locked for this process until `close` (or the end of a `with`
    block)."""

    def __init__(self, path: Path, lock: IO[str] | None = None):
        self.path = path
        self._lock = lock  # the open lock file, flock-ed, while this process works in the run
        self.digests: dict[str, str] = {}  # sha256 of the case files read and samples.jsonl written, for summary.json
        self._timing: dict[str, Any] = {}  # timing.json as this attempt wrote it
        self._started = 0.0  # this attempt's start, time.time()

    def close(self) -> None:
        """Let other processes have the run: its lock file is removed, then unlocked."""
        if self._lock is not None:
            (self.path / LOCK).unlink(missing_ok=True)
            self._lock.close()
            self._lock = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def config(self) -> dict[str, Any]:
        return read_json(self.path / CONFIG)

    @property
    def finished(self) -> bool:
        """Whether summary.json is there and intact, and so is every file it lists (each task's case files and
        samples.jsonl, summary.md, summary.csv); a damaged one is reported and the run counts as unfinished."""
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
        """Whether the case's file is there, intact and of this case (a damaged one, or another case's intact file
        copied over it, is reported, and its chunk done again)."""
        path, action = self.case_path(task, case_id), "its chunk is done again"
        record = read_intact(path, action)
        if record is not None and record.get("case_id") != case_id:
            warn_damaged(DamagedFile(path, f"holds case {record.get('case_id')!r}, not {case_id}"), action)
            return False
        return record is not None

    def write_case(self, task: str, record: CaseRecord) -> None:
        write_json(self.case_path(task, record["case_id"]), record)

    def read_case(self, task: str, case_id: int) -> dict[str, Any]:
        """The case's record; the file's sha256 is kept for summary.json, so that damage after the run finished
        makes it unfinished (and the same command redoes the case's chunk)."""
        path = self.case_path(task, case_id)
        record, self.digests[path.relative_to(self.path).as_posix()] = read_json_digest(path)
        return record

    def _edit_file(self, task: str, index: int) -> Path:
        return self.path / task / f"edit_chunk_{index}.pt"

    def keep_edit(self, task: str, index: int, delta: WeightDelta) -> None:
        """Keep chunk `index`'s edit of `task` (its tensors on the CPU, with a checksum file) while its cases are
        scored, so that an attempt stopped meanwhile resumes without editing again. A disk too full for it is one
        warning: the run goes on without it."""
        path = self._edit_file(task, index)
        try:
            save_torch(path, {name: change.detach().cpu() for name, change in delta.items()})
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            path.unlink(missing_ok=True)
            logger.warning(
                f"flextape-bench: warning: no space left to keep {path} while its cases are scored; going on "
                "without it (a stop now means editing this chunk again)"
            )

    def kept_edit(self, task: str, index: int) -> WeightDelta | None:
        """Chunk `index`'s edit of `task` as `keep_edit` kept it (on the CPU); None when there is none, or it is
        damaged (reported: the chunk is edited again)."""
        path = self._edit_file(task, index)
        if not path.exists():
            return None
        try:
            return load_torch(path, map_location="cpu", weights_only=True)
        except DamagedFile as error:
            warn_damaged(error, "the chunk is edited again")
            return None

    def drop_edits(self, task: str) -> None:
        """Delete the kept edits of `task` (its cases are all written)."""
        for path in (self.path / task).glob("edit_chunk_*.pt"):
            sums_file(path).unlink(missing_ok=True)
            path.unlink()

    def write_samples(self, task: str, lines: Iterator[dict[str, Any]]) -> None:
        text = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)
        self.digests[f"{task}/{SAMPLES}"] = write_atomic(self.path / task / SAMPLES, text)

    def remove_temporaries(self) -> None:
        """Delete the temporary files (`.<name>.*.tmp`) that killed attempts left: the attempt that finishes the run
        calls this before writing its summary (no other process writes in a run this one holds locked)."""
        for path in self.path.rglob(".*.tmp"):
            if path.is_file():
                path.unlink()

    def log_start(self, argv: Sequence[str], started: float, batch_tokens: dict[str, Any]) -> None:
        """Add this invocation to timing.json: its command line, start time (`time.time()`) and batch size (which
        `--batch-tokens auto` takes from the free memory). timing.json holds one entry per invocation that worked on
        the run, in order; it is the one file of a run that differs between reruns of the same command."""
        earlier = read_intact(self.path / TIMING, "its earlier entries are dropped") or {"attempts": []}
        entry = {
            "argv": list(argv),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "batch_tokens": batch_tokens,
            "seconds": None,
        }
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
        return {
            "started": attempts[0].get("started"),
            "argv": attempts[0].get("argv"),
            "seconds": attempts[-1].get("seconds"),
        }


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
        raise UserError(
            f"--output {output}: cannot write into {existing} (permission denied or read-only); "
            "choose a writable --output"
        )


def open_run(
    output: Path, model: str, editor: str, identity: dict[str, Any], config: dict[str, Any], resume: bool = True
) -> tuple[RunDir, bool]:
    """The run directory to write into, locked for this process, and whether it resumes an unfinished run with the
    same `identity`.

    With `resume`, the newest unfinished run under `<output>/<model>/<editor>/` whose config has the same identity
    (everything that changes results) and that no other process holds is continued; otherwise `run_<NNN+1>` is
    created, with its config.json in it from the start. Each run that another process holds is logged.
    """
    parent = output / slug(model) / slug(editor)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"--output {output}: cannot create {parent} ({exc.strerror}); choose a writable directory"
        ) from exc
    runs = run_dirs(parent)
    busy: list[str] = []  # runs to resume that other processes hold: "run_NNN ... (pid N)"
    for path in reversed(runs) if resume else []:
        earlier = read_intact(path / CONFIG, "its run cannot be resumed")
        if earlier is None or earlier.get("identity") != identity or RunDir(path).finished:
            continue
        lock = _lock(path)
        if lock is None:
            busy.append(f"{path.name} is in use by another process{_holder(path)}")
            continue
        _tell(busy, f"resuming {path.name}")
        return RunDir(path, lock), True
    number = int(runs[-1].name[4:]) + 1 if runs else 1
    run = _new_run(parent, number, {"identity": identity, **config})
    _tell(busy, f"writing {run.path.name}")
    return run, False


def _tell(busy: list[str], doing: str) -> None:
    """One warning line per run held by another process: which, and what this process does instead."""
    for line in busy:
        logger.warning("%s; %s", line, doing)


def _lock(folder: Path) -> IO[str] | None:
    """Lock the run `folder` for this process: its lock file, open, with an exclusive flock and this process's pid
    in it; None where another process holds it."""
    while True:
        handle = open(folder / LOCK, "a+")  # noqa: SIM115 (held while the run is, closed by RunDir.close)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        try:
            current = os.path.samestat(os.fstat(handle.fileno()), os.stat(folder / LOCK))
        except FileNotFoundError:
            current = False
        if current:
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return handle
        handle.close()  # its holder removed this file as it let go (RunDir.close): lock the one there now


def _holder(folder: Path) -> str:
    """` (pid N)` of the process that holds the run `folder`, where its lock file tells."""
    try:
        pid = (folder / LOCK).read_text().strip()
    except FileNotFoundError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def _new_run(parent: Path, number: int, config: dict[str, Any]) -> RunDir:
    """`run_<number>` (or the next free number) with its config.json and lock file, which are written into a hidden
    folder that is then renamed: a run directory never exists without its config, nor unlocked before its creator
    lets go."""
    staging = parent / f".run_{uuid.uuid4().hex[:12]}.tmp"
    staging.mkdir()
    write_json(staging / CONFIG, config)
    lock = _lock(staging)
    while True:
        path = parent / f"run_{number:03d}"
        try:
            staging.rename(path)  # fails where another process's run directory (never empty) took the number
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            number += 1
            continue
        fsync_folder(parent)
        return RunDir(path, lock)
