"""The results tree: `<output>/<model>/<editor>/run_<NNN>/` with config.json, `<task>/case_<id>.json`,
`<task>/samples.jsonl` and summary.{json,md,csv}. Every file is written to a temporary name and renamed, so a file
exists only if complete; a killed run resumes by skipping the cases whose files exist."""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator

from flextape_bench.errors import UserError

CONFIG = "config.json"
SUMMARY = "summary.json"


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def slug(name: str) -> str:
    """A directory name for a model or editor name (Hub ids and paths keep their last two parts)."""
    parts = [p for p in re.split(r"[\\/]+", name) if p and p != "."][-2:]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(parts)) or "model"


class RunDir:
    """One run's directory."""

    def __init__(self, path: Path):
        self.path = path

    @property
    def config(self) -> dict[str, Any]:
        return read_json(self.path / CONFIG)

    @property
    def finished(self) -> bool:
        return (self.path / SUMMARY).exists()

    def case_path(self, task: str, case_id: int) -> Path:
        return self.path / task / f"case_{case_id}.json"

    def has_case(self, task: str, case_id: int) -> bool:
        return self.case_path(task, case_id).exists()

    def write_case(self, task: str, record: dict[str, Any]) -> None:
        write_json(self.case_path(task, record["case_id"]), record)

    def read_case(self, task: str, case_id: int) -> dict[str, Any]:
        return read_json(self.case_path(task, case_id))

    def write_samples(self, task: str, lines: Iterator[dict[str, Any]]) -> None:
        write_atomic(self.path / task / "samples.jsonl", "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))


def _runs(parent: Path) -> list[Path]:
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
    config has the same identity (everything that changes results); otherwise `run_<NNN+1>` is created and its
    config.json written first.
    """
    parent = output / slug(model) / slug(editor)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--output {output}: cannot create {parent} ({exc.strerror}); choose a writable directory") from exc
    runs = _runs(parent)
    if resume and runs:
        last = RunDir(runs[-1])
        if (last.path / CONFIG).exists() and not last.finished and last.config.get("identity") == identity:
            return last, True
    number = int(runs[-1].name[4:]) + 1 if runs else 1
    run = RunDir(parent / f"run_{number:03d}")
    run.path.mkdir()
    write_json(run.path / CONFIG, {"identity": identity, **config})
    return run, False
