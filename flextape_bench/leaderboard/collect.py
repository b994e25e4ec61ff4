"""Find the finished runs under a results root (`<results>/<model>/<editor>/run_NNN/`, finished when summary.json
and the files it lists are intact), and the run records of a records folder (leaderboard.run_records: the runs' config,
summary and timing without their cases), and keep, per model, editor and task, the newest run that has the task (or
every run)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flextape_bench.checksums import DamagedFile, read_json
from flextape_bench.errors import UserError
from flextape_bench.leaderboard.run_records import is_intact, record_dirs, record_key
from flextape_bench.results import CONFIG, SUMMARY, RunDir, check_names, run_dirs


@dataclass(frozen=True)
class RunInfo:
    """One finished run: where it is, what it ran with (from config.json), when it started and its wall time (from
    timing.json)."""

    path: Path
    model: str
    editor: str
    tasks: tuple[str, ...]
    limit: int | None
    num_edits: int | None
    sequential: bool | None
    seed: int | None
    dtype: str | None
    hparams: dict[str, Any]
    seconds: float | None
    started: str | None
    version: str | None = None  # the flextape-bench version that made the run (config.json `versions`)
    commit: str | None = None  # its git commit, where the run recorded one
    parameters: int | None = None  # the model's parameter count (config.json `model_parameters`; newer runs)
    weights: str | None = None  # the blake2b of the model's weights (identity `weights_blake2b`)
    revision: str | None = None  # the model's Hub revision (identity `model_revision`)
    files: tuple[str, ...] = ()  # the files summary.json lists (paths in the run directory)
    recorded: bool = False  # a run record (its config, summary and timing alone), not the run's directory

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def key(self) -> str:
        """The run's place under the results root: `<model>/<editor>/run_NNN` (folder names)."""
        return "/".join(self.path.parts[-3:])

    @property
    def order(self) -> tuple[Path, int, str]:
        """Sort key: the model/editor directory, then the run number (records first, by start time)."""
        number = -1 if self.recorded else int(self.path.name[4:])
        return self.path.parent, number, self.started or ""


@dataclass(frozen=True)
class TaskRecord:
    """One task of one run: the task's values from the run's summary.json."""

    run: RunInfo
    task: str
    values: dict[str, Any]

    @property
    def model(self) -> str:
        return self.run.model

    @property
    def editor(self) -> str:
        return self.run.editor

    @property
    def case_ids(self) -> list[int]:
        """The ids of the cases the run wrote for this task, sorted: the case files summary.json lists, or, for a
        run finished before summary.json listed them, its `case_<id>.json` files."""
        listed = [name.removeprefix(f"{self.task}/") for name in self.run.files if name.startswith(f"{self.task}/")]
        if not listed and not self.run.recorded:
            listed = [path.name for path in (self.run.path / self.task).glob("case_*.json")]
        names = (Path(name).stem.removeprefix("case_") for name in listed if name.startswith("case_"))
        return sorted(int(name) for name in names if name.isdigit())

    @property
    def summary(self) -> dict[str, Any]:
        """A summary holding this task only, the shape `flextape_bench.tables` reads."""
        return {"tasks": {self.task: self.values}}


@dataclass(frozen=True)
class Collection:
    """The kept task records (sorted by task, model, editor, run) and the unfinished run directories skipped."""

    records: tuple[TaskRecord, ...]
    unfinished: tuple[Path, ...]

    @property
    def runs(self) -> list[RunInfo]:
        """The runs that contribute at least one record, by directory and run number."""
        return sorted({r.run.path: r.run for r in self.records}.values(), key=lambda run: run.order)


def _read(path: Path) -> dict[str, Any]:
    """The file's object; a missing file is a UserError, and so is a damaged one (checksums.DamagedFile)."""
    try:
        return read_json(path)
    except FileNotFoundError as exc:
        raise UserError(f"{path}: missing; a finished run has config.json and summary.json") from exc


