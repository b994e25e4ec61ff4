"""Helpers of the bad-input tests (test_bad_input*.py): a workspace of task, data and output folders, a Seesaw-CF
record, and the checks that the CLI refused with one error line. Their fixtures `ws` and `no_model` are in
conftest.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flextape_bench.cli import main
from flextape_bench.tasks import packaged_tasks_dir

PREFIX = "flextape-bench: error: "


def record(
    case_id: int,
    prompt: str = "{} works in the field of",
    subject: str = "Ada Lovelace",
    target_new: str = "physics",
    target_true: str = "mathematics",
) -> dict:
    """One Seesaw-CF efficacy record."""
    return {
        "case_id": case_id,
        "requested_rewrite": {
            "prompt": prompt,
            "relation_id": "P101",
            "subject": subject,
            "target_new": {"str": target_new, "id": "Q413"},
            "target_true": {"str": target_true, "id": "Q395"},
        },
    }


class Workspace:
    """A task folder (--include-path), a data folder (--data-dir) and an output folder under tmp_path."""

    def __init__(self, root: Path):
        self.root, self.tasks, self.data, self.out = root, root / "tasks", root / "data", root / "out"
        self.tasks.mkdir()
        self.data.mkdir()

    def task(self, name: str, records: list[dict] | None = None, sha256: str | None = None) -> Path:
        """Task `name` over data file `name`.json (written from `records` unless None), declaring the file's own
        sha256 unless `sha256` is given; its URL points nowhere, so a missing file cannot be downloaded."""
        data = self.data / f"{name}.json"
        if records is not None:
            data.write_text(json.dumps(records))
        digest = sha256 or hashlib.sha256(data.read_bytes()).hexdigest()
        spec = self.tasks / f"{name}.yaml"
        spec.write_text(
            f"include: {packaged_tasks_dir() / '_seesaw_cf_eff.yaml'}\ntask: {name}\n"
            f"description: bad input test\ndataset:\n  file: {name}.json\n"
            f"  url: file://{self.root}/nowhere/{name}.json\n  sha256: {digest}\n"
        )
        return spec

    def run_args(self, task: str) -> list[str]:
        return [
            "--tasks",
            task,
            "--include-path",
            str(self.tasks),
            "--data-dir",
            str(self.data),
            "--output",
            str(self.out),
        ]

    def run_files(self) -> list[Path]:
        return sorted(p for p in self.out.rglob("*") if p.is_file()) if self.out.is_dir() else []


def error_of(capsys, argv: list[str]) -> str:
    """Run the CLI; assert exit code 2 and exactly one error line, no traceback; return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1 and err.endswith(lines[0] + "\n") and "Traceback" not in err, err
    print(lines[0])  # docs/bad-input.md quotes these (pytest -s)
    return lines[0]


def refused(capsys, ws: Workspace, argv: list[str], *facts: str) -> str:
    """Refused before the model loads: stderr is the one error line, naming every fact; nothing was written."""
    line = error_of(capsys, argv)
    for fact in facts:
        assert fact in line, (fact, line)
    assert ws.run_files() == []
    return line