def read_run(path: Path, recorded: bool = False) -> list[TaskRecord]:
    """A finished run's task records from its summary.json, config.json and timing.json (a run record's, with
    `recorded`), checked for the keys read here."""
    summary, config = _read(path / SUMMARY), _read(path / CONFIG)
    if not isinstance(summary.get("tasks"), dict) or not all(
        isinstance(summary.get(key), str) for key in ("model", "editor")
    ):
        raise UserError(
            f"{path / SUMMARY}: not a flextape-bench summary (needs 'model', 'editor' and a 'tasks' object)"
        )
    check_names(path / SUMMARY, summary)
    bad = [task for task, values in summary["tasks"].items() if not isinstance(values, dict)]
    if bad:
        raise UserError(f"{path / SUMMARY}: the values of task {bad[0]!r} are not an object")
    identity = config.get("identity")
    if not isinstance(identity, dict):
        raise UserError(f"{path / CONFIG}: not a flextape-bench run config (no 'identity' object)")
    timing, versions = RunDir(path).timing, config.get("versions") or {}
    run = RunInfo(
        path=path,
        model=summary["model"],
        editor=summary["editor"],
        tasks=tuple(summary["tasks"]),
        limit=identity.get("limit"),
        num_edits=identity.get("num_edits"),
        sequential=identity.get("sequential"),
        seed=identity.get("seed"),
        dtype=identity.get("dtype"),
        hparams=identity.get("hparams") or {},
        seconds=timing["seconds"],
        started=timing["started"],
        version=versions.get("flextape_bench"),
        commit=versions.get("flextape_bench_commit"),
        parameters=config.get("model_parameters"),
        weights=identity.get("weights_blake2b"),
        revision=identity.get("model_revision") or None,
        files=tuple(summary.get("files") or ()),
        recorded=recorded,
    )
    return [TaskRecord(run=run, task=task, values=values) for task, values in summary["tasks"].items()]


def collect(
    results: Path, all_runs: bool = False, records: Path | None = None, tasks: Sequence[str] | None = None
) -> Collection:
    """Every finished run under `results` and every intact run record under `records`; per (model, editor, task)
    the newest run (highest run number; a record, by start time, yields to any run under `results`) that has the
    task, or with `all_runs` every run's record (a record of a run under `results` counted once). Unfinished runs (a
    damaged summary too) are skipped and listed. With `tasks`, only those tasks are kept (each must be found), and
    only the unfinished runs that name one of them (or whose config cannot be read) are listed."""
    if not results.is_dir():
        raise UserError(f"--results {results}: not a directory; give the results root of the runs (default ./results)")
    if records is not None and not records.is_dir():
        raise UserError(f"--records {records}: not a directory; give the folder of run records")
    finished: list[Path] = []
    unfinished: list[Path] = []
    for parent in sorted(p for p in results.glob("*/*") if p.is_dir()):
        for path in run_dirs(parent):
            (finished if RunDir(path).finished else unfinished).append(path)
    others: list[Path] = []
    if records is not None:  # a record of a run here is that run
        local = {record_key((path / SUMMARY).read_bytes()) for path in finished}
        others = [path for path in record_dirs(records) if path.name not in local]
    found = len(finished) + len(unfinished) + len(others)
    unfinished += [path for path in others if not is_intact(path)]
    runs = [read_run(path, recorded=True) for path in others if path not in unfinished]
    runs.sort(key=lambda tasks: (tasks[0].run.started or "") if tasks else "")  # then the runs under `results`
    runs += [read_run(path) for path in finished]
    kept: dict[tuple[str, str, str, Path | None], TaskRecord] = {}
    for run in runs:
        for record in run:
            kept[record.model, record.editor, record.task, record.run.path if all_runs else None] = record
    if not found:
        records_too = f" and --records {records}: no run records (<model>/<editor>/<key>) either" if records else ""
        raise UserError(f"--results {results}: no run directories (<model>/<editor>/run_NNN) found{records_too}")
    if not kept:
        raise UserError(
            f"--results {results}: no finished run ({len(unfinished)} unfinished, without an intact summary.json)"
        )
    if tasks is not None:
        kept, unfinished = _only(tasks, kept, unfinished)
    chosen = sorted(kept.values(), key=lambda r: (r.task, r.model, r.editor, r.run.order))
    return Collection(records=tuple(chosen), unfinished=tuple(unfinished))


def _only(tasks: Sequence[str], kept: dict[Any, TaskRecord], unfinished: list[Path]) -> tuple[dict, list[Path]]:
    """The kept records of `tasks` and the unfinished runs that may have been running one of them; a task no kept
    record has is a UserError naming the tasks there are."""
    found = sorted({record.task for record in kept.values()})
    missing = [task for task in tasks if task not in found]
    if missing:
        raise UserError(
            f"--tasks {missing[0]}: no finished run or run record has this task; the finished ones have: "
            f"{', '.join(found)}"
        )
    return {key: r for key, r in kept.items() if r.task in tasks}, [p for p in unfinished if _may_run(p, tasks)]


def _may_run(path: Path, tasks: Sequence[str]) -> bool:
    """Whether the unfinished run `path` names one of `tasks` in its config.json (True where that cannot be read)."""
    try:
        named = read_json(path / CONFIG)["identity"]["tasks"]
    except (OSError, DamagedFile, KeyError, TypeError):
        return True
    return any(task in named for task in tasks)
